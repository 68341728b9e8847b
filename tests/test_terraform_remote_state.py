"""An adopted network and cluster read from an HCP Terraform / Terraform Enterprise workspace (`terraform_state.
remote`): the planner reads the workspace's current state version through the API, over HTTPS, with the token the
program takes from `TF_TOKEN_<host>`; the token never reaches config, the plan or an error message.

The server is a stand-in on 127.0.0.1 answering the three documented calls (Show Workspace, Fetch the Current State
Version for a Workspace, the state version's `hosted-state-download-url`), in the API's JSON:API shape, with a
certificate made for the test (trusted through `SSL_CERT_FILE`); the state it serves is the fixture that a real
`terraform apply` wrote (tests/data/terraform/eks-foundation).
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mlplatform.infra.terraform_reference import remote_token_variable
from mlplatform.infra.terraform_state import parse_state
from mlplatform.mlp.mocks import PlannerError
from mlplatform.mlp.planner import ProgramError, plan_stack
from mlplatform.mlp.stackfile import load_project, load_stack
from mlplatform.mlp.terraform_state import invoke_handlers
from tests.test_adopted_cluster import STATE, _project_copy

TOKEN = "atlasv1.remote-state-test-token-0123456789"
ORGANIZATION, WORKSPACE, WORKSPACE_ID = "acme", "eks-foundation", "ws-4Q8mZbLx9Ta2Kc1f"


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _Api:
    def __init__(self, state: bytes) -> None:
        self.state = state
        self.requests: list[tuple[str, str | None]] = []
        self.port = 0

    def answer(self, path: str, authorization: str | None) -> tuple[int, bytes]:
        self.requests.append((path, authorization))
        if authorization != f"Bearer {TOKEN}":
            return 401, json.dumps({"errors": [{"status": "401", "title": "unauthorized"}]}).encode()
        base = "/api/v2"
        if path == f"{base}/organizations/{ORGANIZATION}/workspaces/{WORKSPACE}":
            body = {"data": {"id": WORKSPACE_ID, "type": "workspaces", "attributes": {"name": WORKSPACE}}}
        elif path == f"{base}/workspaces/{WORKSPACE_ID}/current-state-version":
            url = f"https://localhost:{self.port}/state-versions/sv-1/download"
            body = {"data": {"id": "sv-1", "type": "state-versions", "attributes": {"hosted-state-download-url": url}}}
        elif path == "/state-versions/sv-1/download":
            return 200, self.state
        else:
            return 404, json.dumps({"errors": [{"status": "404", "title": "not found"}]}).encode()
        return 200, json.dumps(body).encode()


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Api]:
    cert, key = _certificate(tmp_path)
    served = _Api(STATE.read_bytes())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = served.answer(self.path, self.headers.get("Authorization"))
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.api+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _args(api: _Api, token: str = TOKEN, workspace: str = WORKSPACE) -> dict[str, Any]:
    return {
        "hostname": f"localhost:{api.port}",
        "organization": ORGANIZATION,
        "workspaces": {"name": workspace},
        "token": token,
    }


def test_the_planner_reads_the_workspaces_current_state(api: _Api, tmp_path: Path) -> None:
    answer = invoke_handlers(tmp_path)["terraform:state:getRemoteReference"](_args(api))
    assert answer == {"outputs": parse_state(STATE.read_text(), str(STATE))}
    paths = [path for path, _ in api.requests]
    assert paths == [
        f"/api/v2/organizations/{ORGANIZATION}/workspaces/{WORKSPACE}",
        f"/api/v2/workspaces/{WORKSPACE_ID}/current-state-version",
        "/state-versions/sv-1/download",
    ]


@pytest.mark.parametrize(
    ("token", "workspace", "message"),
    [
        ("wrong-token", WORKSPACE, "the token was refused"),
        (TOKEN, "no-such-workspace", "not found, or the token cannot see it"),
    ],
)
def test_refusals_are_named_without_the_token(
    api: _Api, tmp_path: Path, token: str, workspace: str, message: str
) -> None:
    handler = invoke_handlers(tmp_path)["terraform:state:getRemoteReference"]
    with pytest.raises(PlannerError) as info:
        handler(_args(api, token, workspace))
    text = str(info.value)
    assert message in text and f"{ORGANIZATION}/{workspace}" in text
    assert token not in text


def test_an_untrusted_certificate_is_refused(api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))
    with pytest.raises(PlannerError, match="CERTIFICATE_VERIFY_FAILED"):
        invoke_handlers(tmp_path)["terraform:state:getRemoteReference"](_args(api))


def _remote(api: _Api) -> dict[str, Any]:
    return {"remote": {"hostname": f"localhost:{api.port}", "organization": ORGANIZATION, "workspace": WORKSPACE}}


def test_an_adopted_network_and_cluster_plan_from_the_workspace(
    api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(config: dict[str, Any], _: Path) -> None:
        config["ml-platform:network"]["adopt"]["terraform_state"] = _remote(api)
        config["ml-platform:cluster"]["adopt"]["terraform_state"] = _remote(api)

    project = _project_copy(tmp_path, change)
    stack = yaml.safe_load((project / "stacks" / "Pulumi.staging.yaml").read_text())
    assert TOKEN not in json.dumps(stack)  # config names the workspace, never the token
    monkeypatch.setenv(remote_token_variable(f"localhost:{api.port}"), TOKEN)
    plan = plan_stack(load_stack(load_project(project), "staging"))
    outputs = parse_state(STATE.read_text(), str(STATE))
    associations = plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert associations and {a.inputs["clusterName"] for a in associations} == {outputs["cluster_name"]}
    assert not plan.of_type("aws:eks/cluster:Cluster") and not plan.of_type("aws:ec2/vpc:Vpc")
    assert TOKEN not in json.dumps(plan.to_dict(), default=str)
    assert all(auth == f"Bearer {TOKEN}" for _, auth in api.requests)


def test_without_the_token_variable_the_plan_says_which_to_set(
    api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(config: dict[str, Any], _: Path) -> None:
        config["ml-platform:network"]["adopt"]["terraform_state"] = _remote(api)
        config["ml-platform:cluster"]["adopt"]["terraform_state"] = _remote(api)

    monkeypatch.delenv("TF_TOKEN_localhost", raising=False)
    with pytest.raises(ProgramError, match="set TF_TOKEN_localhost to an HCP Terraform / Terraform Enterprise"):
        plan_stack(load_stack(load_project(_project_copy(tmp_path, change)), "staging"))
    assert api.requests == []


def test_token_variables_are_named_as_terraform_names_them() -> None:
    assert remote_token_variable("app.terraform.io") == "TF_TOKEN_app_terraform_io"
    assert remote_token_variable("tfe.acme-corp.example:8443") == "TF_TOKEN_tfe_acme__corp_example"
