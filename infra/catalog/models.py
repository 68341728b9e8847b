"""Model catalog: for the models the shipped stacks serve, the figures that size a vLLM server (parameters,
layers, KV heads, head dimension, context length), each with its source.

Data: `data/models.json` (its notes say where each figure comes from and that none was fetched on this machine).
Lookups are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from mlplatform.infra.catalog import gpu as gpu_catalog

FIGURES = ("parameters_b", "num_layers", "num_kv_heads", "head_dim", "context_length")
"""The figures a model entry carries, named as the stack file's `vllm.models.<name>.model_facts` keys."""


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One catalogued model: its Hugging Face id, figures and where each figure comes from."""

    hub_id: str
    aliases: tuple[str, ...]
    config_json: str
    verified: bool
    figures: dict[str, float]
    sources: dict[str, str]

    def names(self) -> tuple[str, ...]:
        """Lower-case names a model reference may match: the id, its last part, and the aliases."""
        return tuple(n.lower() for n in (self.hub_id, self.hub_id.rsplit("/", 1)[-1], *self.aliases))


@cache
def _catalog() -> tuple[ModelEntry, ...]:
    raw: dict[str, Any] = gpu_catalog._load_json("models.json")["models"]
    entries = []
    for hub_id, spec in raw.items():
        verified = bool(spec["verified"])
        where = "" if verified else f" [{spec['config_json']}]"
        entries.append(
            ModelEntry(
                hub_id=hub_id,
                aliases=tuple(spec.get("aliases", ())),
                config_json=spec["config_json"],
                verified=verified,
                figures={f: spec[f]["value"] for f in FIGURES if f in spec},
                sources={f: spec[f]["source"] + where for f in FIGURES if f in spec},
            )
        )
    return tuple(entries)


def model_ids() -> tuple[str, ...]:
    return tuple(e.hub_id for e in _catalog())


def lookup(model: str) -> ModelEntry | None:
    """The entry of a hub id (`meta-llama/Llama-3.1-8B-Instruct`, any case) or of a lake key prefix whose last part
    names the model (`llm/llama-3.1-8b-instruct`); None when the catalog does not know it."""
    wanted = {model.lower(), model.rstrip("/").rsplit("/", 1)[-1].lower()}
    for entry in _catalog():
        if wanted & set(entry.names()):
            return entry
    return None
