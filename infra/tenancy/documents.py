"""Pure builders for team tenancy: namespace labels, ResourceQuota, LimitRange, NetworkPolicies and RBAC. No
resources, no I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.k8s_documents import pod_security_labels

TENANT_LABEL = "mlplatform.io/tenant"
WORKLOAD_SERVICE_ACCOUNT = "workload"
"""Service account of a team's namespace that carries the team's AWS role (Pod Identity)."""
POD_IDENTITY_AGENT = "169.254.170.23/32"  # EKS Pod Identity agent (link-local, on every node)
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
INTERFACE_ENDPOINTS_POLICY = "allow-interface-endpoints"


@dataclass(frozen=True, kw_only=True)
class PlatformEndpoint:
    """A platform service a team may call: namespace and TCP ports."""

    namespace: str
    ports: Sequence[int]


@dataclass(frozen=True, kw_only=True)
class TenantSpec:
    name: str
    groups: Sequence[str]
    gpus: int
    cpu: str
    memory: str
    storage: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return f"team-{self.name}"

    @property
    def lake_prefix(self) -> str:
        return f"teams/{self.name}/"


def namespace_labels(tenant: TenantSpec) -> dict[str, str]:
    return {**tenant.labels, TENANT_LABEL: tenant.name, **pod_security_labels("restricted")}


def resource_quota(tenant: TenantSpec) -> dict[str, Any]:
    """GPUs, CPU, memory and storage the team's pods may request; no load balancers or node ports (a team cannot
    expose a service outside the cluster on its own)."""
    return {
        "metadata": {"name": "team-quota", "namespace": tenant.namespace, "labels": dict(tenant.labels)},
        "spec": {
            "hard": {
                "requests.nvidia.com/gpu": str(tenant.gpus),
                "requests.cpu": tenant.cpu,
                "requests.memory": tenant.memory,
                "requests.storage": tenant.storage,
                "services.loadbalancers": "0",
                "services.nodeports": "0",
            }
        },
    }


def limit_range(tenant: TenantSpec) -> dict[str, Any]:
    """Defaults for containers that state no resources (the quota makes requests mandatory)."""
    return {
        "metadata": {"name": "team-defaults", "namespace": tenant.namespace, "labels": dict(tenant.labels)},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
                    "default": {"memory": "2Gi"},
                },
                {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}},
            ]
        },
    }


def _policy(tenant: TenantSpec, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": tenant.namespace, "labels": dict(tenant.labels)}, "spec": spec}


def _namespace_selector(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def network_policies(
    tenant: TenantSpec, *, platform: Sequence[PlatformEndpoint], monitoring_namespace: str | None
) -> list[dict[str, Any]]:
    """Default deny, then: the team's own pods, DNS, the platform's services, HTTPS to AWS APIs (S3 through the
    gateway endpoint, STS, ...) and the Pod Identity agent, and scraping by the monitoring namespace.

    S3's gateway endpoint routes to S3's public addresses, which a NetworkPolicy cannot name (no prefix lists), so
    HTTPS egress is open to every public address; private ranges (other VPC workloads) stay closed, except the
    VPC's interface endpoints on 443 (`interface_endpoint_policy`, a separate policy because their addresses are
    known only once the endpoints exist).
    """
    policies = [
        _policy(tenant, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy(
            tenant,
            "allow-same-namespace",
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        ),
        _policy(
            tenant,
            "allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                **_namespace_selector("kube-system"),
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        _policy(
            tenant,
            "allow-platform-services",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [_namespace_selector(endpoint.namespace)],
                        "ports": [{"protocol": "TCP", "port": port} for port in endpoint.ports],
                    }
                    for endpoint in platform
                ],
            },
        ),
        _policy(
            tenant,
            "allow-aws-apis",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    },
                    {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
                ],
            },
        ),
    ]
    if monitoring_namespace:
        policies.append(
            _policy(
                tenant,
                "allow-monitoring",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [_namespace_selector(monitoring_namespace)]}],
                },
            )
        )
    return policies


def interface_endpoint_egress(cidrs: Sequence[str]) -> dict[str, Any]:
    """The spec of `allow-interface-endpoints`: HTTPS (TCP 443 only) to each of the VPC's interface endpoint
    addresses. With private DNS on, the AWS SDKs resolve STS, ECR, CloudWatch Logs, ... to those private addresses,
    which `allow-aws-apis` leaves closed with the rest of the VPC.

    No addresses, no rule: an egress rule without `to` would admit every destination."""
    blocks = [str(ipaddress.IPv4Network(cidr)) for cidr in cidrs]
    rules = [{"to": [{"ipBlock": {"cidr": b}} for b in blocks], "ports": [{"protocol": "TCP", "port": 443}]}]
    return {"podSelector": {}, "policyTypes": ["Egress"], "egress": rules if blocks else []}


def interface_endpoint_policy(tenant: TenantSpec, cidrs: Sequence[str]) -> dict[str, Any]:
    """The NetworkPolicy that admits a team's pods to the VPC's interface endpoints (see `interface_endpoint_egress`);
    only for a VPC that has such endpoints."""
    return _policy(tenant, INTERFACE_ENDPOINTS_POLICY, interface_endpoint_egress(cidrs))


def role_binding(tenant: TenantSpec) -> dict[str, Any]:
    """The team's groups get the built-in `edit` role in their namespace (no RBAC or quota changes)."""
    return {
        "metadata": {"name": "team-edit", "namespace": tenant.namespace, "labels": dict(tenant.labels)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [
            {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"} for group in tenant.groups
        ],
    }
