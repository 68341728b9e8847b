"""IAM contract tests: each workload's real client code, at the version its image runs, against moto over HTTP;
every AWS call it makes is decided by `mlp.iam_eval` against the workload's identity policy and the lake's bucket
and key policies, all taken from the plan of the shipped prod stack (placeholder ARNs and bucket names included).

moto answers every call (it does not evaluate Resource or Condition); the evaluator decides. Each workload: every
call its code needs is allowed, and a negative control (another team's prefix, another prefix of the bucket, a
bucket outside its grant) is denied. `pytest tests/test_iam_contracts.py -s` prints the table docs/security.md shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlplatform.mlp.iam_calls import api_call
from mlplatform.mlp.planner import Plan
from tests.aws_server import RecordingMoto, free_port
from tests.iam_harness import (
    Judged,
    Lake,
    Row,
    Workload,
    client_operations,
    judge,
    markdown_table,
    server_operations,
)
from tests.servers import VENV_BIN, start, stop, wait_for_http

pytestmark = pytest.mark.contract

STACK = "prod"
AWS_CLI = Path(VENV_BIN) / "aws"
ROWS: dict[str, Row] = {}
MIB = 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def contract_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the table of every workload run in this module (shown with -s, and in the terminal summary)."""
    yield
    if ROWS:
        order = ["KServe", "MLflow", "vLLM weights", "vLLM hub token", "Ray job", "tenant job"]
        rows = [ROWS[k] for k in sorted(ROWS, key=lambda k: next(i for i, o in enumerate(order) if k.startswith(o)))]
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        text = f"\nIAM contract table ({STACK}):\n{markdown_table(rows)}\n"
        if reporter is not None:
            reporter.write_line(text)
        else:
            print(text)


@pytest.fixture
def plan(plans: dict[str, Plan]) -> Plan:
    return plans[STACK]


@pytest.fixture
def lake(plan: Plan, recording_moto: RecordingMoto) -> Lake:
    """The planned lake, with every planned bucket created in moto (by its planned name)."""
    return Lake.created(plan)


def _put(bucket: str, objects: dict[str, int]) -> None:
    s3 = boto3.client("s3")
    for key, size in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _cli_env(tmp_path: Path, env: list[dict[str, str]]) -> dict[str, str]:
    """The planned container env for an AWS CLI subprocess, pointed at moto, reading no local AWS config."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    planned = {e["name"]: e["value"] for e in env}
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **planned,
        # AWS CLI v2 reads the region from AWS_REGION (what the platform sets); v1 only from AWS_DEFAULT_REGION.
        "AWS_DEFAULT_REGION": planned["AWS_REGION"],
        "HOME": str(home),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _run_cli(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}: {done.stderr[-2000:]}"


def _record(name: str, client: str, judged: Judged, negative: str, negative_judged: Judged) -> None:
    ROWS[name] = Row(name, client, judged, negative, negative_judged)


def _assert_all_allowed(judged: Judged) -> None:
    assert judged.calls, "no AWS call was recorded"
    assert not judged.denied, "denied:\n" + judged.explain_denials()


def _assert_denied(judged: Judged, action: str, resource_contains: str) -> None:
    hits = [v for v in judged.denied if v.request.action == action and resource_contains in v.request.resource]
    assert hits, f"expected {action} on *{resource_contains}* to be denied; decisions:\n" + "\n".join(
        v.line() for v in judged.verdicts
    )


# -- KServe's storage initializer -------------------------------------------------------------------------------


def _storage_uris(plan: Plan) -> list[str]:
    """Every predictor's storageUri of every planned InferenceService (the stable model and its canaries)."""
    uris: list[str] = []
    for isvc in plan.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService"):
        spec = isvc.inputs["spec"]
        uris.append(spec["predictor"]["model"]["storageUri"])
        uris += [c["predictor"]["model"]["storageUri"] for c in spec.get("canary", [])]
    return uris


def _kserve_download(uri: str, out: Path) -> None:
    kserve_storage = pytest.importorskip("kserve_storage", reason="kserve-storage 0.20.0 has no Python 3.13 release")
    kserve_storage.Storage.download(uri, str(out))


def test_kserve_storage_initializer_downloads_each_model_under_its_policy(
    plan: Plan, lake: Lake, recording_moto: RecordingMoto, tmp_path: Path
) -> None:
    workload = Workload.of(plan, "serving", "kserve-models")
    uris = _storage_uris(plan)
    assert uris == [f"s3://{lake.buckets['models']}/churn/v3/", f"s3://{lake.buckets['models']}/churn/v4/"]
    models = lake.buckets["models"]
    for uri in uris:
        prefix = uri.split(models + "/", 1)[1].rstrip("/")
        # a model directory with a zero-byte "folder" marker, and a sibling prefix that must not be pulled in
        _put(
            models,
            {
                f"{prefix}/model.joblib": 2048,
                f"{prefix}/metadata/params.json": 64,
                f"{prefix}/": 0,
                f"{prefix}0/other-model.joblib": 16,
            },
        )
    with client_operations(tmp_path / "client.jsonl") as client, recording_moto.log.capture() as recorded:
        for i, uri in enumerate(uris):
            _kserve_download(uri, tmp_path / f"model-{i}")
    assert server_operations(recorded) == Counter(client)
    for i in range(len(uris)):
        assert _files(tmp_path / f"model-{i}") == ["metadata/params.json", "model.joblib"]
    judged = judge(recorded, workload, lake)
    assert judged.operations == Counter({"HeadBucket": 2, "ListObjects": 2, "HeadObject": 4, "GetObject": 4})
    _assert_all_allowed(judged)

    # Negative control: a model version outside the configured ones.
    _put(models, {"churn/v2/model.joblib": 16})
    with recording_moto.log.capture() as recorded:
        _kserve_download(f"s3://{models}/churn/v2/", tmp_path / "not-granted")
    negative = judge(recorded, workload, lake)
    _assert_denied(negative, "s3:ListBucket", models)
    _assert_denied(negative, "s3:GetObject", "churn/v2/model.joblib")
    _record("KServe storage initializer", "kserve-storage 0.20.0", judged, "churn/v2/ (not configured)", negative)


# -- MLflow: the real server (--serve-artifacts) started with the planned command and environment ----------------


def _container(plan: Plan, name: str, container: str, *, init: bool = False) -> dict[str, Any]:
    pod = plan.get(name).inputs["spec"]["template"]["spec"]
    return next(c for c in pod["initContainers" if init else "containers"] if c["name"] == container)


def _swap(args: list[str], flag: str, value: str) -> None:
    args[args.index(flag) + 1] = value


def test_mlflow_server_stores_lists_and_serves_artifacts_under_its_policy(
    plan: Plan, lake: Lake, recording_moto: RecordingMoto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from mlplatform.infra.mlops import documents

    workload = Workload.of(plan, "mlflow", "mlflow")
    planned = _container(plan, "mlflow-deployment", "mlflow")
    env = {e["name"]: e["value"] for e in planned["env"]}
    sm = boto3.client("secretsmanager")
    # The platform's two secrets, by their planned names (moto makes its own ARNs; the judge maps them back).
    names = {s.arn: n for n, s in lake.secrets.items()}
    password = "contract-" + os.urandom(8).hex()
    moto_arn = {
        "MLFLOW_DB_SECRET_ID": sm.create_secret(
            Name=names[env["MLFLOW_DB_SECRET_ID"]],
            SecretString=json.dumps({"engine": "sqlite", "path": str(tmp_path / "mlflow.db")}),
        )["ARN"],
        "MLFLOW_ADMIN_SECRET_ID": sm.create_secret(
            Name=names[env["MLFLOW_ADMIN_SECRET_ID"]],
            SecretString=documents.admin_secret_value(
                username=documents.MLFLOW_ADMIN_USER, password=password, flask_secret_key=os.urandom(16).hex()
            ),
        )["ARN"],
    }
    command = [sys.executable if planned["command"][0] == "python" else planned["command"][0], *planned["command"][1:]]
    port = free_port()
    _swap(command, "--host", "127.0.0.1")
    _swap(command, "--port", str(port))
    _swap(command, "--workers", "1")
    destination = command[command.index("--artifacts-destination") + 1]
    assert destination == f"s3://{lake.buckets['artifacts']}/mlflow"
    server_env = {
        **env,
        **moto_arn,
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth" / "basic_auth.ini"),
        "HOME": str(tmp_path),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ENDPOINT_URL": recording_moto.endpoint,
        "MLFLOW_S3_ENDPOINT_URL": recording_moto.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    notes = tmp_path / "notes.txt"
    notes.write_text("auc: 0.91\n")
    model_dir = tmp_path / "model"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "model.pkl").write_bytes(os.urandom(4096))
    (model_dir / "sub" / "conda.yaml").write_text("name: churn\n")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(9 * MIB))  # above boto3's 8 MiB threshold: the server uploads it in parts
    checkpoint = tmp_path / "checkpoint.bin"
    checkpoint.write_bytes(os.urandom(12 * MIB))
    log = tmp_path / "mlflow.log"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", documents.MLFLOW_ADMIN_USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    # The client's threshold for presigned multipart uploads (default 500 MB), lowered to exercise the path.
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(10 * MIB))
    url = f"http://127.0.0.1:{port}"
    with recording_moto.log.capture() as recorded:
        process = start(command, server_env, log, cwd=tmp_path)
        try:
            wait_for_http(f"{url}/health", process, timeout=120, log=log)
            client = MlflowClient(url)
            experiment = client.create_experiment("iam-contract")
            mlflow.set_tracking_uri(url)
            with mlflow.start_run(experiment_id=experiment) as run:
                mlflow.log_artifact(str(notes), artifact_path="reports")
                mlflow.log_artifacts(str(model_dir), artifact_path="model")
                mlflow.log_artifact(str(weights), artifact_path="model")
                mlflow.log_artifact(str(checkpoint), artifact_path="checkpoints")
            listed = sorted(a.path for a in client.list_artifacts(run.info.run_id, "model"))
            back = Path(client.download_artifacts(run.info.run_id, "model", str(tmp_path / "back")))
            note = Path(client.download_artifacts(run.info.run_id, "reports/notes.txt", str(tmp_path / "note")))
        finally:
            stop(process)
    assert listed == ["model/model.pkl", "model/sub", "model/weights.bin"]
    assert _files(back) == ["model.pkl", "sub/conda.yaml", "weights.bin"] and note.read_text() == "auc: 0.91\n"
    judged = judge(recorded, workload, lake)
    # The launcher reads its two secrets; uploads go through the server (in parts above 8 MiB), except a large one
    # (the client's threshold) whose parts the client sends straight to S3 on URLs the server presigns; every
    # download is a presigned GET from the client, straight to S3 (MLflow 3.17.2 with an S3 artifact store).
    assert judged.operations == Counter(
        {
            "GetSecretValue": 2,
            "PutObject": 3,
            "CreateMultipartUpload": 2,
            "UploadPart": 4,
            "CompleteMultipartUpload": 2,
            "ListObjectsV2": 5,
            "HeadObject": 4,
            "GetObject": 4,
        }
    )
    presigned = Counter(api_call(r.exchange).operation for r in recorded if r.presigned)
    assert presigned == Counter({"GetObject": 4, "UploadPart": 2})
    _assert_all_allowed(judged)

    # Negative control: MLflow's own S3 artifact store (the class the server uses) writing outside mlflow/.
    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", recording_moto.endpoint)
    with recording_moto.log.capture() as recorded:
        S3ArtifactRepository(f"s3://{lake.buckets['artifacts']}/ray/escape").log_artifact(str(notes))
    negative = judge(recorded, workload, lake)
    _assert_denied(negative, "s3:PutObject", "/ray/escape/notes.txt")
    _record("MLflow server", "mlflow 3.17.2 (server, --serve-artifacts)", judged, "artifacts ray/ prefix", negative)


# -- vLLM: the init containers' AWS CLI commands, as planned ---------------------------------------------------


def _aws_cli(command: list[str]) -> list[str]:
    """The planned command with `aws` from the test environment (AWS CLI v1, see the README)."""
    return [str(AWS_CLI) if part == "aws" else part for part in command]


def test_vllm_weight_sync_copies_the_model_prefix_under_its_policy(
    plan: Plan, lake: Lake, recording_moto: RecordingMoto, tmp_path: Path
) -> None:
    workload = Workload.of(plan, "serving", "vllm-assistant")
    planned = _container(plan, "serving-vllm-assistant-deployment", "fetch-weights", init=True)
    command = _aws_cli(planned["command"])
    source, target = command[-2], command[-1]
    models = lake.buckets["models"]
    assert source == f"s3://{models}/llm/llama-3.1-70b-instruct/" and target == "/models/assistant/"
    prefix = source.split(models + "/", 1)[1]
    _put(
        models,
        {
            f"{prefix}config.json": 512,
            f"{prefix}tokenizer.json": 2048,
            f"{prefix}model-00001-of-00002.safetensors": 9 * MIB,  # ranged GETs above 8 MiB
            f"{prefix}model-00002-of-00002.safetensors": 1024,
            f"{prefix.rstrip('/')}-awq/config.json": 16,  # a sibling prefix, not pulled in
        },
    )
    command[-1] = str(tmp_path / "models" / "assistant") + "/"
    env = _cli_env(tmp_path, planned["env"])
    with recording_moto.log.capture() as recorded:
        _run_cli(command, env)
    assert _files(tmp_path / "models" / "assistant") == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "tokenizer.json",
    ]
    judged = judge(recorded, workload, lake)
    assert {v.user_agent.split()[0] for v in judged.verdicts} == {"aws-cli/1.46.3"}
    # one listing of the prefix (with its trailing slash: the sibling is not listed), one GET per file, two ranged
    # GETs for the 9 MiB file; no HeadObject (sync knows sizes from the listing)
    assert judged.operations == Counter({"ListObjectsV2": 1, "GetObject": 5})
    assert [c.params.get("prefix") for c in judged.calls if c.operation == "ListObjectsV2"] == [prefix]
    _assert_all_allowed(judged)

    # Negative control: the same sync of another model's prefix (a KServe model).
    _put(models, {"churn/v3/model.joblib": 16})
    with recording_moto.log.capture() as recorded:
        _run_cli([*command[:-2], f"s3://{models}/churn/v3/", str(tmp_path / "other") + "/"], env)
    negative = judge(recorded, workload, lake)
    _assert_denied(negative, "s3:ListBucket", models)
    _record("vLLM weights (init container)", "AWS CLI 1.46.3 `aws s3 sync`", judged, "churn/v3/ prefix", negative)


def test_vllm_hub_token_fetch_reads_only_its_secret(
    plan: Plan, lake: Lake, recording_moto: RecordingMoto, tmp_path: Path
) -> None:
    workload = Workload.of(plan, "serving", "vllm-embedder")
    planned = _container(plan, "serving-vllm-embedder-deployment", "fetch-hub-token", init=True)
    env = _cli_env(tmp_path, planned["env"])
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=env["HUB_TOKEN_SECRET_ID"], SecretString="hf_contract_token")
    sm.create_secret(Name="ml-platform/prod/other-team-token", SecretString="not yours")
    token = tmp_path / "token"
    shell, flag, script = planned["command"]
    script = script.replace("/var/run/secrets/huggingface/token", str(token))
    with recording_moto.log.capture() as recorded:
        _run_cli([shell, flag, script.replace("aws ", f"{AWS_CLI} ", 1)], env)
    assert token.read_text().strip() == "hf_contract_token"
    judged = judge(recorded, workload, lake)
    assert judged.operations == Counter({"GetSecretValue": 1})
    _assert_all_allowed(judged)

    with recording_moto.log.capture() as recorded:
        _run_cli(
            [shell, flag, script.replace("aws ", f"{AWS_CLI} ", 1)],
            {**env, "HUB_TOKEN_SECRET_ID": "ml-platform/prod/other-team-token"},
        )
    negative = judge(recorded, workload, lake)
    _assert_denied(negative, "secretsmanager:GetSecretValue", "other-team-token")
    _record(
        "vLLM hub token (init container)", "AWS CLI 1.46.3 `aws secretsmanager`", judged, "another secret", negative
    )


# -- a Ray job and a tenant's job: boto3 -----------------------------------------------------------------------


def _job_files(tmp_path: Path) -> tuple[Path, Path]:
    small = tmp_path / "metrics.json"
    small.write_text('{"auc": 0.9}')
    big = tmp_path / "checkpoint.bin"
    big.write_bytes(os.urandom(9 * MIB))  # multipart upload and ranged download
    return small, big


def ray_job(lake: Lake, run: str, work: Path, prefix: str) -> None:
    """What a Ray training job does with the lake (boto3, as in the Ray image): read its inputs from the curated,
    features and models zones, write a checkpoint and metrics under `<prefix>ray/` in the artifacts zone, list and
    read them back, and clean up a temporary object. A team's cluster works under the team's prefix."""
    s3 = boto3.client("s3")
    small, big = _job_files(work)
    for zone in ("curated", "features", "models"):
        bucket = lake.buckets[zone]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}datasets/churn/"):
            for obj in page.get("Contents", []):
                s3.download_file(bucket, obj["Key"], str(work / f"{zone}-{Path(obj['Key']).name}"))
    artifacts, out = lake.buckets["artifacts"], f"{prefix}ray/{run}"
    s3.upload_file(str(big), artifacts, f"{out}/checkpoint.bin")
    s3.put_object(Bucket=artifacts, Key=f"{out}/metrics.json", Body=small.read_bytes())
    s3.put_object(Bucket=artifacts, Key=f"{out}/_tmp", Body=b"")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=artifacts, Prefix=f"{out}/")["Contents"]]
    assert sorted(keys) == [f"{out}/_tmp", f"{out}/checkpoint.bin", f"{out}/metrics.json"]
    s3.download_file(artifacts, f"{out}/checkpoint.bin", str(work / "checkpoint.back"))
    s3.delete_object(Bucket=artifacts, Key=f"{out}/_tmp")


def test_ray_job_reads_the_lake_and_writes_under_ray(
    plan: Plan, lake: Lake, recording_moto: RecordingMoto, tmp_path: Path
) -> None:
    """prod's Ray cluster belongs to the team `research`: its jobs' driver runs in the head (`ray-head`), with the
    team's role (tests/test_ray_tenancy.py: the same role as the team's `workload` account)."""
    workload = Workload.of(plan, "team-research", "ray-head")
    for zone in ("curated", "features", "models", "raw"):
        _put(
            lake.buckets[zone],
            {"teams/research/datasets/churn/part-0.parquet": 1024, "teams/research/datasets/churn/part-1.parquet": 512},
        )
        _put(lake.buckets[zone], {"teams/applied/datasets/churn/part-0.parquet": 1024})
    with client_operations(tmp_path / "client.jsonl") as client, recording_moto.log.capture() as recorded:
        ray_job(lake, "run-1", tmp_path, "teams/research/")
    assert server_operations(recorded) == Counter(client)
    judged = judge(recorded, workload, lake)
    assert judged.operations == Counter(
        {
            "ListObjectsV2": 4,
            "HeadObject": 7,
            "GetObject": 8,
            "CreateMultipartUpload": 1,
            "UploadPart": 2,
            "CompleteMultipartUpload": 1,
            "PutObject": 2,
            "DeleteObject": 1,
        }
    )
    _assert_all_allowed(judged)

    # Negative controls: another team's data, and the platform clusters' and MLflow's artifacts prefixes.
    s3 = boto3.client("s3")
    with recording_moto.log.capture() as recorded:
        s3.get_object(Bucket=lake.buckets["curated"], Key="teams/applied/datasets/churn/part-0.parquet")
        s3.put_object(Bucket=lake.buckets["artifacts"], Key="ray/run-1/overwritten", Body=b"x")
        s3.put_object(Bucket=lake.buckets["artifacts"], Key="mlflow/1/overwritten", Body=b"x")
    negative = judge(recorded, workload, lake)
    _assert_denied(negative, "s3:GetObject", "/teams/applied/datasets/churn/part-0.parquet")
    _assert_denied(negative, "s3:PutObject", "/ray/run-1/overwritten")
    _assert_denied(negative, "s3:PutObject", "/mlflow/1/overwritten")
    _record("Ray job", "boto3 1.44.5", judged, "another team's read, ray/ and mlflow/ writes", negative)


def tenant_job(lake: Lake, team: str, work: Path) -> None:
    """A team's job (boto3): in every zone, write, list, read and delete under its own `teams/<team>/` prefix."""
    s3 = boto3.client("s3")
    small, big = _job_files(work)
    prefix = f"teams/{team}/"
    for zone, bucket in sorted(lake.buckets.items()):
        if zone == "access-logs":
            continue
        s3.put_object(Bucket=bucket, Key=f"{prefix}{zone}/metrics.json", Body=small.read_bytes())
        if zone == "features":
            s3.upload_file(str(big), bucket, f"{prefix}{zone}/table.bin")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
        assert [p["Prefix"] for p in listed.get("CommonPrefixes", [])] == [f"{prefix}{zone}/"]
        s3.get_object(Bucket=bucket, Key=f"{prefix}{zone}/metrics.json")["Body"].read()
        s3.delete_object(Bucket=bucket, Key=f"{prefix}{zone}/metrics.json")


def test_tenant_job_uses_its_team_prefix_in_every_zone(
    plan: Plan, lake: Lake, recording_moto: RecordingMoto, tmp_path: Path
) -> None:
    workload = Workload.of(plan, "team-research", "workload")
    with client_operations(tmp_path / "client.jsonl") as client, recording_moto.log.capture() as recorded:
        tenant_job(lake, "research", tmp_path)
    assert server_operations(recorded) == Counter(client)
    judged = judge(recorded, workload, lake)
    assert judged.operations == Counter(
        {
            "PutObject": 5,
            "CreateMultipartUpload": 1,
            "UploadPart": 2,
            "CompleteMultipartUpload": 1,
            "ListObjectsV2": 5,
            "GetObject": 5,
            "DeleteObject": 5,
        }
    )
    _assert_all_allowed(judged)

    # Negative controls: another team's prefix, and the whole bucket's listing.
    s3 = boto3.client("s3")
    curated = lake.buckets["curated"]
    _put(curated, {"teams/applied/features.parquet": 16})
    with recording_moto.log.capture() as recorded:
        s3.get_object(Bucket=curated, Key="teams/applied/features.parquet")
        s3.list_objects_v2(Bucket=curated, Prefix="teams/")
    negative = judge(recorded, workload, lake)
    _assert_denied(negative, "s3:GetObject", "teams/applied/")
    _assert_denied(negative, "s3:ListBucket", curated)
    _record("tenant job (team research)", "boto3 1.44.5", judged, "teams/applied/ read, teams/ list", negative)
