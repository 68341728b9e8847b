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


# --- the API server and service account tokens ------------------------------------------------------------------

KUBERNETES_API_SERVICE_IPS = ("10.100.0.1/32", "172.20.0.1/32")
"""The `kubernetes` Service's ClusterIP, as pods reach the API server (`kubernetes.default`). It is the first
address of the cluster's service range; the cluster sets no `serviceIpv4Cidr`, so EKS picks 10.100.0.0/16 or
172.20.0.0/16, whichever does not overlap the VPC (EKS API reference, KubernetesNetworkConfigRequest.serviceIpv4Cidr,
read 2026-12-05). The other of the two is then a VPC router address (AWS reserves each subnet's .1) or unused.

An egress rule must name the ClusterIP, not the control plane's addresses behind it: the VPC CNI's policy agent
filters at the pod's veth, before kube-proxy's DNAT, and its controller adds ClusterIPs only for Services whose
selector matches a rule's pods, which the selector-less `kubernetes` Service never does
(aws/amazon-network-policy-controller-k8s pkg/resolvers/endpoints.go getMatchingServiceClusterIPs, 2026-05-18)."""

POD_IDENTITY_AGENT = "169.254.170.23/32"
"""The EKS Pod Identity agent (link-local, on every node): pods get their role's credentials from it over HTTP."""
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

SERVICE_ACCOUNT_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where in-cluster clients read the token, CA and namespace (client-go, Ray's KubeRay node provider)."""


def service_account_token_volume(name: str) -> dict[str, Any]:
    """The projected volume the ServiceAccount admission plugin adds to a pod whose token is automounted
    (kubernetes plugin/pkg/admission/serviceaccount/admission.go TokenVolumeSource, 1.35): a bound token of 3607 s
    (the kubelet renews it), the cluster CA and the namespace. For a pod with `automountServiceAccountToken: false`
    that mounts the token into one container only."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


def api_server_egress(pod_selector: Mapping[str, Any]) -> dict[str, Any]:
    """A NetworkPolicy spec: the selected pods may open TCP 443 to the API server's Service address."""
    return {
        "podSelector": dict(pod_selector),
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in KUBERNETES_API_SERVICE_IPS],
                "ports": [{"protocol": "TCP", "port": 443}],
            }
        ],
    }
