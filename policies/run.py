"""The policy front end shared by `mlp policy` and the tests: load inputs, evaluate, render.

Imports no Pulumi SDK and no pydantic, so that checking a Terraform plan starts in a fraction of a second.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlplatform.infra.config_errors import ConfigError, ConfigIssue
from mlplatform.policies.config import PolicyConfig, config_path, load_policy_config
from mlplatform.policies.engine import evaluate
from mlplatform.policies.model import Report, Resource, Rule, Skipped, Violation
from mlplatform.policies.registry import all_rules
from mlplatform.policies.sources.pulumi_plan import from_plan_json
from mlplatform.policies.sources.terraform import TerraformPlanError, from_terraform_plan, load_terraform_plan


def load_json(path: Path) -> Mapping[str, Any]:
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, [ConfigIssue((), "file not found")])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(source, [ConfigIssue((), f"is not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue((), "is not a JSON object")])
    return data


TerraformPlanRead = tuple[Mapping[str, Any], list[Resource], list[Skipped]]
"""A Terraform plan file read once: its JSON, the resources the reader maps, and what it skipped."""


def resources_from_terraform(path: Path) -> tuple[list[Resource], list[Skipped]]:
    """The plan's resources; TerraformPlanError (exit 2) naming the file and JSON path when it is malformed."""
    _, resources, skipped = read_terraform_plan(path)
    return resources, skipped


def read_terraform_plan(path: Path) -> TerraformPlanRead:
    """The plan's JSON and resources, read once; TerraformPlanError (exit 2) when it is malformed."""
    plan = load_terraform_plan(path)
    try:
        resources, skipped = from_terraform_plan(plan, source=str(path))
        return plan, resources, skipped
    except TerraformPlanError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # plan_issues checks the parts the reader walks; a shape it does not foresee is still bad input, not a crash
        issue = ConfigIssue((), f"has a structure the reader cannot follow ({type(exc).__name__}: {exc})")
        raise TerraformPlanError(str(path), [issue]) from None


def resources_from_plan(plan: Mapping[str, Any]) -> tuple[list[Resource], list[Skipped]]:
    resources, _not_checked = from_plan_json(plan)
    return resources, []


def policy_config(environment: str | None, path: Path | None, rules: Sequence[Rule]) -> PolicyConfig:
    if path is not None:
        return load_policy_config(path, tuple(rules))
    return load_policy_config(config_path(environment or "dev"), tuple(rules))


def with_stack_budget(
    config: PolicyConfig, monthly_usd: float, region: str | None = None, price_region: str | None = None
) -> PolicyConfig:
    """Use the stack's own budget for the budget rule unless the policy config sets one, and price it in the
    stack's region (or at `price_region`'s rates, a labelled fallback the user asked for)."""
    params = {k: dict(v) for k, v in config.params.items()}
    budget = params.setdefault("mlp-budget", {})
    budget.setdefault("monthlyBudgetUsd", monthly_usd)
    if region is not None:
        budget["region"] = region
    if price_region:
        budget["priceRegion"] = price_region
    return replace(config, params=params)


def missing_prices(report: Report) -> str | None:
    """The budget rule's fail-closed message when the region's prices are missing (whatever the rule's level)."""
    from mlplatform.infra.cost.budget import MISSING_PRICES

    return next(
        (v.message for v in report.violations if v.rule == "mlp-budget" and v.message.startswith(MISSING_PRICES)),
        None,
    )


def check(
    resources: Sequence[Resource],
    config: PolicyConfig,
    *,
    skipped: Sequence[Skipped] = (),
    today: dt.date | None = None,
    rules: Sequence[Rule] | None = None,
) -> Report:
    return evaluate(resources, rules if rules is not None else all_rules(), config, today=today, skipped=skipped)


def terraform_budget(
    report: Report,
    read: TerraformPlanRead,
    path: Path,
    config: PolicyConfig,
    region: str | None,
    price_region: str | None = None,
    today: dt.date | None = None,
) -> Report:
    """The budget verdict on a Terraform plan, from the estimate `mlp cost --terraform-plan` shows (which reads the
    plan's configuration: launch templates, EKS defaults, volumes), in place of the rule's verdict on the bare
    resources: one figure for both commands. Missing prices fail closed like a stack's."""
    from mlplatform.infra.cost import MissingPricesError
    from mlplatform.mlp.terraform_cost import terraform_cost
    from mlplatform.policies.rules.ml.budget import RULE

    budget = float(config.params_for(RULE).get("monthlyBudgetUsd") or 0.0)
    level = config.level(RULE)
    if budget <= 0 or level == "disabled":
        return report
    cost = terraform_cost(path, region, today, price_region=price_region, read=read)
    try:
        verdict = cost.budget_verdict(budget)
        message = verdict.message if verdict.over else None
        lines = verdict.estimate.lines
    except MissingPricesError as missing:
        message, lines = str(missing), cost.missing_prices
    kept = tuple(v for v in report.violations if v.rule != RULE.id)
    if message is None:
        return replace(report, violations=kept)
    anchor = max(lines, key=lambda line: line.ceiling).resource if lines else str(path)
    kinds = {r.name: r.type for r in read[1]}
    violation = Violation(
        rule=RULE.id,
        severity=RULE.severity,
        level=level,
        resource=anchor,
        resource_type=kinds.get(anchor, ""),
        message=message,
    )
    return replace(report, violations=(*kept, violation))
