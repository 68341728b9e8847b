"""Contract test: a real MLflow server started with exactly the command and environment the platform renders.

The launcher reads the database and admin secrets from Secrets Manager and the server keeps artifacts in S3, both
on a moto server over HTTP; the backend store is PostgreSQL when the machine has it (CI installs it), else sqlite.
Only what cannot exist here is swapped: the AWS endpoint (moto), the listen address (127.0.0.1 instead of the pod's
0.0.0.0), the port, one worker, and the path of the auth config (a temp dir instead of the pod's in-memory volume).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests

from mlplatform.infra.mlops import documents
from mlplatform.infra.mlops.documents import MlflowServer
from tests.aws_server import free_port
from tests.servers import VENV_BIN, Postgres, postgres_bin, postgres_server, start, stop, wait_for_http

pytestmark = pytest.mark.contract

BUCKET = "mlp-test-artifacts"
REGION = "us-east-1"
ADMIN_SECRET_NAME = "mlp-test/mlflow-admin"


@dataclass(frozen=True)
class RunningMlflow:
    url: str
    admin_user: str
    admin_password: str
    backend: str  # "postgresql" or "sqlite"
    postgres: Postgres | None
    db_password: str
    log: Path


def _database(postgres: Postgres | None, tmp_path: Path) -> tuple[str, str]:
    """(secret value, backend kind): an mlflow role and database on the test PostgreSQL, or a sqlite file."""
    if postgres is None:
        return json.dumps({"engine": "sqlite", "path": str(tmp_path / "mlflow.db")}), ""
    password = secrets.token_urlsafe(24) + "!#%"  # characters that need quoting in a URI
    conn = postgres.connect()
    conn.autocommit = True  # type: ignore[attr-defined]
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute("CREATE ROLE mlflow LOGIN PASSWORD %s", (password,))
        cur.execute("CREATE DATABASE mlflow OWNER mlflow")
    conn.close()  # type: ignore[attr-defined]
    value = documents.db_secret_value(
        username="mlflow",
        password=password,
        host=postgres.host,
        port=postgres.port,
        dbname="mlflow",
        sslmode="disable",  # the test cluster has no TLS; RDS forces it (rds.force_ssl) and the default is require
    )
    return value, password


@pytest.fixture
def mlflow_server(moto_endpoint: str, tmp_path: Path) -> Iterator[RunningMlflow]:
    sm = boto3.client("secretsmanager", region_name=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    admin_password = secrets.token_urlsafe(18)
    with postgres_server() as postgres:
        db_value, db_password = _database(postgres, tmp_path)
        db_arn = sm.create_secret(Name="mlp-test/mlflow/database", SecretString=db_value)["ARN"]
        admin_arn = sm.create_secret(
            Name=ADMIN_SECRET_NAME,
            SecretString=documents.admin_secret_value(
                username=documents.MLFLOW_ADMIN_USER,
                password=admin_password,
                flask_secret_key=secrets.token_hex(32),
            ),
        )["ARN"]
        port = free_port()
        server = MlflowServer(
            db_secret_id=db_arn,
            admin_secret_id=admin_arn,
            artifacts_destination=f"s3://{BUCKET}/mlflow",
            region=REGION,
            workers=1,
            port=port,
            host="127.0.0.1",
            allowed_hosts=documents.mlflow_allowed_hosts(documents.MLFLOW_SERVICE, documents.MLFLOW_NAMESPACE),
            auth_config_path=str(tmp_path / "auth" / "basic_auth.ini"),
        )
        env = {
            **documents.mlflow_env(server),
            "HOME": str(tmp_path),  # the pod's HOME is its in-memory /tmp
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AWS_ENDPOINT_URL": moto_endpoint,
            "MLFLOW_S3_ENDPOINT_URL": moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        log = tmp_path / "mlflow.log"
        process = start(documents.mlflow_command(server), env, log, cwd=tmp_path)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/health", process, timeout=120, log=log)
            yield RunningMlflow(
                url=f"http://127.0.0.1:{port}",
                admin_user=documents.MLFLOW_ADMIN_USER,
                admin_password=admin_password,
                backend="postgresql" if postgres else "sqlite",
                postgres=postgres,
                db_password=db_password,
                log=log,
            )
        finally:
            stop(process)


def test_command_runs_the_launcher_then_mlflow_server() -> None:
    server = MlflowServer(
        db_secret_id="db", admin_secret_id="admin", artifacts_destination="s3://b/mlflow", region=REGION
    )
    command = documents.mlflow_command(server)
    assert command[:3] == ["python", "-c", documents.MLFLOW_LAUNCHER]
    compile(documents.MLFLOW_LAUNCHER, "<launcher>", "exec")  # the launcher is valid Python
    args = command[3:]
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--artifacts-destination") + 1] == "s3://b/mlflow"
    assert "--serve-artifacts" in args and args[-2:] == ["--app-name", "basic-auth"]
    env = documents.mlflow_env(server)
    # Only secret ids in the environment, never their values.
    assert env["MLFLOW_DB_SECRET_ID"] == "db" and env["MLFLOW_ADMIN_SECRET_ID"] == "admin"
    assert not any("PASSWORD" in k or "BACKEND_STORE_URI" in k for k in env)
    no_auth = documents.mlflow_command(
        MlflowServer(db_secret_id="db", admin_secret_id=None, artifacts_destination="s3://b/m", region=REGION)
    )
    assert "--app-name" not in no_auth


def test_mlflow_server_tracks_stores_artifacts_and_refuses_anonymous_writes(
    mlflow_server: RunningMlflow, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    url = mlflow_server.url
    # 1. Anonymous requests are refused, reads and writes alike; /health stays open for the probes.
    anonymous = requests.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "anon"}, timeout=10)
    assert anonymous.status_code == 401, anonymous.text
    assert requests.get(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10).status_code == 401
    assert requests.get(f"{url}/health", timeout=10).status_code == 200

    wrong = requests.post(
        f"{url}/api/2.0/mlflow/experiments/create", json={"name": "x"}, auth=("admin", "not-the-password"), timeout=10
    )
    assert wrong.status_code == 401

    # 2. The admin (credentials from the secret) logs a run with params, metrics and an artifact.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_server.admin_user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_server.admin_password)
    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    experiment_id = client.create_experiment("contract")
    notes = tmp_path / "notes.txt"
    notes.write_text("weights: 42\n")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({"lr": 0.01, "epochs": 3})
        for step, loss in enumerate([0.9, 0.5, 0.2]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_artifact(str(notes), artifact_path="reports")
    run_id = run.info.run_id
    stored = client.get_run(run_id)
    assert stored.data.params == {"lr": "0.01", "epochs": "3"}
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.9, 0.5, 0.2]

    # 3. The artifact went through the server (--serve-artifacts) into the artifacts zone, and reads back.
    assert stored.info.artifact_uri.startswith("mlflow-artifacts:")
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any(k.startswith("mlflow/") and k.endswith("reports/notes.txt") for k in keys), keys
    local = client.download_artifacts(run_id, "reports/notes.txt", str(tmp_path / "back"))
    assert Path(local).read_text() == "weights: 42\n"

    # 4. A model version is registered from the run.
    client.create_registered_model("churn")
    version = client.create_model_version("churn", source=f"{stored.info.artifact_uri}/reports", run_id=run_id)
    assert version.version == "1"
    assert client.get_model_version("churn", "1").run_id == run_id

    # 5. A new user sees nothing until granted (default_permission NO_PERMISSIONS).
    admin = (mlflow_server.admin_user, mlflow_server.admin_password)
    created = requests.post(
        f"{url}/api/2.0/mlflow/users/create",
        json={"username": "analyst", "password": "analyst-password-1"},
        auth=admin,
        timeout=10,
    )
    assert created.status_code == 200, created.text
    denied = requests.get(
        f"{url}/api/2.0/mlflow/experiments/get",
        params={"experiment_id": experiment_id},
        auth=("analyst", "analyst-password-1"),
        timeout=10,
    )
    assert denied.status_code == 403, denied.text

    # 6. The backend store is the database from the secret (PostgreSQL whenever the machine has it; CI sets
    # MLP_REQUIRE_POSTGRES so that a missing PostgreSQL fails instead of falling back to sqlite).
    if os.environ.get("MLP_REQUIRE_POSTGRES") or postgres_bin() is not None:
        assert mlflow_server.backend == "postgresql"
    if mlflow_server.postgres is not None:
        conn = mlflow_server.postgres.connect("mlflow", user="mlflow", password=mlflow_server.db_password)
        with conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT name FROM experiments WHERE experiment_id = %s", (int(experiment_id),))
            assert cur.fetchone() == ("contract",)
            cur.execute("SELECT username FROM users ORDER BY username")
            assert [r[0] for r in cur.fetchall()] == ["admin", "analyst"]
        conn.close()  # type: ignore[attr-defined]
    # Nothing secret reached the server's log.
    log = mlflow_server.log.read_text(errors="replace")
    assert mlflow_server.admin_password not in log
    if mlflow_server.db_password:
        assert mlflow_server.db_password not in log


def test_smoke_mlflow_check_against_the_real_server(mlflow_server: RunningMlflow) -> None:
    from mlplatform.mlp.smoke import check_mlflow

    result = check_mlflow(mlflow_server.url, mlflow_server.admin_user, mlflow_server.admin_password)
    assert result.ok, result.detail
    assert "logged; artifact stored (mlflow-artifacts:" in result.detail and "read back" in result.detail
    refused = check_mlflow(mlflow_server.url, mlflow_server.admin_user, "wrong-password")
    assert not refused.ok and "401" in refused.detail
    assert os.environ.get("MLFLOW_TRACKING_PASSWORD") is None  # the check restores the environment


def test_the_registry_reader_needs_read_on_the_model_and_on_its_experiment(
    mlflow_server: RunningMlflow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The `mlflow-registry-reader` user the docs tell an operator to create (docs/pipelines.md): what the resolver
    (KServe's storage container and vLLM's init container run it) is denied and allowed, as that user, against the
    real server with the platform's auth settings (new users get NO_PERMISSIONS)."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient
    from sklearn.linear_model import LogisticRegression

    from mlplatform.infra.pipelines.steps._common import StepError
    from mlplatform.infra.pipelines.steps.resolve import resolve

    url = mlflow_server.url

    def sign_in(user: str, password: str) -> None:
        """MLflow's client reads the credentials from the environment on each request."""
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)

    sign_in(mlflow_server.admin_user, mlflow_server.admin_password)
    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    experiment_id = client.create_experiment("churn-training")
    with mlflow.start_run(experiment_id=experiment_id):
        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn")
    client.set_registered_model_alias("churn", "champion", str(info.registered_model_version))
    auth = AuthServiceClient(url)
    auth.create_user("registry-reader", "reader-password-1")

    sign_in("registry-reader", "reader-password-1")
    with pytest.raises(StepError, match=r"registered model 'churn'.*(PERMISSION_DENIED|Permission denied)"):
        resolve("models:/churn@champion", tmp_path / "none", url)

    sign_in(mlflow_server.admin_user, mlflow_server.admin_password)
    auth.grant_user_permission("registry-reader", "registered_model", "churn", "READ")
    sign_in("registry-reader", "reader-password-1")
    # The model's metadata is readable, its files are not: they are the run's artifacts, in the experiment.
    with pytest.raises(StepError, match=r"^downloading churn version 1 from .*: 403 Client Error: Forbidden"):
        resolve("models:/churn@champion", tmp_path / "model-only", url)

    sign_in(mlflow_server.admin_user, mlflow_server.admin_password)
    auth.grant_user_permission("registry-reader", "experiment", experiment_id, "READ")
    sign_in("registry-reader", "reader-password-1")
    resolved = resolve("models:/churn@champion", tmp_path / "served", url)
    assert resolved.version == "1" and (tmp_path / "served" / "MLmodel").is_file()
    # READ is read: the reader cannot move the alias it serves
    with pytest.raises(Exception, match=r"PERMISSION_DENIED|Permission denied|403"):
        client.set_registered_model_alias("churn", "champion", "1")


def _run_accounts_job(
    mlflow_server: RunningMlflow, moto_endpoint: str, accounts: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """The `mlflow-accounts` Job's container as rendered (command, environment), with what cannot exist here
    swapped: the server's URL, the path of the mounted Secret's file, the AWS endpoint (moto)."""
    job = documents.accounts_job(
        image="mlflow:test",
        admin_secret_id=ADMIN_SECRET_NAME,
        region=REGION,
        usernames=sorted(accounts),
        labels={},
        node_selector={},
    )
    (container,) = job["spec"]["template"]["spec"]["containers"]
    mounted = tmp_path / "accounts" / documents.ACCOUNTS_FILE
    mounted.parent.mkdir(exist_ok=True)
    mounted.write_text(documents.accounts_secret_value(accounts))
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_ACCOUNTS_FILE"] == f"{documents.ACCOUNTS_MOUNT}/{documents.ACCOUNTS_FILE}"
    env.update(
        MLFLOW_TRACKING_URI=mlflow_server.url,
        MLFLOW_ACCOUNTS_FILE=str(mounted),
        HOME=str(tmp_path),
        PATH=os.environ.get("PATH", ""),
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    assert container["command"][:2] == ["python", "-c"]
    return subprocess.run(
        [sys.executable, "-c", container["command"][2]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # the file runs without the project on its path, as in the MLflow image
    )


def test_the_accounts_job_signs_in_the_platforms_workloads_and_teams_share_only_what_they_own(
    mlflow_server: RunningMlflow, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The accounts Job creates the registry reader and the teams' accounts; a team's train and promote steps,
    signed in as the team, own what they create and give the reader READ on the champion only; the reader resolves
    it; another team can neither read it nor grant itself access; a changed password in the Secret takes effect on
    the next run. All against the real server with the platform's auth settings (new users: NO_PERMISSIONS)."""
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient

    from mlplatform.infra.pipelines.steps import evaluate_and_promote
    from mlplatform.infra.pipelines.steps._common import StepError
    from mlplatform.infra.pipelines.steps.resolve import resolve
    from mlplatform.infra.pipelines.steps.train import TrainSpec, train

    url = mlflow_server.url
    reader, team_a, team_b = documents.REGISTRY_READER_USER, documents.team_user("a"), documents.team_user("b")
    passwords = {user: secrets.token_urlsafe(24) for user in (reader, team_a, team_b)}

    first = _run_accounts_job(mlflow_server, moto_endpoint, passwords, tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"created": sorted(passwords), "updated": []}
    again = _run_accounts_job(mlflow_server, moto_endpoint, passwords, tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"created": [], "updated": sorted(passwords)}  # idempotent
    for output in (first, again):
        assert not any(p in output.stdout + output.stderr for p in passwords.values())

    def sign_in(user: str) -> None:
        password = mlflow_server.admin_password if user == mlflow_server.admin_user else passwords[user]
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)

    dataset = tmp_path / "churn.csv"
    rows = [f"{x:.2f},{x * 0.5:.2f},{int(x > 0)}" for x in [i / 10 - 2 for i in range(41)]]
    dataset.write_text("x0,x1,label\n" + "\n".join(rows) + "\n")

    # Team a trains (its workflow's experiment: <namespace>/<model>) and promotes, sharing the champion.
    sign_in(team_a)
    trained = train(TrainSpec(tracking_uri=url, model="churn", dataset=str(dataset), experiment="team-a/churn"))
    argv = ["--tracking-uri", url, "--model", "churn", "--metric", "accuracy", "--registry-reader", reader]
    promoted = evaluate_and_promote.main(argv)
    assert promoted["decision"] == "promoted" and promoted["challenger_version"] == trained.version
    experiment_id = MlflowClient(url).get_experiment_by_name("team-a/churn").experiment_id
    assert promoted["shared"] == {"reader": reader, "registered_model": "churn", "experiment_id": experiment_id}
    assert evaluate_and_promote.main(argv)["decision"] == "unchanged"  # sharing again changes nothing

    sign_in(reader)
    resolved = resolve("models:/churn@champion", tmp_path / "served", url)
    assert resolved.version == trained.version and (tmp_path / "served" / "MLmodel").is_file()
    with pytest.raises(Exception, match=r"PERMISSION_DENIED|Permission denied|403"):
        MlflowClient(url).set_registered_model_alias("churn", "champion", trained.version)

    # Team b: no read, no promotion, no grant on team a's model; the reader sees nothing of team b's own model.
    sign_in(team_b)
    with pytest.raises(StepError, match=r"registered model 'churn'.*(PERMISSION_DENIED|Permission denied)"):
        evaluate_and_promote.main(argv)
    with pytest.raises(Exception, match=r"PERMISSION_DENIED|Permission denied|403"):
        AuthServiceClient(url).grant_user_permission(team_b, "registered_model", "churn", "READ")
    with pytest.raises(StepError, match=r"(PERMISSION_DENIED|Permission denied)"):
        train(TrainSpec(tracking_uri=url, model="churn", dataset=str(dataset), experiment="team-b/churn"))
    train(TrainSpec(tracking_uri=url, model="fraud", dataset=str(dataset), experiment="team-b/fraud"))
    sign_in(reader)
    with pytest.raises(StepError, match=r"registered model 'fraud'.*(PERMISSION_DENIED|Permission denied)"):
        resolve("models:/fraud@challenger", tmp_path / "not-shared", url)

    # A new password in the Secret: the next run sets it, the old one stops working.
    rotated = {**passwords, team_a: secrets.token_urlsafe(24)}
    assert _run_accounts_job(mlflow_server, moto_endpoint, rotated, tmp_path).returncode == 0
    sign_in(team_a)
    with pytest.raises(Exception, match=r"401|Unauthorized|credentials"):
        MlflowClient(url).get_registered_model("churn")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", rotated[team_a])
    assert MlflowClient(url).get_registered_model("churn").name == "churn"

    # The administrator is not the Job's to manage; a broken file is one line, not a traceback.
    refused = _run_accounts_job(mlflow_server, moto_endpoint, {mlflow_server.admin_user: "x" * 20}, tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: the accounts file names the administrator {mlflow_server.admin_user!r}; it manages only other users"
    )
