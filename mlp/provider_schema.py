"""Input schemas of Pulumi resource types, derived from the pinned provider SDKs, cached per SDK version.

The pulumi-aws package schema is not published with the SDK (it is generated at build time) and
pulumi-kubernetes' is over 4 MiB, but the generated Python SDKs carry the same facts: each resource's `*Args`
class (decorated with `@pulumi.input_type`) names every input with its engine name (`@pulumi.getter(name=...)`,
camelCase), its type annotation (`pulumi.Input[str]`, `Optional[pulumi.Input[Sequence[pulumi.Input['XArgs']]]]`,
enums as `str, Enum` classes, consts as `Literal[...]`), whether it is required (the annotation admits no
`None`) and its deprecation message (`@_utilities.deprecated(...)`). This module turns one resource type into a
JSON-schema-like structure:

    {"type": "object", "properties": {"scalingConfig": {"$ref": "#/definitions/eks.NodeGroupScalingConfigArgs"}},
     "required": [...], "additionalProperties": false, "deprecationMessage": "..."}

with nested input types under `definitions` (shared between types; some are recursive). Types: string, number,
integer, boolean, array (`items`), object (`properties`, `required`, `additionalProperties: false`), map (an
object with `additionalProperties: <value schema>`), `enum` (closed enums and literals), `x-known-values` (an
open enum, `Union[str, SomeEnum]`: any string is valid) and `{}` (anything: `Any`, assets, archives).

Deriving imports the SDK module and evaluates annotations, so it is done lazily (only for the types a plan
uses) and cached in `$XDG_CACHE_HOME/mlp/provider-schemas/<package>-<version>.json` (default `~/.cache`): one
file per installed SDK version, so a new lock file (a new version) starts a new file; the file accumulates types
across runs. When the cache directory is not writable the schemas stay in memory for the process.
"""

from __future__ import annotations

import collections.abc
import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import os
import re
import sys
import tempfile
import time
import types
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import pulumi

Schema = dict[str, Any]
Deriver = Callable[[str, dict[str, Schema]], Schema | None]
"""Derives the schema of one key (a type token), adding the nested types it refers to into `definitions`;
None when the SDK has no such type."""

CACHE_FORMAT = 1
"""Bumped whenever the derived structure changes: a cache file of another format is ignored and rewritten. (A
change to the deriving code is noticed without it: the cache file records a digest of that code.)"""

PROVIDER_PREFIX = "pulumi:providers:"


def cache_dir() -> Path:
    """Where derived schemas are kept: `$XDG_CACHE_HOME/mlp/provider-schemas`, else `~/.cache/...`."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "mlp" / "provider-schemas"


# -- the cache --------------------------------------------------------------------------------------------------


class DerivedSchemas:
    """The schemas derived from one installed SDK at one version, by key, backed by one cache file."""

    def __init__(self, name: str, version: str, derive: Deriver, directory: Path | None = None) -> None:
        self.name = name
        self.version = version
        self.path = (directory or cache_dir()) / f"{name}-{version}.json"
        self._derive = derive
        self.fingerprint = _code_digest(derive)
        self.types: dict[str, Schema | None] = {}
        self.definitions: dict[str, Schema] = {}
        self._loaded = False
        self._new: set[str] = set()
        self.derived = 0
        """Types derived (not found in the cache) by this process."""
        self.derive_seconds = 0.0
        self.writable = True

    def get(self, key: str) -> Schema | None:
        self._load()
        if key not in self.types:
            start = time.perf_counter()
            self.types[key] = self._derive(key, self.definitions)
            self.derive_seconds += time.perf_counter() - start
            self.derived += 1
            self._new.add(key)
        return self.types[key]

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        stored = self._read()
        self.types.update(stored.get("types", {}))
        self.definitions.update(stored.get("definitions", {}))

    def _read(self) -> dict[str, Any]:
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        expected = (CACHE_FORMAT, self.version, self.fingerprint)
        if (
            not isinstance(stored, dict)
            or (stored.get("format"), stored.get("version"), stored.get("code")) != expected
        ):
            return {}
        return stored

    def save(self) -> None:
        """Write what this process derived (merged with what another process may have added meanwhile)."""
        if not self._new or not self.writable:
            return
        on_disk = self._read()
        body = {
            "format": CACHE_FORMAT,
            "sdk": self.name,
            "version": self.version,
            "code": self.fingerprint,
            "generated_by": "mlp.provider_schema (derived from the installed SDK; safe to delete)",
            "types": dict(sorted({**on_disk.get("types", {}), **self.types}.items())),
            "definitions": dict(sorted({**on_disk.get("definitions", {}), **self.definitions}.items())),
        }
        tmp: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            tmp = Path(name)
            with os.fdopen(fd, "w") as out:
                json.dump(body, out, separators=(",", ":"), sort_keys=True)
            tmp.replace(self.path)  # atomic: a concurrent reader sees the old file or the new one
        except OSError:
            self.writable = False  # keep them in memory for this process
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            return
        self._new.clear()


def _code_digest(derive: Deriver) -> str:
    """A digest of the code that derives the schemas (this module and the deriver's): a cache written by other
    code is not trusted."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    with contextlib.suppress(OSError, TypeError):
        digest.update(Path(inspect.getfile(derive)).read_bytes())
    return digest.hexdigest()[:16]


_STORES: dict[tuple[str, str, str], DerivedSchemas] = {}


def store(name: str, version: str, derive: Deriver, directory: Path | None = None) -> DerivedSchemas:
    """The process-wide store of one SDK version (plans of several stacks share it)."""
    directory = directory or cache_dir()
    key = (name, version, str(directory))
    if key not in _STORES:
        _STORES[key] = DerivedSchemas(name, version, derive, directory)
    return _STORES[key]


def derive_totals() -> tuple[int, float]:
    """Types derived and seconds spent deriving them, over every store of this process."""
    return sum(s.derived for s in _STORES.values()), sum(s.derive_seconds for s in _STORES.values())


def forget_stores() -> None:
    """Drop the in-memory stores (the next lookup reads the cache file again): for benchmarks and tests."""
    _STORES.clear()


# -- Pulumi SDKs ------------------------------------------------------------------------------------------------


def package_of(token: str) -> str:
    """`aws:eks/nodeGroup:NodeGroup` -> `aws`; `pulumi:providers:aws` -> `aws`."""
    if token.startswith(PROVIDER_PREFIX):
        return token[len(PROVIDER_PREFIX) :]
    return token.split(":", 1)[0]


def sdk_module(package: str) -> str:
    return "pulumi_" + package.replace("-", "_")


@functools.cache
def sdk_version(package: str) -> str | None:
    """The installed version of a package's Python SDK (`pulumi-aws`), or None when it is not installed."""
    try:
        return importlib.metadata.version("pulumi-" + package)
    except importlib.metadata.PackageNotFoundError:
        return None


class ProviderSchemas:
    """Input schemas of resource types by type token, across the installed provider SDKs."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._stores: dict[str, DerivedSchemas | None] = {}

    def store_for(self, package: str) -> DerivedSchemas | None:
        if package not in self._stores:
            version = sdk_version(package)
            self._stores[package] = store(package, version, derive_resource_schema, self.directory) if version else None
        return self._stores[package]

    def schema(self, token: str) -> Schema | None:
        """The input schema of a resource (or provider) type, or None when no installed SDK declares it."""
        found = self.store_for(package_of(token))
        return found.get(token) if found else None

    def definitions(self, token: str) -> dict[str, Schema]:
        found = self.store_for(package_of(token))
        return found.definitions if found else {}

    def save(self) -> None:
        for found in self._stores.values():
            if found:
                found.save()


_REGISTRY: dict[str, dict[str, tuple[str, str]]] = {}


def resource_classes(package: str) -> dict[str, tuple[str, str]]:
    """Type token -> (Python module, class name), from the resource-module registry every generated SDK declares
    in its `__init__.py` (`_utilities.register(resource_modules=...)`)."""
    if package not in _REGISTRY:
        module = importlib.import_module(sdk_module(package))
        source = Path(module.__file__ or "").read_text()
        found = re.search(r'resource_modules="""(.*?)"""', source, re.DOTALL)
        table: dict[str, tuple[str, str]] = {}
        for entry in json.loads(found.group(1)) if found else []:
            for token, class_name in entry["classes"].items():
                table[token] = (entry["fqn"], class_name)
        table[PROVIDER_PREFIX + package] = (sdk_module(package), "Provider")
        _REGISTRY[package] = table
    return _REGISTRY[package]


def derive_resource_schema(token: str, definitions: dict[str, Schema]) -> Schema | None:
    """The input schema of one resource type, from its `*Args` class (see the module docstring)."""
    located = resource_classes(package_of(token)).get(token)
    if located is None:
        return None
    module_name, class_name = located
    resource = getattr(importlib.import_module(module_name), class_name, None)
    if resource is None:
        return None
    # The Args class defined in the resource's own module: `<Class>Args`, or `<Class>InitArgs` where a nested
    # input type already has that name (`s3.BucketVersioningArgs` is the `versioning` block of `s3.Bucket`).
    module = sys.modules[resource.__module__]
    candidates = [getattr(module, class_name + suffix, None) for suffix in ("InitArgs", "Args")]
    args = next((c for c in candidates if _is_input_type(c) and c.__module__ == module.__name__), None)
    if args is None:
        return None
    schema = _Deriver(module_name.split(".")[0], definitions).object_schema(args)
    message = _resource_deprecation(resource, class_name)
    if message:
        schema["deprecationMessage"] = message
    return schema


def _resource_deprecation(cls: Any, class_name: str) -> str | None:
    """A deprecated resource logs `<Class> is deprecated: <message>` when created; the generated code says so."""
    try:
        source = Path(inspect.getfile(cls)).read_text()
    except (OSError, TypeError):
        return None
    found = re.search(r'pulumi\.log\.warn\("""' + re.escape(class_name) + r' is deprecated: (.*?)"""\)', source, re.S)
    return found.group(1) if found else None


def _deprecation(fn: Any) -> str | None:
    """The message of `@_utilities.deprecated(message)` / `@pulumi.deprecated(message)` on a getter."""
    if "_pulumi_deprecated_callable" not in getattr(fn, "__dict__", {}):
        return None
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False))
    cell = cells.get("message")
    message = cell.cell_contents if cell is not None else None
    return message if isinstance(message, str) else "deprecated"


_NONE = type(None)


class _Deriver:
    """Turns annotations of generated input classes into schemas, adding each nested class once to `definitions`."""

    def __init__(self, root_module: str, definitions: dict[str, Schema]) -> None:
        self.root = root_module + "."
        self.definitions = definitions

    def object_schema(self, cls: type) -> Schema:
        """A `@pulumi.input_type` class as an object schema: engine names, required names, deprecations."""
        globalns: dict[str, Any] = {}
        for base in reversed(cls.__mro__):
            module = sys.modules.get(base.__module__)
            if module is not None:
                globalns.update(vars(module))
        localns = {"Output": pulumi.Output, "T": _NONE}
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                getter = attribute.fget if isinstance(attribute, property) else None
                name = getattr(getter, "_pulumi_name", None)
                if getter is None or not isinstance(name, str):
                    continue
                try:
                    hint = typing.get_type_hints(getter, globalns=globalns, localns=localns).get("return", Any)
                except (NameError, TypeError, AttributeError) as exc:  # an annotation this Python cannot evaluate
                    properties[name] = {"x-unchecked": f"{type(exc).__name__}: {exc}"}
                    continue
                schema = self.convert(hint)
                message = _deprecation(getter)
                if message:
                    schema = {**schema, "deprecationMessage": message}
                properties[name] = schema
                if _NONE not in _flatten(hint):
                    required.append(name)
        return {
            "type": "object",
            "properties": dict(sorted(properties.items())),
            "required": sorted(required),
            "additionalProperties": False,
        }

    def convert(self, hint: Any) -> Schema:
        members = _members(hint)
        input_types = [m for m in members if _is_input_type(m)]
        if input_types:  # `Union['XArgs', 'XArgsDict']` and `InputType[X]` (X or a plain mapping): the class rules
            members = [m for m in members if m in input_types or not (_is_mapping(m) or typing.is_typeddict(m))]
        if not members:
            return {}
        if len(members) == 1:
            return self._one(members[0])
        enums = [m for m in members if _is_enum(m)]
        if str in members and len(enums) + 1 == len(members):  # an open enum: any string, some values named
            known = sorted({str(item.value) for e in enums for item in e})
            return {"type": "string", "x-known-values": known}
        if all(_is_asset(m) for m in members):
            return {"x-asset": True}
        return {"anyOf": [self._one(m) for m in members]}

    def _one(self, hint: Any) -> Schema:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is Any or hint is object:
            return {}
        if hint is str:
            return {"type": "string"}
        if hint is bool:
            return {"type": "boolean"}
        if hint is int:
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if origin is typing.Literal:
            return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
        if origin in (list, collections.abc.Sequence):
            return {"type": "array", "items": self.convert(args[0]) if args else {}}
        if origin in (dict, collections.abc.Mapping):
            return {"type": "object", "additionalProperties": self.convert(args[1]) if len(args) == 2 else {}}
        if _is_enum(hint):
            values = [item.value for item in hint]
            kind = "string" if all(isinstance(v, str) for v in values) else "number"
            return {"type": kind, "enum": values}
        if _is_input_type(hint):
            return {"$ref": "#/definitions/" + self._define(hint)}
        if _is_asset(hint):
            return {"x-asset": True}
        return {"x-unchecked": repr(hint)}  # an annotation this deriver does not know: accept any value

    def _define(self, cls: type) -> str:
        name = f"{cls.__module__}.{cls.__qualname__}".removeprefix(self.root).replace("._inputs.", ".")
        if name not in self.definitions:
            self.definitions[name] = {}  # a recursive type refers to itself while being derived
            self.definitions[name] = self.object_schema(cls)
        return name


def _flatten(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if _is_union(hint) else (hint,)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _members(hint: Any) -> list[Any]:
    """The value types a (possibly Input/Optional-wrapped) annotation admits: no None, Awaitable or Output."""
    if not _is_union(hint):
        return [hint]
    out: list[Any] = []
    for member in typing.get_args(hint):
        origin = typing.get_origin(member)
        if member is _NONE or origin is collections.abc.Awaitable or origin is pulumi.Output:
            continue
        if member is pulumi.Output:
            continue
        for inner in _members(member):
            if inner not in out:
                out.append(inner)
    return out


def _is_input_type(hint: Any) -> bool:
    return isinstance(hint, type) and hasattr(hint, "_pulumi_input_type")


def _is_enum(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Enum)


def _is_mapping(hint: Any) -> bool:
    return typing.get_origin(hint) in (dict, collections.abc.Mapping)


def _is_asset(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, (pulumi.Asset, pulumi.Archive))
