"""A moto server on 127.0.0.1 (a free port) standing in for the AWS APIs over real HTTP."""

from __future__ import annotations

import contextlib
import socket
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlp.aws import AwsContext


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Start a moto server for one test and point boto3 (and the code under test) at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its backends per process, across servers: start every test from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield endpoint
    finally:
        server.stop()


REJECTED_CREDENTIALS_MESSAGE = (
    "checking the AWS credentials: the AWS credentials were rejected (InvalidClientTokenId: The security token "
    "included in the request is invalid.); refresh or replace them"
)


@contextlib.contextmanager
def rejected_credentials(ctx: AwsContext) -> Iterator[None]:
    """STS answers the next get_caller_identity as AWS does for made-up keys (moto accepts any key)."""
    from botocore.stub import Stubber

    with Stubber(ctx.client("sts")) as stub:
        stub.add_client_error(
            "get_caller_identity",
            service_error_code="InvalidClientTokenId",
            service_message="The security token included in the request is invalid.",
            http_status_code=403,
        )
        yield
