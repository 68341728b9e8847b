"""`mlp graph STACK`: a Mermaid diagram of a stack's components and the dependencies between them.

A component depends on another when one of its resources takes a value from, or is ordered after, a resource of
the other (the plan's references and dependsOn, which come from the engine's property dependencies and the
program's explicit ordering). Arrows point from a component to the one it uses; each node shows how many resources
the component owns.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mlplatform.mlp.plan_keys import parent_key, resource_keys


def component_of(key: str, by_key: dict[str, dict[str, Any]], keys: set[str]) -> str | None:
    """The top-level component that owns a resource (None for the stack's own providers)."""
    current: str | None = key
    top: str | None = None
    seen = set()
    while current is not None and current not in seen:
        seen.add(current)
        node = by_key.get(current)
        if node is None:
            break
        if str(node["type"]).startswith("mlplatform:"):
            top = current
        current = parent_key(node, keys)
    return top


def component_edges(plan: dict[str, Any]) -> tuple[dict[str, tuple[str, int]], set[tuple[str, str]]]:
    """({component: (type, resource count)}, {(dependent, dependency)}). A component of the same name in both
    layers (a domain's AWS side and its Kubernetes side) is shown as `cloud/NAME` and `cluster/NAME`."""
    resources = plan["resources"]
    index = resource_keys(resources)
    by_key = {index[i]: r for i, r in enumerate(resources)}
    keys = set(by_key)
    owner = {k: component_of(k, by_key, keys) for k in by_key}
    counts = Counter(c for k, c in owner.items() if c and by_key[k]["type"] != by_key[c]["type"])
    components = {c: (str(by_key[c]["type"]), counts[c]) for c in set(owner.values()) if c}
    edges: set[tuple[str, str]] = set()
    for key, r in by_key.items():
        source = owner.get(key)
        if source is None:
            continue
        targets = [t for names in (r.get("references") or {}).values() for t in names]
        targets += list((r.get("options") or {}).get("dependsOn") or [])
        for target in targets:
            sink = owner.get(target)  # references name custom resources, whose names are unique
            if sink and sink != source:
                edges.add((source, sink))
    return components, edges


def _node_id(name: str) -> str:
    return "n_" + "".join(ch if ch.isalnum() else "_" for ch in name)


def mermaid(plan: dict[str, Any]) -> str:
    components, edges = component_edges(plan)
    lines = ["flowchart LR"]
    for name in sorted(components):
        type_, count = components[name]
        kind = type_.split(":")[-1]
        lines.append(f'    {_node_id(name)}["{name}<br/>{kind}<br/>{count} resources"]')
    for source, sink in sorted(edges):
        lines.append(f"    {_node_id(source)} --> {_node_id(sink)}")
    return "\n".join(lines) + "\n"
