"""Render a plan as a table, a tree, Markdown or JSON: a summary first (mlp/plan_summary.py), then the resources
grouped by component with each resource's key settings (mlp/key_settings.py).

Tables fit the console (100 columns and up) without cutting a resource name: the name column never wraps, and the
type and settings columns fold instead."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from mlplatform.mlp.key_settings import KeySettings
from mlplatform.mlp.plan_summary import PlanSummary, summarize
from mlplatform.mlp.planner import NOTICE, Plan, PlannedResource


def _short_type(token: str) -> str:
    """`aws:ec2/vpc:Vpc` -> `ec2.Vpc`; `kubernetes:karpenter.sh/v1:NodePool` -> `NodePool (karpenter.sh/v1)`."""
    pkg, _, rest = token.partition(":")
    module, _, kind = rest.partition(":")
    if pkg == "kubernetes" and "/" in module:
        return f"{kind} ({module})" if not module.startswith(("core/", "apps/")) else kind
    if pkg == "pulumi" and module == "providers":
        return f"provider {kind}"
    return f"{module.split('/')[0]}.{kind}" if module else token


def _table_type(token: str) -> str:
    """The table's shorter type: a Kubernetes kind without its API group (the Markdown and `resources by type`
    keep it), so that narrow consoles fold fewer rows."""
    pkg, _, rest = token.partition(":")
    return rest.rpartition(":")[2] if pkg == "kubernetes" and rest else _short_type(token)


def key_settings(resource: PlannedResource, plan: Plan | None = None) -> str:
    """A resource's key settings (a bucket's also read the resources in `plan` that configure it)."""
    return KeySettings(plan.resources if plan is not None else ())(resource)


def _groups(plan: Plan) -> dict[str, list[PlannedResource]]:
    """Resources by layer and top-level component (providers and loose resources under `(stack)`)."""
    by_name = {(r.layer, r.name): r for r in plan.resources}

    def root_of(r: PlannedResource) -> str:
        current = r
        while current.parent and (r.layer, current.parent) in by_name:
            current = by_name[(r.layer, current.parent)]
        group = current.name if not current.custom else "(stack)"
        return f"{r.layer} layer: {group}" if r.layer else group

    groups: dict[str, list[PlannedResource]] = {}
    for r in plan.resources:
        if not r.custom:
            groups.setdefault(root_of(r), [])
            continue
        groups.setdefault(root_of(r), []).append(r)
    return {k: v for k, v in groups.items() if v}


def render_json(plan: Plan, summary: PlanSummary | None = None, extra: Mapping[str, object] | None = None) -> str:
    """The plan's JSON with the summary's figures added to its `summary` object (whose keys stay as they were);
    `extra` adds top-level keys (the vLLM servers' memory fit)."""
    body = plan.to_dict()
    body["summary"].update((summary or summarize(plan, with_checks=False)).to_json())
    body.update(extra or {})
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def _summary_table(summary: PlanSummary) -> Table:
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column("item", no_wrap=True, style="bold")
    table.add_column("value", overflow="fold")
    for label, text in summary.rows():
        table.add_row(label, text)
    return table


def _flags(r: PlannedResource) -> str:
    options = (("[protect]", r.options.get("protect")), ("[retain]", r.options.get("retainOnDelete")))
    return " ".join(flag for flag, on in options if on)


def render_table(plan: Plan, console: Console, summary: PlanSummary | None = None) -> None:
    console.print(f"[bold]{plan.project}[/bold] / stack [bold]{plan.stack}[/bold]: {len(plan.resources)} resources")
    console.print(_summary_table(summary or summarize(plan, with_checks=False)))
    # The console may soft-wrap (piped output): the notice is wrapped to its width all the same.
    console.print(f"[dim]{NOTICE}[/dim]", soft_wrap=False)
    settings = KeySettings(plan.resources)
    for group, resources in _groups(plan).items():
        rows = [(_table_type(r.type), r.name, " ".join(x for x in (settings(r), _flags(r)) if x)) for r in resources]
        table = Table(title=f"{group} ({len(resources)})", title_justify="left", expand=False)
        # Names are what a reader looks up: never cut or wrapped; the type and the settings fold instead, the type
        # to what the settings leave of the room beside the names (at least a third; borders and padding take 10).
        name_width = max(len(name) for _, name, _ in rows)
        room = console.width - name_width - 10
        type_need = max(len(kind) for kind, _, _ in rows)
        settings_need = max(len("key settings"), *(len(text) for _, _, text in rows))
        type_max = None if type_need + settings_need <= room else max(14, room - min(settings_need, 2 * room // 3))
        table.add_column("type", overflow="fold", max_width=type_max)
        table.add_column("name", no_wrap=True, min_width=name_width)
        table.add_column("key settings", overflow="fold")
        for kind, name, text in rows:
            table.add_row(kind, escape(name), escape(text))
        console.print(table)
    by_type = Table(title="resources by type", title_justify="left")
    by_type.add_column("type", overflow="fold")
    by_type.add_column("count", justify="right")
    for token, count in plan.by_type().items():
        by_type.add_row(token, str(count))
    console.print(by_type)


def render_tree(plan: Plan, console: Console, summary: PlanSummary | None = None) -> None:
    root = Tree(f"[bold]{plan.project}-{plan.stack}[/bold] ({len(plan.resources)} resources)")
    children: dict[tuple[str, str | None], list[PlannedResource]] = {}
    for r in plan.resources:
        children.setdefault((r.layer, r.parent), []).append(r)

    key = KeySettings(plan.resources)

    def add(parent_tree: Tree, layer: str, parent: str | None) -> None:
        for r in children.get((layer, parent), []):
            settings = escape(key(r))
            label = f"{_short_type(r.type)} [bold]{r.name}[/bold]" + (f"  [dim]{settings}[/dim]" if settings else "")
            add(parent_tree.add(label), layer, r.name)

    for layer in plan.layers or ("",):
        count = len(plan.in_layer(layer))
        add(root.add(f"[bold]{layer} layer[/bold] ({count} resources)") if layer else root, layer, None)
    console.print(_summary_table(summary or summarize(plan, with_checks=False)))
    console.print(f"[dim]{NOTICE}[/dim]", soft_wrap=False)
    console.print(root)


def render_markdown(plan: Plan, summary: PlanSummary | None = None) -> str:
    settings = KeySettings(plan.resources)
    lines = [
        f"## Offline plan: `{plan.project}` / `{plan.stack}`",
        "",
        "| summary | |",
        "|---|---|",
        *(
            f"| {label} | {text.replace('|', '/')} |"
            for label, text in (summary or summarize(plan, with_checks=False)).rows()
        ),
        "",
        f"> {NOTICE}",
        "",
        f"**{len(plan.resources)} resources.**",
        "",
    ]
    for group, resources in _groups(plan).items():
        lines += [f"### {group} ({len(resources)})", "", "| type | name | key settings |", "|---|---|---|"]
        for r in resources:
            lines.append(f"| `{_short_type(r.type)}` | `{r.name}` | {settings(r).replace('|', '/')} |")
        lines.append("")
    lines += ["### Resources by type", "", "| type | count |", "|---|---:|"]
    lines += [f"| `{t}` | {c} |" for t, c in plan.by_type().items()]
    return "\n".join(lines) + "\n"


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
