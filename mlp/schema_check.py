"""Check a value against a JSON-schema-like structure (as `mlp.provider_schema` derives them), with messages that
name the property path and what the schema allows.

Supported: `$ref` into `definitions`, `type` (string, number, integer, boolean, array, object), `properties`,
`required`, `additionalProperties` (false, or the schema of a map's values), `items`, `enum`, `const`, `anyOf`,
`deprecationMessage` (a warning). Plan placeholders (`[secret]`, `[unknown]`) are accepted anywhere: the value
behind them is not known offline. `null` counts as not set (Pulumi drops it before the provider sees it).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.mlp.mocks import SECRET, UNKNOWN

Schema = dict[str, Any]
PLACEHOLDERS = frozenset({SECRET, UNKNOWN})
MAX_ALLOWED_LISTED = 40

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Finding:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Leniency:
    """Values a provider accepts although their JSON type is not the schema's (see `mlp.schema_gate.LENIENCIES`)."""

    bool_strings: bool = False
    """"true"/"false" for a boolean."""
    number_strings: bool = False
    """A decimal string for an integer or number."""
    decoded_strings: bool = False
    """An object or array for a string: a JSON string the planner decoded for display (provider inputs)."""


STRICT = Leniency()


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER.match(key) else f'{path}["{key}"]'


def unknown_property(key: str, allowed: list[str]) -> str:
    """`unknown property; allowed: a, b, c (did you mean b?)`."""
    if not allowed:
        return "unknown property; the schema declares no properties here"
    listed = ", ".join(allowed[:MAX_ALLOWED_LISTED])
    if len(allowed) > MAX_ALLOWED_LISTED:
        listed += f", ... ({len(allowed) - MAX_ALLOWED_LISTED} more)"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not close:  # a case slip (`minsize`) or a snake_case name the SDK did not translate
        folded = {a.lower().replace("_", ""): a for a in allowed}
        same = folded.get(key.lower().replace("_", ""))
        close = [same] if same else []
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown property; allowed: {listed}{hint}"


def describe(schema: Schema, definitions: Mapping[str, Schema]) -> str:
    """What a schema allows, in a few words: `integer`, `array of string`, `one of: "A", "B"`, `object (X)`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"object ({name.rsplit('.', 1)[-1].removesuffix('Args')})"
    if "const" in schema:
        return f"exactly {_show(schema['const'])}"
    if "enum" in schema:
        return "one of: " + ", ".join(_show(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(describe(s, definitions) for s in schema["anyOf"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {describe(schema.get('items', {}), definitions)}"
    if kind == "object" and "properties" not in schema and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {describe(schema['additionalProperties'], definitions)}"
    return str(kind) if kind else "any value"


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _got(value: Any) -> str:
    kinds = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
    kind = kinds.get(type(value), type(value).__name__)
    if isinstance(value, list | dict):
        return kind
    shown = _show(value)
    return f"{kind} {shown if len(shown) <= 60 else shown[:57] + '...'}"


class Checker:
    """Walks values against schemas sharing one `definitions` table; collects errors and deprecation warnings."""

    def __init__(self, definitions: Mapping[str, Schema], leniency: Leniency = STRICT) -> None:
        self.definitions = definitions
        self.leniency = leniency
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self.lenient: Counter[str] = Counter()
        """How often each leniency let a value through (`bool_strings`, `number_strings`)."""

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            schema = self.definitions.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return schema

    def check(self, value: Any, schema: Schema, path: str) -> None:
        if value is None or (isinstance(value, str) and value in PLACEHOLDERS):
            return
        message = schema.get("deprecationMessage")
        if message:
            self.warnings.append(Finding(path, f"deprecated: {message}"))
        ref = schema
        schema = self.resolve(schema)
        if "anyOf" in schema:
            self._any_of(value, schema, path)
            return
        if "const" in schema and value != schema["const"] and not self._lenient_equal(value, schema["const"]):
            self.errors.append(Finding(path, f"must be {_show(schema['const'])}, got {_got(value)}"))
            return
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(_show(v) for v in schema["enum"])
            self.errors.append(Finding(path, f"{_show(value)} is not allowed; allowed: {allowed}"))
            return
        kind = schema.get("type")
        if kind == "object":
            self._object(value, schema, ref, path)
        elif kind == "array":
            if not isinstance(value, list):
                self.errors.append(Finding(path, f"expected {describe(ref, self.definitions)}, got {_got(value)}"))
                return
            items = schema.get("items", {})
            for i, item in enumerate(value):
                self.check(item, items, join(path, i))
        elif kind is not None and not self._scalar_ok(value, kind):
            self.errors.append(Finding(path, f"expected {describe(schema, self.definitions)}, got {_got(value)}"))

    def _scalar_ok(self, value: Any, kind: str) -> bool:
        if kind == "string":
            if isinstance(value, str):
                return True
            if self.leniency.decoded_strings and isinstance(value, dict | list):
                self.lenient["decoded_strings"] += 1
                return True
            return False
        if kind == "boolean":
            if isinstance(value, bool):
                return True
            if self.leniency.bool_strings and value in ("true", "false"):
                self.lenient["bool_strings"] += 1
                return True
            return False
        if kind in ("integer", "number"):
            if isinstance(value, bool):
                return False
            if kind == "integer" and isinstance(value, int | float) and float(value).is_integer():
                return True
            if kind == "number" and isinstance(value, int | float):
                return True
            pattern = _INTEGER if kind == "integer" else _NUMBER
            if self.leniency.number_strings and isinstance(value, str) and pattern.match(value):
                self.lenient["number_strings"] += 1
                return True
            return False
        return True

    def _lenient_equal(self, value: Any, const: Any) -> bool:
        return isinstance(const, bool) and self.leniency.bool_strings and value == str(const).lower()

    def _object(self, value: Any, schema: Schema, ref: Schema, path: str) -> None:
        if not isinstance(value, dict):
            self.errors.append(Finding(path, f"expected {describe(ref, self.definitions)}, got {_got(value)}"))
            return
        properties: dict[str, Schema] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                self.check(item, properties[key], join(path, key))
            elif isinstance(extra, dict):
                self.check(item, extra, join(path, key))
            elif extra is False:
                self.errors.append(Finding(join(path, key), unknown_property(key, sorted(properties))))
        for name in schema.get("required", []):
            if value.get(name) is None:
                wanted = describe(properties.get(name, {}), self.definitions)
                self.errors.append(Finding(join(path, name), f"required property missing (expected {wanted})"))

    def _any_of(self, value: Any, schema: Schema, path: str) -> None:
        trials: list[tuple[Schema, Checker]] = []
        for option in schema["anyOf"]:
            trial = Checker(self.definitions, self.leniency)
            trial.check(value, option, path)
            if not trial.errors:
                self.warnings += trial.warnings
                self.lenient += trial.lenient
                return
            trials.append((option, trial))
        # When one option has the value's own JSON type (a policy document given as an object, not a string),
        # its errors say what is wrong inside; otherwise say which types are allowed.
        same_kind = [t for option, t in trials if _kind_of(self.resolve(option)) == _kind_of_value(value)]
        if len(same_kind) == 1:
            self.errors += same_kind[0].errors
            return
        self.errors.append(Finding(path, f"expected {describe(schema, self.definitions)}, got {_got(value)}"))


def _kind_of(schema: Schema) -> str | None:
    kind = schema.get("type")
    return "number" if kind == "integer" else kind if isinstance(kind, str) else None


def _kind_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
