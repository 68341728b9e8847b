"""Keep MLflow's basic-auth accounts in step with the platform's: the `mlflow-accounts` Job runs this file, as is,
in the MLflow server's own image (`python -c <this file>`), so it imports only the standard library, MLflow and
boto3 (the image has both: its launcher reads Secrets Manager with boto3).

It signs in as the administrator (the secret the server's launcher reads, `MLFLOW_ADMIN_SECRET_ID`), reads the
accounts (JSON `{"username": "password", ...}`, the file `MLFLOW_ACCOUNTS_FILE`, mounted from the Secret the
platform generated) and, for each: creates it, or sets its password to the one in the file (so the Secret is the
truth and a rotated Secret takes effect on the next run), and makes sure it is not an administrator. New accounts
get the server's default permission (`NO_PERMISSIONS`): a team's account owns (MANAGE) what it creates; the registry
reader gets READ from the promote step of the team that owns the model. Accounts the file no longer names are left
alone (deleting one would break whatever still signs in with it; `mlp` never deletes an MLflow user).

Output: one JSON line `{"created": [...], "updated": [...]}`, never a password. A failure is one line on stderr and
exit code 1; the Job retries (backoffLimit) while the server is not up yet.

    MLFLOW_TRACKING_URI=http://mlflow.mlflow.svc:5000 MLFLOW_ADMIN_SECRET_ID=... MLFLOW_ACCOUNTS_FILE=... \
        python infra/mlops/accounts.py
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

USERNAME_MAX = 64


class AccountsError(Exception):
    """An expected failure: one line on stderr, exit code 1."""


def read_accounts(path: str) -> dict[str, str]:
    """The accounts file: a JSON object of non-empty usernames to non-empty passwords."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AccountsError(f"accounts file {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and k and len(k) <= USERNAME_MAX and isinstance(v, str) and v for k, v in data.items()
    ):
        raise AccountsError(f"accounts file {path}: must be a JSON object of usernames to non-empty passwords")
    return dict(data)


def admin_credentials(secret_id: str) -> tuple[str, str]:
    """The administrator's username and password, from the secret the server's launcher reads."""
    import boto3

    value = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    return value["username"], value["password"]


def wait_for_server(tracking_uri: str, timeout: float) -> None:
    """Wait until the server answers /health (a new Deployment may still be starting)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=5) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(2)
    raise AccountsError(f"MLflow at {tracking_uri} did not answer /health within {timeout:.0f}s ({last})")


def sync_accounts(tracking_uri: str, admin: str, accounts: dict[str, str]) -> dict[str, list[str]]:
    """Create each account or set its password; none is an administrator. The caller has signed in as `admin`
    (MLFLOW_TRACKING_USERNAME/PASSWORD)."""
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    if admin in accounts:
        raise AccountsError(f"the accounts file names the administrator {admin!r}; it manages only other users")
    client = AuthServiceClient(tracking_uri)
    created: list[str] = []
    updated: list[str] = []
    for username, password in sorted(accounts.items()):
        try:
            client.get_user(username)
            exists = True
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            exists = False
        if exists:
            client.update_user_password(username, password)
            updated.append(username)
        else:
            client.create_user(username, password)
            created.append(username)
        client.update_user_admin(username, False)
    return {"created": created, "updated": updated}


def main() -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    from mlflow.exceptions import MlflowException

    env = os.environ
    missing = [k for k in ("MLFLOW_TRACKING_URI", "MLFLOW_ADMIN_SECRET_ID", "MLFLOW_ACCOUNTS_FILE") if not env.get(k)]
    if missing:
        print(f"error: set {', '.join(missing)}", file=sys.stderr)
        return 2
    tracking_uri = env["MLFLOW_TRACKING_URI"]
    try:
        accounts = read_accounts(env["MLFLOW_ACCOUNTS_FILE"])
        admin, password = admin_credentials(env["MLFLOW_ADMIN_SECRET_ID"])
        wait_for_server(tracking_uri, float(env.get("MLFLOW_ACCOUNTS_WAIT_SECONDS", "120")))
        os.environ["MLFLOW_TRACKING_USERNAME"] = admin
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
        result = sync_accounts(tracking_uri, admin, accounts)
    except AccountsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MlflowException as exc:
        first = (exc.message or str(exc)).strip().splitlines()
        print(f"error: MLflow at {tracking_uri}: {first[0] if first else type(exc).__name__}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError, OSError, KeyError, ValueError) as exc:  # one line; the Job retries
        print(
            f"error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
