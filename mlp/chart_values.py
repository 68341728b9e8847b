"""Helm release values checked against the chart's `values.schema.json` (and its enabled subcharts'), as
`helm install` checks them before rendering: the release's values are merged over the chart's default
`values.yaml` first (maps merged key by key, a `null` deleting a default), each enabled subchart gets its part of
the merged values over its own defaults (plus the parent's `global`), and each chart's merged values are validated
against its own schema.

The schemas and default values of the pinned charts are stored under `mlp/data/charts` (see its README);
`index.json` there lists every pinned chart version and whether it ships a schema.

Where this differs from Helm, on the lenient side: `null` values left after the merge are dropped before
validation (Helm keeps a chart default's `null` and some validators then reject it against a typed schema);
subchart `tags` are not evaluated (the pinned charts use conditions only); values from `valueYamlFiles` are not
merged (the platform passes `values` only); `format` keywords are not asserted (Helm does not assert them either).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mlplatform.mlp.schema_check import PLACEHOLDERS, Finding

CHART_DATA = Path(__file__).parent / "data" / "charts"


@dataclass(frozen=True)
class ChartCheck:
    """The outcome of checking one release's values."""

    chart: str
    version: str
    checked: tuple[str, ...] = ()
    """The charts whose schema the values were validated against (`cert-manager`, `nfd`)."""
    errors: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Why (part of) the values were not checked."""


def chart_name(reference: str) -> str:
    """`oci://quay.io/jetstack/charts/cert-manager` -> `cert-manager`; `repo/keda` -> `keda`."""
    return reference.rstrip("/").rsplit("/", 1)[-1]


@cache
def _index() -> dict[str, dict[str, Any]]:
    charts: dict[str, dict[str, Any]] = json.loads((CHART_DATA / "index.json").read_text())["charts"]
    return charts


@cache
def _chart(folder: str) -> dict[str, Any]:
    chart: dict[str, Any] = json.loads((CHART_DATA / folder / "chart.json").read_text())
    return chart


@cache
def _load_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader) or {}


@cache
def _validator(path: Path) -> Any:
    import jsonschema

    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def coalesce(values: Any, defaults: Any) -> Any:
    """Helm's merge of values over a chart's defaults: maps merge key by key, `null` deletes a default, any other
    value replaces the default."""
    if not isinstance(values, dict) or not isinstance(defaults, dict):
        return values
    out: dict[str, Any] = {}
    for key, default in defaults.items():
        if key not in values:
            out[key] = default
        elif values[key] is not None:
            out[key] = coalesce(values[key], default)
    for key, value in values.items():
        if key not in defaults and value is not None:
            out[key] = value
    return out


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _enabled(values: Mapping[str, Any], condition: str | None) -> tuple[bool, str]:
    """Helm's dependency condition: the first of its comma-separated paths that holds a boolean decides."""
    for path in (condition or "").split(","):
        node: Any = values
        for part in path.strip().split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool):
            return node, f"{path.strip()}={str(node).lower()}"
    return True, "no condition set"


def check_release(inputs: Mapping[str, Any], root: str = "inputs.values") -> ChartCheck:
    """Check a `kubernetes:helm.sh/v3:Release`'s values against its chart's schema(s), where the chart ships one."""
    from mlplatform.mlp.k8s_schema import jsonschema_findings

    name = chart_name(str(inputs.get("chart", "")))
    version = str(inputs.get("version") or "")
    if not version or version in PLACEHOLDERS:
        return ChartCheck(name, version, notes=(f"{name}: no chart version pinned; values not checked",))
    entry = _index().get(name, {}).get(version)
    if entry is None:
        known = ", ".join(sorted(_index().get(name, {}))) or "none"
        warning = Finding(
            "inputs.version",
            f"chart {name} {version} was never looked up for a values.schema.json (stored versions: {known}); "
            "its values are not checked: add it to mlp/data/charts/index.json",
        )
        return ChartCheck(name, version, warnings=(warning,))
    if entry["data"] is None:
        return ChartCheck(name, version, notes=(f"{name} {version} ships no values.schema.json; values not checked",))
    folder = entry["data"]
    chart = _chart(folder)
    user = inputs.get("values") or {}
    merged = coalesce(user if isinstance(user, dict) else {}, _load_yaml(CHART_DATA / folder / chart["values"]))
    checked: list[str] = []
    errors: list[Finding] = []
    notes: list[str] = []
    if chart.get("schema"):
        errors += jsonschema_findings(_validator(CHART_DATA / folder / chart["schema"]), _without_nulls(merged), root)
        checked.append(name)
    else:
        notes.append(f"{name} {version} ships no values.schema.json of its own")
    for dep in chart.get("dependencies", []):
        key = dep.get("alias") or dep["name"]
        enabled, why = _enabled(merged, dep.get("condition"))
        if not enabled:
            notes.append(f"subchart {key} ({dep['name']} {dep['version']}) disabled ({why}); its values not checked")
            continue
        if not dep.get("schema"):
            continue
        directory = CHART_DATA / folder / dep["directory"]
        part = merged.get(key) if isinstance(merged.get(key), dict) else {}
        values = coalesce(part, _load_yaml(directory / dep["values"]))
        values["global"] = coalesce(merged.get("global") or {}, values.get("global") or {})
        errors += jsonschema_findings(
            _validator(directory / dep["schema"]), _without_nulls(values), f"{root}.{key}" if key else root
        )
        checked.append(key)
    return ChartCheck(name, version, checked=tuple(checked), errors=tuple(errors), notes=tuple(notes))
