"""Keys that name each resource of a plan dict uniquely, for tools that read saved plans (diff, graph): cheap to
import (no Pulumi)."""

from __future__ import annotations

from typing import Any


def resource_keys(resources: list[dict[str, Any]]) -> dict[int, str]:
    """A unique key per resource of a plan dict, by position: the name, or `layer/name` for a name that appears in
    more than one layer (a domain's component: `cloud/mlflow`, `cluster/mlflow`)."""
    counts: dict[str, int] = {}
    for r in resources:
        counts[r["name"]] = counts.get(r["name"], 0) + 1
    return {
        i: f"{r.get('layer')}/{r['name']}" if counts[r["name"]] > 1 and r.get("layer") else str(r["name"])
        for i, r in enumerate(resources)
    }


def parent_key(resource: dict[str, Any], keys: set[str]) -> str | None:
    """The key of a resource's parent (which is always in the same layer)."""
    parent = resource.get("parent")
    if parent is None:
        return None
    scoped = f"{resource.get('layer')}/{parent}"
    return scoped if scoped in keys else str(parent)
