"""The billing facts of a capacity reservation, carried on the NodePool that launches into it.

An ODCR bills its whole instance count at the on-demand rate whether instances run in it or not; a Capacity Block
is paid upfront at the price the user states. The estimator reads these facts from the plan (the budget rule sees
only resources, under CrossGuard too), so the NodePool carries them in one annotation: its value is JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANNOTATION = "mlplatform.io/capacity-reservation"
TAG = ANNOTATION
"""A managed node group carries the same facts as an AWS tag. Tag values allow letters, digits, spaces and
`+ - = . _ : / @` only (no JSON), so the tag holds space-separated `key=value` pairs."""


@dataclass(frozen=True, kw_only=True)
class ReservationFacts:
    id: str
    kind: str  # odcr | capacity_block
    instance_type: str
    instance_count: int
    availability_zone: str | None = None
    price_usd: float | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    def to_annotation(self) -> str:
        body: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
        }
        if self.availability_zone:
            body["availability_zone"] = self.availability_zone
        if self.kind == "capacity_block":
            body["price_usd"] = self.price_usd
            body["start_date"] = self.start_date.isoformat() if self.start_date else None
            body["end_date"] = self.end_date.isoformat() if self.end_date else None
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def to_tag(self) -> str:
        """The facts as an AWS tag value: `id=cr-... kind=odcr type=p5.48xlarge count=2 [az=...]
        [price=... start=YYYY-MM-DD end=YYYY-MM-DD]` (at most 256 characters)."""
        parts = [
            f"id={self.id}",
            f"kind={self.kind}",
            f"type={self.instance_type}",
            f"count={self.instance_count}",
        ]
        if self.availability_zone:
            parts.append(f"az={self.availability_zone}")
        if self.kind == "capacity_block":
            if self.price_usd is not None:
                parts.append(f"price={self.price_usd:.2f}")
            if self.start_date is not None:
                parts.append(f"start={self.start_date.isoformat()}")
            if self.end_date is not None:
                parts.append(f"end={self.end_date.isoformat()}")
        return " ".join(parts)

    @property
    def term_days(self) -> int:
        """Days the block runs, both ends included."""
        if self.start_date is None or self.end_date is None:
            return 0
        return (self.end_date - self.start_date).days + 1


def from_metadata(metadata: Mapping[str, Any] | None) -> ReservationFacts | None:
    """The facts a NodePool's metadata carries, or None (no reservation, or a value this reader cannot parse)."""
    raw = ((metadata or {}).get("annotations") or {}).get(ANNOTATION)
    if not isinstance(raw, str):
        return None
    try:
        body = json.loads(raw)
        return ReservationFacts(
            id=str(body["id"]),
            kind=str(body["kind"]),
            instance_type=str(body["instance_type"]),
            instance_count=int(body["instance_count"]),
            availability_zone=body.get("availability_zone"),
            price_usd=None if body.get("price_usd") is None else float(body["price_usd"]),
            start_date=dt.date.fromisoformat(body["start_date"]) if body.get("start_date") else None,
            end_date=dt.date.fromisoformat(body["end_date"]) if body.get("end_date") else None,
        )
    except (ValueError, KeyError, TypeError):
        return None


def from_tags(tags: Mapping[str, Any] | None) -> ReservationFacts | None:
    """The facts a node group's tags carry (`to_tag`), or None (no reservation, or a value this reader cannot parse)."""
    raw = (tags or {}).get(TAG)
    if not isinstance(raw, str):
        return None
    try:
        body = dict(part.split("=", 1) for part in raw.split())
        return ReservationFacts(
            id=body["id"],
            kind=body["kind"],
            instance_type=body["type"],
            instance_count=int(body["count"]),
            availability_zone=body.get("az"),
            price_usd=float(body["price"]) if "price" in body else None,
            start_date=dt.date.fromisoformat(body["start"]) if "start" in body else None,
            end_date=dt.date.fromisoformat(body["end"]) if "end" in body else None,
        )
    except (ValueError, KeyError, TypeError):
        return None
