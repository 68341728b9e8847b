"""`mlp smoke STACK`: post-deploy checks that a platform works end to end.

Each check drives a real client against the deployed service and reports pass or fail with the reason:

- kubernetes: GPU nodes expose allocatable `nvidia.com/gpu` (where pools keep warm capacity), platform
  Deployments are ready;
- mlflow: the MLflow client logs a run with a metric and an artifact and reads the artifact back;
- ray: Ray's JobSubmissionClient runs a job with one remote task on each configured Ray cluster;
- vllm: one completion from each configured model through the OpenAI-compatible API;
- prometheus: a DCGM (GPU) metric is present.

Services are reached through `kubectl port-forward` unless a URL is given. Credentials come from where the platform
keeps them: the MLflow admin secret in Secrets Manager, each Ray cluster's token in its Kubernetes Secret.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLATFORM_NAMESPACES = (
    "karpenter",
    "kuberay-system",
    "mlflow",
    "kserve",
    "cert-manager",
    "envoy-gateway-system",
    "keda",
    "monitoring",
)
DCGM_METRIC = "DCGM_FI_DEV_GPU_UTIL"
RAY_JOB = (
    'python -c "import ray; ray.init(); f = ray.remote(num_cpus=1)(lambda: 6 * 7); '
    "print('mlp-smoke-answer', ray.get(f.remote()))\""
)
CHECK_NAMES = ("kubernetes", "mlflow", "ray", "vllm", "prometheus")


class SmokeError(Exception):
    """A check could not run (no URL, no credentials); reported as that check's failure."""


@dataclass(frozen=True)
class CheckResult:
    check: str
    target: str
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass
class Timer:
    start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 2)


# --- HTTP helpers -----------------------------------------------------------------------------------------------


def http_json(
    method: str,
    url: str,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")[:300]


# --- checks -----------------------------------------------------------------------------------------------------


def check_mlflow(url: str, username: str, password: str, timeout: float = 60) -> CheckResult:
    """Log a run with a param, a metric and an artifact through the MLflow client, then read the artifact back."""
    timer = Timer()
    target = url
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError:
        return CheckResult("mlflow", target, False, "the MLflow client is not installed (pip install '.[smoke]')")
    marker = secrets.token_hex(8)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ["MLFLOW_TRACKING_USERNAME"] = username
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)  # artifacts behind the server's proxy resolve against the tracking URI
    try:
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("mlp-smoke")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment("mlp-smoke")
        run = client.create_run(experiment_id, run_name=f"smoke-{marker}")
        run_id = run.info.run_id
        client.log_param(run_id, "marker", marker)
        client.log_metric(run_id, "smoke", 1.0)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "smoke.txt"
            path.write_text(marker)
            client.log_artifact(run_id, str(path))
            back = Path(client.download_artifacts(run_id, "smoke.txt", str(Path(tmp) / "back"))).read_text()
        client.set_terminated(run_id)
        if back != marker:
            return CheckResult("mlflow", target, False, "the artifact read back differs from what was logged")
        store = run.info.artifact_uri
        return CheckResult(
            "mlflow", target, True, f"run {run_id} logged; artifact stored ({store}) and read back", timer.elapsed()
        )
    except Exception as exc:  # noqa: BLE001 - every client failure is this check's result
        return CheckResult("mlflow", target, False, _reason(exc), timer.elapsed())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        mlflow.set_tracking_uri(previous_uri)


def check_ray(url: str, token: str | None, cluster: str, timeout: float = 600) -> CheckResult:
    """Submit a job that runs one remote task (so a worker must exist or be scaled up) and wait for its answer."""
    timer = Timer()
    target = f"{cluster} ({url})"
    try:
        from ray.job_submission import JobStatus, JobSubmissionClient
    except ImportError:
        return CheckResult("ray", target, False, "Ray's job client is not installed (pip install '.[smoke]')")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        client = JobSubmissionClient(url, headers=headers)
        job_id = client.submit_job(entrypoint=RAY_JOB, submission_id=f"mlp-smoke-{secrets.token_hex(4)}")
        status = client.get_job_status(job_id)
        while not status.is_terminal():
            if timer.elapsed() > timeout:
                client.stop_job(job_id)
                return CheckResult(
                    "ray",
                    target,
                    False,
                    f"job {job_id} still {status.value} after {timeout:.0f}s (no worker could start: check the "
                    "worker group's node pool and Karpenter)",
                    timer.elapsed(),
                )
            time.sleep(1)
            status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        if status != JobStatus.SUCCEEDED or "mlp-smoke-answer 42" not in logs:
            tail = " | ".join(logs.strip().splitlines()[-3:])
            return CheckResult("ray", target, False, f"job {job_id} {status.value}: {tail}", timer.elapsed())
        return CheckResult("ray", target, True, f"job {job_id} succeeded (a task returned 42)", timer.elapsed())
    except Exception as exc:  # noqa: BLE001
        return CheckResult("ray", target, False, _reason(exc), timer.elapsed())


def check_vllm(url: str, model: str, timeout: float = 120) -> CheckResult:
    """One completion from the OpenAI-compatible API."""
    timer = Timer()
    target = f"{model} ({url})"
    try:
        status, body = http_json(
            "POST",
            f"{url.rstrip('/')}/v1/completions",
            {"model": model, "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0},
            timeout=timeout,
        )
    except OSError as exc:
        return CheckResult("vllm", target, False, _reason(exc), timer.elapsed())
    if status != 200:
        return CheckResult("vllm", target, False, f"HTTP {status}: {str(body)[:200]}", timer.elapsed())
    try:
        text = body["choices"][0]["text"]
        tokens = body.get("usage", {}).get("completion_tokens")
    except (KeyError, IndexError, TypeError):
        return CheckResult("vllm", target, False, f"unexpected response: {str(body)[:200]}", timer.elapsed())
    if not text.strip():
        return CheckResult("vllm", target, False, "the completion is empty", timer.elapsed())
    return CheckResult("vllm", target, True, f"{tokens} token(s): {text.strip()[:60]!r}", timer.elapsed())


def check_prometheus(url: str, metric: str = DCGM_METRIC) -> CheckResult:
    """The GPU exporter's metric has at least one series."""
    timer = Timer()
    query = urllib.parse.urlencode({"query": metric})
    try:
        status, body = http_json("GET", f"{url.rstrip('/')}/api/v1/query?{query}", timeout=30)
    except OSError as exc:
        return CheckResult("prometheus", url, False, _reason(exc), timer.elapsed())
    if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
        return CheckResult("prometheus", url, False, f"HTTP {status}: {str(body)[:200]}", timer.elapsed())
    series = body["data"]["result"]
    if not series:
        return CheckResult(
            "prometheus",
            url,
            False,
            f"no {metric} series: no GPU node is running, or the DCGM exporter is not scraped",
            timer.elapsed(),
        )

    def where(labels: dict[str, str]) -> str:
        node = labels.get("node") or labels.get("Hostname") or labels.get("instance", "?")
        return f"{node}/{labels.get('gpu', '?')}"

    gpus = sorted({where(s["metric"]) for s in series})
    return CheckResult(
        "prometheus", url, True, f"{metric} present for {len(series)} GPU(s): {', '.join(gpus[:4])}", timer.elapsed()
    )


def check_kubernetes(core: Any, apps: Any, namespaces: Sequence[str], warm_pools: Sequence[str]) -> list[CheckResult]:
    """GPU nodes with allocatable GPUs (one per pool that keeps warm capacity), and ready platform Deployments."""
    results: list[CheckResult] = []
    timer = Timer()
    try:
        nodes = core.list_node().items
    except Exception as exc:  # noqa: BLE001
        return [CheckResult("kubernetes", "nodes", False, _reason(exc), timer.elapsed())]
    gpu_nodes: dict[str, int] = {}
    for node in nodes:
        allocatable = (node.status.allocatable or {}) if node.status else {}
        gpus = int(allocatable.get("nvidia.com/gpu", "0") or 0)
        pool = (node.metadata.labels or {}).get("mlplatform.io/gpu-pool")
        if pool and pool != "general":
            gpu_nodes[pool] = gpu_nodes.get(pool, 0) + gpus
    missing = [p for p in warm_pools if gpu_nodes.get(p, 0) == 0]
    if missing:
        results.append(
            CheckResult(
                "kubernetes",
                "gpu nodes",
                False,
                f"pool(s) {', '.join(missing)} keep warm capacity but no node of theirs has allocatable nvidia.com/gpu "
                "(device plugin not running, or the node did not join)",
                timer.elapsed(),
            )
        )
    else:
        shown = ", ".join(f"{p}: {n}" for p, n in sorted(gpu_nodes.items())) or "none running (pools scale from zero)"
        results.append(
            CheckResult("kubernetes", "gpu nodes", True, f"allocatable GPUs by pool: {shown}", timer.elapsed())
        )
    for namespace in namespaces:
        timer = Timer()
        try:
            deployments = apps.list_namespaced_deployment(namespace).items
        except Exception as exc:  # noqa: BLE001
            results.append(CheckResult("kubernetes", namespace, False, _reason(exc), timer.elapsed()))
            continue
        if not deployments:
            results.append(CheckResult("kubernetes", namespace, False, "no Deployments found", timer.elapsed()))
            continue
        unready = []
        for d in deployments:
            wanted = d.spec.replicas if d.spec.replicas is not None else 1
            ready = (d.status.ready_replicas or 0) if d.status else 0
            if ready < wanted:
                unready.append(f"{d.metadata.name} {ready}/{wanted}")
        ok = not unready
        detail = f"{len(deployments)} Deployment(s) ready" if ok else "not ready: " + ", ".join(unready)
        results.append(CheckResult("kubernetes", namespace, ok, detail, timer.elapsed()))
    return results


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# --- orchestration ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmokeOptions:
    checks: Sequence[str] = CHECK_NAMES
    kubeconfig: str | None = None
    context: str | None = None
    urls: Mapping[str, str] = field(default_factory=dict)
    """Override endpoints: mlflow, prometheus, ray:<cluster>, vllm:<model>."""
    timeout: float = 600
    wake: bool = False


@contextlib.contextmanager
def port_forward(namespace: str, service: str, port: int, kubeconfig: str | None, context: str | None) -> Iterator[str]:
    """`kubectl port-forward` to a Service on a free local port; yields the local URL."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SmokeError("kubectl is not on PATH; install it or pass the service URL (--url)")
    cmd = [kubectl, "-n", namespace, "port-forward", f"svc/{service}", f":{port}", "--address", "127.0.0.1"]
    if kubeconfig:
        cmd[1:1] = ["--kubeconfig", kubeconfig]
    if context:
        cmd[1:1] = ["--context", context]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
            if found:
                yield f"http://127.0.0.1:{found.group(1)}"
                return
        raise SmokeError(
            f"kubectl port-forward to {namespace}/{service} failed: {line.strip() if line else 'no output'}"
        )
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def run_smoke(cfg: Any, options: SmokeOptions, emit: Callable[[CheckResult], None]) -> list[CheckResult]:
    """Run the selected checks for a validated PlatformConfig; `emit` sees each result as it comes."""
    from mlplatform.infra.mlops.documents import MLFLOW_NAMESPACE, MLFLOW_PORT, MLFLOW_SERVICE, RAY_DASHBOARD_PORT
    from mlplatform.infra.serving.documents import SERVING_NAMESPACE, VLLM_PORT

    results: list[CheckResult] = []

    def record(result: CheckResult) -> None:
        results.append(result)
        emit(result)

    def endpoint(key: str, namespace: str, service: str, port: int) -> contextlib.AbstractContextManager[str]:
        if key in options.urls:
            return contextlib.nullcontext(options.urls[key])
        return port_forward(namespace, service, port, options.kubeconfig, options.context)

    clients: list[tuple[Any, Any]] = []

    def kube() -> tuple[Any, Any]:
        """Kubernetes clients, loaded when a check first needs them (a URL and a token need none)."""
        if not clients:
            clients.append(kubernetes_clients(options.kubeconfig, options.context))
        return clients[0]

    if "kubernetes" in options.checks:
        warm = [name for name, pool in cfg.gpu_pools.items() if pool.min_gpus > 0]
        namespaces = [ns for ns in PLATFORM_NAMESPACES if _deployed(cfg, ns)]
        try:
            core, apps = kube()
            for result in check_kubernetes(core, apps, namespaces, warm):
                record(result)
        except SmokeError as exc:
            record(CheckResult("kubernetes", "client", False, str(exc)))
    if "mlflow" in options.checks and cfg.mlflow.enabled:
        try:
            username, password = mlflow_credentials(cfg)
            with endpoint("mlflow", MLFLOW_NAMESPACE, MLFLOW_SERVICE, MLFLOW_PORT) as url:
                record(check_mlflow(url, username, password))
        except SmokeError as exc:
            record(CheckResult("mlflow", "mlflow", False, str(exc)))
    if "ray" in options.checks and cfg.ray.enabled:
        from mlplatform.infra.specs import ray_clusters

        # Each cluster in its own namespace: a team's, or `ray` for a platform cluster.
        for spec in ray_clusters(cfg):
            cluster, namespace = spec.name, spec.namespace
            try:
                token = os.environ.get("RAY_AUTH_TOKEN") or ray_token(kube()[0], cluster, namespace)
                with endpoint(f"ray:{cluster}", namespace, f"{cluster}-head-svc", RAY_DASHBOARD_PORT) as url:
                    record(check_ray(url, token, cluster, timeout=options.timeout))
            except SmokeError as exc:
                record(CheckResult("ray", cluster, False, str(exc)))
    if "vllm" in options.checks:
        for name, model in cfg.vllm.models.items():
            try:
                if f"vllm:{name}" not in options.urls:
                    ensure_running(kube()[1], SERVING_NAMESPACE, f"vllm-{name}", options.wake, options.timeout)
                with endpoint(f"vllm:{name}", SERVING_NAMESPACE, f"vllm-{name}", VLLM_PORT) as url:
                    record(check_vllm(url, model.served_model_name))
            except SmokeError as exc:
                record(CheckResult("vllm", model.served_model_name, False, str(exc)))
    if "prometheus" in options.checks and cfg.observability.enabled:
        try:
            with endpoint("prometheus", "monitoring", "kube-prometheus-stack-prometheus", 9090) as url:
                record(check_prometheus(url))
        except SmokeError as exc:
            record(CheckResult("prometheus", "prometheus", False, str(exc)))
    return results


def _deployed(cfg: Any, namespace: str) -> bool:
    deployed: dict[str, bool] = {
        "karpenter": bool(cfg.gpu_pools) or cfg.cpu_pool.enabled,
        "kuberay-system": cfg.ray.enabled,
        "mlflow": cfg.mlflow.enabled,
        "kserve": cfg.kserve.enabled,
        "cert-manager": cfg.kserve.enabled,
        # Envoy Gateway and the models' Envoy proxies (infra.serving.routing), with any InferenceService
        "envoy-gateway-system": cfg.kserve.enabled and bool(cfg.kserve.inference_services),
        "keda": bool(cfg.vllm.models) and cfg.observability.enabled,
        "monitoring": cfg.observability.enabled,
    }
    return deployed.get(namespace, False)


def kubernetes_clients(kubeconfig: str | None, context: str | None) -> tuple[Any, Any]:
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        config.load_kube_config(config_file=kubeconfig, context=context)
    except (ConfigException, OSError) as exc:
        raise SmokeError(
            f"no usable kubeconfig ({exc}); run the command in the cloud layer's `update_kubeconfig_command` "
            "stack output or pass --kubeconfig"
        ) from None
    return client.CoreV1Api(), client.AppsV1Api()


def mlflow_credentials(cfg: Any) -> tuple[str, str]:
    """The admin credentials: MLFLOW_TRACKING_USERNAME/PASSWORD if set, else the admin secret the stack created."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return user, password
    if not cfg.mlflow.auth.enabled:
        return "", ""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    secret = cfg.mlflow_admin_secret
    try:
        client = boto3.client("secretsmanager", region_name=cfg.region)
        value = json.loads(client.get_secret_value(SecretId=secret)["SecretString"])
        return str(value["username"]), str(value["password"])
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        raise SmokeError(
            f"could not read the MLflow admin secret {secret!r} in {cfg.region}: {_reason(exc)}; set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
        ) from None


def ray_token(core: Any, cluster: str, namespace: str) -> str:
    """The token KubeRay generated for a cluster (Secret <cluster>, key auth_token, in the cluster's namespace)."""
    import base64

    try:
        secret = core.read_namespaced_secret(cluster, namespace)
        return base64.b64decode(secret.data["auth_token"]).decode()
    except Exception as exc:  # noqa: BLE001
        raise SmokeError(f"could not read Secret {namespace}/{cluster}: {_reason(exc)}") from None


def ensure_running(apps: Any, namespace: str, name: str, wake: bool, timeout: float) -> None:
    """A parked server (0 replicas) fails the check unless --wake scales it to one and it becomes ready."""
    try:
        deployment = apps.read_namespaced_deployment(name, namespace)
    except Exception as exc:  # noqa: BLE001
        raise SmokeError(f"Deployment {namespace}/{name}: {_reason(exc)}") from None
    if (deployment.spec.replicas or 0) == 0:
        if not wake:
            raise SmokeError(f"{name} is parked (0 replicas, min_replicas 0); rerun with --wake to start one")
        apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": 1}})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = apps.read_namespaced_deployment(name, namespace).status
        if (status.ready_replicas or 0) >= 1:
            return
        time.sleep(5)
    raise SmokeError(f"{name} has no ready replica after {timeout:.0f}s (GPU node, image pull or model load)")


def results_json(stack: str, results: Sequence[CheckResult]) -> str:
    return json.dumps(
        {"stack": stack, "ok": all(r.ok for r in results), "checks": [asdict(r) for r in results]}, indent=2
    )
