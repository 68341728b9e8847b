"""Which pulumi-aws resource types accept `tags` (stored data, read from the SDK by scripts/taggable_types.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "taggable_types.json"


@cache
def taggable_types() -> frozenset[str]:
    return frozenset(json.loads(DATA.read_text(encoding="utf-8"))["types"])


def takes_tags(type_token: str) -> bool:
    return type_token in taggable_types()
