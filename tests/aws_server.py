"""A moto server on 127.0.0.1 (a free port) standing in for the AWS APIs over real HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import io
import re
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from mlplatform.mlp.iam_calls import HttpExchange

if TYPE_CHECKING:
    from mlplatform.mlp.aws import AwsContext


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _use_fresh_moto(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty the moto server's account and point boto3 (and the code under test) at it with fake credentials."""
    # moto keeps its backends per process, across servers: start every test from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Start a moto server for one test and point boto3 (and the code under test) at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    _use_fresh_moto(endpoint, monkeypatch)
    try:
        yield endpoint
    finally:
        server.stop()


# -- a proxy that answers every request with an HTML error page -------------------------------------------------------

ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title>\n<style>body { font: 14px sans-serif; }</style>"
    b"</head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n"
    + b"<p>The proxy server received an invalid response from an upstream server.</p>\n" * 40
    + b"<hr><center>nginx/1.25.3</center>\n</body>\n</html>\n"
)


class _ErrorPageHandler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(ERROR_PAGE)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(ERROR_PAGE)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def error_page_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point boto3 at a local server that answers every request 502 with an HTML page (`ERROR_PAGE`), as a failing
    proxy or load balancer in front of an endpoint does."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ErrorPageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- a moto server that records every request it answers (for the IAM contract tests) ------------------------------

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Recorded:
    """One request as moto saw it, with the response body of JSON services (their resource ARNs are in it)."""

    exchange: HttpExchange
    user_agent: str
    region: str
    response: bytes = b""
    presigned: bool = False
    """Authorized by a presigned URL's query-string signature (made by whoever signed it, used by anyone)."""


@dataclass
class RequestLog:
    """Requests to the AWS APIs, recorded while `recording` is on (setup calls stay out)."""

    recording: bool = False
    entries: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    enforce: Callable[[HttpExchange], bool] | None = None
    """While recording: decides each request (True: allowed). A denied one gets AWS's 403 AccessDenied instead of
    moto's answer, as the account would give it, so the code under test meets the denial (moto itself decides
    nothing by IAM's Resource and Condition)."""

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[Recorded]]:
        """Record the requests made inside the block into the yielded list."""
        start = len(self.entries)
        captured: list[Recorded] = []
        self.recording = True
        try:
            yield captured
        finally:
            self.recording = False
            with self._lock:
                captured.extend(self.entries[start:])

    def add(self, entry: Recorded) -> None:
        with self._lock:
            self.entries.append(entry)


class _RecordingApp:
    """WSGI middleware in front of moto's app: every signed request, from any process or SDK (the AWS CLI, forked
    workers, a server subprocess), as it arrived."""

    def __init__(self, app: Any, log: RequestLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # signed in the Authorization header, or presigned (X-Amz-Credential in the query string)
        credential = environ.get("HTTP_AUTHORIZATION", "") or "Credential=" + urllib.parse.unquote(
            dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential", "")
        )
        scope = _SCOPE.search(credential)
        if not self.log.recording or scope is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            body = environ["wsgi.input"].read(length)
        elif environ.get("wsgi.input_terminated"):
            # A chunked upload (Transfer-Encoding: chunked, as the AWS C++ SDK under pyarrow sends): the server
            # has de-chunked it; read it to the end, or moto would get an empty object.
            body = environ["wsgi.input"].read()
            environ["CONTENT_LENGTH"] = str(len(body))
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if k in environ:
                headers[k.replace("_", "-").lower()] = environ[k]
        status: list[int] = []

        def recording_start_response(code: str, response_headers: Any, exc_info: Any = None) -> Any:
            status.append(int(code.split()[0]))
            return start_response(code, response_headers, exc_info)

        service, region = scope.group(2), scope.group(1)
        query = {
            k: v
            for k, v in urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            if not k.startswith("X-Amz-")  # a presigned URL's signature, not the request's parameters
        }
        exchange = HttpExchange(
            service=service,
            method=environ["REQUEST_METHOD"],
            path=(environ.get("RAW_URI") or urllib.parse.quote(environ.get("PATH_INFO", ""))).split("?", 1)[0],
            query=query,
            headers=headers,
            body=body if service != "s3" or "delete" in query else b"",
            status=0,
        )
        if self.log.enforce is not None and not self.log.enforce(exchange):
            output: Iterable[bytes] = [_access_denied(service, environ["REQUEST_METHOD"], recording_start_response)]
        else:
            output = self.app(environ, recording_start_response)
        response = b""
        if service != "s3":  # JSON services: small bodies; S3 objects stream through untouched
            response = b"".join(output)
            output = [response]
        exchange = dataclasses.replace(exchange, status=status[0] if status else 0)
        presigned = "HTTP_AUTHORIZATION" not in environ
        self.log.add(Recorded(exchange, headers.get("user-agent", ""), region, response, presigned))
        return output


def _access_denied(service: str, method: str, start_response: Callable[..., Any]) -> bytes:
    """The answer AWS gives a request IAM denies: 403 AccessDenied (S3's XML; a HEAD has no body)."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        b"<Message>Access Denied</Message></Error>"
        if service == "s3"
        else b'{"__type": "AccessDeniedException", "message": "access denied"}'
    )
    if method == "HEAD":
        body = b""
    content_type = "application/xml" if service == "s3" else "application/x-amz-json-1.1"
    start_response("403 Forbidden", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return body


@dataclass(frozen=True)
class RecordingMoto:
    endpoint: str
    log: RequestLog


@pytest.fixture
def recording_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingMoto]:
    """Like `moto_endpoint`, with every request recorded server side (`log.capture()`)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    log = RequestLog()
    app = _RecordingApp(DomainDispatcherApplication(create_backend_app), log)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    _use_fresh_moto(endpoint, monkeypatch)
    try:
        yield RecordingMoto(endpoint, log)
    finally:
        server.shutdown()
        thread.join()


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


def answer_operation(
    client: Any, operation: str, answer: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Answer one operation a moto server lacks (EC2's DescribeCapacityReservations, DescribePlacementGroups) from
    `answer(params)`, in AWS's documented response shape; the rest of the client still goes to the server. Returns
    the list the calls' parameters are recorded into. `answer` may raise botocore's ClientError, as AWS would."""
    from botocore.awsrequest import AWSResponse

    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def respond(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://aws", 200, {}, None), answer(calls[-1])  # type: ignore[arg-type]

    client.meta.events.register(f"provide-client-params.{service}.{operation}", record)
    client.meta.events.register(f"before-call.{service}.{operation}", respond)
    return calls
