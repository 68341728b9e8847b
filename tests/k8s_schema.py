"""Validate Kubernetes objects from a plan: custom resources against the upstream CRD schemas (tests/data/crds),
built-in kinds against the models of the official Kubernetes Python client (generated from the Kubernetes
OpenAPI, pinned to the cluster's minor version).

Both checks refuse unknown fields, as the API server's strict field validation does. CEL rules
(`x-kubernetes-validations`) are not evaluated; the tests assert the ones the platform depends on explicitly.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes.client as k8s_client

from mlp.mocks import SECRET
from mlp.planner import Plan, PlannedResource

CRD_DIR = Path(__file__).parent / "data" / "crds"

# Pulumi resources that are not Kubernetes objects (Helm releases are charts, checked by their values).
NOT_OBJECTS = {"kubernetes:helm.sh/v3:Release"}


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict openAPIV3Schema of every stored CRD version."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*/*.json")):
        crd = json.loads(path.read_text())
        for version, schema in crd["versions"].items():
            out[(f"{crd['group']}/{version}", crd["kind"])] = _strict(copy.deepcopy(schema))
    return out


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Refuse fields a structural schema does not declare (unless it preserves unknown fields)."""
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    for key in ("properties", "patternProperties"):
        for sub in schema.get(key, {}).values():
            _strict(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            _strict(sub)
    return schema


def object_of(resource: PlannedResource) -> dict[str, Any]:
    """The Kubernetes object a planned resource submits (inputs minus Pulumi-only fields)."""
    return {k: v for k, v in resource.inputs.items() if not k.startswith("__")}


def validate_custom_resource(obj: dict[str, Any]) -> list[str]:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    schema = crd_schemas().get(key)
    if schema is None:
        return [f"no stored CRD schema for {key[0]} {key[1]}"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]


# --- built-in kinds -------------------------------------------------------------------------------------------

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(([^,]+), (.+)\)$")
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (str,),
    "date": (str,),
    "object": (object,),
}


def _model_for(api_version: str, kind: str) -> type | None:
    group_version = api_version.split("/")
    version = group_version[-1]
    return getattr(k8s_client, f"{version.capitalize()}{kind}", None)


def _walk(value: Any, type_name: str, path: str, errors: list[str]) -> None:
    if value == SECRET:
        return  # a secret value: the plan shows a placeholder, its shape cannot be checked
    if type_name in _PRIMITIVES:
        expected = _PRIMITIVES[type_name]
        if (value is not None and not isinstance(value, expected)) or (type_name == "int" and isinstance(value, bool)):
            errors.append(f"{path}: expected {type_name}, got {type(value).__name__} {value!r}")
        return
    if m := _LIST.match(type_name):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _walk(item, m.group(1), f"{path}[{i}]", errors)
        return
    if m := _DICT.match(type_name):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for k, item in value.items():
            _walk(item, m.group(2), f"{path}.{k}", errors)
        return
    model = getattr(k8s_client, type_name, None)
    if model is None:
        errors.append(f"{path}: unknown model {type_name}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({type_name}), got {type(value).__name__}")
        return
    by_json = {json_key: attr for attr, json_key in model.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json:
            errors.append(f"{path}.{key}: unknown field of {type_name} (allowed: {', '.join(sorted(by_json))})")
            continue
        _walk(item, model.openapi_types[by_json[key]], f"{path}.{key}", errors)


def validate_builtin(obj: dict[str, Any]) -> list[str]:
    model = _model_for(obj.get("apiVersion", ""), obj.get("kind", ""))
    if model is None:
        return [f"no Kubernetes client model for {obj.get('apiVersion')} {obj.get('kind')}"]
    errors: list[str] = []
    _walk(obj, model.__name__, obj.get("kind", "object"), errors)
    if not errors:
        # The client's deserializer enforces required fields (its models refuse None where the API requires a value).
        client = k8s_client.ApiClient()
        try:
            client._ApiClient__deserialize(_without_secrets(obj), model.__name__)  # type: ignore[attr-defined]
        except ValueError as exc:
            errors.append(f"{obj.get('kind')}: {exc}")
    return errors


def _without_secrets(value: Any) -> Any:
    """Drop redacted secret values (their shape is unknown); the deserializer checks the rest."""
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if v != SECRET}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value if v != SECRET]
    return value


BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}


def is_builtin(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return group in BUILTIN_GROUPS or group.endswith(".k8s.io")


def validate_plan(plan: Plan) -> dict[str, list[str]]:
    """Errors per Kubernetes resource of a plan (empty when everything validates)."""
    problems: dict[str, list[str]] = {}
    for r in plan.resources:
        if not r.type.startswith("kubernetes:") or r.type in NOT_OBJECTS or not r.custom:
            continue
        obj = object_of(r)
        errors = validate_builtin(obj) if is_builtin(obj["apiVersion"]) else validate_custom_resource(obj)
        if errors:
            problems[r.name] = errors
    return problems
