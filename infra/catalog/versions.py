"""Pinned versions (EKS, add-ons, AMIs, Helm charts, images), read from `data/versions.json`.

One data file holds every version the platform deploys, each with its source and the date it was checked.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class EksVersion:
    version: str
    eks_release: dt.date
    end_of_standard_support: dt.date
    end_of_extended_support: dt.date
    addons: dict[str, str]

    def support_on(self, day: dt.date) -> str:
        """`standard`, `extended` or `unsupported` on a given day."""
        if day <= self.end_of_standard_support:
            return "standard"
        if day <= self.end_of_extended_support:
            return "extended"
        return "unsupported"


@dataclass(frozen=True)
class EksCatalog:
    default_version: str
    versions: dict[str, EksVersion]
    price_per_hour: dict[str, float]
    checked_on: dt.date
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Chart:
    name: str
    repository: str
    version: str
    source: str


@cache
def _data() -> dict[str, Any]:
    text = resources.files("mlplatform.infra.catalog").joinpath("data", "versions.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def eks() -> EksCatalog:
    raw = _data()["eks"]
    versions = {
        ver: EksVersion(
            version=ver,
            eks_release=dt.date.fromisoformat(v["eks_release"]),
            end_of_standard_support=dt.date.fromisoformat(v["end_of_standard_support"]),
            end_of_extended_support=dt.date.fromisoformat(v["end_of_extended_support"]),
            addons=dict(v["addons"]),
        )
        for ver, v in raw["versions"].items()
    }
    prices = {k: float(v) for k, v in raw["pricing_usd_per_hour"].items() if k != "source"}
    return EksCatalog(
        default_version=raw["default_version"],
        versions=versions,
        price_per_hour=prices,
        checked_on=dt.date.fromisoformat(raw["checked_on"]),
        sources=tuple(raw["sources"]),
    )


def addon_versions(kubernetes_version: str) -> dict[str, str]:
    return dict(eks().versions[kubernetes_version].addons)


def ami_alias_version(family: str) -> str:
    return str(_data()["ami"][family]["alias_version"])


def chart(name: str) -> Chart:
    raw = _data()["charts"][name]
    return Chart(
        name=raw.get("chart", name), repository=raw["repository"], version=raw["version"], source=raw["source"]
    )


def image(name: str) -> str:
    return str(_data()["images"][name]["image"])


@dataclass(frozen=True)
class Database:
    engine_version: str
    parameter_group_family: str
    source: str


def database(name: str) -> Database:
    raw = _data()["databases"][name]
    return Database(
        engine_version=raw["engine_version"], parameter_group_family=raw["parameter_group_family"], source=raw["source"]
    )


def image_version(name: str) -> str:
    """The release an image tag names: `rayproject/ray:2.60.0-py311` -> `2.60.0`."""
    tag = image(name).rsplit(":", 1)[1]
    return tag.split("-", 1)[0].removeprefix("v")


def tool(name: str) -> str:
    """The pinned version of a command-line tool the platform installs (e.g. the Pulumi CLI in the runner)."""
    return str(_data()["tools"][name]["version"])
