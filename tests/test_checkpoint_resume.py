"""Distributed training that survives losing a worker, on a real Ray cluster, checkpointing to moto's S3 under the
team's prefix, with every S3 call judged under the team's planned role.

The job is `mlplatform.infra.pipelines.steps.train_distributed`, run as its own driver process against a Ray
cluster of `ray start` processes on this machine, as KubeRay's pods run them. Every node's environment points
pyarrow's S3 filesystem (Ray Train's storage) at a recording moto server, through AWS_ENDPOINT_URL_S3. The bucket
is the dev plan's artifacts bucket, and the prefix is `checkpoints/research/`.

- A worker process killed with SIGKILL (an OOM kill, a crashed GPU): Ray Train starts a new worker group, and
  every rank resumes from the latest checkpoint in S3. No epoch before that checkpoint is computed again, and the
  run ends with all its epochs.
- A node's `ray start --block` sent SIGTERM, as a Karpenter drain (a spot notice) does to the worker pod: Ray
  marks the node as draining for preemption, and the loop sees `ray.train.get_preemption_info()`. It writes a
  checkpoint at once, in the middle of its epoch. When the node is gone, the run resumes on a replacement node
  from the latest checkpoint.
- A rerun with the same run name (a retried workflow step) resumes instead of starting over.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplatform.infra.mlops.documents import checkpoints_prefix
from mlplatform.mlp.planner import Plan
from tests.aws_server import RecordingMoto
from tests.iam_harness import Lake, Workload, enforcer, judge
from tests.servers import RayCluster, ray_cluster

pytestmark = pytest.mark.contract

TEAM = "research"
DRIVER_TIMEOUT_S = 240


@pytest.fixture
def lake(plans: dict[str, Plan], recording_moto: RecordingMoto) -> Lake:
    return Lake.created(plans["dev"])


@dataclass(frozen=True)
class Run:
    """Where a test's job checkpoints, and the role the moto server answers as."""

    bucket: str
    storage: str
    events: Path
    team: Workload


@pytest.fixture
def run(plans: dict[str, Plan], lake: Lake, recording_moto: RecordingMoto, tmp_path: Path) -> Run:
    """The dev plan's artifacts bucket, the team's checkpoint prefix in it, and a moto server that answers as the
    account would: a request the team's planned role may not make gets 403 (`RequestLog.enforce`)."""
    team = Workload.of(plans["dev"], f"team-{TEAM}", "workload")
    recording_moto.log.enforce = enforcer(team, lake)
    bucket = lake.buckets["artifacts"]
    return Run(bucket, f"s3://{bucket}/{checkpoints_prefix(TEAM).rstrip('/')}", tmp_path / "events.jsonl", team)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A separable binary problem: 4 features, the label from a fixed logistic model."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4000, 4))
    y = (x @ np.array([1.5, -2.0, 0.5, 1.0]) + 0.3 > 0).astype(int)
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "d", "y"])
        writer.writerows([*row, label] for row, label in zip(x.round(5).tolist(), y.tolist(), strict=True))
    return path


def _node_env(recording_moto: RecordingMoto, **extra: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_S3": recording_moto.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        # Ray Train's controller and preemption watcher poll faster than their defaults (2 s and 5 s).
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
        "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "0.5",
        **extra,
    }


class Driver:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process, self.log = process, log

    def result(self) -> dict[str, Any]:
        code = self.process.wait(timeout=DRIVER_TIMEOUT_S)
        out = self.log.read_text(errors="replace")
        assert code == 0, out[-6000:]
        # The step's result is its one JSON line; Ray's forwarded worker logs come around it.
        line = next(x for x in reversed(out.splitlines()) if x.startswith('{"'))
        parsed: dict[str, Any] = json.loads(line)
        return parsed


@pytest.fixture
def drivers(tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    started: list[subprocess.Popen[bytes]] = []

    def run(cluster: RayCluster, *args: str) -> Driver:
        log = tmp_path / f"driver-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlplatform.infra.pipelines.steps.train_distributed", *args],
                env={**cluster.driver_env(), "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                start_new_session=True,
            )
        started.append(process)
        return Driver(process, log)

    yield run
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait(predicate: Callable[[], Any], timeout: float, what: str, driver: Driver) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if driver.process.poll() is not None:
            raise AssertionError(f"the driver ended before {what}:\n{driver.log.read_text(errors='replace')[-6000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _keys(bucket: str, prefix: str) -> list[str]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _committed_position(bucket: str, run: str) -> tuple[int, int] | None:
    """(epoch, step) of the run's latest checkpoint that Ray Train has committed (its snapshot of the run)."""
    import boto3

    key = f"checkpoints/{TEAM}/{run}/checkpoint_manager_snapshot.json"
    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:  # noqa: BLE001 - not written yet
        return None
    latest = json.loads(body).get("latest_checkpoint_result")
    return (int(latest["metrics"]["epoch"]), int(latest["metrics"]["step"])) if latest else None


def _committed(bucket: str, run: str, minimum: int) -> int | None:
    """The epoch of the run's latest committed checkpoint, once >= `minimum`."""
    position = _committed_position(bucket, run)
    return position[0] if position and position[0] >= minimum else None


def _accuracy(weights: list[float], dataset: Path) -> float:
    rows = np.loadtxt(dataset, delimiter=",", skiprows=1)
    x, y = np.hstack([rows[:, :4], np.ones((len(rows), 1))]), rows[:, 4]
    return float(np.mean((x @ np.array(weights) > 0) == (y == 1)))


def _args(storage: str, run: str, dataset: Path, events: Path, *more: str) -> list[str]:
    return [
        "--dataset",
        str(dataset),
        "--label",
        "y",
        "--storage",
        storage,
        "--run",
        run,
        "--workers",
        "2",
        "--events",
        str(events),
        *more,
    ]


def test_a_killed_worker_resumes_from_the_latest_checkpoint_under_the_teams_role(
    run: Run, lake: Lake, recording_moto: RecordingMoto, dataset: Path, drivers: Any
) -> None:
    bucket, storage, events, team = run.bucket, run.storage, run.events, run.team
    epochs = 12
    with ray_cluster(3, _node_env(recording_moto)) as cluster, recording_moto.log.capture() as recorded:
        driver = drivers(cluster, *_args(storage, "killed-worker", dataset, events, "--epochs", str(epochs)))
        # Kill rank 1's process once Ray Train has committed the checkpoint of epoch 2 (its snapshot says so).
        committed = _wait(lambda: _committed(bucket, "killed-worker", minimum=2), 120, "epoch 2's checkpoint", driver)
        victim = [e for e in _events(events) if e["rank"] == 1][-1]
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = time.time()
        result = driver.result()

    log = _events(events)
    # The run finished every epoch, from its last checkpoint, with a model that separates the classes.
    assert result["epoch"] == epochs and result["run"] == "killed-worker"
    assert result["checkpoint"].startswith(f"{bucket}/checkpoints/{TEAM}/killed-worker/checkpoint_{epochs:05d}_")
    assert _accuracy(result["weights"], dataset) > 0.95
    reported = [e["epoch"] for e in log if e["event"] == "reported" and e["rank"] == 0 and e["time"] < killed_at]
    for rank in (0, 1):
        starts = [e for e in log if e["event"] == "start" and e["rank"] == rank]
        assert len(starts) == 2 and starts[0]["resumed_from"] is None, starts
        resumed = starts[1]
        # The restart began from the latest checkpoint Ray Train had committed: at least the one seen before the
        # kill, at most the last one reported before it (a report still being committed may have made it).
        assert resumed["time"] > killed_at and committed <= resumed["epoch"] <= max(reported), (resumed, committed)
        assert resumed["resumed_from"].endswith(f"/checkpoint_{resumed['epoch']:05d}_000000"), resumed
        # No epoch before the checkpoint was computed twice; every epoch was computed.
        done = [e["epoch"] for e in log if e["event"] == "epoch" and e["rank"] == rank]
        assert sorted(e for e in done if e < resumed["epoch"]) == list(range(resumed["epoch"])), done
        assert set(done) == set(range(epochs))
    assert [e for e in log if e["event"] == "start" and e["rank"] == 1][1]["pid"] != victim["pid"]
    # In S3 under the team's prefix: the last two checkpoints (num_to_keep) and Ray Train's snapshot of the run.
    keys = _keys(bucket, f"checkpoints/{TEAM}/killed-worker/")
    kept = sorted({k.split("/")[3] for k in keys if k.split("/")[3].startswith("checkpoint_0")})
    assert kept == [f"checkpoint_{epochs - 1:05d}_000000", f"checkpoint_{epochs:05d}_000000"], kept
    assert f"checkpoints/{TEAM}/killed-worker/checkpoint_manager_snapshot.json" in keys
    # Every S3 call Ray Train made, from every process, is allowed by the team's planned role (Pod Identity of its
    # `workload` account, which Ray pods run as) and the lake's bucket and key policies.
    judged = judge(recorded, team, lake)
    # pyarrow's S3 filesystem first calls HeadBucket on a bucket that cannot exist (an invalid name), only to
    # check the endpoint answers: any answer does, this 403 and AWS's own 400 alike. Everything else is allowed, and
    # the run above went through under the role's decisions.
    probes = {"$extremelyunlikelytoexist$"}
    assert {v.call.bucket for v in judged.denied} <= probes, judged.explain_denials()
    # The job's own calls (pyarrow's AWS SDK for C++, not the test's boto3): it wrote every epoch's checkpoint and
    # read one back to resume, all under the team's prefix.
    job = [v for v in judged.verdicts if "aws-sdk-cpp" in v.user_agent.lower()]
    job_ops = Counter(v.call.operation for v in job)
    assert job_ops["GetObject"] >= 1 and job_ops["PutObject"] + job_ops["CreateMultipartUpload"] >= epochs, job_ops
    keys = {v.call.key for v in job if v.call.bucket == bucket and v.call.key}
    assert keys and all(k.startswith(f"checkpoints/{TEAM}/") for k in keys), sorted(keys)[:5]


def test_a_drained_node_gives_the_loop_its_notice_and_the_run_resumes_on_a_new_node(
    run: Run, recording_moto: RecordingMoto, dataset: Path, drivers: Any
) -> None:
    bucket, storage, events = run.bucket, run.storage, run.events
    # One CPU on the head and one on a worker node: one training worker on each. Small batches make an epoch long
    # enough that the notice arrives in the middle of one. The node drains for up to a minute, as the platform's
    # GPU workers do for 80 s; the test ends the node itself once the loop's checkpoint is committed, as the end of
    # the grace period (the kubelet's SIGKILL) or the reclaimed instance does. So how fast a loaded machine passes
    # the notice on decides nothing.
    env = _node_env(recording_moto, RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="60")
    with ray_cluster(1, env) as cluster, recording_moto.log.capture():
        node = cluster.add_node(1, "worker-1")
        args = _args(storage, "drained-node", dataset, events, "--epochs", "8", "--batch-size", "4")
        driver = drivers(cluster, *args)
        # Into the second epoch: the epoch-1 checkpoint exists, so a notice now has a newer position to save.
        _wait(
            lambda: any(e["event"] == "reported" and e["epoch"] >= 1 for e in _events(events)),
            180,
            "the first epoch's checkpoint",
            driver,
        )
        node.send_signal(signal.SIGTERM)  # what the kubelet sends the worker pod's `ray start --block` on a drain
        drained = time.time()
        notice = _wait(
            lambda: next((e for e in _events(events) if e["event"] == "notice" and e["rank"] == 0), None),
            60,
            "the loop to see the notice",
            driver,
        )
        noticed_at = (notice["epoch"], notice["step"])

        def committed_since_notice() -> tuple[int, int] | None:
            position = _committed_position(bucket, "drained-node")
            return position if position is not None and position >= noticed_at else None

        at_kill = _wait(
            committed_since_notice,
            60,
            "Ray Train to commit a checkpoint of the noticed position",
            driver,
        )
        os.killpg(node.pid, signal.SIGKILL)  # the grace period is over: the node and its Ray processes are gone
        cluster.add_node(1, "worker-2")  # Karpenter's replacement
        result = driver.result()

    log = _events(events)
    # Every rank saw the notice at the same step (the check is a collective), after the drain began.
    notices = [e for e in log if e["event"] == "notice"]
    assert {e["rank"] for e in notices} == {0, 1} and {(e["epoch"], e["step"]) for e in notices} == {noticed_at}
    assert notice["time"] > drained, notice
    if not notice["saved"]:
        # In the middle of an epoch: the loop checkpointed that position at once, marked as the preemption's.
        jit = [e for e in log if e["event"] == "reported" and e["reason"] == "preemption" and e["rank"] == 0]
        assert [(e["epoch"], e["step"]) for e in jit] == [noticed_at] and noticed_at[1] > 0, jit
    restarts = [e for e in log if e["event"] == "start" and e["resumed_from"] is not None]
    assert {e["rank"] for e in restarts} == {0, 1}
    first = min(restarts, key=lambda e: e["time"])
    position = (first["epoch"], first["step"])
    assert first["resumed_from"].endswith(f"checkpoint_{position[0]:05d}_{position[1]:06d}"), first
    # Resumed from the latest committed checkpoint: the one committed before the node went, or one reported after
    # it that Ray Train committed in the moment before the kill. Nothing learned before the notice was lost.
    reported = [(e["epoch"], e["step"]) for e in log if e["event"] == "reported" and e["time"] < first["time"]]
    assert noticed_at <= at_kill <= position <= max(reported), (noticed_at, at_kill, position, reported[-3:])
    assert result["epoch"] == 8 and _accuracy(result["weights"], dataset) > 0.95
    keys = _keys(bucket, f"checkpoints/{TEAM}/drained-node/")
    assert f"checkpoints/{TEAM}/drained-node/checkpoint_manager_snapshot.json" in keys


def test_a_rerun_with_the_same_name_resumes_the_run(
    run: Run, recording_moto: RecordingMoto, dataset: Path, drivers: Any
) -> None:
    storage, events = run.storage, run.events
    with ray_cluster(3, _node_env(recording_moto)) as cluster, recording_moto.log.capture():
        first = drivers(cluster, *_args(storage, "rerun", dataset, events, "--epochs", "2")).result()
        second = drivers(cluster, *_args(storage, "rerun", dataset, events, "--epochs", "4")).result()
    assert (first["epoch"], second["epoch"]) == (2, 4)
    starts = [e for e in _events(events) if e["event"] == "start" and e["rank"] == 0]
    assert [s["epoch"] for s in starts] == [0, 2]
    assert starts[1]["resumed_from"].endswith("checkpoint_00002_000000")
    done = [e["epoch"] for e in _events(events) if e["event"] == "epoch" and e["rank"] == 0]
    assert done == [0, 1, 2, 3]


# --- the shipped template and what the platform gives it --------------------------------------------------------


def _distributed_rayjob(plan: Plan, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`mlp-train-distributed` and the RayJob its resource step creates, after Argo's substitution."""
    import yaml

    from mlplatform.infra.pipelines import templates
    from mlplatform.mlp.k8s_schema import object_of

    (cwt,) = [
        object_of(r)
        for r in plan.of_type("kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate")
        if r.inputs["metadata"]["name"] == templates.TRAIN_DISTRIBUTED_TEMPLATE
    ]
    defaults = {p["name"]: p.get("value", "") for p in cwt["spec"]["arguments"]["parameters"]}
    values = {**defaults, "dataset": "s3://lake/teams/research/churn.csv", "label": "churned"}
    (create,) = [t for t in cwt["spec"]["templates"] if t["name"] == templates.RAYJOB_CREATE]
    text = create["resource"]["manifest"].replace("{{workflow.namespace}}", namespace)
    text = text.replace("{{workflow.name}}", "mlp-train-distributed-x7k2p")
    for name, value in values.items():
        text = text.replace("{{inputs.parameters." + name + "}}", str(value))
    assert "{{" not in text, text
    job: dict[str, Any] = yaml.safe_load(text)
    return cwt, job


def test_the_template_checkpoints_under_the_teams_prefix_and_its_workers_get_the_notice(
    plans: dict[str, Plan],
) -> None:
    import shlex

    from mlplatform.infra.mlops.documents import RAY_DRAIN_SECONDS, RAY_WORKER_GRACE_SECONDS
    from mlplatform.infra.pipelines.steps import train_distributed
    from mlplatform.mlp.k8s_schema import object_of
    from tests.k8s_schema import validate_custom_resource

    plan = plans["dev"]
    cwt, job = _distributed_rayjob(plan, f"team-{TEAM}")
    assert validate_custom_resource(job) == []
    artifacts = Lake.of(plan).buckets["artifacts"]
    defaults = {p["name"]: p.get("value") for p in cwt["spec"]["arguments"]["parameters"]}
    assert defaults["checkpoints-bucket"] == artifacts
    # The entrypoint, read by the step's own parser: the team's prefix of the artifacts bucket, the workflow's
    # name as the run (a retried step resumes it), one Ray Train worker per GPU worker of the RayJob's cluster.
    command = shlex.split(job["spec"]["entrypoint"])
    assert command[:3] == ["python", "-m", train_distributed.MODULE]
    args = train_distributed.build_parser().parse_args(command[3:])
    assert train_distributed.storage_of(args) == f"s3://{artifacts}/checkpoints/{TEAM}"
    assert args.run == "mlp-train-distributed-x7k2p"
    (group,) = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert args.workers == group["replicas"] and args.gpus_per_worker == int(group["rayStartParams"]["num-gpus"])
    assert job["spec"]["entrypointNumGpus"] == 0  # the driver leaves the GPUs to Ray Train's workers
    # The check step runs the same arguments through the parser first.
    (check,) = [t for t in cwt["spec"]["templates"] if t["name"] == "check"]
    assert "--validate-only" in check["container"]["args"]
    # The notice: a drained node's worker pod has 90 s; `ray start` drains for 80 s of them; the pool's
    # terminationGracePeriod (2 m, a spot notice) deletes the do-not-disrupt workers in time for both.
    worker = group["template"]
    assert worker["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    assert worker["spec"]["terminationGracePeriodSeconds"] == RAY_WORKER_GRACE_SECONDS
    env = {e["name"]: e.get("value") for e in worker["spec"]["containers"][0]["env"]}
    drain = int(env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"])
    assert drain == RAY_DRAIN_SECONDS and 0 < drain < worker["spec"]["terminationGracePeriodSeconds"]
    (pool,) = [
        object_of(r)
        for r in plan.of_type("kubernetes:karpenter.sh/v1:NodePool")
        if r.inputs["metadata"]["name"]
        == job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["nodeSelector"][
            "mlplatform.io/gpu-pool"
        ]
    ]
    assert pool["spec"]["template"]["spec"]["terminationGracePeriod"] == "2m"
    assert RAY_WORKER_GRACE_SECONDS < 120  # all of it inside a spot instance's two-minute notice


@pytest.mark.parametrize(
    ("action", "key", "allowed"),
    [
        ("s3:PutObject", f"checkpoints/{TEAM}/run/checkpoint_00001_000000/weights.npy", True),
        ("s3:GetObject", f"checkpoints/{TEAM}/run/checkpoint_00001_000000/weights.npy", True),
        ("s3:DeleteObject", f"checkpoints/{TEAM}/run/checkpoint_00001_000000/weights.npy", True),
        ("s3:PutObject", "checkpoints/", False),  # no directory marker outside its prefix (the job makes none)
        ("s3:GetObject", "checkpoints/", False),
        ("s3:PutObject", "checkpoints/other/run/weights.npy", False),
        ("s3:GetObject", "checkpoints/other/run/weights.npy", False),
        ("s3:PutObject", "checkpoints/researchers/run/weights.npy", False),
    ],
)
def test_the_teams_role_reaches_its_own_checkpoints_only(
    plans: dict[str, Plan], action: str, key: str, allowed: bool
) -> None:
    from mlplatform.mlp.iam_eval import Request, evaluate

    plan = plans["dev"]
    lake = Lake.of(plan)
    team = Workload.of(plan, f"team-{TEAM}", "workload")
    bucket = lake.buckets["artifacts"]
    resource = f"arn:aws:s3:::{bucket}/{key}"
    request = lake.in_vpc(Request(action=action, resource=resource, context={"aws:SecureTransport": "true"}))
    decision = evaluate(request, team.principal, team.policies, lake.bucket_policies.get(bucket))
    assert (decision.outcome == "allowed") == allowed, decision
