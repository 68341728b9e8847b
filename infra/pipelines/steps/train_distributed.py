"""Distributed training that survives losing a worker: Ray Train (V2) runs `--workers` copies of a logistic
regression. Each trains by mini-batch SGD on its own shard of a CSV dataset; after every step the copies average
their weights. The run checkpoints to S3 under the team's prefix and resumes from its latest checkpoint after a
worker or node is lost.

    python -m mlplatform.infra.pipelines.steps.train_distributed --dataset s3://bucket/data.csv --label y \
        --storage s3://ARTIFACTS-BUCKET/checkpoints/TEAM --run NAME [--workers 2] [--gpus-per-worker 0] \
        [--epochs 20] [--tracking-uri URL --model NAME]

What it does for the platform's pools:
- **Checkpoints**: rank 0 writes the weights and its position (epoch, step) at the end of every epoch, to
  `<storage>/<run>/checkpoint_<epoch>_<step>/`. Ray Train keeps the last `--keep` of them (`CheckpointConfig`).
- **Resume after a worker is lost**: a killed worker process, or a node that disappears, fails the worker group.
  Ray Train starts a new one (up to `--max-failures` times, `FailureConfig`), and every worker starts from the
  latest checkpoint (`ray.train.get_checkpoint()`). A rerun with the same `--run` and `--storage` (a retried
  workflow step) resumes the same way.
- **The two-minute notice**: on a spot interruption, rebalance or scheduled event, Karpenter drains the node, and
  the Ray container (`ray start --block`, PID 1) gets SIGTERM. Ray then marks its node as draining for preemption,
  until `RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S`. Ray Train's preemption watcher sees it, and
  `ray.train.get_preemption_info()`, asked at every step, answers. The loop then writes a checkpoint at once, in
  the middle of its epoch. Preemptions are retried apart from failures (`max_preemption_failures`, unlimited).
- **Averaging**: Ray Train V2 has no all-reduce without torch (`ray.train.collective` offers broadcast and a
  barrier). So the weights are averaged by a small actor that rank 0 starts for each attempt, and its name is
  broadcast to every rank.

A torch job keeps the same storage, failure and preemption settings (`run_config()`) and replaces the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow.fs  # type: ignore[import-untyped]
from numpy.typing import NDArray

from mlplatform.infra.mlops.documents import checkpoints_prefix
from mlplatform.infra.pipelines.steps._common import StepError, UsageError, run_step
from mlplatform.infra.pipelines.steps.train import PLAIN_TOKEN, load_dataset, validate_plain
from mlplatform.infra.tenancy.documents import TEAM_NAMESPACE_PREFIX

MODULE = "mlplatform.infra.pipelines.steps.train_distributed"
STATE_FILE = "state.json"
WEIGHTS_FILE = "weights.npy"
AVERAGE_TIMEOUT_S = 600.0
"""How long a rank waits for the others' weights. A rank that never comes (its node is gone) fails the step, and
Ray Train restarts the group; normally Ray Train tears the group down first."""


@dataclass(frozen=True, kw_only=True)
class DistributedSpec:
    """What to train, where it checkpoints, and how it recovers. Every field is a command-line option."""

    dataset: str
    storage: str  # s3://bucket/checkpoints/<team> (or a local directory): the run is <storage>/<run>/
    run: str
    label: str = "label"
    workers: int = 2
    gpus_per_worker: int = 0
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.1
    seed: int = 0
    max_failures: int = 3
    keep: int = 2
    events: str = ""  # a JSON-lines file each rank appends its progress to (diagnostics; empty: none)

    def __post_init__(self) -> None:
        problems = []
        if not PLAIN_TOKEN.match(self.run):
            problems.append(f"run: letters, digits and ._-:/@=+ only (got {self.run!r})")
        parsed = urlparse(self.storage)
        if parsed.scheme not in ("s3", "") or (parsed.scheme == "s3" and not parsed.netloc):
            problems.append(f"storage: an s3://bucket/prefix URI or a local directory (got {self.storage!r})")
        for name, low in (("workers", 1), ("epochs", 1), ("batch_size", 1), ("keep", 1), ("gpus_per_worker", 0)):
            if getattr(self, name) < low:
                problems.append(f"{name}: must be >= {low} (got {getattr(self, name)})")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate: must be > 0 (got {self.learning_rate})")
        if problems:
            raise UsageError("; ".join(problems))


# --- the averaging actor -------------------------------------------------------------------------------------------


class Averager:
    """Collects one vector per rank for a step and gives each rank their mean once all have arrived."""

    def __init__(self, world_size: int) -> None:
        self._world_size = world_size
        self._parts: dict[int, list[NDArray[np.float64]]] = {}
        self._done: dict[int, asyncio.Event] = {}
        self._mean: dict[int, NDArray[np.float64]] = {}

    async def ready(self) -> bool:
        return True

    async def average(self, step: int, vector: NDArray[np.float64]) -> NDArray[np.float64]:
        parts = self._parts.setdefault(step, [])
        done = self._done.setdefault(step, asyncio.Event())
        parts.append(vector)
        if len(parts) == self._world_size:
            self._mean[step] = np.mean(parts, axis=0)
            self._parts.pop(step)
            self._mean.pop(step - 2, None)  # every rank has read step - 2 before it sent step
            self._done.pop(step - 2, None)
            done.set()
        await asyncio.wait_for(done.wait(), AVERAGE_TIMEOUT_S)
        return self._mean[step]


# --- the loop (runs in each Ray Train worker) -------------------------------------------------------------------


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


def _log_loss(w: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    p = _sigmoid(x @ w)
    return float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))


def _event(path: str, **record: Any) -> None:
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({**record, "pid": os.getpid(), "time": time.time()}) + "\n")


def _checkpoint(w: NDArray[np.float64], epoch: int, step: int, reason: str) -> Any:
    """A checkpoint directory (the caller reports it, then it is removed) with the weights and the position."""
    from ray.train import Checkpoint

    directory = Path(tempfile.mkdtemp(prefix="mlp-checkpoint-"))
    np.save(directory / WEIGHTS_FILE, w)
    (directory / STATE_FILE).write_text(json.dumps({"epoch": epoch, "step": step, "reason": reason}))
    return Checkpoint.from_directory(str(directory))


def train_loop(config: dict[str, Any]) -> None:
    """One worker's part: resume, then per step: the preemption check, an SGD step on its shard, the average."""
    import ray
    import ray.train
    from ray.train.collective import broadcast_from_rank_zero

    spec = DistributedSpec(**config["spec"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    features, labels, _ = load_dataset(spec.dataset, spec.label)
    x = np.hstack([features, np.ones((len(features), 1))])  # a bias column
    y = labels.astype(np.float64)
    shard = np.arange(rank, len(x), world)  # rows rank, rank + world, ...
    batches = max(1, len(shard) // spec.batch_size)
    steps_per_epoch = int(broadcast_from_rank_zero(batches))  # every rank runs the same number of steps
    w = np.zeros(x.shape[1])
    epoch, step, resumed_from = 0, 0, None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = json.loads((Path(directory) / STATE_FILE).read_text())
            w = np.load(Path(directory) / WEIGHTS_FILE)
        epoch, step, resumed_from = int(state["epoch"]), int(state["step"]), checkpoint.path
    # One averaging actor per attempt, owned by rank 0's worker (it goes with the attempt).
    name = f"mlp-average-{spec.run}-{secrets.token_hex(4)}" if rank == 0 else ""
    if rank == 0:
        actor: Any = ray.remote(Averager)  # Ray's handles are dynamic
        created = actor.options(name=name, num_cpus=0, max_concurrency=world * 4).remote(world)
        ray.get(created.ready.remote())  # the name is registered once the actor is up
    averager = ray.get_actor(str(broadcast_from_rank_zero(name)))
    _event(spec.events, event="start", rank=rank, epoch=epoch, step=step, resumed_from=resumed_from)
    saved_on_preemption = False
    last_saved = (epoch, step)  # a checkpoint of this position exists (or nothing to save yet)
    while epoch < spec.epochs:
        rng = np.random.default_rng(spec.seed * 1_000_003 + epoch * 1009 + rank)
        order = rng.permutation(shard)
        while step < steps_per_epoch:
            # Asked by every rank at every step: it is a collective.
            if ray.train.get_preemption_info() is not None and not saved_on_preemption:
                saved_on_preemption = True
                # Saved already when the notice came right after an epoch's checkpoint (a second checkpoint of one
                # position would replace the first).
                saved = (epoch, step) == last_saved
                _event(spec.events, event="notice", rank=rank, epoch=epoch, step=step, saved=saved)
                if not saved:
                    # The node is being reclaimed: save where we are now, before the notice runs out.
                    _report(rank, w, epoch, step, "preemption", x, y, spec)
                    last_saved = (epoch, step)
            rows = order[(step * spec.batch_size) % len(order) :][: spec.batch_size]
            gradient = x[rows].T @ (_sigmoid(x[rows] @ w) - y[rows]) / max(1, len(rows))
            pending: Any = averager.average.remote(epoch * steps_per_epoch + step, w - spec.learning_rate * gradient)
            w = np.asarray(ray.get(pending), dtype=np.float64)
            step += 1
        epoch, step = epoch + 1, 0
        loss = _report(rank, w, epoch, step, "epoch", x, y, spec)
        last_saved = (epoch, step)
        _event(spec.events, event="epoch", rank=rank, epoch=epoch - 1, loss=loss)


def _report(
    rank: int,
    w: NDArray[np.float64],
    epoch: int,
    step: int,
    reason: str,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    spec: DistributedSpec,
) -> float:
    """Every rank reports (it is a barrier); rank 0 attaches the checkpoint of position (epoch, step)."""
    import ray.train

    loss = _log_loss(w, x, y)
    checkpoint = _checkpoint(w, epoch, step, reason) if rank == 0 else None
    try:
        ray.train.report(
            {"epoch": epoch, "step": step, "log_loss": loss, "reason": reason},
            checkpoint=checkpoint,
            checkpoint_dir_name=f"checkpoint_{epoch:05d}_{step:06d}",
        )
    finally:
        if checkpoint is not None:
            shutil.rmtree(checkpoint.path, ignore_errors=True)
    _event(spec.events, event="reported", rank=rank, epoch=epoch, step=step, reason=reason)
    return loss


# --- the driver ---------------------------------------------------------------------------------------------------


class _NoDirectories(pyarrow.fs.FileSystemHandler):  # type: ignore[misc]
    """A pyarrow filesystem handler over S3 in which creating a directory does nothing: S3 has no directories, and
    pyarrow's own `create_dir` calls HeadBucket on the bucket and puts a zero-byte marker for every parent, which a
    team's role may not do outside its prefix (listing the bucket's key names, writing `checkpoints/`). Every other
    call goes to pyarrow's S3 filesystem, which resolves endpoint and credentials as usual (AWS_ENDPOINT_URL_S3,
    the container credentials of Pod Identity)."""

    def __init__(self, region: str) -> None:
        self._region = region
        # pyarrow's S3FileSystem() reads no AWS_ENDPOINT_URL* itself (only from_uri does): pass it on when set.
        endpoint = urlparse(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "")
        extra = {"endpoint_override": endpoint.netloc, "scheme": endpoint.scheme} if endpoint.netloc else {}
        self._fs = pyarrow.fs.S3FileSystem(region=region, **extra)

    def __reduce__(self) -> tuple[Any, ...]:  # sent to Ray's controller and workers: rebuilt there, no credentials
        return (_NoDirectories, (self._region,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NoDirectories) and other._region == self._region

    def __hash__(self) -> int:
        return hash(self._region)

    def get_type_name(self) -> str:
        return "mlp-s3"

    def normalize_path(self, path: str) -> str:
        return str(self._fs.normalize_path(path))

    def create_dir(self, path: str, recursive: bool) -> None:
        return None

    def get_file_info(self, paths: list[str]) -> Any:
        return self._fs.get_file_info(paths)

    def get_file_info_selector(self, selector: Any) -> Any:
        return self._fs.get_file_info(selector)

    def delete_dir(self, path: str) -> None:
        self._fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the bucket's contents")

    def delete_file(self, path: str) -> None:
        self._fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self._fs.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        return self._fs.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self._fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return self._fs.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self._fs.open_append_stream(path, metadata=metadata)


def storage(spec: DistributedSpec) -> tuple[str, Any]:
    """Ray Train's storage path and filesystem: for s3:// the bucket/prefix path on `_NoDirectories`; a local
    directory as it is."""
    parsed = urlparse(spec.storage)
    if parsed.scheme != "s3":
        return spec.storage, None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    path = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
    return path, pyarrow.fs.PyFileSystem(_NoDirectories(region))


def run_config(spec: DistributedSpec) -> Any:
    """Where the run checkpoints and how it recovers: `<storage>/<run>/`, the last `keep` checkpoints, failures
    retried `max_failures` times, preemptions without limit (each resumes from the latest checkpoint)."""
    from ray.train.v2.api.config import CheckpointConfig, FailureConfig, RunConfig

    path, filesystem = storage(spec)
    return RunConfig(
        name=spec.run,
        storage_path=path,
        storage_filesystem=filesystem,
        failure_config=FailureConfig(max_failures=spec.max_failures, max_preemption_failures=-1),
        checkpoint_config=CheckpointConfig(num_to_keep=spec.keep),
    )


@dataclass(frozen=True, kw_only=True)
class DistributedResult:
    run: str
    checkpoint: str
    epoch: int
    log_loss: float
    weights: list[float]


def train(spec: DistributedSpec) -> DistributedResult:
    """Run the job on the Ray cluster this process is connected to (RAY_ADDRESS), or resume it."""
    import ray
    from ray.exceptions import RayError
    from ray.train.v2.api.config import ScalingConfig
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
    from ray.train.v2.api.exceptions import TrainingFailedError

    trainer = DataParallelTrainer(
        train_loop,
        train_loop_config={"spec": asdict(spec)},
        scaling_config=ScalingConfig(
            num_workers=spec.workers,
            use_gpu=spec.gpus_per_worker > 0,
            resources_per_worker={"GPU": spec.gpus_per_worker} if spec.gpus_per_worker else {"CPU": 1},
        ),
        run_config=run_config(spec),
    )
    try:
        ray.init(ignore_reinit_error=True)
        result = trainer.fit()
    except (TrainingFailedError, RayError, ConnectionError) as exc:  # retries used up, or no cluster, or no start
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        raise StepError(f"training run {spec.run} failed: {lines[0]}") from exc
    if result.checkpoint is None:
        raise StepError(f"training run {spec.run} ended without a checkpoint")
    metrics = result.metrics or {}
    with result.checkpoint.as_directory() as directory:
        weights = np.load(Path(directory) / WEIGHTS_FILE)
    return DistributedResult(
        run=spec.run,
        checkpoint=str(result.checkpoint.path),
        epoch=int(metrics["epoch"]),
        log_loss=float(metrics["log_loss"]),
        weights=[float(v) for v in weights],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="CSV dataset: path, file://, s3://, runs:/ ...")
    parser.add_argument("--label", default="label")
    parser.add_argument("--storage", help="where the run checkpoints: s3://ARTIFACTS-BUCKET/checkpoints/TEAM")
    parser.add_argument(
        "--checkpoints-bucket",
        help="instead of --storage: the artifacts bucket, with --team-namespace (the team's prefix)",
    )
    parser.add_argument("--team-namespace", help="the team's namespace (team-NAME): storage is checkpoints/NAME/")
    parser.add_argument("--run", required=True, help="the run's name: a rerun with the same name resumes it")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gpus-per-worker", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-failures", type=int, default=3)
    parser.add_argument("--keep", type=int, default=2, help="checkpoints kept")
    parser.add_argument("--events", default="", help="append each rank's progress to this JSON-lines file")
    parser.add_argument(
        "--validate-only",
        action="store_true",
        help="check the values are plain tokens and the options valid, print them and exit: mlp-train-distributed "
        "runs this before it writes them into a RayJob's YAML and shell entrypoint",
    )
    return parser


def storage_of(args: argparse.Namespace) -> str:
    """`--storage`, or the team's prefix of the artifacts bucket (`--checkpoints-bucket`, `--team-namespace`)."""
    if args.storage and not (args.checkpoints_bucket or args.team_namespace):
        return str(args.storage)
    if args.storage or not (args.checkpoints_bucket and args.team_namespace):
        raise UsageError("give --storage, or --checkpoints-bucket with --team-namespace")
    namespace = str(args.team_namespace)
    if not namespace.startswith(TEAM_NAMESPACE_PREFIX) or len(namespace) == len(TEAM_NAMESPACE_PREFIX):
        raise UsageError(f"--team-namespace: a team's namespace ({TEAM_NAMESPACE_PREFIX}NAME), not {namespace!r}")
    team = namespace.removeprefix(TEAM_NAMESPACE_PREFIX)
    return f"s3://{args.checkpoints_bucket}/{checkpoints_prefix(team).rstrip('/')}"


def main(argv: Sequence[str]) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k not in ("validate_only", "checkpoints_bucket", "team_namespace")}
    spec = DistributedSpec(**{**values, "storage": storage_of(args)})
    if args.validate_only:
        plain = {"dataset": spec.dataset, "label": spec.label, "storage": spec.storage, "run": spec.run}
        return {"valid": validate_plain(plain)}
    return asdict(train(spec))


if __name__ == "__main__":
    # Run from the importable module, not __main__: Ray sends the loop and the storage to other processes by
    # reference, and they import it by this name.
    from mlplatform.infra.pipelines.steps import train_distributed

    raise SystemExit(run_step(train_distributed.main))
