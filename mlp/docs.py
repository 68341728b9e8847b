"""Generate the stack config reference (docs/CONFIG.md) from the schema, so the two cannot drift apart."""

from __future__ import annotations

import json
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mlplatform.infra.config import NAMESPACE, PlatformConfig
from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS

HEADER = f"""# Stack configuration reference

Generated from `infra/config.py` by `mlp schema` (a test keeps this file in sync). Every key lives under the
`{NAMESPACE}:` namespace of a stack file (`stacks/Pulumi.<stack>.yaml`), one key per section, except the region,
which is the standard `aws:region`. Unknown keys are errors. Maps are keyed by stable names (lowercase DNS labels):
adding an entry never renames another.

Required cost tags: {", ".join(f"`{t}`" for t in REQUIRED_COST_TAGS)}. Secrets never go in a stack file: where a
credential is needed, the config names an AWS Secrets Manager secret.
"""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        pattern = next((getattr(m, "pattern", None) for m in meta if getattr(m, "pattern", None)), None)
        escaped = pattern.replace("|", "\\|") if pattern else ""
        return _type_name(base) + (f" matching `{escaped}`" if pattern else "")
    if origin is Literal:
        return " \\| ".join(json.dumps(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        text = " or ".join(_type_name(m) for m in members)
        return text + (" or null" if len(members) < len(get_args(tp)) else "")
    if origin is dict:
        _, value = get_args(tp)
        return f"map of name → {_type_name(value)}"
    if origin is tuple:
        return f"list of {_type_name(get_args(tp)[0])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"`{tp.__name__}`"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _default(info: FieldInfo) -> str:
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        return "**required**"
    if isinstance(value, BaseModel):
        return "see below" if type(value).model_fields else "{}"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        return "`{" + ", ".join(value) + "}`"
    return f"`{json.dumps(value, default=str)}`"


def _models(model: type[BaseModel], seen: list[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.append(model)
    for tp in typing.get_type_hints(model, include_extras=True).values():
        for inner in _walk(tp):
            _models(inner, seen)


def _walk(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in get_args(tp) for m in _walk(arg)]


def config_reference() -> str:
    models: list[type[BaseModel]] = []
    _models(PlatformConfig, models)
    out = [HEADER]
    for model in models:
        hints = typing.get_type_hints(model, include_extras=True)
        title = "Top-level keys (`ml-platform:<key>`)" if model is PlatformConfig else f"`{model.__name__}`"
        out += [f"## {title}", ""]
        # the docstring's first paragraph, on one line
        doc = " ".join(line.strip() for line in (model.__doc__ or "").strip().split("\n\n", 1)[0].splitlines())
        if doc and model is not PlatformConfig:
            out += [doc, ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            key = f"`{info.alias or name}`"  # the provider settings' keys are Pulumi's camelCase aliases
            if model is PlatformConfig and name in ("region", "aws"):
                key = "`aws:region`" if name == "region" else "`aws:<key>`"
            description = (info.description or "").replace("|", "\\|")
            out.append(f"| {key} | {_type_name(hints[name])} | {_default(info)} | {description} |")
        out.append("")
    return "\n".join(out)
