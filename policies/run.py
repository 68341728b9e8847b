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

from infra.config_errors import ConfigError, ConfigIssue
from policies.config import PolicyConfig, config_path, load_policy_config
from policies.engine import evaluate
from policies.model import Report, Resource, Rule, Skipped
from policies.registry import all_rules
from policies.sources.pulumi_plan import from_plan_json
from policies.sources.terraform import TerraformPlanError, from_terraform_plan, load_terraform_plan


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


def resources_from_terraform(path: Path) -> tuple[list[Resource], list[Skipped]]:
    """The plan's resources; TerraformPlanError (exit 2) naming the file and JSON path when it is malformed."""
    plan = load_terraform_plan(path)
    try:
        return from_terraform_plan(plan, source=str(path))
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


def with_stack_budget(config: PolicyConfig, monthly_usd: float) -> PolicyConfig:
    """Use the stack's own budget for the budget rule unless the policy config sets one."""
    if "monthlyBudgetUsd" in config.params.get("mlp-budget", {}):
        return config
    params = {k: dict(v) for k, v in config.params.items()}
    params.setdefault("mlp-budget", {})["monthlyBudgetUsd"] = monthly_usd
    return replace(config, params=params)


def check(
    resources: Sequence[Resource],
    config: PolicyConfig,
    *,
    skipped: Sequence[Skipped] = (),
    today: dt.date | None = None,
    rules: Sequence[Rule] | None = None,
) -> Report:
    return evaluate(resources, rules if rules is not None else all_rules(), config, today=today, skipped=skipped)
