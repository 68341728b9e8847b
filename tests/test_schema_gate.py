"""The schema gate (`mlp.schema_gate`): the shipped stacks check clean, one defect of each kind seeded in a small
program is reported with its resource, property path and what the schema allows, and the derived provider
schemas are cached per SDK version."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

from mlplatform.mlp.chart_values import check_release, coalesce
from mlplatform.mlp.planner import Plan
from mlplatform.mlp.provider_schema import ProviderSchemas, cache_dir, package_of
from mlplatform.mlp.schema_check import Checker, Finding
from mlplatform.mlp.schema_gate import HELM_VALUES, LENIENCIES, check_plan, render
from tests.conftest import plan_component

CONTAINER_FIELDS = (
    "args, command, env, envFrom, image, imagePullPolicy, lifecycle, livenessProbe, name, ports, readinessProbe, "
    "resizePolicy, resources, restartPolicy, restartPolicyRules, securityContext, startupProbe, stdin, stdinOnce, "
    "terminationMessagePath, terminationMessagePolicy, tty, volumeDevices, volumeMounts, workingDir"
)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_shipped_stack_checks_clean(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    report = check_plan(plan)
    assert [str(e) for e in report.errors] == []
    custom = [r for r in plan.resources if r.custom and r.type != "pulumi:pulumi:StackReference"]
    for package in ("aws", "kubernetes", "random"):
        assert report.checked[package] == len([r for r in custom if package_of(r.type) == package]) > 0
    assert report.checked[HELM_VALUES] == 1  # cert-manager: the one pinned chart that ships a values schema
    assert not [n for n in report.notes if "no installed SDK" in n]
    assert render(report)[0].endswith(": 0 errors, 0 warnings")


def _seeded() -> None:
    """One defect of each kind, each in a resource of its own (the names say which)."""
    provider = aws.Provider("aws", region="us-east-1")
    on_aws = pulumi.ResourceOptions(provider=provider)
    good = {"cluster_name": "c", "node_role_arn": "arn:aws:iam::123456789012:role/n", "subnet_ids": ["subnet-1"]}
    aws.eks.NodeGroup(
        "misspelled", **good, scaling_config={"min_sise": 0, "max_size": 1, "desired_size": 0}, opts=on_aws
    )
    aws.eks.NodeGroup(
        "wrong-type", **good, scaling_config={"min_size": "zero", "max_size": 1, "desired_size": 0}, opts=on_aws
    )
    aws.eks.NodeGroup("missing-required", **good, scaling_config={"min_size": 0, "max_size": 1}, opts=on_aws)
    aws.s3.Bucket("deprecated", bucket="b", acl="private", opts=on_aws)
    cluster = k8s.Provider("k8s", kubeconfig="{}")
    on_k8s = pulumi.ResourceOptions(provider=cluster)
    k8s.apiextensions.CustomResource(
        "bad-enum",
        api_version="karpenter.sh/v1",
        kind="NodePool",
        metadata={"name": "gpu"},
        spec={
            "disruption": {"consolidationPolicy": "WhenIdle", "consolidateAfter": "5m"},
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                    "requirements": [],
                }
            },
        },
        opts=on_k8s,
    )
    labels = {"app": "web"}
    k8s.apps.v1.Deployment(
        "unknown-field",
        metadata={"name": "web"},
        spec={
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolcy": "Always"}]},
            },
        },
        opts=on_k8s,
    )
    k8s.helm.v3.Release(
        "bad-chart-value",
        chart="oci://quay.io/jetstack/charts/cert-manager",
        version="v1.21.1",
        values={"crds": {"enabled": True, "keeep": True}, "replicaCount": "two"},
        opts=on_k8s,
    )


@pytest.fixture(scope="module")
def seeded() -> Plan:
    return plan_component(_seeded)


def test_each_seeded_defect_is_reported_with_resource_path_and_what_is_allowed(seeded: Plan) -> None:
    report = check_plan(seeded)
    assert sorted(str(e) for e in report.errors) == sorted(
        [
            # a nested misspelling (the SDK passes an unknown key through untranslated)
            "misspelled: inputs.scalingConfig.min_sise: unknown property; allowed: desiredSize, maxSize, minSize "
            "(did you mean minSize?)",
            "misspelled: inputs.scalingConfig.minSize: required property missing (expected integer)",
            # a wrong type
            'wrong-type: inputs.scalingConfig.minSize: expected integer, got string "zero"',
            # a missing nested required field
            "missing-required: inputs.scalingConfig.desiredSize: required property missing (expected integer)",
            # a bad enum value (the CRD's)
            "bad-enum: inputs.spec.disruption.consolidationPolicy: 'WhenIdle' is not one of "
            "['WhenEmpty', 'WhenEmptyOrUnderutilized', 'Balanced']",
            # an unknown Kubernetes field in a Deployment
            "unknown-field: inputs.spec.template.spec.containers[0].imagePullPolcy: unknown property; "
            f"allowed: {CONTAINER_FIELDS} (did you mean imagePullPolicy?)",
            # bad chart values, against cert-manager's values.schema.json
            "bad-chart-value: inputs.values.crds.keeep: unknown property; allowed: enabled, keep (did you mean keep?)",
            "bad-chart-value: inputs.values.replicaCount: 'two' is not of type 'number'",
        ]
    )
    assert [str(w) for w in report.warnings] == [
        "deprecated: inputs.acl: deprecated: acl is deprecated. Use the s3.BucketAcl resource instead."
    ]
    assert report.checked == {"aws": 5, "kubernetes": 4, "random": 0, HELM_VALUES: 1}
    lines = render(report)
    assert lines[0] == (
        "Schema: 5 aws, 4 kubernetes, 0 random resources and 1 release's Helm values checked against their "
        "schemas: 8 errors, 1 warning"
    )
    assert '  error: wrong-type: inputs.scalingConfig.minSize: expected integer, got string "zero"' in lines


def test_a_closed_sdk_enum_is_checked(seeded: Plan) -> None:
    # The mock runtime cannot plan a closed-enum typo itself (echoing the input as an output fails the SDK's enum
    # translation first), so the enum of an IAM policy document is set on a planned resource's inputs.
    schemas = ProviderSchemas()
    token = "aws:iam/rolePolicy:RolePolicy"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Alow", "Action": "s3:GetObject", "Resource": "*"}]}
    role_policy = dataclasses.replace(
        seeded.get("misspelled"), name="policy", type=token, inputs={"role": "r", "policy": policy}
    )
    report = check_plan(Plan(project="t", stack="t", resources=(role_policy,)), schemas)
    # `policy` is a JSON string or a policy document: given an object, the document's errors are reported.
    assert [str(e) for e in report.errors] == [
        'policy: inputs.policy.Statement[0].Effect: "Alow" is not allowed; allowed: "Allow", "Deny"'
    ]
    checker = Checker(schemas.definitions(token))
    checker.check(42, schemas.schema(token)["properties"]["policy"], "inputs.policy")  # type: ignore[index]
    assert checker.errors == [Finding("inputs.policy", "expected string or object (PolicyDocument), got integer 42")]


def test_placeholders_are_accepted_anywhere(seeded: Plan) -> None:
    node_group = seeded.get("wrong-type")
    inputs = {**node_group.inputs, "scalingConfig": {"minSize": "[unknown]", "maxSize": 1, "desiredSize": "[secret]"}}
    report = check_plan(Plan(project="t", stack="t", resources=(dataclasses.replace(node_group, inputs=inputs),)))
    assert report.errors == ()


def test_provider_inputs_are_read_as_the_engine_sends_them(seeded: Plan) -> None:
    # Provider inputs are strings on the wire; the plan shows JSON ones decoded (the kubeconfig `{}` above).
    assert "provider-config-strings" in [rule.name for rule in LENIENCIES]
    aws_provider, k8s_provider = seeded.get("aws").inputs, seeded.get("k8s").inputs
    assert (aws_provider["skipCredentialsValidation"], aws_provider["skipRegionValidation"]) == ("false", "true")
    assert k8s_provider["kubeconfig"] == {}
    report = check_plan(seeded)
    assert report.lenient == {"provider-config-strings": 3}
    provider = seeded.get("aws")
    broken = dataclasses.replace(provider, inputs={**provider.inputs, "skipRegionValidation": "maybe"})
    report = check_plan(Plan(project="t", stack="t", resources=(broken,)))
    assert [str(e) for e in report.errors] == ['aws: inputs.skipRegionValidation: expected boolean, got string "maybe"']


def test_derived_schema_uses_engine_names_required_inputs_and_deprecations(tmp_path: Path) -> None:
    schemas = ProviderSchemas(tmp_path)
    node_group = schemas.schema("aws:eks/nodeGroup:NodeGroup")
    assert node_group is not None
    assert node_group["required"] == ["clusterName", "nodeRoleArn", "scalingConfig", "subnetIds"]
    assert node_group["properties"]["scalingConfig"] == {"$ref": "#/definitions/eks.NodeGroupScalingConfigArgs"}
    assert schemas.definitions("aws:eks/nodeGroup:NodeGroup")["eks.NodeGroupScalingConfigArgs"]["required"] == [
        "desiredSize",
        "maxSize",
        "minSize",
    ]
    cluster = schemas.schema("aws:eks/cluster:Cluster")
    assert cluster is not None
    assert cluster["properties"]["defaultAddonsToRemoves"]["deprecationMessage"].startswith(
        "Configure bootstrap_self_managed_addons instead"
    )
    # `s3.BucketVersioningArgs` is the nested block of `s3.Bucket`; the resource's own args are `...InitArgs`.
    versioning = schemas.schema("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning is not None
    assert versioning["required"] == ["bucket", "versioningConfiguration"]
    release = schemas.schema("kubernetes:helm.sh/v3:Release")
    assert release is not None
    assert release["properties"]["compat"] == {"const": "true"}
    assert schemas.schema("aws:nothing/here:Nothing") is None


def test_schemas_are_cached_per_sdk_version_and_reused(tmp_path: Path) -> None:
    token = "random:index/randomPassword:RandomPassword"
    first = ProviderSchemas(tmp_path)
    schema = first.schema(token)
    first.save()
    version = importlib.metadata.version("pulumi-random")
    cached = json.loads((tmp_path / f"random-{version}.json").read_text())
    assert cached["version"] == version
    assert cached["types"][token] == schema
    # Another process reads the file instead of deriving (a process-wide store per directory: forget it first).
    from mlplatform.mlp import provider_schema

    provider_schema.forget_stores()
    second = ProviderSchemas(tmp_path)
    assert second.schema(token) == schema
    assert second.store_for("random").derived == 0  # type: ignore[union-attr]
    # A file written for another SDK version (or format) is not trusted: the schema is derived again.
    cached["version"] = "0.0.1"
    (tmp_path / f"random-{version}.json").write_text(json.dumps(cached))
    provider_schema.forget_stores()
    third = ProviderSchemas(tmp_path)
    assert third.schema(token) == schema
    assert third.store_for("random").derived == 1  # type: ignore[union-attr]


def test_an_unwritable_cache_keeps_schemas_in_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    schemas = ProviderSchemas(blocked)
    assert schemas.schema("random:index/randomPassword:RandomPassword") is not None
    schemas.save()  # no error
    assert schemas.store_for("random").writable is False  # type: ignore[union-attr]
    assert blocked.read_text() == ""


def test_the_cache_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "mlp" / "provider-schemas"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    assert cache_dir() == Path.home() / ".cache" / "mlp" / "provider-schemas"


def test_values_merge_over_chart_defaults_as_helm_does() -> None:
    defaults = {"a": 1, "nested": {"x": 1, "y": 2}, "gone": {"z": 1}, "kept": [1, 2]}
    assert coalesce({"nested": {"y": 3}, "gone": None, "new": True, "kept": [3]}, defaults) == {
        "a": 1,
        "nested": {"x": 1, "y": 3},
        "kept": [3],
        "new": True,
    }


def test_an_enabled_subchart_is_checked_against_its_own_schema() -> None:
    values = {"gfd": {"enabled": True}, "nfd": {"master": {"replicaCount": "two"}}}
    check = check_release({"chart": "nvidia-device-plugin", "version": "0.20.0", "values": values})
    assert check.checked == ("nfd",)  # gfd.enabled decides when nfd.enabled is not set (the chart's condition)
    assert check.errors == (Finding("inputs.values.nfd.master.replicaCount", "'two' is not of type 'integer'"),)
    disabled = check_release(
        {"chart": "nvidia-device-plugin", "version": "0.20.0", "values": {"nfd": {"enabled": False}}}
    )
    assert disabled.checked == ()
    assert "disabled (nfd.enabled=false)" in disabled.notes[-1]


def test_a_chart_version_never_looked_up_is_a_warning() -> None:
    check = check_release({"chart": "oci://quay.io/jetstack/charts/cert-manager", "version": "v1.99.0"})
    assert [str(w) for w in check.warnings] == [
        "inputs.version: chart cert-manager v1.99.0 was never looked up for a values.schema.json (stored "
        "versions: v1.21.1); its values are not checked: add it to mlp/data/charts/index.json"
    ]


def test_mlp_plan_fails_on_a_nested_typo_naming_the_resource_and_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplatform.mlp.cli import main

    project = str(Path(__file__).parent / "data" / "projects" / "schema")
    monkeypatch.setattr("sys.argv", ["mlp", "plan", "t", "-C", project, "-f", "json"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert (
        "  error: workers: inputs.scalingConfig.min_sise: unknown property; allowed: desiredSize, maxSize, minSize "
        "(did you mean minSize?)"
    ) in err
    assert "  error: workers: inputs.scalingConfig.minSize: required property missing (expected integer)" in err
