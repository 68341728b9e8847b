"""Registry-driven serving (issue 17, item 3): an InferenceService names `models:/<name>@<alias>`, a KServe
ClusterStorageContainer resolves it through MLflow when the predictor's pods start, and the promote template
rolls it out by patching one annotation, which Pulumi ignores.

What the API server and KServe will do with the plan is asserted here: the storage container is valid against
KServe v0.20.0's CRD and is the only one for `models:/`; the predictor's pods (KServe copies `predictor.labels`
to them) may reach MLflow and nothing else new; the team's workflow account may patch that one InferenceService
and no other. The resolver's own command line, as the storage container renders it, runs against the real MLflow
server in tests/test_pipeline_steps.py."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.infra.mlops.documents import MLFLOW_PORT, MLFLOW_SELECTOR
from mlplatform.infra.pipelines.steps.resolve import build_parser, parse_models_uri
from mlplatform.infra.serving.documents import (
    KSERVE_MODEL_DIR,
    MODEL_VERSION_ANNOTATION,
    PIPELINE_OWNED_FIELD,
    REGISTRY_POD_LABEL,
    REGISTRY_READER_SECRET,
    REGISTRY_STORAGE_CONTAINER,
    RESOLVER_MODULE,
    VLLM_PIPELINE_OWNED_FIELD,
)
from mlplatform.mlp.k8s_schema import object_of
from mlplatform.mlp.planner import Plan, PlannedResource, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.k8s_schema import validate_custom_resource
from tests.network_policy import Destination, Pod, connection_allowed, plan_namespace_labels, plan_policies

CSC = "kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"


def _isvcs(plan: Plan) -> dict[str, PlannedResource]:
    return {object_of(r)["metadata"]["name"]: r for r in plan.of_type(ISVC)}


def test_the_dev_plan_resolves_models_uris_with_one_valid_storage_container(plans: dict[str, Plan]) -> None:
    (resource,) = plans["dev"].of_type(CSC)
    csc = object_of(resource)
    assert validate_custom_resource(csc) == []
    assert csc["metadata"]["name"] == REGISTRY_STORAGE_CONTAINER
    assert csc["spec"]["supportedUriFormats"] == [{"prefix": "models:/"}]
    assert csc["spec"]["workloadType"] == "initContainer"
    container = csc["spec"]["container"]
    assert container["name"] == "storage-initializer"  # the name KServe's webhook requires
    assert container["image"] == "111122223333.dkr.ecr.us-east-1.amazonaws.com/mlplatform-steps:0.1.0"
    assert container["command"] == ["python", "-m", RESOLVER_MODULE]
    # KServe appends the storageUri and the mount path: the resolver's own parser takes exactly those.
    args = build_parser().parse_args(["models:/churn@champion", KSERVE_MODEL_DIR])
    assert (args.uri, args.target_dir) == ("models:/churn@champion", KSERVE_MODEL_DIR)
    env = {e["name"]: e.get("value") or e.get("valueFrom") for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    # dev's MLflow has basic auth on: the resolver signs in as the reader whose Secret an operator creates
    assert env["MLFLOW_TRACKING_PASSWORD"] == {"secretKeyRef": {"name": REGISTRY_READER_SECRET, "key": "password"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert env["HOME"] == env["TMPDIR"] == KSERVE_MODEL_DIR  # the only writable place: KServe's emptyDir


def test_a_registry_served_inference_service_is_left_to_the_pipeline_where_it_owns_the_field(
    plans: dict[str, Plan],
) -> None:
    isvcs = _isvcs(plans["dev"])
    champion, lake = isvcs["churn-champion"], isvcs["churn-model"]
    predictor = object_of(champion)["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == "models:/churn@champion"
    assert parse_models_uri(predictor["model"]["storageUri"]).alias == "champion"
    assert predictor["labels"] == REGISTRY_POD_LABEL
    assert champion.options["ignoreChanges"] == [PIPELINE_OWNED_FIELD] == ["spec.predictor.annotations"]
    (csc,) = plans["dev"].of_type(CSC)
    assert csc.name in champion.dependencies()  # KServe's webhook needs it when the first pods are made
    # the lake-served model is unchanged: an S3 URI, no registry label, nothing ignored
    lake_predictor = object_of(lake)["spec"]["predictor"]
    assert lake_predictor["model"]["storageUri"].startswith("s3://") and "labels" not in lake_predictor
    assert not lake.options.get("ignoreChanges")


def test_staging_and_prod_serve_from_the_lake_only(plans: dict[str, Plan]) -> None:
    for stack in ("staging", "prod"):
        assert not plans[stack].of_type(CSC), stack
        assert all("models:/" not in str(object_of(r)["spec"]) for r in plans[stack].of_type(ISVC)), stack


_policies = plan_policies
_namespace_labels = plan_namespace_labels


def test_only_registry_served_predictors_reach_mlflow(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    network, cluster = _policies(plan)

    def pod(namespace: str, labels: dict[str, str]) -> Pod:
        return Pod(namespace, labels, _namespace_labels(plan, namespace))

    mlflow = Destination(MLFLOW_PORT, pod=pod("mlflow", dict(MLFLOW_SELECTOR)))
    registry_predictor = pod("serving", {**REGISTRY_POD_LABEL, "serving.kserve.io/inferenceservice": "churn-champion"})
    lake_predictor = pod("serving", {"serving.kserve.io/inferenceservice": "churn-model"})
    ray_head = Destination(8265, pod=pod("ray", {"ray.io/node-type": "head", "mlplatform.io/ray-cluster": "shared"}))
    got = {
        "registry predictor -> MLflow": connection_allowed(network, cluster, registry_predictor, mlflow),
        "lake predictor -> MLflow": connection_allowed(network, cluster, lake_predictor, mlflow),
        "registry predictor -> Ray dashboard": connection_allowed(network, cluster, registry_predictor, ray_head),
    }
    assert got == {
        "registry predictor -> MLflow": True,
        "lake predictor -> MLflow": False,
        "registry predictor -> Ray dashboard": False,
    }


def test_the_promoting_team_may_patch_that_inference_service_and_no_other(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    roles = [object_of(r) for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")]
    serving_rules = [
        rule
        for role in roles
        if role["metadata"]["namespace"] == "serving"
        for rule in role["rules"]
        if "inferenceservices" in rule["resources"]
    ]
    assert serving_rules == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "resourceNames": ["churn-champion"],
            "verbs": ["get", "patch"],
        }
    ]
    bindings = [object_of(r) for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")]
    (binding,) = [b for b in bindings if b["roleRef"]["name"] == "mlp-rollout-churn-champion"]
    assert binding["metadata"]["namespace"] == "serving"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "workflow", "namespace": "team-research"}]
    cron = object_of(
        next(
            r
            for r in plan.of_type("kubernetes:argoproj.io/v1alpha1:CronWorkflow")
            if r.inputs["metadata"]["name"] == "mlp-retrain"
        )
    )
    (_, (evaluate,)) = cron["spec"]["workflowSpec"]["templates"][0]["steps"]
    given = {p["name"]: p["value"] for p in evaluate["arguments"]["parameters"]}
    assert given["inference-service"] == "churn-champion"
    # the rollout's patch writes the annotation under the field Pulumi ignores
    assert PIPELINE_OWNED_FIELD == "spec.predictor.annotations" and MODEL_VERSION_ANNOTATION.startswith("serving.")


# --- config -----------------------------------------------------------------------------------------------------


@pytest.fixture
def dev_config(stack_config: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return stack_config("dev")


def _issues(config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.test.yaml")
    return {i.key_path(): i.message for i in info.value.issues}


def _champion(config: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = config["ml-platform:kserve"]["inference_services"]["churn-champion"]
    return service


def test_exactly_one_model_source(dev_config: dict[str, Any]) -> None:
    both = copy.deepcopy(dev_config)
    _champion(both)["storage_path"] = "churn/v3"
    neither = copy.deepcopy(dev_config)
    del _champion(neither)["model_uri"]
    neither_service = _champion(neither)
    del neither_service["promoted_by"]
    expected = "give exactly one of storage_path (the lake's models zone) or model_uri (the model registry)"
    for config in (both, neither):
        assert _issues(config)["kserve.inference_services.churn-champion"] == expected


@pytest.mark.parametrize("uri", ["models:/churn", "models:/churn@", "s3://b/churn", "models:/churn/v2", "runs:/x/m"])
def test_a_uri_the_resolver_refuses_is_refused_by_config(dev_config: dict[str, Any], uri: str) -> None:
    _champion(dev_config)["model_uri"] = uri
    assert "kserve.inference_services.churn-champion.model_uri" in _issues(dev_config)


def test_promotion_needs_an_alias_a_known_team_and_a_matching_retrain(dev_config: dict[str, Any]) -> None:
    by_version = copy.deepcopy(dev_config)
    _champion(by_version)["model_uri"] = "models:/churn/3"
    issues = _issues(by_version)
    assert issues["kserve.inference_services.churn-champion.promoted_by"] == (
        "a version number never moves; name an alias (models:/<name>@<alias>)"
    )
    assert "now models:/churn/3" in issues["pipelines.templates.retrain.research.inference_service"]

    stranger = copy.deepcopy(dev_config)
    _champion(stranger)["promoted_by"] = "marketing"
    issues = _issues(stranger)
    assert issues["kserve.inference_services.churn-champion.promoted_by"].startswith("unknown team 'marketing'")

    unknown = copy.deepcopy(dev_config)
    unknown["ml-platform:pipelines"]["templates"]["retrain"]["research"]["inference_service"] = "ghost"
    assert _issues(unknown)["pipelines.templates.retrain.research.inference_service"] == (
        "unknown InferenceService 'ghost'; kserve.inference_services: churn-champion, churn-model"
    )


def test_the_resolver_needs_mlflow_and_the_steps_image(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    del config["ml-platform:pipelines"]["templates"]["image"]
    assert _issues(config)["kserve.inference_services.churn-champion.model_uri"] == (
        "the resolver runs in the steps' image; set pipelines.templates.image"
    )
    canary = copy.deepcopy(dev_config)
    _champion(canary)["canary"] = {"storage_path": "churn/v4", "traffic_percent": 10}
    assert "promote by moving the alias" in _issues(canary)["kserve.inference_services.churn-champion.canary"]


# --- vLLM: the same resolver in an init container -----------------------------------------------------------------


@pytest.fixture(scope="module")
def registry_vllm_plan(project: Project) -> Plan:
    stack = load_stack(project, "dev")
    config = copy.deepcopy(stack.config)
    assistant = config["ml-platform:vllm"]["models"]["assistant"]
    assistant.update(model="models:/assistant@champion", source="registry", promoted_by="research")
    return plan_stack(dataclasses.replace(stack, config=config))


def test_the_promoting_team_may_restart_that_vllm_server_and_pulumi_leaves_its_annotation(
    registry_vllm_plan: Plan,
) -> None:
    """The promote template's rollout-vllm step patches the pod template's model-version annotation of
    `vllm-assistant` as research's `workflow` account: a Role naming that Deployment alone; the next `pulumi up`
    ignores that one key (not the other annotations, not the rest of the template)."""
    plan = registry_vllm_plan
    deployment = plan.get("serving-vllm-assistant-deployment")
    assert VLLM_PIPELINE_OWNED_FIELD == 'spec.template.metadata.annotations["serving.mlp.dev/model-version"]'
    assert VLLM_PIPELINE_OWNED_FIELD in deployment.options["ignoreChanges"]
    roles = [object_of(r) for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")]
    deployment_rules = [
        (role["metadata"]["name"], rule)
        for role in roles
        if role["metadata"]["namespace"] == "serving"
        for rule in role["rules"]
        if "deployments" in rule["resources"]
    ]
    assert deployment_rules == [
        (
            "mlp-rollout-vllm-assistant",
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "resourceNames": ["vllm-assistant"],
                "verbs": ["get", "patch"],
            },
        )
    ]
    bindings = [object_of(r) for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")]
    (binding,) = [b for b in bindings if b["roleRef"]["name"] == "mlp-rollout-vllm-assistant"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "workflow", "namespace": "team-research"}]
    # The step's patch, merged into the planned Deployment (JSON merge patch, RFC 7386): the pod template changes
    # (a new ReplicaSet, whose init container resolves the alias again) by that annotation alone.
    from mlplatform.infra.pipelines import templates

    manifest = templates.vllm_rollout_manifest()
    patch = yaml.safe_load(
        manifest.replace("{{inputs.parameters.vllm-server}}", "assistant").replace("{{inputs.parameters.version}}", "4")
    )
    planned = object_of(deployment)
    assert patch["metadata"]["name"] == planned["metadata"]["name"]
    patched = _merge_patch(copy.deepcopy(planned), patch)
    before, after = planned["spec"]["template"], patched["spec"]["template"]
    assert after["metadata"]["annotations"] == {
        **before["metadata"].get("annotations", {}),
        MODEL_VERSION_ANNOTATION: "4",
    }
    assert {**after, "metadata": None} == {**before, "metadata": None}
    assert {k: v for k, v in patched["spec"].items() if k != "template"} == {
        k: v for k, v in planned["spec"].items() if k != "template"
    }


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what `kubectl patch --type merge` and Argo's mergeStrategy merge send)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def test_a_vllm_rollout_needs_the_registry_an_alias_and_a_known_team(dev_config: dict[str, Any]) -> None:
    assistant = dev_config["ml-platform:vllm"]["models"]["assistant"]
    assistant["promoted_by"] = "research"  # still source: hub
    assert "only with source: registry" in _issues(dev_config)["vllm.models.assistant.promoted_by"]
    assistant.update(model="models:/assistant/3", source="registry")
    assert "a version number never moves" in _issues(dev_config)["vllm.models.assistant.promoted_by"]
    assistant.update(model="models:/assistant@champion", promoted_by="nobody")
    assert _issues(dev_config)["vllm.models.assistant.promoted_by"].startswith("unknown team 'nobody'")
    assistant["promoted_by"] = "research"
    assert "vllm.models.assistant.promoted_by" not in _all_issues(dev_config)


def _all_issues(config: dict[str, Any]) -> dict[str, str]:
    try:
        validate_config(config, "stacks/Pulumi.test.yaml")
    except ConfigError as error:
        return {i.key_path(): i.message for i in error.issues}
    return {}


def test_vllm_from_the_registry_resolves_into_the_directory_it_serves(registry_vllm_plan: Plan) -> None:
    deployment = object_of(registry_vllm_plan.get("serving-vllm-assistant-deployment"))
    pod = deployment["spec"]["template"]
    (init,) = pod["spec"]["initContainers"]
    assert init["command"] == ["python", "-m", RESOLVER_MODULE]
    args = build_parser().parse_args(init["args"])
    assert (args.uri, args.target_dir) == ("models:/assistant@champion", "/models/assistant")
    (server,) = pod["spec"]["containers"]
    assert server["args"][0] == args.target_dir  # vLLM serves exactly what the resolver wrote
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    env = {e["name"]: e.get("value") or e.get("valueFrom") for e in init["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert env["MLFLOW_TRACKING_USERNAME"] == {"secretKeyRef": {"name": REGISTRY_READER_SECRET, "key": "username"}}
    assert pod["metadata"]["labels"].items() >= REGISTRY_POD_LABEL.items()
    # no AWS role: the weights come through MLflow, not S3 or a hub token
    assert not [r for r in registry_vllm_plan.resources if r.name.startswith("serving-vllm-assistant-role")]
    network, cluster = _policies(registry_vllm_plan)
    namespace = _namespace_labels(registry_vllm_plan, "serving")
    mlflow = Destination(
        MLFLOW_PORT, pod=Pod("mlflow", dict(MLFLOW_SELECTOR), _namespace_labels(registry_vllm_plan, "mlflow"))
    )
    assert connection_allowed(network, cluster, Pod("serving", pod["metadata"]["labels"], namespace), mlflow)


def test_vllm_registry_source_and_uri_go_together(dev_config: dict[str, Any]) -> None:
    assistant = dev_config["ml-platform:vllm"]["models"]["assistant"]
    assistant["model"] = "models:/assistant@champion"  # still source: hub
    assert _issues(dev_config)["vllm.models.assistant.model"] == (
        "a models:/ URI goes with source: registry, and source: registry takes one"
    )
