"""Pure builders for team tenancy: namespace labels, ResourceQuota, LimitRange, NetworkPolicies and RBAC. No
resources, no I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlplatform.infra.k8s_documents import pod_security_labels

TENANT_LABEL = "mlplatform.io/tenant"
TEAM_NAMESPACE_PREFIX = "team-"
"""A team's namespace is `team-<name>`."""
WORKLOAD_SERVICE_ACCOUNT = "workload"
"""Service account of a team's namespace that carries the team's AWS role (Pod Identity)."""
POD_IDENTITY_AGENT = "169.254.170.23/32"  # EKS Pod Identity agent (link-local, on every node)
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
INTERFACE_ENDPOINTS_POLICY = "allow-interface-endpoints"
S3_POLICY = "allow-s3"
INTERNET_POLICY = "allow-internet"


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
    internet_egress: Sequence[str] = ()
    """Public blocks the team's pods may open TCP 443 to (config `tenants.<team>.internet_egress`); none: no
    internet."""

    @property
    def namespace(self) -> str:
        return f"{TEAM_NAMESPACE_PREFIX}{self.name}"

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
    """Default deny, then: the team's own pods, DNS, the platform's services, the Pod Identity agent, scraping by
    the monitoring namespace, and HTTPS to the internet blocks config names for the team (none by default).

    Not here, because their addresses are known only at deploy time (separate policies whose spec is an Output):
    S3 through the gateway endpoint (`s3_egress`: the region's S3 prefix list, no other public address) and the
    VPC's interface endpoints (`interface_endpoint_policy`). Private ranges (other VPC workloads, the database)
    stay closed.
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
                    {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
                ],
            },
        ),
    ]
    if tenant.internet_egress:
        blocks = [str(ipaddress.IPv4Network(b)) for b in tenant.internet_egress]
        policies.append(
            _policy(
                tenant,
                INTERNET_POLICY,
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                # 0.0.0.0/0 (allowed outside prod) still never reaches private ranges this way.
                                {"ipBlock": {"cidr": b, "except": list(PRIVATE_RANGES)}}
                                if b == "0.0.0.0/0"
                                else {"ipBlock": {"cidr": b}}
                                for b in blocks
                            ],
                            "ports": [{"protocol": "TCP", "port": 443}],
                        }
                    ],
                },
            )
        )
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


def s3_egress(cidrs: Sequence[str]) -> dict[str, Any]:
    """The spec of `allow-s3`: HTTPS to the region's S3 address blocks (the AWS-managed prefix list
    `com.amazonaws.<region>.s3`, the destinations of the gateway endpoint's routes), and no other public address.
    From a private subnet, traffic to these goes through the gateway endpoint, whose policy admits this account's
    buckets and the few AWS-owned ones nodes read; the lake's bucket policies admit object requests through it
    only. No blocks, no rule (an egress rule without `to` would admit every destination)."""
    blocks = sorted({ipaddress.IPv4Network(cidr) for cidr in cidrs})
    rules = [{"to": [{"ipBlock": {"cidr": str(b)}} for b in blocks], "ports": [{"protocol": "TCP", "port": 443}]}]
    return {"podSelector": {}, "policyTypes": ["Egress"], "egress": rules if blocks else []}


def s3_policy(tenant: TenantSpec, cidrs: Sequence[str]) -> dict[str, Any]:
    """The NetworkPolicy that admits a team's pods to S3 through the gateway endpoint (`s3_egress`)."""
    return _policy(tenant, S3_POLICY, s3_egress(cidrs))


def interface_endpoint_policy(tenant: TenantSpec, cidrs: Sequence[str]) -> dict[str, Any]:
    """The NetworkPolicy that admits a team's pods to the VPC's interface endpoints (see `interface_endpoint_egress`);
    only for a VPC that has such endpoints."""
    return _policy(tenant, INTERFACE_ENDPOINTS_POLICY, interface_endpoint_egress(cidrs))


TENANT_ROLE = "mlplatform:tenant"
"""The ClusterRole every team's groups get in their own namespace (bound there by a RoleBinding, so it grants
nothing anywhere else). It is the platform's own, not the built-in `edit`: see `tenant_role_rules`."""
TENANT_BINDING = "team-members"
READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
MANAGE = READ + WRITE


def _rule(group: str, resources: Sequence[str], verbs: Sequence[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}


def tenant_role_rules() -> list[dict[str, Any]]:
    """What a team member may do in the team's namespace: run and debug workloads, Ray clusters and inference
    services, with their config, secrets, volumes and service accounts; read (never change) the guardrails.

    Compared with the built-in `edit` (Kubernetes 1.35, `mlp/data/k8s-rbac`), left out on purpose:
    - NetworkPolicies and Ingresses: write would let a member delete default-deny or publish a pod through a load
      balancer (read stays, to see why a connection fails);
    - DaemonSets: a team pod on every node, system nodes included, outside the pools the team's work runs on;
    - PodDisruptionBudgets: one that allows no disruption blocks node drains, Karpenter consolidation and expiry
      and cluster upgrades for everyone sharing the node (the platform's own budgets always let one pod go);
    - ReplicationControllers (legacy), events write (forged events), `serviceaccounts/token` create (a token of the
      team's `workload` service account usable outside the cluster) and `impersonate` on service accounts;
    - `pods/proxy`, `services/proxy` and `pods/attach`: `pods/exec` and `pods/portforward` are enough to debug;
    and never granted by either: Roles and RoleBindings (write), ResourceQuotas and LimitRanges (write), the
    Namespace object (write: its labels select the team's NetworkPolicies, Pod Security level and cluster-wide
    policies), Gateway API objects (a team Gateway would make Envoy Gateway run proxies for it in the platform's
    namespace, outside the team's quota and policies, and a ReferenceGrant would open the team's Services to routes
    elsewhere; models are routed by the platform from config).

    Kept from `edit`: `pods/exec` and `pods/portforward` let a member run commands in, and open a tunnel from their
    workstation to, a pod of their own namespace (with that pod's identity: the team's `workload` service account
    and its lake prefix); neither reaches another namespace. Services can be created, but the team's quota allows
    no LoadBalancer or NodePort Services and `tenant_service_admission_policy` refuses external IPs.
    """
    return [
        _rule("", ["pods"], MANAGE),
        _rule("", ["pods/exec", "pods/portforward"], ("create", "get")),
        _rule("", ["pods/eviction"], ("create",)),
        _rule("", ["pods/log", "pods/status"], READ),
        _rule("", ["services", "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts"], MANAGE),
        _rule(
            "",
            [
                "endpoints",
                "events",
                "limitranges",
                "resourcequotas",
                "resourcequotas/status",
                "services/status",
                "persistentvolumeclaims/status",
            ],
            READ,
        ),
        # A RoleBinding grants `namespaces` on its own namespace only: the team may read it, never relabel it.
        _rule("", ["namespaces", "namespaces/status"], READ),
        _rule(
            "apps",
            [
                "deployments",
                "deployments/scale",
                "statefulsets",
                "statefulsets/scale",
                "replicasets",
                "replicasets/scale",
            ],
            MANAGE,
        ),
        _rule("apps", ["controllerrevisions", "deployments/status", "statefulsets/status"], READ),
        _rule("batch", ["jobs", "cronjobs"], MANAGE),
        _rule("batch", ["jobs/status", "cronjobs/status"], READ),
        _rule("autoscaling", ["horizontalpodautoscalers"], MANAGE),
        _rule("coordination.k8s.io", ["leases"], MANAGE),
        _rule("discovery.k8s.io", ["endpointslices"], READ),
        _rule("events.k8s.io", ["events"], READ),
        _rule("policy", ["poddisruptionbudgets"], READ),
        _rule("networking.k8s.io", ["networkpolicies", "ingresses"], READ),
        _rule("rbac.authorization.k8s.io", ["roles", "rolebindings"], READ),
        _rule("ray.io", ["rayclusters", "rayjobs", "rayservices"], MANAGE),
        _rule("ray.io", ["rayclusters/status", "rayjobs/status", "rayservices/status"], READ),
        _rule("serving.kserve.io", ["inferenceservices", "servingruntimes"], MANAGE),
        _rule("serving.kserve.io", ["inferenceservices/status", "servingruntimes/status"], READ),
    ]


def tenant_role(labels: Mapping[str, str]) -> dict[str, Any]:
    """The team members' ClusterRole: one for all teams, granted per namespace by `role_binding`. No
    `aggregationRule`: no other ClusterRole can add to it."""
    return {"metadata": {"name": TENANT_ROLE, "labels": dict(labels)}, "rules": tenant_role_rules()}


def role_binding(tenant: TenantSpec) -> dict[str, Any]:
    """The team's groups get `mlplatform:tenant` in their namespace, and nowhere else."""
    return {
        "metadata": {"name": TENANT_BINDING, "namespace": tenant.namespace, "labels": dict(tenant.labels)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TENANT_ROLE},
        "subjects": [
            {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"} for group in tenant.groups
        ],
    }


# --- guardrails a namespace cannot change ----------------------------------------------------------------------

CLUSTER_NETWORK_POLICY_API = "networking.k8s.aws/v1alpha1"
TENANT_GUARD_PRIORITY = 10
"""Admin tier, 0-1000, lower first. The team guards select disjoint namespaces, so they share one priority."""
IMDS = "169.254.169.254/32"
TENANT_SERVICE_POLICY = "mlplatform-tenant-services"


def tenant_guard_name(tenant: TenantSpec) -> str:
    return f"mlplatform-tenant-{tenant.name}"


def tenant_network_guard(tenant: TenantSpec) -> dict[str, Any]:
    """The team's Admin-tier ClusterNetworkPolicy (EKS cluster network policies, `networking.k8s.aws/v1alpha1`):
    what no NetworkPolicy of the namespace can open, even one a namespace admin writes.

    Admin-tier rules are evaluated before NetworkPolicies, in order, first match wins: `Pass` hands the traffic
    to the namespace's NetworkPolicies, `Deny` drops it whatever they say. So: the team's own namespace passes
    (its policies decide, as today), every other team namespace (any namespace carrying the tenant label) is
    denied both ways, and so is the EC2 instance metadata service (the node role's credentials; team pods use
    Pod Identity). Everything else falls through to the NetworkPolicies unchanged.

    Requires the VPC CNI's network policy agent with cluster network policies: VPC CNI v1.21.1 or later (the
    pinned v1.22.4 ships agent v1.4.0, whose `ClusterPolicyEndpoint` controller enforces them), on EC2 nodes; the
    CRD is created by EKS's network policy controller (`pkg/crd` of aws/amazon-network-policy-controller-k8s)."""
    own = {"matchLabels": {"kubernetes.io/metadata.name": tenant.namespace}}
    teams = {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]}
    return {
        "apiVersion": CLUSTER_NETWORK_POLICY_API,
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": tenant_guard_name(tenant), "labels": dict(tenant.labels)},
        "spec": {
            "tier": "Admin",
            "priority": TENANT_GUARD_PRIORITY,
            "subject": {"namespaces": own},
            "ingress": [
                {"name": "own-namespace", "action": "Pass", "from": [{"namespaces": own}]},
                {"name": "other-teams", "action": "Deny", "from": [{"namespaces": teams}]},
            ],
            "egress": [
                {"name": "own-namespace", "action": "Pass", "to": [{"namespaces": own}]},
                {"name": "other-teams", "action": "Deny", "to": [{"namespaces": teams}]},
                {"name": "instance-metadata", "action": "Deny", "to": [{"networks": [IMDS]}]},
            ],
        },
    }


def tenant_service_admission_policy(labels: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding that refuse Services with `externalIPs` in team namespaces:
    with one, any pod in the cluster sending to that address would reach the team's pods instead
    (CVE-2020-8554; EKS does not run the DenyServiceExternalIPs admission plugin). The quota already refuses
    LoadBalancer and NodePort Services. The binding selects namespaces by the tenant label, which members cannot
    change (they may not patch their namespace)."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": TENANT_SERVICE_POLICY, "labels": dict(labels)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["services"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                    "message": "team namespaces may not set spec.externalIPs on a Service (CVE-2020-8554)",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": TENANT_SERVICE_POLICY, "labels": dict(labels)},
        "spec": {
            "policyName": TENANT_SERVICE_POLICY,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]}
            },
        },
    }
    return policy, binding
