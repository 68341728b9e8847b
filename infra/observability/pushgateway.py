"""The platform's Pushgateway (monitoring namespace): where scheduled jobs leave gauges that must outlive them (the
drift step's `mlp_model_drift_*`), scraped by Prometheus with their own `job` and `model` labels (`honorLabels`).

Plain objects rather than the prometheus-pushgateway chart: one Deployment, one Service and one ServiceMonitor,
each validated offline against the Kubernetes and Prometheus Operator schemas. The image is the chart's
(`versions.json`: pushgateway). No persistence: a restarted Pushgateway is empty until each job's next run (the
drift CronWorkflow runs hourly; the drift alert's `for` is longer). It has no authentication: NetworkPolicy admits
only Prometheus and the drift step's pods (`DRIFT_POD_LABEL`) of the team namespaces, so any such pod can replace
any model's group (the grouping key is `job`/`model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplatform.infra.k8s_documents import restricted_container_security
from mlplatform.infra.observability.documents import NAMESPACE, Monitor

NAME = "pushgateway"
PORT = 9091
SELECTOR = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "ml-platform"}
URL = f"http://{NAME}.{NAMESPACE}.svc:{PORT}"
UID = 65534
"""nobody: the image's USER."""


def deployment(image: str, node_selector: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/-/ready", "port": "http"}, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {**labels, **SELECTOR}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": {**labels, **SELECTOR}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "nodeSelector": dict(node_selector),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": NAME,
                            "image": image,
                            "args": [f"--web.listen-address=:{PORT}"],
                            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "httpGet": {"path": "/-/healthy", "port": "http"}},
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": {
                                **restricted_container_security(),
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ],
                },
            },
        },
    }


def service(labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {**labels, **SELECTOR}},
        "spec": {
            "type": "ClusterIP",
            "selector": dict(SELECTOR),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def monitor() -> Monitor:
    return Monitor(
        name=NAME,
        kind="ServiceMonitor",
        namespace=NAMESPACE,
        selector={"matchLabels": dict(SELECTOR)},
        port="http",
        honor_labels=True,
    )
