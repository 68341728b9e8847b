"""Monthly cost estimates of a plan from dated price data (pure: no SDK, no I/O beyond package data)."""

from infra.cost.estimate import CostEstimate, CostLine, estimate_cost

__all__ = ["CostEstimate", "CostLine", "estimate_cost"]
