"""`mlp-train-rayjob`: the train step as a KubeRay RayJob on a GPU pool, as the dev plan installs it.

What KubeRay v1.7.0 will do with the RayJob the resource step creates is checked on the manifest after Argo's
parameter substitution: valid against the upstream RayJob CRD; the pods KubeRay makes from it (the workers'
`wait-gcs-ready` init container added, as in tests/test_ray_tenancy.py) pass Pod Security `restricted` and run as
the team's `workload` account, signed in to MLflow as the team; the workflow's account may create and read RayJobs
and nothing else new; the cluster's pods reach each other, MLflow, and the operator reaches the head's dashboard.
The entrypoint is the train step's command line (its parser reads it; tests/test_pipeline_steps.py runs it as a
Ray job on a real head against a real MLflow server). Argo's condition parser (Go) is not run here: a small
label-selector evaluator checks the success and failure conditions against KubeRay's status values.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shlex
from typing import Any

import pytest
import yaml

from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.infra.mlops.documents import (
    KUBERAY_INIT_CPU,
    KUBERAY_INIT_MEMORY,
    MLFLOW_PORT,
    MLFLOW_SELECTOR,
    RAY_HEAD_SELECTOR,
    TEAM_CREDENTIALS_SECRET,
)
from mlplatform.infra.pipelines import templates
from mlplatform.infra.pipelines.engine.documents import EXECUTOR_ROLE
from mlplatform.infra.pipelines.steps import train
from mlplatform.infra.pipelines.steps._common import UsageError
from mlplatform.mlp.k8s_schema import object_of
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.k8s_schema import validate_custom_resource
from tests.network_policy import Destination, Pod, connection_allowed, plan_namespace_labels, plan_policies
from tests.test_ray_tenancy import _restricted_violations

CWT = "kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate"
VALUES = {
    "model": "churn",
    "dataset": "s3://lake/teams/research/churn.csv",
    "label": "churned",
    "tracking-uri": "http://mlflow.mlflow.svc.cluster.local:5000",
    "image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/mlplatform-steps:0.1.0",
}


def _template(plan: Plan) -> dict[str, Any]:
    (cwt,) = [
        object_of(r) for r in plan.of_type(CWT) if r.inputs["metadata"]["name"] == templates.TRAIN_RAYJOB_TEMPLATE
    ]
    return cwt


def _step(plan: Plan, name: str) -> dict[str, Any]:
    (step,) = [t for t in _template(plan)["spec"]["templates"] if t["name"] == name]
    return step


def _rayjob(plan: Plan, namespace: str = "team-research", values: dict[str, str] | None = None) -> dict[str, Any]:
    """The RayJob the resource step creates, after Argo's substitution (in `namespace`)."""
    entry = _step(plan, templates.RAYJOB_CREATE)
    text = entry["resource"]["manifest"].replace("{{workflow.namespace}}", namespace)
    for name, value in {**VALUES, **(values or {})}.items():
        text = text.replace("{{inputs.parameters." + name + "}}", value)
    assert "{{" not in text, text
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _kuberay_pods(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pod specs KubeRay v1.7.0 makes from the RayJob's cluster (no autoscaler: the head as written; each
    worker with the `wait-gcs-ready` init container, the Ray container's securityContext, 200m / 256Mi)."""
    cluster = job["spec"]["rayClusterSpec"]
    pods = {"head": copy.deepcopy(cluster["headGroupSpec"]["template"]["spec"])}
    for group in cluster["workerGroupSpecs"]:
        spec = copy.deepcopy(group["template"]["spec"])
        ray = spec["containers"][0]
        spec["initContainers"] = [
            {
                "name": "wait-gcs-ready",
                "image": ray["image"],
                "securityContext": copy.deepcopy(ray["securityContext"]),
                "resources": {
                    "requests": {"cpu": KUBERAY_INIT_CPU, "memory": KUBERAY_INIT_MEMORY},
                    "limits": {"cpu": KUBERAY_INIT_CPU, "memory": KUBERAY_INIT_MEMORY},
                },
            }
        ]
        pods[group["groupName"]] = spec
    return pods


def test_the_dev_plan_installs_it_and_the_rayjob_is_valid_against_kuberays_crd(plans: dict[str, Plan]) -> None:
    job = _rayjob(plans["dev"])
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert validate_custom_resource(job) == []
    spec = job["spec"]
    # The operator submits and follows the job (no submitter pod), and removes the cluster after it.
    assert spec["submissionMode"] == "HTTPMode"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 14_400
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"} and cluster["enableInTreeAutoscaling"] is False
    # KubeRay refuses token auth below Ray 2.52.0 (validation.go, v1.7.0)
    assert tuple(int(p) for p in cluster["rayVersion"].split(".")) >= (2, 52, 0)
    (group,) = cluster["workerGroupSpecs"]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 1
    assert spec["entrypointNumGpus"] == 1 and group["rayStartParams"]["num-gpus"] == "1"
    assert cluster["headGroupSpec"]["rayStartParams"]["num-gpus"] == "0"  # the driver lands on the GPU worker
    broken = copy.deepcopy(job)
    broken["spec"]["entrypointNumGpus"] = "one"
    assert validate_custom_resource(broken)  # the check sees the CRD's types


def test_the_clusters_pods_are_restricted_and_run_as_the_team_on_the_pool(plans: dict[str, Plan]) -> None:
    pods = _kuberay_pods(_rayjob(plans["dev"]))
    assert {name: _restricted_violations(spec) for name, spec in pods.items()} == {"head": [], "gpu": []}
    for name, spec in pods.items():
        assert spec["serviceAccountName"] == "workload" and spec["automountServiceAccountToken"] is False, name
        (ray,) = spec["containers"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in ray["env"] if "valueFrom" in e}
        assert refs == {
            "MLFLOW_TRACKING_USERNAME": {"name": TEAM_CREDENTIALS_SECRET, "key": "username"},
            "MLFLOW_TRACKING_PASSWORD": {"name": TEAM_CREDENTIALS_SECRET, "key": "password"},
        }
        assert {"name": "HOME", "value": "/tmp/ray"} in ray["env"]
        assert {"mountPath": "/tmp/ray", "name": "ray-logs"} in ray["volumeMounts"]  # HOME is writable
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), f"{name}/{container['name']}"
    worker = pods["gpu"]
    assert worker["nodeSelector"] == {"mlplatform.io/gpu-pool": "shared"}
    assert any(t.get("key") == "nvidia.com/gpu" for t in worker["tolerations"])
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_entrypoint_is_the_train_step_in_the_teams_experiment(plans: dict[str, Plan]) -> None:
    command = shlex.split(_rayjob(plans["dev"], "team-research")["spec"]["entrypoint"])
    assert command[:3] == ["python", "-m", "mlplatform.infra.pipelines.steps.train"]
    args = train.build_parser().parse_args(command[3:])
    assert (args.model, args.dataset, args.label, args.tracking_uri) == (
        "churn",
        VALUES["dataset"],
        "churned",
        VALUES["tracking-uri"],
    )
    assert args.experiment == "team-research/churn" and not args.ray_address  # it trains where it runs


def test_values_that_would_break_the_yaml_or_the_shell_are_refused_before_the_rayjob(plans: dict[str, Plan]) -> None:
    """The check step runs first, in the steps' image, with the same values as argv (no YAML, no shell between):
    the train step's parser refuses anything but plain tokens, so the RayJob is created only from safe values."""
    plan = plans["dev"]
    entry = _step(plan, templates.TRAIN_RAYJOB_ENTRY)
    assert [[s["template"] for s in group] for group in entry["steps"]] == [
        [templates.RAYJOB_CHECK],
        [templates.RAYJOB_CREATE],
    ]
    container = _step(plan, templates.RAYJOB_CHECK)["container"]
    assert container["command"] == ["python", "-m", "mlplatform.infra.pipelines.steps.train"]

    def checked(**values: str) -> list[str]:
        args = [a.replace("{{workflow.namespace}}", "team-research") for a in container["args"]]
        for name, value in {**VALUES, **values}.items():
            args = [a.replace("{{inputs.parameters." + name + "}}", value) for a in args]
        return args

    assert train.main(checked())["valid"]["experiment"] == "team-research/churn"
    for name, value in {
        "dataset": "s3://lake/x.csv; curl evil",
        "model": "churn: {x}",
        "label": "a #b",
        "tracking-uri": "http://$(id)",
    }.items():
        with pytest.raises(UsageError, match="not a plain token"):
            train.main(checked(**{name: value}))
    # and what passes makes a RayJob whose entrypoint the shell splits back into the same arguments
    job = _rayjob(plan, values={"dataset": "s3://lake/teams/research/churn-2026.csv"})
    assert shlex.split(job["spec"]["entrypoint"])[6] == "s3://lake/teams/research/churn-2026.csv"


# --- Argo's verdict on KubeRay's status -----------------------------------------------------------------------


def _selector_matches(selector: str, obj: dict[str, Any]) -> bool:
    """Argo's resource conditions are label-selector requirements over JSON paths (`a.b == v`, `a.b in (x,y)`),
    all of which must hold."""

    def value(path: str) -> str:
        node: Any = obj
        for part in path.split("."):
            node = node.get(part, "") if isinstance(node, dict) else ""
        return str(node)

    for requirement in re.split(r",(?![^()]*\))", selector):  # commas outside parentheses
        requirement = requirement.strip()
        if " in (" in requirement:
            path, values = requirement.split(" in (", 1)
            if value(path.strip()) not in {v.strip() for v in values.rstrip(")").split(",")}:
                return False
        else:
            path, wanted = (p.strip() for p in re.split(r"==|=", requirement, maxsplit=1))
            if value(path) != wanted:
                return False
    return True


def _verdict(job_deployment_status: str, job_status: str) -> str:
    status = {"status": {"jobDeploymentStatus": job_deployment_status, "jobStatus": job_status}}
    if _selector_matches(templates.RAYJOB_FAILURE, status):
        return "failed"
    if _selector_matches(templates.RAYJOB_SUCCESS, status):
        return "succeeded"
    return "waiting"


@pytest.mark.parametrize(
    ("deployment", "job", "verdict"),
    [
        ("Initializing", "", "waiting"),
        ("Running", "RUNNING", "waiting"),
        ("Running", "SUCCEEDED", "waiting"),  # KubeRay writes Complete once it has seen the end
        ("Complete", "SUCCEEDED", "succeeded"),
        ("Complete", "STOPPED", "waiting"),  # stopped is no success; the step's deadline ends it
        ("Retrying", "FAILED", "waiting"),
        ("Failed", "FAILED", "failed"),
        ("Failed", "RUNNING", "failed"),  # the deadline passed
        ("ValidationFailed", "", "failed"),
    ],
)
def test_the_step_ends_on_kuberays_verdict(plans: dict[str, Plan], deployment: str, job: str, verdict: str) -> None:
    entry = _step(plans["dev"], templates.RAYJOB_CREATE)
    assert entry["resource"]["successCondition"] == templates.RAYJOB_SUCCESS
    assert entry["resource"]["failureCondition"] == templates.RAYJOB_FAILURE
    assert entry["resource"]["action"] == "create" and entry["resource"]["setOwnerReference"] is True
    assert _verdict(deployment, job) == verdict


# --- rights and reachability ----------------------------------------------------------------------------------


def test_the_workflow_account_may_create_and_read_rayjobs_and_nothing_else(plans: dict[str, Plan]) -> None:
    def executor_rules(plan: Plan) -> list[dict[str, Any]]:
        (role,) = [
            object_of(r)
            for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
            if object_of(r)["metadata"]["name"] == EXECUTOR_ROLE
            and object_of(r)["metadata"]["namespace"] == "team-research"
        ]
        rules: list[dict[str, Any]] = role["rules"]
        return rules

    assert executor_rules(plans["dev"]) == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list", "watch"]},
    ]


def test_the_clusters_pods_reach_each_other_mlflow_and_the_operator_reaches_the_dashboard(
    plans: dict[str, Plan],
) -> None:
    plan = plans["dev"]
    network, cluster = plan_policies(plan)

    def pod(namespace: str, labels: dict[str, str]) -> Pod:
        return Pod(namespace, labels, plan_namespace_labels(plan, namespace))

    job = _rayjob(plan)
    rc = job["spec"]["rayClusterSpec"]
    # KubeRay's labels on the pods it makes, on top of the templates' (common/pod.go, v1.7.0)
    head_labels = {**rc["headGroupSpec"]["template"]["metadata"]["labels"], **RAY_HEAD_SELECTOR}
    worker_labels = {**rc["workerGroupSpecs"][0]["template"]["metadata"]["labels"], "ray.io/node-type": "worker"}
    head, worker = pod("team-research", head_labels), pod("team-research", worker_labels)
    operator = pod("kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"})
    mlflow = Destination(MLFLOW_PORT, pod=pod("mlflow", dict(MLFLOW_SELECTOR)))
    cases = {
        "worker -> head GCS 6379": (worker, Destination(6379, pod=head), True),
        "head -> worker 10002": (head, Destination(10002, pod=worker), True),
        "operator -> head dashboard 8265 (submits, follows)": (operator, Destination(8265, pod=head), True),
        "worker (the driver) -> MLflow": (worker, mlflow, True),
        "operator -> worker 8265": (operator, Destination(8265, pod=worker), False),
    }
    got = {label: connection_allowed(network, cluster, src, dest) for label, (src, dest, _) in cases.items()}
    assert got == {label: want for label, (_, _, want) in cases.items()}


def test_kuberay_watches_every_team_that_may_submit_it(project: Project) -> None:
    """Any team may submit the cluster-wide template, and KubeRay ignores a RayJob in a namespace it does not watch:
    a team with no Ray cluster of its own is watched too, and the operator reaches its RayJobs' heads there."""
    stack = load_stack(project, "dev")
    config = copy.deepcopy(stack.config)
    config["ml-platform:tenants"]["applied"] = {"groups": ["ml-applied"], "quota": {"gpus": 2}}
    plan = plan_stack(dataclasses.replace(stack, config=config))
    assert "ray" not in {c.get("team") for c in config["ml-platform:ray"]["clusters"].values()} - {"research"}
    values = plan.get("ray-kuberay-operator").inputs["values"]
    assert values["watchNamespace"] == ["ray", "team-applied", "team-research"]
    network, cluster = plan_policies(plan)
    rc = _rayjob(plan, "team-applied")["spec"]["rayClusterSpec"]
    head = Pod(
        "team-applied",
        {**rc["headGroupSpec"]["template"]["metadata"]["labels"], **RAY_HEAD_SELECTOR},
        plan_namespace_labels(plan, "team-applied"),
    )
    operator = Pod(
        "kuberay-system",
        {"app.kubernetes.io/name": "kuberay-operator"},
        plan_namespace_labels(plan, "kuberay-system"),
    )
    assert connection_allowed(network, cluster, operator, Destination(8265, pod=head))


# --- config ---------------------------------------------------------------------------------------------------


def _issues(config: dict[str, Any]) -> dict[str, str]:
    try:
        validate_config(config, "stacks/Pulumi.test.yaml")
    except ConfigError as error:
        return {i.key_path(): i.message for i in error.issues}
    return {}


def test_config_refuses_a_job_that_could_never_run(stack_config: Any) -> None:
    config = copy.deepcopy(stack_config("dev"))
    job = config["ml-platform:pipelines"]["templates"]["ray_job"]
    assert not [k for k in _issues(config) if "ray_job" in k]
    job["pool"] = "nope"
    assert _issues(config)["pipelines.templates.ray_job.pool"].startswith("unknown GPU pool 'nope'")
    job.update(pool="shared", gpus_per_worker=8)
    assert "do not fit on any node of pool 'shared'" in _issues(config)["pipelines.templates.ray_job.gpus_per_worker"]
    job.update(gpus_per_worker=1, workers=5)  # 5 GPUs; research's quota has 4
    assert "more than team research's quota of 4 GPUs" in _issues(config)["tenants.research.quota.gpus"]
    job["workers"] = 1
    config["ml-platform:ray"]["enabled"] = False
    assert _issues(config)["pipelines.templates.ray_job"] == "KubeRay runs RayJobs; set ray.enabled"


def test_staging_and_prod_install_no_rayjob_template(plans: dict[str, Plan]) -> None:
    for stack in ("staging", "prod"):
        assert not plans[stack].of_type(CWT), stack
