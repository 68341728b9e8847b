"""`mlp cost`: a stack's monthly cost from its offline plan and the dated price data, and the budget check that
`mlp validate`, `mlp plan` and `mlp cost` share with the `mlp-budget` policy rule (one computation:
`infra.cost.estimate_cost` over the plan's resources).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.config import PlatformConfig
from infra.config_errors import ConfigError, ConfigIssue
from infra.cost import CostEstimate, estimate_cost
from mlp.stackfile import StackConfig

if TYPE_CHECKING:
    from rich.console import Console

    from mlp.planner import Plan

BUDGET_PATH = ("budget", "monthly_usd")


@dataclass(frozen=True)
class StackCost:
    stack: str
    source: str
    environment: str
    region: str
    budget: float
    estimate: CostEstimate

    @property
    def over_budget(self) -> bool:
        return self.estimate.total("ceiling") > self.budget


def estimate_plan(plan: Plan, region: str, today: dt.date | None = None) -> CostEstimate:
    """The estimate of a plan: its resources normalized as the policies see them, then priced."""
    from policies.sources.pulumi_plan import from_plan_json

    resources, _skipped = from_plan_json(json.loads(plan.to_json()))
    return estimate_cost(resources, region, today=today)


def stack_cost(stack_config: StackConfig, cfg: PlatformConfig, plan: Plan, today: dt.date | None = None) -> StackCost:
    return StackCost(
        stack=stack_config.stack,
        source=stack_config.source,
        environment=cfg.environment,
        region=cfg.region,
        budget=cfg.budget.monthly_usd,
        estimate=estimate_plan(plan, cfg.region, today),
    )


def budget_message(cost: StackCost) -> str:
    ceiling = cost.estimate.total("ceiling")
    biggest = sorted(cost.estimate.lines, key=lambda line: line.ceiling, reverse=True)[:3]
    largest = ", ".join(f"{line.resource} ${line.ceiling:,.0f}" for line in biggest)
    return (
        f"the estimated monthly cost at full scale is ${ceiling:,.2f}, over the budget of ${cost.budget:,.2f} "
        f"(largest: {largest}); lower pool limits or node group sizes, or raise the budget"
    )


def check_budget(cost: StackCost, stack_config: StackConfig) -> str | None:
    """A ceiling above the budget: a config error in prod (raised), a warning elsewhere (returned)."""
    if not cost.over_budget:
        return None
    message = budget_message(cost)
    if cost.environment == "prod":
        raise ConfigError(stack_config.source, [ConfigIssue(BUDGET_PATH, message, stack_config.line_of(BUDGET_PATH))])
    return f"warning: {stack_config.source}: budget.monthly_usd: {message}"


# --- rendering --------------------------------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def to_json(cost: StackCost, compare: StackCost | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "stack": cost.stack,
        "environment": cost.environment,
        "budget_usd": cost.budget,
        "over_budget": cost.over_budget,
        **cost.estimate.to_json(),
    }
    if compare is not None:
        body["compare"] = to_json(compare)
        body["delta"] = {
            key: round(compare.estimate.total(key) - cost.estimate.total(key), 2)
            for key in ("floor", "expected", "ceiling")
        }
    return body


def render_table(cost: StackCost, console: Console) -> None:
    from rich.table import Table

    estimate = cost.estimate
    table = Table(title=f"{cost.stack}: monthly cost (USD, 730 h/month, {cost.region})", title_justify="left")
    for column in ("component", "resource", "item", "floor", "expected", "ceiling", "spot", "how"):
        table.add_column(column, justify="right" if column in ("floor", "expected", "ceiling", "spot") else "left")
    by_component = estimate.by_component()
    for component in sorted(by_component):
        lines = [line for line in estimate.lines if line.component == component]
        for line in sorted(lines, key=lambda x: (-x.ceiling, x.resource)):
            marks = f" [{', '.join(line.flags)}]" if line.flags else ""
            table.add_row(
                component,
                line.resource,
                line.item + marks,
                _money(line.floor),
                _money(line.expected),
                _money(line.ceiling),
                _money(line.spot),
                line.how,
            )
        total = by_component[component]
        table.add_row(
            f"[b]{component} total[/b]",
            "",
            "",
            *(f"[b]{_money(total[k])}[/b]" for k in ("floor", "expected", "ceiling")),
        )
    table.add_row(
        "[b]stack total[/b]",
        "",
        "",
        *(f"[b]{_money(estimate.total(k))}[/b]" for k in ("floor", "expected", "ceiling")),
        f"[b]{_money(estimate.spot_total)}[/b]",
    )
    console.print(table)
    state = "OVER" if cost.over_budget else "within"
    console.print(
        f"budget ${cost.budget:,.2f}/month: ceiling {_money(estimate.total('ceiling'))} is {state} budget; "
        f"spot scenario (spot pools at spot prices) {_money(estimate.spot_total)}"
    )
    for note in estimate.notes:
        console.print(f"note: {note}")


def render_compare_table(a: StackCost, b: StackCost, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"monthly cost: {a.stack} vs {b.stack} (USD)", title_justify="left")
    for column in ("component", f"{a.stack} floor", f"{b.stack} floor", f"{a.stack} ceiling", f"{b.stack} ceiling"):
        table.add_column(column, justify="left" if column == "component" else "right")
    ca, cb = a.estimate.by_component(), b.estimate.by_component()
    zero = {"floor": 0.0, "expected": 0.0, "ceiling": 0.0}
    for component in sorted(set(ca) | set(cb)):
        x, y = ca.get(component, zero), cb.get(component, zero)
        table.add_row(component, _money(x["floor"]), _money(y["floor"]), _money(x["ceiling"]), _money(y["ceiling"]))
    table.add_row(
        "[b]total[/b]",
        _money(a.estimate.total("floor")),
        _money(b.estimate.total("floor")),
        _money(a.estimate.total("ceiling")),
        _money(b.estimate.total("ceiling")),
    )
    console.print(table)


def render_markdown(cost: StackCost, compare: StackCost | None = None) -> str:
    """A pull-request comment: totals, the budget, per-component figures, the lines in a collapsed section."""
    e = cost.estimate
    versus = f" vs `{compare.stack}`" if compare is not None else ""
    out = [f"### Monthly cost: `{cost.stack}`{versus} ({cost.region}, 730 h/month)", ""]
    if compare is None:
        out += [
            "| | floor | expected | ceiling | spot scenario |",
            "|---|---:|---:|---:|---:|",
            f"| **total** | {_money(e.total('floor'))} | {_money(e.total('expected'))} | "
            f"{_money(e.total('ceiling'))} | {_money(e.spot_total)} |",
        ]
        for component, t in sorted(e.by_component().items()):
            out.append(f"| {component} | {_money(t['floor'])} | {_money(t['expected'])} | {_money(t['ceiling'])} | |")
    else:
        c = compare.estimate
        out += [
            f"| | `{cost.stack}` floor | `{compare.stack}` floor | `{cost.stack}` ceiling | `{compare.stack}` ceiling |"
            " ceiling change |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        ca, cb = e.by_component(), c.by_component()
        zero = {"floor": 0.0, "expected": 0.0, "ceiling": 0.0}
        for component in sorted(set(ca) | set(cb)):
            x, y = ca.get(component, zero), cb.get(component, zero)
            out.append(
                f"| {component} | {_money(x['floor'])} | {_money(y['floor'])} | {_money(x['ceiling'])} | "
                f"{_money(y['ceiling'])} | {_signed(y['ceiling'] - x['ceiling'])} |"
            )
        out.append(
            f"| **total** | {_money(e.total('floor'))} | {_money(c.total('floor'))} | {_money(e.total('ceiling'))} | "
            f"{_money(c.total('ceiling'))} | {_signed(c.total('ceiling') - e.total('ceiling'))} |"
        )
    mark = ":warning: over" if cost.over_budget else "within"
    out += ["", f"Budget ${cost.budget:,.2f}/month: the ceiling is {mark} budget.", ""]
    out += ["<details><summary>Every line and how it was computed</summary>", ""]
    out += ["| resource | item | floor | ceiling | how |", "|---|---|---:|---:|---|"]
    for line in sorted(e.lines, key=lambda x: (x.component, -x.ceiling, x.resource)):
        out.append(
            f"| `{line.resource}` | {line.item} | {_money(line.floor)} | {_money(line.ceiling)} | "
            f"{line.how.replace('|', '/')} |"
        )
    out += ["", *(f"_{note}_" for note in e.notes), "", "</details>", ""]
    return "\n".join(out)


def _signed(value: float) -> str:
    return f"+${value:,.2f}" if value >= 0 else f"-${-value:,.2f}"
