"""Grafana dashboards as code: a small pure builder (panels from PromQL), the platform's five dashboards, and the
ConfigMaps the Grafana sidecar loads them from.

Every query is checked by `promtool` (tests/test_dashboards.py parses each one as a recording rule) and may only
use the metrics listed in data/metrics.json or the platform's own recording rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlplatform.infra.observability.documents import DASHBOARD_LABEL, NAMESPACE

RATE_WINDOW = "$__rate_interval"  # Grafana's interval for rate(); replaced by 5m when queries are checked
QUANTILES = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | stat
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: Sequence[Panel]
    tags: Sequence[str] = field(default_factory=lambda: ("ml-platform",))

    def queries(self) -> list[str]:
        return [q.expr for p in self.panels for q in p.queries]


def _latency_panel(title: str, metric: str, description: str) -> Panel:
    return Panel(
        title,
        [
            Query(
                f"histogram_quantile({q}, sum by (le, model_name) (rate({metric}_bucket[{RATE_WINDOW}])))",
                f"{{{{model_name}}}} {name}",
            )
            for name, q in QUANTILES
        ],
        unit="s",
        description=description,
    )


def gpu_fleet(idle_percent: float) -> Dashboard:
    idle = f"{idle_percent:g}"
    pool_of_node = (
        'label_replace(kube_node_labels{label_mlplatform_io_gpu_pool!=""}, "pool", "$1", '
        '"label_mlplatform_io_gpu_pool", "(.+)")'
    )
    return Dashboard(
        "mlp-gpu-fleet",
        "ML platform / GPU fleet",
        [
            Panel("GPU utilization", [Query("DCGM_FI_DEV_GPU_UTIL", "{{node}} gpu {{gpu}}")], unit="percent"),
            Panel(
                "GPU memory used",
                [
                    Query(
                        "100 * DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
                        "{{node}} gpu {{gpu}}",
                    )
                ],
                unit="percent",
            ),
            Panel("Power draw", [Query("DCGM_FI_DEV_POWER_USAGE", "{{node}} gpu {{gpu}}")], unit="watt"),
            Panel("Temperature", [Query("DCGM_FI_DEV_GPU_TEMP", "{{node}} gpu {{gpu}}")], unit="celsius"),
            Panel("Tensor core activity", [Query("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "{{node}} gpu {{gpu}}")]),
            Panel(
                "XID errors (last code)",
                [Query("max by (node, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0", "{{node}} gpu {{gpu}}")],
                kind="stat",
                description="Non-zero: the driver reported an XID error; see NVIDIA's XID catalogue.",
            ),
            Panel(
                f"Idle GPUs by pool (under {idle}% utilization)",
                [
                    Query(
                        f"count by (pool) ((DCGM_FI_DEV_GPU_UTIL < {idle}) * on (node) group_left (pool) "
                        f"{pool_of_node})",
                        "{{pool}}",
                    )
                ],
                kind="stat",
            ),
            Panel(
                "GPUs allocated by team",
                [Query("mlp:team_gpus", "{{team}}")],
                description="GPUs requested by running pods, by the pod's team label.",
            ),
            Panel("GPUs by pool", [Query("mlp:pool_gpus", "{{pool}}")]),
            Panel(
                "GPU pool usage of its limit (Karpenter)",
                [
                    Query(
                        'max by (nodepool) (karpenter_nodepools_usage{resource_type=~"nvidia.com/gpu|nvidia_com_gpu"}) '
                        "/ on (nodepool) "
                        'max by (nodepool) (karpenter_nodepools_limit{resource_type=~"nvidia.com/gpu|nvidia_com_gpu"})',
                        "{{nodepool}}",
                    )
                ],
                unit="percentunit",
            ),
        ],
    )


def llm_serving() -> Dashboard:
    return Dashboard(
        "mlp-llm-serving",
        "ML platform / LLM serving (vLLM)",
        [
            Panel(
                "Requests per second",
                [Query(f"sum by (model_name) (rate(vllm:request_success_total[{RATE_WINDOW}]))", "{{model_name}}")],
                unit="reqps",
            ),
            _latency_panel("Time to first token", "vllm:time_to_first_token_seconds", "From request to first token."),
            _latency_panel("Time per output token", "vllm:inter_token_latency_seconds", "Between output tokens."),
            _latency_panel("End-to-end latency", "vllm:e2e_request_latency_seconds", "Whole request."),
            Panel(
                "Tokens per second",
                [
                    Query(
                        f"sum by (model_name) (rate(vllm:generation_tokens_total[{RATE_WINDOW}]))",
                        "{{model_name}} generated",
                    ),
                    Query(
                        f"sum by (model_name) (rate(vllm:prompt_tokens_total[{RATE_WINDOW}]))", "{{model_name}} prompt"
                    ),
                ],
            ),
            Panel(
                "Requests waiting and running",
                [
                    Query("sum by (model_name) (vllm:num_requests_waiting)", "{{model_name}} waiting"),
                    Query("sum by (model_name) (vllm:num_requests_running)", "{{model_name}} running"),
                ],
            ),
            Panel(
                "KV-cache usage",
                [Query("100 * max by (model_name) (vllm:kv_cache_usage_perc)", "{{model_name}}")],
                unit="percent",
            ),
            Panel(
                "Estimated $ per million generated tokens",
                [Query("mlp:model_usd_per_million_tokens", "{{model_name}}")],
                unit="currencyUSD",
                description="GPU cost of the model's pods (on-demand price of their nodes' instance types, per "
                "GPU) divided by generated tokens. Spot discounts and idle replicas are not separated.",
            ),
            Panel(
                "GPU cost per hour by model",
                [Query("mlp:model_gpu_cost_usd_per_hour", "{{model_name}}")],
                unit="currencyUSD",
            ),
        ],
    )


def ray() -> Dashboard:
    return Dashboard(
        "mlp-ray",
        "ML platform / Ray",
        [
            Panel("Active nodes", [Query("sum by (NodeType) (ray_cluster_active_nodes)", "{{NodeType}}")]),
            Panel("Tasks by state", [Query("sum by (State) (ray_tasks)", "{{State}}")]),
            Panel("Actors by state", [Query("sum by (State) (ray_actors)", "{{State}}")]),
            Panel("Node CPU utilization", [Query("ray_node_cpu_utilization", "{{instance}}")], unit="percent"),
            Panel("Node GPU utilization", [Query("ray_node_gpus_utilization", "{{instance}} gpu {{GpuIndex}}")]),
            Panel("Node memory used", [Query("ray_node_mem_used", "{{instance}}")], unit="bytes"),
            Panel("Object store memory", [Query("sum by (Location) (ray_object_store_memory)", "{{Location}}")]),
        ],
    )


def kserve() -> Dashboard:
    return Dashboard(
        "mlp-kserve",
        "ML platform / KServe",
        [
            Panel(
                "Predictions per second",
                [Query(f"sum by (model_name) (rate(request_predict_seconds_count[{RATE_WINDOW}]))", "{{model_name}}")],
                unit="reqps",
            ),
            _latency_panel("Predict latency", "request_predict_seconds", "Model server predict() time."),
            Panel(
                "Pre/post-processing p95",
                [
                    Query(
                        f"histogram_quantile(0.95, sum by (le, model_name) "
                        f"(rate(request_preprocess_seconds_bucket[{RATE_WINDOW}])))",
                        "{{model_name}} pre",
                    ),
                    Query(
                        f"histogram_quantile(0.95, sum by (le, model_name) "
                        f"(rate(request_postprocess_seconds_bucket[{RATE_WINDOW}])))",
                        "{{model_name}} post",
                    ),
                ],
                unit="s",
            ),
            Panel(
                "Predictor replicas available / desired",
                [
                    Query(
                        'kube_deployment_status_replicas_available{namespace="serving", deployment=~".+-predictor"}',
                        "{{deployment}} available",
                    ),
                    Query(
                        'kube_deployment_spec_replicas{namespace="serving", deployment=~".+-predictor"}',
                        "{{deployment}} desired",
                    ),
                ],
            ),
            Panel(
                "KServe controller available",
                [
                    Query(
                        'kube_deployment_status_replicas_available{namespace="kserve", '
                        'deployment="kserve-controller-manager"}',
                        "controller",
                    )
                ],
                kind="stat",
            ),
        ],
    )


def cost() -> Dashboard:
    return Dashboard(
        "mlp-cost",
        "ML platform / GPU cost",
        [
            Panel(
                "GPU cost per hour by pool (whole nodes)",
                [Query("mlp:pool_gpu_cost_usd_per_hour", "{{pool}}")],
                unit="currencyUSD",
                description="On-demand price of the pools' GPU nodes, from the platform's dated price data.",
            ),
            Panel(
                "GPU cost per hour by team (requested GPUs)",
                [Query("mlp:team_gpu_cost_usd_per_hour", "{{team}}")],
                unit="currencyUSD",
            ),
            Panel(
                "GPU-hours by team, last 24 hours",
                [Query("sum by (team) (sum_over_time(mlp:team_gpus[24h:1m])) / 60", "{{team}}")],
                kind="stat",
            ),
            Panel(
                "Estimated $ by team, last 24 hours",
                [Query("sum by (team) (sum_over_time(mlp:team_gpu_cost_usd_per_hour[24h:1m])) / 60", "{{team}}")],
                unit="currencyUSD",
                kind="stat",
            ),
            Panel(
                "Estimated $ by pool, last 24 hours",
                [Query("sum by (pool) (sum_over_time(mlp:pool_gpu_cost_usd_per_hour[24h:1m])) / 60", "{{pool}}")],
                unit="currencyUSD",
                kind="stat",
            ),
            Panel(
                "Idle share of paid GPUs",
                [Query("1 - sum(mlp:pod_gpus) / sum(mlp:pool_gpus)", "idle share")],
                unit="percentunit",
                kind="stat",
                description="GPUs on the pools' nodes that no running pod requests.",
            ),
        ],
    )


def platform_dashboards(idle_percent: float) -> list[Dashboard]:
    return [gpu_fleet(idle_percent), llm_serving(), ray(), kserve(), cost()]


def grafana_json(dashboard: Dashboard) -> dict[str, Any]:
    """Grafana dashboard JSON (schema 39): a Prometheus data source variable, panels two per row."""
    panels = []
    for i, panel in enumerate(dashboard.panels):
        panels.append(
            {
                "id": i + 1,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {},
                "targets": [
                    {
                        "refId": chr(ord("A") + j),
                        "expr": q.expr,
                        "legendFormat": q.legend,
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    }
                    for j, q in enumerate(panel.queries)
                ],
            }
        )
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": list(dashboard.tags),
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Data source",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "panels": panels,
    }


def dashboard_config_map(dashboard: Dashboard, labels: Mapping[str, str]) -> dict[str, Any]:
    """A ConfigMap the Grafana sidecar picks up (label grafana_dashboard=1) into the `ML platform` folder."""
    return {
        "metadata": {
            "name": f"dashboard-{dashboard.uid}",
            "namespace": NAMESPACE,
            "labels": {**labels, DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]},
            "annotations": {"grafana_folder": "ML platform"},
        },
        "data": {f"{dashboard.uid}.json": json.dumps(grafana_json(dashboard), indent=1, sort_keys=True)},
    }
