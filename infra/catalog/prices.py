"""Prices: EC2 on-demand (USD per hour, Linux, shared tenancy) and the other AWS charges the estimate uses.

Two layers, read in this order for every figure:
1. the user's price cache, written by `mlp prices refresh` from the AWS Price List API (any region;
   `price_cache_dir()`: `$MLP_PRICE_CACHE`, else `$XDG_CACHE_HOME/mlp/prices`, else `~/.cache/mlp/prices`);
2. the shipped snapshot in `data/ec2_prices.json` and `data/aws_prices.json` (us-east-1 only: its sources record
   no other region).

The `ec2_on_demand_price`/`service_price` readers answer None when neither layer has a figure. The `require_*`
and `lookup_*` readers fail closed instead: they raise `PriceMissing`, whose message names the region, the item
and the command that fetches it, unless a labelled fallback region is given (argument or
`price_region_fallback(...)`), whose figure is then returned marked as a fallback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

HOURS_PER_MONTH = 730

EC2_FILE = "ec2_prices.json"
SERVICES_FILE = "aws_prices.json"
CACHE_ENV = "MLP_PRICE_CACHE"

_FALLBACK: ContextVar[str | None] = ContextVar("price_region_fallback", default=None)


class PriceMissingError(LookupError):
    """No figure for `item` in `region` in the price cache or the shipped snapshot."""

    def __init__(self, region: str, item: str, hint: str | None = None) -> None:
        self.region = region
        self.item = item
        self.hint = hint or (
            f"run `mlp prices refresh --regions {region}` (needs AWS credentials for the Price List API), "
            "or price at another region's rates as a labelled fallback (--price-region us-east-1)"
        )
        super().__init__(f"no price for {item} in {region}: {self.hint}")


PriceMissing = PriceMissingError
"""The name the cost estimate's callers use (issue 15)."""


@dataclass(frozen=True)
class Price:
    """A figure and where it came from."""

    usd: float
    region: str
    """The region whose figure this is."""
    requested_region: str
    source: str

    @property
    def fallback(self) -> bool:
        """True when the figure is another region's (a labelled fallback), not the requested region's."""
        return self.region != self.requested_region


# --- where the figures live -----------------------------------------------------------------------------------


def price_cache_dir() -> Path:
    """The user's price cache: `$MLP_PRICE_CACHE`, else `$XDG_CACHE_HOME/mlp/prices`, else `~/.cache/mlp/prices`."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mlp" / "prices"


@cache
def _shipped(name: str) -> dict[str, Any]:
    text = resources.files("mlplatform.infra.catalog").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def read_price_file(path: Path) -> dict[str, Any]:
    """A price file's data, or {} when it is missing, unreadable or has no `regions` mapping."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("regions"), dict) else {}


@cache
def _read_cache_file(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """One cache file, parsed once per version of it (the key carries its mtime and size)."""
    return read_price_file(Path(path))


def _cached(name: str) -> tuple[dict[str, Any], Path]:
    path = price_cache_dir() / name
    try:
        stat = path.stat()
    except OSError:
        return {}, path
    return _read_cache_file(str(path), stat.st_mtime_ns, stat.st_size), path


def _layers(name: str) -> Iterator[tuple[dict[str, Any], str]]:
    """(data, source label) of the cache, then of the shipped snapshot."""
    cached, path = _cached(name)
    if cached:
        yield cached, f"cache {path}"
    yield _shipped(name), "shipped"


def _region_source(data: Mapping[str, Any], label: str, region: str) -> str:
    if label == "shipped":
        return str(data.get("source") or data.get("_about", "shipped snapshot"))
    sources = data.get("sources", {})
    detail = sources.get(region, "") if isinstance(sources, Mapping) else ""
    return f"{label}: {detail}" if detail else label


# --- None-returning readers (the estimator's current contract) -----------------------------------------------


def _ec2(instance_type: str, region: str) -> tuple[float, str] | None:
    for data, label in _layers(EC2_FILE):
        price = data["regions"].get(region, {}).get(instance_type)
        if price is not None:
            return float(price), _region_source(data, label, region)
    return None


def ec2_on_demand_price(instance_type: str, region: str) -> float | None:
    """USD per hour, or None when neither the cache nor the snapshot has this type in this region."""
    found = _ec2(instance_type, region)
    return found[0] if found else None


def service_entry(region: str, key: str) -> Mapping[str, Any] | None:
    """The raw entry of `key` (an `aws_prices.json` key) in `region`, cache first; for `rds_postgres_hour` the
    cached instance classes are laid over the shipped ones."""
    entries = [data["regions"].get(region, {}).get(key) for data, _ in _layers(SERVICES_FILE)]
    found = [e for e in entries if isinstance(e, Mapping)]
    if not found:
        return None
    if key == "rds_postgres_hour":
        merged: dict[str, Any] = {}
        for entry in reversed(found):
            merged.update(entry)
        return merged
    return found[0]


def service_item(key: str, field: str = "price", instance_class: str | None = None) -> str:
    """How a service figure is named in messages: `rds_postgres_hour db.t4g.micro single_az`."""
    return " ".join(p for p in (key, instance_class, None if field == "price" else field) if p)


def _service(region: str, key: str, field: str, instance_class: str | None) -> tuple[float, str] | None:
    for data, label in _layers(SERVICES_FILE):
        entry = data["regions"].get(region, {}).get(key)
        if instance_class is not None and isinstance(entry, Mapping):
            entry = entry.get(instance_class)
        if isinstance(entry, Mapping) and isinstance(entry.get(field), (int, float)):
            return float(entry[field]), _region_source(data, label, region)
    return None


def service_price(region: str, key: str, field_name: str = "price") -> float | None:
    """USD of `key` (`aws_prices.json` key; field e.g. STANDARD, single_az) in `region`, cache first; None when
    neither layer has it."""
    found = _service(region, key, field_name, None)
    return found[0] if found else None


def price_source() -> tuple[str, str]:
    """(source, generated_at) of the shipped EC2 price snapshot."""
    return str(_shipped(EC2_FILE)["source"]), str(_shipped(EC2_FILE)["generated_at"])


def priced_regions() -> tuple[str, ...]:
    """Regions of the shipped EC2 snapshot."""
    return tuple(sorted(_shipped(EC2_FILE)["regions"]))


def instance_types_of_family(family: str, region: str) -> list[tuple[str, float]]:
    """(instance type, USD/hour) of every priced size of a family, metal sizes excluded, cache first."""
    prefix = f"{family}."
    merged: dict[str, float] = {}
    for data, _ in reversed(list(_layers(EC2_FILE))):
        merged.update({t: float(p) for t, p in data["regions"].get(region, {}).items()})
    return sorted((t, p) for t, p in merged.items() if t.startswith(prefix) and "metal" not in t)


# --- fail-closed readers ---------------------------------------------------------------------------------------


@contextmanager
def price_region_fallback(region: str | None) -> Iterator[None]:
    """Within the block, a lookup with no figure for its region uses `region`'s figure, marked as a fallback."""
    token = _FALLBACK.set(region)
    try:
        yield
    finally:
        _FALLBACK.reset(token)


def current_price_region_fallback() -> str | None:
    return _FALLBACK.get()


def _resolve(
    region: str,
    item: str,
    fallback: str | None,
    find: Callable[[str], tuple[float, str] | None],
) -> Price:
    found = find(region)
    if found is not None:
        return Price(found[0], region, region, found[1])
    other = fallback if fallback is not None else _FALLBACK.get()
    if other and other != region:
        found = find(other)
        if found is not None:
            return Price(found[0], other, region, f"FALLBACK {other} rates for {region}; {found[1]}")
        raise PriceMissing(
            region,
            f"{item} (nor in the fallback region {other})",
            f"run `mlp prices refresh --regions {region},{other}` (needs AWS credentials for the Price List API)",
        )
    raise PriceMissing(region, item)


def lookup_ec2_price(instance_type: str, region: str, *, fallback: str | None = None) -> Price:
    """The on-demand hourly price of `instance_type`; raises PriceMissing when neither layer has it (and no
    fallback region does)."""
    return _resolve(region, f"EC2 {instance_type}", fallback, lambda r: _ec2(instance_type, r))


def lookup_service_price(
    region: str,
    key: str,
    field: str = "price",
    *,
    instance_class: str | None = None,
    fallback: str | None = None,
) -> Price:
    """`key`/`field` of `aws_prices.json` (`instance_class` for `rds_postgres_hour`); raises PriceMissing."""
    item = service_item(key, field, instance_class)
    return _resolve(region, item, fallback, lambda r: _service(r, key, field, instance_class))


def require_ec2_price(instance_type: str, region: str, *, fallback: str | None = None) -> float:
    return lookup_ec2_price(instance_type, region, fallback=fallback).usd


def require_service_price(
    region: str,
    key: str,
    field: str = "price",
    *,
    instance_class: str | None = None,
    fallback: str | None = None,
) -> float:
    return lookup_service_price(region, key, field, instance_class=instance_class, fallback=fallback).usd
