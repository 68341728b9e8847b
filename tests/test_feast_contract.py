"""The feature store with the real Feast (the version images/feast/requirements.txt pins, installed in `.venv-feast`
by `python3 dev.py setup --dev`), against moto's S3 and DynamoDB over HTTP, with every call judged under the role
the prod plan gives the workload that makes it.

The repository is the platform's own `feature_store.yaml` (`infra.features.documents`, with the planned features
bucket and tables) beside the shipped example definitions (examples/feast/ranking). The planned buckets and
tables exist; the moto server answers as the account would (`RequestLog.enforce`): a request the role may not make
gets AWS's 403.

- `feast apply` and `feast materialize` as the materializer (`feast-materializer`): apply finds the platform's
  tables and creates none; materialization writes them in batches.
- A point-in-time-correct historical retrieval from the offline store (the Parquet files in the features zone):
  each entity row gets the latest feature row at or before its timestamp, never a later one.
- `feast serve` as the feature server (`feature-server`): `/get-online-features` answers the materialized values;
  its unauthenticated write endpoint is refused by AWS, because the role reads only. Its metrics (`--metrics`, what
  Prometheus scrapes) carry every series the feature store's alerts read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlplatform.infra.features import documents
from mlplatform.infra.features.documents import FEAST_NAMESPACE, FeatureStoreSpec
from mlplatform.mlp.planner import Plan
from tests.aws_server import RecordingMoto, free_port
from tests.iam_harness import Judged, Lake, Workload, enforcer, judge
from tests.servers import stop, wait_for_http

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[1]
FEAST_VENV = ROOT / ".venv-feast"
EXAMPLE = ROOT / "examples" / "feast" / "ranking" / "features.py"
T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
"""Every feature row lies before now: materialization up to now sees them all."""


@pytest.fixture(scope="module")
def feast_bin() -> Path:
    feast = FEAST_VENV / "bin" / "feast"
    if not feast.exists():
        pytest.fail(
            f"{feast} is missing: `python3 dev.py setup --dev` installs Feast from images/feast/requirements.txt"
        )
    return feast


@pytest.fixture
def prod(plans: dict[str, Plan]) -> Plan:
    return plans["prod"]


@pytest.fixture
def lake(prod: Plan, recording_moto: RecordingMoto) -> Lake:
    return Lake.created(prod)


@pytest.fixture
def spec(prod: Plan, lake: Lake) -> FeatureStoreSpec:
    """The prod stack's feature store as planned: its ConfigMap's `feature_store.yaml` names the same bucket."""
    import yaml

    (config,) = [r for r in prod.of_type("kubernetes:core/v1:ConfigMap") if r.name == "features-config"]
    planned = yaml.safe_load(config.inputs["data"]["feature_store.yaml"])
    tables = [str(r.inputs["name"]) for r in prod.of_type("aws:dynamodb/table:Table")]
    label = tables[0].split(".", 1)[0]
    built = FeatureStoreSpec(
        label=label,
        project=planned["project"],
        views=tuple(t.rsplit(".", 1)[1] for t in tables),
        region=lake.region,
        features_bucket=lake.buckets["features"],
    )
    assert documents.feature_store_config(built) == planned  # the test runs what the plan deploys
    return built


@pytest.fixture
def tables(prod: Plan, recording_moto: RecordingMoto) -> list[str]:
    """The planned tables, created as planned (moto keeps no KMS key of the plan: SSE stays moto's default)."""
    import boto3

    client = boto3.client("dynamodb")
    names = []
    for r in prod.of_type("aws:dynamodb/table:Table"):
        inputs = r.inputs
        client.create_table(
            TableName=inputs["name"],
            KeySchema=[{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
            ],
            BillingMode=inputs["billingMode"],
        )
        names.append(str(inputs["name"]))
    return names


def _write_parquet(bucket: str, key: str, rows: list[dict[str, Any]]) -> None:
    import io

    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=sink.getvalue())


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


USER_ROWS = [
    # user_id, hours after T0, clicks, dwell
    (1, -3, 1, 10.0),
    (1, -1, 5, 50.0),
    (2, -2, 7, 70.0),
    (3, 1, 9, 90.0),
]
ITEM_ROWS = [(10, -4, 0.25), (10, -0.5, 0.75), (11, -2, 0.5)]


PRODUCER, CONSUMER = "research", "applied"
"""Prod's teams: `research` is the feature store's producer (config `feature_store.producers`), `applied` is not."""


def _team(prod: Plan, team: str) -> Workload:
    return Workload.of(prod, f"team-{team}", "workload")


@pytest.fixture
def repo(
    tmp_path: Path, prod: Plan, spec: FeatureStoreSpec, lake: Lake, tables: list[str], recording_moto: RecordingMoto
) -> Path:
    """A Feast repository: the platform's `feature_store.yaml` and the example definitions; the offline files
    written to the features zone under the project's sources prefix by the producer team's role."""
    directory = tmp_path / "repo"
    directory.mkdir()
    (directory / "feature_store.yaml").write_text(documents.feature_store_yaml(spec))
    shutil.copy(EXAMPLE, directory / "features.py")
    bucket = spec.features_bucket
    prefix = documents.sources_prefix(spec.project)
    producer = _team(prod, PRODUCER)
    recording_moto.log.enforce = enforcer(producer, lake)
    with recording_moto.log.capture() as recorded:
        _write_parquet(
            bucket,
            f"{prefix}user_activity.parquet",
            [
                {"user_id": u, "event_timestamp": _h(h), "created": _h(h), "clicks": c, "dwell_seconds": d}
                for u, h, c, d in USER_ROWS
            ],
        )
        _write_parquet(
            bucket,
            f"{prefix}item_popularity.parquet",
            [{"item_id": i, "event_timestamp": _h(h), "created": _h(h), "score": s} for i, h, s in ITEM_ROWS],
        )
    recording_moto.log.enforce = None
    judged = judge(recorded, producer, lake)
    assert not judged.denied and judged.operations["PutObject"] == 2, judged.explain_denials()
    return directory


def _env(recording_moto: RecordingMoto, spec: FeatureStoreSpec, home: Path) -> dict[str, str]:
    endpoint = recording_moto.endpoint
    return {
        "PATH": f"{FEAST_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "FEAST_USAGE": "False",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "FEAST_SOURCES_URI": spec.sources_uri,
    }


def _feast(feast: Path, repo: Path, env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(feast), "-c", str(repo), *args],
        env=env,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"feast {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    return done.stdout


def _role(prod: Plan, account: str) -> Workload:
    return Workload.of(prod, FEAST_NAMESPACE, account)


def _ops(judged: Judged, service: str) -> Counter[str]:
    return Counter(c.operation for c in judged.calls if c.service == service)


@pytest.fixture
def materialized(
    feast_bin: Path, repo: Path, prod: Plan, lake: Lake, spec: FeatureStoreSpec, recording_moto: RecordingMoto
) -> dict[str, Judged]:
    """`feast apply` then `feast materialize` over the rows' whole span, as the materializer."""
    materializer = _role(prod, documents.MATERIALIZER_SERVICE_ACCOUNT)
    env = _env(recording_moto, spec, repo.parent)
    recording_moto.log.enforce = enforcer(materializer, lake)
    out: dict[str, Judged] = {}
    with recording_moto.log.capture() as recorded:
        _feast(feast_bin, repo, env, "apply")
    out["apply"] = judge(recorded, materializer, lake)
    start, end = _h(-24).strftime("%Y-%m-%dT%H:%M:%S"), datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    with recording_moto.log.capture() as recorded:
        _feast(feast_bin, repo, env, "materialize", start, end)
    out["materialize"] = judge(recorded, materializer, lake)
    recording_moto.log.enforce = None
    return out


def test_apply_and_materialize_run_under_the_materializers_role_and_create_no_table(
    materialized: dict[str, Judged], tables: list[str], spec: FeatureStoreSpec
) -> None:
    import boto3

    for step, judged in materialized.items():
        assert not judged.denied, f"{step}:\n{judged.explain_denials()}"
    apply, materialize = materialized["apply"], materialized["materialize"]
    # apply found the platform's tables (DescribeTable) and created none; it wrote the registry into the lake.
    assert _ops(apply, "dynamodb")["DescribeTable"] >= len(tables)
    assert not {"CreateTable", "DeleteTable", "UpdateTable"} & set(_ops(apply, "dynamodb"))
    registry = documents.registry_key(spec.project)
    assert any(c.operation == "PutObject" and c.key == registry for c in apply.calls)
    # materialize read the offline files and the registry, and wrote both tables in batches.
    written = {t for c in materialize.calls if c.operation == "BatchWriteItem" for t in c.tables}
    assert written == set(tables)
    read = {c.key for c in materialize.calls if c.operation == "GetObject"}
    assert {f"{documents.sources_prefix(spec.project)}user_activity.parquet", registry} <= read
    # Every key either workload touched in the lake is the project's.
    keys = {c.key for j in materialized.values() for c in j.calls if c.service == "s3" and c.key}
    assert keys and all(k.startswith(documents.project_prefix(spec.project)) for k in keys), sorted(keys)
    # What the tables hold: one item per entity (the latest row of each).
    items = boto3.client("dynamodb").scan(TableName=f"{spec.label}.{spec.project}.user_activity")["Items"]
    assert len(items) == len({u for u, *_ in USER_ROWS})


HISTORICAL = """
import json, sys
import pandas as pd
from feast import FeatureStore
rows = json.loads(sys.argv[1])
entity_df = pd.DataFrame({"user_id": [r[0] for r in rows],
                          "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True)})
store = FeatureStore(repo_path=".")
df = store.get_historical_features(entity_df=entity_df,
                                   features=["user_activity:clicks", "user_activity:dwell_seconds"]).to_df()
out = [{"user_id": int(r.user_id), "at": r.event_timestamp.isoformat(),
        "clicks": None if pd.isna(r.clicks) else int(r.clicks)} for r in df.itertuples()]
print(json.dumps(out))
"""


def test_historical_retrieval_is_point_in_time_correct(
    feast_bin: Path,
    repo: Path,
    prod: Plan,
    lake: Lake,
    spec: FeatureStoreSpec,
    recording_moto: RecordingMoto,
    materialized: dict[str, Judged],
) -> None:
    # Each entity row asks for the features as they were at its timestamp.
    asked = [
        (1, _h(-2)),  # between user 1's two rows: the earlier (1 click), not the later (5)
        (1, _h(0)),  # after both: 5
        (2, _h(-1.5)),  # after user 2's only row: 7
        (3, _h(-0.5)),  # before user 3's only row (an hour later): nothing may leak back from the future
    ]
    expected = {(1, _h(-2)): 1, (1, _h(0)): 5, (2, _h(-1.5)): 7, (3, _h(-0.5)): None}
    # A training job of a team that only reads the features: its own role.
    consumer = _team(prod, CONSUMER)
    recording_moto.log.enforce = enforcer(consumer, lake)
    env = _env(recording_moto, spec, repo.parent)
    with recording_moto.log.capture() as recorded:
        done = subprocess.run(
            [str(FEAST_VENV / "bin" / "python"), "-c", HISTORICAL, json.dumps([[u, t.isoformat()] for u, t in asked])],
            env=env,
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    recording_moto.log.enforce = None
    assert done.returncode == 0, done.stderr[-6000:]
    got = {
        (r["user_id"], datetime.fromisoformat(r["at"])): r["clicks"] for r in json.loads(done.stdout.splitlines()[-1])
    }
    for (user, at), clicks in expected.items():
        # Feast's file store leaves out an entity row that no feature row precedes (rather than a null).
        assert got.get((user, at)) == clicks, (user, at, got)
    judged = judge(recorded, consumer, lake)
    assert not judged.denied, judged.explain_denials()
    assert not {"PutObject", "DeleteObject"} & set(judged.operations)  # retrieval wrote nothing to the lake


def test_a_team_that_is_not_a_producer_cannot_write_the_offline_files(
    prod: Plan, lake: Lake, spec: FeatureStoreSpec, recording_moto: RecordingMoto
) -> None:
    import boto3
    from botocore.exceptions import ClientError

    consumer = _team(prod, CONSUMER)
    recording_moto.log.enforce = enforcer(consumer, lake)
    s3 = boto3.client("s3")
    # Neither the offline files (a producer team's) nor the registry (`feast apply` and materialization write it,
    # as the materializer).
    for key in (f"{documents.sources_prefix(spec.project)}user_activity.parquet", documents.registry_key(spec.project)):
        with recording_moto.log.capture(), pytest.raises(ClientError) as refused:
            s3.put_object(Bucket=spec.features_bucket, Key=key, Body=b"not features")
        assert refused.value.response["Error"]["Code"] == "AccessDenied", key
    recording_moto.log.enforce = None


# Feast's metrics process binds every interface on a port the CLI does not change (8000); tests listen on loopback
# and free ports only. The shim runs the real CLI after moving that one bind, and refuses any other port than the
# one the Deployment declares, so a Feast that moved its metrics port fails here.
METRICS_SHIM = """
import os, sys
from wsgiref.simple_server import make_server
import feast.metrics as metrics

def bind(port, app):
    if port != int(os.environ["MLP_DECLARED_METRICS_PORT"]):
        raise RuntimeError(f"Feast asked for metrics port {port}")
    return make_server("127.0.0.1", int(os.environ["MLP_TEST_METRICS_PORT"]), app,
                       handler_class=metrics._QuietWSGIRequestHandler)

metrics._make_metrics_httpd = bind
from feast.cli.cli import cli
sys.argv[0] = "feast"
sys.exit(cli())
"""


@pytest.fixture
def feature_server(
    feast_bin: Path,
    repo: Path,
    prod: Plan,
    lake: Lake,
    spec: FeatureStoreSpec,
    recording_moto: RecordingMoto,
    materialized: dict[str, Judged],
) -> Iterator[tuple[str, Workload, str]]:
    """`feast serve` with only `feature_store.yaml` in its repository (as the pod has), as the feature server: its
    URL, its role and its metrics endpoint."""
    served = repo.parent / "served"
    served.mkdir()
    (served / "feature_store.yaml").write_text((repo / "feature_store.yaml").read_text())
    server = _role(prod, documents.FEATURE_SERVER_SERVICE_ACCOUNT)
    recording_moto.log.enforce = enforcer(server, lake)
    port, metrics_port = free_port(), free_port()
    # The Deployment's command, on a loopback address and free ports.
    command = [str(FEAST_VENV / "bin" / "python"), "-c", METRICS_SHIM, "-c", str(served)]
    command += documents.server_command()[3:]
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    log = repo.parent / "feature-server.log"
    env = {
        **_env(recording_moto, spec, repo.parent),
        "MLP_TEST_METRICS_PORT": str(metrics_port),
        "MLP_DECLARED_METRICS_PORT": str(documents.FEATURE_SERVER_METRICS_PORT),
    }
    process = subprocess.Popen(
        command,
        env=env,
        cwd=served,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with recording_moto.log.capture():
            wait_for_http(f"{url}/health", process, 120, log)
            metrics = f"http://127.0.0.1:{metrics_port}/metrics"
            wait_for_http(metrics, process, 60, log)
        yield url, server, metrics
    finally:
        stop(process)
        recording_moto.log.enforce = None


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_feature_server_answers_online_features_under_its_read_only_role(
    feature_server: tuple[str, Workload, str],
    lake: Lake,
    spec: FeatureStoreSpec,
    recording_moto: RecordingMoto,
    tables: list[str],
) -> None:
    import boto3

    url, role, _ = feature_server
    body = {"features": ["user_activity:clicks", "user_activity:dwell_seconds"], "entities": {"user_id": [1, 2, 4]}}
    with recording_moto.log.capture() as recorded:
        status, answer = _post(f"{url}/get-online-features", body)
        status_items, items = _post(
            f"{url}/get-online-features", {"features": ["item_popularity:score"], "entities": {"item_id": [10, 11]}}
        )
    assert status == 200, answer
    # The latest materialized value per user; an unknown user gets none.
    names = answer["metadata"]["feature_names"]
    clicks = answer["results"][names.index("clicks")]["values"]
    assert clicks == [5, 7, None], answer
    assert status_items == 200 and [round(v, 2) for v in items["results"][1]["values"]] == [0.75, 0.5], items
    judged = judge(recorded, role, lake)
    assert not judged.denied, judged.explain_denials()
    assert set(_ops(judged, "dynamodb")) == {"BatchGetItem"}, _ops(judged, "dynamodb")

    # Feast's server also takes writes, unauthenticated: AWS refuses them to this role, and the table is unchanged.
    before = boto3.client("dynamodb").scan(TableName=tables[0])["Items"]
    write = {
        "feature_view_name": "user_activity",
        "df": {
            "user_id": [1],
            "event_timestamp": [datetime.now(UTC).isoformat()],
            "created": [datetime.now(UTC).isoformat()],
            "clicks": [999],
            "dwell_seconds": [1.0],
        },
    }
    with recording_moto.log.capture() as recorded:
        status, _ = _post(f"{url}/write-to-online-store", write)
    assert status >= 400
    refused = judge(recorded, role, lake)
    assert [v.call.operation for v in refused.denied] == ["BatchWriteItem"], refused.explain_denials()
    assert boto3.client("dynamodb").scan(TableName=tables[0])["Items"] == before


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def test_the_feature_server_exports_what_the_alerts_read(
    feature_server: tuple[str, Workload, str], spec: FeatureStoreSpec, recording_moto: RecordingMoto
) -> None:
    """Prometheus scrapes the real server's metrics endpoint (the Deployment's `--metrics`): each served view's
    freshness, from the registry it read under its role, is seconds old after the materialization; online requests
    are counted by endpoint and status as FeatureServerErrors reads them; every `feast_*` series the feature store's
    alerts name is there with the labels they group by."""
    import re

    from mlplatform.infra.features import alerts

    url, _, metrics_url = feature_server
    with recording_moto.log.capture():
        for _ in range(2):
            status, answer = _post(
                f"{url}/get-online-features", {"features": ["user_activity:clicks"], "entities": {"user_id": [1]}}
            )
            assert status == 200, answer
        status, _ = _post(
            f"{url}/get-online-features", {"features": ["user_activity:no_such_feature"], "entities": {"user_id": [1]}}
        )
        assert status >= 400
        samples = _scrape(metrics_url)

    freshness = {labels["feature_view"]: (labels, value) for labels, value in samples[alerts.FRESHNESS]}
    assert set(freshness) == {"user_activity", "item_popularity"}, samples[alerts.FRESHNESS]
    for labels, value in freshness.values():
        assert labels["project"] == spec.project and 0 <= value < 600, (labels, value)
    requests = {
        (labels["endpoint"], labels["status"]): value
        for labels, value in samples[alerts.REQUESTS]
        if labels["endpoint"] == alerts.ONLINE_ENDPOINT
    }
    assert requests == {(alerts.ONLINE_ENDPOINT, "success"): 2, (alerts.ONLINE_ENDPOINT, "error"): 1}, requests
    group = alerts.feature_store_alert_group()
    named = {m for r in group["rules"] for m in re.findall(r"\bfeast_[a-z_]+", r["expr"])}
    assert named == {alerts.FRESHNESS, alerts.REQUESTS} and named <= set(samples)


def test_the_contract_runs_the_images_lock(feast_bin: Path) -> None:
    """What `.venv-feast` holds is what the feature store's image installs (images/feast/requirements.txt, every
    entry hash-pinned): the versions these tests prove are the deployed ones."""
    import re

    lock = (ROOT / "images" / "feast" / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^ ;\\\n]+)", lock, flags=re.MULTILINE))
    assert pins["feast"] == "0.67.0" and "s3fs" in pins and "aiobotocore" in pins
    assert lock.count("==") == len(re.findall(r"^\S+==", lock, flags=re.MULTILINE))
    entries = re.split(r"\n(?=[a-z0-9])", lock.strip())
    assert all("--hash=sha256:" in e for e in entries if "==" in e)
    names = ["feast", "s3fs", "aiobotocore", "botocore", "pandas", "pyarrow"]
    script = "import importlib.metadata as m, sys; print(' '.join(m.version(n) for n in sys.argv[1:]))"
    done = subprocess.run(
        [str(FEAST_VENV / "bin" / "python"), "-c", script, *names], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [pins[n] for n in names]
