"""Pure Kubernetes building blocks shared by the domains (labels, security contexts). No resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def pod_security_labels(level: str) -> dict[str, str]:
    """Pod Security Admission labels: enforce `level`, warn and audit at `restricted`."""
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }


def pod_security(uid: int = 1000) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_disruption_budget(
    name: str, namespace: str, selector: Mapping[str, str], labels: Mapping[str, str], replicas: int
) -> dict[str, Any]:
    """Keep one pod up during voluntary disruptions; a single replica may still be moved (a PDB that forbids it
    would block node drains, Karpenter consolidation and upgrades forever)."""
    budget = {"minAvailable": 1} if replicas > 1 else {"maxUnavailable": 1}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {**budget, "selector": {"matchLabels": dict(selector)}},
    }


def service(
    name: str,
    namespace: str,
    selector: Mapping[str, str],
    port: int,
    labels: Mapping[str, str],
    extra_ports: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}, *extra_ports],
        },
    }
