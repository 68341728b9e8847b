"""Reading a project's Pulumi.yaml and stack files the way the Pulumi CLI does, with line numbers for errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlplatform.infra.config import NAMESPACE, PlatformConfig, validate_config
from mlplatform.infra.config_errors import ConfigError, ConfigIssue
from mlplatform.infra.constants import CLUSTER_LAYER_DIR, PROJECT

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    main: Path
    stack_dir: Path
    config: dict[str, Any]  # project-level config values from Pulumi.yaml

    def stack_file(self, stack: str) -> Path:
        return self.stack_dir / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.stack_dir.glob("Pulumi.*.yaml"))

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


@dataclass(frozen=True)
class StackConfig:
    project: Project
    stack: str
    source: str  # the stack file, relative to the project
    config: dict[str, Any]  # merged: project config overridden by the stack file
    line_of: Callable[[KeyPath], int | None]

    def validate(self) -> PlatformConfig:
        return validate_config(self.config, self.source, self.line_of, stack=self.stack)


def load_project(root: Path) -> Project:
    root = root.resolve()
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise ConfigError(
            str(path),
            [ConfigIssue((), "no Pulumi.yaml here; run mlp from the project directory or pass --project-dir")],
        )
    data = _load_yaml(path, str(path))
    if not isinstance(data, dict) or "name" not in data:
        raise ConfigError(str(path), [ConfigIssue(("name",), "Pulumi.yaml needs a project name")])
    main = root / str(data.get("main") or "") / "__main__.py" if data.get("main") else root / "__main__.py"
    stack_dir = root / str(data.get("stackConfigDir") or ".")
    project_config: dict[str, Any] = {}
    for key, value in (data.get("config") or {}).items():
        # Pulumi.yaml config entries are either plain values or {value: ...} / {default: ...} declarations.
        if isinstance(value, dict) and ("value" in value or "default" in value):
            value = value.get("value", value.get("default"))
        elif isinstance(value, dict) and "type" in value:
            continue
        project_config[_qualify(str(key), str(data["name"]))] = value
    return Project(root=root, name=str(data["name"]), main=main, stack_dir=stack_dir, config=project_config)


def layer_projects(project: Project) -> list[tuple[str, Project]]:
    """The layers of a project, in deployment order, each a Pulumi project: this platform's cloud layer (the
    project at the root) and its cluster layer (`cluster/Pulumi.yaml`, which reads the same stack files). Any
    other program is one unnamed layer."""
    cluster_dir = project.root / CLUSTER_LAYER_DIR
    if project.name != PROJECT or not (cluster_dir / "Pulumi.yaml").is_file():
        return [("", project)]
    cluster = load_project(cluster_dir)
    if cluster.stack_dir.resolve() != project.stack_dir.resolve():
        raise ConfigError(
            cluster.relative(cluster.root / "Pulumi.yaml"),
            [ConfigIssue(("stackConfigDir",), f"must be the cloud layer's stack folder ({project.stack_dir})")],
        )
    return [("cloud", project), ("cluster", cluster)]


def load_stack(project: Project, stack: str) -> StackConfig:
    path = project.stack_file(stack)
    source = project.relative(path)
    if not path.is_file():
        known = ", ".join(project.stacks()) or "(none)"
        raise ConfigError(source, [ConfigIssue((), f"no such stack file; stacks here: {known}")])
    text = path.read_text(encoding="utf-8")
    data = _load_yaml(path, source, text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue((), "a stack file is a YAML mapping with a `config:` key")])
    raw_config = data.get("config") or {}
    if not isinstance(raw_config, dict):
        raise ConfigError(source, [ConfigIssue(("config",), "must be a mapping of config keys")])
    config = dict(project.config)
    config.update({_qualify(str(k), project.name): v for k, v in raw_config.items()})
    node = yaml.compose(text)
    return StackConfig(project=project, stack=stack, source=source, config=config, line_of=lambda p: _line_of(node, p))


def _qualify(key: str, project: str) -> str:
    """Pulumi treats un-namespaced keys as belonging to the project."""
    return key if ":" in key else f"{project}:{key}"


def _load_yaml(path: Path, source: str, text: str | None = None) -> Any:
    try:
        return yaml.safe_load(text if text is not None else path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [ConfigIssue((), f"is not valid YAML: {problem}", line)]) from None


def _line_of(root: Any, path: KeyPath) -> int | None:
    """The 1-based line of a platform key path in the stack file (None when it is not in the file)."""
    if root is None or not path:
        return None
    config = _child(root, "config")
    if config is None:
        return None
    head, *rest = path
    key = "aws:region" if head == "region" else str(head) if ":" in str(head) else f"{NAMESPACE}:{head}"
    node = _child(config, key)
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in rest:
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _child(node: Any, key: str | int) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == str(key):
                return v if not isinstance(v, yaml.ScalarNode) else k
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None
