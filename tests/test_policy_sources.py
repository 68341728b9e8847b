"""The three ways to run the rules: offline plans, Terraform plan JSON, CrossGuard; plus config, output, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.policy import PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, unknown_checking_proxy

from mlplatform.infra.config_errors import ConfigError
from mlplatform.mlp.planner import Plan
from mlplatform.policies import output
from mlplatform.policies.config import PolicyConfig, config_path, load_policy_config, parse_policy_config
from mlplatform.policies.crossguard import resource_policy, stack_policy
from mlplatform.policies.engine import evaluate
from mlplatform.policies.registry import all_rules, rule_by_id
from mlplatform.policies.run import (
    check,
    policy_config,
    resources_from_plan,
    resources_from_terraform,
    with_stack_budget,
)
from mlplatform.policies.sources.terraform import from_terraform_plan
from tests.conftest import ROOT, STACKS

PLANS = Path(__file__).parent / "data" / "terraform-plans"
MANDATORY = PolicyConfig(default_level="mandatory")


def _findings(name: str) -> set[tuple[str, str]]:
    resources, _ = resources_from_terraform(PLANS / name)
    return {(v.rule, v.resource) for v in check(resources, MANDATORY).violations}


# --- Terraform plans ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in PLANS.glob("*.json")))
def test_every_upstream_terraform_plan_is_checked_and_nothing_is_dropped(name: str) -> None:
    plan = json.loads((PLANS / name).read_text())
    resources, skipped = from_terraform_plan(plan)
    assert len(resources) + len(skipped) == len(plan["resource_changes"])
    check(resources, MANDATORY, skipped=skipped)  # runs every rule without error


def test_eks_clusters_from_terraform_get_the_findings_a_reviewer_expects() -> None:
    found = _findings("checkov_plan_resources_ids.json")
    clusters = [f"module.child_0.module.child_1_{c}.aws_eks_cluster.cluster" for c in "abc"]
    for cluster in clusters:
        for rule in (
            "aws-eks-cluster-disallow-public-endpoint",
            "aws-eks-cluster-secrets-encryption",
            "aws-eks-cluster-control-plane-logging",
        ):
            assert (rule, cluster) in found
    # the version is `(known after apply)` in this plan: no guess about it
    assert not any(rule == "aws-eks-cluster-supported-version" for rule, _ in found)


def test_open_security_groups_are_flagged_only_where_admin_ports_are_open() -> None:
    found = _findings("checkov_plan_with_for_each_for_enrichment.json")
    for example in ("awful_example", "bad_example", "terrible_example"):
        assert ("aws-ec2-no-public-admin-ports", f'module.sg["{example}"].aws_security_group.bad') in found
    # port 80 open to the world is a web server, not an admin port
    assert not any(rule == "aws-ec2-no-public-admin-ports" for rule, _ in _findings("trivy_tfjson_plan.json"))


def test_iam_wildcards_public_acl_and_encryption_from_terraform() -> None:
    found = _findings("checkov_plan_with_hcl_for_enrichment.json")
    assert ("aws-iam-policy-no-wildcard-actions", "aws_iam_policy.policy") in found
    assert ("aws-iam-policy-no-admin", "aws_iam_policy.policy") not in found  # Resource is one role, not "*"
    assert ("aws-s3-bucket-no-public-acl", "aws_s3_bucket.test-bucket1") in found
    trivy = _findings("trivy_tfjson_plan.json")
    # the separate encryption resource is linked to its bucket through the plan's configuration references
    assert ("aws-s3-bucket-encryption-kms", "aws_s3_bucket.planbucket") in trivy
    resources, _ = resources_from_terraform(PLANS / "trivy_tfjson_plan.json")
    report = check(resources, MANDATORY)
    (kms,) = [v for v in report.violations if v.rule == "aws-s3-bucket-encryption-kms"]
    assert kms.message == "the bucket is encrypted with AES256, not SSE-KMS"
    assert ("aws-s3-bucket-versioning", "aws_s3_bucket.planbucket") not in trivy  # inline versioning is on


def test_node_group_without_remote_access_is_not_an_ssh_finding() -> None:
    found = _findings("checkov_eks_node_group_remote_access.json")
    assert not any(rule == "aws-eks-nodegroup-disallow-ssh" for rule, _ in found)


def test_data_sources_and_deletions_are_listed_as_skipped() -> None:
    _, skipped = resources_from_terraform(PLANS / "checkov_github_actions_oidc_trust_policy.json")
    assert [s.reason for s in skipped] == ["data source (read, not managed)"] * 4
    plan = {
        "resource_changes": [
            {
                "address": "aws_s3_bucket.gone",
                "type": "aws_s3_bucket",
                "mode": "managed",
                "change": {"actions": ["delete"], "before": {}, "after": None},
            },
            {
                "address": "aws_glue_job.etl",
                "type": "aws_glue_job",
                "mode": "managed",
                "change": {"actions": ["create"], "after": {"name": "etl"}, "after_unknown": {}},
            },
        ]
    }
    resources, skipped = from_terraform_plan(plan)
    assert resources == []
    assert [(s.resource, s.reason) for s in skipped] == [
        ("aws_s3_bucket.gone", "deleted by this plan"),
        ("aws_glue_job.etl", "no mapping for aws_glue_job (see policies/sources/terraform.py)"),
    ]


def test_provider_default_tags_count_as_the_resources_tags() -> None:
    tags = {"cost-center": "cc", "team": "t", "environment": "dev", "project": "p", "owner": "o"}
    plan = {
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "expressions": {"default_tags": [{"tags": {"constant_value": tags}}]}}
            },
            "root_module": {"resources": [{"address": "aws_sqs_queue.q", "provider_config_key": "aws"}]},
        },
        "resource_changes": [
            {
                "address": "aws_sqs_queue.q",
                "type": "aws_sqs_queue",
                "mode": "managed",
                "change": {
                    "actions": ["create"],
                    "after": {"name": "q", "tags": {"Name": "q"}},
                    "after_unknown": {"tags_all": True},
                },
            }
        ],
    }
    resources, _ = from_terraform_plan(plan)
    assert resources[0].tags == {**tags, "Name": "q"}
    report = evaluate(resources, [rule_by_id("mlp-required-cost-tags")], MANDATORY)
    assert report.violations == ()
    # without the default tags the same queue is missing all of them
    del plan["configuration"]["provider_config"]
    resources, _ = from_terraform_plan(plan)
    (violation,) = evaluate(resources, [rule_by_id("mlp-required-cost-tags")], MANDATORY).violations
    assert violation.message == "missing cost tag(s) cost-center, team, environment, project, owner"


# --- offline plans --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_have_no_mandatory_violation(plans: dict[str, Plan], stack: str) -> None:
    resources, _ = resources_from_plan(plans[stack].to_dict())
    budget = {"dev": 6000, "staging": 20000, "prod": 150000}[stack]
    report = check(resources, with_stack_budget(policy_config(stack, None, all_rules()), budget))
    assert report.mandatory == [], [v.to_json() for v in report.mandatory]
    assert report.checked == len(resources) > 100


def test_budget_rule_uses_the_cost_estimate(plans: dict[str, Plan]) -> None:
    resources, _ = resources_from_plan(plans["prod"].to_dict())
    report = check(resources, with_stack_budget(policy_config("prod", None, all_rules()), 100_000))
    (violation,) = [v for v in report.violations if v.rule == "mlp-budget"]
    assert violation.level == "mandatory"
    assert violation.message.startswith("the estimated monthly cost at full scale is $")
    assert "over the budget of $100,000.00" in violation.message


# --- CrossGuard -----------------------------------------------------------------------------------------------


def _args(resource_type: str, props: dict[str, Any], provider_tags: dict[str, str] | None = None) -> Any:
    from pulumi_policy.policy import PolicyProviderResource, PolicyResourceOptions

    provider = PolicyProviderResource(
        "pulumi:providers:aws", {"defaultTags": json.dumps({"tags": provider_tags or {}})}, "urn:provider", "aws"
    )
    opts = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=None,
        additional_secret_outputs=[],
        parent=None,
    )
    return ResourceValidationArgs(
        resource_type, unknown_checking_proxy(props), "urn:r", "cluster-eks", opts, provider, {}, {}
    )


def test_crossguard_resource_policy_runs_the_same_rule() -> None:
    policy = resource_policy(rule_by_id("aws-eks-cluster-disallow-public-endpoint"))
    reported: list[str] = []
    policy.validate(
        _args("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": True}}),
        lambda message, urn=None: reported.append(message),
    )
    assert reported == ["the Kubernetes API endpoint is public; set vpcConfig.endpointPublicAccess to false"]
    reported.clear()
    # unknown during preview: no violation and no "not applicable" for the whole policy
    policy.validate(
        _args("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": UNKNOWN_BOOLEAN_VALUE}}),
        lambda message, urn=None: reported.append(message),
    )
    assert reported == []


def test_crossguard_stack_policy_merges_provider_default_tags() -> None:
    from pulumi_policy.policy import PolicyProviderResource

    tags = {"cost-center": "cc", "team": "t", "environment": "dev", "project": "p", "owner": "o"}
    provider = PolicyProviderResource("pulumi:providers:aws", {"defaultTags": json.dumps({"tags": tags})}, "u", "aws")
    queue = PolicyResource(
        "aws:sqs/queue:Queue",
        unknown_checking_proxy({"tags": {"Name": "q"}}),
        "urn:q",
        "q",
        None,
        provider,
        None,
        [],
        {},
    )
    bare = PolicyResource("aws:sqs/queue:Queue", unknown_checking_proxy({}), "urn:b", "b", None, None, None, [], {})
    reported: list[tuple[str, str | None]] = []
    stack_policy(rule_by_id("mlp-required-cost-tags")).validate(
        StackValidationArgs([queue, bare], {}, {}), lambda message, urn=None: reported.append((message, urn))
    )
    assert reported == [("missing cost tag(s) cost-center, team, environment, project, owner", "urn:b")]


def test_the_policy_path_imports_no_pulumi_sdk() -> None:
    code = (
        "import sys; from policies.run import resources_from_terraform, check; from policies.registry import "
        "all_rules; from policies.config import PolicyConfig; from pathlib import Path; "
        f"r, s = resources_from_terraform(Path({str(PLANS / 'trivy_tfjson_plan.json')!r})); "
        "check(r, PolicyConfig()); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws', 'pydantic', 'typer', "
        "'rich')); print(bad); assert not bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# --- config, output, CLI ---------------------------------------------------------------------------------------


def test_environment_configs_load_and_differ() -> None:
    rules = all_rules()
    dev, prod = (load_policy_config(config_path(e), rules) for e in ("dev", "prod"))
    public = rule_by_id("aws-eks-cluster-disallow-public-endpoint")
    assert (dev.level(public), prod.level(public)) == ("advisory", "mandatory")
    assert dev.level(rule_by_id("mlp-prod-data-protected")) == "disabled"
    assert dev.params_for(rule_by_id("mlp-gpu-families-allowed"))["allowedFamilies"] == ["g4dn", "g5", "g6", "g6e"]


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({"all": "strict"}, "all", "must be one of mandatory, advisory, disabled (got 'strict')"),
        ({"aws-no-such-rule": "mandatory"}, "aws-no-such-rule", "is not a rule of this pack"),
        (
            {"mlp-max-gpus": {"maxGPUs": 3}},
            "mlp-max-gpus.maxGPUs",
            "is not a parameter of this rule; allowed: enforcementLevel, maxGpus",
        ),
        ({"mlp-max-gpus": {"maxGpus": "many"}}, "mlp-max-gpus.maxGpus", "must be a int (got str)"),
        ({"mlp-max-gpus": {"enforcementLevel": "warn"}}, "mlp-max-gpus.enforcementLevel", "must be one of"),
    ],
)
def test_bad_policy_config_names_the_key(raw: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy_config(raw, all_rules(), "policies/config.prod.json")
    (issue,) = info.value.issues
    assert issue.key_path() == path and message in issue.message


def test_json_and_sarif_outputs() -> None:
    resources, skipped = resources_from_terraform(PLANS / "checkov_plan_with_hcl_for_enrichment.json")
    report = check(resources, MANDATORY, skipped=skipped)
    data = json.loads(output.to_json(report))
    assert set(data) == {"violations", "checked", "skipped", "unjudged"}
    assert all(set(v) == {"rule", "severity", "level", "resource", "message"} for v in data["violations"])
    sarif = json.loads(output.to_sarif(report, all_rules(), "plan.json"))
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(run["results"]) == len(report.violations)
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] == "error"
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location == {"uri": "plan.json", "uriBaseId": "%SRCROOT%"}


def _mlp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplatform.mlp.entry", "policy", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_exit_codes() -> None:
    bad = _mlp("--terraform-plan", str(PLANS / "checkov_plan_resources_ids.json"), "-e", "prod", "-f", "json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["checked"] == 3
    advisory = _mlp("--terraform-plan", str(PLANS / "checkov_plan_change_keys.json"), "-e", "prod")
    assert advisory.returncode == 0
    missing = _mlp("--terraform-plan", "nowhere.json")
    assert missing.returncode == 2 and "nowhere.json: file not found" in missing.stderr
    assert "Traceback" not in bad.stderr + missing.stderr
    listed = _mlp("--list-rules")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(all_rules())


def test_policy_reference_is_in_sync() -> None:
    from mlplatform.policies.docs import policies_reference

    committed = (ROOT / "docs" / "POLICIES.md").read_text()
    assert committed == policies_reference(), "docs/POLICIES.md is stale: run `mlp policy --docs -o docs/POLICIES.md`"
