"""The training step: fit a small scikit-learn classifier on a CSV dataset, log its parameters, metrics and model to
MLflow, register a version of the registered model and point the `challenger` alias at it.

It runs in the workflow pod, or on a Ray cluster: `submit_to_ray` sends this same module as a Ray job (the job
runs `python -m mlplatform.infra.pipelines.steps.train` with the same spec on the cluster) and reads its result back.

    python -m mlplatform.infra.pipelines.steps.train --model churn --dataset s3://bucket/churn.csv \
        [--tracking-uri URL] [--label label] [--ray-address http://ray-head:8265]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import secrets
import shlex
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from numpy.typing import NDArray

from mlplatform.infra.pipelines.steps._common import (
    StepError,
    UsageError,
    mlflow_errors,
    run_step,
    tracking_uri_or_env,
)

MODULE = "mlplatform.infra.pipelines.steps.train"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    """What to train and where to record it. Every field is a command-line option of the same name."""

    tracking_uri: str
    model: str  # the registered model's name
    dataset: str  # a CSV with a header row: a local path, file://, or any URI MLflow can download (s3://, runs:/)
    label: str = "label"  # the label column; every other column is a numeric feature
    experiment: str = "training"
    alias: str = CHALLENGER
    c: float = 1.0  # LogisticRegression's inverse regularisation strength
    max_iter: int = 200
    test_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.model:
            problems.append("model: must not be empty")
        if not 0 < self.test_fraction < 1:
            problems.append(f"test_fraction: must be between 0 and 1 (got {self.test_fraction})")
        if self.c <= 0:
            problems.append(f"c: must be > 0 (got {self.c})")
        if self.max_iter < 1:
            problems.append(f"max_iter: must be >= 1 (got {self.max_iter})")
        if problems:
            raise UsageError("; ".join(problems))

    def to_args(self) -> list[str]:
        """The command-line arguments that rebuild this spec (what a Ray job runs)."""
        args: list[str] = []
        for key, value in asdict(self).items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        return args


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    model: str
    version: str
    alias: str
    run_id: str
    metrics: dict[str, float]
    ray_job: str | None = None


def load_dataset(uri: str, label: str) -> tuple[NDArray[np.float64], NDArray[np.int64], list[str]]:
    """(features, labels, feature names) from a CSV with a header row."""
    path = _local_copy(uri)
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise StepError(f"cannot read dataset {uri}: {exc.strerror or exc}") from exc
    if len(rows) < 2:
        raise StepError(f"dataset {uri} has no rows under its header")
    header, body = rows[0], rows[1:]
    if label not in header:
        raise StepError(f"dataset {uri} has no column {label!r} (columns: {', '.join(header)})")
    try:
        table = np.array([[float(cell) for cell in row] for row in body], dtype=np.float64)
    except ValueError as exc:
        raise StepError(f"dataset {uri}: every cell must be a number ({exc})") from exc
    column = header.index(label)
    features = np.delete(table, column, axis=1)
    return features, table[:, column].astype(np.int64), [h for h in header if h != label]


def _local_copy(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    import mlflow.artifacts

    with mlflow_errors(f"downloading dataset {uri}"):
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tempfile.mkdtemp()))


def train(spec: TrainSpec) -> TrainResult:
    """Fit, log, register, and move `spec.alias` to the new version."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.metrics import accuracy_score, f1_score  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    features, labels, names = load_dataset(spec.dataset, spec.label)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=spec.test_fraction, random_state=spec.seed
    )
    model = LogisticRegression(C=spec.c, max_iter=spec.max_iter, random_state=spec.seed)
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1": float(f1_score(y_test, predicted, average="macro")),
    }

    client = mlflow.MlflowClient(spec.tracking_uri)
    mlflow.set_tracking_uri(spec.tracking_uri)
    with mlflow_errors(f"logging the training run to {spec.tracking_uri}"):
        mlflow.set_experiment(spec.experiment)
        with mlflow.start_run(tags={"mlplatform.step": "train"}) as run:
            mlflow.log_params(
                {
                    "C": spec.c,
                    "max_iter": spec.max_iter,
                    "test_fraction": spec.test_fraction,
                    "seed": spec.seed,
                    "dataset": spec.dataset,
                    "label": spec.label,
                    "features": ",".join(names),
                    "rows": len(labels),
                }
            )
            mlflow.log_metrics(metrics)
            info = mlflow.sklearn.log_model(
                model,
                name=MODEL_ARTIFACT,
                registered_model_name=spec.model,
                signature=infer_signature(x_test, predicted),
            )
    version = info.registered_model_version
    if version is None:
        raise StepError(f"MLflow logged the model but registered no version of {spec.model!r}")
    with mlflow_errors(f"setting alias {spec.alias!r} on {spec.model} version {version}"):
        client.set_registered_model_alias(spec.model, spec.alias, str(version))
    return TrainResult(
        model=spec.model, version=str(version), alias=spec.alias, run_id=run.info.run_id, metrics=metrics
    )


def submit_to_ray(
    spec: TrainSpec,
    address: str,
    *,
    token: str | None = None,
    entrypoint_num_cpus: float = 1,
    timeout: float = 1800,
) -> TrainResult:
    """Run `train(spec)` on a Ray cluster as a Ray job and return its result.

    `address` is the head's dashboard URL (http://...:8265); `token` the cluster's auth token (KubeRay's
    `RAY_AUTH_TOKEN`). The entrypoint asks for CPUs so that it is scheduled on a worker, not run on the head.
    MLflow credentials are not forwarded: a runtime_env is readable by anyone who can list the cluster's jobs, so
    the cluster's pods carry their own."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    headers = {"Authorization": f"Bearer {token}"} if token else None
    entrypoint = shlex.join(["python", "-m", MODULE, *spec.to_args()])
    try:
        client = JobSubmissionClient(address, headers=headers)
        job_id = client.submit_job(
            entrypoint=entrypoint,
            submission_id=f"mlp-train-{spec.model}-{secrets.token_hex(4)}",
            entrypoint_num_cpus=entrypoint_num_cpus,
        )
        deadline = time.monotonic() + timeout
        status = client.get_job_status(job_id)
        while not status.is_terminal():
            if time.monotonic() > deadline:
                client.stop_job(job_id)
                raise StepError(f"Ray job {job_id} still {status.value} after {timeout:.0f}s; stopped it")
            time.sleep(1)
            status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
    except StepError:
        raise
    except Exception as exc:  # the job client raises plain RuntimeError/ConnectionError for everything
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StepError(f"Ray job submission to {address} failed: {reason}") from exc
    result = _result_from_logs(logs)
    if status != JobStatus.SUCCEEDED or result is None:
        tail = " | ".join(line for line in logs.strip().splitlines()[-3:])
        raise StepError(f"Ray job {job_id} {status.value}: {tail}")
    return TrainResult(**{**result, "ray_job": job_id})


def _result_from_logs(logs: str) -> dict[str, Any] | None:
    """The step's result: the last log line that is a JSON object with a run id."""
    for line in reversed(logs.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "run_id" in value:
            return {k: value[k] for k in ("model", "version", "alias", "run_id", "metrics")}
    return None


def build_parser() -> argparse.ArgumentParser:
    """The entry point's options (the shipped workflow templates are tested against this parser)."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--dataset", required=True, help="CSV dataset: path, file://, s3://, runs:/ ...")
    parser.add_argument("--label", default="label")
    parser.add_argument("--experiment", default="training")
    parser.add_argument("--alias", default=CHALLENGER)
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ray-address", help="run as a Ray job on this head (dashboard URL); token: RAY_AUTH_TOKEN")
    parser.add_argument("--ray-timeout", type=float, default=1800)
    parser.add_argument(
        "--validate-only",
        action="store_true",
        help="check that model, dataset, label, experiment and tracking URI are plain tokens (letters, digits and "
        "._-:/@=+), print them and exit: mlp-train-rayjob runs this before it writes them into a RayJob's YAML "
        "and shell entrypoint",
    )
    return parser


PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9._:/@=+-]+$")
"""What may go into a YAML scalar and a shell command line unquoted: no space, quote, `#`, `$`, `;`, `&`, `|`."""


def validate_plain(values: dict[str, str]) -> dict[str, str]:
    """The values, if each is a plain token; else a UsageError naming every one that is not."""
    bad = [f"--{name.replace('_', '-')} {value!r}" for name, value in values.items() if not PLAIN_TOKEN.match(value)]
    if bad:
        raise UsageError(
            "not a plain token (letters, digits and ._-:/@=+ only; it goes into a RayJob's YAML and shell "
            "entrypoint): " + ", ".join(bad)
        )
    return values


def main(argv: Sequence[str]) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.validate_only:
        values = {"model": args.model, "dataset": args.dataset, "label": args.label, "experiment": args.experiment}
        return {"valid": validate_plain({**values, "tracking_uri": tracking_uri_or_env(args.tracking_uri)})}
    spec = TrainSpec(
        tracking_uri=tracking_uri_or_env(args.tracking_uri),
        model=args.model,
        dataset=args.dataset,
        label=args.label,
        experiment=args.experiment,
        alias=args.alias,
        c=args.c,
        max_iter=args.max_iter,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
    if args.ray_address:
        result = submit_to_ray(spec, args.ray_address, token=os.environ.get("RAY_AUTH_TOKEN"), timeout=args.ray_timeout)
    else:
        result = train(spec)
    return asdict(result)


if __name__ == "__main__":
    raise SystemExit(run_step(main))
