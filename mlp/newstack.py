"""`mlp new STACK --from SOURCE`: a new stack file, copied from another with its comments, that collides with none.

The copy keeps every line of the source (comments, `# REPLACE` markers, layout) and changes only the values that
must be the new stack's own: `network.cidr` becomes a block of the same size that no other stack file uses, and
the names the source sets (`cluster.name`, `cluster.image_cache.prefix`, `mlflow.auth.admin_secret`) are renamed
after the new stack (the source stack's name in them replaced, else the per-stack default). Names the source leaves
to their defaults derive from the new stack's name by themselves (`infra.naming`). Values are replaced in place at
the positions the YAML parser reports, so nothing else of the file moves. An existing file is never overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from mlplatform.infra.config import NAMESPACE, PlatformConfig
from mlplatform.infra.config_errors import ConfigError, Path
from mlplatform.infra.naming import NAME_PATTERN, admin_secret_name, default_name, name_problem
from mlplatform.mlp.stack_clashes import free_cidr
from mlplatform.mlp.stackfile import Project, load_stack

STACK_NAME_PATTERN = NAME_PATTERN
"""A new stack's name: the stack name's own rule (`infra.naming`), which the stack file name, `mlp-<stack>` and the
Pulumi CLI all accept."""


class NewStackError(Exception):
    """The new stack cannot be written (bad name, existing file, a source without a CIDR to change)."""


@dataclass(frozen=True)
class NewStack:
    stack: str
    source_stack: str
    path: FilePath
    """The file written."""
    changes: list[str] = field(default_factory=list)
    """What differs from the source, one `key: old -> new` each."""


def new_stack(project: Project, stack: str, source_stack: str) -> NewStack:
    """Write `stacks/Pulumi.<stack>.yaml` from `source_stack`'s file; raise NewStackError or ConfigError (an
    invalid source) without writing anything."""
    target = project.stack_file(stack)
    shown = project.relative(target)
    if not re.fullmatch(STACK_NAME_PATTERN, stack):
        raise NewStackError(
            f"{shown}: the stack name {stack!r} must be lowercase letters, digits and single hyphens, starting with "
            "a letter (it names the stack file and, as mlp-<stack>, every AWS resource of the stack)"
        )
    problem = name_problem(default_name(stack))
    if problem:
        raise NewStackError(
            f"{shown}: the stack name {stack!r} is too long: its name {default_name(stack)!r} {problem}"
        )
    if target.exists():
        raise NewStackError(
            f"{shown} already exists; `mlp new` never overwrites a stack file: pick another name, or delete the "
            "file first if you mean to start it again"
        )
    source = load_stack(project, source_stack)
    cfg = source.validate()
    text = project.stack_file(source_stack).read_text(encoding="utf-8")
    edits, changes = _edits(project, text, cfg, source_stack, stack)
    body = _apply(text, edits)
    header = (
        f"# {stack}: made by `mlp new {stack} --from {source_stack}` from {source.source}; its names and network.cidr "
        f"are its own (`mlp validate {stack}` checks them against the other stack files).\n"
    )
    with target.open("x", encoding="utf-8") as out:  # "x": never overwrite, even if the file appeared meanwhile
        out.write(header + body)
    return NewStack(stack=stack, source_stack=source_stack, path=target, changes=changes)


def next_commands(stack: str, cfg: PlatformConfig, file: str) -> list[str]:
    """What to run after `mlp new`, in order."""
    cluster_up = f"mlp runner {stack} up" if cfg.runs_in_vpc_runner else f"pulumi -C cluster up -s {stack}"
    return [
        f"edit {file}: every line marked REPLACE (roles, CIDRs, accounts)",
        f"mlp plan {stack}",
        f"pulumi stack init {stack} && pulumi -C cluster stack init {stack}",
        f"mlp preflight {stack}",
        f"pulumi up -s {stack}",
        cluster_up,
    ]


_Edit = tuple[int, int, str]


def _edits(project: Project, text: str, cfg: PlatformConfig, old: str, new: str) -> tuple[list[_Edit], list[str]]:
    root = yaml.compose(text)
    edits: list[_Edit] = []
    changes: list[str] = []

    def replace(path: Path, value: str) -> None:
        node = _scalar(root, path)
        if node is None or node.value == value:
            return
        quote = node.style if node.style in ("'", '"') else ""
        edits.append((node.start_mark.index, node.end_mark.index, f"{quote}{value}{quote}"))
        changes.append(f"{'.'.join(map(str, path))}: {node.value} -> {value}")

    name = default_name(new)
    if cfg.cluster.name:
        name = _renamed(cfg.cluster.name, old, new) or name
        replace(("cluster", "name"), name)
    if cfg.cluster.image_cache.prefix:
        replace(("cluster", "image_cache", "prefix"), _renamed(cfg.cluster.image_cache.prefix, old, new) or name)
    if cfg.mlflow.auth.admin_secret:
        secret = _renamed(cfg.mlflow.auth.admin_secret, old, new) or admin_secret_name(name)
        replace(("mlflow", "auth", "admin_secret"), secret)
    if cfg.network.adopt is None:
        taken = [c for s in project.stacks() if (c := _cidr_of(project, s))]
        spare = free_cidr(cfg.network.cidr, taken)
        if spare is None:
            raise NewStackError(f"no free /{cfg.network.cidr.split('/')[1]} block left beside the stack files' CIDRs")
        if _scalar(root, ("network", "cidr")) is None:
            raise NewStackError(
                f"{project.relative(project.stack_file(old))}: network.cidr is not set in the file; set it there "
                "(the copy gets a block no other stack file uses in its place)"
            )
        replace(("network", "cidr"), spare)
    return sorted(edits), changes


def _renamed(value: str, old: str, new: str) -> str | None:
    """`value` with the source stack's name, as a whole word, replaced by the new one; None if it has none."""
    renamed = re.sub(rf"(?<![A-Za-z0-9]){re.escape(old)}(?![A-Za-z0-9])", new, value)
    return renamed if renamed != value else None


def _cidr_of(project: Project, stack: str) -> str | None:
    """A stack file's network.cidr as written (also of a file that does not validate), or None."""
    try:
        network = load_stack(project, stack).config.get(f"{NAMESPACE}:network")
    except ConfigError:
        return None
    cidr = network.get("cidr") if isinstance(network, dict) else None
    return str(cidr) if isinstance(cidr, str) and "/" in cidr else None


def _scalar(root: Any, path: Path) -> yaml.ScalarNode | None:
    """The scalar node of a platform key path (`("network", "cidr")` under `config: ml-platform:network:`)."""
    node = _value(_value(root, "config"), f"{NAMESPACE}:{path[0]}")
    for part in path[1:]:
        node = _value(node, str(part))
    return node if isinstance(node, yaml.ScalarNode) else None


def _value(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _apply(text: str, edits: list[_Edit]) -> str:
    for start, end, value in reversed(edits):
        text = text[:start] + value + text[end:]
    return text
