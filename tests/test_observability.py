"""The monitoring stack in the plans: kube-prometheus-stack, DCGM exporter, monitors for the platform's services."""

from __future__ import annotations

from typing import Any

from mlplatform.infra.catalog import versions
from mlplatform.infra.observability import documents
from mlplatform.mlp.planner import Plan
from tests.k8s_schema import object_of


def _by_name(plan: Plan, name: str) -> Any:
    (found,) = [r for r in plan.resources if r.name == name]
    return found


def test_prometheus_keeps_its_retention_on_encrypted_storage(plans: dict[str, Plan]) -> None:
    release = _by_name(plans["prod"], "monitoring-kube-prometheus-stack").inputs
    assert (
        release["version"] == versions.chart("kube-prometheus-stack").version
        and release["name"] == "kube-prometheus-stack"
    )
    spec = release["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "200Gi" and claim["storageClassName"] == "gp3-encrypted"
    for key in (
        "serviceMonitorSelectorNilUsesHelmValues",
        "podMonitorSelectorNilUsesHelmValues",
        "ruleSelectorNilUsesHelmValues",
    ):
        assert spec[key] is False  # every monitor and rule in the cluster is picked up
    storage = object_of(_by_name(plans["prod"], "monitoring-gp3"))
    assert storage["parameters"] == {"type": "gp3", "encrypted": "true", "fsType": "ext4"}
    assert storage["reclaimPolicy"] == "Retain"
    assert object_of(_by_name(plans["dev"], "monitoring-gp3"))["reclaimPolicy"] == "Delete"
    dev = _by_name(plans["dev"], "monitoring-kube-prometheus-stack").inputs["values"]["prometheus"]["prometheusSpec"]
    assert (
        dev["retention"] == "3d"
        and dev["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    )


def test_nothing_is_exposed_and_grafana_uses_the_generated_secret(plans: dict[str, Plan]) -> None:
    values = _by_name(plans["prod"], "monitoring-kube-prometheus-stack").inputs["values"]
    for part in ("prometheus", "alertmanager", "grafana"):
        assert values[part]["service"]["type"] == "ClusterIP" and values[part]["ingress"]["enabled"] is False
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    secret = _by_name(plans["prod"], "monitoring-grafana-admin").inputs
    assert secret["metadata"]["name"] == "grafana-admin" and secret["stringData"] == "[secret]"
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"]) == documents.DASHBOARD_LABEL


def test_dcgm_exporter_runs_only_on_gpu_nodes(plans: dict[str, Plan]) -> None:
    release = _by_name(plans["prod"], "monitoring-dcgm-exporter").inputs
    assert release["version"] == versions.chart("dcgm-exporter").version
    values = release["values"]
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    assert values["serviceMonitor"]["enabled"] is True
    # The ServiceMonitor needs the operator's CRDs from the kube-prometheus-stack release.
    assert (
        "monitoring-kube-prometheus-stack" in _by_name(plans["prod"], "monitoring-dcgm-exporter").options["dependsOn"]
    )


def test_platform_services_are_scraped(plans: dict[str, Plan]) -> None:
    monitors = {
        r.name: object_of(r)
        for r in plans["prod"].resources
        if r.type.startswith("kubernetes:monitoring.coreos.com/v1:") and not r.type.endswith("PrometheusRule")
    }
    assert set(monitors) == {
        "monitoring-vllm-monitor",
        "monitoring-ray-monitor",
        "monitoring-kserve-predictors-monitor",
        "monitoring-karpenter-monitor",
        "monitoring-feature-server-monitor",
    }
    vllm = monitors["monitoring-vllm-monitor"]
    assert vllm["kind"] == "PodMonitor" and vllm["metadata"]["namespace"] == "serving"
    assert vllm["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "vllm"}}
    assert vllm["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    # The feature server's monitor selects the Deployment's pods and names a port their container declares (the
    # operator resolves the name in the pod spec; a name no container has is never scraped).
    feast = monitors["monitoring-feature-server-monitor"]
    (server,) = [r for r in plans["prod"].of_type("kubernetes:apps/v1:Deployment") if r.name == "features-server"]
    template = server.inputs["spec"]["template"]
    assert feast["spec"]["namespaceSelector"] == {"matchNames": [server.inputs["metadata"]["namespace"]]}
    assert feast["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (endpoint,) = feast["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]}
    assert ports[endpoint["port"]] == 8000 and endpoint["path"] == "/metrics"
    assert "--metrics" in template["spec"]["containers"][0]["command"]
    # The monitor waits for the namespace it lives in.
    (resource,) = [r for r in plans["prod"].resources if r.name == "monitoring-feature-server-monitor"]
    assert "features-namespace" in resource.options["dependsOn"]


def test_keda_queries_the_prometheus_the_chart_creates(plans: dict[str, Plan]) -> None:
    scaler = object_of(_by_name(plans["prod"], "serving-vllm-assistant-scaler"))
    address = scaler["spec"]["triggers"][0]["metadata"]["serverAddress"]
    # The chart names the Service <fullname>-prometheus; the release pins fullnameOverride.
    values = _by_name(plans["prod"], "monitoring-kube-prometheus-stack").inputs["values"]
    assert address == f"http://{values['fullnameOverride']}-prometheus.monitoring.svc.cluster.local:9090"
