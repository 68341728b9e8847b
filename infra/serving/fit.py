"""Does a vLLM server fit its GPUs? Weights plus the KV cache of one full-length sequence against the GPU memory
vLLM may use, and the number of full-length sequences that fit at once (vLLM's concurrency at max_model_len).

The approximation, stated plainly: weights (parameters x bytes of the dtype) + KV cache (2 x layers x KV heads x
head_dim x bytes of the KV dtype x tokens) must fit within gpu_memory_utilization x the GPU memory of the
replica's GPUs. vLLM's own accounting also reserves activation memory (a profiling forward pass), CUDA graphs and
the non-torch memory of the CUDA context and NCCL, which this check does not count: it is a lower bound on what a
server needs, so a server it refuses cannot start, and a server it passes may still run short at the margin.

Pure: `fit` takes numbers; `serving_fit` reads the platform config, the model catalog and the GPU catalog.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.catalog import models as model_catalog

if TYPE_CHECKING:
    from mlplatform.infra.config import PlatformConfig, VllmModelConfig

GIB = 1024**3
APPROXIMATION = (
    "weights + KV cache must fit within gpu_memory_utilization x GPU memory; vLLM also needs activation and "
    "CUDA-graph memory, not counted here, so this is a lower bound"
)
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
_KV_DTYPE_BYTES = {"bfloat16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


def weight_bytes_per_parameter(dtype: str) -> int:
    """vLLM's --dtype auto loads float32, float16 and bfloat16 checkpoints alike in 16 bits (vllm/config/model.py
    `_resolve_auto_dtype`: "Downcast for float32 models")."""
    return _DTYPE_BYTES.get(dtype, 2)


def kv_bytes_per_value(kv_cache_dtype: str, dtype: str) -> int:
    """--kv-cache-dtype auto keeps the KV cache in the weights' dtype."""
    return _KV_DTYPE_BYTES.get(kv_cache_dtype, weight_bytes_per_parameter(dtype))


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    """A model's figures, each None when unknown, and where each known one comes from."""

    parameters_b: float | None = None
    num_layers: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    context_length: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    catalog_id: str | None = None
    """The catalog entry the figures not set in the stack file come from."""

    def missing(self) -> tuple[str, ...]:
        return tuple(f for f in model_catalog.FIGURES if getattr(self, f) is None)


@dataclass(frozen=True, kw_only=True)
class Gpus:
    """The GPUs one replica gets: the node type with the least GPU memory the pool may launch for it."""

    instance_type: str
    gpu_memory_gib: float
    count: int

    def describe(self) -> str:
        plural = "s" if self.count > 1 else ""
        return f"{self.count} x {self.gpu_memory_gib:g} GiB GPU{plural} of {self.instance_type}"


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """One vLLM server's memory verdict. Figures in GiB (2^30 bytes); None where the figures were not enough."""

    name: str
    model: str
    catalog_id: str | None
    pool: str
    tensor_parallel: int
    max_model_len: int
    gpu_memory_utilization: float
    gpus: Gpus | None
    context_length: int | None
    weights_gib: float | None = None
    kv_per_sequence_gib: float | None = None
    available_gib: float | None = None
    full_sequences: int | None = None
    """Sequences of max_model_len tokens whose KV cache fits beside the weights (vLLM's concurrency at that length)."""
    missing: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    """(key under vllm.models.<name>, message) for each problem."""

    @property
    def checked(self) -> bool:
        return self.full_sequences is not None

    @property
    def needed_gib(self) -> float | None:
        if self.weights_gib is None or self.kv_per_sequence_gib is None:
            return None
        return self.weights_gib + self.kv_per_sequence_gib

    def line(self) -> str:
        """One line for `mlp plan`."""
        head = f"vllm {self.name} ({self.catalog_id or self.model})"
        if self.problems:
            return f"{head}: does not fit: " + "; ".join(msg for _, msg in self.problems)
        if self.gpus is None:
            return (
                f"{head}: not checked: pool {self.pool!r} has no NVIDIA node type with {self.tensor_parallel}+ GPUs "
                "in the GPU catalog"
            )
        if not self.checked:
            return (
                f"{head}: not checked: no figures for {', '.join(self.missing)} (not in the model catalog); set "
                f"vllm.models.{self.name}.model_facts"
            )
        assert self.weights_gib is not None and self.kv_per_sequence_gib is not None
        assert self.available_gib is not None
        return (
            f"{head}: {self.full_sequences} full-length {self.max_model_len}-token sequence(s) at once; "
            f"{self.gpus.describe()} at {self.gpu_memory_utilization:g} = {self.available_gib:.1f} GiB, weights "
            f"{self.weights_gib:.1f} GiB, KV cache {self.kv_per_sequence_gib:.2f} GiB per sequence (lower bound: "
            "activation and CUDA-graph memory not counted)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "catalog_id": self.catalog_id,
            "pool": self.pool,
            "tensor_parallel": self.tensor_parallel,
            "instance_type": self.gpus.instance_type if self.gpus else None,
            "gpus": self.gpus.count if self.gpus else None,
            "gpu_memory_gib": self.gpus.gpu_memory_gib if self.gpus else None,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "max_model_len": self.max_model_len,
            "context_length": self.context_length,
            "weights_gib": _round(self.weights_gib),
            "kv_cache_per_sequence_gib": _round(self.kv_per_sequence_gib),
            "available_gib": _round(self.available_gib),
            "full_sequences": self.full_sequences,
            "missing": list(self.missing),
            "problems": [{"key": key, "message": msg} for key, msg in self.problems],
            "approximation": APPROXIMATION,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def kv_cache_bytes_per_token(facts: ModelFacts, tensor_parallel: int, kv_bytes: int) -> int:
    """KV cache bytes per token over all GPUs of a replica: K and V per layer, per KV head. vLLM shards the KV heads
    over tensor-parallel ranks and replicates them when there are more ranks than heads (one head per GPU)."""
    assert facts.num_layers and facts.num_kv_heads and facts.head_dim
    heads_per_gpu = max(1, facts.num_kv_heads // tensor_parallel)
    return 2 * facts.num_layers * heads_per_gpu * tensor_parallel * facts.head_dim * kv_bytes


def fit(
    name: str,
    model: str,
    facts: ModelFacts,
    *,
    pool: str,
    tensor_parallel: int,
    gpus: Gpus | None,
    max_model_len: int,
    gpu_memory_utilization: float,
    dtype: str = "auto",
    kv_cache_dtype: str = "auto",
) -> FitReport:
    """The memory verdict of one vLLM server (see the module docstring for what is and is not counted)."""
    report = FitReport(
        name=name,
        model=model,
        catalog_id=facts.catalog_id,
        pool=pool,
        tensor_parallel=tensor_parallel,
        max_model_len=max_model_len,
        gpu_memory_utilization=gpu_memory_utilization,
        gpus=gpus,
        context_length=facts.context_length,
        missing=facts.missing(),
    )
    if facts.context_length is not None and max_model_len > facts.context_length:
        source = facts.sources.get("context_length", "model_facts.context_length")
        message = (
            f"{max_model_len} tokens exceed the model's context length of {facts.context_length} tokens "
            f"(max_position_embeddings; {source}): vLLM refuses it; lower max_model_len, or set "
            "model_facts.context_length if the model's config extends it (rope scaling)"
        )
        # The memory figures of an impossible length would only add noise.
        return replace(report, problems=(("max_model_len", message),))
    if gpus is None or facts.missing():
        return report

    assert facts.parameters_b is not None
    weight_bytes = weight_bytes_per_parameter(dtype)
    weights = facts.parameters_b * 1e9 * weight_bytes / GIB
    per_token = kv_cache_bytes_per_token(facts, gpus.count, kv_bytes_per_value(kv_cache_dtype, dtype))
    kv_per_sequence = per_token * max_model_len / GIB
    available = gpus.count * gpus.gpu_memory_gib * gpu_memory_utilization
    full_sequences = max(0, math.floor((available - weights) / kv_per_sequence))
    report = replace(
        report,
        weights_gib=weights,
        kv_per_sequence_gib=kv_per_sequence,
        available_gib=available,
        full_sequences=full_sequences,
    )
    if full_sequences >= 1:
        return report
    message = (
        f"needs {weights + kv_per_sequence:.1f} GiB (weights {weights:.1f} GiB: {facts.parameters_b:g}B parameters x "
        f"{weight_bytes} bytes + KV cache of one {max_model_len}-token sequence {kv_per_sequence:.1f} GiB) but "
        f"{gpus.describe()} at gpu_memory_utilization {gpu_memory_utilization:g} gives {available:.1f} GiB; raise "
        "gpus_per_replica (tensor parallel), use a pool with larger GPUs or lower max_model_len (a lower bound: vLLM "
        "also needs activation and CUDA-graph memory)"
    )
    # Weights alone too large: more or larger GPUs are the fix, not a shorter context.
    key = "gpus_per_replica" if weights > available else "max_model_len"
    return replace(report, problems=((key, message),))


def model_facts(model: VllmModelConfig) -> ModelFacts:
    """The catalog's figures for the served model, each overridden by the server's `model_facts` where set."""
    entry = model_catalog.lookup(model.model)
    values: dict[str, Any] = dict(entry.figures) if entry else {}
    sources: dict[str, str] = dict(entry.sources) if entry else {}
    for figure in model_catalog.FIGURES:
        value = getattr(model.model_facts, figure)
        if value is not None:
            values[figure] = value
            sources[figure] = f"model_facts.{figure} in the stack file"
    return ModelFacts(
        parameters_b=values.get("parameters_b"),
        num_layers=_int(values.get("num_layers")),
        num_kv_heads=_int(values.get("num_kv_heads")),
        head_dim=_int(values.get("head_dim")),
        context_length=_int(values.get("context_length")),
        sources=sources,
        catalog_id=entry.hub_id if entry else None,
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def replica_gpus(cfg: PlatformConfig, pool_name: str, count: int) -> Gpus | None:
    """The GPUs a replica of `count` GPUs may get in a pool: of the NVIDIA node types the pool can launch with at
    least that many GPUs, the one with the least memory per GPU (Karpenter may pick any of them)."""
    pool = cfg.gpu_pools.get(pool_name)
    if pool is None:
        return None
    types = [s for t in pool.instance_types if (s := gpu_catalog.gpu_instance(t))]
    for family in pool.instance_families:
        types += gpu_catalog.instances_of_family(family)
    fitting = [s for s in types if s.is_nvidia and s.gpu_count >= count and s.gpu_memory_gib > 0]
    if not fitting:
        return None
    smallest = min(fitting, key=lambda s: s.gpu_memory_gib)  # ties: the first the pool lists
    return Gpus(instance_type=smallest.instance_type, gpu_memory_gib=smallest.gpu_memory_gib, count=count)


def serving_fit(cfg: PlatformConfig) -> list[FitReport]:
    """One report per vLLM server of the stack, in config order."""
    return [
        fit(
            name,
            model.model,
            model_facts(model),
            pool=model.pool,
            tensor_parallel=model.gpus_per_replica,
            gpus=replica_gpus(cfg, model.pool, model.gpus_per_replica),
            max_model_len=model.max_model_len,
            gpu_memory_utilization=model.gpu_memory_utilization,
            dtype=model.dtype,
            kv_cache_dtype=model.kv_cache_dtype,
        )
        for name, model in cfg.vllm.models.items()
    ]
