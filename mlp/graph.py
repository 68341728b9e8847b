"""`mlp graph STACK`: a Mermaid diagram of a stack's components and the dependencies between them.

A component depends on another when one of its resources takes a value from, or is ordered after, a resource of
the other (the plan's references and dependsOn, which come from the engine's property dependencies and the
program's explicit ordering). Arrows point from a component to the one it uses; each node shows how many resources
the component owns.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def component_of(resource: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> str | None:
    """The top-level component that owns a resource (None for the stack's own providers)."""
    name: str | None = resource["name"]
    top: str | None = None
    seen = set()
    while name is not None and name not in seen:
        seen.add(name)
        node = by_name.get(name)
        if node is None:
            break
        if str(node["type"]).startswith("mlplatform:"):
            top = name
        name = node.get("parent")
    return top


def component_edges(plan: dict[str, Any]) -> tuple[dict[str, tuple[str, int]], set[tuple[str, str]]]:
    """({component: (type, resource count)}, {(dependent, dependency)})."""
    by_name = {r["name"]: r for r in plan["resources"]}
    owner = {r["name"]: component_of(r, by_name) for r in plan["resources"]}
    counts = Counter(c for n, c in owner.items() if c and by_name[n]["type"] != by_name[c]["type"])
    components = {c: (str(by_name[c]["type"]), counts[c]) for c in set(owner.values()) if c}
    edges: set[tuple[str, str]] = set()
    for r in plan["resources"]:
        source = owner.get(r["name"])
        if source is None:
            continue
        targets = [t for names in (r.get("references") or {}).values() for t in names]
        targets += list((r.get("options") or {}).get("dependsOn") or [])
        for target in targets:
            sink = owner.get(target)
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
