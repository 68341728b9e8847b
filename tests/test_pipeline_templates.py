"""The shipped workflow templates (`infra.pipelines.templates`): valid against the full Argo CRDs of the template
kinds (v4.1.2, the same Workflow spec family as the pinned controller v4.0.6), their parameters wired to the
steps' real command lines (parsed with each step's own parser), restricted pods under the `workflow` account, and
config that keeps staging and prod unchanged."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from mlplatform.infra.config import ConfigError, PipelineTemplatesConfig, validate_config
from mlplatform.infra.drift.alerts import GROUP_NAME
from mlplatform.infra.pipelines import templates
from mlplatform.infra.pipelines.engine.documents import WORKFLOW_SERVICE_ACCOUNT
from mlplatform.infra.pipelines.steps import evaluate_and_promote, train
from mlplatform.mlp.planner import Plan
from tests.k8s_schema import validate_custom_resource

IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/mlplatform-steps:0.1.0"
REFERENCE = re.compile(r"\{\{inputs\.parameters\.([a-z-]+)\}\}")
SAMPLE = {
    "dataset": "s3://lake/teams/research/churn.csv",
    "model": "churn",
    "label": "churned",
    "tracking-uri": "http://mlflow.mlflow.svc.cluster.local:5000",
    "ray-address": "",
    "metric": "f1",
    "min-improvement": "0.01",
    "greater-is-better": "true",
    "registry-reader": "registry-reader",
}


def _retrain(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "namespace": "team-research",
        "schedule": "0 3 * * 1",
        "model": "churn",
        "dataset": "s3://lake/teams/research/churn.csv",
        "label": "label",
        "metric": "accuracy",
        "greater_is_better": True,
        "min_improvement": 0.005,
        "suspend": False,
        "labels": {},
    }
    return templates.retrain_cron_workflow(**{**values, **overrides})


def _shipped() -> list[dict[str, Any]]:
    return [
        templates.train_template(IMAGE, {"app.kubernetes.io/part-of": "ml-platform"}),
        templates.evaluate_promote_template(IMAGE, {}),
        templates.retrain_template({}),
        _retrain(),
    ]


def _containers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = manifest["spec"].get("workflowSpec", manifest["spec"])
    return {t["name"]: t["container"] for t in spec["templates"] if "container" in t}


def _substitute(args: list[str], declared: set[str], values: dict[str, str] | None = None) -> list[str]:
    """Argo's substitution of `{{inputs.parameters.x}}`; a reference to an undeclared input fails the test."""

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in declared, f"{match.group(1)} is not an input of the template"
        return {**SAMPLE, **(values or {})}[match.group(1)]

    return [REFERENCE.sub(value, a) for a in args]


@pytest.mark.parametrize("manifest", _shipped(), ids=lambda m: m["metadata"]["name"])
def test_valid_against_the_full_crd(manifest: dict[str, Any]) -> None:
    assert validate_custom_resource(manifest) == []


def test_a_field_the_crd_does_not_know_is_refused() -> None:
    manifest = templates.train_template(IMAGE, {})
    manifest["spec"]["templates"][0]["container"]["imagePullPolicyy"] = "Always"
    assert validate_custom_resource(manifest)


def test_train_args_parse_with_the_train_steps_parser() -> None:
    manifest = templates.train_template(IMAGE, {})
    (entry,) = manifest["spec"]["templates"]
    declared = {p["name"] for p in entry["inputs"]["parameters"]}
    container = entry["container"]
    assert container["command"] == ["python", "-m", "mlplatform.infra.pipelines.steps.train"]
    args = train.build_parser().parse_args(_substitute(container["args"], declared))
    assert (args.model, args.dataset, args.label, args.tracking_uri) == (
        "churn",
        SAMPLE["dataset"],
        "churned",
        SAMPLE["tracking-uri"],
    )
    assert not args.ray_address  # empty: the fit runs in the pod
    ray = train.build_parser().parse_args(
        [a.replace("{{inputs.parameters.ray-address}}", "http://head:8265") for a in _substitute_all(container)]
    )
    assert ray.ray_address == "http://head:8265"


def _substitute_all(container: dict[str, Any]) -> list[str]:
    return [
        REFERENCE.sub(lambda m: SAMPLE[m.group(1)] if m.group(1) != "ray-address" else m.group(0), a)
        for a in container["args"]
    ]


@pytest.mark.parametrize("greater", ["true", "false"])
def test_evaluate_args_parse_with_the_promotion_steps_parser(greater: str) -> None:
    manifest = templates.evaluate_promote_template(IMAGE, {})
    spec_templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    declared = {p["name"] for p in spec_templates["promote"]["inputs"]["parameters"]}
    container = spec_templates["promote"]["container"]
    assert container["command"] == ["python", "-m", "mlplatform.infra.pipelines.steps.evaluate_and_promote"]
    args = evaluate_and_promote.build_parser().parse_args(
        _substitute(container["args"], declared, {"greater-is-better": greater})
    )
    assert (args.model, args.metric, args.min_improvement, args.tracking_uri) == (
        "churn",
        "f1",
        0.01,
        SAMPLE["tracking-uri"],
    )
    assert args.greater_is_better == greater
    # The decision files the step writes are the paths the template reads its output parameters from.
    outputs = {p["name"]: p["valueFrom"]["path"] for p in spec_templates["promote"]["outputs"]["parameters"]}
    assert outputs == {n: f"{args.outputs_dir}/{n}" for n in ("decision", "champion")}


def test_the_rollout_runs_only_after_a_promotion_and_patches_the_named_inference_service() -> None:
    manifest = templates.evaluate_promote_template(IMAGE, {})
    spec_templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    (promote,), (rollout, _) = spec_templates[templates.EVALUATE_PROMOTE_ENTRY]["steps"]
    assert promote["template"] == "promote" and rollout["template"] == templates.ROLLOUT
    assert rollout["when"] == (
        "'{{steps.promote.outputs.parameters.decision}}' == 'promoted' && "
        "'{{inputs.parameters.inference-service}}' != ''"
    )
    given = {p["name"]: p["value"] for p in rollout["arguments"]["parameters"]}
    assert given["version"] == "{{steps.promote.outputs.parameters.champion}}"
    resource = spec_templates[templates.ROLLOUT]["resource"]
    assert (resource["action"], resource["mergeStrategy"]) == ("patch", "merge")
    patch = yaml.safe_load(
        resource["manifest"]
        .replace("{{inputs.parameters.inference-service}}", "churn-champion")
        .replace("{{inputs.parameters.version}}", "7")
    )
    assert patch["metadata"] == {"name": "churn-champion", "namespace": "serving"}
    # the one field Pulumi ignores on a registry-served InferenceService
    assert patch["spec"] == {"predictor": {"annotations": {"serving.mlp.dev/model-version": "7"}}}


def test_the_vllm_rollout_runs_only_after_a_promotion_and_restarts_the_named_server() -> None:
    manifest = templates.evaluate_promote_template(IMAGE, {})
    spec_templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    _, (_, rollout) = spec_templates[templates.EVALUATE_PROMOTE_ENTRY]["steps"]
    assert rollout["template"] == templates.ROLLOUT_VLLM
    assert rollout["when"] == (
        "'{{steps.promote.outputs.parameters.decision}}' == 'promoted' && '{{inputs.parameters.vllm-server}}' != ''"
    )
    given = {p["name"]: p["value"] for p in rollout["arguments"]["parameters"]}
    assert given == {
        "vllm-server": "{{inputs.parameters.vllm-server}}",
        "version": "{{steps.promote.outputs.parameters.champion}}",
    }
    resource = spec_templates[templates.ROLLOUT_VLLM]["resource"]
    assert (resource["action"], resource["mergeStrategy"]) == ("patch", "merge")
    patch = yaml.safe_load(
        resource["manifest"]
        .replace("{{inputs.parameters.vllm-server}}", "assistant")
        .replace("{{inputs.parameters.version}}", "3")
    )
    assert (patch["apiVersion"], patch["kind"]) == ("apps/v1", "Deployment")
    assert patch["metadata"] == {"name": "vllm-assistant", "namespace": "serving"}
    # the pod template's annotation: a new value is a new ReplicaSet (a rollout); Pulumi ignores this one key
    assert patch["spec"] == {"template": {"metadata": {"annotations": {"serving.mlp.dev/model-version": "3"}}}}


def test_every_workflow_parameter_reaches_the_step() -> None:
    """A parameter declared but never passed on would be silently ignored."""
    for manifest in _shipped()[:2]:
        declared = {p["name"] for p in manifest["spec"]["arguments"]["parameters"]}
        used: set[str] = set()
        for t in manifest["spec"]["templates"]:
            container = t.get("container", {})
            whens = [s.get("when", "") for group in t.get("steps", []) for s in group]
            for text in [*container.get("args", []), container.get("image", ""), *whens]:
                used |= set(REFERENCE.findall(text))
        assert used == declared, manifest["metadata"]["name"]


def test_defaults_image_and_tracking_uri() -> None:
    for manifest in _shipped()[:2]:
        params = {p["name"]: p.get("value") for p in manifest["spec"]["arguments"]["parameters"]}
        assert params["image"] == IMAGE
        assert params["tracking-uri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
        assert "dataset" not in params or params["dataset"] is None  # required: no default


def test_pods_are_restricted_and_run_as_the_workflow_account() -> None:
    for manifest in _shipped():
        spec = manifest["spec"].get("workflowSpec", manifest["spec"])
        assert spec["serviceAccountName"] == WORKFLOW_SERVICE_ACCOUNT
    for manifest in _shipped()[:2]:
        for name, container in _containers(manifest).items():
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"], name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert container["resources"]["limits"]["memory"], name
            assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"], name


def test_retrain_runs_train_then_evaluate_with_arguments_the_templates_declare() -> None:
    cron = _retrain(greater_is_better=False)
    assert cron["spec"]["schedules"] == ["0 3 * * 1"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (entry,) = cron["spec"]["workflowSpec"]["templates"]
    (train_step,), (evaluate_step,) = entry["steps"]
    for step, manifest in (
        (train_step, templates.train_template(IMAGE, {})),
        (evaluate_step, templates.evaluate_promote_template(IMAGE, {})),
    ):
        ref = step["templateRef"]
        assert (ref["name"], ref["clusterScope"]) == (manifest["metadata"]["name"], True)
        target = {t["name"]: t for t in manifest["spec"]["templates"]}[ref["template"]]
        inputs = {p["name"]: p.get("value") for p in target["inputs"]["parameters"]}
        given = {p["name"]: p["value"] for p in step["arguments"]["parameters"]}
        assert set(given) <= set(inputs)
        assert {n for n, v in inputs.items() if v is None} <= set(given)  # every required input is given
    assert {p["name"]: p["value"] for p in evaluate_step["arguments"]["parameters"]}["greater-is-better"] == "false"


# --- config and plans -------------------------------------------------------------------------------------------


@pytest.fixture
def dev_config(stack_config: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return stack_config("dev")


def _issues(config: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.test.yaml")
    return [(i.key_path(), i.message) for i in info.value.issues]


def test_image_is_required_when_enabled(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    del config["ml-platform:pipelines"]["templates"]["image"]
    assert (
        "pipelines.templates.image",
        "required: an image with this package, mlflow and scikit-learn, pinned by tag or digest "
        "(no pinned image has them; see the pipelines documentation for how to build it)",
    ) in _issues(config)


def test_latest_is_refused(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["ml-platform:pipelines"]["templates"]["image"] = "registry.example/mlplatform-steps:latest"
    assert ("pipelines.templates.image", "`latest` is refused: pin a tag or a digest") in _issues(config)


def test_retrain_names_a_tenant(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    retrain = config["ml-platform:pipelines"]["templates"]["retrain"]
    retrain["nobody"] = retrain["research"]
    assert ("pipelines.templates.retrain.nobody", "unknown team 'nobody'; tenants: research") in _issues(config)


def test_templates_need_the_engine(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["ml-platform:pipelines"]["enabled"] = False
    assert ("pipelines.templates.enabled", "the templates need the engine; set pipelines.enabled") in _issues(config)


def test_dev_plans_the_templates_and_research_retraining(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    templates_planned = plan.of_type("kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate")
    assert sorted(r.inputs["metadata"]["name"] for r in templates_planned) == [
        "mlp-drift",
        "mlp-evaluate-promote",
        "mlp-retrain",
        "mlp-train",
        "mlp-train-distributed",
        "mlp-train-rayjob",
    ]
    crons = plan.of_type("kubernetes:argoproj.io/v1alpha1:CronWorkflow")
    assert sorted((c.inputs["metadata"]["namespace"], c.inputs["metadata"]["name"]) for c in crons) == [
        ("team-research", "mlp-drift"),
        ("team-research", "mlp-retrain"),
    ]
    (binding,) = [
        r
        for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
        if r.name == "pipelines-cluster-templates-reader-binding"
    ]
    assert [s["name"] for s in binding.inputs["subjects"]] == ["ml-research"]


def test_off_by_default_and_in_staging_and_prod(plans: dict[str, Plan]) -> None:
    assert PipelineTemplatesConfig().enabled is False
    for stack in ("staging", "prod"):
        assert not plans[stack].of_type("kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate"), stack
        assert not plans[stack].of_type("kubernetes:argoproj.io/v1alpha1:CronWorkflow"), stack


def _alert_groups(plan: Plan) -> list[str]:
    (rule,) = [
        r
        for r in plan.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        if r.name.endswith("-mlplatform-alerts")
    ]
    return [g["name"] for g in rule.inputs["spec"]["groups"]]


def test_drift_alert_is_in_the_rules_where_pipelines_run(plans: dict[str, Plan]) -> None:
    assert GROUP_NAME in _alert_groups(plans["dev"])
    for stack in ("staging", "prod"):
        assert GROUP_NAME not in _alert_groups(plans[stack]), stack
