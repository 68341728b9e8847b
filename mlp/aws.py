"""What the account tools (`mlp preflight`, `audit-tags`, `residue`, `bootstrap-backend`) share: a boto3 session,
AWS errors turned into plain messages, and a progress display for account scans.

The tools talk to AWS only through boto3 clients made by `AwsContext.client`, so that tests can point them at a
moto server (`AWS_ENDPOINT_URL`) or stub a client with botocore's Stubber.
"""

from __future__ import annotations

import contextlib
import html
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlplatform.mlp.errors import AccountError

# Error codes that mean "these credentials may not do this" rather than "this failed".
ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "Forbidden",
    "AllAccessDisabled",
}
BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "AuthFailure",
}


# The longest server-supplied text a message quotes (an error page's title, an AWS error message).
SUMMARY_LIMIT = 160
_HTML_MARKERS = re.compile(r"<\s*(!doctype|html|head|body|title|h1|p|div|center|hr)\b", re.IGNORECASE)
_HTML_HEADING = re.compile(r"<(title|h1)\b[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_DROPPED = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
# ResponseParserError quotes the body as a bytes literal: `...received. Further retries may succeed:\nb'<html>...'`
_QUOTED_BODY = re.compile(r"\bb(['\"])(.*)\1\s*$", re.DOTALL)


def summarize(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """Server-supplied text as one short line: an HTML page (a proxy's or a load balancer's error page, say) becomes
    its title or first heading, other markup is dropped, whitespace collapses, and what is left is cut at `limit`."""
    if _HTML_MARKERS.search(text):
        heading = next(
            (m.group(2) for m in _HTML_HEADING.finditer(text) if _HTML_TAG.sub("", m.group(2)).strip()), None
        )
        text = heading if heading is not None else _HTML_DROPPED.sub(" ", text)
        text = html.unescape(_HTML_TAG.sub(" ", text))
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def aws_exceptions() -> tuple[type[Exception], ...]:
    """What a boto3 call raises when AWS (or whatever answers at its endpoint) fails: botocore's errors, and the
    parser's error for a body that is not an AWS response (an HTML error page from a proxy), which is not one of
    them."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (BotoCoreError, ClientError, ResponseParserError)


def describe_aws_error(exc: BaseException, action: str) -> str:
    """A one-line explanation of a boto3/botocore failure, with what to do about it. Whatever the server sent is
    summarized (`summarize`): an error page never reaches the message, only its title."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )
    from botocore.parsers import ResponseParserError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return (
            f"{action}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(or run `aws sso login`)"
        )
    if isinstance(exc, ProfileNotFound):
        return f"{action}: {exc}; check AWS_PROFILE against ~/.aws/config"
    if isinstance(exc, NoRegionError):
        return f"{action}: no AWS region; pass --region or set AWS_REGION"
    if isinstance(exc, EndpointConnectionError):
        endpoint = exc.kwargs.get("endpoint_url", "the AWS endpoint")
        return f"{action}: cannot reach {endpoint}; check the region name and the network"
    if isinstance(exc, ResponseParserError):
        quoted = _QUOTED_BODY.search(str(exc))
        body = summarize(quoted.group(2).replace("\\n", "\n")) if quoted else ""
        page = f" ({body})" if body else ""
        return (
            f"{action}: the endpoint answered with something that is not an AWS response{page}; "
            "a proxy or the endpoint (AWS_ENDPOINT_URL, HTTPS_PROXY) is failing: check it and retry"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = summarize(str(error.get("Message", "")))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = exc.operation_name
        if code in BAD_CREDENTIALS:
            return f"{action}: the AWS credentials were rejected ({code}: {message}); refresh or replace them"
        if code in ACCESS_DENIED:
            return f"{action}: permission denied for {operation} ({code}); the caller needs that action allowed"
        if code == str(status):  # no AWS error in the body (an error page): botocore names the status as the code
            reason = message.removeprefix(f"{status} ") or "no error message"
            return f"{action}: {operation} failed (HTTP {status}: {reason})"
        return f"{action}: {operation} failed ({code}: {message})"
    return f"{action}: {type(exc).__name__}: {summarize(str(exc))}"


@dataclass
class AwsContext:
    """A boto3 session for one region, with clients cached per service."""

    region: str
    profile: str | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def session(self) -> Any:
        if self._session is None:
            import boto3

            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except Exception as exc:  # noqa: BLE001 - ProfileNotFound and friends
                raise AccountError(describe_aws_error(exc, "AWS session")) from None
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            config = Config(retries={"max_attempts": 5, "mode": "adaptive"}, user_agent_extra="mlp")
            self._clients[service] = self.session().client(service, config=config)
        return self._clients[service]

    def account_id(self) -> str:
        """The caller's account (and a cheap check that the credentials work)."""
        return self.identity()[0]

    def identity(self) -> tuple[str, str]:
        """The caller's account and ARN (one STS call; also checks that the credentials work)."""
        try:
            answer = self.client("sts").get_caller_identity()
        except Exception as exc:  # noqa: BLE001
            raise AccountError(describe_aws_error(exc, "checking the AWS credentials")) from None
        return str(answer["Account"]), str(answer["Arn"])


@contextlib.contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn any AWS failure inside the block into an AccountError with a plain message."""
    try:
        yield
    except aws_exceptions() as exc:
        raise AccountError(describe_aws_error(exc, action)) from None


class Progress:
    """A transient progress line on stderr for account scans (silent when stderr is not a terminal or quiet)."""

    def __init__(self, quiet: bool = False) -> None:
        self._enabled = not quiet and sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self._enabled:
            from rich.progress import Progress as RichProgress
            from rich.progress import SpinnerColumn, TextColumn

            self._progress = RichProgress(
                SpinnerColumn(), TextColumn("{task.description}"), transient=True, console=_stderr_console()
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting")
        return self

    def step(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, emoji=False)


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated list call."""
    paginator = client.get_paginator(operation)
    for page in paginator.paginate(**kwargs):
        yield from page.get(key, [])


StepCallback = Callable[[str], None]
