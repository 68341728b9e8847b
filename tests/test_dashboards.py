"""Dashboards as code: every panel query parses (promtool), every metric a rule or panel uses is listed with its
exporter and version, and the prod plan carries the rules and the dashboard ConfigMaps."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra.features.alerts import feature_store_alert_group
from mlplatform.infra.observability import dashboards, rules
from mlplatform.infra.observability.rules import Thresholds
from mlplatform.mlp.planner import Plan

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("MLP_REQUIRE_PROMTOOL"),
    reason="promtool is not installed (apt-get install prometheus)",
)

FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "label_replace",
    "sum_over_time", "max_over_time", "vector", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "clamp_min", "absent", "topk", "bottomk", "time",
}  # fmt: skip


def _catalog() -> dict[str, Any]:
    text = (
        resources.files("mlplatform.infra.observability").joinpath("data", "metrics.json").read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping clauses, strings and durations
    removed; what is left that is not a function, keyword or number is a metric)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {n for n in names if n not in FUNCTIONS and not re.fullmatch(r"[0-9.e+-]+", n) and n != "e"}


def _known(name: str, catalog: dict[str, Any]) -> bool:
    metrics = catalog["metrics"]
    if name in metrics or name.startswith("mlp:"):
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base in metrics and metrics[base]["type"] == "histogram"


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket[5m]))) "
        '> 4 and on (node) kube_pod_info{priority_class="gpu-warm-capacity"}'
    )
    assert metric_names(expr) == {"vllm:e2e_request_latency_seconds_bucket", "kube_pod_info"}


def test_every_metric_used_is_listed_with_its_exporter() -> None:
    catalog = _catalog()
    exprs = [q for d in dashboards.platform_dashboards(10) for q in d.queries()]
    groups = rules.alert_groups(Thresholds()) + rules.recording_groups({"g6e.xlarge": 1.861})
    groups.append(feature_store_alert_group())
    exprs += [r["expr"] for g in groups for r in g["rules"]]
    used = set().union(*(metric_names(e) for e in exprs))
    unknown = sorted(n for n in used if not _known(n, catalog))
    assert unknown == []
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    assert {n for n in used if n.startswith("mlp:")} <= recorded  # our own names are all defined
    for name, entry in catalog["metrics"].items():
        assert entry["exporter"] in catalog["exporters"], name
    # Nothing listed that nothing uses (the list is the inventory of what the platform depends on).
    listed_unused = sorted(
        n for n in catalog["metrics"] if not any(u == n or re.sub(r"_(bucket|sum|count)$", "", u) == n for u in used)
    )
    assert listed_unused == []


@needs_promtool
def test_every_panel_query_parses(tmp_path: Path) -> None:
    boards = dashboards.platform_dashboards(10)
    panel_rules = [
        {"record": f"panel:{d.uid.replace('-', '_')}:{i}", "expr": q.replace(dashboards.RATE_WINDOW, "5m")}
        for d in boards
        for i, q in enumerate(d.queries())
    ]
    assert len(panel_rules) >= 40
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": panel_rules}]}))
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", "panels.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_broken_query_is_caught(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x", "expr": "sum by (le (rate(x[5m]))"}]}]})
    )
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "check", "rules", "bad.yml"], cwd=tmp_path, capture_output=True, timeout=60)
    assert result.returncode != 0


def test_dashboards_cover_gpus_serving_ray_kserve_and_cost() -> None:
    boards = {d.uid: d for d in dashboards.platform_dashboards(10)}
    assert set(boards) == {"mlp-gpu-fleet", "mlp-llm-serving", "mlp-ray", "mlp-kserve", "mlp-cost"}
    serving = " ".join(boards["mlp-llm-serving"].queries())
    for needle in (
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
        "vllm:e2e_request_latency_seconds_bucket",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "mlp:model_usd_per_million_tokens",
    ):
        assert needle in serving, needle
    fleet = " ".join(boards["mlp-gpu-fleet"].queries())
    for needle in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_XID_ERRORS", "mlp:team_gpus"):
        assert needle in fleet
    assert "mlp:team_gpu_cost_usd_per_hour" in " ".join(boards["mlp-cost"].queries())


def test_prod_plan_has_the_rules_and_dashboard_config_maps(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    rule_objects = {r.name: r for r in plan.resources if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"}
    assert set(rule_objects) == {"monitoring-mlplatform-alerts", "monitoring-mlplatform-cost"}
    alerts = {
        rule["alert"]: rule
        for group in rule_objects["monitoring-mlplatform-alerts"].inputs["spec"]["groups"]
        for rule in group["rules"]
    }
    # prod's thresholds from its stack file
    assert alerts["VllmLatencySloBurn"]["expr"].count("> 4") == 2
    assert alerts["GpuNodeIdle"]["for"] == "30m" and "< 10" in alerts["GpuNodeIdle"]["expr"]
    assert alerts["GpuPodsPending"]["for"] == "10m"
    maps = [r for r in plan.resources if r.type == "kubernetes:core/v1:ConfigMap" and r.name.startswith("monitoring-")]
    assert len(maps) == 5
    for config_map in maps:
        meta = config_map.inputs["metadata"]
        assert meta["labels"]["grafana_dashboard"] == "1" and meta["namespace"] == "monitoring"
        (body,) = config_map.inputs["data"].values()
        board = json.loads(body)
        assert board["panels"] and all(p["targets"] for p in board["panels"])
