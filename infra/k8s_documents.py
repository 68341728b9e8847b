"""Pure Kubernetes building blocks shared by the domains (labels, security contexts). No resources."""

from __future__ import annotations


def pod_security_labels(level: str) -> dict[str, str]:
    """Pod Security Admission labels: enforce `level`, warn and audit at `restricted`."""
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
