"""EC2 on-demand prices (USD per hour, Linux, shared tenancy) from `data/ec2_prices.json`.

The snapshot holds us-east-1 only (its source records no other region); other regions have no price, and callers
must say so rather than guess.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

HOURS_PER_MONTH = 730


@cache
def _data() -> dict[str, Any]:
    text = resources.files("infra.catalog").joinpath("data", "ec2_prices.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def ec2_on_demand_price(instance_type: str, region: str) -> float | None:
    """USD per hour, or None when the snapshot has no price for this type in this region."""
    price = _data()["regions"].get(region, {}).get(instance_type)
    return float(price) if price is not None else None


def price_source() -> tuple[str, str]:
    """(source, generated_at) of the price snapshot."""
    return str(_data()["source"]), str(_data()["generated_at"])


def priced_regions() -> tuple[str, ...]:
    return tuple(sorted(_data()["regions"]))


def instance_types_of_family(family: str, region: str) -> list[tuple[str, float]]:
    """(instance type, USD/hour) of every priced size of a family, metal sizes excluded."""
    prefix = f"{family}."
    return sorted(
        (t, float(p))
        for t, p in _data()["regions"].get(region, {}).items()
        if t.startswith(prefix) and "metal" not in t
    )
