"""The one budget computation: `mlp validate`, `mlp plan`, `mlp cost`, `mlp policy` and the `mlp-budget` rule (what
the CrossGuard pack runs) all call `budget_verdict`, so they give the same verdict, the same figure and the same
message.

Missing prices fail closed: an estimate with an unpriced line cannot say a stack is within budget, so the verdict
raises `MissingPricesError` naming the region, the items and the command that fetches their prices, unless the caller
asked for a labelled fallback (`price_region`, `--price-region us-east-1` on the commands).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from mlplatform.infra.cost.estimate import CostedResource, CostEstimate, estimate_cost

MISSING_PRICES = "no price data for region"
"""How the missing-prices message starts (the policy front end tells it from an over-budget violation by it)."""


class MissingPricesError(Exception):
    """The estimate has lines without a price: no verdict is given."""

    def __init__(self, estimate: CostEstimate) -> None:
        self.estimate = estimate
        super().__init__(missing_prices_message(estimate))


def missing_prices_message(estimate: CostEstimate) -> str:
    region = estimate.price_region or estimate.region
    items = sorted({line.how.removeprefix("no price data: ") for line in estimate.unpriced})
    shown = "; ".join(items[:5]) + (f"; and {len(items) - 5} more" if len(items) > 5 else "")
    return (
        f"{MISSING_PRICES} {region} ({len(estimate.unpriced)} line(s): {shown}): the budget cannot be "
        f"checked; run `mlp prices refresh --regions {region}`, or pass `--price-region us-east-1` to price at "
        "us-east-1 rates (a labelled fallback)"
    )


@dataclass(frozen=True)
class BudgetVerdict:
    budget: float
    estimate: CostEstimate

    @property
    def ceiling(self) -> float:
        return self.estimate.total("ceiling")

    @property
    def over(self) -> bool:
        return self.budget > 0 and self.ceiling > self.budget

    @property
    def message(self) -> str:
        """The figure and the verdict, worded the same by every command and the rule."""
        biggest = sorted(self.estimate.lines, key=lambda line: line.ceiling, reverse=True)[:3]
        largest = ", ".join(f"{line.resource} ${line.ceiling:,.0f}" for line in biggest)
        where = (
            f" (priced at {self.estimate.price_region} rates: fallback for {self.estimate.region})"
            if self.estimate.fallback
            else ""
        )
        state = "over" if self.over else "within"
        return (
            f"the estimated monthly cost at full scale is ${self.ceiling:,.2f}{where}, {state} the budget of "
            f"${self.budget:,.2f} (largest: {largest})"
        )


def budget_verdict(
    resources: Sequence[CostedResource],
    region: str,
    budget: float,
    *,
    price_region: str | None = None,
    today: dt.date | None = None,
) -> BudgetVerdict:
    """The full-scale estimate of `resources` against `budget`; raises MissingPricesError when a line has no price."""
    estimate = estimate_cost(resources, region, today=today, price_region=price_region or None)
    if estimate.unpriced:
        raise MissingPricesError(estimate)
    return BudgetVerdict(budget, estimate)
