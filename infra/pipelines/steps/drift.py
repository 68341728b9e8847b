"""The drift step: compare the requests an InferenceService logged to the lake with the model's training reference,
feature by feature (population stability index), and push the gauges to the platform's Pushgateway, where
Prometheus scrapes them and `ModelFeatureDrift` judges them.

    python -m mlplatform.infra.pipelines.steps.drift --model churn --inference-service churn-champion \
        --reference s3://lake-curated/teams/research/churn/train.csv --label label \
        --logs s3://lake-raw/teams/research/inference-logs/serving/churn-champion/ \
        [--window-hours 24] [--pushgateway http://pushgateway.monitoring.svc:9091]

- The logs are KServe v0.20's s3 logger objects (`<prefix>/<namespace>/<isvc>/<component>/<id>-request.json`,
  JSON marshaller): every `-request.json` object under `--logs` modified within the window is read, newest first,
  at most `--max-objects`.
- The reference is the training CSV (header row, numeric cells); the label column is dropped, and the remaining
  columns are the features, in the order the v1 protocol's rows give them.
- The result is one JSON line: model, rows, max and mean PSI, each feature's PSI, and where it was pushed.
- Exit 1 (one line): no logged request in the window, an unreadable object or reference, a refused push.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplatform.infra.drift.exposition import exposition_text
from mlplatform.infra.drift.payloads import events_from_lake_object, request_rows
from mlplatform.infra.drift.stability import DriftReport, drift_report
from mlplatform.infra.pipelines.steps._common import StepError, UsageError, run_step
from mlplatform.infra.pipelines.steps.train import load_dataset

MODULE = "mlplatform.infra.pipelines.steps.drift"
PUSH_JOB = "mlp-drift"
"""The Pushgateway job of every drift push; the grouping key adds `model`, so each model's push replaces only its
own gauges."""
REQUEST_SUFFIX = "-request.json"
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, kw_only=True)
class DriftSpec:
    model: str
    inference_service: str
    reference: str
    label: str
    logs: str
    window_hours: float
    max_objects: int
    pushgateway: str | None


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UsageError(f"expected an s3://bucket/key URI, got {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def logged_objects(s3: Any, uri: str, since: datetime.datetime, limit: int) -> list[str]:
    """Keys of the request objects under `uri` modified at or after `since`, newest first, at most `limit`."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split_s3(uri)
    found: list[tuple[datetime.datetime, str]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(REQUEST_SUFFIX) and item["LastModified"] >= since:
                    found.append((item["LastModified"], item["Key"]))
    except (BotoCoreError, ClientError) as exc:
        raise StepError(f"listing {uri}: {exc}") from exc
    found.sort(reverse=True)
    return [key for _, key in found[:limit]]


def _read_objects(s3: Any, bucket: str, keys: Sequence[str]) -> Iterator[tuple[str, str]]:
    from botocore.exceptions import BotoCoreError, ClientError

    for key in keys:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise StepError(f"reading s3://{bucket}/{key}: {exc}") from exc
        yield key, body.decode("utf-8", errors="replace")


def push(gateway: str, model: str, text: str) -> str:
    """PUT the exposition to the Pushgateway under job `mlp-drift`, model `model` (replacing that group)."""
    url = f"{gateway.rstrip('/')}/metrics/job/{PUSH_JOB}/model/{urllib.parse.quote(model, safe='')}"
    request = urllib.request.Request(
        url, data=text.encode(), method="PUT", headers={"Content-Type": EXPOSITION_CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip().splitlines()
        raise StepError(f"pushing to {url}: HTTP {exc.code} {detail[0] if detail else exc.reason}") from exc
    except OSError as exc:
        raise StepError(f"pushing to {url}: {exc}") from exc
    return url


def _reference(s3: Any, uri: str, label: str) -> tuple[Any, list[str]]:
    """The reference's feature rows and names: an s3:// CSV through the same S3 client (no MLflow), else what the
    train step reads (a path, file://, runs:/ ...)."""
    if not uri.startswith("s3://"):
        features, _, names = load_dataset(uri, label)
        return features, names
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split_s3(uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "reference.csv"
        try:
            local.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (BotoCoreError, ClientError) as exc:
            raise StepError(f"reading the reference {uri}: {exc}") from exc
        features, _, names = load_dataset(str(local), label)
    return features, names


def compute(spec: DriftSpec, s3: Any, now: float | None = None) -> tuple[DriftReport, float]:
    """The report over the window, and the time it was computed."""
    computed_at = time.time() if now is None else now
    features, names = _reference(s3, spec.reference, spec.label)
    reference_rows = [tuple(float(v) for v in row) for row in features]
    since = datetime.datetime.fromtimestamp(computed_at, datetime.UTC) - datetime.timedelta(hours=spec.window_hours)
    bucket, _ = _split_s3(spec.logs)
    keys = logged_objects(s3, spec.logs, since, spec.max_objects)
    current: list[tuple[float, ...]] = []
    for key, text in _read_objects(s3, bucket, keys):
        try:
            current.extend(request_rows(events_from_lake_object(text), spec.inference_service, names))
        except (ValueError, KeyError, TypeError) as exc:
            raise StepError(f"s3://{bucket}/{key}: {exc}") from exc
    if not current:
        raise StepError(
            f"no logged request of {spec.inference_service} under {spec.logs} in the last {spec.window_hours:g} h "
            f"({len(keys)} object(s)); nothing to compare"
        )
    return drift_report(spec.model, names, reference_rows, current), computed_at


def run(spec: DriftSpec, s3: Any) -> dict[str, Any]:
    report, computed_at = compute(spec, s3)
    pushed = push(spec.pushgateway, spec.model, exposition_text([report], computed_at)) if spec.pushgateway else None
    return {
        "model": spec.model,
        "rows": report.rows,
        "max_psi": round(report.max_psi, 6),
        "mean_psi": round(report.mean_psi, 6),
        "per_feature": {k: round(v, 6) for k, v in report.per_feature.items()},
        "pushed": pushed,
    }


def build_parser() -> argparse.ArgumentParser:
    """The entry point's options (the shipped workflow template is tested against this parser)."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registered model name (the gauges' `model` label)")
    parser.add_argument("--inference-service", required=True, help="the InferenceService whose requests are read")
    parser.add_argument("--reference", required=True, help="training CSV: path, file://, s3://, runs:/ ...")
    parser.add_argument("--label", default="label", help="label column of the reference (dropped)")
    parser.add_argument("--logs", required=True, help="s3://bucket/prefix/ of the InferenceService's logged requests")
    parser.add_argument("--window-hours", type=float, default=24.0, help="requests logged in this many hours")
    parser.add_argument("--max-objects", type=int, default=5000, help="read at most this many objects, newest first")
    parser.add_argument("--pushgateway", default="", help="Pushgateway base URL (empty: print only)")
    return parser


def main(argv: Sequence[str]) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if not args.window_hours > 0 or args.max_objects < 1:
        raise UsageError("--window-hours must be > 0 and --max-objects >= 1")
    _split_s3(args.logs)
    spec = DriftSpec(
        model=args.model,
        inference_service=args.inference_service,
        reference=args.reference,
        label=args.label,
        logs=args.logs,
        window_hours=args.window_hours,
        max_objects=args.max_objects,
        pushgateway=args.pushgateway or None,
    )
    import boto3

    return run(spec, boto3.client("s3"))


if __name__ == "__main__":
    raise SystemExit(run_step(main))
