"""Pure builders for the monitoring stack: kube-prometheus-stack and DCGM exporter values, the monitors that scrape
the platform's services, and the encrypted gp3 StorageClass. No resources, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlplatform.infra.features.documents import FEAST_NAMESPACE, FEATURE_SERVER_SELECTOR
from mlplatform.infra.k8s_documents import GPU_TOLERATION
from mlplatform.infra.observability.alerting import AlertingSpec, alertmanager_config, webhook_url_fetcher

NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"
# The chart names objects after its release ("kube-prometheus-stack" contains the chart name, so no prefix).
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_PORT = 9090
PROMETHEUS_URL = f"http://{PROMETHEUS_SERVICE}.{NAMESPACE}.svc.cluster.local:{PROMETHEUS_PORT}"
# Set explicitly in the values (it is also the chart's default name): Alertmanager's Pod Identity association names it.
ALERTMANAGER_SERVICE_ACCOUNT = f"{RELEASE}-alertmanager"
GRAFANA_ADMIN_SECRET = "grafana-admin"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
DCGM_NAMESPACE = "dcgm-exporter"
STORAGE_CLASS = "gp3-encrypted"
GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")


@dataclass(frozen=True, kw_only=True)
class MonitoringSpec:
    retention: str
    storage_gib: int
    grafana: bool
    prometheus_cpu: str = "250m"
    prometheus_memory: str = "2Gi"
    replicas: int = 1
    node_selector: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


def storage_class(*, retain: bool, labels: Mapping[str, str]) -> dict[str, Any]:
    """Encrypted gp3 volumes bound in the pod's zone; kept after their claim is deleted in prod."""
    return {
        "metadata": {"name": STORAGE_CLASS, "labels": dict(labels)},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
        "reclaimPolicy": "Retain" if retain else "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}


def kube_prometheus_stack_values(
    spec: MonitoringSpec, *, alerting: AlertingSpec, topic_arn: str | None, aws_cli_image: str
) -> dict[str, Any]:
    """kube-prometheus-stack 88.x values (keys as in its values.yaml).

    Prometheus keeps `retention` on an encrypted gp3 volume and picks up every ServiceMonitor, PodMonitor and
    PrometheusRule in the cluster (not only the chart's own); Grafana's admin password comes from a Secret the
    platform generates; the dashboards sidecar loads the ConfigMaps labelled grafana_dashboard=1 of its own namespace
    (Grafana's RBAC is namespaced). Nothing is
    exposed outside the cluster: every Service is ClusterIP and no ingress is enabled. Alertmanager routes alerts
    by severity to the configured receivers (`alerting`; with none, every alert goes to the `null` receiver) under a
    named service account (its Pod Identity role publishes to `topic_arn` and reads the webhook secret, which an
    init container running `aws_cli_image` turns into a file).
    """
    selector = dict(spec.node_selector)
    alertmanager_spec: dict[str, Any] = {"nodeSelector": selector, "resources": _resources("20m", "64Mi")}
    if alerting.uses_webhook:
        assert alerting.webhook_secret is not None
        alertmanager_spec.update(
            webhook_url_fetcher(secret=alerting.webhook_secret, region=alerting.region, aws_cli_image=aws_cli_image)
        )
    values: dict[str, Any] = {
        "fullnameOverride": RELEASE,
        "prometheus": {
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False},
            "prometheusSpec": {
                "retention": spec.retention,
                "retentionSize": f"{int(spec.storage_gib * 0.85)}GB",  # leave headroom before the volume fills
                "replicas": spec.replicas,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "nodeSelector": selector,
                "resources": _resources(spec.prometheus_cpu, spec.prometheus_memory),
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": STORAGE_CLASS,
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{spec.storage_gib}Gi"}},
                        }
                    }
                },
            },
        },
        "alertmanager": {
            "enabled": True,
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False},
            "serviceAccount": {"create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT},
            "config": alertmanager_config(alerting, topic_arn=topic_arn),
            "alertmanagerSpec": alertmanager_spec,
        },
        "grafana": {
            "enabled": spec.grafana,
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False},
            "nodeSelector": selector,
            "resources": _resources("100m", "256Mi"),
            # Namespaced RBAC (grafana chart 12.11.1 `rbac.namespaced`: a Role in its own namespace instead of a
            # ClusterRole reading every namespace's ConfigMaps and Secrets), and sidecars that search only there:
            # a team cannot hand Grafana a dashboard or a datasource from its namespace.
            "rbac": {"namespaced": True},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL[0],
                    "labelValue": DASHBOARD_LABEL[1],
                    "searchNamespace": [NAMESPACE],
                    "folderAnnotation": "grafana_folder",
                    "provider": {"foldersFromFilesStructure": True},
                },
                # kube-prometheus-stack's datasource for Alertmanager is off: only Prometheus reaches Alertmanager
                # (`infra.platform_policies`), which accepts silences from whoever reaches it.
                "datasources": {"searchNamespace": [NAMESPACE], "alertmanager": {"enabled": False}},
            },
            "grafana.ini": {"analytics": {"reporting_enabled": False, "check_for_updates": False}},
        },
        "prometheusOperator": {
            "nodeSelector": selector,
            "resources": _resources("50m", "128Mi"),
            "admissionWebhooks": {"patch": {"nodeSelector": selector}, "deployment": {"nodeSelector": selector}},
        },
        "kube-state-metrics": {
            "nodeSelector": selector,
            "resources": _resources("20m", "128Mi"),
            # Pod and node labels as metric labels, so that cost panels can group GPUs by team and pool.
            "metricLabelsAllowlist": [
                "pods=[team,cost-center,mlplatform.io/served-model,mlplatform.io/ray-cluster]",
                "nodes=[mlplatform.io/gpu-pool,node.kubernetes.io/instance-type,karpenter.sh/capacity-type]",
            ],
        },
        # The node exporter runs everywhere, GPU nodes included.
        "prometheus-node-exporter": {"tolerations": [{"operator": "Exists"}]},
    }
    return values


def dcgm_exporter_values(*, labels: Mapping[str, str]) -> dict[str, Any]:
    """DCGM exporter 4.8 values: only on GPU nodes (their taint tolerated), each series labelled with its node."""
    return {
        "nodeSelector": {GPU_NODE_LABEL[0]: GPU_NODE_LABEL[1]},
        "tolerations": [dict(GPU_TOLERATION)],
        "serviceMonitor": {
            "enabled": True,
            "interval": "15s",
            "additionalLabels": dict(labels),
            # The exporter's Hostname label is its pod's name; the rules and dashboards join on the node.
            "relabelings": [
                {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"}
            ],
        },
        "resources": _resources("100m", "256Mi"),
    }


# --- monitors ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Monitor:
    """A PodMonitor or ServiceMonitor for one platform service."""

    name: str
    kind: str  # PodMonitor | ServiceMonitor
    namespace: str
    selector: Mapping[str, Any]
    port: str | None = None
    port_number: int | None = None
    path: str = "/metrics"
    interval: str = "30s"
    exporter: str = ""
    scraped_namespaces: Sequence[str] = ()
    """Namespaces whose pods it selects; none: its own."""
    honor_labels: bool = False
    """Keep the scraped series' own `job` and `instance` (a Pushgateway's pushed groups)."""


def platform_monitors(
    *,
    vllm: bool,
    ray: bool,
    kserve: bool,
    karpenter: bool,
    serving_namespace: str,
    ray_namespace: str,
    ray_cluster_namespaces: Sequence[str] = (),
    feature_server: bool = False,
) -> list[Monitor]:
    """One monitor per platform service. Ray's lives in the `ray` namespace and selects the pods of every
    namespace that hosts clusters (`ray_cluster_namespaces`: `ray` and team namespaces)."""
    monitors = []
    if vllm:
        monitors.append(
            Monitor(
                name="vllm",
                kind="PodMonitor",
                namespace=serving_namespace,
                selector={"matchLabels": {"app.kubernetes.io/name": "vllm"}},
                port="http",
                interval="15s",
                exporter="vLLM /metrics (vllm:*)",
            )
        )
    if ray:
        monitors.append(
            Monitor(
                name="ray",
                kind="PodMonitor",
                namespace=ray_namespace,
                scraped_namespaces=tuple(ray_cluster_namespaces),
                selector={"matchExpressions": [{"key": "mlplatform.io/ray-cluster", "operator": "Exists"}]},
                port="metrics",
                exporter="Ray metrics export port (ray_*)",
            )
        )
    if kserve:
        monitors.append(
            Monitor(
                name="kserve-predictors",
                kind="PodMonitor",
                namespace=serving_namespace,
                selector={"matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]},
                port_number=8080,
                exporter="KServe model servers (request_*)",
            )
        )
    if karpenter:
        monitors.append(
            Monitor(
                name="karpenter",
                kind="ServiceMonitor",
                namespace="karpenter",
                selector={
                    "matchLabels": {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"}
                },
                port="http-metrics",
                exporter="Karpenter controller (karpenter_*)",
            )
        )
    if feature_server:
        monitors.append(
            Monitor(
                name="feature-server",
                kind="PodMonitor",
                namespace=FEAST_NAMESPACE,
                selector={"matchLabels": dict(FEATURE_SERVER_SELECTOR)},
                port="metrics",
                exporter="Feast feature server, `feast serve --metrics` (feast_*)",
            )
        )
    return monitors


def monitor_manifest(monitor: Monitor, labels: Mapping[str, str]) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"path": monitor.path, "interval": monitor.interval}
    if monitor.port:
        endpoint["port"] = monitor.port
    if monitor.port_number:
        endpoint["portNumber"] = monitor.port_number
    if monitor.honor_labels:
        endpoint["honorLabels"] = True
    key = "podMetricsEndpoints" if monitor.kind == "PodMonitor" else "endpoints"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": monitor.kind,
        "metadata": {"name": monitor.name, "namespace": monitor.namespace, "labels": dict(labels)},
        "spec": {
            "selector": dict(monitor.selector),
            "namespaceSelector": {"matchNames": list(monitor.scraped_namespaces or [monitor.namespace])},
            key: [endpoint],
        },
    }
