"""Pure builders for the shipped workflow templates: the ClusterWorkflowTemplates `mlp-train` and
`mlp-evaluate-promote`, which run the steps of `infra.pipelines.steps` in a team's namespace, and a team's
`mlp-retrain` CronWorkflow, which runs one after the other on a schedule. No resources, no I/O.

Each step runs its module's entry point (`python -m mlplatform.infra.pipelines.steps.<name>`) in the image config
names (`pipelines.templates.image`: this package with mlflow and scikit-learn; no pinned image has them). The
workflow runs as the namespace's `workflow` service account (the team's AWS role, from the engine's
`workflowDefaults` and set here again), under Pod Security `restricted`: the root filesystem is read-only, so `/tmp`
is an emptyDir and HOME points there (MLflow and scikit-learn write caches under it).

After a promotion, `mlp-evaluate-promote` rolls out a registry-served InferenceService when its
`inference-service` parameter names one: a merge patch of the annotation `serving.mlp.dev/model-version` on
`spec.predictor.annotations` (KServe copies it to the predictor's pods, so a new value starts new pods, whose init
container resolves `models:/<name>@champion` again). The serving namespace is shared, so the `workflow` account may
patch only the InferenceServices config grants to its team (`promoted_by`: a Role naming each one); Pulumi ignores
that field of those InferenceServices, so the next `pulumi up` does not undo a rollout. A registry-served vLLM server
rolls out the same way when the `vllm-server` parameter names it: the annotation goes on its Deployment's pod
template (step `rollout-vllm`).

With MLflow's basic auth on, the train and promote steps sign in as the team (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`
from the Secret `mlflow-credentials` of the namespace the workflow runs in), and the promote step gives the
registry reader READ on the champion (`registry-reader`), which registry-served pods resolve as.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from mlplatform.infra.mlops.documents import (
    MLFLOW_IN_CLUSTER_URL,
    TEAM_CREDENTIALS_SECRET,
    RayJobShape,
    mlflow_credentials_env,
    ray_job,
)
from mlplatform.infra.pipelines.engine.documents import WORKFLOW_SERVICE_ACCOUNT, container_security_context
from mlplatform.infra.serving.documents import MODEL_VERSION_ANNOTATION, SERVING_NAMESPACE
from mlplatform.infra.tenancy.documents import WORKLOAD_SERVICE_ACCOUNT

API_VERSION = "argoproj.io/v1alpha1"
TRAIN_TEMPLATE = "mlp-train"
EVALUATE_PROMOTE_TEMPLATE = "mlp-evaluate-promote"
RETRAIN_CRON = "mlp-retrain"
RETRAIN_TEMPLATE = "mlp-retrain"
"""The ClusterWorkflowTemplate a drift alert submits (train, then evaluate and promote): the same steps as a team's
CronWorkflow `mlp-retrain`."""
RETRAIN_ENTRY = "retrain"
RETRAIN_ON_DRIFT = "mlp-retrain-on-drift"
DRIFT_DISCRIMINATOR = "drift"
"""The Argo server's event endpoint for drift alerts: `/api/v1/events/<team namespace>/drift`."""
TRAIN_ENTRY = "train"
TRAIN_RAYJOB_TEMPLATE = "mlp-train-rayjob"
TRAIN_RAYJOB_ENTRY = "train-rayjob"
TRAIN_DISTRIBUTED_TEMPLATE = "mlp-train-distributed"
TRAIN_DISTRIBUTED_ENTRY = "train-distributed"
RAYJOB_CHECK = "check"
RAYJOB_CREATE = "rayjob"
RAYJOB_SUCCESS = "status.jobDeploymentStatus == Complete,status.jobStatus == SUCCEEDED"
"""Argo's successCondition (a label selector over the RayJob): the job ran to the end and succeeded. KubeRay
writes Complete for a STOPPED job too (rayjob_controller.go, v1.7.0): that is no success."""
RAYJOB_FAILURE = "status.jobDeploymentStatus in (Failed,ValidationFailed)"
"""Argo's failureCondition: KubeRay gave up (the job failed, its deadline passed, or the spec was refused). A
stopped job matches neither; the step's own deadline ends it."""
EVALUATE_PROMOTE_ENTRY = "evaluate-promote"
STEPS_PACKAGE = "mlplatform.infra.pipelines.steps"
TRACKING_URI = MLFLOW_IN_CLUSTER_URL
"""The in-cluster MLflow service: the templates' default tracking URI (team namespaces may reach it)."""
WORKFLOW_NAMESPACE = "{{workflow.namespace}}"
"""Argo's global variable: the namespace the workflow runs in (the team's)."""
SCRATCH = "/tmp"
OUTPUTS = f"{SCRATCH}/outputs"
"""Where the promote step writes its decision and the champion version (the template's output parameters)."""
ROLLOUT = "rollout"
ROLLOUT_VLLM = "rollout-vllm"
DRIFT_TEMPLATE = "mlp-drift"
DRIFT_ENTRY = "drift"
DRIFT_CRON = "mlp-drift"
DRIFT_POD_LABEL = {"mlplatform.io/drift-job": "true"}
"""The drift step's pods: the only pods of a team namespace that may reach the Pushgateway."""


def _param(name: str, value: Any = None, description: str = "", enum: Sequence[str] = ()) -> dict[str, Any]:
    """A parameter; `value` is its default (a str, or an Output the resource resolves)."""
    out: dict[str, Any] = {"name": name}
    if value is not None:
        out["value"] = value
    if enum:
        out["enum"] = list(enum)
    if description:
        out["description"] = description
    return out


def _input(name: str) -> str:
    return "{{inputs.parameters." + name + "}}"


def _step_container(step: str, args: list[str], *, credentials: bool = False) -> dict[str, Any]:
    """A step's container: its module's entry point in the `image` parameter's image, restricted, /tmp writable;
    with `credentials`, signed in to MLflow as the team."""
    env = [{"name": "HOME", "value": SCRATCH}, {"name": "TMPDIR", "value": SCRATCH}]
    return {
        "image": _input("image"),
        "command": ["python", "-m", f"{STEPS_PACKAGE}.{step}"],
        "args": args,
        "env": env + (mlflow_credentials_env(TEAM_CREDENTIALS_SECRET) if credentials else []),
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
    }


def _step_template(
    name: str,
    inputs: dict[str, Any],
    step: str,
    args: list[str],
    resources: dict[str, Any],
    *,
    credentials: bool = False,
) -> dict[str, Any]:
    """A container template running `step` with `args`, its /tmp an emptyDir."""
    return {
        "name": name,
        "inputs": inputs,
        "container": {**_step_container(step, args, credentials=credentials), "resources": resources},
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "2Gi"}}],
    }


def _cluster_template(
    name: str, entry: str, parameters: list[dict[str, Any]], templates: list[dict[str, Any]], labels: Mapping[str, str]
) -> dict[str, Any]:
    """A ClusterWorkflowTemplate run by the `workflow` service account, its arguments `parameters`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterWorkflowTemplate",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "entrypoint": entry,
            "serviceAccountName": WORKFLOW_SERVICE_ACCOUNT,
            "arguments": {"parameters": parameters},
            "templates": templates,
        },
    }


def _inputs_of(parameters: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The entry template's inputs: the same parameters and defaults as the workflow's arguments (a submitted
    workflow's arguments become its entrypoint's inputs; a step calling the template by `templateRef` passes only
    what it sets, the rest take these defaults)."""
    return {"parameters": [dict(p) for p in parameters]}


def train_parameters(image: str) -> list[dict[str, Any]]:
    return [
        _param("dataset", description="CSV dataset URI (s3://bucket/key.csv): header row, numeric columns"),
        _param("model", description="registered model name"),
        _param("label", "label", "label column"),
        _param("tracking-uri", TRACKING_URI, "MLflow tracking URI (default: the in-cluster MLflow)"),
        _param("ray-address", "", "Ray head dashboard URL to run the fit as a Ray job; empty: in the pod"),
        _param("image", image, "image with mlplatform, mlflow and scikit-learn"),
    ]


def train_args() -> list[str]:
    """The train step's arguments, as parameter references (the tests parse them with the step's parser)."""
    return [
        "--model",
        _input("model"),
        "--dataset",
        _input("dataset"),
        "--label",
        _input("label"),
        "--tracking-uri",
        _input("tracking-uri"),
        # An empty address is falsy in the step: it trains in the pod.
        "--ray-address=" + _input("ray-address"),
        # One experiment per team and model: with MLflow's auth on, the team's account owns what it creates, and
        # a name another team already took would be refused.
        "--experiment=" + WORKFLOW_NAMESPACE + "/" + _input("model"),
    ]


def train_template(image: str, labels: Mapping[str, str], *, mlflow_auth: bool = False) -> dict[str, Any]:
    """`mlp-train`: fit, log, register the model and set alias `challenger` (the train step). With `mlflow_auth`
    the step signs in as the team's MLflow account."""
    parameters = train_parameters(image)
    resources = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    entry = _step_template(
        TRAIN_ENTRY, _inputs_of(parameters), "train", train_args(), resources, credentials=mlflow_auth
    )
    return _cluster_template(TRAIN_TEMPLATE, TRAIN_ENTRY, parameters, [entry], labels)


def train_rayjob_parameters(image: str) -> list[dict[str, Any]]:
    return [p for p in train_parameters(image) if p["name"] != "ray-address"]


def _train_args_in_place() -> list[str]:
    """The train step's arguments without `--ray-address`: it trains where it runs (a RayJob's driver)."""
    return [a for a in train_args() if not a.startswith("--ray-address")]


def train_rayjob_entrypoint() -> str:
    """The RayJob's entrypoint: the train step, as the `mlp-train` container runs it (the tests parse it with the
    step's parser and run it as a Ray job on a real head). It runs in the pod the driver lands on (a GPU worker)."""
    return " ".join(["python", "-m", f"{STEPS_PACKAGE}.train", *_train_args_in_place()])


def train_rayjob_template(
    image: str, labels: Mapping[str, str], shape: RayJobShape, *, mlflow_auth: bool = False
) -> dict[str, Any]:
    """`mlp-train-rayjob`: the train step as a KubeRay RayJob on a GPU pool, on a cluster made for the run (head and
    `shape.workers` GPU workers in the team's namespace, as the team's `workload` account, signed in to MLflow as
    the team when `mlflow_auth`), deleted after it. A resource template creates the RayJob (owned by the workflow,
    so deleted with it) and waits for KubeRay's verdict; the workflow's `workflow` account may create and read
    RayJobs in its namespace and nothing of the cluster they make."""
    return _rayjob_template(
        TRAIN_RAYJOB_TEMPLATE,
        TRAIN_RAYJOB_ENTRY,
        train_rayjob_parameters(image),
        entrypoint=train_rayjob_entrypoint(),
        entrypoint_gpus=shape.gpus_per_worker,
        check=("train", [*_train_args_in_place(), "--validate-only"]),
        shape=shape,
        labels=labels,
        mlflow_auth=mlflow_auth,
    )


def train_distributed_parameters(image: str, checkpoints_bucket: Any) -> list[dict[str, Any]]:
    return [
        _param("dataset", description="CSV dataset URI (s3://bucket/key.csv): header row, numeric columns"),
        _param("label", "label", "label column"),
        _param("epochs", "20", "passes over the dataset"),
        _param("checkpoints-bucket", checkpoints_bucket, "the lake's artifacts bucket (checkpoints/<team>/ in it)"),
        _param("image", image, "image with mlplatform and Ray (the steps' image)"),
    ]


def train_distributed_args(workers: int, gpus_per_worker: int) -> list[str]:
    """train_distributed's arguments: the run is the workflow's name, so a retried step resumes the same run."""
    return [
        "--dataset",
        _input("dataset"),
        "--label",
        _input("label"),
        "--epochs",
        _input("epochs"),
        "--checkpoints-bucket",
        _input("checkpoints-bucket"),
        "--team-namespace",
        WORKFLOW_NAMESPACE,
        "--run",
        "{{workflow.name}}",
        "--workers",
        str(workers),
        "--gpus-per-worker",
        str(gpus_per_worker),
    ]


def train_distributed_template(
    image: str, labels: Mapping[str, str], shape: RayJobShape, checkpoints_bucket: Any, *, mlflow_auth: bool = False
) -> dict[str, Any]:
    """`mlp-train-distributed`: data-parallel training with Ray Train on a RayJob's cluster (`shape`), one Ray Train
    worker per GPU worker, checkpointing to `s3://<checkpoints-bucket>/checkpoints/<team>/<workflow name>/` with
    the team's role. The driver runs on the head (no GPU of its own). A killed worker or a drained node resumes
    from the latest checkpoint inside the job; a retried step (same workflow name) resumes the run."""
    args = train_distributed_args(shape.workers, shape.gpus_per_worker)
    return _rayjob_template(
        TRAIN_DISTRIBUTED_TEMPLATE,
        TRAIN_DISTRIBUTED_ENTRY,
        train_distributed_parameters(image, checkpoints_bucket),
        entrypoint=" ".join(["python", "-m", f"{STEPS_PACKAGE}.train_distributed", *args]),
        entrypoint_gpus=0,
        check=("train_distributed", [*args, "--validate-only"]),
        shape=shape,
        labels=labels,
        mlflow_auth=mlflow_auth,
    )


def _rayjob_template(
    name: str,
    entry_name: str,
    parameters: list[dict[str, Any]],
    *,
    entrypoint: str,
    entrypoint_gpus: int,
    check: tuple[str, list[str]],
    shape: RayJobShape,
    labels: Mapping[str, str],
    mlflow_auth: bool,
) -> dict[str, Any]:
    """A ClusterWorkflowTemplate that checks its values with `check` (a step's own parser, `--validate-only`), then
    creates a RayJob running `entrypoint` and waits for KubeRay's verdict."""
    manifest = ray_job(
        shape,
        image=_input("image"),
        entrypoint=entrypoint,
        entrypoint_gpus=entrypoint_gpus,
        generate_name="mlp-train-",
        service_account=WORKLOAD_SERVICE_ACCOUNT,
        credentials=TEAM_CREDENTIALS_SECRET if mlflow_auth else None,
        labels=labels,
    )
    declared = {"parameters": [{"name": p["name"]} for p in parameters]}
    passed = {"parameters": [{"name": p["name"], "value": _input(p["name"])} for p in parameters]}
    # The values go into the RayJob's YAML and into its entrypoint, which Ray runs through a shell: the check
    # step (the step's own parser, on argv) refuses anything but plain tokens first.
    resources = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    check_step = _step_template(RAYJOB_CHECK, declared, check[0], check[1], resources)
    create = {
        "name": RAYJOB_CREATE,
        "inputs": declared,
        # KubeRay's own deadline ends the job first; this ends a step whose job was stopped (neither condition).
        "activeDeadlineSeconds": shape.active_deadline_seconds + 600,
        "resource": {
            "action": "create",
            "setOwnerReference": True,
            "successCondition": RAYJOB_SUCCESS,
            "failureCondition": RAYJOB_FAILURE,
            "manifest": yaml.safe_dump(manifest, sort_keys=False, width=1000),
        },
        "outputs": {"parameters": [{"name": "ray-job", "valueFrom": {"jsonPath": "{.metadata.name}"}}]},
    }
    entry = {
        "name": entry_name,
        "inputs": _inputs_of(parameters),
        "steps": [
            [{"name": RAYJOB_CHECK, "template": RAYJOB_CHECK, "arguments": passed}],
            [{"name": RAYJOB_CREATE, "template": RAYJOB_CREATE, "arguments": passed}],
        ],
    }
    return _cluster_template(name, entry_name, parameters, [entry, check_step, create], labels)


def evaluate_parameters(image: str, registry_reader: str = "") -> list[dict[str, Any]]:
    return [
        _param("model", description="registered model name"),
        _param("metric", "accuracy", "metric both versions' training runs logged"),
        _param("greater-is-better", "true", "false for losses and errors", enum=("true", "false")),
        _param("min-improvement", "0", "least improvement over the champion to promote"),
        _param("tracking-uri", TRACKING_URI, "MLflow tracking URI (default: the in-cluster MLflow)"),
        _param(
            "inference-service",
            "",
            "a registry-served InferenceService (serving namespace) to roll out after a promotion; empty: none",
        ),
        _param(
            "vllm-server",
            "",
            "a registry-served vLLM server (its config name; the Deployment vllm-<name> in the serving namespace) to "
            "roll out after a promotion; empty: none",
        ),
        _param(
            "registry-reader",
            registry_reader,
            "the MLflow account registry-served pods sign in as: given READ on the model and the champion's "
            "experiment; empty: none",
        ),
        _param("image", image, "image with mlplatform, mlflow and scikit-learn"),
    ]


def evaluate_args() -> list[str]:
    return [
        "--model",
        _input("model"),
        "--metric",
        _input("metric"),
        "--greater-is-better",
        _input("greater-is-better"),
        "--min-improvement",
        _input("min-improvement"),
        "--tracking-uri",
        _input("tracking-uri"),
        "--outputs-dir",
        OUTPUTS,
        "--registry-reader=" + _input("registry-reader"),
    ]


def _version_patch(api_version: str, kind: str, name: str, path: Sequence[str]) -> str:
    """A merge patch (YAML) that sets the model version annotation at `path` of object `name` in the serving
    namespace to the step's `version` input."""
    annotated: dict[str, Any] = {"annotations": {MODEL_VERSION_ANNOTATION: _input("version")}}
    for key in reversed(path):
        annotated = {key: annotated}
    patch = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": SERVING_NAMESPACE}}
    return yaml.safe_dump({**patch, "spec": annotated}, sort_keys=False)


def rollout_manifest() -> str:
    """The merge patch of the rollout step: a new model version annotation on the predictor's pods."""
    return _version_patch("serving.kserve.io/v1beta1", "InferenceService", _input("inference-service"), ["predictor"])


def vllm_rollout_manifest() -> str:
    """The merge patch of the vLLM rollout step: a new model version annotation on the server's pod template (what
    `kubectl rollout restart` does with its own annotation), so the Deployment rolls out and each new replica's
    init container resolves the alias again."""
    return _version_patch("apps/v1", "Deployment", "vllm-" + _input("vllm-server"), ["template", "metadata"])


def evaluate_promote_template(
    image: str, labels: Mapping[str, str], *, mlflow_auth: bool = False, registry_reader: str = ""
) -> dict[str, Any]:
    """`mlp-evaluate-promote`: compare challenger and champion on a metric and move `champion` when the challenger
    wins (the evaluate_and_promote step), giving `registry_reader` READ on the champion; then, if it promoted and
    `inference-service` names one, roll that InferenceService out (a resource template: a merge patch, with the
    `workflow` account's own rights). With `mlflow_auth` the step signs in as the team's MLflow account."""
    parameters = evaluate_parameters(image, registry_reader)
    # The rollout steps: (template, the parameter naming its target, the merge patch), one per kind of server.
    rollouts = (
        (ROLLOUT, "inference-service", rollout_manifest()),
        (ROLLOUT_VLLM, "vllm-server", vllm_rollout_manifest()),
    )
    targets = {target for _, target, _ in rollouts}
    step_inputs = [n for n in (p["name"] for p in parameters) if n not in targets]
    resources = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    declared = {"parameters": [{"name": n} for n in step_inputs]}
    promote = _step_template(
        "promote", declared, "evaluate_and_promote", evaluate_args(), resources, credentials=mlflow_auth
    )
    promote["outputs"] = {
        "parameters": [
            {"name": "decision", "valueFrom": {"path": f"{OUTPUTS}/decision"}},
            {"name": "champion", "valueFrom": {"path": f"{OUTPUTS}/champion"}},
        ]
    }
    decided = "{{steps.promote.outputs.parameters."
    rollout_templates = [
        {
            "name": name,
            "inputs": {"parameters": [{"name": target}, {"name": "version"}]},
            "resource": {"action": "patch", "mergeStrategy": "merge", "manifest": manifest},
        }
        for name, target, manifest in rollouts
    ]
    rollout_steps = [
        {
            "name": name,
            "template": name,
            "arguments": {
                "parameters": [
                    {"name": target, "value": _input(target)},
                    {"name": "version", "value": decided + "champion}}"},
                ]
            },
            "when": f"'{decided}decision}}}}' == 'promoted' && '{_input(target)}' != ''",
        }
        for name, target, _ in rollouts
    ]
    steps = [
        [
            {
                "name": "promote",
                "template": "promote",
                "arguments": {"parameters": [{"name": n, "value": _input(n)} for n in step_inputs]},
            }
        ],
        rollout_steps,
    ]
    entry = {"name": EVALUATE_PROMOTE_ENTRY, "inputs": _inputs_of(parameters), "steps": steps}
    return _cluster_template(
        EVALUATE_PROMOTE_TEMPLATE, EVALUATE_PROMOTE_ENTRY, parameters, [entry, promote, *rollout_templates], labels
    )


def retrain_parameters() -> list[dict[str, Any]]:
    return [
        _param("model", description="registered model name"),
        _param("dataset", description="CSV dataset URI the train step reads"),
        _param("label", "label", "label column"),
        _param("metric", "accuracy", "metric both versions' training runs logged"),
        _param("greater-is-better", "true", "false for losses and errors", enum=("true", "false")),
        _param("min-improvement", "0", "least improvement over the champion to promote"),
        _param("inference-service", "", "a registry-served InferenceService to roll out after a promotion"),
    ]


def _retrain_steps(values: Mapping[str, str]) -> list[list[dict[str, Any]]]:
    """train, then evaluate-promote, by reference to the shipped templates, with `values` (literal, or references
    to the calling template's inputs)."""

    def ref(template: str, entry: str) -> dict[str, Any]:
        return {"name": template, "template": entry, "clusterScope": True}

    def arguments(*names: str) -> dict[str, Any]:
        return {"parameters": [{"name": n, "value": values[n]} for n in names]}

    return [
        [
            {
                "name": "train",
                "templateRef": ref(TRAIN_TEMPLATE, TRAIN_ENTRY),
                "arguments": arguments("model", "dataset", "label"),
            }
        ],
        [
            {
                "name": "evaluate-promote",
                "templateRef": ref(EVALUATE_PROMOTE_TEMPLATE, EVALUATE_PROMOTE_ENTRY),
                "arguments": arguments("model", "metric", "greater-is-better", "min-improvement", "inference-service"),
            }
        ],
    ]


def retrain_template(labels: Mapping[str, str]) -> dict[str, Any]:
    """`mlp-retrain`: what a drift alert submits (through a team's WorkflowEventBinding)."""
    parameters = retrain_parameters()
    values = {p["name"]: _input(p["name"]) for p in parameters}
    entry = {"name": RETRAIN_ENTRY, "inputs": _inputs_of(parameters), "steps": _retrain_steps(values)}
    return _cluster_template(RETRAIN_TEMPLATE, RETRAIN_ENTRY, parameters, [entry], labels)


def _retrain_values(
    *,
    model: str,
    dataset: str,
    label: str,
    metric: str,
    greater_is_better: bool,
    min_improvement: float,
    inference_service: str | None,
) -> dict[str, str]:
    return {
        "model": model,
        "dataset": dataset,
        "label": label,
        "metric": metric,
        "greater-is-better": "true" if greater_is_better else "false",
        "min-improvement": repr(min_improvement),
        "inference-service": inference_service or "",
    }


def drift_selector(model: str) -> str:
    """The binding's event selector (expr-lang): a firing Alertmanager notification about this model, sent to the
    drift endpoint. `?.` because the endpoint accepts any JSON (Argo's docs: guard every field)."""
    return (
        f'discriminator == "{DRIFT_DISCRIMINATOR}" && payload?.status == "firing" '
        f"&& payload?.commonLabels?.model == {json.dumps(model)}"
    )


def retrain_event_binding(
    *,
    namespace: str,
    model: str,
    dataset: str,
    label: str,
    metric: str,
    greater_is_better: bool,
    min_improvement: float,
    inference_service: str | None,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A team's WorkflowEventBinding: a drift alert about its model submits `mlp-retrain` with its retraining's
    arguments. Argo evaluates every argument as an expression (`valueFrom.event`), so the config's values go in as
    string literals (JSON quoting is expr-lang's)."""
    values = _retrain_values(
        model=model,
        dataset=dataset,
        label=label,
        metric=metric,
        greater_is_better=greater_is_better,
        min_improvement=min_improvement,
        inference_service=inference_service,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowEventBinding",
        "metadata": {"name": RETRAIN_ON_DRIFT, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "event": {"selector": drift_selector(model)},
            "submit": {
                "workflowTemplateRef": {"name": RETRAIN_TEMPLATE, "clusterScope": True},
                "arguments": {
                    "parameters": [{"name": k, "valueFrom": {"event": json.dumps(v)}} for k, v in values.items()]
                },
            },
        },
    }


def retrain_cron_workflow(
    *,
    namespace: str,
    schedule: str,
    model: str,
    dataset: str,
    label: str,
    metric: str,
    greater_is_better: bool,
    min_improvement: float,
    suspend: bool,
    labels: Mapping[str, str],
    inference_service: str | None = None,
) -> dict[str, Any]:
    """A team's `mlp-retrain`: on the schedule, `mlp-train` then `mlp-evaluate-promote` (templates referenced by
    name, so a new image in config reaches the next run). One at a time (`Forbid`)."""

    values = _retrain_values(
        model=model,
        dataset=dataset,
        label=label,
        metric=metric,
        greater_is_better=greater_is_better,
        min_improvement=min_improvement,
        inference_service=inference_service,
    )
    return _cron_workflow(RETRAIN_CRON, namespace, schedule, suspend, labels, "retrain", _retrain_steps(values))


def _cron_workflow(
    name: str,
    namespace: str,
    schedule: str,
    suspend: bool,
    labels: Mapping[str, str],
    entry: str,
    steps: list[list[dict[str, Any]]],
) -> dict[str, Any]:
    """A team's CronWorkflow `name`: on the schedule (UTC), one run at a time (`Forbid`), as the namespace's
    `workflow` account, its one template `entry` running `steps`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CronWorkflow",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "schedules": [schedule],
            "timezone": "UTC",
            "concurrencyPolicy": "Forbid",
            "suspend": suspend,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "workflowSpec": {
                "entrypoint": entry,
                "serviceAccountName": WORKFLOW_SERVICE_ACCOUNT,
                "templates": [{"name": entry, "steps": steps}],
            },
        },
    }


def drift_parameters(image: str, pushgateway: str) -> list[dict[str, Any]]:
    return [
        _param("model", description="registered model name (the gauges' `model` label)"),
        _param("inference-service", description="the InferenceService whose logged requests are read"),
        _param("reference", description="the training CSV (the reference distribution)"),
        _param("label", "label", "label column of the reference (dropped)"),
        _param("logs", description="s3://bucket/prefix/ of the InferenceService's logged requests"),
        _param("window-hours", "24", "requests logged in this many hours"),
        _param("pushgateway", pushgateway, "Pushgateway base URL"),
        _param("image", image, "image with mlplatform, mlflow and scikit-learn"),
    ]


def drift_args() -> list[str]:
    return [
        "--model",
        _input("model"),
        "--inference-service",
        _input("inference-service"),
        "--reference",
        _input("reference"),
        "--label",
        _input("label"),
        "--logs",
        _input("logs"),
        "--window-hours",
        _input("window-hours"),
        "--pushgateway",
        _input("pushgateway"),
    ]


def drift_template(image: str, pushgateway: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """`mlp-drift`: PSI of an InferenceService's logged requests against the training reference, pushed to the
    platform's Pushgateway (the drift step). Its pods carry `DRIFT_POD_LABEL`."""
    parameters = drift_parameters(image, pushgateway)
    resources = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    entry = _step_template(DRIFT_ENTRY, _inputs_of(parameters), "drift", drift_args(), resources)
    entry["metadata"] = {"labels": dict(DRIFT_POD_LABEL)}
    return _cluster_template(DRIFT_TEMPLATE, DRIFT_ENTRY, parameters, [entry], labels)


def drift_cron_workflow(
    *,
    namespace: str,
    schedule: str,
    model: str,
    inference_service: str,
    reference: str,
    label: str,
    logs: str,
    suspend: bool,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A team's `mlp-drift`: on the schedule, `mlp-drift` over its InferenceService's logged requests. One at a
    time (`Forbid`); the alert's `for` spans more than one run."""
    values = {
        "model": model,
        "inference-service": inference_service,
        "reference": reference,
        "label": label,
        "logs": logs,
    }
    step = {
        "name": "drift",
        "templateRef": {"name": DRIFT_TEMPLATE, "template": DRIFT_ENTRY, "clusterScope": True},
        "arguments": {"parameters": [{"name": k, "value": v} for k, v in values.items()]},
    }
    return _cron_workflow(DRIFT_CRON, namespace, schedule, suspend, labels, "drift", [[step]])
