#!/usr/bin/env python3
"""Write policies/data/taggable_types.json: every pulumi-aws resource type that accepts `tags`.

The policy path imports no Pulumi SDK, so which types take tags is read from the SDK once, here, and stored as
data; a test fails when the stored list no longer matches the pinned SDK.

    .venv/bin/python scripts/taggable_types.py
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "policies" / "data" / "taggable_types.json"


def taggable_types() -> list[str]:
    import pulumi_aws

    source = Path(pulumi_aws.__file__).read_text(encoding="utf-8")
    modules = json.loads(re.search(r'resource_modules="""(.*?)"""', source, re.S).group(1))  # type: ignore[union-attr]
    found = []
    for entry in modules:
        module = importlib.import_module(entry["fqn"])
        for token, class_name in entry["classes"].items():
            cls = getattr(module, class_name)
            if "tags" in inspect.signature(cls._internal_init).parameters:
                found.append(token)
    return sorted(found)


def document() -> dict[str, object]:
    return {"pulumi_aws": metadata.version("pulumi-aws"), "types": taggable_types()}


if __name__ == "__main__":
    OUT.write_text(json.dumps(document(), indent=1) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(document()['types'])} types", file=sys.stderr)
