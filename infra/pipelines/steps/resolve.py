"""The registry resolver: turn `models:/<name>@<alias>` (or `models:/<name>/<version>`) into the version's
artifacts, downloaded into a directory. KServe's ClusterStorageContainer and vLLM's init container run it, with
KServe's storage-initializer arguments (source URI, destination directory):

    python -m mlplatform.infra.pipelines.steps.resolve models:/churn@champion /mnt/models [--tracking-uri URL]

The alias is read once, so the files on disk are exactly one version's, named in the JSON line printed at the end.
The version's files land directly in the directory (an MLflow model's MLmodel at its top, as KServe's MLflow
runtime expects; a version registered from a plain folder, such as vLLM weights, as that folder's files).
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlplatform.infra.pipelines.steps._common import (
    StepError,
    UsageError,
    mlflow_errors,
    run_step,
    tracking_uri_or_env,
)

MODULE = "mlplatform.infra.pipelines.steps.resolve"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[0-9]+))/?$")


@dataclass(frozen=True, kw_only=True)
class ModelRef:
    name: str
    alias: str | None = None
    version: str | None = None


@dataclass(frozen=True, kw_only=True)
class Resolved:
    uri: str
    name: str
    alias: str | None
    version: str
    source: str  # where MLflow keeps the version's artifacts
    path: str  # where they are now


def parse_models_uri(uri: str) -> ModelRef:
    match = _MODELS_URI.match(uri)
    if match is None:
        raise UsageError(f"{uri!r} is not a registry URI: expected models:/<name>@<alias> or models:/<name>/<version>")
    return ModelRef(name=match["name"], alias=match["alias"], version=match["version"])


def resolve(uri: str, target_dir: str | Path, tracking_uri: str) -> Resolved:
    import mlflow.artifacts
    from mlflow import MlflowClient

    ref = parse_models_uri(uri)
    client = MlflowClient(tracking_uri)
    with mlflow_errors(f"resolving {uri}: registered model {ref.name!r} at {tracking_uri}"):
        registered = client.get_registered_model(ref.name)
    if ref.alias is not None:
        aliases = dict(registered.aliases)
        if ref.alias not in aliases:
            raise StepError(
                f"resolving {uri}: registered model {ref.name!r} has no alias {ref.alias!r} "
                f"(aliases: {', '.join(sorted(aliases)) or 'none'})"
            )
        version = str(aliases[ref.alias])
    else:
        version = str(ref.version)
    with mlflow_errors(f"resolving {uri}: {ref.name} version {version}"):
        source = client.get_model_version_download_uri(ref.name, version)
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    # Download beside the target, then move the files in: the target then holds the model's files and nothing
    # half-written under their final names.
    staging = Path(tempfile.mkdtemp(prefix=".resolve-", dir=target))
    try:
        with mlflow_errors(f"downloading {ref.name} version {version} from {source}"):
            downloaded = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(staging), tracking_uri=tracking_uri
                )
            )
        root = downloaded if downloaded.is_dir() else staging
        for entry in root.iterdir():
            destination = target / entry.name
            if destination.is_dir():
                shutil.rmtree(destination)
            entry.replace(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Resolved(uri=uri, name=ref.name, alias=ref.alias, version=version, source=source, path=str(target))


def build_parser() -> argparse.ArgumentParser:
    """The entry point's options (the shipped workflow templates are tested against this parser)."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("uri", help="models:/<name>@<alias> or models:/<name>/<version>")
    parser.add_argument("target_dir", help="where the model's files go (KServe: /mnt/models)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    return parser


def main(argv: Sequence[str]) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    parse_models_uri(args.uri)  # a bad URI is a usage error before any network call
    return asdict(resolve(args.uri, args.target_dir, tracking_uri_or_env(args.tracking_uri)))


if __name__ == "__main__":
    raise SystemExit(run_step(main))
