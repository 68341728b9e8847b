"""The promotion step: compare the `challenger` version of a registered model with its `champion` on one metric
and move `champion` to the challenger only when it wins (or when there is no champion yet).

Each version's metric is the one its training run logged. The decision is recorded on the challenger version as
tags (`mlplatform.promotion.decision` and the whole record as JSON in `mlplatform.promotion`) and printed as one
JSON line. Running the step again changes nothing: a challenger that already is the champion is left alone, and a
rejected challenger is rejected again with the same record.

    python -m mlplatform.infra.pipelines.steps.evaluate_and_promote --model churn --metric accuracy \
        [--lower-is-better] [--min-improvement 0.01] [--tracking-uri URL] [--registry-reader registry-reader]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from mlplatform.infra.pipelines.steps._common import (
    StepError,
    UsageError,
    mlflow_errors,
    run_step,
    tracking_uri_or_env,
)

MODULE = "mlplatform.infra.pipelines.steps.evaluate_and_promote"
CHALLENGER = "challenger"
CHAMPION = "champion"
DECISION_TAG = "mlplatform.promotion.decision"
RECORD_TAG = "mlplatform.promotion"
GRANT_ENDPOINT = "/api/3.0/mlflow/users/permissions/grant"
"""MLflow's basic-auth app: give a user a permission on one resource (the caller needs MANAGE on it)."""

Outcome = Literal["promoted", "rejected", "unchanged"]


@dataclass(frozen=True, kw_only=True)
class PromotionPolicy:
    """How a challenger wins: its metric must beat the champion's by more than 0 and by at least min_improvement
    (a tie keeps the champion)."""

    metric: str
    greater_is_better: bool = True
    min_improvement: float = 0.0
    challenger_alias: str = CHALLENGER
    champion_alias: str = CHAMPION

    def __post_init__(self) -> None:
        if not self.metric:
            raise UsageError("metric: must not be empty")
        if self.min_improvement < 0:
            raise UsageError(f"min_improvement: must be >= 0 (got {self.min_improvement})")
        if self.challenger_alias == self.champion_alias:
            raise UsageError(f"challenger_alias and champion_alias must differ (both {self.champion_alias!r})")

    def improvement(self, challenger: float, champion: float) -> float:
        """How much better the challenger is (negative when worse), in the metric's own units."""
        return challenger - champion if self.greater_is_better else champion - challenger


@dataclass(frozen=True, kw_only=True)
class Decision:
    model: str
    decision: Outcome
    reason: str
    metric: str
    greater_is_better: bool
    min_improvement: float
    challenger_version: str
    challenger_value: float
    champion_version: str | None  # the champion before this step ran
    champion_value: float | None

    @property
    def promoted(self) -> bool:
        return self.decision == "promoted"


def evaluate_and_promote(tracking_uri: str, model: str, policy: PromotionPolicy) -> Decision:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    with mlflow_errors(f"reading registered model {model!r} from {tracking_uri}"):
        aliases = dict(client.get_registered_model(model).aliases)
    if policy.challenger_alias not in aliases:
        raise StepError(
            f"registered model {model!r} has no {policy.challenger_alias!r} alias "
            f"(aliases: {', '.join(sorted(aliases)) or 'none'}); run the training step first"
        )
    challenger_version = str(aliases[policy.challenger_alias])
    champion_version = str(aliases[policy.champion_alias]) if policy.champion_alias in aliases else None
    challenger_value = _metric(client, model, challenger_version, policy.metric)
    champion_value = _metric(client, model, champion_version, policy.metric) if champion_version is not None else None

    def decide(outcome: Outcome, reason: str) -> Decision:
        return Decision(
            model=model,
            decision=outcome,
            reason=reason,
            metric=policy.metric,
            greater_is_better=policy.greater_is_better,
            min_improvement=policy.min_improvement,
            challenger_version=challenger_version,
            challenger_value=challenger_value,
            champion_version=champion_version,
            champion_value=champion_value,
        )

    if champion_version == challenger_version:
        # Already promoted (by an earlier run of this step): leave the aliases and the earlier record alone.
        return decide("unchanged", f"version {challenger_version} already is the {policy.champion_alias}")
    if champion_version is None or champion_value is None:
        decision = decide("promoted", f"no {policy.champion_alias} yet")
    else:
        gain = policy.improvement(challenger_value, champion_value)
        if gain > 0 and gain >= policy.min_improvement:
            decision = decide("promoted", f"{policy.metric} improves by {gain:.6g} (needed {policy.min_improvement:g})")
        else:
            decision = decide(
                "rejected", f"{policy.metric} improves by {gain:.6g}, needs > 0 and >= {policy.min_improvement:g}"
            )
    with mlflow_errors(f"recording the decision on {model} version {challenger_version}"):
        # The record first: a crash between the two leaves a record without a move, never a silent move.
        record = {k: v for k, v in asdict(decision).items() if k != "model"}
        client.set_model_version_tag(model, challenger_version, RECORD_TAG, json.dumps(record, sort_keys=True))
        client.set_model_version_tag(model, challenger_version, DECISION_TAG, decision.decision)
        if decision.promoted:
            client.set_registered_model_alias(model, policy.champion_alias, challenger_version)
    return decision


def share_champion(tracking_uri: str, model: str, version: str, reader: str) -> dict[str, str]:
    """Give `reader` (the registry reader the serving pods sign in as) READ on the registered model and on the
    experiment of the champion's run: both are needed to resolve `models:/<model>@champion` (the version's files
    are its run's artifacts, which MLflow's artifact proxy serves only to readers of the experiment). The step
    signs in as the team's account, which owns (MANAGE) what its workflows created, so it can grant this and
    nothing beyond it. Granting again changes nothing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    client = MlflowClient(tracking_uri)
    with mlflow_errors(f"reading {model} version {version}"):
        run_id = client.get_model_version(model, version).run_id
        if not run_id:
            raise StepError(f"{model} version {version} has no run: nothing to share with {reader!r}")
        experiment_id = client.get_run(run_id).info.experiment_id
    # MLflow's AuthServiceClient makes this same call; it lives in `mlflow.server`, whose import loads the server
    # (Flask, SQLAlchemy, ...), which the steps' image does not install.
    creds = get_default_host_creds(tracking_uri)  # type: ignore[no-untyped-call]
    for resource_type, resource_id in (("registered_model", model), ("experiment", str(experiment_id))):
        with mlflow_errors(f"granting {reader!r} READ on {resource_type} {resource_id!r}"):
            try:
                body = {"username": reader, "resource_type": resource_type, "resource_id": resource_id}
                response = http_request(creds, GRANT_ENDPOINT, "POST", json={**body, "permission": "READ"})  # type: ignore[no-untyped-call]
                verify_rest_response(response, GRANT_ENDPOINT)
            except MlflowException as exc:
                # Granted before (an earlier promotion): whatever was granted stays (an owner may have changed it).
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
    return {"reader": reader, "registered_model": model, "experiment_id": str(experiment_id)}


def _metric(client: Any, model: str, version: str, metric: str) -> float:
    with mlflow_errors(f"reading {model} version {version}"):
        model_version = client.get_model_version(model, version)
        if not model_version.run_id:
            raise StepError(f"{model} version {version} has no run, so no {metric!r} to compare")
        metrics = dict(client.get_run(model_version.run_id).data.metrics)
    if metric not in metrics:
        raise StepError(
            f"{model} version {version} (run {model_version.run_id}) logged no metric {metric!r} "
            f"(metrics: {', '.join(sorted(metrics)) or 'none'})"
        )
    return float(metrics[metric])


def build_parser() -> argparse.ArgumentParser:
    """The entry point's options (the shipped workflow templates are tested against this parser)."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--metric", required=True, help="the metric both versions' training runs logged")
    parser.add_argument("--lower-is-better", action="store_true", help="for losses and errors")
    parser.add_argument(
        "--greater-is-better",
        choices=("true", "false"),
        help="the same choice as a value (a workflow parameter): false is --lower-is-better",
    )
    parser.add_argument(
        "--outputs-dir",
        help="also write `decision` (promoted, rejected or unchanged) and `champion` (the champion version after "
        "this step) as files there: a workflow's output parameters",
    )
    parser.add_argument(
        "--registry-reader",
        default="",
        help="an MLflow user to give READ on the model and the champion's experiment (the account registry-served "
        "pods sign in as); empty: share with nobody",
    )
    parser.add_argument("--min-improvement", type=float, default=0.0)
    parser.add_argument("--challenger-alias", default=CHALLENGER)
    parser.add_argument("--champion-alias", default=CHAMPION)
    return parser


def main(argv: Sequence[str]) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.lower_is_better and args.greater_is_better == "true":
        raise UsageError("--lower-is-better contradicts --greater-is-better true")
    policy = PromotionPolicy(
        metric=args.metric,
        greater_is_better=not args.lower_is_better and args.greater_is_better != "false",
        min_improvement=args.min_improvement,
        challenger_alias=args.challenger_alias,
        champion_alias=args.champion_alias,
    )
    tracking_uri = tracking_uri_or_env(args.tracking_uri)
    decision = evaluate_and_promote(tracking_uri, args.model, policy)
    result = asdict(decision)
    champion = decision.challenger_version if decision.promoted else decision.champion_version
    if args.registry_reader and champion:
        # Before the rollout: the new pods resolve the champion as the reader.
        result["shared"] = share_champion(tracking_uri, args.model, champion, args.registry_reader)
    if args.outputs_dir:
        write_outputs(decision, Path(args.outputs_dir))
    return result


def write_outputs(decision: Decision, directory: Path) -> None:
    """The decision and the champion after it, one file each (what Argo reads as output parameters)."""
    directory.mkdir(parents=True, exist_ok=True)
    champion = decision.challenger_version if decision.promoted else decision.champion_version
    (directory / "decision").write_text(decision.decision)
    (directory / "champion").write_text(champion or "")


if __name__ == "__main__":
    raise SystemExit(run_step(main))
