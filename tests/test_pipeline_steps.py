"""The pipeline steps against real servers: an MLflow server (sqlite backend, artifacts served from a local
directory) and a Ray head with token authentication, both on 127.0.0.1, one of each for the module.

Training runs as a real Ray job, promotion moves real aliases, and the resolver downloads the champion's files
through the server and the model loads from them and predicts. Promotion edge cases use versions whose runs log
chosen metric values, so each outcome is decided by the numbers the test wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mlplatform.infra.pipelines.steps._common import StepError
from mlplatform.infra.pipelines.steps.evaluate_and_promote import (
    DECISION_TAG,
    RECORD_TAG,
    PromotionPolicy,
    evaluate_and_promote,
)
from mlplatform.infra.pipelines.steps.resolve import resolve
from mlplatform.infra.pipelines.steps.train import TrainSpec, submit_to_ray, train
from tests.aws_server import free_port
from tests.servers import VENV_BIN, RayHead, ray_head, start, stop, wait_for_http

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    cmd = [
        str(Path(VENV_BIN) / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(workdir),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    log = workdir / "mlflow.log"
    process = start(cmd, env, log, cwd=workdir)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process, timeout=120, log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def ray() -> Iterator[RayHead]:
    with ray_head(token=secrets.token_hex(16)) as head:
        yield head


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`separable`: the label is x0 + x1 > 0, a linear model learns it; `noise`: the same features, coin-flip
    labels, so a model trained on it scores about 0.5."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(400, 2))
    labels = {
        "separable": (features[:, 0] + features[:, 1] > 0).astype(int),
        "noise": rng.integers(0, 2, size=400),
    }
    folder = tmp_path_factory.mktemp("datasets")
    paths = {}
    for name, label in labels.items():
        path = folder / f"{name}.csv"
        rows = ["x0,x1,label", *(f"{a:.6f},{b:.6f},{y}" for (a, b), y in zip(features, label, strict=True))]
        path.write_text("\n".join(rows) + "\n")
        paths[name] = path
    return paths


def _aliases(url: str, model: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return {k: str(v) for k, v in MlflowClient(url).get_registered_model(model).aliases.items()}


def _version_with_metrics(url: str, model: str, metrics: dict[str, float], alias: str | None = None) -> str:
    """A version of `model` whose run logged exactly `metrics`."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(url)
    with contextlib.suppress(MlflowException):  # registered by an earlier call
        client.create_registered_model(model)
    experiment = client.get_experiment_by_name("controlled")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("controlled")
    run = client.create_run(experiment_id)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    version = str(client.create_model_version(model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version)
    if alias:
        client.set_registered_model_alias(model, alias, version)
    return version


def _step(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"mlplatform.infra.pipelines.steps.{module}", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


# --- train on Ray -> promote -> resolve ---------------------------------------------------------------------------


def test_train_on_ray_promote_only_a_better_challenger_and_resolve_the_champion(
    mlflow_url: str, ray: RayHead, datasets: dict[str, Path], tmp_path: Path
) -> None:
    import mlflow.pyfunc
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_url)
    policy = PromotionPolicy(metric="accuracy")

    # 1. Training runs as a Ray job on the head (with the cluster's token) and registers version 1 as challenger.
    good = submit_to_ray(
        TrainSpec(tracking_uri=mlflow_url, model="churn", dataset=str(datasets["separable"])),
        ray.dashboard_url,
        token=ray.token,
        timeout=180,
    )
    assert good.ray_job and good.ray_job.startswith("mlp-train-churn-")
    assert (good.version, good.alias) == ("1", "challenger")
    assert _aliases(mlflow_url, "churn") == {"challenger": "1"}
    run = client.get_run(good.run_id)
    assert run.data.params["dataset"] == str(datasets["separable"]) and run.data.params["rows"] == "400"
    assert run.data.metrics["accuracy"] == good.metrics["accuracy"] >= 0.95
    assert client.get_model_version("churn", "1").run_id == good.run_id

    # 2. No champion yet: the challenger is promoted; a second run changes nothing and keeps the first record.
    first = evaluate_and_promote(mlflow_url, "churn", policy)
    assert (first.decision, first.champion_version, first.reason) == ("promoted", None, "no champion yet")
    assert _aliases(mlflow_url, "churn") == {"challenger": "1", "champion": "1"}
    again = evaluate_and_promote(mlflow_url, "churn", policy)
    assert (again.decision, again.champion_version) == ("unchanged", "1")
    assert _aliases(mlflow_url, "churn") == {"challenger": "1", "champion": "1"}
    assert client.get_model_version("churn", "1").tags[DECISION_TAG] == "promoted"

    # 3. A worse challenger (trained on coin-flip labels, in this process) is rejected, twice, and recorded.
    bad = train(TrainSpec(tracking_uri=mlflow_url, model="churn", dataset=str(datasets["noise"])))
    assert bad.version == "2" and bad.metrics["accuracy"] < 0.7
    for _ in range(2):
        rejected = evaluate_and_promote(mlflow_url, "churn", policy)
        assert (rejected.decision, rejected.challenger_version, rejected.champion_version) == ("rejected", "2", "1")
        assert _aliases(mlflow_url, "churn") == {"challenger": "2", "champion": "1"}
    tags = client.get_model_version("churn", "2").tags
    assert tags[DECISION_TAG] == "rejected"
    record = json.loads(tags[RECORD_TAG])
    assert record["challenger_value"] == bad.metrics["accuracy"]
    assert record["champion_value"] == good.metrics["accuracy"]
    assert (record["metric"], record["champion_version"]) == ("accuracy", "1")

    # 4. The resolver downloads the champion (version 1) through the server; the model loads and predicts.
    resolved = resolve("models:/churn@champion", tmp_path / "models", mlflow_url)
    assert (resolved.version, resolved.alias) == ("1", "champion")
    assert (tmp_path / "models" / "MLmodel").is_file()
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".resolve-")]
    model = mlflow.pyfunc.load_model(str(tmp_path / "models"))
    points = np.array([[2.0, 1.0], [-2.0, -1.0], [1.5, -0.5], [-1.0, 0.2]])
    assert list(model.predict(points)) == [1, 0, 1, 0]  # the separable model; version 2 guesses


def test_the_rayjob_templates_entrypoint_trains_as_a_ray_job_on_a_real_head(
    mlflow_url: str, ray: RayHead, datasets: dict[str, Path]
) -> None:
    """`mlp-train-rayjob`'s RayJob entrypoint, after Argo's substitution, submitted to a real Ray head (with its
    token) as KubeRay's HTTPMode submits it (the dashboard's job API, `entrypoint_num_*` from the RayJob; here one
    CPU for the GPU this machine lacks): the job trains, logs to MLflow in the team's experiment and sets the
    challenger."""
    import time

    from mlflow import MlflowClient
    from ray.job_submission import JobStatus, JobSubmissionClient

    from mlplatform.infra.mlops.documents import RayJobShape
    from mlplatform.infra.pipelines import templates

    shape = RayJobShape(
        pool="shared",
        workers=1,
        gpus_per_worker=1,
        cpu="1",
        memory="2Gi",
        head_cpu="1",
        head_memory="2Gi",
        active_deadline_seconds=600,
        ray_version="2.60.0",
    )
    (entry,) = [
        t
        for t in templates.train_rayjob_template("steps:1", {}, shape)["spec"]["templates"]
        if t["name"] == templates.RAYJOB_CREATE
    ]
    values = {"model": "rayjob-churn", "dataset": str(datasets["separable"]), "label": "label"}
    text = entry["resource"]["manifest"].replace("{{workflow.namespace}}", "team-research")
    for name, value in {**values, "tracking-uri": mlflow_url, "image": "steps:1"}.items():
        text = text.replace("{{inputs.parameters." + name + "}}", value)
    entrypoint = yaml.safe_load(text)["spec"]["entrypoint"]
    client = JobSubmissionClient(ray.dashboard_url, headers={"Authorization": f"Bearer {ray.token}"})
    deadline = time.monotonic() + 180
    while True:  # a head that has just started answers 500 until its job agent is up
        try:
            job_id = client.submit_job(entrypoint=entrypoint, entrypoint_num_cpus=1)
            break
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)
    while not client.get_job_status(job_id).is_terminal() and time.monotonic() < deadline:
        time.sleep(1)
    assert client.get_job_status(job_id) == JobStatus.SUCCEEDED, client.get_job_logs(job_id)[-2000:]
    mlflow_client = MlflowClient(mlflow_url)
    assert _aliases(mlflow_url, "rayjob-churn") == {"challenger": "1"}
    run = mlflow_client.get_run(mlflow_client.get_model_version("rayjob-churn", "1").run_id)
    experiment = mlflow_client.get_experiment(run.info.experiment_id)
    assert experiment.name == "team-research/rayjob-churn"
    assert run.data.metrics["accuracy"] >= 0.95


def test_a_failing_ray_job_is_one_line_with_the_jobs_reason(mlflow_url: str, ray: RayHead, tmp_path: Path) -> None:
    spec = TrainSpec(tracking_uri=mlflow_url, model="missing-data", dataset=str(tmp_path / "absent.csv"))
    with pytest.raises(StepError) as raised:
        submit_to_ray(spec, ray.dashboard_url, token=ray.token, timeout=180)
    message = str(raised.value)
    assert message.startswith("Ray job mlp-train-missing-data-") and " FAILED: " in message
    assert f"error: cannot read dataset {tmp_path / 'absent.csv'}" in message
    with pytest.raises(StepError, match=r"Ray job submission to .* failed: .*Authentication"):
        submit_to_ray(spec, ray.dashboard_url, token="not-the-token", timeout=30)


# --- promotion decided by chosen numbers --------------------------------------------------------------------------


def test_lower_is_better_metric_needs_the_minimum_improvement(mlflow_url: str) -> None:
    from mlflow import MlflowClient

    policy = PromotionPolicy(metric="rmse", greater_is_better=False, min_improvement=0.02)
    champion = _version_with_metrics(mlflow_url, "demand", {"rmse": 0.50}, alias="champion")

    for rmse in (0.50, 0.49, 0.55):  # a tie, too small a gain, a loss
        _version_with_metrics(mlflow_url, "demand", {"rmse": rmse}, alias="challenger")
        decision = evaluate_and_promote(mlflow_url, "demand", policy)
        assert decision.decision == "rejected", rmse
        assert (decision.challenger_value, decision.champion_value) == (rmse, 0.50)
        assert _aliases(mlflow_url, "demand")["champion"] == champion

    winner = _version_with_metrics(mlflow_url, "demand", {"rmse": 0.45}, alias="challenger")
    decision = evaluate_and_promote(mlflow_url, "demand", policy)
    assert (decision.decision, decision.champion_version) == ("promoted", champion)
    assert decision.reason == "rmse improves by 0.05 (needed 0.02)"
    assert _aliases(mlflow_url, "demand") == {"challenger": winner, "champion": winner}
    assert evaluate_and_promote(mlflow_url, "demand", policy).decision == "unchanged"
    record = json.loads(MlflowClient(mlflow_url).get_model_version("demand", winner).tags[RECORD_TAG])
    assert (record["decision"], record["challenger_value"], record["champion_value"]) == ("promoted", 0.45, 0.5)


def test_promotion_refuses_what_it_cannot_compare(mlflow_url: str) -> None:
    _version_with_metrics(mlflow_url, "ranker", {"ndcg": 0.8}, alias="champion")
    with pytest.raises(StepError) as no_challenger:
        evaluate_and_promote(mlflow_url, "ranker", PromotionPolicy(metric="ndcg"))
    assert str(no_challenger.value) == (
        "registered model 'ranker' has no 'challenger' alias (aliases: champion); run the training step first"
    )
    version = _version_with_metrics(mlflow_url, "ranker", {"loss": 0.1}, alias="challenger")
    with pytest.raises(
        StepError, match=rf"ranker version {version} \(run \w+\) logged no metric 'ndcg' \(metrics: loss\)"
    ):
        evaluate_and_promote(mlflow_url, "ranker", PromotionPolicy(metric="ndcg"))
    assert _aliases(mlflow_url, "ranker")["champion"] != version
    with pytest.raises(StepError, match=r"^reading registered model 'nobody' from http://127\.0\.0\.1:"):
        evaluate_and_promote(mlflow_url, "nobody", PromotionPolicy(metric="ndcg"))


# --- the entry points: JSON on stdout, one line and an exit code on failure ----------------------------------------


def test_entry_points_print_json_or_one_line_errors(mlflow_url: str, tmp_path: Path) -> None:
    _version_with_metrics(mlflow_url, "scorer", {"auc": 0.7}, alias="challenger")
    promoted = _step(
        "evaluate_and_promote", "--model", "scorer", "--metric", "auc", env={"MLFLOW_TRACKING_URI": mlflow_url}
    )
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout.strip().splitlines()[-1])["decision"] == "promoted"

    unknown_alias = _step("resolve", "models:/scorer@production", str(tmp_path / "m"), "--tracking-uri", mlflow_url)
    assert unknown_alias.returncode == 1
    assert unknown_alias.stderr.strip().splitlines()[-1] == (
        "error: resolving models:/scorer@production: registered model 'scorer' has no alias 'production' "
        "(aliases: challenger, champion)"
    )
    unknown_model = _step("resolve", "models:/ghost@champion", str(tmp_path / "m"), "--tracking-uri", mlflow_url)
    assert unknown_model.returncode == 1
    assert (
        unknown_model.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: resolving models:/ghost@champion: registered model 'ghost' at {mlflow_url}: ")
    )
    not_a_registry_uri = _step("resolve", "s3://bucket/model", str(tmp_path / "m"), "--tracking-uri", mlflow_url)
    assert not_a_registry_uri.returncode == 2
    no_tracking = _step("evaluate_and_promote", "--model", "scorer", "--metric", "auc", env={"MLFLOW_TRACKING_URI": ""})
    assert no_tracking.returncode == 2
    assert no_tracking.stderr.strip() == "error: no MLflow tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI"
    for failed in (unknown_alias, unknown_model, not_a_registry_uri, no_tracking):
        assert "Traceback" not in failed.stderr and failed.stdout == ""
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


# --- the shipped manifests' own commands ---------------------------------------------------------------------------


def _rendered(command: list[str], args: list[str], values: dict[str, str]) -> list[str]:
    """A container's command line with Argo's `{{inputs.parameters.x}}` substituted (an unknown one fails)."""
    out = []
    for arg in [*command, *args]:
        for name, value in values.items():
            arg = arg.replace("{{inputs.parameters." + name + "}}", value)
        assert "{{" not in arg, arg
        out.append(arg)
    return out


def _run(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    assert argv[:2] == ["python", "-m"]
    done = subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_promote_template_and_the_storage_container_run_as_rendered(
    mlflow_url: str, datasets: dict[str, Path], tmp_path: Path
) -> None:
    """The promote template's container and the `models:/` ClusterStorageContainer, each run with the command line
    the cluster would run (KServe appends the storageUri and /mnt/models), against the real MLflow server: the
    decision files feed the rollout step's `when`, and the storage initializer fetches the champion."""
    from mlplatform.infra.pipelines import templates
    from mlplatform.infra.serving.documents import KSERVE_MODEL_DIR, registry_storage_container

    manifest = templates.evaluate_promote_template("steps:1", {})
    promote = {t["name"]: t for t in manifest["spec"]["templates"]}["promote"]["container"]
    outputs = tmp_path / "outputs"
    values = {
        "model": "fraud",
        "metric": "accuracy",
        "greater-is-better": "true",
        "min-improvement": "0",
        "tracking-uri": mlflow_url,
        "registry-reader": "",  # the template's default without MLflow's auth
    }
    argv = [a.replace(templates.OUTPUTS, str(outputs)) for a in _rendered(promote["command"], promote["args"], values)]

    train(TrainSpec(tracking_uri=mlflow_url, model="fraud", dataset=str(datasets["separable"])))
    assert _run(argv, {})["decision"] == "promoted"
    assert (outputs / "decision").read_text() == "promoted" and (outputs / "champion").read_text() == "1"

    storage = registry_storage_container(image="steps:1", tracking_uri=mlflow_url, labels={})["spec"]["container"]
    models = tmp_path / "mnt-models"
    models.mkdir()  # KServe mounts an emptyDir there
    env = {e["name"]: e["value"].replace(KSERVE_MODEL_DIR, str(models)) for e in storage["env"]}
    initializer = [*storage["command"], "models:/fraud@champion", KSERVE_MODEL_DIR]
    resolved = _run([a.replace(KSERVE_MODEL_DIR, str(models)) for a in initializer], env)
    assert (resolved["version"], resolved["alias"]) == ("1", "champion")
    assert (models / "MLmodel").is_file()
    assert not [p for p in models.iterdir() if p.name.startswith(".resolve-")]

    # A worse challenger: rejected, the champion stays, so the rollout step's `when` is false.
    train(TrainSpec(tracking_uri=mlflow_url, model="fraud", dataset=str(datasets["noise"])))
    assert _run(argv, {})["decision"] == "rejected"
    assert (outputs / "decision").read_text() == "rejected" and (outputs / "champion").read_text() == "1"


def test_the_storage_container_signs_in_with_the_reader_secret_when_mlflow_auth_is_on() -> None:
    from mlplatform.infra.serving.documents import REGISTRY_READER_SECRET, registry_storage_container

    def env(auth: bool) -> dict[str, Any]:
        container = registry_storage_container(image="i:1", tracking_uri="http://m", labels={}, mlflow_auth=auth)
        return {e["name"]: e.get("value") or e["valueFrom"] for e in container["spec"]["container"]["env"]}

    assert "MLFLOW_TRACKING_USERNAME" not in env(False)
    with_auth = env(True)
    for key in ("username", "password"):  # the names MLflow's client reads
        assert with_auth[f"MLFLOW_TRACKING_{key.upper()}"] == {
            "secretKeyRef": {"name": REGISTRY_READER_SECRET, "key": key}
        }
