"""The cost side of `mlp diff A B`: per component, the old and new monthly floor, expected figure and ceiling, and
the change, from the same estimate `mlp cost` prints (`infra.cost.estimate_cost` over the plan's resources as the
policies normalize them; per-component sums from `CostEstimate.by_component`, as `mlp cost --compare` uses).

The region is the plan's own: the `region` input of its AWS provider (`pulumi:providers:aws`), which the planner
sets from the stack's `aws:region`. A saved plan of a program that uses the default provider records no region,
and a plan with providers in several regions has no single one: then the cost is not computed and the reason says
why, rather than priced in a guessed region.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlplatform.infra.cost import CostEstimate, estimate_cost

if TYPE_CHECKING:
    from rich.console import Console

MEASURES = ("floor", "expected", "ceiling")
_ZERO = dict.fromkeys(MEASURES, 0.0)


def plan_region(plan: Mapping[str, Any]) -> tuple[str | None, str]:
    """(region, where it came from) or (None, why there is none), from the plan's AWS provider resources."""
    regions = sorted(
        {
            str(inputs["region"])
            for r in plan.get("resources") or []
            if r.get("type") == "pulumi:providers:aws"
            and isinstance(inputs := r.get("inputs") or {}, Mapping)
            and isinstance(inputs.get("region"), str)
            and inputs["region"]
        }
    )
    if len(regions) == 1:
        return regions[0], "the plan's AWS provider"
    if not regions:
        return None, "the plan has no AWS provider with a region (a program on the default provider records none)"
    return None, f"the plan's AWS providers are in several regions ({', '.join(regions)})"


def plan_estimate(plan: Mapping[str, Any], region: str, today: dt.date | None = None) -> CostEstimate:
    """The estimate `mlp cost` makes of a plan, from its JSON form (a saved file or `Plan.to_dict()`)."""
    from mlplatform.policies.sources.pulumi_plan import from_plan_json

    resources, _not_checked = from_plan_json(plan)
    return estimate_cost(resources, region, today=today)


@dataclass(frozen=True)
class ComponentCost:
    component: str
    before: Mapping[str, float]
    after: Mapping[str, float]

    def delta(self, measure: str) -> float:
        return round(self.after[measure] - self.before[measure], 2)


@dataclass(frozen=True)
class CostDiff:
    left_region: str | None
    right_region: str | None
    left: CostEstimate | None
    right: CostEstimate | None
    not_computed: str | None
    """Why there is no cost comparison (no region in a plan); None when there is one."""

    @property
    def components(self) -> list[ComponentCost]:
        if self.left is None or self.right is None:
            return []
        a, b = self.left.by_component(), self.right.by_component()
        return [ComponentCost(c, a.get(c, _ZERO), b.get(c, _ZERO)) for c in sorted(set(a) | set(b))]

    @property
    def changed_components(self) -> list[ComponentCost]:
        return [c for c in self.components if any(c.delta(m) for m in MEASURES)]

    @property
    def unpriced(self) -> list[str]:
        """Lines either estimate could not price (no price data in the region): the totals leave them out."""
        out = []
        for side, estimate in (("before", self.left), ("after", self.right)):
            for line in estimate.lines if estimate is not None else ():
                if not line.priced:
                    out.append(f"{side}: {line.resource}: {line.how}")
        return out

    def total(self, side: str, measure: str) -> float:
        estimate = self.left if side == "before" else self.right
        return estimate.total(measure) if estimate is not None else 0.0

    def total_delta(self, measure: str) -> float:
        return round(self.total("after", measure) - self.total("before", measure), 2)


def cost_diff(
    left: Mapping[str, Any], right: Mapping[str, Any], left_name: str, right_name: str, today: dt.date | None = None
) -> CostDiff:
    left_region, left_why = plan_region(left)
    right_region, right_why = plan_region(right)
    missing = [
        f"{name}: {why}"
        for name, region, why in ((left_name, left_region, left_why), (right_name, right_region, right_why))
        if region is None
    ]
    if missing:
        return CostDiff(left_region, right_region, None, None, "cost not computed: " + "; ".join(missing))
    assert left_region is not None and right_region is not None
    return CostDiff(
        left_region,
        right_region,
        plan_estimate(left, left_region, today),
        plan_estimate(right, right_region, today),
        None,
    )


# --- rendering --------------------------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _signed(value: float) -> str:
    return f"+${value:,.2f}" if value >= 0 else f"-${-value:,.2f}"


def _regions(cost: CostDiff) -> str:
    if cost.left_region == cost.right_region:
        return str(cost.left_region)
    return f"{cost.left_region} -> {cost.right_region}"


def to_json(cost: CostDiff) -> dict[str, Any]:
    if cost.not_computed is not None:
        return {"computed": False, "reason": cost.not_computed}
    return {
        "computed": True,
        "regions": {"before": cost.left_region, "after": cost.right_region},
        "hours_per_month": 730,
        "components": [
            {
                "component": c.component,
                "before": dict(c.before),
                "after": dict(c.after),
                "delta": {m: c.delta(m) for m in MEASURES},
            }
            for c in cost.components
        ],
        "totals": {
            "before": {m: cost.total("before", m) for m in MEASURES},
            "after": {m: cost.total("after", m) for m in MEASURES},
            "delta": {m: cost.total_delta(m) for m in MEASURES},
        },
        "not_priced": cost.unpriced,
    }


def render_text(cost: CostDiff, console: Console) -> None:
    from rich.table import Table

    if cost.not_computed is not None:
        console.print(cost.not_computed, highlight=False, markup=False)
        return
    table = Table(title=f"monthly cost, before -> after (USD, 730 h/month, {_regions(cost)})", title_justify="left")
    table.add_column("component")
    for m in MEASURES:
        table.add_column(m, justify="right")
    for m in MEASURES:
        table.add_column(f"{m} change", justify="right")
    for c in cost.changed_components:
        table.add_row(
            c.component,
            *(f"{_money(c.before[m])} -> {_money(c.after[m])}" for m in MEASURES),
            *(_signed(c.delta(m)) for m in MEASURES),
        )
    table.add_row(
        "[b]total[/b]",
        *(f"{_money(cost.total('before', m))} -> {_money(cost.total('after', m))}" for m in MEASURES),
        *(_signed(cost.total_delta(m)) for m in MEASURES),
    )
    console.print(table)
    unchanged = len(cost.components) - len(cost.changed_components)
    if unchanged:
        console.print(f"{unchanged} component(s) with an unchanged cost not shown", highlight=False)
    for line in cost.unpriced:
        console.print(f"not priced (left out of the totals): {line}", highlight=False, markup=False)


def render_markdown(cost: CostDiff) -> str:
    if cost.not_computed is not None:
        return f"_{cost.not_computed}_\n"
    out = [
        f"#### Monthly cost ({_regions(cost)}, 730 h/month)",
        "",
        "| component | floor | expected | ceiling | floor change | expected change | ceiling change |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cost.changed_components:
        out.append(
            f"| {c.component} | "
            + " | ".join(f"{_money(c.before[m])} → {_money(c.after[m])}" for m in MEASURES)
            + " | "
            + " | ".join(_signed(c.delta(m)) for m in MEASURES)
            + " |"
        )
    out.append(
        "| **total** | "
        + " | ".join(f"{_money(cost.total('before', m))} → {_money(cost.total('after', m))}" for m in MEASURES)
        + " | "
        + " | ".join(f"**{_signed(cost.total_delta(m))}**" for m in MEASURES)
        + " |"
    )
    unchanged = len(cost.components) - len(cost.changed_components)
    if unchanged:
        out += ["", f"{unchanged} component(s) with an unchanged cost not shown."]
    if cost.unpriced:
        out += ["", "Not priced (left out of the totals):", "", *(f"- {line}" for line in cost.unpriced)]
    return "\n".join(out) + "\n"
