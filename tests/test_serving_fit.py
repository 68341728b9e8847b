"""GPU sanity of vLLM servers in config validation: weights + one full-length sequence's KV cache against the GPU
memory vLLM may use, max_model_len within the model's context length, and the concurrency `mlp plan` reports.

Each case starts from a shipped stack and changes the fields it is about; expected figures are worked by hand here
(GiB = 2^30 bytes; L40S 44.7 GiB and L4 22.35 GiB per GPU as EC2 reports them, from infra/catalog/data)."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra.catalog import models as model_catalog
from mlplatform.infra.config import ConfigError, PlatformConfig, validate_config
from mlplatform.infra.serving.documents import vllm_args
from mlplatform.infra.serving.fit import ModelFacts, kv_cache_bytes_per_token, serving_fit
from mlplatform.infra.specs import vllm_servers
from tests.conftest import run_mlp

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "stacks/Pulumi.test.yaml"
VLLM = "ml-platform:vllm"
GIB = 2**30
L40S_GIB = 44.7
L4_GIB = 22.35
# Llama-3.1-70B-Instruct as the catalog has it: 70.6B parameters, 80 layers, 8 KV heads, head_dim 128.
WEIGHTS_70B = 70.6e9 * 2 / GIB  # bfloat16: 131.50 GiB
KV_70B_PER_TOKEN = 2 * 80 * 8 * 128 * 2  # K and V, per layer, per KV head, 2 bytes: 320 KiB


def _assistant(config: dict[str, Any]) -> dict[str, Any]:
    model: dict[str, Any] = config[VLLM]["models"]["assistant"]
    return model


def _errors(config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, SOURCE)
    return {i.key_path(): i.message for i in info.value.issues}


def _reports(config: dict[str, Any]) -> dict[str, Any]:
    cfg: PlatformConfig = validate_config(config, SOURCE)
    return {r.name: r for r in serving_fit(cfg)}


def _mlp(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_mlp(monkeypatch, capsys, *argv)


def test_70b_on_one_l40s_fails_mlp_validate_with_the_gib_needed_and_available(
    stack_config: Callable[[str], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = stack_config("prod")
    assistant = _assistant(config)
    assistant.update(gpus_per_replica=1, max_model_len=8192, gpu_memory_utilization=0.9)
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    shutil.copy(ROOT / "__main__.py", tmp_path)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": config}))

    code, _, err = _mlp(monkeypatch, capsys, "validate", "prod", "--project-dir", str(tmp_path), "--no-budget")

    assert code == 2
    needed = WEIGHTS_70B + KV_70B_PER_TOKEN * 8192 / GIB  # 131.5 + 2.5
    available = 1 * L40S_GIB * 0.9  # the pool's 1-GPU sizes are all L40S; g6e.xlarge is listed first
    assert (f"{needed:.1f}", f"{available:.1f}") == ("134.0", "40.2")
    # The key path with the stack file and its line, then the figures: needed, each part, available.
    assert re.search(
        r"stacks/Pulumi\.prod\.yaml:\d+: vllm\.models\.assistant\.gpus_per_replica: needs 134\.0 GiB \(weights "
        r"131\.5 GiB: 70\.6B parameters x 2 bytes \+ KV cache of one 8192-token sequence 2\.5 GiB\) but 1 x 44\.7 GiB "
        r"GPU of g6e\.xlarge at gpu_memory_utilization 0\.9 gives 40\.2 GiB; raise gpus_per_replica",
        " ".join(err.split()),
    )


def test_kv_cache_that_does_not_fit_beside_the_weights_names_max_model_len(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    # 4 x L40S at 0.92 = 164.5 GiB; weights 131.5 GiB leave 33.0 GiB; 131072 tokens need 40 GiB of KV cache.
    config = stack_config("prod")
    _assistant(config)["max_model_len"] = 131072
    message = _errors(config)["vllm.models.assistant.max_model_len"]
    assert message.startswith(
        "needs 171.5 GiB (weights 131.5 GiB: 70.6B parameters x 2 bytes + KV cache of one 131072-token sequence "
        "40.0 GiB) but 4 x 44.7 GiB GPUs of g6e.12xlarge at gpu_memory_utilization 0.92 gives 164.5 GiB"
    )


def test_max_model_len_beyond_the_context_length_is_refused(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("prod")
    _assistant(config)["max_model_len"] = 1_000_000
    errors = _errors(config)
    assert list(errors) == ["vllm.models.assistant.max_model_len"]
    message = errors["vllm.models.assistant.max_model_len"]
    assert message.startswith("1000000 tokens exceed the model's context length of 131072 tokens")
    assert "https://huggingface.co/meta-llama/Llama-3.1-70B-Instruct/blob/main/config.json" in message


def test_shipped_stacks_fit_with_the_concurrency_worked_by_hand(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    prod = _reports(stack_config("prod"))["assistant"]
    # 4 x L40S (g6e.12xlarge, the pool's smallest 4-GPU node) at 0.92, 70B weights, 32768-token sequences.
    free = 4 * L40S_GIB * 0.92 - WEIGHTS_70B  # 164.50 - 131.50 = 33.0 GiB
    per_sequence = KV_70B_PER_TOKEN * 32768 / GIB  # 10.0 GiB
    assert math.floor(free / per_sequence) == 3
    assert (prod.gpus.instance_type, prod.full_sequences, prod.problems) == ("g6e.12xlarge", 3, ())

    staging = _reports(stack_config("staging"))["assistant"]
    # Llama-3.1-8B on the pool's smallest GPU, an L4 (g6.xlarge), at 0.9, 16384-token sequences.
    free = L4_GIB * 0.9 - 8.03e9 * 2 / GIB  # 20.12 - 14.96 = 5.16 GiB
    per_sequence = 2 * 32 * 8 * 128 * 2 * 16384 / GIB  # 2.0 GiB
    assert math.floor(free / per_sequence) == 2
    assert (staging.gpus.instance_type, staging.catalog_id, staging.full_sequences) == (
        "g6.xlarge",
        "meta-llama/Llama-3.1-8B-Instruct",
        2,
    )
    assert all(r.checked and not r.problems for s in ("dev", "prod") for r in _reports(stack_config(s)).values())


def test_model_facts_override_the_catalog(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("prod")
    _assistant(config)["model_facts"] = {"parameters_b": 140.0}
    message = _errors(config)["vllm.models.assistant.gpus_per_replica"]
    assert "weights 260.8 GiB: 140B parameters x 2 bytes" in message

    config = stack_config("prod")
    _assistant(config).update(max_model_len=262144, model_facts={"context_length": 262144})
    assert "exceed the model's context length" not in " ".join(_errors(config).values())


def test_dtypes_change_the_figures_and_reach_vllm(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("prod")
    _assistant(config)["kv_cache_dtype"] = "fp8"
    cfg = validate_config(config, SOURCE)
    report = {r.name: r for r in serving_fit(cfg)}["assistant"]
    # fp8 halves the KV cache: 33.0 GiB free / 5.0 GiB per 32768-token sequence
    assert report.full_sequences == math.floor(
        (4 * L40S_GIB * 0.92 - WEIGHTS_70B) / (KV_70B_PER_TOKEN / 2 * 32768 / GIB)
    )
    assert report.full_sequences == 6
    args = vllm_args(next(s for s in vllm_servers(cfg) if s.name == "assistant"))
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8" and "--dtype" not in args

    config = stack_config("prod")
    _assistant(config)["dtype"] = "float32"  # 4 bytes a parameter: 263 GiB of weights
    assert "70.6B parameters x 4 bytes" in _errors(config)["vllm.models.assistant.gpus_per_replica"]


def test_a_model_the_catalog_does_not_know_is_checked_only_with_its_facts(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    config = stack_config("staging")
    _assistant(config)["model"] = "llm/acme-internal-13b"
    report = _reports(config)["assistant"]
    assert (report.catalog_id, report.checked, report.problems) == (None, False, ())
    assert report.line().endswith(
        "not checked: no figures for parameters_b, num_layers, num_kv_heads, head_dim, "
        "context_length (not in the model catalog); set vllm.models.assistant.model_facts"
    )

    facts = {"parameters_b": 13.0, "num_layers": 40, "num_kv_heads": 40, "head_dim": 128, "context_length": 4096}
    _assistant(config).update(max_model_len=4096, model_facts=facts)
    # 13B in bf16 = 24.2 GiB: more than an L4 at 0.9 (20.1 GiB) holds.
    message = _errors(config)["vllm.models.assistant.gpus_per_replica"]
    assert message.startswith(
        "needs 27.3 GiB (weights 24.2 GiB: 13B parameters x 2 bytes + KV cache of one "
        "4096-token sequence 3.1 GiB) but 1 x 22.35 GiB GPU of g6.xlarge"
    )


def test_kv_heads_are_replicated_when_tensor_parallel_exceeds_them() -> None:
    # Qwen2.5-1.5B has 2 KV heads; at tensor parallel 4 each GPU still holds one, so 4 heads are stored.
    facts = ModelFacts(num_layers=28, num_kv_heads=2, head_dim=128)
    assert kv_cache_bytes_per_token(facts, 1, 2) == 2 * 28 * 2 * 128 * 2
    assert kv_cache_bytes_per_token(facts, 4, 2) == 2 * 28 * 4 * 128 * 2


def test_catalog_matches_hub_ids_and_lake_prefixes_and_sources_every_figure() -> None:
    by_lake_prefix = model_catalog.lookup("llm/llama-3.1-70b-instruct")
    assert by_lake_prefix is not None and by_lake_prefix.hub_id == "meta-llama/Llama-3.1-70B-Instruct"
    by_id = model_catalog.lookup("qwen/qwen2.5-1.5b-instruct")
    assert by_id is not None and by_id.hub_id == "Qwen/Qwen2.5-1.5B-Instruct"
    assert model_catalog.lookup("llm/llama-3.1-70b-instruct-awq") is None
    for hub_id in model_catalog.model_ids():
        entry = model_catalog.lookup(hub_id)
        assert entry is not None and set(entry.figures) == set(model_catalog.FIGURES)
        for figure in model_catalog.FIGURES:
            source = entry.sources[figure]
            # Not fetched on this machine: every figure says so and names the config.json to check it against.
            assert "not fetched here" in source and entry.config_json in source


def test_mlp_plan_prints_and_exports_the_concurrency(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _mlp(monkeypatch, capsys, "plan", "staging", "-f", "json")
    assert code == 0, err
    assert (
        "vllm assistant (meta-llama/Llama-3.1-8B-Instruct): 2 full-length 16384-token sequence(s) at once; "
        "1 x 22.35 GiB GPU of g6.xlarge at 0.9 = 20.1 GiB, weights 15.0 GiB, KV cache 2.00 GiB per sequence"
    ) in err
    (fit,) = json.loads(out)["serving_fit"]
    assert (fit["name"], fit["instance_type"], fit["full_sequences"], fit["weights_gib"]) == (
        "assistant",
        "g6.xlarge",
        2,
        14.957,
    )
