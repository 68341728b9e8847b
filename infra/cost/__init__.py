"""Monthly cost estimates of a plan from dated price data (pure: no SDK, no I/O beyond package data)."""

from mlplatform.infra.cost.budget import BudgetVerdict, MissingPricesError, budget_verdict, missing_prices_message
from mlplatform.infra.cost.estimate import CostEstimate, CostLine, estimate_cost

__all__ = [
    "BudgetVerdict",
    "CostEstimate",
    "CostLine",
    "MissingPricesError",
    "budget_verdict",
    "estimate_cost",
    "missing_prices_message",
]
