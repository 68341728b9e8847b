"""Pure builders for model serving: KServe InferenceServices and the vLLM ServingRuntime, vLLM server Deployments,
their KEDA autoscaling, and the vLLM command line checked against the pinned vLLM release. No resources, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from mlplatform.infra.k8s_documents import GPU_TOLERATION, pod_security, restricted_container_security
from mlplatform.infra.mlops.documents import mlflow_credentials_env

if TYPE_CHECKING:
    from mlplatform.infra.registry.documents import ImageRef

SERVING_NAMESPACE = "serving"
KSERVE_NAMESPACE = "kserve"
CERT_MANAGER_NAMESPACE = "cert-manager"
KEDA_NAMESPACE = "keda"
MODEL_SERVICE_ACCOUNT = "kserve-models"
VLLM_PORT = 8000
VLLM_RUNTIME = "vllm"
"""Name of the platform's vLLM ServingRuntime; an InferenceService with `runtime: vllm` uses it."""
VLLM_MODEL_FORMAT = "vllm"
KSERVE_MODEL_DIR = "/mnt/models"
MODELS_DIR = "/models"
HF_TOKEN_DIR = "/var/run/secrets/huggingface"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
REGISTRY_STORAGE_CONTAINER = "mlp-mlflow-registry"
"""The ClusterStorageContainer that resolves `models:/` URIs through MLflow (the only one for that prefix)."""
REGISTRY_URI_PREFIX = "models:/"
REGISTRY_POD_LABEL = {"serving.mlp.dev/model-registry": "mlflow"}
"""On the pods of a predictor whose model comes from the registry: the serving namespace's policy lets these (and
only these) reach MLflow, and MLflow's admits them."""
MODEL_VERSION_ANNOTATION = "serving.mlp.dev/model-version"
"""Set by the promote template on `spec.predictor.annotations` (KServe copies them to the pods): a new value rolls
the predictor out, and its init container resolves the alias again. Pulumi ignores `spec.predictor.annotations`."""
RESOLVER_MODULE = "mlplatform.infra.pipelines.steps.resolve"
PIPELINE_OWNED_FIELD = "spec.predictor.annotations"
"""What Pulumi ignores on a registry-served InferenceService: the promote template writes it."""
VLLM_PIPELINE_OWNED_FIELD = f'spec.template.metadata.annotations["{MODEL_VERSION_ANNOTATION}"]'
"""The one field of a promoted vLLM server's Deployment that the promote template owns (its rollout-vllm step)."""
# KServe v0.20 renamed RawDeployment to Standard (the old name is still accepted); Standard needs no Knative.
DEPLOYMENT_MODE = "Standard"


class UnknownVllmFlagError(ValueError):
    """The platform would pass a flag the pinned vLLM release does not have."""


@cache
def vllm_flag_catalog() -> tuple[str, frozenset[str]]:
    """(version, flags) of `vllm serve` in the pinned release, read from the release's own argument parser."""
    raw = json.loads(
        resources.files("mlplatform.infra.catalog").joinpath("data", "vllm_flags.json").read_text(encoding="utf-8")
    )
    return str(raw["version"]), frozenset(raw["flags"])


def check_vllm_args(args: Sequence[str]) -> None:
    version, known = vllm_flag_catalog()
    unknown = sorted({a.split("=", 1)[0] for a in args if a.startswith("--")} - known)
    if unknown:
        raise UnknownVllmFlagError(f"vLLM {version} has no flag(s) {', '.join(unknown)}")


# --- vLLM servers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VllmServer:
    name: str
    """Config key; the Deployment is vllm-<name>."""
    model: str
    """Hub id, or the key prefix in the models bucket (source lake)."""
    source: str
    served_model_name: str
    pool: str
    gpus: int
    max_model_len: int
    gpu_memory_utilization: float
    min_replicas: int
    max_replicas: int
    max_waiting_requests: int
    cpu: str
    memory: str
    models_bucket: str = ""
    hub_token_secret: str | None = None
    region: str = "us-east-1"
    startup_minutes: int = 30
    """How long the server may take to load the model and answer /health (the startup probe's budget)."""
    dtype: str = "auto"
    """--dtype (passed only when not `auto`)."""
    kv_cache_dtype: str = "auto"
    """--kv-cache-dtype (passed only when not `auto`)."""
    resolver_image: str | None = None
    """source registry: the steps' image, whose resolver downloads the version the model URI names."""
    mlflow_tracking_uri: str = ""
    """source registry: the MLflow the resolver asks."""
    mlflow_auth: bool = False
    """source registry: MLflow's basic auth is on (the resolver signs in as the `mlflow-registry-reader` user)."""
    promoted_by: str | None = None
    """source registry: the team whose promote template rolls the server out after a promotion."""
    keeps_serving: bool = False
    """Staging and prod: a rollout surges a new replica before an old one goes, and KEDA's fallback never scales
    below the current count (config validation also keeps an always-on server at two replicas or more, so one serves
    while Karpenter moves the other). False (dev): replace in place, no extra GPU node during a rollout."""

    @property
    def deployment_name(self) -> str:
        return f"vllm-{self.name}"

    @property
    def rollout_minutes(self) -> int:
        """How long `pulumi up` waits for a replica to become ready (the Deployment's custom timeout): a GPU node
        from Karpenter (its registration limit is 15 minutes), the image and weights pulled onto it, then the
        startup probe's budget. The Kubernetes provider's default (10 minutes) would fail a healthy rollout."""
        return NODE_PROVISIONING_MINUTES + PULL_MINUTES + self.startup_minutes

    @property
    def service_account(self) -> str:
        return f"vllm-{self.name}"

    @property
    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": self.name}


NODE_PROVISIONING_MINUTES = 15
"""Karpenter gives up on a node that has not registered after 15 minutes (its registration TTL)."""
PULL_MINUTES = 15
"""The vLLM image (~10 GB) and the weights (lake: `aws s3 sync` on the node's disk; hub: at start) onto a new node."""


def default_vllm_resources(gpus: int) -> tuple[str, str]:
    """CPU and memory per replica when the config gives none: 3 CPUs and 12 GiB per GPU, which fits every GPU
    node of the catalog's 1-GPU sizes (g6.xlarge: 4 vCPUs, 16 GiB)."""
    return str(3 * gpus), f"{12 * gpus}Gi"


def vllm_args(server: VllmServer) -> list[str]:
    model_ref = f"{MODELS_DIR}/{server.name}" if server.source in ("lake", "registry") else server.model
    args = [
        model_ref,
        "--host",
        "0.0.0.0",
        "--port",
        str(VLLM_PORT),
        "--served-model-name",
        server.served_model_name,
        "--tensor-parallel-size",
        str(server.gpus),
        "--max-model-len",
        str(server.max_model_len),
        "--gpu-memory-utilization",
        f"{server.gpu_memory_utilization:g}",
        "--disable-uvicorn-access-log",
    ]
    if server.source == "hub":
        args += ["--download-dir", f"{MODELS_DIR}/hub"]
    # The GPU memory check of config validation (infra/serving/fit.py) counts these; unset, vLLM's defaults apply.
    if server.dtype != "auto":
        args += ["--dtype", server.dtype]
    if server.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", server.kv_cache_dtype]
    check_vllm_args(args)
    return args


def _aws_cli_container(name: str, image: ImageRef, command: list[str], region: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "command": command,
        "env": [
            {"name": "AWS_REGION", "value": region},
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": restricted_container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _registry_env(tracking_uri: str, *, home: str, mlflow_auth: bool) -> list[dict[str, Any]]:
    """The resolver's environment: where MLflow is, a writable HOME and TMPDIR, and, with MLflow's auth on, the
    reader's credentials from the `mlflow-registry-reader` Secret (never in the pod spec or the state)."""
    env: list[dict[str, Any]] = [
        {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri},
        {"name": "HOME", "value": home},
        {"name": "TMPDIR", "value": home},
    ]
    return env + (mlflow_credentials_env(REGISTRY_READER_SECRET) if mlflow_auth else [])


def _resolver_container(server: VllmServer) -> dict[str, Any]:
    """vLLM's init container for source registry: the resolver KServe's storage container runs, into the weights
    directory vLLM serves."""
    if not server.resolver_image:
        raise ValueError(f"vllm {server.name}: source registry needs the steps' image (resolver_image)")
    return {
        "name": "resolve-model",
        "image": server.resolver_image,
        "command": ["python", "-m", RESOLVER_MODULE],
        "args": [server.model, f"{MODELS_DIR}/{server.name}"],
        "env": _registry_env(server.mlflow_tracking_uri, home="/tmp", mlflow_auth=server.mlflow_auth),
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": restricted_container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "models", "mountPath": MODELS_DIR}],
    }


def vllm_deployment(
    server: VllmServer, *, image: ImageRef, aws_cli_image: ImageRef, labels: Mapping[str, str], pool_label: str
) -> dict[str, Any]:
    """A vLLM OpenAI-compatible server. Weights come from the lake (an init container syncs them to the node's
    disk) or from the hub; a hub token is read from Secrets Manager by an init container into an in-memory file,
    so it is never in the config, the Pulumi state or the pod spec."""
    selector = server.selector
    init: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = [
        {"name": "models", "mountPath": MODELS_DIR},
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    env = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "HF_HOME", "value": f"{MODELS_DIR}/hf-home"},
        {"name": "VLLM_CACHE_ROOT", "value": "/tmp/vllm-cache"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
    ]
    volumes: list[dict[str, Any]] = [
        # Weights on the node's disk (the GPU pools give nodes large volumes); gone with the pod.
        {"name": "models", "emptyDir": {}},
        # NCCL (tensor parallelism) and the tokenizer workers use shared memory; counts against the memory limit.
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi" if server.gpus > 1 else "1Gi"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if server.source == "lake":
        source = f"s3://{server.models_bucket}/{server.model.rstrip('/')}/"
        container = _aws_cli_container(
            "fetch-weights",
            aws_cli_image,
            ["aws", "s3", "sync", "--only-show-errors", "--no-progress", source, f"{MODELS_DIR}/{server.name}/"],
            server.region,
        )
        container["volumeMounts"].append({"name": "models", "mountPath": MODELS_DIR})
        init.append(container)
    elif server.source == "registry":
        init.append(_resolver_container(server))
    else:
        env.append({"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"})
    if server.hub_token_secret:
        token_file = f"{HF_TOKEN_DIR}/token"
        container = _aws_cli_container(
            "fetch-hub-token",
            aws_cli_image,
            [
                "/bin/sh",
                "-ec",
                # The secret's value is the token itself; it goes to a file on an in-memory volume, never stdout.
                f'umask 077; aws secretsmanager get-secret-value --secret-id "$HUB_TOKEN_SECRET_ID" '
                f"--query SecretString --output text > {token_file}",
            ],
            server.region,
        )
        container["env"].append({"name": "HUB_TOKEN_SECRET_ID", "value": server.hub_token_secret})
        container["volumeMounts"].append({"name": "hub-token", "mountPath": HF_TOKEN_DIR})
        init.append(container)
        volumes.append({"name": "hub-token", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
        mounts.append({"name": "hub-token", "mountPath": HF_TOKEN_DIR, "readOnly": True})
        env.append({"name": "HF_TOKEN_PATH", "value": token_file})  # huggingface_hub reads the token from here
    gpu = str(server.gpus)
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    container_security = {**restricted_container_security(), "readOnlyRootFilesystem": False}
    # vLLM and its JIT compilers (Triton, torch.compile, FlashInfer) write caches at start; where exactly could not
    # be verified offline, so the root filesystem stays writable (everything else is dropped).
    return {
        "metadata": {
            "name": server.deployment_name,
            "namespace": SERVING_NAMESPACE,
            "labels": {**labels, **selector},
        },
        "spec": {
            "replicas": server.min_replicas,  # KEDA owns the count afterwards (the component ignores changes)
            "selector": {"matchLabels": selector},
            "strategy": vllm_rollout_strategy(server),
            # A new replica takes a GPU node, the image and weights and the model load; the default 10 minutes
            # would mark every healthy rollout as failed (ProgressDeadlineExceeded).
            "progressDeadlineSeconds": server.rollout_minutes * 60,
            "template": {
                # No `karpenter.sh/do-not-disrupt`: Karpenter 1.14 would then skip the node for consolidation and
                # drift (a new pinned AMI would never reach it) and not evict the pod on expiry, so with no NodePool
                # terminationGracePeriod its drain would wait forever. Two replicas and the PodDisruptionBudget let
                # Karpenter move one at a time instead (docs v1.14 concepts/disruption, "Pod-Level Controls").
                "metadata": {
                    "labels": {
                        **labels,
                        **selector,
                        "mlplatform.io/served-model": server.served_model_name,
                        # its init container asks MLflow: the serving namespace's policies let these pods reach it
                        **(REGISTRY_POD_LABEL if server.source == "registry" else {}),
                    },
                },
                "spec": {
                    "serviceAccountName": server.service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "nodeSelector": {pool_label: server.pool},
                    "tolerations": [dict(GPU_TOLERATION)],
                    "terminationGracePeriodSeconds": 60,
                    "initContainers": init,
                    "containers": [
                        {
                            "name": "vllm",
                            "image": image,
                            "command": ["vllm", "serve"],
                            "args": vllm_args(server),
                            "env": env,
                            "ports": [{"name": "http", "containerPort": VLLM_PORT}],
                            "resources": {
                                "requests": {"cpu": server.cpu, "memory": server.memory, "nvidia.com/gpu": gpu},
                                "limits": {"memory": server.memory, "nvidia.com/gpu": gpu},
                            },
                            # Loading a large model (and compiling CUDA graphs) takes minutes: the configured
                            # budget (startup_minutes), probed every 10 seconds.
                            "startupProbe": {
                                **probe,
                                "periodSeconds": 10,
                                "failureThreshold": server.startup_minutes * 6,
                            },
                            "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
                            "livenessProbe": {**probe, "periodSeconds": 15, "failureThreshold": 6},
                            "securityContext": container_security,
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def vllm_rollout_strategy(server: VllmServer) -> dict[str, Any]:
    """How a changed server replaces its replicas. Keeping serving: one new replica starts (on one more GPU node's
    worth of pool capacity, which config validation checks the pool's max_gpus can hold) and an old one stops only
    once it is ready. Otherwise (dev) an old replica stops first: no extra GPU node, but the server is down until
    the new replica has loaded the model."""
    if server.keeps_serving:
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def vllm_disruption_budget(server: VllmServer, labels: Mapping[str, str]) -> dict[str, Any]:
    """A PodDisruptionBudget for the server's replicas: evictions (Karpenter consolidation, drift and expiry, node
    drains) take one ready replica at a time, and the next only once its replacement is ready, so with two or more
    replicas one always serves. `maxUnavailable: 1` rather than `minAvailable`: scaled out to N it keeps N-1
    (minAvailable 1 would let N-1 go at once), and with one replica it still lets the node go instead of blocking
    drains forever (maxUnavailable 0 would). A replica that is not ready can always be evicted, so a broken one never
    holds a node."""
    return {
        "metadata": {"name": server.deployment_name, "namespace": SERVING_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": server.selector},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def vllm_scaled_object(server: VllmServer, *, prometheus_url: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """KEDA scaling on queued requests: one replica per `max_waiting_requests` waiting requests.

    With min_replicas 0 the server is parked when idle: a second trigger on running requests keeps it up while it
    serves, and it scales to zero only when nothing ran for the cooldown. Requests cannot wake a parked server
    (nothing exports a queue while no replica runs): scale it up (`kubectl scale`) and KEDA keeps it while busy.
    """
    selector = f'namespace="{SERVING_NAMESPACE}",model_name="{server.served_model_name}"'
    triggers: list[dict[str, Any]] = [
        {
            "type": "prometheus",
            "name": "waiting-requests",
            "metadata": {
                "serverAddress": prometheus_url,
                "query": f"sum(vllm:num_requests_waiting{{{selector}}}) or vector(0)",
                "threshold": str(server.max_waiting_requests),
                "activationThreshold": "0",
            },
        }
    ]
    if server.min_replicas == 0:
        triggers.append(
            {
                "type": "prometheus",
                "name": "running-requests",
                "metadata": {
                    "serverAddress": prometheus_url,
                    "query": f"sum(vllm:num_requests_running{{{selector}}}) or vector(0)",
                    # Never drives scale-out (the target is out of reach); only keeps a busy server active.
                    "threshold": "1000000",
                    "activationThreshold": "0",
                },
            }
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": server.deployment_name, "namespace": SERVING_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": server.deployment_name},
            "minReplicaCount": server.min_replicas,
            "maxReplicaCount": server.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 900,  # a GPU node takes minutes to come back: do not park a model between bursts
            # When Prometheus cannot be read 4 times in a row: keeping serving, never fewer replicas than run now
            # (KEDA 2.17+ `currentReplicasIfHigher`: max(current, replicas)); otherwise (dev) the floor.
            "fallback": {
                "failureThreshold": 4,
                "replicas": max(server.min_replicas, 1),
                "behavior": "currentReplicasIfHigher" if server.keeps_serving else "static",
            },
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": 600,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                        }
                    }
                }
            },
            "triggers": triggers,
        },
    }


# --- KServe -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InferenceServiceSpec:
    """An InferenceService; storage paths are key prefixes in the models bucket."""

    name: str
    model_format: str | None
    runtime: str | None
    storage_path: str | None
    min_replicas: int
    max_replicas: int
    cpu: str
    memory: str
    gpus: int = 0
    gpu_pool: str | None = None
    canary_storage_path: str | None = None
    canary_traffic_percent: int | None = None
    model_uri: str | None = None
    """A registry URI (`models:/<name>@<alias>`), resolved through MLflow at pod start, instead of storage_path."""
    promoted_by: str | None = None
    """The team whose `workflow` service account may roll the predictor out after a promotion."""
    request_log: str | None = None
    """The team into whose lake prefix KServe's logger writes every request (`request_log_prefix`)."""

    @property
    def canary_percent(self) -> int | None:
        """The canary's share of requests (1-99), or None without a canary."""
        return self.canary_traffic_percent if self.canary_storage_path and self.canary_traffic_percent else None

    @property
    def canary_replicas(self) -> int:
        """The canary's fixed replica count: KServe v0.20.0's own sizing, `ceil(min_replicas * percent / 100)`
        (`canaryReplicaCount` in `components/predictor.go`), at least one so the route's share always has a pod.
        KServe takes these from the stable floor (`max(min_replicas - canary, 1)`); the stable predictor's HPA
        scales it back up with load."""
        percent = self.canary_percent or 0
        return max(1, -(-self.min_replicas * percent // 100))

    def prefixes(self) -> list[str]:
        """The key prefixes its model servers read (the stable model and the canary)."""
        paths = [p for p in (self.storage_path, self.canary_storage_path) if p]
        return [p.strip("/") + "/" for p in paths]


CANARY_PREDICTOR = "canary"


def _predictor(spec: InferenceServiceSpec, storage_uri: str, pool_label: str, canary: bool = False) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "requests": {"cpu": spec.cpu, "memory": spec.memory},
        "limits": {"memory": spec.memory},
    }
    if spec.gpus:
        resources["requests"]["nvidia.com/gpu"] = str(spec.gpus)
        resources["limits"]["nvidia.com/gpu"] = str(spec.gpus)
    model: dict[str, Any] = {
        "modelFormat": {"name": spec.model_format or VLLM_MODEL_FORMAT},
        "storageUri": storage_uri,
        "resources": resources,
        "securityContext": restricted_container_security(),
    }
    if spec.runtime:
        model["runtime"] = spec.runtime
    predictor: dict[str, Any] = {
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "serviceAccountName": MODEL_SERVICE_ACCOUNT,
        "securityContext": pod_security(),
        "model": model,
    }
    if canary:
        # KServe's webhook: a canary has a name (its Deployment is <isvc>-<name>-predictor) and fixed replicas
        # (no maxReplicas or autoscaling) no more than the stable floor; the CRD requires the model container's name.
        del predictor["maxReplicas"]
        predictor.update(name=CANARY_PREDICTOR, minReplicas=spec.canary_replicas)
        model["name"] = "kserve-container"
    if spec.gpus and spec.gpu_pool:
        predictor["nodeSelector"] = {pool_label: spec.gpu_pool}
        predictor["tolerations"] = [dict(GPU_TOLERATION)]
    return predictor


REQUEST_LOG_DIR = "inference-logs"


def request_log_prefix(team: str) -> str:
    """Where KServe's logger writes a team's InferenceServices' requests, in the `raw` zone: the agent appends
    `<namespace>/<inferenceservice>/<component>/<id>-request.json` (KServe v0.20.0 pkg/logger/store.go)."""
    return f"teams/{team}/{REQUEST_LOG_DIR}"


def request_log_objects(team: str, name: str) -> str:
    """The key prefix of one InferenceService's logged requests (its predictor's role may write only there)."""
    return f"{request_log_prefix(team)}/{SERVING_NAMESPACE}/{name}/"


REQUEST_LOG_STORAGE_PATH = "requests"
"""`logger.storage.path`: the last directory of each logged object's key."""
LOGGER_STORAGE_KEY = "unused"
"""`logger.storage.key`: KServe's validation requires it with `storage` (pkg/apis/serving/v1beta1/component.go),
the agent never reads it (v0.20.0)."""


def request_logger(log_bucket: str, team: str) -> dict[str, Any]:
    """`spec.predictor.logger`: every request (not the responses) to the lake, one object per request (KServe's
    JSON marshaller; `infra.drift.payloads.events_from_lake_object` reads it).

    KServe v0.20.0's agent writes to S3 only with `storage.path` set: without it the mutator passes no
    `--log-store-path`, the agent makes no store and drops every batch ("Logger store not configured";
    cmd/agent/main.go, pkg/logger/dispatcher.go, pkg/webhook/admission/pod/agent_injector.go). Keys are
    `<url path>/<namespace>/<isvc>/<component>/<storage.path>/<id>-request.json` (pkg/logger/store.go). The
    agent's S3 client (aws-sdk-go v1, default chain) takes the pod's Pod Identity credentials; its region comes
    from AWS_DEFAULT_REGION or AWS_REGION, which EKS's Pod Identity webhook sets on every container, the injected
    agent's included (not checked on a live cluster here). `serviceAccountName` is the predictor's own: KServe
    looks it up for S3 secrets and finds none (Pod Identity), instead of logging that `logger-sa` is missing."""
    return {
        "mode": "request",
        "url": f"s3://{log_bucket}/{request_log_prefix(team)}",
        "storage": {
            "path": REQUEST_LOG_STORAGE_PATH,
            "parameters": {"format": "json"},
            "key": LOGGER_STORAGE_KEY,
            "serviceAccountName": MODEL_SERVICE_ACCOUNT,
        },
    }


def inference_service(
    spec: InferenceServiceSpec,
    *,
    bucket: str,
    labels: Mapping[str, str],
    pool_label: str,
    log_bucket: str | None = None,
) -> dict[str, Any]:
    """A serving.kserve.io/v1beta1 InferenceService in Standard (raw Deployment) mode.

    Canary: in Standard mode KServe v0.20 ignores `predictor.canaryTrafficPercent` (only its Knative reconciler
    reads it); a candidate goes in `spec.canary[]` with its own predictor and `trafficPercent`. KServe v0.20 runs
    it as its own Deployment and Service and routes nothing to it: the split is enforced by the platform's
    HTTPRoute (`infra.serving.routing.http_route`), whose weights come from the same `canary_percent`.
    """
    if spec.model_uri:
        predictor = _predictor(spec, spec.model_uri, pool_label)
        predictor["labels"] = dict(REGISTRY_POD_LABEL)  # KServe copies them to the predictor's pods
        body: dict[str, Any] = {"predictor": predictor}
    else:
        body = {"predictor": _predictor(spec, s3_uri(bucket, spec.storage_path or ""), pool_label)}
    if spec.request_log is not None:
        if log_bucket is None:
            raise ValueError(f"InferenceService {spec.name}: request_log needs the lake's raw bucket (log_bucket)")
        body["predictor"]["logger"] = request_logger(log_bucket, spec.request_log)
    if spec.canary_storage_path and spec.canary_percent:
        body["canary"] = [
            {
                "predictor": _predictor(spec, s3_uri(bucket, spec.canary_storage_path), pool_label, canary=True),
                "trafficPercent": spec.canary_percent,
            }
        ]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": spec.name,
            "namespace": SERVING_NAMESPACE,
            "labels": dict(labels),
            "annotations": {DEPLOYMENT_MODE_ANNOTATION: DEPLOYMENT_MODE},
        },
        "spec": body,
    }


REGISTRY_READER_SECRET = "mlflow-registry-reader"
"""With MLflow's basic auth on: the Secret (in the serving namespace, keys `username` and `password`) of an MLflow
user with READ on the registered models, which the resolver signs in as. An operator creates both (pipelines docs);
until then the predictor's pods wait in CreateContainerConfigError naming it."""


def registry_storage_container(
    *, image: ImageRef, tracking_uri: str, labels: Mapping[str, str], mlflow_auth: bool = False
) -> dict[str, Any]:
    """A KServe ClusterStorageContainer for `models:/` URIs: KServe's webhook adds it as the predictor's
    `storage-initializer` init container (the name KServe requires) and passes the InferenceService's storageUri and
    /mnt/models as its arguments; the resolver step reads the alias once and downloads that version's files.

    The root filesystem stays read-only: HOME and TMPDIR point into /mnt/models (the emptyDir KServe mounts there),
    where the resolver stages its download before moving the files in place."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterStorageContainer",
        "metadata": {"name": REGISTRY_STORAGE_CONTAINER, "labels": dict(labels)},
        "spec": {
            "container": {
                "name": "storage-initializer",
                "image": image,
                "command": ["python", "-m", RESOLVER_MODULE],
                "env": _registry_env(tracking_uri, home=KSERVE_MODEL_DIR, mlflow_auth=mlflow_auth),
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                "securityContext": restricted_container_security(),
            },
            "supportedUriFormats": [{"prefix": REGISTRY_URI_PREFIX}],
            "workloadType": "initContainer",
        },
    }


def rollout_role(
    *, isvc: str, team: str, service_account: str, labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Role in the serving namespace that can read and patch one InferenceService (named, so no other team's),
    and its binding to a team's workflow service account: the promote template's rollout step."""
    return _rollout_role(
        f"mlp-rollout-{isvc}", "serving.kserve.io", "inferenceservices", isvc, team, service_account, labels
    )


def vllm_rollout_role(
    *, server: str, team: str, service_account: str, labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same for one vLLM server's Deployment (`vllm-<server>`): the promote template's rollout-vllm step."""
    deployment = f"vllm-{server}"
    return _rollout_role(f"mlp-rollout-{deployment}", "apps", "deployments", deployment, team, service_account, labels)


def _rollout_role(
    name: str,
    api_group: str,
    resource: str,
    resource_name: str,
    team: str,
    service_account: str,
    labels: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    role = {
        "metadata": {"name": name, "namespace": SERVING_NAMESPACE, "labels": dict(labels)},
        "rules": [
            {
                "apiGroups": [api_group],
                "resources": [resource],
                "resourceNames": [resource_name],
                "verbs": ["get", "patch"],
            }
        ],
    }
    binding = {
        "metadata": {"name": name, "namespace": SERVING_NAMESPACE, "labels": dict(labels)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": f"team-{team}"}],
    }
    return role, binding


def vllm_serving_runtime(*, image: ImageRef, labels: Mapping[str, str]) -> dict[str, Any]:
    """A namespaced ServingRuntime that serves a model directory downloaded by KServe's storage initializer with
    vLLM's OpenAI-compatible server."""
    args = ["--model", KSERVE_MODEL_DIR, "--served-model-name", "{{.Name}}", "--port", "8080"]
    check_vllm_args(args)
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": VLLM_RUNTIME, "namespace": SERVING_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "supportedModelFormats": [{"name": VLLM_MODEL_FORMAT, "autoSelect": True, "priority": 1}],
            "protocolVersions": ["v1"],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    "command": ["vllm", "serve"],
                    "args": args,
                    "env": [
                        {"name": "HOME", "value": "/tmp"},
                        {"name": "HF_HUB_OFFLINE", "value": "1"},
                        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
                    ],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}},
                }
            ],
        },
    }


def s3_uri(bucket: str, path: str) -> str:
    """The storageUri of a model folder, always ending in "/". KServe's storage initializer (v0.20.0,
    `Storage._download_s3`) lists the URI's path as a bare prefix and downloads every object under it: without the
    slash `churn/v3` also pulls `churn/v30/...`, which the model's read policy (`churn/v3/*`) denies, and the
    download fails."""
    return f"s3://{bucket}/{path.strip('/')}/"


# --- chart values -----------------------------------------------------------------------------------------------


def _small(cpu: str = "50m", memory: str = "128Mi", limit: str = "256Mi") -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": limit}}


def cert_manager_values(node_selector: Mapping[str, str]) -> dict[str, Any]:
    """cert-manager v1.21 chart values: CRDs from the chart (kept on uninstall), all parts on the system nodes."""
    selector = dict(node_selector)
    return {
        "crds": {"enabled": True, "keep": True},
        "nodeSelector": selector,
        "resources": _small(),
        "webhook": {"nodeSelector": selector, "resources": _small(cpu="20m", memory="64Mi", limit="128Mi")},
        "cainjector": {"nodeSelector": selector, "resources": _small()},
        "startupapicheck": {"nodeSelector": selector},
        "prometheus": {"enabled": True},
    }


def kserve_values(*, node_selector: Mapping[str, str], region: str, domain: str) -> dict[str, Any]:
    """kserve-resources v0.20 chart values: Standard mode (plain Deployments, no Knative or Istio), the controller
    on the system nodes, and no routes or Ingresses of KServe's own: the platform's HTTPRoutes route to the models
    (`infra.serving.routing`), because v0.20's would send nothing to a canary. `domain` is the one those routes
    answer under, so each InferenceService's `status.url` names its route's host."""
    return {
        "kserve": {
            "controller": {
                "deploymentMode": DEPLOYMENT_MODE,
                "nodeSelector": dict(node_selector),
                "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "512Mi"}},
                "gateway": {
                    "domain": domain,
                    "disableIngressCreation": True,
                    "ingressGateway": {"enableGatewayApi": False},
                },
            },
            "storage": {"s3": {"region": region, "useHttps": "1", "verifySSL": "1"}},
        }
    }


def kserve_runtime_values() -> dict[str, Any]:
    """kserve-runtime-configs v0.20: install the ClusterServingRuntimes (the chart installs none by default). The
    chart's own vLLM runtime uses an unpinned `latest` image, so it is disabled; the platform's namespaced `vllm`
    ServingRuntime serves that format with the pinned image."""
    return {"kserve": {"servingruntime": {"enabled": True, "vllmserver": {"disabled": True}}}}


def keda_values(node_selector: Mapping[str, str]) -> dict[str, Any]:
    """KEDA 2.20 chart values: operator, metrics server and webhooks on the system nodes, modest resources."""
    return {
        "nodeSelector": dict(node_selector),
        "resources": {
            "operator": _small(cpu="100m", memory="128Mi", limit="512Mi"),
            "metricServer": _small(cpu="100m", memory="128Mi", limit="512Mi"),
            "webhooks": _small(cpu="50m", memory="64Mi", limit="256Mi"),
        },
        "prometheus": {
            "operator": {"enabled": True},
            "metricServer": {"enabled": True},
        },
    }
