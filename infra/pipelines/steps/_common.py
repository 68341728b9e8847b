"""What every step shares: the expected-failure exception, MLflow errors turned into one line, and the entry point
wrapper that prints the result as one JSON line and maps failures to exit codes.

Exit codes: 0 done, 1 the step failed for an expected reason (one line on stderr, never a traceback), 2 bad usage.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2


class StepError(Exception):
    """An expected failure (unknown model, missing metric, failed job): reported as one line, exit code 1."""


class UsageError(StepError):
    """An argument the step cannot use: reported as one line, exit code 2."""


@contextlib.contextmanager
def mlflow_errors(doing: str) -> Iterator[None]:
    """Turn an MlflowException (or an HTTP error of an artifact download) raised while `doing` into a StepError
    naming what was being done."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        first_line = (exc.message or str(exc)).strip().splitlines()[0] if (exc.message or str(exc)).strip() else ""
        raise StepError(f"{doing}: {first_line or type(exc).__name__}") from exc
    except requests.RequestException as exc:
        # Artifact downloads through the server (`mlflow-artifacts:`) raise requests' errors, not MLflow's.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StepError(f"{doing}: {first_line}") from exc


def tracking_uri_or_env(value: str | None) -> str:
    """The MLflow tracking URI from the argument, else MLFLOW_TRACKING_URI; a step never guesses a local store."""
    uri = value or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        raise UsageError("no MLflow tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    return uri


def run_step(step: Callable[[Sequence[str]], dict[str, Any]], argv: Sequence[str] | None = None) -> int:
    """Run a step's main, print its result as one JSON line on stdout, and return the exit code."""
    try:
        result = step(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    # One write of the whole line: print() writes the text and its newline separately, and a library's log line
    # from another thread (Ray's driver prints its own) could land between them, on the result's line.
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0
