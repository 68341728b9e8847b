"""Alert and recording rules, checked by promtool (Debian package `prometheus`, installed by .ci/run):
`promtool check rules` on the rendered rules of every stack, and `promtool test rules` with synthetic series where
every alert fires in one case and stays quiet in another, at each stack's own thresholds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra.observability import rules
from mlplatform.infra.observability.rules import Thresholds
from mlplatform.mlp.planner import Plan
from mlplatform.mlp.stackfile import Project, load_stack

PROMTOOL = shutil.which("promtool")
# Without promtool (a developer machine with only python3) these tests are skipped; CI installs it and sets
# MLP_REQUIRE_PROMTOOL, so there a missing promtool fails them instead.
pytestmark = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("MLP_REQUIRE_PROMTOOL"),
    reason="promtool is not installed (apt-get install prometheus)",
)


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _thresholds(project: Project, stack: str) -> Thresholds:
    cfg = load_stack(project, stack).validate()
    return Thresholds(**cfg.observability.alerts.model_dump())


def _rule_groups_in_plan(plan: Plan) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for r in plan.resources:
        if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule":
            groups.extend(r.inputs["spec"]["groups"])
    return groups


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_rendered_rules_pass_promtool_check(plans: dict[str, Plan], tmp_path: Path, stack: str) -> None:
    groups = _rule_groups_in_plan(plans[stack])
    # The drift rule (infra.drift, its own promtool tests in test_drift.py) comes with the pipelines: dev only.
    drift = {"mlplatform.model-drift"} if stack == "dev" else set()
    # The feature store's (infra.features.alerts, promtool tests in test_feature_store_alerts.py): prod's only.
    features = {"mlplatform.feature-store"} if stack == "prod" else set()
    assert {g["name"] for g in groups} == {
        "mlplatform.gpu",
        "mlplatform.llm-serving",
        "mlplatform.services",
        "mlplatform.cost",
        *drift,
        *features,
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    result = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _expected(alert: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The alert as promtool must see it: its labels plus the series', annotations with $labels filled in."""

    def fill(text: str) -> str:
        for key, value in labels.items():
            text = text.replace("{{ $labels." + key + " }}", value)
        return text

    return {
        "exp_labels": {**labels, **alert["labels"]},
        "exp_annotations": {k: fill(v) for k, v in alert["annotations"].items()},
    }


def _cases(t: Thresholds, alerts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """For every alert: a test where it fires and one where it stays quiet (exp_alerts empty)."""
    idle, idle_min = t.gpu_idle_utilization_percent, t.gpu_idle_minutes
    pending_min = t.pending_gpu_pod_minutes
    node = {"node": "ip-10-0-1-5", "gpu": "0"}
    warm = {
        "namespace": "gpu-warm-capacity",
        "pod": "warm-0",
        "node": "ip-10-0-1-5",
        "priority_class": "gpu-warm-capacity",
    }
    other = {"namespace": "team-research", "pod": "nb-0", "node": "ip-10-0-1-5", "priority_class": ""}
    # 10 requests per minute; slow: all between 5 s and 10 s (above every environment's SLO), fast: all under 0.5 s.
    buckets = ("0.5", "1", "2.5", "5", "10", "+Inf")
    slow_bucket = [
        _series(
            "vllm:e2e_request_latency_seconds_bucket",
            {"model_name": "assistant", "le": le},
            "0+10x90" if le in ("10", "+Inf") else "0+0x90",
        )
        for le in buckets
    ]
    fast_bucket = [
        _series("vllm:e2e_request_latency_seconds_bucket", {"model_name": "assistant", "le": le}, "0+10x90")
        for le in buckets
    ]
    pending_gpu_pod = [
        _series(
            "kube_pod_container_resource_requests",
            {
                "namespace": "team-research",
                "pod": "train-0",
                "container": "main",
                "resource": "nvidia_com_gpu",
                "unit": "integer",
                "node": "",
            },
            f"1x{pending_min + 10}",
        )
    ]

    def case(name: str, series: list[dict[str, str]], at: int, fires: dict[str, str] | None) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {
                    "eval_time": f"{at}m",
                    "alertname": name,
                    "exp_alerts": [_expected(alerts[name], fires)] if fires else [],
                }
            ],
        }

    mem = {"node": "ip-10-0-1-5", "gpu": "0"}
    deploy = {"namespace": "mlflow", "deployment": "mlflow"}
    controller = {"namespace": "kserve", "deployment": "kserve-controller-manager"}
    pool = {"nodepool": "inference", "resource_type": "nvidia.com/gpu"}
    waiting = t.vllm_queue_waiting_requests
    return [
        # GPU idle: under the threshold for the whole window fires; busy, or a warm-capacity node, stays quiet.
        case(
            "GpuNodeIdle",
            [_series("DCGM_FI_DEV_GPU_UTIL", node, f"{max(idle - 1, 0):g}x{idle_min + 10}")],
            idle_min + 5,
            {"node": "ip-10-0-1-5"},
        ),
        case(
            "GpuNodeIdle", [_series("DCGM_FI_DEV_GPU_UTIL", node, f"{idle + 20:g}x{idle_min + 10}")], idle_min + 5, None
        ),
        case(
            "GpuNodeIdle",
            [
                _series("DCGM_FI_DEV_GPU_UTIL", node, f"0x{idle_min + 10}"),
                _series("kube_pod_info", warm, f"1x{idle_min + 10}"),
            ],
            idle_min + 5,
            None,
        ),
        case(
            "GpuNodeIdle",  # a non-placeholder pod on the node does not exempt it
            [
                _series("DCGM_FI_DEV_GPU_UTIL", node, f"0x{idle_min + 10}"),
                _series("kube_pod_info", other, f"1x{idle_min + 10}"),
            ],
            idle_min + 5,
            {"node": "ip-10-0-1-5"},
        ),
        # Idle for less than the window stays quiet.
        case("GpuNodeIdle", [_series("DCGM_FI_DEV_GPU_UTIL", node, f"90x{idle_min}  0x10")], idle_min + 5, None),
        case("GpuXidError", [_series("DCGM_FI_DEV_XID_ERRORS", node, "0x5 79x5")], 8, node),
        case("GpuXidError", [_series("DCGM_FI_DEV_XID_ERRORS", node, "0x10")], 8, None),
        case(
            "GpuMemoryPressure",
            [_series("DCGM_FI_DEV_FB_USED", mem, "47000x20"), _series("DCGM_FI_DEV_FB_FREE", mem, "100x20")],
            15,
            mem,
        ),
        case(
            "GpuMemoryPressure",
            [_series("DCGM_FI_DEV_FB_USED", mem, "20000x20"), _series("DCGM_FI_DEV_FB_FREE", mem, "27100x20")],
            15,
            None,
        ),
        case(
            "GpuPodsPending",
            [
                *pending_gpu_pod,
                _series(
                    "kube_pod_status_phase",
                    {"namespace": "team-research", "pod": "train-0", "phase": "Pending"},
                    f"1x{pending_min + 10}",
                ),
            ],
            pending_min + 5,
            {"namespace": "team-research", "pod": "train-0"},
        ),
        case(
            "GpuPodsPending",  # Pending, but only briefly
            [
                *pending_gpu_pod,
                _series(
                    "kube_pod_status_phase",
                    {"namespace": "team-research", "pod": "train-0", "phase": "Pending"},
                    f"1x3 0x{pending_min + 6}",
                ),
            ],
            pending_min + 5,
            None,
        ),
        case(
            "GpuPoolAtLimit",
            [_series("karpenter_nodepools_usage", pool, "16x20"), _series("karpenter_nodepools_limit", pool, "16x20")],
            15,
            {"nodepool": "inference"},
        ),
        case(
            "GpuPoolAtLimit",
            [_series("karpenter_nodepools_usage", pool, "8x20"), _series("karpenter_nodepools_limit", pool, "16x20")],
            15,
            None,
        ),
        case("VllmLatencySloBurn", slow_bucket, 70, {"model_name": "assistant"}),
        case("VllmLatencySloBurn", fast_bucket, 70, None),
        case(
            "VllmQueueSaturated",
            [
                _series(
                    "vllm:num_requests_waiting",
                    {"model_name": "assistant", "engine": "0", "pod": "a"},
                    f"{waiting + 5}x20",
                )
            ],
            10,
            {"model_name": "assistant"},
        ),
        case(
            "VllmQueueSaturated",
            [
                _series(
                    "vllm:num_requests_waiting",
                    {"model_name": "assistant", "engine": "0", "pod": "a"},
                    f"{max(waiting - 1, 0)}x20",
                )
            ],
            10,
            None,
        ),
        case("MlflowDown", [_series("kube_deployment_status_replicas_available", deploy, "1x3 0x10")], 12, deploy),
        case("MlflowDown", [_series("kube_deployment_status_replicas_available", deploy, "2x15")], 12, None),
        case(
            "KserveControllerDown",
            [_series("kube_deployment_status_replicas_available", controller, "0x10")],
            8,
            controller,
        ),
        case(
            "KserveControllerDown", [_series("kube_deployment_status_replicas_available", controller, "1x10")], 8, None
        ),
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_alert_fires_and_stays_quiet_when_it_should(project: Project, tmp_path: Path, stack: str) -> None:
    thresholds = _thresholds(project, stack)
    groups = rules.alert_groups(thresholds)
    alerts = {r["alert"]: r for g in groups for r in g["rules"]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    cases = _cases(thresholds, alerts)
    tested = {c["alert_rule_test"][0]["alertname"] for c in cases}
    assert tested == set(alerts), "every alert needs tests"
    for name in alerts:
        outcomes = [
            bool(c["alert_rule_test"][0]["exp_alerts"]) for c in cases if c["alert_rule_test"][0]["alertname"] == name
        ]
        assert True in outcomes and False in outcomes, f"{name} needs a firing and a quiet case"
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": cases}, sort_keys=False)
    )
    result = _promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_promtool(project: Project, tmp_path: Path) -> None:
    """The unit tests can fail: expecting the idle alert on a busy GPU is reported."""
    thresholds = _thresholds(project, "prod")
    groups = rules.alert_groups(thresholds)
    alerts = {r["alert"]: r for g in groups for r in g["rules"]}
    busy = {
        "interval": "1m",
        "input_series": [_series("DCGM_FI_DEV_GPU_UTIL", {"node": "n", "gpu": "0"}, "90x60")],
        "alert_rule_test": [
            {
                "eval_time": "45m",
                "alertname": "GpuNodeIdle",
                "exp_alerts": [_expected(alerts["GpuNodeIdle"], {"node": "n"})],
            }
        ],
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "tests": [busy]}))
    assert _promtool("test", "rules", "tests.yml", cwd=tmp_path).returncode != 0


def test_cost_recording_rules_price_a_million_tokens(project: Project, tmp_path: Path) -> None:
    """$ per million generated tokens from a g6e.xlarge node price: one GPU, 100 tokens/s."""
    prices = rules.gpu_hourly_prices(["g6e.xlarge"], "us-east-1")
    assert prices == {"g6e.xlarge": 1.861}
    groups = rules.recording_groups(prices)
    node = {
        "node": "n1",
        "label_node_kubernetes_io_instance_type": "g6e.xlarge",
        "label_mlplatform_io_gpu_pool": "inference",
    }
    pod = {
        "namespace": "serving",
        "pod": "vllm-a",
        "node": "n1",
        "container": "vllm",
        "resource": "nvidia_com_gpu",
        "unit": "integer",
    }
    series = [
        _series("kube_node_labels", node, "1x20"),
        _series("kube_pod_container_resource_requests", pod, "1x20"),
        _series("kube_pod_status_phase", {"namespace": "serving", "pod": "vllm-a", "phase": "Running"}, "1x20"),
        _series(
            "kube_pod_labels",
            {
                "namespace": "serving",
                "pod": "vllm-a",
                "label_mlplatform_io_served_model": "assistant",
                "label_team": "ml",
            },
            "1x20",
        ),
        _series("vllm:generation_tokens_total", {"model_name": "assistant", "engine": "0"}, "0+6000x20"),
        _series(
            "kube_node_status_allocatable", {"node": "n1", "resource": "nvidia_com_gpu", "unit": "integer"}, "1x20"
        ),
    ]
    usd_per_mtok = 1.861 / 3600 / 100 * 1e6
    test = {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": "mlp:model_usd_per_million_tokens",
                "eval_time": "15m",
                "exp_samples": [
                    {"labels": 'mlp:model_usd_per_million_tokens{model_name="assistant"}', "value": usd_per_mtok}
                ],
            },
            {
                "expr": "mlp:team_gpu_cost_usd_per_hour",
                "eval_time": "15m",
                "exp_samples": [{"labels": 'mlp:team_gpu_cost_usd_per_hour{team="ml"}', "value": 1.861}],
            },
            {
                "expr": "mlp:pool_gpu_cost_usd_per_hour",
                "eval_time": "15m",
                "exp_samples": [{"labels": 'mlp:pool_gpu_cost_usd_per_hour{pool="inference"}', "value": 1.861}],
            },
        ],
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [test]})
    )
    result = _promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.dumps(groups)  # the groups are plain data (what the PrometheusRule carries)
