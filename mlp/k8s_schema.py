"""Validate Kubernetes objects of a plan: custom resources against the upstream CRD schemas (`mlp/data/crds`),
built-in kinds against the models of the official Kubernetes Python client (generated from the Kubernetes
OpenAPI; `kubernetes==35.0.0` is the 1.35 API the stacks pin).

Both checks refuse unknown fields, as the API server's strict field validation does. Built-in kinds: every field
name at every depth, primitive types (`int`, `float`, `bool`, `str`; `object` for IntOrString, Quantity and
RawExtension accepts any value), lists, maps and the fields the client marks required. The client's models
carry no enums and no formats, so neither is checked for built-in kinds. CEL rules (`x-kubernetes-validations`)
of CRDs are not evaluated; the tests assert the ones the platform depends on explicitly.

Importing the client's models costs about 0.3 s, so the schema of each kind is derived from them once (lazily)
and cached like the provider schemas (`mlp.provider_schema`: `kubernetes-client-<version>.json`).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from mlplatform.mlp.planner import Plan, PlannedResource
from mlplatform.mlp.provider_schema import DerivedSchemas, Schema, store
from mlplatform.mlp.schema_check import PLACEHOLDERS, Checker, Finding, join, unknown_property

CRD_DIR = Path(__file__).parent / "data" / "crds"

# Pulumi resources that are not Kubernetes objects (Helm releases are charts, checked by their values).
NOT_OBJECTS = {"kubernetes:helm.sh/v3:Release"}

BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}

CRD_GROUPS_UNDER_K8S_IO = {"gateway.networking.k8s.io"}
"""API groups named under k8s.io that the API server does not serve itself: their kinds come from CRDs (the
Gateway API is a Kubernetes SIG project installed as CRDs), so they are checked against `mlp/data/crds`."""


def is_builtin(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    if group in CRD_GROUPS_UNDER_K8S_IO:
        return False
    return group in BUILTIN_GROUPS or group.endswith(".k8s.io")


def is_object(resource: PlannedResource) -> bool:
    """Whether a planned resource is a Kubernetes object the API server validates (not a Helm release or another
    resource of the provider's own, which carry no apiVersion and kind)."""
    return (
        resource.custom
        and resource.type.startswith("kubernetes:")
        and resource.type not in NOT_OBJECTS
        and "apiVersion" in resource.inputs
        and "kind" in resource.inputs
    )


def object_of(resource: PlannedResource) -> dict[str, Any]:
    """The Kubernetes object a planned resource submits (inputs minus Pulumi-only fields)."""
    return {k: v for k, v in resource.inputs.items() if not k.startswith("__")}


# --- custom resources -----------------------------------------------------------------------------------------


@cache
def _crd_files() -> dict[tuple[str, str], tuple[Path, str]]:
    """(apiVersion, kind) -> the stored CRD file and the version's key in it."""
    out: dict[tuple[str, str], tuple[Path, str]] = {}
    for path in sorted(CRD_DIR.glob("*/*.json")):
        crd = json.loads(path.read_text())
        for version in crd["versions"]:
            out[(f"{crd['group']}/{version}", crd["kind"])] = (path, version)
    return out


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The strict openAPIV3Schema of one stored CRD version, or None."""
    found = _crd_files().get((api_version, kind))
    if found is None:
        return None
    path, version = found
    schema: dict[str, Any] = json.loads(path.read_text())["versions"][version]
    return _strict(schema)


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict openAPIV3Schema of every stored CRD version."""
    return {key: schema for key in _crd_files() if (schema := crd_schema(*key)) is not None}


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


@cache
def _crd_validator(api_version: str, kind: str) -> Any:
    import jsonschema

    schema = crd_schema(api_version, kind)
    return None if schema is None else jsonschema.Draft7Validator(schema)


def _schema_errors(validator: Any, obj: Any) -> Iterator[Any]:
    """jsonschema's errors, minus those about a plan placeholder (a secret or unknown value's shape is unknown)."""
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        if isinstance(error.instance, str) and error.instance in PLACEHOLDERS:
            continue
        yield error


def validate_custom_resource(obj: dict[str, Any]) -> list[str]:
    """Errors of a custom resource against its CRD, as `<path>: <jsonschema's message>`."""
    validator = _crd_validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    if validator is None:
        return [f"no stored CRD schema for {obj.get('apiVersion', '')} {obj.get('kind', '')}"]
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in _schema_errors(validator, obj)
    ]


def custom_resource_findings(obj: dict[str, Any], root: str = "inputs") -> list[Finding]:
    """Errors of a custom resource against its CRD, each with its property path under `root`."""
    validator = _crd_validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    if validator is None:
        stored = ", ".join(sorted({path.parent.name for path, _ in _crd_files().values()}))
        return [
            Finding(
                root,
                f"no stored CRD schema for {obj.get('apiVersion', '')} {obj.get('kind', '')} "
                f"(stored: {stored}); add the upstream CRD's openAPIV3Schema under mlp/data/crds",
            )
        ]
    return jsonschema_findings(validator, obj, root)


def jsonschema_findings(validator: Any, instance: Any, root: str) -> list[Finding]:
    """jsonschema errors as findings: the path under `root`, unknown properties with the allowed names."""
    findings: list[Finding] = []
    for error in _schema_errors(validator, instance):
        path = root
        for part in error.absolute_path:
            path = join(path, part)
        if error.validator == "additionalProperties" and error.validator_value is False:
            allowed = sorted(error.schema.get("properties", {}))
            patterns = list(error.schema.get("patternProperties", {}))
            for key in sorted(error.instance):
                if key not in allowed and not any(re.search(p, key) for p in patterns):
                    findings.append(Finding(join(path, key), unknown_property(key, allowed)))
            continue
        findings.append(Finding(path, error.message))
    return findings


# --- built-in kinds -------------------------------------------------------------------------------------------

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(([^,]+), (.+)\)$")
_PRIMITIVES: dict[str, Schema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "object": {},
}
_REQUIRED = re.compile(r"client_side_validation and (\w+) is None")


def model_name(api_version: str, kind: str) -> str:
    """The client's model class of a kind: `apps/v1` `Deployment` -> `V1Deployment`."""
    return f"{api_version.split('/')[-1].capitalize()}{kind}"


def client_schemas() -> DerivedSchemas:
    """The schemas of the client's models, derived once per client version and cached."""
    return store("kubernetes-client", _client_version(), _derive_model)


def _derive_model(name: str, definitions: dict[str, Schema]) -> Schema | None:
    import kubernetes.client as k8s_client

    if getattr(k8s_client, name, None) is None:
        return None
    return _model_schema(k8s_client, name, definitions)


def _model_schema(k8s_client: Any, type_name: str, definitions: dict[str, Schema]) -> Schema:
    if type_name in _PRIMITIVES:
        return _PRIMITIVES[type_name]
    if m := _LIST.match(type_name):
        return {"type": "array", "items": _model_schema(k8s_client, m.group(1), definitions)}
    if m := _DICT.match(type_name):
        return {"type": "object", "additionalProperties": _model_schema(k8s_client, m.group(2), definitions)}
    model = getattr(k8s_client, type_name, None)
    if model is None:
        return {"x-unchecked": type_name}
    if type_name not in definitions:
        definitions[type_name] = {}  # recursive models (JSONSchemaProps) refer to themselves
        # The models raise on None for the fields the API requires; their setters say which.
        required = set(_REQUIRED.findall(Path(inspect.getfile(model)).read_text()))
        properties = {
            json_key: _model_schema(k8s_client, model.openapi_types[attr], definitions)
            for attr, json_key in model.attribute_map.items()
        }
        definitions[type_name] = {
            "type": "object",
            "properties": dict(sorted(properties.items())),
            "required": sorted(model.attribute_map[a] for a in required if a in model.attribute_map),
            "additionalProperties": False,
        }
    return {"$ref": "#/definitions/" + type_name}


def builtin_findings(obj: dict[str, Any], root: str = "inputs") -> list[Finding]:
    """Errors of a built-in kind against the client's model of its apiVersion and kind."""
    schemas = client_schemas()
    name = model_name(obj.get("apiVersion", ""), obj.get("kind", ""))
    schema = schemas.get(name)
    if schema is None:
        what = f"{obj.get('apiVersion')} {obj.get('kind')}"
        return [Finding(root, f"no model for {what} in the Kubernetes client {_client_version()}")]
    checker = Checker(schemas.definitions)
    checker.check(obj, schema, root)
    return checker.errors


@cache
def _client_version() -> str:
    return importlib.metadata.version("kubernetes")


def validate_builtin(obj: dict[str, Any]) -> list[str]:
    """Errors of a built-in kind, as `<Kind>.<path>: <message>`."""
    return [str(f) for f in builtin_findings(obj, root=obj.get("kind", "object"))]


def object_findings(resource: PlannedResource, root: str = "inputs") -> list[Finding]:
    obj = object_of(resource)
    if is_builtin(obj.get("apiVersion", "")):
        return builtin_findings(obj, root)
    return custom_resource_findings(obj, root)


def validate_plan(plan: Plan) -> dict[str, list[str]]:
    """Errors per Kubernetes resource of a plan (empty when everything validates)."""
    problems: dict[str, list[str]] = {}
    for r in plan.resources:
        if not is_object(r):
            continue
        obj = object_of(r)
        errors = validate_builtin(obj) if is_builtin(obj.get("apiVersion", "")) else validate_custom_resource(obj)
        if errors:
            problems[r.name] = errors
    client_schemas().save()
    return problems


__all__ = [
    "CRD_DIR",
    "NOT_OBJECTS",
    "builtin_findings",
    "crd_schemas",
    "custom_resource_findings",
    "is_builtin",
    "is_object",
    "object_findings",
    "object_of",
    "validate_builtin",
    "validate_custom_resource",
    "validate_plan",
]
