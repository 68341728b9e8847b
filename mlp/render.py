"""Render a plan as a table, a tree or Markdown, grouped by component, with each resource's key settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from mlp.planner import NOTICE, Plan, PlannedResource


def _short_type(token: str) -> str:
    """`aws:ec2/vpc:Vpc` -> `ec2.Vpc`; `kubernetes:karpenter.sh/v1:NodePool` -> `NodePool (karpenter.sh/v1)`."""
    pkg, _, rest = token.partition(":")
    module, _, kind = rest.partition(":")
    if pkg == "kubernetes" and "/" in module:
        return f"{kind} ({module})" if not module.startswith(("core/", "apps/")) else kind
    if pkg == "pulumi" and module == "providers":
        return f"provider {kind}"
    return f"{module.split('/')[0]}.{kind}" if module else token


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _yes(value: Any) -> str:
    return "on" if value in (True, "true") else "off"


_SETTINGS: dict[str, Callable[[dict[str, Any]], str]] = {
    "aws:ec2/vpc:Vpc": lambda i: f"cidr {i.get('cidrBlock')}",
    "aws:ec2/subnet:Subnet": lambda i: f"{i.get('cidrBlock')} in {i.get('availabilityZone')}",
    "aws:ec2/natGateway:NatGateway": lambda i: f"{i.get('connectivityType', 'public')}",
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda i: f"{i.get('serviceName')} ({i.get('vpcEndpointType')})",
    "aws:ec2/flowLog:FlowLog": lambda i: f"traffic {i.get('trafficType')} -> {i.get('logDestinationType')}",
    "aws:cloudwatch/logGroup:LogGroup": lambda i: (
        f"retention {i.get('retentionInDays')} d, kms {'yes' if i.get('kmsKeyId') else 'no'}"
    ),
    "aws:kms/key:Key": lambda i: f"rotation {_yes(i.get('enableKeyRotation'))}",
    "aws:sns/topic:Topic": lambda i: f"kms {'yes' if i.get('kmsMasterKeyId') else 'no'}",
    "aws:eks/cluster:Cluster": lambda i: (
        f"k8s {i.get('version')}, endpoint "
        f"{'public+private' if _get(i, 'vpcConfig', 'endpointPublicAccess') else 'private'}, "
        f"secrets kms {'yes' if i.get('encryptionConfig') else 'no'}, "
        f"logs {len(i.get('enabledClusterLogTypes') or [])}/5, support {_get(i, 'upgradePolicy', 'supportType')}"
    ),
    "aws:eks/nodeGroup:NodeGroup": lambda i: (
        f"{','.join(i.get('instanceTypes') or [])} {i.get('capacityType', '')} "
        f"{_get(i, 'scalingConfig', 'minSize')}..{_get(i, 'scalingConfig', 'maxSize')} nodes"
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": lambda i: (
        f"IMDSv2 {_get(i, 'metadataOptions', 'httpTokens')}, "
        f"{len(i.get('tagSpecifications') or [])} tag specs, "
        f"encrypted {all(_get(b, 'ebs', 'encrypted') == 'true' for b in i.get('blockDeviceMappings') or [])}"
    ),
    "aws:eks/addon:Addon": lambda i: f"{i.get('addonName')} {i.get('addonVersion')}",
    "aws:eks/accessEntry:AccessEntry": lambda i: f"{i.get('principalArn')}",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": lambda i: (
        f"{str(i.get('policyArn', '')).rsplit('/', 1)[-1]} ({_get(i, 'accessScope', 'type')})"
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": lambda i: str(i.get("policyArn", "")).rsplit("/", 1)[-1],
    "kubernetes:helm.sh/v3:Release": lambda i: f"{i.get('chart')} {i.get('version')}",
    "kubernetes:gateway.networking.k8s.io/v1:Gateway": lambda i: ", ".join(
        f"{li.get('protocol')} :{li.get('port')} {li.get('hostname', '*')}" for li in _get(i, "spec", "listeners") or []
    ),
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": lambda i: _route_weights(i),
}


def _route_weights(inputs: dict[str, Any]) -> str:
    """`host -> service share%, ...`: where a weighted route (a canary split) sends requests; a backend's share is
    its weight over the rule's total (a missing weight is 1, as in the Gateway API)."""
    spec = inputs.get("spec") or {}
    rules = []
    for rule in spec.get("rules") or []:
        backends = [(b.get("name"), int(b.get("weight", 1))) for b in rule.get("backendRefs") or []]
        total = sum(w for _, w in backends) or 1
        rules.append(", ".join(f"{name} {100 * w / total:g}%" for name, w in backends))
    return f"{','.join(spec.get('hostnames') or ['*'])} -> {'; '.join(rules)}"


def key_settings(resource: PlannedResource) -> str:
    fn = _SETTINGS.get(resource.type)
    if fn is None:
        return ""
    try:
        return fn(resource.inputs)
    except (TypeError, KeyError, AttributeError):
        return ""


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


def render_json(plan: Plan) -> str:
    return plan.to_json()


def render_table(plan: Plan, console: Console) -> None:
    console.print(f"[bold]{plan.project}[/bold] / stack [bold]{plan.stack}[/bold]: {len(plan.resources)} resources")
    console.print(f"[dim]{NOTICE}[/dim]")
    for group, resources in _groups(plan).items():
        table = Table(title=f"{group} ({len(resources)})", title_justify="left", expand=False)
        table.add_column("type")
        table.add_column("name")
        table.add_column("key settings")
        for r in resources:
            flags = " ".join(
                flag
                for flag, on in (("[protect]", r.options.get("protect")), ("[retain]", r.options.get("retainOnDelete")))
                if on
            )
            table.add_row(_short_type(r.type), r.name, " ".join(x for x in (key_settings(r), flags) if x))
        console.print(table)
    summary = Table(title="resources by type", title_justify="left")
    summary.add_column("type")
    summary.add_column("count", justify="right")
    for token, count in plan.by_type().items():
        summary.add_row(token, str(count))
    console.print(summary)


def render_tree(plan: Plan, console: Console) -> None:
    root = Tree(f"[bold]{plan.project}-{plan.stack}[/bold] ({len(plan.resources)} resources)")
    children: dict[tuple[str, str | None], list[PlannedResource]] = {}
    for r in plan.resources:
        children.setdefault((r.layer, r.parent), []).append(r)

    def add(parent_tree: Tree, layer: str, parent: str | None) -> None:
        for r in children.get((layer, parent), []):
            settings = key_settings(r)
            label = f"{_short_type(r.type)} [bold]{r.name}[/bold]" + (f"  [dim]{settings}[/dim]" if settings else "")
            add(parent_tree.add(label), layer, r.name)

    for layer in plan.layers or ("",):
        count = len(plan.in_layer(layer))
        add(root.add(f"[bold]{layer} layer[/bold] ({count} resources)") if layer else root, layer, None)
    console.print(f"[dim]{NOTICE}[/dim]")
    console.print(root)


def render_markdown(plan: Plan) -> str:
    lines = [
        f"## Offline plan: `{plan.project}` / `{plan.stack}`",
        "",
        f"> {NOTICE}",
        "",
        f"**{len(plan.resources)} resources.**",
        "",
    ]
    for group, resources in _groups(plan).items():
        lines += [f"### {group} ({len(resources)})", "", "| type | name | key settings |", "|---|---|---|"]
        for r in resources:
            lines.append(f"| `{_short_type(r.type)}` | `{r.name}` | {key_settings(r).replace('|', '/')} |")
        lines.append("")
    lines += ["### Resources by type", "", "| type | count |", "|---|---:|"]
    lines += [f"| `{t}` | {c} |" for t, c in plan.by_type().items()]
    return "\n".join(lines) + "\n"


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
