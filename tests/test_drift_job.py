"""The drift job end to end (issue 17, item 4), with what the dev plan renders:

- KServe's logger: the sklearn InferenceService `churn-champion` logs every request to the lake's raw zone under
  research's prefix; objects written there as KServe v0.20's JSON marshaller writes them, by a client under the
  predictor role's planned policy (evaluated by `mlp.iam_eval`, recorded by moto over HTTP).
- The drift step: the command line the dev plan's `mlp-drift` CronWorkflow and ClusterWorkflowTemplate render,
  run as a process against moto's S3 and a real Pushgateway (Debian `prometheus-pushgateway`) on 127.0.0.1; every
  AWS call it makes is allowed by the team role's planned policy, and the gauges land in the Pushgateway.
- Prometheus: the scraped series (with the job label the ServiceMonitor's honorLabels keeps) fire
  `ModelFeatureDrift` in promtool's rule tests when the requests drifted, and stay quiet when they did not.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from statistics import NormalDist

import boto3
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mlplatform.infra.drift import alerts
from mlplatform.infra.drift.payloads import REQUEST_EVENT_TYPE
from mlplatform.infra.pipelines import templates
from mlplatform.infra.pipelines.steps import drift
from mlplatform.infra.serving.documents import MODEL_SERVICE_ACCOUNT, REQUEST_LOG_STORAGE_PATH
from mlplatform.mlp.k8s_schema import object_of
from mlplatform.mlp.planner import Plan
from tests.aws_server import RecordingMoto, free_port
from tests.iam_harness import Lake, Workload, judge
from tests.servers import stop, wait_for_http

pytestmark = pytest.mark.contract

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
PROMTOOL = shutil.which("promtool")
REQUIRED = bool(os.environ.get("MLP_REQUIRE_PROMTOOL"))
needs_servers = pytest.mark.skipif(
    (PUSHGATEWAY is None or PROMTOOL is None) and not REQUIRED,
    reason="needs prometheus-pushgateway and promtool (apt-get install prometheus-pushgateway prometheus)",
)
REFERENCE = NormalDist(50.0, 10.0)
FEATURES = ["tenure", "monthly_charges"]


@pytest.fixture
def plan(plans: dict[str, Plan]) -> Plan:
    return plans["dev"]


@pytest.fixture
def lake(plan: Plan, recording_moto: RecordingMoto) -> Lake:
    return Lake.created(plan)


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    assert PUSHGATEWAY is not None, "prometheus-pushgateway is required here (MLP_REQUIRE_PROMTOOL)"
    port = free_port()
    log = tmp_path / "pushgateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],  # Debian defaults to a file
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/-/ready", process, timeout=30, log=log)
        yield url
    finally:
        stop(process)


def _rendered_command(plan: Plan, pushgateway: str) -> tuple[list[str], dict[str, str]]:
    """The drift container's command line as Argo renders it from the dev plan's CronWorkflow and template."""
    (cron,) = [
        object_of(r)
        for r in plan.of_type("kubernetes:argoproj.io/v1alpha1:CronWorkflow")
        if object_of(r)["metadata"]["name"] == templates.DRIFT_CRON
    ]
    (template,) = [
        object_of(r)
        for r in plan.of_type("kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate")
        if object_of(r)["metadata"]["name"] == templates.DRIFT_TEMPLATE
    ]
    (entry,) = template["spec"]["templates"]
    assert entry["metadata"]["labels"] == templates.DRIFT_POD_LABEL  # what the Pushgateway's policy admits
    ((step,),) = cron["spec"]["workflowSpec"]["templates"][0]["steps"]
    assert step["templateRef"] == {"name": templates.DRIFT_TEMPLATE, "template": entry["name"], "clusterScope": True}
    values = {p["name"]: p.get("value") for p in entry["inputs"]["parameters"]}
    values.update({p["name"]: p["value"] for p in step["arguments"]["parameters"]})
    assert None not in values.values(), values  # every required input is given
    assert values["pushgateway"] == "http://pushgateway.monitoring.svc:9091"
    values["pushgateway"] = pushgateway  # the one stand-in: the in-cluster Service's address

    def substitute(arg: str) -> str:
        return re.sub(r"\{\{inputs\.parameters\.([a-z-]+)\}\}", lambda m: str(values[m.group(1)]), arg)

    container = entry["container"]
    assert container["command"] == ["python", "-m", drift.MODULE]
    return [sys.executable, "-m", drift.MODULE, *map(substitute, container["args"])], values


def _reference_csv(rows: int = 400) -> str:
    lines = ["tenure,monthly_charges,label"]
    for i in range(rows):
        q = (i + 0.5) / rows
        lines.append(f"{REFERENCE.inv_cdf(q):.4f},{REFERENCE.inv_cdf(1 - q) * 2:.4f},{i % 2}")
    return "\n".join(lines) + "\n"


def _log_requests(bucket: str, prefix: str, shift: float, requests: int = 40) -> None:
    """What KServe's agent writes for `requests` v1 requests of 10 rows: one JSON LogRequest per object."""
    s3 = boto3.client("s3")
    for n in range(requests):
        rows = []
        for j in range(10):
            q = ((n * 10 + j) * 0.618034) % 1 * 0.98 + 0.01
            rows.append([REFERENCE.inv_cdf(q) + shift, REFERENCE.inv_cdf(1 - q) * 2 + shift])
        record = {
            "bytes": base64.b64encode(json.dumps({"instances": rows}).encode()).decode(),
            "contentType": "application/json",
            "reqType": REQUEST_EVENT_TYPE,
            "id": f"req-{n}",
            "inferenceService": "churn-champion",
            "namespace": "serving",
            "component": "predictor",
        }
        key = f"{prefix}predictor/{REQUEST_LOG_STORAGE_PATH}/req-{n}-request.json"
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)


def _scraped(pushgateway: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        f"{s.name}{json.dumps(dict(sorted(s.labels.items())), sort_keys=True)}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("mlp_model_")
    }


def _promtool_fires(tmp_path: Path, psi_max: float) -> list[str]:
    """The models ModelFeatureDrift fires for after three hours of this scraped value (promtool test rules)."""
    assert PROMTOOL is not None
    group = alerts.drift_alert_group()
    rule = group["rules"][0]
    rules = {"groups": [{**group, "rules": [{**rule, "annotations": {}}]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    series = f'mlp_model_drift_psi_max{{model="churn", job="{drift.PUSH_JOB}", instance="pushgateway:9091"}}'
    fired: list[str] = []
    for expect in ([], ["churn"]):
        case = {
            "interval": "1m",
            "input_series": [{"series": series, "values": f"{psi_max!r}x180"}],
            "alert_rule_test": [
                {
                    "eval_time": "150m",
                    "alertname": alerts.ALERT_NAME,
                    "exp_alerts": [{"exp_labels": {"model": m, **rule["labels"]}} for m in expect],
                }
            ],
        }
        (tmp_path / "tests.yml").write_text(
            yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [case]})
        )
        result = subprocess.run(
            [PROMTOOL, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        if result.returncode == 0:
            fired = expect
    return fired


@needs_servers
def test_logged_requests_drive_the_gauges_and_the_alert_under_the_planned_roles(
    plan: Plan, lake: Lake, recording_moto: RecordingMoto, pushgateway: str, tmp_path: Path
) -> None:
    command, values = _rendered_command(plan, pushgateway)
    raw, curated = lake.buckets["raw"], lake.buckets["curated"]
    logs = values["logs"]
    assert logs == f"s3://{raw}/teams/research/inference-logs/serving/churn-champion/"
    # the isvc's logger writes under that prefix (KServe appends namespace/isvc/component)
    (isvc,) = [
        object_of(r)
        for r in plan.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
        if object_of(r)["metadata"]["name"] == "churn-champion"
    ]
    logger = isvc["spec"]["predictor"]["logger"]
    # `storage.path` set, or KServe's agent writes nothing (v0.20.0); format json, the predictor's own account
    assert logger == {
        "mode": "request",
        "url": f"s3://{raw}/teams/research/inference-logs",
        "storage": {
            "path": REQUEST_LOG_STORAGE_PATH,
            "parameters": {"format": "json"},
            "key": "unused",
            "serviceAccountName": MODEL_SERVICE_ACCOUNT,
        },
    }
    assert logs == f"{logger['url']}/serving/churn-champion/"

    # The reference: the dataset the retraining trains on, at its planned key in the curated zone.
    reference_key = values["reference"].split("/", 3)[3]
    values["reference"] = f"s3://{curated}/{reference_key}"
    command[command.index("--reference") + 1] = values["reference"]
    boto3.client("s3").put_object(Bucket=curated, Key=reference_key, Body=_reference_csv().encode())
    prefix = logs.split("/", 3)[3]

    # 1. The predictor's role may write the logged requests (and nothing else of the team's prefix).
    predictor = Workload.of(plan, "serving", MODEL_SERVICE_ACCOUNT)
    with recording_moto.log.capture() as recorded:
        _log_requests(raw, prefix, shift=10.0)
    puts = judge(recorded, predictor, lake)
    assert puts.operations["PutObject"] == 40 and not puts.denied, puts.explain_denials()
    with recording_moto.log.capture() as recorded:
        boto3.client("s3").put_object(Bucket=raw, Key="teams/research/other.csv", Body=b"x")
        boto3.client("s3").get_object(
            Bucket=raw, Key=f"{prefix}predictor/{REQUEST_LOG_STORAGE_PATH}/req-0-request.json"
        )
    denied = {v.request.action for v in judge(recorded, predictor, lake).denied}
    assert denied == {"s3:PutObject", "s3:GetObject"}

    # 2. The drift step, as rendered, under the team role (the workflow pods' account).
    team = Workload.of(plan, "team-research", "workflow")
    with recording_moto.log.capture() as recorded:
        result = _run(command)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["rows"] == 400 and out["max_psi"] > alerts.SIGNIFICANT_PSI
    judged = judge(recorded, team, lake)
    assert not judged.denied, judged.explain_denials()
    assert judged.operations["ListObjectsV2"] >= 1 and judged.operations["GetObject"] >= 41

    # 3. What Prometheus scrapes from the Pushgateway, and what the alert makes of it.
    scraped = _scraped(pushgateway)
    key = 'mlp_model_drift_psi_max{"instance": "", "job": "mlp-drift", "model": "churn"}'
    assert scraped[key] == pytest.approx(out["max_psi"], rel=1e-6), sorted(scraped)
    features = {json.loads("{" + k.split("{", 1)[1])["feature"] for k in scraped if k.startswith("mlp_model_feature")}
    assert features == set(FEATURES)
    assert _promtool_fires(tmp_path, scraped[key]) == ["churn"]

    # 4. The same requests without the shift: the next run replaces the group, and the alert stays quiet.
    s3 = boto3.client("s3")
    for item in s3.list_objects_v2(Bucket=raw, Prefix=prefix)["Contents"]:
        s3.delete_object(Bucket=raw, Key=item["Key"])
    _log_requests(raw, prefix, shift=0.0)
    result = _run(command)
    assert result.returncode == 0, result.stderr
    calm = _scraped(pushgateway)[key]
    assert calm < alerts.MODERATE_PSI
    assert _promtool_fires(tmp_path, calm) == []


@needs_servers
def test_no_logged_request_is_one_line_and_pushes_nothing(
    plan: Plan, lake: Lake, pushgateway: str, tmp_path: Path
) -> None:
    command, values = _rendered_command(plan, pushgateway)
    curated = lake.buckets["curated"]
    reference_key = values["reference"].split("/", 3)[3]
    boto3.client("s3").put_object(Bucket=curated, Key=reference_key, Body=_reference_csv().encode())
    command[command.index("--reference") + 1] = f"s3://{curated}/{reference_key}"
    result = _run(command)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no logged request of churn-champion under s3://")
    assert "Traceback" not in result.stderr
    assert _scraped(pushgateway) == {}


def test_a_refused_push_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(drift.StepError, match=r"pushing to http://127\.0\.0\.1:\d+/metrics/job/mlp-drift/model/churn"):
        drift.push(f"http://127.0.0.1:{free_port()}", "churn", "x 1\n")


def test_the_dev_plan_runs_the_pushgateway_only_for_drift_pushers_and_prometheus(plans: dict[str, Plan]) -> None:
    from mlplatform.infra.observability import pushgateway as pg
    from tests.network_policy import Destination, Pod, connection_allowed, plan_namespace_labels, plan_policies

    plan = plans["dev"]
    network, cluster = plan_policies(plan)

    def pod(namespace: str, labels: dict[str, str]) -> Pod:
        return Pod(namespace, labels, plan_namespace_labels(plan, namespace))

    gateway = Destination(pg.PORT, pod=pod("monitoring", dict(pg.SELECTOR)))
    got = {
        "drift step": connection_allowed(
            network, cluster, pod("team-research", {**templates.DRIFT_POD_LABEL, "x": "y"}), gateway
        ),
        "other team pod": connection_allowed(network, cluster, pod("team-research", {"app": "notebook"}), gateway),
        "prometheus": connection_allowed(
            network, cluster, pod("monitoring", {"app.kubernetes.io/name": "prometheus"}), gateway
        ),
        "predictor": connection_allowed(
            network, cluster, pod("serving", {"serving.kserve.io/inferenceservice": "churn-champion"}), gateway
        ),
    }
    assert got == {"drift step": True, "other team pod": False, "prometheus": True, "predictor": False}
    monitors = [
        object_of(r)
        for r in plan.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
        if object_of(r)["metadata"]["name"] == "pushgateway"
    ]
    (monitor,) = monitors
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True  # keeps job="mlp-drift" and model
    for stack in ("staging", "prod"):
        assert not [
            r for r in plans[stack].of_type("kubernetes:apps/v1:Deployment") if r.name.endswith("-pushgateway")
        ], stack


def test_staging_and_prod_log_no_requests(plans: dict[str, Plan]) -> None:
    for stack in ("staging", "prod"):
        for r in plans[stack].of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService"):
            assert "logger" not in copy.deepcopy(object_of(r))["spec"]["predictor"], (stack, r.name)
