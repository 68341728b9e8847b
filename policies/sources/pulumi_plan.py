"""Normalized resources from an offline plan (`mlp plan --format json`, or a Plan in memory).

Providers and components are not checked (providers' default tags are merged into each resource's effective
tags); every other resource is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplatform.policies.model import Resource


def from_plan_json(plan: Mapping[str, Any]) -> tuple[list[Resource], list[str]]:
    """(resources to check, names of components and providers that were not checked)."""
    raw = list(plan.get("resources", []))
    default_tags: dict[str, dict[str, str]] = {}
    for r in raw:
        if str(r.get("type", "")).startswith("pulumi:providers:"):
            tags = (r.get("inputs") or {}).get("defaultTags") or {}
            default_tags[r["name"]] = dict(tags.get("tags") or {}) if isinstance(tags, Mapping) else {}
    resources: list[Resource] = []
    not_checked: list[str] = []
    for r in raw:
        type_token = str(r.get("type", ""))
        if type_token.startswith("pulumi:providers:") or (
            r.get("provider") is None
            and ":" in type_token
            and (type_token.split(":")[0] not in ("aws", "kubernetes", "random", "terraform"))
        ):
            not_checked.append(r["name"])
            continue
        inputs = dict(r.get("inputs") or {})
        own = inputs.get("tags") if isinstance(inputs.get("tags"), Mapping) else {}
        provider = r.get("provider")
        effective = {**default_tags.get(provider or "", {}), **(own or {})}
        resources.append(
            Resource(
                type=type_token,
                name=str(r["name"]),
                inputs=inputs,
                tags=effective,
                options=dict(r.get("options") or {}),
                references={k: tuple(v) for k, v in (r.get("references") or {}).items()},
                source="pulumi",
            )
        )
    return resources, not_checked
