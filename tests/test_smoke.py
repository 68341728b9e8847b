"""`mlp smoke`: the Ray check against a real Ray head on 127.0.0.1 (token authentication on, as KubeRay sets it),
the other checks' parsing and failure reasons, and the command's exit codes.

The MLflow check runs against a real MLflow server in test_mlflow_contract.py. The vLLM, Prometheus and Kubernetes
checks run here against local HTTP servers answering in the documented formats (OpenAI completions, the
Prometheus HTTP API, the Kubernetes API through the official client): no GPU, vLLM, DCGM or cluster exists here.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlplatform.mlp import smoke
from tests.servers import RayHead, ray_head

Handler = Callable[[str, str, bytes], tuple[int, Any]]


@pytest.fixture
def http_server() -> Iterator[Callable[[Handler], str]]:
    """Serve canned JSON from a handler(method, path, body) on 127.0.0.1; stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def serve(handler: Handler) -> str:
        class RequestHandler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = handler(self.command, self.path, self.rfile.read(length) if length else b"")
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = _answer  # noqa: N815 - http.server method names

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


# --- Ray: a real head -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray() -> Iterator[RayHead]:
    with ray_head(token=secrets.token_hex(16)) as head:
        yield head


@pytest.mark.contract
def test_ray_check_runs_a_job_with_the_cluster_token(ray: RayHead) -> None:
    result = smoke.check_ray(ray.dashboard_url, ray.token, "research", timeout=180)
    assert result.ok, result.detail
    assert result.check == "ray" and "succeeded (a task returned 42)" in result.detail


@pytest.mark.contract
def test_ray_check_fails_with_a_wrong_or_missing_token(ray: RayHead) -> None:
    wrong = smoke.check_ray(ray.dashboard_url, "not-the-token", "research", timeout=60)
    assert not wrong.ok and "Authentication failed" in wrong.detail
    missing = smoke.check_ray(ray.dashboard_url, None, "research", timeout=60)
    assert not missing.ok and "Authentication" in missing.detail


def test_ray_check_fails_when_nothing_listens() -> None:
    from tests.aws_server import free_port

    result = smoke.check_ray(f"http://127.0.0.1:{free_port()}", "t", "research", timeout=10)
    assert not result.ok and "ConnectionError" in result.detail


# --- vLLM and Prometheus: documented response formats -----------------------------------------------------------


def test_vllm_check_sends_one_completion(http_server: Callable[[Handler], str]) -> None:
    seen: list[dict[str, Any]] = []

    def vllm(method: str, path: str, body: bytes) -> tuple[int, Any]:
        assert (method, path) == ("POST", "/v1/completions")
        request = json.loads(body)
        seen.append(request)
        if request["model"] != "assistant":
            return 404, {"object": "error", "message": f"The model `{request['model']}` does not exist."}
        return 200, {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "assistant",
            "choices": [{"index": 0, "text": " Paris.", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }

    url = http_server(vllm)
    ok = smoke.check_vllm(url, "assistant")
    assert ok.ok and ok.detail == "2 token(s): 'Paris.'"
    assert seen[0]["max_tokens"] == 8 and seen[0]["temperature"] == 0
    wrong = smoke.check_vllm(url, "other")
    assert not wrong.ok and wrong.detail.startswith("HTTP 404") and "does not exist" in wrong.detail


def test_vllm_check_rejects_an_empty_completion(http_server: Callable[[Handler], str]) -> None:
    url = http_server(lambda m, p, b: (200, {"choices": [{"text": "  "}], "usage": {"completion_tokens": 0}}))
    result = smoke.check_vllm(url, "assistant")
    assert not result.ok and result.detail == "the completion is empty"


def test_prometheus_check_needs_a_dcgm_series(http_server: Callable[[Handler], str]) -> None:
    series: list[dict[str, Any]] = []

    def prometheus(method: str, path: str, body: bytes) -> tuple[int, Any]:
        assert path == "/api/v1/query?query=DCGM_FI_DEV_GPU_UTIL"
        return 200, {"status": "success", "data": {"resultType": "vector", "result": series}}

    url = http_server(prometheus)
    empty = smoke.check_prometheus(url)
    assert not empty.ok and "no DCGM_FI_DEV_GPU_UTIL series" in empty.detail
    series.append(
        {
            "metric": {
                "__name__": "DCGM_FI_DEV_GPU_UTIL",
                "gpu": "0",
                "Hostname": "dcgm-exporter-x",
                "node": "ip-10-0-1-5",
            },
            "value": [1, "37"],
        }
    )
    present = smoke.check_prometheus(url)
    assert present.ok and present.detail == "DCGM_FI_DEV_GPU_UTIL present for 1 GPU(s): ip-10-0-1-5/0"


# --- Kubernetes: the official client against canned API answers -------------------------------------------------


def _node(name: str, pool: str | None, gpus: str | None) -> dict[str, Any]:
    labels = {"mlplatform.io/gpu-pool": pool} if pool else {}
    allocatable = {"cpu": "4", "memory": "16Gi", **({"nvidia.com/gpu": gpus} if gpus else {})}
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": allocatable}}


def _deployment(name: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}}, "template": {}},
        "status": {"readyReplicas": ready},
    }


def _clients(url: str) -> tuple[Any, Any]:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    api = client.ApiClient(configuration)
    return client.CoreV1Api(api), client.AppsV1Api(api)


def test_kubernetes_check_reports_gpus_and_unready_deployments(http_server: Callable[[Handler], str]) -> None:
    def api(method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path.startswith("/api/v1/nodes"):
            nodes = [_node("sys-1", None, None), _node("gpu-1", "inference", "4"), _node("gen-1", "general", None)]
            return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": nodes}
        if path.startswith("/apis/apps/v1/namespaces/mlflow/deployments"):
            items = [_deployment("mlflow", 2, 2)]
        elif path.startswith("/apis/apps/v1/namespaces/kserve/deployments"):
            items = [_deployment("kserve-controller-manager", 1, 0)]
        else:
            items = []
        return 200, {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": items}

    core, apps = _clients(http_server(api))
    results = smoke.check_kubernetes(core, apps, ["mlflow", "kserve", "keda"], warm_pools=["inference"])
    by_target = {r.target: r for r in results}
    assert by_target["gpu nodes"].ok and by_target["gpu nodes"].detail == "allocatable GPUs by pool: inference: 4"
    assert by_target["mlflow"].ok and by_target["mlflow"].detail == "1 Deployment(s) ready"
    assert not by_target["kserve"].ok and by_target["kserve"].detail == "not ready: kserve-controller-manager 0/1"
    assert not by_target["keda"].ok and by_target["keda"].detail == "no Deployments found"
    missing = smoke.check_kubernetes(core, apps, [], warm_pools=["training"])
    assert not missing[0].ok and "pool(s) training keep warm capacity" in missing[0].detail


# --- the command ------------------------------------------------------------------------------------------------


@pytest.mark.contract
def test_smoke_command_passes_and_fails_with_exit_codes(
    ray: RayHead, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplatform.mlp.cli import main

    def run(*argv: str) -> int:
        monkeypatch.setattr("sys.argv", ["mlp", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return int(exit_info.value.code or 0)

    monkeypatch.setenv("RAY_AUTH_TOKEN", ray.token)
    code = run("smoke", "dev", "--only", "ray", "--url", f"ray:research={ray.dashboard_url}", "--timeout", "180")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS  ray         research" in out and "1 passed, 0 failed" in out

    monkeypatch.setenv("RAY_AUTH_TOKEN", "wrong")
    code = run("smoke", "dev", "--only", "ray", "--url", f"ray:research={ray.dashboard_url}", "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["ok"] is False and report["checks"][0]["check"] == "ray" and not report["checks"][0]["ok"]

    assert run("smoke", "dev", "--only", "gpu") == 2
    assert "unknown check(s) gpu" in capsys.readouterr().err


# --- stack outputs named in messages ----------------------------------------------------------------------------

# How mlp's messages name a stack output: "the `x` output", "output `x`", "`pulumi stack output x`".
_OUTPUT_MENTIONS = (
    re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)` (?:stack )?outputs?\b"),
    re.compile(r"\b(?:stack )?outputs? `([A-Za-z_][A-Za-z0-9_]*)`"),
    re.compile(r"pulumi stack output (?:--?[a-z-]+ )*([A-Za-z_][A-Za-z0-9_]*)"),
)
ROOT = Path(__file__).resolve().parents[1]


def _mentioned_outputs(source: str) -> set[str]:
    """Output names in a module's strings, each read whole (Python joins adjacent literals, split across lines)."""
    texts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
        elif isinstance(node, ast.JoinedStr):  # an f-string: its literal parts, a placeholder for each value
            texts.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
    return {m.group(1) for text in texts for pattern in _OUTPUT_MENTIONS for m in pattern.finditer(text)}


def _exported_outputs() -> set[str]:
    """Every stack output the two layers export, read from the code that exports them: the cloud layer exports each
    field of CloudOutputs (`CloudOutputs.export`), the cluster layer the keys of `ClusterLayer.exports()`."""
    from mlplatform.infra.layer_outputs import CloudOutputs

    names = {f.name for f in dataclasses.fields(CloudOutputs)}
    tree = ast.parse((ROOT / "infra" / "cluster_layer.py").read_text())
    (method,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "exports"]
    for node in ast.walk(method):
        if isinstance(node, ast.Dict):
            names |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Constant):
            names.add(str(node.slice.value))
    return names


def test_the_export_sites_are_the_two_layers() -> None:
    """`_exported_outputs` reads CloudOutputs and ClusterLayer.exports: an export anywhere else would escape it."""
    sites = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "infra").rglob("*.py") if "pulumi.export(" in p.read_text()
    }
    assert sites == {"infra/layer_outputs.py", "infra/program.py"}
    assert {"update_kubeconfig_command", "cluster_name", "cloud_stack", "mlflow_url"} <= _exported_outputs()


def test_every_stack_output_named_in_mlp_exists() -> None:
    exported = _exported_outputs()
    mentions = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in sorted((ROOT / "mlp").rglob("*.py"))
        for name in _mentioned_outputs(path.read_text())
    }
    assert ("mlp/smoke.py", "update_kubeconfig_command") in mentions  # the scan sees the messages
    assert sorted((path, name) for path, name in mentions if name not in exported) == []


def test_a_kubeconfig_that_does_not_work_names_the_real_output(tmp_path: Path) -> None:
    with pytest.raises(smoke.SmokeError) as raised:
        smoke.kubernetes_clients(str(tmp_path / "missing"), None)
    assert str(raised.value) == (
        "no usable kubeconfig (Invalid kube-config file. No configuration found.); run the command in the cloud "
        "layer's `update_kubeconfig_command` stack output or pass --kubeconfig"
    )
