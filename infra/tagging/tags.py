"""Pure functions over tag mappings; no Pulumi imports."""

from __future__ import annotations

from collections.abc import Mapping

from mlplatform.infra.constants import PROJECT
from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS

COST_LABEL_KEYS: tuple[str, ...] = ("team", "cost-center", "environment")


def platform_tags(cost_tags: Mapping[str, str], stack: str) -> dict[str, str]:
    """The tags every AWS resource of a stack carries: the configured cost tags plus two the platform owns.

    `pulumi-stack` lets `mlp residue` find what a destroyed stack left behind.
    """
    tags = dict(cost_tags)
    tags["managed-by"] = f"pulumi/{PROJECT}"
    tags["pulumi-stack"] = stack
    return dict(sorted(tags.items()))


def effective_tags(default_tags: Mapping[str, str] | None, own_tags: Mapping[str, str] | None) -> dict[str, str]:
    """What AWS ends up with: the provider's default tags, overridden by the resource's own tags."""
    return {**(default_tags or {}), **(own_tags or {})}


def missing_required_tags(tags: Mapping[str, str]) -> list[str]:
    return [key for key in REQUIRED_COST_TAGS if not str(tags.get(key, "")).strip()]


def cost_labels(cost_tags: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """Kubernetes labels that mirror the cost tags (label values cannot hold every tag character)."""
    labels = {key: _label_value(cost_tags.get(key, "")) for key in COST_LABEL_KEYS}
    labels.update({key.replace("_", "-"): _label_value(value) for key, value in overrides.items()})
    return labels


def _label_value(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.")
