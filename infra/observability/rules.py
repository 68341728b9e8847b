"""Alert and recording rules as code: pure builders from the environment's thresholds and the price data.

Every alert has a unit test on synthetic series (tests/test_alert_rules.py, run by `promtool test rules`) with a
case where it fires and one where it stays quiet. Label names on joined metrics come from kube-state-metrics'
allow-list in the chart values (label_team, label_mlplatform_io_gpu_pool, ...) and from the DCGM exporter's
ServiceMonitor, which adds the scraped pod's node as `node`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GPU_RESOURCE = 'resource="nvidia_com_gpu"'
# Karpenter labels its NodePool metrics by resource name; accept the raw and the sanitized spelling.
KARPENTER_GPU = 'resource_type=~"nvidia.com/gpu|nvidia_com_gpu"'


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    gpu_idle_utilization_percent: float = 10
    gpu_idle_minutes: int = 30
    gpu_memory_pressure_percent: float = 95
    vllm_p95_latency_seconds: float = 5.0
    vllm_queue_waiting_requests: int = 20
    pending_gpu_pod_minutes: int = 15
    feature_server_error_percent: float = 5
    """Read by `infra.features.alerts` (FeatureServerErrors)."""


def _num(value: float) -> str:
    return f"{value:g}"


def alert_rule(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    category: str,
    summary: str,
    description: str,
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "alert": name,
        "expr": expr,
        "labels": {"severity": severity, "category": category},
        "annotations": {"summary": summary, "description": description},
    }
    if for_ != "0m":
        rule["for"] = for_
    return rule


def deployment_down(name: str, namespace: str, deployment: str, what: str, impact: str = "") -> dict[str, Any]:
    """A critical alert when a Deployment has had no available replica for 5 minutes (kube-state-metrics)."""
    return alert_rule(
        name,
        f'kube_deployment_status_replicas_available{{namespace="{namespace}", deployment="{deployment}"}} < 1',
        "5m",
        "critical",
        "availability",
        f"{what} is down (no available replica)",
        f"Deployment {namespace}/{deployment} has had no available replica for 5 minutes{impact}. "
        f"`kubectl -n {namespace} describe deployment {deployment}` and its pods' events say why.",
    )


def alert_groups(t: Thresholds) -> list[dict[str, Any]]:
    """The platform's alerts, in three groups: GPUs, LLM serving, platform services."""
    idle = _num(t.gpu_idle_utilization_percent)
    gpus = [
        alert_rule(
            "GpuNodeIdle",
            # Nodes that hold warm-capacity placeholders are idle by design (the pool's min_gpus) and excluded.
            f"(max by (node) (DCGM_FI_DEV_GPU_UTIL) < {idle}) "
            'unless on (node) kube_pod_info{priority_class="gpu-warm-capacity"}',
            f"{t.gpu_idle_minutes}m",
            "warning",
            "cost",
            "GPU node {{ $labels.node }} has been idle for " + f"{t.gpu_idle_minutes} minutes",
            f"Every GPU of the node stayed under {idle}% utilization. An idle GPU node still bills by the hour: "
            "stop the workload holding it, or lower the pool's warm capacity.",
        ),
        alert_rule(
            "GpuXidError",
            "max by (node, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",
            "0m",
            "critical",
            "reliability",
            "XID error on GPU {{ $labels.gpu }} of {{ $labels.node }}",
            "The driver reported an XID error (the alert's value is its code). Many codes mean a failing GPU or a "
            "crashed workload; drain the node if it repeats (kubectl drain, Karpenter replaces it).",
        ),
        alert_rule(
            "GpuMemoryPressure",
            "max by (node, gpu) (100 * DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)) > "
            + _num(t.gpu_memory_pressure_percent),
            "10m",
            "warning",
            "capacity",
            "GPU {{ $labels.gpu }} of {{ $labels.node }} is above "
            + _num(t.gpu_memory_pressure_percent)
            + "% of its memory",
            "Close to out-of-memory errors: lower batch sizes or vLLM's --gpu-memory-utilization, or move the "
            "workload to a GPU with more memory.",
        ),
        alert_rule(
            "GpuPodsPending",
            f"(sum by (namespace, pod) (kube_pod_container_resource_requests{{{GPU_RESOURCE}}}) > 0) "
            'and on (namespace, pod) (kube_pod_status_phase{phase="Pending"} == 1)',
            f"{t.pending_gpu_pod_minutes}m",
            "warning",
            "capacity",
            "GPU pod {{ $labels.namespace }}/{{ $labels.pod }} has been Pending for "
            + f"{t.pending_gpu_pod_minutes} minutes",
            "No node could take it: the pool is at its limit, the account's GPU quota is exhausted, the AZs have no "
            "capacity for the instance types, or the team's ResourceQuota is full. Run `mlp preflight` and check "
            "Karpenter's events for the pod.",
        ),
        alert_rule(
            "GpuPoolAtLimit",
            f"max by (nodepool) (karpenter_nodepools_usage{{{KARPENTER_GPU}}}) "
            f">= on (nodepool) max by (nodepool) (karpenter_nodepools_limit{{{KARPENTER_GPU}}})",
            "10m",
            "warning",
            "capacity",
            "GPU pool {{ $labels.nodepool }} is at its limit",
            "Karpenter will launch no more GPU nodes for this pool; new GPU pods stay Pending. Raise the pool's "
            "max_gpus (and budget.max_gpus) or free GPUs.",
        ),
    ]
    latency = _num(t.vllm_p95_latency_seconds)
    p95 = "histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket[{w}])))"
    serving = [
        alert_rule(
            "VllmLatencySloBurn",
            f"({p95.format(w='5m')} > {latency}) and on (model_name) ({p95.format(w='1h')} > {latency})",
            "5m",
            "critical",
            "slo",
            "vLLM model {{ $labels.model_name }}: p95 latency above " + f"{latency}s over 5 minutes and 1 hour",
            "The p95 end-to-end latency is over the SLO in both the short and the long window, so the error budget "
            "burns fast. Check the queue (VllmQueueSaturated), KV-cache usage and whether the deployment can scale "
            "out (pool limit, quota).",
        ),
        alert_rule(
            "VllmQueueSaturated",
            f"sum by (model_name) (vllm:num_requests_waiting) > {t.vllm_queue_waiting_requests}",
            "5m",
            "warning",
            "capacity",
            "vLLM model {{ $labels.model_name }} has more than " + f"{t.vllm_queue_waiting_requests} requests waiting",
            "Requests queue faster than the replicas serve them and autoscaling has not caught up: check KEDA's "
            "ScaledObject, the max replicas and the GPU pool.",
        ),
    ]
    services = [
        deployment_down(name, namespace, deployment, what)
        for name, namespace, deployment, what in (
            ("MlflowDown", "mlflow", "mlflow", "MLflow"),
            ("KserveControllerDown", "kserve", "kserve-controller-manager", "The KServe controller"),
        )
    ]
    return [
        {"name": "mlplatform.gpu", "rules": gpus},
        {"name": "mlplatform.llm-serving", "rules": serving},
        {"name": "mlplatform.services", "rules": services},
    ]


def recording_groups(gpu_hourly_prices: Mapping[str, float]) -> list[dict[str, Any]]:
    """GPU cost attribution: the price of one GPU per instance type (from the dated price data), then per node,
    per running pod, per team, per pool and per served model, and the cost of a million generated tokens."""
    prices = [
        {"record": "mlp:gpu_hourly_price_usd", "expr": _num(round(price, 6)), "labels": {"instance_type": itype}}
        for itype, price in sorted(gpu_hourly_prices.items())
    ]
    node_type = (
        'label_replace(kube_node_labels{label_node_kubernetes_io_instance_type!=""}, '
        '"instance_type", "$1", "label_node_kubernetes_io_instance_type", "(.+)")'
    )
    node_pool = (
        'label_replace(kube_node_labels{label_mlplatform_io_gpu_pool!=""}, '
        '"pool", "$1", "label_mlplatform_io_gpu_pool", "(.+)")'
    )
    pod_team = 'label_replace(kube_pod_labels{label_team!=""}, "team", "$1", "label_team", "(.+)")'
    pod_model = (
        'label_replace(kube_pod_labels{label_mlplatform_io_served_model!=""}, '
        '"model_name", "$1", "label_mlplatform_io_served_model", "(.+)")'
    )
    rules = [
        *prices,
        {
            "record": "mlp:node_gpu_hourly_price_usd",
            "expr": f"max by (node) ({node_type} * on (instance_type) group_left () mlp:gpu_hourly_price_usd)",
        },
        {
            "record": "mlp:pod_gpus",
            "expr": f"sum by (namespace, pod, node) (kube_pod_container_resource_requests{{{GPU_RESOURCE}}}) "
            'and on (namespace, pod) (kube_pod_status_phase{phase="Running"} == 1)',
        },
        {
            "record": "mlp:pod_gpu_cost_usd_per_hour",
            "expr": "mlp:pod_gpus * on (node) group_left () mlp:node_gpu_hourly_price_usd",
        },
        {
            "record": "mlp:team_gpus",
            "expr": f"sum by (team) (mlp:pod_gpus * on (namespace, pod) group_left (team) {pod_team})",
        },
        {
            "record": "mlp:team_gpu_cost_usd_per_hour",
            "expr": f"sum by (team) (mlp:pod_gpu_cost_usd_per_hour * on (namespace, pod) group_left (team) {pod_team})",
        },
        {
            "record": "mlp:pool_gpus",
            "expr": f"sum by (pool) (kube_node_status_allocatable{{{GPU_RESOURCE}}} "
            f"* on (node) group_left (pool) {node_pool})",
        },
        {
            # Whole nodes bill whether their GPUs are used or not.
            "record": "mlp:pool_gpu_cost_usd_per_hour",
            "expr": f"sum by (pool) (kube_node_status_allocatable{{{GPU_RESOURCE}}} "
            f"* on (node) group_left () mlp:node_gpu_hourly_price_usd * on (node) group_left (pool) {node_pool})",
        },
        {
            "record": "mlp:model_gpu_cost_usd_per_hour",
            "expr": "sum by (model_name) "
            f"(mlp:pod_gpu_cost_usd_per_hour * on (namespace, pod) group_left (model_name) {pod_model})",
        },
        {
            # Generated tokens only (prompt tokens are cheaper to process and not counted).
            "record": "mlp:model_usd_per_million_tokens",
            "expr": "mlp:model_gpu_cost_usd_per_hour / 3600 / on (model_name) "
            "(sum by (model_name) (rate(vllm:generation_tokens_total[5m])) > 0) * 1e6",
        },
    ]
    return [{"name": "mlplatform.cost", "interval": "1m", "rules": rules}]


def gpu_hourly_prices(instance_types: Sequence[str], region: str) -> dict[str, float]:
    """On-demand price of one GPU per instance type (node price / GPUs per node), for the types the pools use."""
    from mlplatform.infra.catalog import gpu as gpu_catalog

    out: dict[str, float] = {}
    for itype in sorted(set(instance_types)):
        spec = gpu_catalog.gpu_instance(itype)
        price = spec.on_demand_price(region) if spec else None
        if spec is not None and price is not None and spec.gpu_count:
            out[itype] = price / spec.gpu_count
    return out


def prometheus_rule(name: str, groups: list[dict[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": "monitoring", "labels": dict(labels)},
        "spec": {"groups": groups},
    }
