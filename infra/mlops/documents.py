"""Pure builders for MLflow and Ray: the MLflow server command and environment, Kubernetes manifests, IAM
documents and the RayCluster spec. No resources, no I/O.

The MLflow command is what the contract test runs against a real MLflow server: nothing in it is specific to
Kubernetes except the values the component passes in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.k8s_documents import GPU_TOLERATION, pod_security, restricted_container_security

MLFLOW_PORT = 5000
MLFLOW_NAMESPACE = "mlflow"
MLFLOW_SERVICE = "mlflow"
MLFLOW_SERVICE_ACCOUNT = "mlflow"
MLFLOW_SELECTOR = {"app.kubernetes.io/name": "mlflow"}
MLFLOW_ADMIN_USER = "admin"
ARTIFACTS_PREFIX = "mlflow/"
"""MLflow's artifacts live under this prefix of the lake's artifacts zone (its role may write nothing else)."""
AUTH_CONFIG_PATH = "/tmp/mlflow-auth/basic_auth.ini"

# Runs as the container's command. It reads the two Secrets Manager secrets with the pod's own credentials (Pod
# Identity), puts the backend URI and the admin credentials in the server's environment only (never in the pod
# spec, never on disk except the auth config on an in-memory volume), and replaces itself with `mlflow server`.
MLFLOW_LAUNCHER = r"""
import json, os, sys
from urllib.parse import quote
import boto3
sm = boto3.client("secretsmanager")
db = json.loads(sm.get_secret_value(SecretId=os.environ["MLFLOW_DB_SECRET_ID"])["SecretString"])
if db.get("engine") == "sqlite":
    uri = "sqlite:///" + db["path"]
else:
    uri = "postgresql+psycopg2://%s:%s@%s:%s/%s?sslmode=%s" % (
        quote(db["username"], safe=""), quote(db["password"], safe=""), db["host"], db["port"], db["dbname"],
        db.get("sslmode", "require"))
os.environ["MLFLOW_BACKEND_STORE_URI"] = uri
args = sys.argv[1:]
if os.environ.get("MLFLOW_ADMIN_SECRET_ID"):
    admin = json.loads(sm.get_secret_value(SecretId=os.environ["MLFLOW_ADMIN_SECRET_ID"])["SecretString"])
    os.environ["MLFLOW_AUTH_ADMIN_USERNAME"] = admin["username"]
    os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin["password"]
    os.environ["MLFLOW_FLASK_SERVER_SECRET_KEY"] = admin["flask_secret_key"]
    path = os.environ["MLFLOW_AUTH_CONFIG_PATH"]
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[mlflow]\ndefault_permission = %s\ndatabase_uri = %s\nadmin_username = %s\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                % (os.environ.get("MLFLOW_AUTH_DEFAULT_PERMISSION", "NO_PERMISSIONS"),
                   uri.replace("%", "%%"), admin["username"]))
os.execvp("mlflow", ["mlflow", "server", *args])
""".strip()


@dataclass(frozen=True, kw_only=True)
class MlflowServer:
    """What the MLflow server needs to know about its environment."""

    db_secret_id: str
    admin_secret_id: str | None  # None: authentication off (dev only)
    artifacts_destination: str  # s3://bucket/prefix
    region: str
    workers: int = 2
    port: int = MLFLOW_PORT
    allowed_hosts: Sequence[str] = ()
    default_permission: str = "NO_PERMISSIONS"  # new users see nothing until granted
    host: str = "0.0.0.0"  # all interfaces of the pod
    auth_config_path: str = AUTH_CONFIG_PATH


def mlflow_allowed_hosts(service: str, namespace: str, extra: Sequence[str] = ()) -> list[str]:
    """Host headers the server accepts. MLflow's DNS-rebinding protection matches `host[:port]` exactly, so each
    name is listed bare and with any port."""
    names = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        *extra,
    ]
    return [pattern for name in names for pattern in (name, f"{name}:*")]


def postgres_parameters() -> dict[str, str]:
    """RDS parameters: clients must use TLS; statements slower than 1 s and connection churn are logged."""
    return {
        "rds.force_ssl": "1",
        "log_min_duration_statement": "1000",
        "log_connections": "1",
        "log_disconnections": "1",
    }


def mlflow_command(server: MlflowServer) -> list[str]:
    """The container command: the launcher, then `mlflow server` arguments."""
    args = [
        "python",
        "-c",
        MLFLOW_LAUNCHER,
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--workers",
        str(server.workers),
        "--artifacts-destination",
        server.artifacts_destination,
        "--serve-artifacts",
        "--allowed-hosts",
        ",".join(server.allowed_hosts),
    ]
    if server.admin_secret_id:
        args += ["--app-name", "basic-auth"]
    return args


def mlflow_env(server: MlflowServer) -> dict[str, str]:
    env = {
        "MLFLOW_DB_SECRET_ID": server.db_secret_id,
        "AWS_REGION": server.region,
        "AWS_DEFAULT_REGION": server.region,
        # Background job execution starts a worker pool per server; the platform runs none.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "HOME": "/tmp",
    }
    if server.admin_secret_id:
        env.update(
            {
                "MLFLOW_ADMIN_SECRET_ID": server.admin_secret_id,
                "MLFLOW_AUTH_CONFIG_PATH": server.auth_config_path,
                "MLFLOW_AUTH_DEFAULT_PERMISSION": server.default_permission,
            }
        )
    return env


def mlflow_deployment(
    *,
    server: MlflowServer,
    image: str,
    replicas: int,
    labels: Mapping[str, str],
    node_selector: Mapping[str, str],
    cpu: str = "250m",
    memory: str = "1536Mi",
) -> dict[str, Any]:
    """The MLflow Deployment. Memory: about 500 MiB per uvicorn worker plus the launcher's parent."""
    selector = dict(MLFLOW_SELECTOR)
    env = [{"name": k, "value": v} for k, v in sorted(mlflow_env(server).items())]
    probe_path = "/health"  # unauthenticated under basic-auth
    return {
        "metadata": {"name": "mlflow", "namespace": MLFLOW_NAMESPACE, "labels": {**labels, **selector}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {**labels, **selector}},
                "spec": {
                    "serviceAccountName": MLFLOW_SERVICE_ACCOUNT,
                    "securityContext": pod_security(),
                    "nodeSelector": dict(node_selector),
                    "automountServiceAccountToken": False,
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector},
                        }
                    ],
                    "containers": [
                        {
                            "name": "mlflow",
                            "image": image,
                            "command": mlflow_command(server),
                            "env": env,
                            "ports": [{"name": "http", "containerPort": server.port}],
                            "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
                            "readinessProbe": {
                                "httpGet": {"path": probe_path, "port": "http"},
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": probe_path, "port": "http"},
                                "periodSeconds": 20,
                                "failureThreshold": 6,
                            },
                            "startupProbe": {
                                "httpGet": {"path": probe_path, "port": "http"},
                                "periodSeconds": 5,
                                "failureThreshold": 60,
                            },
                            "securityContext": restricted_container_security(),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    # The auth config (it holds the database URI) lives in memory only.
                    "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def internal_alb_ingress(
    *,
    name: str,
    namespace: str,
    service_name: str,
    port: int,
    hostname: str,
    certificate_arn: str | None,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """An ALB that only the VPC reaches (needs the AWS Load Balancer Controller in the cluster)."""
    annotations = {
        "alb.ingress.kubernetes.io/scheme": "internal",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
    }
    if certificate_arn:
        annotations.update(
            {
                "alb.ingress.kubernetes.io/certificate-arn": certificate_arn,
                "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
            }
        )
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels), "annotations": annotations},
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "host": hostname,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": service_name, "port": {"number": port}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


# --- IAM --------------------------------------------------------------------------------------------------------


def db_secret_value(
    *, username: str, password: str, host: str, port: int, dbname: str, sslmode: str = "require"
) -> str:
    """The database secret, in the JSON shape RDS and Secrets Manager rotation use (plus `sslmode`)."""
    return json.dumps(
        {
            "engine": "postgres",
            "username": username,
            "password": password,
            "host": host,
            "port": port,
            "dbname": dbname,
            "sslmode": sslmode,
        },
        sort_keys=True,
    )


def admin_secret_value(*, username: str, password: str, flask_secret_key: str) -> str:
    return json.dumps(
        {"username": username, "password": password, "flask_secret_key": flask_secret_key}, sort_keys=True
    )


# --- Ray --------------------------------------------------------------------------------------------------------

RAY_NAMESPACE = "ray"
RAY_OPERATOR_NAMESPACE = "kuberay-system"
RAY_SERVICE_ACCOUNT = "ray"
RAY_METRICS_PORT = 8080
RAY_DASHBOARD_PORT = 8265
RAY_CLIENT_PORT = 10001
RAY_GCS_PORT = 6379
RAY_PREFIX = "ray/"
"""Ray jobs write under this prefix of the artifacts zone."""


@dataclass(frozen=True, kw_only=True)
class RayGpuGroup:
    name: str
    pool: str
    gpus_per_worker: int
    min_replicas: int
    max_replicas: int
    cpu: str
    memory: str


@dataclass(frozen=True, kw_only=True)
class RayClusterSpec:
    name: str
    ray_version: str
    image: str
    gpu_image: str
    head_cpu: str
    head_memory: str
    cpu_min: int
    cpu_max: int
    cpu_cpu: str
    cpu_memory: str
    gpu_groups: Sequence[RayGpuGroup] = field(default_factory=tuple)
    head_node_selector: Mapping[str, str] = field(default_factory=dict)
    cpu_node_selector: Mapping[str, str] = field(default_factory=dict)
    pool_label: str = "mlplatform.io/gpu-pool"


def _ray_container(
    name: str, image: str, cpu: str, memory: str, gpus: int = 0, ports: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Requests equal limits: Ray schedules by the resources it is told it has, so the pod must really have them."""
    resources: dict[str, str] = {"cpu": cpu, "memory": memory}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    return {
        "name": name,
        "image": image,
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "ports": [{"name": "metrics", "containerPort": RAY_METRICS_PORT}, *ports],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
        "volumeMounts": [{"name": "ray-logs", "mountPath": "/tmp/ray"}],
    }


def _ray_pod(
    container: dict[str, Any], labels: Mapping[str, str], node_selector: Mapping[str, str], gpu: bool
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": RAY_SERVICE_ACCOUNT,
        # The rayproject/ray images run as user `ray` (uid 1000, gid 100).
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 100,
            "fsGroup": 100,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "ray-logs", "emptyDir": {}}],
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if gpu:
        spec["tolerations"] = [dict(GPU_TOLERATION)]
        # NCCL and the object store use /dev/shm; the container default (64 MiB) is far too small.
        spec["volumes"].append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def ray_cluster(spec: RayClusterSpec, labels: Mapping[str, str]) -> dict[str, Any]:
    """A ray.io/v1 RayCluster: token authentication, a head without GPUs, a CPU group and GPU groups that the
    in-tree autoscaler scales from zero (Karpenter then adds and removes the nodes)."""
    pod_labels = {**labels, "mlplatform.io/ray-cluster": spec.name}
    head = _ray_container(
        "ray-head",
        spec.image,
        spec.head_cpu,
        spec.head_memory,
        ports=[
            {"name": "gcs", "containerPort": RAY_GCS_PORT},
            {"name": "dashboard", "containerPort": RAY_DASHBOARD_PORT},
            {"name": "client", "containerPort": RAY_CLIENT_PORT},
        ],
    )
    metrics = {"metrics-export-port": str(RAY_METRICS_PORT)}
    workers: list[dict[str, Any]] = [
        {
            "groupName": "cpu",
            "replicas": spec.cpu_min,
            "minReplicas": spec.cpu_min,
            "maxReplicas": spec.cpu_max,
            "rayStartParams": {**metrics, "num-gpus": "0"},
            "template": _ray_pod(
                _ray_container("ray-worker", spec.image, spec.cpu_cpu, spec.cpu_memory),
                {**pod_labels, "mlplatform.io/ray-group": "cpu"},
                spec.cpu_node_selector,
                gpu=False,
            ),
        }
    ]
    for group in spec.gpu_groups:
        workers.append(
            {
                "groupName": group.name,
                "replicas": group.min_replicas,
                "minReplicas": group.min_replicas,
                "maxReplicas": group.max_replicas,
                "rayStartParams": {**metrics, "num-gpus": str(group.gpus_per_worker)},
                "template": _ray_pod(
                    _ray_container("ray-worker", spec.gpu_image, group.cpu, group.memory, group.gpus_per_worker),
                    {**pod_labels, "mlplatform.io/ray-group": group.name, spec.pool_label: group.pool},
                    {spec.pool_label: group.pool},
                    gpu=True,
                ),
            }
        )
    head_pod = _ray_pod(head, {**pod_labels, "mlplatform.io/ray-group": "head"}, spec.head_node_selector, gpu=False)
    # Consolidation must not move the head: every running job would be lost with it.
    head_pod["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": spec.name, "namespace": RAY_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "rayVersion": spec.ray_version,
            # KubeRay generates the token into Secret <name> (key auth_token); it never passes through Pulumi.
            "authOptions": {"mode": "token"},
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {
                "version": "v2",
                "upscalingMode": "Default",
                "idleTimeoutSeconds": 300,
                "resources": {
                    "requests": {"cpu": "200m", "memory": "512Mi"},
                    "limits": {"cpu": "500m", "memory": "512Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": True,
                },
            },
            "headGroupSpec": {
                # The head takes no tasks that need GPUs (num-gpus 0), nor any work at all (num-cpus 0).
                "rayStartParams": {**metrics, "num-gpus": "0", "num-cpus": "0", "dashboard-host": "0.0.0.0"},
                "serviceType": "ClusterIP",
                "template": head_pod,
            },
            "workerGroupSpecs": workers,
        },
    }


def kuberay_operator_values(
    *, replicas: int, node_selector: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """Values of the kuberay-operator chart (keys as in its values.yaml at v1.7.0)."""
    return {
        "replicas": replicas,
        "nodeSelector": dict(node_selector),
        "labels": dict(labels),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "metrics": {"enabled": True},
        # The RayClusters sit in one namespace: Roles there instead of cluster-wide rights over every namespace.
        "singleNamespaceInstall": True,
        "crNamespacedRbacEnable": True,
        "watchNamespace": [RAY_NAMESPACE],
    }
