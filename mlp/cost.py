"""`mlp cost`: a stack's monthly cost from its offline plan and the dated price data, and the budget check that
`mlp validate`, `mlp plan` and `mlp cost` share with the `mlp-budget` policy rule (one computation:
`infra.cost.estimate_cost` over the plan's resources).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlplatform.infra.config import PlatformConfig
from mlplatform.infra.config_errors import ConfigError, ConfigIssue
from mlplatform.infra.cost import BudgetVerdict, CostEstimate, MissingPricesError, budget_verdict, estimate_cost
from mlplatform.mlp.stackfile import StackConfig

if TYPE_CHECKING:
    from rich.console import Console

    from mlplatform.mlp.planner import Plan
    from mlplatform.policies.model import Resource

BUDGET_PATH = ("budget", "monthly_usd")
REGION_PATH = ("region",)


@dataclass(frozen=True)
class StackCost:
    stack: str
    source: str
    environment: str
    region: str
    budget: float
    estimate: CostEstimate

    @property
    def verdict(self) -> BudgetVerdict:
        return BudgetVerdict(self.budget, self.estimate)

    @property
    def over_budget(self) -> bool:
        return self.verdict.over


def estimate_plan(
    plan: Plan, region: str, today: dt.date | None = None, price_region: str | None = None
) -> CostEstimate:
    """The estimate of a plan: its resources normalized as the policies see them, then priced."""
    return estimate_cost(plan_resources(plan), region, today=today, price_region=price_region)


def plan_resources(plan: Plan) -> list[Resource]:
    """The plan's resources normalized as the policies (and the CrossGuard pack) see them."""
    from mlplatform.policies.sources.pulumi_plan import from_plan_json

    resources, _skipped = from_plan_json(json.loads(plan.to_json()))
    return resources


def stack_cost(
    stack_config: StackConfig,
    cfg: PlatformConfig,
    plan: Plan,
    today: dt.date | None = None,
    price_region: str | None = None,
) -> StackCost:
    """The stack's estimate from the one budget computation (`infra.cost.budget_verdict`, which the `mlp-budget`
    rule runs too). Missing prices fail closed: a ConfigError at the stack's `aws:region` (exit 2)."""
    try:
        verdict = budget_verdict(
            plan_resources(plan), cfg.region, cfg.budget.monthly_usd, price_region=price_region, today=today
        )
    except MissingPricesError as missing:
        raise ConfigError(
            stack_config.source, [ConfigIssue(REGION_PATH, str(missing), stack_config.line_of(REGION_PATH))]
        ) from None
    return StackCost(
        stack=stack_config.stack,
        source=stack_config.source,
        environment=cfg.environment,
        region=cfg.region,
        budget=cfg.budget.monthly_usd,
        estimate=verdict.estimate,
    )


def budget_message(cost: StackCost) -> str:
    return f"{cost.verdict.message}; lower pool limits or node group sizes, or raise the budget"


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


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def render_table(cost: StackCost, console: Console) -> None:
    """One row per line, each on one line (the item is cut with an ellipsis rather than wrapped): fits 100 columns.
    `render_explain` prints how each line was computed."""
    from rich import box
    from rich.table import Table

    estimate = cost.estimate
    where = f"{cost.region} at {estimate.price_region} rates (FALLBACK)" if estimate.fallback else cost.region
    table = Table(
        title=f"{cost.stack}: monthly cost, USD ({where}, 730 h)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
    )
    # The money columns keep their width; the item column takes what is left and is cut, never wrapped.
    figures = [estimate.total(k) for k in ("floor", "expected", "ceiling")] + [estimate.spot_total]
    money_width = max(len(_money(v)) for v in figures)
    item_width = max(20, console.width - 4 * (money_width + 2) - 6)
    table.add_column("component / item", no_wrap=True, overflow="ellipsis", max_width=item_width)
    for column in ("floor", "expected", "ceiling", "spot*"):
        table.add_column(column, justify="right", no_wrap=True, min_width=money_width)
    by_component = estimate.by_component()
    for component in sorted(by_component):
        lines = [line for line in estimate.lines if line.component == component]
        for line in sorted(lines, key=lambda x: (-x.ceiling, x.resource)):
            marks = f" [{', '.join(line.flags)}]" if line.flags else ""
            table.add_row(
                escape(f"{component}: {line.item}{marks}"),
                _money(line.floor),
                _money(line.expected),
                _money(line.ceiling),
                _money(line.spot),
            )
        if len(lines) > 1:
            total = by_component[component]
            table.add_row(
                f"[b]{component} total[/b]", *(f"[b]{_money(total[k])}[/b]" for k in ("floor", "expected", "ceiling"))
            )
    table.add_section()
    table.add_row(
        "[b]stack total[/b]",
        *(f"[b]{_money(estimate.total(k))}[/b]" for k in ("floor", "expected", "ceiling")),
        f"[b]{_money(estimate.spot_total)}[/b]",
    )
    console.print(table)
    state = "OVER" if cost.over_budget else "within"
    console.print(
        f"budget ${cost.budget:,.2f}/month: ceiling {_money(estimate.total('ceiling'))} is {state} budget",
        soft_wrap=False,
    )
    console.print(
        f"* spot: an assumption, not a price (spot pools at {spot_fraction():.0%} of on-demand; no dated spot "
        f"snapshot); stack total with spot pools at it: {_money(estimate.spot_total)}. `mlp cost {cost.stack} "
        "--explain` prints each line's arithmetic."
    )
    for note in estimate.notes:
        console.print(escape(f"note: {note}"))


def explain_lines(cost: StackCost) -> list[str]:
    """Every line's arithmetic: its figures and how they were computed (`mlp cost STACK --explain`)."""
    out = []
    for line in sorted(cost.estimate.lines, key=lambda x: (x.component, -x.ceiling, x.resource)):
        out.append(f"{line.component} / {line.resource}: {line.item}")
        out.append(
            f"  floor {_money(line.floor)}, expected {_money(line.expected)}, ceiling {_money(line.ceiling)}"
            + (f", spot {_money(line.spot)}" if line.spot is not None else "")
        )
        out.append(f"  {line.how}")
    return out


def render_explain(cost: StackCost, console: Console) -> None:
    console.print()
    console.print(f"{cost.stack}: how each line was computed", style="bold")
    for text in explain_lines(cost):
        console.print(escape(text))


def spot_fraction() -> float:
    from mlplatform.infra.cost.estimate import assumption

    return assumption("spot_fraction_of_on_demand")


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
    where = f"{cost.region} at {e.price_region} rates, FALLBACK" if e.fallback else cost.region
    out = [f"### Monthly cost: `{cost.stack}`{versus} ({where}, 730 h/month)", ""]
    if compare is None:
        out += [
            "| | floor | expected | ceiling | spot scenario (an assumption) |",
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
