"""Pointing the cluster layer's images at the cache: chart values merged with the keys that move a chart's images
(`documents.chart_image_values`), and the cloud layer's registry output checked. Creates no resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from mlplatform.infra.layer_outputs import missing_output
from mlplatform.infra.registry.documents import ImageCache, chart_image_values, deep_merge


def with_chart_images(
    values: pulumi.Input[Mapping[str, Any]] | None, chart_key: str, cache: ImageCache | None
) -> pulumi.Input[Mapping[str, Any]] | None:
    """`values` with the chart's images pulled through `cache` (unchanged without a cache or known keys)."""
    overlay = chart_image_values(chart_key, cache)
    if not overlay:
        return values
    return pulumi.Output.all(values or {}, overlay).apply(lambda v: deep_merge(v[0], v[1]))


def required_registry(value: pulumi.Input[str | None]) -> pulumi.Output[str]:
    """The cloud layer's `image_registry` output, failing with what to do when that stack predates the cache."""
    return pulumi.Output.from_input(value).apply(_present)


def _present(value: str | None) -> str:
    if not value:
        raise missing_output("cluster.image_cache is on", "image_registry")
    return value
