"""The pipeline engine (Argo Workflows, chart argo-workflows 1.0.18, appVersion v4.0.6), planned in dev with two
teams: every object valid (built-in kinds against the Kubernetes models, the workflow defaults and the artifact
repositories against the chart's bundled Workflow CRD), the chart values against the chart's values.yaml (it ships
no values.schema.json), the server in-cluster only with token auth, the archive off, workflow pods under the team's
role and Pod Security `restricted`, and each team's `pipelines/<team>/` reachable with its own role only (decided
by `mlp.iam_eval` on the planned policies)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlplatform.infra.config import ConfigError, PipelinesConfig, validate_config
from mlplatform.infra.pipelines.engine import documents
from mlplatform.mlp.iam_eval import Request, evaluate
from mlplatform.mlp.k8s_schema import crd_schema
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.iam_harness import Lake, Workload
from tests.k8s_schema import object_of, validate_builtin, validate_custom_resource, validate_plan

CHART_DEFAULTS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "argo-workflows" / "chart-1.0.18-values.yaml").read_text()
)
WORKFLOW_API = "argoproj.io/v1alpha1"
TEAMS = ("research", "applied")
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


@pytest.fixture(scope="module")
def config_map(stack_config: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    config = stack_config("dev")
    config["ml-platform:pipelines"] = {"enabled": True}
    # without the templates, nothing rolls out a registry-served model after a promotion
    config["ml-platform:kserve"]["inference_services"].pop("churn-champion")
    config["ml-platform:tenants"]["applied"] = {"groups": ["ml-applied"]}
    return config


@pytest.fixture(scope="module")
def stack_config(project: Project) -> Callable[[str], dict[str, Any]]:  # module scope: plan once
    return lambda stack: copy.deepcopy(load_stack(project, stack).config)


@pytest.fixture(scope="module")
def plan(project: Project, config_map: dict[str, Any]) -> Plan:
    return plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config_map))


def _values(plan: Plan) -> dict[str, Any]:
    values: dict[str, Any] = plan.get("pipelines-argo-workflows", layer="cluster").inputs["values"]
    return values


def _workflow(spec: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A workflow as the controller sees it once `workflowDefaults` are merged under it."""
    return {
        "apiVersion": WORKFLOW_API,
        "kind": "Workflow",
        "metadata": {"generateName": "hello-", "namespace": "team-research", **(metadata or {})},
        "spec": {
            **spec,
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
        },
    }


# --- objects valid ------------------------------------------------------------------------------------------------


def test_every_pipelines_object_is_valid(plan: Plan) -> None:
    mine = [r for r in plan.resources if r.name.startswith("pipelines-") and "apiVersion" in r.inputs]
    assert len(mine) >= 3 + 2 * 6  # the argo namespace and its policies; six objects per team
    problems = {name: errors for name, errors in validate_plan(plan).items() if name.startswith("pipelines-")}
    assert problems == {}
    # the checker refuses what the API server would
    account = object_of(plan.get("pipelines-research-workflow-service-account"))
    assert validate_builtin({**account, "automountToken": False})


def test_workflow_defaults_are_a_valid_workflow_spec_for_the_pinned_crd() -> None:
    defaults = documents.workflow_defaults()
    assert validate_custom_resource(_workflow(defaults["spec"], defaults["metadata"])) == []
    # the CRD catches a pod-level field misnamed as the chart's values name it
    wrong = {**defaults["spec"], "podSecurityContext": defaults["spec"]["securityContext"]}
    assert validate_custom_resource(_workflow(wrong)) == [
        "spec: Additional properties are not allowed ('podSecurityContext' was unexpected)"
    ]


def _artifact_repository_schema() -> dict[str, Any]:
    schema = crd_schema(WORKFLOW_API, "Workflow")
    assert schema is not None
    ref = schema["properties"]["status"]["properties"]["artifactRepositoryRef"]
    repository: dict[str, Any] = ref["properties"]["artifactRepository"]
    return repository


@pytest.mark.parametrize("team", TEAMS)
def test_each_team_has_its_default_artifact_repository_under_its_prefix(plan: Plan, team: str) -> None:
    cm = object_of(plan.get(f"pipelines-{team}-artifact-repositories"))
    assert cm["metadata"]["name"] == "artifact-repositories" and cm["metadata"]["namespace"] == f"team-{team}"
    key = cm["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"]
    repository = json.loads(cm["data"][key])
    validator = jsonschema.Draft7Validator(_artifact_repository_schema())
    assert list(validator.iter_errors(repository)) == []
    assert list(validator.iter_errors({"s3": {**repository["s3"], "useSdkCreds": True}}))  # strict: it can fail
    s3 = repository["s3"]
    assert s3["bucket"] == Lake.of(plan).buckets["artifacts"]
    assert s3["keyFormat"].startswith(f"pipelines/{team}/") and ".." not in s3["keyFormat"]
    assert s3["useSDKCreds"] is True
    assert not {"accessKeySecret", "secretKeySecret", "sessionTokenSecret", "roleARN"} & set(s3)


# --- the chart --------------------------------------------------------------------------------------------------

FREE_FORM = {"commonLabels", "nodeSelector", "workflowDefaults", "resources", "securityContext", "podSecurityContext"}
"""Values whose content the chart passes through as is (maps of the Kubernetes API or of labels)."""


def _unknown_keys(values: Any, defaults: Any, path: str = "") -> Iterator[str]:
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if not isinstance(defaults, dict) or key not in defaults:
            yield where
        elif key not in FREE_FORM:
            yield from _unknown_keys(value, defaults[key], where)


def test_every_value_set_is_a_key_of_the_pinned_charts_values(plan: Plan) -> None:
    values = _values(plan)
    assert list(_unknown_keys(values, CHART_DEFAULTS)) == []
    assert list(_unknown_keys({"server": {"authMode": "client", "sso": {"enabled": True}}}, CHART_DEFAULTS)) == []
    assert list(_unknown_keys({"server": {"auth_modes": ["client"]}}, CHART_DEFAULTS)) == ["server.auth_modes"]
    release = plan.get("pipelines-argo-workflows", layer="cluster")
    assert (release.inputs["chart"], release.inputs["version"]) == ("argo-workflows", "1.0.18")
    assert release.inputs["namespace"] == "argo"


def test_server_is_internal_with_token_auth_and_the_archive_is_off(plan: Plan) -> None:
    values = _values(plan)
    server = values["server"]
    assert server["serviceType"] == "ClusterIP" and server["ingress"] == {"enabled": False}
    assert "httproute" not in server or not server["httproute"].get("enabled")
    assert server["authModes"] == ["client"]
    assert "sso" not in server
    controller = values["controller"]
    assert "persistence" not in controller and CHART_DEFAULTS["controller"]["persistence"] == {}  # no archive, no DB
    assert values["crds"]["full"] is False  # no hook Job downloading CRDs from GitHub
    assert values["createAggregateRoles"] is False
    assert controller["rbac"]["accessAllSecrets"] is False and controller["rbac"]["writeConfigMaps"] is False
    # no LoadBalancer or Ingress anywhere in the engine's objects
    for r in plan.resources:
        if r.name.startswith("pipelines-"):
            assert r.inputs.get("kind") not in {"Ingress", "Service", "HTTPRoute"}, r.name


def _restricted(context: dict[str, Any]) -> bool:
    return (
        context.get("allowPrivilegeEscalation") is False
        and context.get("capabilities", {}).get("drop") == ["ALL"]
        and context.get("runAsNonRoot") is True
        and context.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    )


def test_engine_and_workflow_pods_meet_pod_security_restricted(plan: Plan) -> None:
    values = _values(plan)
    for part in ("controller", "server"):
        assert _restricted(values[part]["securityContext"]), part
        assert values[part]["podSecurityContext"]["runAsNonRoot"] is True
    assert _restricted(values["executor"]["securityContext"])  # init and wait containers
    assert _restricted(values["mainContainer"]["securityContext"])  # every main container's default
    pod = values["controller"]["workflowDefaults"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert values["controller"]["workflowDefaults"]["spec"]["serviceAccountName"] == "workflow"
    namespace = object_of(plan.get("pipelines-namespace"))["metadata"]
    assert namespace["name"] == "argo" and namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for team in TEAMS:
        labels = object_of(plan.get(f"tenants-{team}-namespace"))["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# --- who may do what ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("team", TEAMS)
def test_team_groups_run_workflows_in_their_namespace_only(plan: Plan, team: str) -> None:
    role = object_of(plan.get(f"pipelines-{team}-members-role"))
    binding = object_of(plan.get(f"pipelines-{team}-members-role-binding"))
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == f"team-{team}"
    assert binding["subjects"] == [{"kind": "Group", "name": f"ml-{team}", "apiGroup": "rbac.authorization.k8s.io"}]
    workflows = [r for r in role["rules"] if "workflows" in r["resources"]]
    assert workflows and "create" in workflows[0]["verbs"]
    assert not [r for r in role["rules"] if "clusterworkflowtemplates" in r["resources"]]
    executor = object_of(plan.get(f"pipelines-{team}-executor-role-binding"))
    assert executor["subjects"] == [{"kind": "ServiceAccount", "name": "workflow", "namespace": f"team-{team}"}]
    # no cluster-wide grant to a team
    assert not [r for r in plan.resources if r.name.startswith("pipelines-") and r.inputs.get("kind") == "ClusterRole"]


@pytest.mark.parametrize("team", TEAMS)
def test_workflow_service_account_carries_the_teams_role(plan: Plan, team: str) -> None:
    workflow = Workload.of(plan, f"team-{team}", "workflow")
    workload = Workload.of(plan, f"team-{team}", "workload")
    assert workflow.principal.role_arn == workload.principal.role_arn


def _s3(plan: Plan, team: str, action: str, key: str, *, bucket_policy: bool = True, account: str = "workflow") -> bool:
    lake = Lake.of(plan)
    workload = Workload.of(plan, f"team-{team}", account)
    bucket = lake.buckets["artifacts"]
    return evaluate(
        Request(action=action, resource=f"arn:aws:s3:::{bucket}/{key}"),
        workload.principal,
        workload.policies,
        lake.bucket_policies.get(bucket) if bucket_policy else None,
    ).allowed


@pytest.mark.parametrize(("team", "other"), [("research", "applied"), ("applied", "research")])
def test_a_team_reads_and_writes_its_pipelines_prefix_and_not_another_teams(plan: Plan, team: str, other: str) -> None:
    for action in ("s3:GetObject", "s3:PutObject"):
        # own prefix: the role allows it (the lake's perimeter is asserted in its own tests)
        assert _s3(plan, team, action, f"pipelines/{team}/2026/12/05/wf/pod/main.log", bucket_policy=False)
        for key in (f"pipelines/{other}/2026/12/05/wf/pod/main.log", "pipelines/x", f"pipelines/{team}-x/a", "a"):
            assert not _s3(plan, team, action, key), (team, action, key)


def test_without_pipelines_no_team_role_reaches_the_pipelines_prefix(plans: dict[str, Plan]) -> None:
    plan = plans["staging"]
    assert not plan.of_type("mlplatform:pipelines:PipelineEngine")
    assert not [r for r in plan.of_type(ASSOCIATION) if r.inputs["serviceAccount"] == "workflow"]
    assert not _s3(plan, "research", "s3:GetObject", "pipelines/research/a", bucket_policy=False, account="workload")


# --- config -----------------------------------------------------------------------------------------------------


def test_off_by_default_and_in_staging_and_prod(plans: dict[str, Plan]) -> None:
    assert PipelinesConfig().enabled is False
    for stack in ("staging", "prod"):
        assert not [r for r in plans[stack].resources if r.name.startswith("pipelines")], stack


def test_enabled_needs_teams_and_the_artifacts_zone(config_map: dict[str, Any]) -> None:
    config = copy.deepcopy(config_map)
    config["ml-platform:tenants"] = {}
    config["ml-platform:ray"] = {"enabled": True}
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.test.yaml")
    assert ("pipelines.enabled", "workflows run in team namespaces; configure tenants or turn pipelines off") in [
        (i.key_path(), i.message) for i in info.value.issues
    ]
