"""Pure builders for MLflow and Ray: the MLflow server command and environment, Kubernetes manifests, IAM
documents and the RayCluster spec. No resources, and no I/O but reading the packaged RDS roots (data/).

The MLflow command is what the contract test runs against a real MLflow server: nothing in it is specific to
Kubernetes except the values the component passes in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlplatform.infra.gpu_pools.documents import EFA_ENV, EFA_RESOURCE
from mlplatform.infra.k8s_documents import (
    GPU_TOLERATION,
    POD_IDENTITY_AGENT,
    PRIVATE_RANGES,
    SERVICE_ACCOUNT_TOKEN_PATH,
    api_server_egress,
    pod_security,
    restricted_container_security,
    service_account_token_volume,
)
from mlplatform.infra.tenancy.documents import TENANT_LABEL

if TYPE_CHECKING:
    from mlplatform.infra.registry.documents import ImageRef

MLFLOW_PORT = 5000
MLFLOW_NAMESPACE = "mlflow"
MLFLOW_SERVICE = "mlflow"
MLFLOW_SERVICE_ACCOUNT = "mlflow"
MLFLOW_IN_CLUSTER_URL = f"http://{MLFLOW_SERVICE}.{MLFLOW_NAMESPACE}.svc.cluster.local:{MLFLOW_PORT}"
"""The tracking server as pods reach it (the Service's cluster DNS name)."""
MLFLOW_SELECTOR = {"app.kubernetes.io/name": "mlflow"}
MLFLOW_ADMIN_USER = "admin"
ARTIFACTS_PREFIX = "mlflow/"
"""MLflow's artifacts live under this prefix of the lake's artifacts zone (its role may write nothing else)."""
AUTH_CONFIG_PATH = "/tmp/mlflow-auth/basic_auth.ini"

DB_CA_PATH = "/etc/mlflow/database-ca/ca.pem"
"""Where the database's CA roots are mounted (ConfigMap `mlflow-database-ca`): libpq's `sslrootcert`."""
DB_CA_CONFIGMAP = "mlflow-database-ca"
DB_HOOK_DIR = "/tmp/mlflow-db-hook"

# The database password never sits in the server's URI. This module, written by the launcher as `sitecustomize`
# into a directory on PYTHONPATH, is imported by every Python process of the server (the CLI, each uvicorn worker)
# and registers a process-wide SQLAlchemy `do_connect` hook: each NEW connection to the host and user of the
# connection secret gets the current password. The password comes from the secret the connection secret names
# (`password_secret_id`: the RDS-managed master secret, which RDS rotates) or, without one, from the connection
# secret itself; it is cached, and read again when a connection fails: with the new AWSCURRENT password, or during
# a rotation (RDS has already changed the password, Secrets Manager not yet moved AWSCURRENT) the AWSPENDING one.
# Pooled connections are unaffected by a password change (PostgreSQL checks the password at login only).
MLFLOW_DB_HOOK = r'''
"""MLflow platform hook: the database password from Secrets Manager for each new connection."""
import json, os, sys, threading


def _install():
    secret_id = os.environ.get("MLFLOW_DB_SECRET_ID")
    if not secret_id:
        return
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        return
    lock = threading.Lock()
    state = {}

    def read(sid, stage="AWSCURRENT"):
        if "client" not in state:
            import boto3
            state["client"] = boto3.client("secretsmanager")
        return json.loads(state["client"].get_secret_value(SecretId=sid, VersionStage=stage)["SecretString"])

    def connection():
        with lock:
            if "conn" not in state:
                state["conn"] = read(secret_id)
            return state["conn"]

    def password(refresh=False, stage="AWSCURRENT"):
        conn = connection()
        source = conn.get("password_secret_id")
        if not source:
            return conn.get("password")
        with lock:
            if refresh or stage != "AWSCURRENT" or "password" not in state:
                value = read(source, stage)["password"]
                if stage != "AWSCURRENT":
                    return value
                state["password"] = value
            return state["password"]

    def ours(cparams):
        conn = connection()
        return (conn.get("engine") == "postgres" and cparams.get("host") == conn["host"]
                and str(cparams.get("port", 5432)) == str(conn["port"]) and cparams.get("user") == conn["username"])

    def do_connect(dialect, conn_rec, cargs, cparams):
        if not ours(cparams):
            return None
        dbapi = dialect.loaded_dbapi
        tried = cparams["password"] = password()
        try:
            return dbapi.connect(*cargs, **cparams)
        except dbapi.OperationalError:
            if not connection().get("password_secret_id"):
                raise
            candidates = [lambda: password(refresh=True), lambda: password(stage="AWSPENDING")]
            for candidate in candidates:
                try:
                    fresh = candidate()
                except Exception:  # no AWSPENDING version outside a rotation
                    continue
                if fresh and fresh != tried:
                    sys.stderr.write("mlflow-db-hook: connection refused; retrying with the password now in "
                                     "Secrets Manager\n")
                    tried = cparams["password"] = fresh
                    try:
                        return dbapi.connect(*cargs, **cparams)
                    except dbapi.OperationalError:
                        continue
            raise

    event.listen(Engine, "do_connect", do_connect)


_install()
'''.strip()

# Runs as the container's command. It reads the connection secret with the pod's own credentials (Pod Identity),
# puts the backend URI (no password: see MLFLOW_DB_HOOK) and the admin credentials in the server's environment only
# (never in the pod spec, never on disk except the auth config and the hook on an in-memory volume), and replaces
# itself with `mlflow server`. TLS: `sslmode` from the secret (the platform writes verify-full; verify-full when
# absent) and the CA roots at MLFLOW_DB_CA_FILE.
MLFLOW_LAUNCHER = r"""
import json, os, sys
from urllib.parse import quote, urlencode
import boto3
sm = boto3.client("secretsmanager")
db = json.loads(sm.get_secret_value(SecretId=os.environ["MLFLOW_DB_SECRET_ID"])["SecretString"])
if db.get("engine") == "sqlite":
    uri = "sqlite:///" + db["path"]
else:
    hook = os.environ.get("MLFLOW_DB_HOOK_DIR", "/tmp/mlflow-db-hook")
    os.makedirs(hook, mode=0o700, exist_ok=True)
    with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
        f.write(@DB_HOOK_SOURCE@)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (hook, os.environ.get("PYTHONPATH")) if p)
    query = {"sslmode": db.get("sslmode", "verify-full")}
    if query["sslmode"] in ("verify-ca", "verify-full") and os.environ.get("MLFLOW_DB_CA_FILE"):
        query["sslrootcert"] = os.environ["MLFLOW_DB_CA_FILE"]
    uri = "postgresql+psycopg2://%s@%s:%s/%s?%s" % (
        quote(db["username"], safe=""), db["host"], db["port"], db["dbname"], urlencode(query))
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
""".strip().replace("@DB_HOOK_SOURCE@", repr(MLFLOW_DB_HOOK), 1)


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
    db_ca_file: str | None = DB_CA_PATH
    """The CA roots the database's certificate must chain to (None: libpq's default, ~/.postgresql/root.crt)."""


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
    if server.db_ca_file:
        env["MLFLOW_DB_CA_FILE"] = server.db_ca_file
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
    image: ImageRef,
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
    # The auth config (it holds the database URI) and the password hook live in memory only.
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    if server.db_ca_file:
        directory, file = server.db_ca_file.rsplit("/", 1)
        mounts.append({"name": "database-ca", "mountPath": directory, "readOnly": True})
        volumes.append(
            {"name": "database-ca", "configMap": {"name": DB_CA_CONFIGMAP, "items": [{"key": file, "path": file}]}}
        )
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
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
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
    *,
    username: str,
    host: str,
    port: int,
    dbname: str,
    password_secret_id: str | None = None,
    password: str | None = None,
    sslmode: str = "verify-full",
) -> str:
    """The database connection secret (JSON, the field names of RDS's secrets plus `sslmode`): where to connect
    and as whom, and `password_secret_id`, the secret that holds the password (the RDS-managed master secret,
    JSON with `username` and `password`, which RDS rotates). A `password` instead is for databases without one
    (the contract tests' own PostgreSQL); exactly one of the two."""
    if (password is None) == (password_secret_id is None):
        raise ValueError("the database secret needs exactly one of password and password_secret_id")
    value: dict[str, Any] = {"engine": "postgres", "username": username, "host": host, "port": port}
    value.update(dbname=dbname, sslmode=sslmode)
    if password_secret_id is not None:
        value["password_secret_id"] = password_secret_id
    else:
        value["password"] = password
    return json.dumps(value, sort_keys=True)


RDS_CA_ROOTS = "data/rds-ca-roots.pem"
"""Amazon RDS's G1 root authorities of every region (source, selection and sha256: data/rds-ca-roots.json)."""


def rds_ca_bundle(region: str) -> str:
    """The PEM roots an RDS database's certificate in `region` chains to: the region's RSA2048, RSA4096 and ECC384
    G1 roots (whichever `ca_cert_identifier` the instance uses), each after a comment line naming it."""
    from importlib import resources

    text = resources.files("mlplatform.infra.mlops").joinpath(RDS_CA_ROOTS).read_text()
    blocks = text.split("# Amazon RDS ")[1:]
    chosen = ["# Amazon RDS " + b for b in blocks if b.startswith(f"{region} Root CA ")]
    if not chosen:
        raise ValueError(
            f"no Amazon RDS root certificates for region {region!r} in infra/mlops/{RDS_CA_ROOTS}: add the "
            f"region's roots from https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem "
            "(see data/rds-ca-roots.json)"
        )
    return "".join(chosen)


def database_ca_configmap(region: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The ConfigMap MLflow's pods mount at DB_CA_PATH: the region's RDS roots (public certificates)."""
    key = DB_CA_PATH.rsplit("/", 1)[1]
    return {
        "metadata": {"name": DB_CA_CONFIGMAP, "namespace": MLFLOW_NAMESPACE, "labels": dict(labels)},
        "data": {key: rds_ca_bundle(region)},
    }


def admin_secret_value(*, username: str, password: str, flask_secret_key: str) -> str:
    return json.dumps(
        {"username": username, "password": password, "flask_secret_key": flask_secret_key}, sort_keys=True
    )


# --- MLflow accounts --------------------------------------------------------------------------------------------

ACCOUNTS_JOB = "mlflow-accounts"
ACCOUNTS_SECRET = "mlflow-accounts"
"""The Secret in the `mlflow` namespace holding every managed account's password (JSON `accounts.json`)."""
ACCOUNTS_SELECTOR = {"app.kubernetes.io/name": "mlflow-accounts"}
ACCOUNTS_SERVICE_ACCOUNT = "mlflow-accounts"
"""The Job's own identity: its Pod Identity role may read the admin secret (`MlflowCloud`), nothing else."""
ACCOUNTS_GENERATION_ANNOTATION = "mlplatform.io/accounts-generation"
ACCOUNTS_MOUNT = "/etc/mlflow-accounts"
ACCOUNTS_FILE = "accounts.json"
REGISTRY_READER_USER = "registry-reader"
"""The account KServe's storage container and vLLM's resolver sign in as (READ on what the teams promote)."""
TEAM_CREDENTIALS_SECRET = "mlflow-credentials"
"""A team namespace's Secret (keys `username`, `password`) its workflow steps sign in to MLflow with."""


def team_user(team: str) -> str:
    """A team's MLflow account: owns (MANAGE) the experiments and registered models its workflows create."""
    return f"team-{team}"


def accounts_source() -> str:
    """The program the accounts Job runs (`infra/mlops/accounts.py`, as is, in the MLflow image)."""
    from importlib import resources

    return resources.files("mlplatform.infra.mlops").joinpath("accounts.py").read_text(encoding="utf-8")


def accounts_secret_value(passwords: Mapping[str, str]) -> str:
    return json.dumps(dict(passwords), sort_keys=True)


def credentials_secret(
    *, name: str, namespace: str, username: str, password: Any, labels: Mapping[str, str]
) -> dict[str, Any]:
    """An Opaque Secret with `username` and `password` (a str, or the generated password's Output): what MLflow's
    client reads as MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (the pods name the keys in
    `secretKeyRef`s)."""
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "type": "Opaque",
        "stringData": {"username": username, "password": password},
    }


def accounts_job(
    *,
    image: ImageRef,
    admin_secret_id: str,
    region: str,
    usernames: Sequence[str],
    labels: Mapping[str, str],
    node_selector: Mapping[str, str],
    generation: int = 0,
    tracking_uri: str = MLFLOW_IN_CLUSTER_URL,
) -> dict[str, Any]:
    """The Job that creates the managed accounts, or sets their passwords, as MLflow's administrator, in the
    server's image, as its own service account `mlflow-accounts` (its Pod Identity role reads the admin secret and
    nothing else). The usernames and the passwords' `generation` (config `mlflow.auth.accounts_generation`, which
    also regenerates the passwords) are in the pod template, so adding an account or new passwords change the Job:
    Pulumi replaces it (a Job's template is immutable) and it runs again. Both are known in a first preview.
    `pulumi.com/replaceUnready`: a Job that failed (MLflow down past its retries) is replaced by the next
    `pulumi up` instead of blocking it."""
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_ADMIN_SECRET_ID": admin_secret_id,
        "MLFLOW_ACCOUNTS_FILE": f"{ACCOUNTS_MOUNT}/{ACCOUNTS_FILE}",
        "MLFLOW_ACCOUNTS": ",".join(sorted(usernames)),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "HOME": "/tmp",
    }
    pod_labels = {**labels, **ACCOUNTS_SELECTOR}
    return {
        "metadata": {
            "name": ACCOUNTS_JOB,
            "namespace": MLFLOW_NAMESPACE,
            "labels": pod_labels,
            "annotations": {"pulumi.com/replaceUnready": "true"},
        },
        "spec": {
            "backoffLimit": 6,  # ~6 minutes of exponential back-off while a new server starts
            "activeDeadlineSeconds": 900,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {ACCOUNTS_GENERATION_ANNOTATION: str(generation)}},
                "spec": {
                    "serviceAccountName": ACCOUNTS_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "securityContext": pod_security(),
                    "nodeSelector": dict(node_selector),
                    "containers": [
                        {
                            "name": "sync",
                            "image": image,
                            "command": ["python", "-c", accounts_source()],
                            "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "256Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": restricted_container_security(),
                            "volumeMounts": [
                                {"name": "accounts", "mountPath": ACCOUNTS_MOUNT, "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "accounts",
                            "secret": {"secretName": ACCOUNTS_SECRET, "defaultMode": 0o440},  # group: fsGroup
                        },
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }


# --- Ray --------------------------------------------------------------------------------------------------------

RAY_NAMESPACE = "ray"
"""Platform clusters (configured without a team). No team namespace may reach it, and their role reads no team's
prefix. A team's clusters run in the team's own namespace instead."""
RAY_OPERATOR_NAMESPACE = "kuberay-system"
RAY_SERVICE_ACCOUNT = "ray"
"""Workers of platform clusters: their Pod Identity role (`RayCloud`) reads and writes `ray/` in the artifacts zone.
A team cluster's workers run as the team's `workload` service account (the team's role) instead."""
RAY_HEAD_SERVICE_ACCOUNT = "ray-head"
"""Heads, in every namespace that hosts clusters. KubeRay binds the autoscaler's Role (pods get/list/watch/patch,
pods/resize patch, rayclusters get/patch, in the cluster's namespace) to the head's service account, named after
the cluster unless the head names one, and then expects it to exist (ray-operator/controllers/ray/common/rbac.go
BuildRole and BuildRoleBinding, utils/util.go GetHeadGroupServiceAccountName, raycluster_controller.go
reconcileAutoscalerServiceAccount; read at v1.7.0, 59d663ae, 2026-12-04). A service account of its own keeps those
rights off the workers' account. The head also runs submitted jobs' driver code, so the namespace's AWS role (the
team's, or the platform clusters') has a Pod Identity association for it too."""
RAY_METRICS_PORT = 8080
RAY_DASHBOARD_PORT = 8265
RAY_CLIENT_PORT = 10001
RAY_GCS_PORT = 6379
RAY_PREFIX = "ray/"
"""Platform clusters read and write under this prefix of the artifacts zone, and nothing else of the lake."""
RAY_AUTOSCALER_CPU, RAY_AUTOSCALER_MEMORY = "200m", "512Mi"
"""Requests of the autoscaler container KubeRay adds to each head. `autoscalerOptions.resources` replaces KubeRay's
default (500m / 512Mi requests and limits) as a whole (common/pod.go BuildAutoscalerContainer and
mergeAutoscalerOverrides, v1.7.0)."""
KUBERAY_INIT_CPU, KUBERAY_INIT_MEMORY = "200m", "256Mi"
"""Requests (and limits) of the `wait-gcs-ready` init container KubeRay adds to each worker, hard-coded so that a
ResourceQuota admits it; its securityContext is the Ray container's (common/pod.go DefaultWorkerPodTemplate,
v1.7.0). Heads get no init container (TLS off)."""
AUTOSCALER_TOKEN_VOLUME = "autoscaler-api-token"
RAY_HEAD_SELECTOR = {"ray.io/node-type": "head"}
"""The label KubeRay puts on head pods (utils.RayNodeTypeLabelKey, rayv1.HeadNode, v1.7.0)."""
RAY_HEAD_API_POLICY = "ray-head-to-api-server"
RAY_OPERATOR_POLICY = "ray-head-from-operator"
KUBERAY_OPERATOR_USER = f"system:serviceaccount:{RAY_OPERATOR_NAMESPACE}:kuberay-operator"
"""The operator's identity: the chart's service account is its fullname, `kuberay-operator` (values.yaml
fullnameOverride, _helpers.tpl kuberay-operator.serviceAccount.name, v1.7.0)."""
KUBERAY_TENANT_POLICY = "mlplatform-kuberay-team-objects"


@dataclass(frozen=True, kw_only=True)
class RayGpuGroup:
    name: str
    pool: str
    gpus_per_worker: int
    min_replicas: int
    max_replicas: int
    cpu: str
    memory: str
    efa: int = 0
    """EFA devices per worker on an efa pool (`vpc.amazonaws.com/efa`, with the libfabric environment); 0 without."""


@dataclass(frozen=True, kw_only=True)
class RayClusterSpec:
    name: str
    ray_version: str
    image: ImageRef
    gpu_image: ImageRef
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
    team: str | None = None
    """The team that owns the cluster; None for a platform cluster."""
    namespace: str = RAY_NAMESPACE
    """The team's namespace, or `ray` for a platform cluster."""
    worker_service_account: str = RAY_SERVICE_ACCOUNT
    """The team's `workload` service account (its Pod Identity role), or `ray` for a platform cluster."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels of the cluster and its pods besides the platform's: a team cluster's carry the team's cost labels."""
    mlflow_credentials: str | None = None
    """A team cluster: the Secret (in its namespace) with the team's MLflow account. Its pods get it as
    MLFLOW_TRACKING_USERNAME/PASSWORD, so a training job logs to MLflow as the team without the credentials
    travelling in the job's runtime_env (which anyone who can list the cluster's jobs reads)."""


RAY_WORKER_GRACE_SECONDS = 90
"""GPU workers' terminationGracePeriodSeconds: inside a spot notice (two minutes) with room for Karpenter to see
the event and for a pool's `termination_grace_period` (2m) to delete do-not-disrupt workers in time."""
RAY_DRAIN_SECONDS = 80
"""RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S of GPU workers: on SIGTERM, `ray start --block` marks its node as draining
for preemption this long (the deadline Ray Train's preemption watcher reports), just under the grace period."""


def checkpoints_prefix(team: str) -> str:
    """A team's prefix in the lake's artifacts zone for its Ray Train runs' checkpoints (its role reads and writes
    it; `<prefix><run>/checkpoint_...`)."""
    return f"checkpoints/{team}/"


def mlflow_credentials_env(secret: str) -> list[dict[str, Any]]:
    """MLFLOW_TRACKING_USERNAME/PASSWORD from a Secret's `username` and `password` (MLflow's client reads them on
    each request)."""
    return [
        {"name": f"MLFLOW_TRACKING_{key.upper()}", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for key in ("username", "password")
    ]


def _ray_container(
    name: str,
    image: ImageRef,
    cpu: str,
    memory: str,
    gpus: int = 0,
    ports: Sequence[Mapping[str, Any]] = (),
    credentials: str | None = None,
    efa: int = 0,
) -> dict[str, Any]:
    """Requests equal limits: Ray schedules by the resources it is told it has, so the pod must really have them.
    With `credentials`, the MLflow account in that Secret. With `efa`, that many EFA devices and libfabric's
    environment for them (`EFA_ENV`): a pod on an efa pool that requested none would get no EFA device, and NCCL
    would fall back to TCP."""
    resources: dict[str, str] = {"cpu": cpu, "memory": memory}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    env = mlflow_credentials_env(credentials) if credentials else []
    if gpus:
        # SIGTERM (a drained node) makes Ray mark the node as draining for preemption before it stops.
        env.append({"name": "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "value": str(RAY_DRAIN_SECONDS)})
    if efa:
        resources[EFA_RESOURCE] = str(efa)
        env += [{"name": k, "value": v} for k, v in EFA_ENV.items()]
    return {
        "name": name,
        "image": image,
        **({"env": env} if env else {}),
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
    container: dict[str, Any],
    labels: Mapping[str, str],
    node_selector: Mapping[str, str],
    gpu: bool,
    service_account: str,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        # Ray code never calls the Kubernetes API: no token in any Ray container (the head's autoscaler gets its own,
        # see `ray_cluster`). Pod Identity does not need one: its webhook adds a projected token of its own audience
        # (pods.eks.amazonaws.com) whatever the automount says (aws/amazon-eks-pod-identity-webhook
        # pkg/handler/handler.go getPodSpecPatch, 3bf80a3, 2026-08-11).
        "automountServiceAccountToken": False,
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
        spec["terminationGracePeriodSeconds"] = RAY_WORKER_GRACE_SECONDS
        # NCCL and the object store use /dev/shm; the container default (64 MiB) is far too small.
        spec["volumes"].append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def ray_cluster(spec: RayClusterSpec, labels: Mapping[str, str]) -> dict[str, Any]:
    """A ray.io/v1 RayCluster in its namespace: token authentication, a head without GPUs, a CPU group and GPU
    groups that the in-tree autoscaler scales from zero (Karpenter then adds and removes the nodes).

    Identities: the workers run as `spec.worker_service_account` (the team's role, or the platform clusters'), the
    head as `ray-head` (the same AWS role, and KubeRay's autoscaler Role). No Ray container gets a Kubernetes
    token: the pod-level automount is off and the head's token is projected into the autoscaler container alone,
    where Ray's KubeRay node provider reads it (ray/autoscaler/_private/kuberay/node_provider.py
    load_k8s_secrets: the standard path). Jobs' code, which runs in the head's Ray container and in the workers,
    has the namespace's AWS role and no Kubernetes API rights.

    The token: KubeRay appends `autoscalerOptions.volumeMounts` to the autoscaler container and puts the head's
    service account on the pod (common/pod.go DefaultHeadPodTemplate, mergeAutoscalerOverrides, v1.7.0). Ray's
    client reads the token once, when the autoscaler starts (KubernetesHttpApiClient.__init__ in node_provider.py,
    ray master read 2026-12-04; the 2.60.0 tag itself was not readable here), and reaches the API server at
    $KUBERNETES_SERVICE_HOST:443. The volume asks for 3607 s, as the automount does, for which the API server issues
    a token valid for its extended period (kubernetes pkg/registry/core/serviceaccount/storage/token.go
    WarnOnlyBoundTokenExpirationSeconds): 90 days on EKS (EKS user guide, "Service account tokens", read
    2026-12-04). A head older than that needs a restart before its autoscaler can scale again, as with an
    automounted token."""
    labels = {**labels, **spec.labels}
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
        credentials=spec.mlflow_credentials,
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
                _ray_container(
                    "ray-worker", spec.image, spec.cpu_cpu, spec.cpu_memory, credentials=spec.mlflow_credentials
                ),
                {**pod_labels, "mlplatform.io/ray-group": "cpu"},
                spec.cpu_node_selector,
                gpu=False,
                service_account=spec.worker_service_account,
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
                    _ray_container(
                        "ray-worker",
                        spec.gpu_image,
                        group.cpu,
                        group.memory,
                        group.gpus_per_worker,
                        credentials=spec.mlflow_credentials,
                        efa=group.efa,
                    ),
                    {**pod_labels, "mlplatform.io/ray-group": group.name, spec.pool_label: group.pool},
                    {spec.pool_label: group.pool},
                    gpu=True,
                    service_account=spec.worker_service_account,
                ),
            }
        )
    head_pod = _ray_pod(
        head,
        {**pod_labels, "mlplatform.io/ray-group": "head"},
        spec.head_node_selector,
        gpu=False,
        service_account=RAY_HEAD_SERVICE_ACCOUNT,
    )
    head_pod["spec"]["volumes"].append(service_account_token_volume(AUTOSCALER_TOKEN_VOLUME))
    # Consolidation must not move the head: every running job would be lost with it.
    head_pod["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    autoscaler = {"cpu": RAY_AUTOSCALER_CPU, "memory": RAY_AUTOSCALER_MEMORY}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": dict(labels)},
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
                    "requests": dict(autoscaler),
                    "limits": {"cpu": "500m", "memory": RAY_AUTOSCALER_MEMORY},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": True,
                },
                # The only container with a Kubernetes token: KubeRay appends these mounts to the autoscaler's
                # (common/pod.go mergeAutoscalerOverrides, v1.7.0).
                "volumeMounts": [
                    {"name": AUTOSCALER_TOKEN_VOLUME, "mountPath": SERVICE_ACCOUNT_TOKEN_PATH, "readOnly": True}
                ],
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


@dataclass(frozen=True, kw_only=True)
class RayJobShape:
    """The cluster a RayJob makes for one run: a head that runs nothing, and `workers` GPU workers of a pool."""

    pool: str
    workers: int
    gpus_per_worker: int
    cpu: str
    memory: str
    head_cpu: str
    head_memory: str
    active_deadline_seconds: int
    ray_version: str
    head_node_selector: Mapping[str, str] = field(default_factory=dict)
    pool_label: str = "mlplatform.io/gpu-pool"
    efa: int = 0
    """EFA devices per worker when the pool has EFA; 0 without."""


RAY_JOB_TTL_SECONDS = 300
"""How long the RayJob's cluster outlives the job (its logs can still be read from the head)."""


def ray_job(
    shape: RayJobShape,
    *,
    image: ImageRef,
    entrypoint: str,
    entrypoint_gpus: int | None = None,
    generate_name: str,
    service_account: str,
    credentials: str | None,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A ray.io/v1 RayJob (KubeRay v1.7.0) that runs `entrypoint` on a cluster of its own and deletes the cluster
    after the job (`shutdownAfterJobFinishes`, after `RAY_JOB_TTL_SECONDS`).

    Submission is `HTTPMode`: the operator submits the job to the head's dashboard and follows it there, as it does
    for every RayJob (the `K8sJobMode` default adds a submitter pod with no securityContext, which Pod Security
    `restricted` refuses in a team namespace; ray-operator/controllers/ray/common/job.go, v1.7.0). The operator
    authenticates with the cluster's generated token (`authOptions.mode: token`, Secret <cluster>/auth_token).
    `entrypointNumGpus` puts the driver on a GPU worker (the head has num-gpus 0); `entrypoint_gpus=0` leaves it on
    the head, for a driver whose GPU work runs in Ray Train's workers. The cluster is fixed-size (no
    autoscaler, so no Kubernetes token anywhere); head and workers run as `service_account` (the team's
    `workload`: its AWS role), with `credentials` (the team's MLflow account) in their environment and HOME on
    Ray's writable /tmp/ray volume."""
    pod_labels = {**labels, "mlplatform.io/ray-job": generate_name.rstrip("-")}
    home = {"name": "HOME", "value": "/tmp/ray"}

    def container(
        name: str, cpu: str, memory: str, gpus: int = 0, ports: Sequence[Mapping[str, Any]] = (), efa: int = 0
    ) -> Any:
        built = _ray_container(name, image, cpu, memory, gpus, ports, credentials=credentials, efa=efa)
        built["env"] = [dict(home), *built.get("env", [])]
        return built

    head = container(
        "ray-head",
        shape.head_cpu,
        shape.head_memory,
        ports=[
            {"name": "gcs", "containerPort": RAY_GCS_PORT},
            {"name": "dashboard", "containerPort": RAY_DASHBOARD_PORT},
            {"name": "client", "containerPort": RAY_CLIENT_PORT},
        ],
    )
    head_pod = _ray_pod(
        head,
        {**pod_labels, "mlplatform.io/ray-group": "head"},
        shape.head_node_selector,
        gpu=False,
        service_account=service_account,
    )
    head_pod["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    worker_pod = _ray_pod(
        container("ray-worker", shape.cpu, shape.memory, shape.gpus_per_worker, efa=shape.efa),
        {**pod_labels, "mlplatform.io/ray-group": "gpu", shape.pool_label: shape.pool},
        {shape.pool_label: shape.pool},
        gpu=True,
        service_account=service_account,
    )
    worker_pod["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}  # the job runs on them
    metrics = {"metrics-export-port": str(RAY_METRICS_PORT)}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"generateName": generate_name, "labels": dict(labels)},
        "spec": {
            "entrypoint": entrypoint,
            "entrypointNumGpus": shape.gpus_per_worker if entrypoint_gpus is None else entrypoint_gpus,
            "submissionMode": "HTTPMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": RAY_JOB_TTL_SECONDS,
            "activeDeadlineSeconds": shape.active_deadline_seconds,
            "backoffLimit": 0,
            "rayClusterSpec": {
                "rayVersion": shape.ray_version,
                "authOptions": {"mode": "token"},
                "enableInTreeAutoscaling": False,
                "headGroupSpec": {
                    "rayStartParams": {**metrics, "num-gpus": "0", "num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "serviceType": "ClusterIP",
                    "template": head_pod,
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "gpu",
                        "replicas": shape.workers,
                        "minReplicas": shape.workers,
                        "maxReplicas": shape.workers,
                        "rayStartParams": {**metrics, "num-gpus": str(shape.gpus_per_worker)},
                        "template": worker_pod,
                    }
                ],
            },
        },
    }


def ray_service_account(name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A Ray service account: no token is ever mounted from it by default (pods that need one project it)."""
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "automountServiceAccountToken": False,
    }


def _network_policy(namespace: str, name: str, labels: Mapping[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "spec": spec}


def _namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def ray_head_policies(namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """NetworkPolicies that every namespace hosting clusters needs on top of its own (a team's six, or the `ray`
    namespace's): the heads' autoscaler reaches the API server (it reads pods and patches its RayCluster), and the
    KubeRay operator reaches the heads' dashboard (how it submits and follows RayJobs and RayServices).

    Both select head pods by KubeRay's `ray.io/node-type: head` label. A team member could put that label on a pod
    of their own: it would then reach the API server's address (every request still needs a token with rights) and
    accept the operator's connections; neither crosses the namespace."""
    heads = {"matchLabels": dict(RAY_HEAD_SELECTOR)}
    return [
        _network_policy(namespace, RAY_HEAD_API_POLICY, labels, api_server_egress(heads)),
        _network_policy(
            namespace,
            RAY_OPERATOR_POLICY,
            labels,
            {
                "podSelector": heads,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [_namespace_peer(RAY_OPERATOR_NAMESPACE)],
                        "ports": [{"protocol": "TCP", "port": RAY_DASHBOARD_PORT}],
                    }
                ],
            },
        ),
    ]


def ray_namespace_policies(*, monitoring_namespace: str | None, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The `ray` namespace (platform clusters): default deny, then the Ray pods among themselves (Ray's GCS, raylet,
    object manager and worker ports are spread over wide and partly random ranges, so every port between pods of
    the namespace), DNS, HTTPS to public addresses (S3 through the gateway endpoint: a NetworkPolicy cannot name its
    prefix list) and the Pod Identity agent, Prometheus on the metrics port, and `ray_head_policies`. Nothing from
    any other namespace: team namespaces reach no Ray port here."""
    ns = RAY_NAMESPACE
    policies = [
        _network_policy(ns, "default-deny", labels, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _network_policy(
            ns,
            "allow-same-namespace",
            labels,
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        ),
        _network_policy(
            ns,
            "allow-dns",
            labels,
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {**_namespace_peer("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        _network_policy(
            ns,
            "allow-aws-apis",
            labels,
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    },
                    {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
                ],
            },
        ),
    ]
    if monitoring_namespace:
        policies.append(
            _network_policy(
                ns,
                "allow-monitoring",
                labels,
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [_namespace_peer(monitoring_namespace)],
                            "ports": [{"protocol": "TCP", "port": RAY_METRICS_PORT}],
                        }
                    ],
                },
            )
        )
    return policies + ray_head_policies(ns, labels)


def kuberay_operator_values(
    *,
    replicas: int,
    node_selector: Mapping[str, str],
    labels: Mapping[str, str],
    watch_namespaces: Sequence[str] = (RAY_NAMESPACE,),
) -> dict[str, Any]:
    """Values of the kuberay-operator chart (keys as in its values.yaml at v1.7.0).

    Namespaced: with `singleNamespaceInstall` and `crNamespacedRbacEnable`, the chart makes a Role and RoleBinding
    for the operator in each `watchNamespace` (templates/multiple_namespaces_role.yaml and _rolebinding.yaml) and
    passes them to `--watch-namespace` (templates/deployment.yaml); it gets no rights in any other namespace. The
    `ray` namespace and each team namespace that hosts a configured cluster are watched. The Roles include creating
    pods, Services, service accounts, Roles and RoleBindings there (what a RayCluster and its autoscaler need), and
    also Ingresses, NetworkPolicies, Gateways and HTTPRoutes (templates/_helpers.tpl role.consistentRules): in a
    team namespace `kuberay_team_admission_policy` refuses those to the operator."""
    return {
        "replicas": replicas,
        "nodeSelector": dict(node_selector),
        "labels": dict(labels),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "metrics": {"enabled": True},
        "singleNamespaceInstall": True,
        "crNamespacedRbacEnable": True,
        "watchNamespace": list(watch_namespaces),
    }


def kuberay_team_admission_policy(labels: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding: in team namespaces (the tenant label, which members cannot
    change) the KubeRay operator may not create or change Ingresses, NetworkPolicies, Gateways or HTTPRoutes.

    Team members may not write those objects themselves (`infra.tenancy.documents.tenant_role_rules`), but they
    write RayClusters, RayJobs and RayServices, and the operator, whose Role in each watched namespace allows all
    four (chart templates/_helpers.tpl role.consistentRules, v1.7.0), makes them from fields of those: an Ingress
    to the head's dashboard from `headGroupSpec.enableIngress`, carrying every annotation of the RayCluster
    (common/ingress.go BuildIngressForHeadService); NetworkPolicies from `spec.networkPolicy` (feature gate
    RayClusterNetworkPolicy, off by default); a Gateway and an HTTPRoute from a RayService's incremental upgrade
    (gate RayServiceIncrementalUpgrade, on by default). The platform's clusters use none of them. LoadBalancer and
    NodePort head Services (`headGroupSpec.serviceType`) are refused by the team's quota already."""
    operations = ["CREATE", "UPDATE"]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": KUBERAY_TENANT_POLICY, "labels": dict(labels)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["networking.k8s.io"],
                        "apiVersions": ["*"],
                        "operations": operations,
                        "resources": ["ingresses", "networkpolicies"],
                    },
                    {
                        "apiGroups": ["gateway.networking.k8s.io"],
                        "apiVersions": ["*"],
                        "operations": operations,
                        "resources": ["gateways", "httproutes"],
                    },
                ]
            },
            "validations": [
                {
                    "expression": f"request.userInfo.username != '{KUBERAY_OPERATOR_USER}'",
                    "message": "the KubeRay operator may not create Ingresses, NetworkPolicies, Gateways or "
                    "HTTPRoutes in a team namespace (RayCluster enableIngress or networkPolicy, RayService "
                    "incremental upgrades); the platform routes and fences team namespaces",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": KUBERAY_TENANT_POLICY, "labels": dict(labels)},
        "spec": {
            "policyName": KUBERAY_TENANT_POLICY,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]}
            },
        },
    }
    return policy, binding
