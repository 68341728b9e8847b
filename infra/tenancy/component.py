"""Team tenancy, the Kubernetes side (cluster layer): per team a namespace with Pod Security Admission, quota,
defaults, network policies, the platform's tenant role for the team's groups and the workload service account;
for all teams the tenant ClusterRole and the guardrails a namespace cannot change (an Admin-tier cluster network
policy per team, an admission policy on Services). The team's Pod Identity role and access entries are
`infra.tenancy.cloud.TenantsCloud`, in the cloud layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra.tenancy import documents
from mlplatform.infra.tenancy.documents import WORKLOAD_SERVICE_ACCOUNT, PlatformEndpoint, TenantSpec

COMPONENT_TYPE = "mlplatform:tenancy:Tenants"


@dataclass(frozen=True, kw_only=True)
class TenantsArgs:
    tenants: Sequence[TenantSpec]
    platform_endpoints: Sequence[PlatformEndpoint] = ()
    monitoring_namespace: str | None = None
    interface_endpoint_cidrs: pulumi.Input[Sequence[str]] | None = None
    """The VPC's interface endpoint addresses (the cloud layer's output): each team may reach them on TCP 443.
    None when the VPC has none (config says so): then no such policy."""
    s3_cidrs: pulumi.Input[Sequence[str]] | None = None
    """The region's S3 address blocks (the cloud layer's output): each team may reach them on TCP 443, through the
    S3 gateway endpoint. None: no S3 from team pods."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Cost labels of the cluster-wide objects (the tenant ClusterRole, the admission policy)."""


class Tenants(pulumi.ComponentResource):
    """Namespaces for teams. Needs the `kubernetes` provider in `opts.providers`."""

    def __init__(self, name: str, args: TenantsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.tenant_role = self._create_tenant_role()
        self._create_service_admission_policy()
        self.namespace_resources: dict[str, list[pulumi.Resource]] = {}
        """Per team namespace: the Namespace and its `workload` service account, for what other domains put there
        (a team's Ray clusters)."""
        for tenant in args.tenants:
            self._create_tenant(tenant)
        self.register_outputs({"namespaces": [t.namespace for t in args.tenants]})

    def _create_tenant_role(self) -> k8s.rbac.v1.ClusterRole:
        role = documents.tenant_role(self._args.labels)
        return k8s.rbac.v1.ClusterRole(
            f"{self._name}-tenant-role", metadata=role["metadata"], rules=role["rules"], opts=self._child
        )

    def _create_service_admission_policy(self) -> None:
        policy, binding = documents.tenant_service_admission_policy(self._args.labels)
        created = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{self._name}-service-policy", metadata=policy["metadata"], spec=policy["spec"], opts=self._child
        )
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{self._name}-service-policy-binding",
            metadata=binding["metadata"],
            spec=binding["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[created]),
        )

    def _create_tenant(self, tenant: TenantSpec) -> None:
        name, args = self._name, self._args
        key = f"{name}-{tenant.name}"
        namespace = k8s.core.v1.Namespace(
            f"{key}-namespace",
            metadata={"name": tenant.namespace, "labels": documents.namespace_labels(tenant)},
            opts=self._child,
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        quota = documents.resource_quota(tenant)
        k8s.core.v1.ResourceQuota(f"{key}-quota", metadata=quota["metadata"], spec=quota["spec"], opts=inside)
        limits = documents.limit_range(tenant)
        k8s.core.v1.LimitRange(f"{key}-limits", metadata=limits["metadata"], spec=limits["spec"], opts=inside)
        for policy in documents.network_policies(
            tenant, platform=args.platform_endpoints, monitoring_namespace=args.monitoring_namespace
        ):
            k8s.networking.v1.NetworkPolicy(
                f"{key}-{policy['metadata']['name']}", metadata=policy["metadata"], spec=policy["spec"], opts=inside
            )
        if args.interface_endpoint_cidrs is not None:
            # The addresses are known only once the endpoints exist: the spec is an Output, the object is not.
            endpoints = documents.interface_endpoint_policy(tenant, ())
            spec: pulumi.Output[Any] = pulumi.Output.from_input(args.interface_endpoint_cidrs).apply(
                documents.interface_endpoint_egress
            )
            k8s.networking.v1.NetworkPolicy(
                f"{key}-{endpoints['metadata']['name']}", metadata=endpoints["metadata"], spec=spec, opts=inside
            )
        if args.s3_cidrs is not None:
            s3 = documents.s3_policy(tenant, ())
            s3_spec: pulumi.Output[Any] = pulumi.Output.from_input(args.s3_cidrs).apply(documents.s3_egress)
            k8s.networking.v1.NetworkPolicy(
                f"{key}-{s3['metadata']['name']}", metadata=s3["metadata"], spec=s3_spec, opts=inside
            )
        binding = documents.role_binding(tenant)
        k8s.rbac.v1.RoleBinding(
            f"{key}-members",
            metadata=binding["metadata"],
            role_ref=binding["roleRef"],
            subjects=binding["subjects"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, self.tenant_role]),
        )
        guard = documents.tenant_network_guard(tenant)
        k8s.apiextensions.CustomResource(
            f"{key}-network-guard",
            api_version=guard["apiVersion"],
            kind=guard["kind"],
            metadata=guard["metadata"],
            spec=guard["spec"],
            opts=self._child,
        )
        workload = k8s.core.v1.ServiceAccount(
            f"{key}-workload-service-account",
            metadata={
                "name": WORKLOAD_SERVICE_ACCOUNT,
                "namespace": tenant.namespace,
                "labels": dict(tenant.labels),
            },
            opts=inside,
        )
        self.namespace_resources[tenant.namespace] = [namespace, workload]
