"""`mlp diff A B`: what differs between two plans (two stacks, or two saved plan JSON files): resources added and
removed, and for resources in both, every changed input and option by its path.

Plans are matched by logical name, which the components keep stable (children are named after their component and
a config key), so a renamed pool shows as one removal and one addition, as Pulumi itself would treat it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplatform.mlp.plan_keys import resource_keys

if TYPE_CHECKING:
    from rich.console import Console

MISSING = "(absent)"


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ResourceDiff:
    name: str
    type: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class PlanDiff:
    left: str
    right: str
    added: tuple[tuple[str, str], ...]  # (name, type)
    removed: tuple[tuple[str, str], ...]
    changed: tuple[ResourceDiff, ...]
    unchanged: int

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)


def load_plan_json(path: Path) -> dict[str, Any]:
    """A saved plan (`mlp plan STACK -f json -o FILE`), checked for the plan's shape."""
    from mlplatform.mlp.errors import PlanFileError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlanFileError(f"{path}: cannot read a plan: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise PlanFileError(f"{path}: not a plan (expected an object with a `resources` list, from mlp plan -f json)")
    for i, r in enumerate(data["resources"]):
        if not isinstance(r, dict) or not {"name", "type"} <= set(r):
            raise PlanFileError(f"{path}: resources[{i}] has no name or type")
    return data


def _walk(before: Any, after: Any, path: str, out: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            _walk(before.get(key, MISSING), after.get(key, MISSING), sub, out)
        return
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            _walk(b, a, f"{path}[{i}]", out)
        return
    if before != after:
        out.append(Change(path, before, after))


def _by_key(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    keys = resource_keys(resources)
    return {keys[i]: r for i, r in enumerate(resources)}


def diff_plans(left: dict[str, Any], right: dict[str, Any], left_name: str, right_name: str) -> PlanDiff:
    a = _by_key(left["resources"])
    b = _by_key(right["resources"])
    changed = []
    unchanged = 0
    for name in sorted(set(a) & set(b)):
        changes: list[Change] = []
        if a[name]["type"] != b[name]["type"]:
            changes.append(Change("type", a[name]["type"], b[name]["type"]))
        for part in ("inputs", "options", "parent", "provider"):
            _walk(a[name].get(part, MISSING), b[name].get(part, MISSING), part, changes)
        if changes:
            changed.append(ResourceDiff(name, b[name]["type"], tuple(changes)))
        else:
            unchanged += 1
    return PlanDiff(
        left=left_name,
        right=right_name,
        added=tuple(sorted((n, b[n]["type"]) for n in set(b) - set(a))),
        removed=tuple(sorted((n, a[n]["type"]) for n in set(a) - set(b))),
        changed=tuple(changed),
        unchanged=unchanged,
    )


def to_json(diff: PlanDiff) -> dict[str, Any]:
    return {
        "left": diff.left,
        "right": diff.right,
        "identical": diff.identical,
        "added": [{"name": n, "type": t} for n, t in diff.added],
        "removed": [{"name": n, "type": t} for n, t in diff.removed],
        "changed": [
            {
                "name": r.name,
                "type": r.type,
                "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in r.changes],
            }
            for r in diff.changed
        ],
        "unchanged": diff.unchanged,
    }


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def render_text(diff: PlanDiff, console: Console) -> None:
    console.print(
        f"{diff.left} -> {diff.right}: {len(diff.added)} added, {len(diff.removed)} removed, "
        f"{len(diff.changed)} changed, {diff.unchanged} unchanged",
        highlight=False,
    )
    for name, type_ in diff.added:
        console.print(f"[green]+ {name}[/green]  {type_}", highlight=False)
    for name, type_ in diff.removed:
        console.print(f"[red]- {name}[/red]  {type_}", highlight=False)
    for r in diff.changed:
        console.print(f"[yellow]~ {r.name}[/yellow]  {r.type}", highlight=False)
        for c in r.changes:
            console.print(f"    {c.path}: {_show(c.before)} -> {_show(c.after)}", highlight=False, markup=False)


def render_markdown(diff: PlanDiff) -> str:
    out = [
        f"### Plan diff: `{diff.left}` -> `{diff.right}`",
        "",
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed, "
        f"{diff.unchanged} unchanged.",
        "",
    ]
    if diff.added or diff.removed:
        out += ["| | resource | type |", "|---|---|---|"]
        out += [f"| + | `{n}` | `{t}` |" for n, t in diff.added]
        out += [f"| - | `{n}` | `{t}` |" for n, t in diff.removed]
        out.append("")
    for r in diff.changed:
        out += [f"<details><summary><code>{r.name}</code> ({len(r.changes)} change(s))</summary>", ""]
        out += ["| path | before | after |", "|---|---|---|"]
        out += [
            f"| `{c.path}` | `{_show(c.before).replace('|', '/')}` | `{_show(c.after).replace('|', '/')}` |"
            for c in r.changes
        ]
        out += ["", "</details>", ""]
    return "\n".join(out)
