"""Normalized resources from CrossGuard's validation arguments (during `pulumi preview` / `pulumi up`).

CrossGuard hands properties through a proxy that raises on unknown values; here the raw values are read and the
SDK's unknown sentinels become UNKNOWN, so that a rule skips what preview cannot know instead of the whole policy
being reported "not applicable". Provider default tags come from the resource's provider.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from mlplatform.policies.model import UNKNOWN, Resource

# pulumi_policy.proxy's sentinels for unknown values of each kind.
UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
        "030794c1-ac77-496b-92df-f27374a8bd58",
        "e48ece36-62e2-4504-bad9-02848725956a",
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
    }
)


def raw(value: Any) -> Any:
    """The plain value behind CrossGuard's unknown-checking proxy, with unknowns as UNKNOWN."""
    with contextlib.suppress(KeyError, TypeError, IndexError):
        value = value["__target"]  # the proxy exposes its target under this key
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        return UNKNOWN
    if isinstance(value, Mapping):
        return {str(k): raw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [raw(v) for v in value]
    return value


def provider_default_tags(provider: Any) -> dict[str, str]:
    if provider is None:
        return {}
    props = raw(getattr(provider, "props", {}) or {})
    tags = props.get("defaultTags")
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            return {}
    inner = tags.get("tags") if isinstance(tags, Mapping) else None
    return {str(k): str(v) for k, v in inner.items()} if isinstance(inner, Mapping) else {}


def to_resource(
    resource_type: str,
    name: str,
    props: Any,
    opts: Any,
    provider: Any,
    property_dependencies: Mapping[str, Any] | None = None,
) -> Resource:
    inputs = raw(props)
    own = inputs.get("tags") if isinstance(inputs.get("tags"), Mapping) else {}
    options = {
        "protect": bool(getattr(opts, "protect", False)),
        # CrossGuard's resource options carry no retainOnDelete; absence is reported as not retained.
        "retainOnDelete": bool(getattr(opts, "retain_on_delete", False)),
    }
    references = {
        str(prop): tuple(str(getattr(d, "name", d)) for d in deps)
        for prop, deps in (property_dependencies or {}).items()
    }
    return Resource(
        type=resource_type,
        name=name,
        inputs=inputs,
        tags={**provider_default_tags(provider), **(own or {})},
        options=options,
        references=references,
        source="pulumi",
    )
