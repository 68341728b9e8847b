"""Team tenancy: per team a namespace with Pod Security Admission, quota, defaults, network policies, RBAC for
the team's groups (and optional EKS access entries that put IAM principals in those groups), and a Pod Identity
role scoped to the team's prefix in every lake zone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.iam_documents import S3Grant, s3_access_policy
from infra.k8s_resources import pod_identity_role
from infra.tenancy import documents
from infra.tenancy.documents import WORKLOAD_SERVICE_ACCOUNT, PlatformEndpoint, TenantSpec

COMPONENT_TYPE = "mlplatform:tenancy:Tenants"


@dataclass(frozen=True, kw_only=True)
class TenantAccess:
    tenant: TenantSpec
    principal_arns: Sequence[str] = ()
    """IAM roles given an EKS access entry in the team's groups."""


@dataclass(frozen=True, kw_only=True)
class TenantsArgs:
    cluster_name: str
    tenants: Sequence[TenantAccess]
    lake_bucket_arns: Sequence[pulumi.Input[str]]
    key_arn: pulumi.Input[str]
    platform_endpoints: Sequence[PlatformEndpoint] = ()
    monitoring_namespace: str | None = None
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class Tenants(pulumi.ComponentResource):
    """Namespaces for teams. Needs the `aws` and `kubernetes` providers in `opts.providers`."""

    def __init__(self, name: str, args: TenantsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        for access in args.tenants:
            self._create_tenant(access)
        self.register_outputs({"namespaces": [a.tenant.namespace for a in args.tenants]})

    def _create_tenant(self, access: TenantAccess) -> None:
        name, args = self._name, self._args
        tenant = access.tenant
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
        binding = documents.role_binding(tenant)
        k8s.rbac.v1.RoleBinding(
            f"{key}-edit",
            metadata=binding["metadata"],
            role_ref=binding["roleRef"],
            subjects=binding["subjects"],
            opts=inside,
        )
        k8s.core.v1.ServiceAccount(
            f"{key}-workload-service-account",
            metadata={
                "name": WORKLOAD_SERVICE_ACCOUNT,
                "namespace": tenant.namespace,
                "labels": dict(tenant.labels),
            },
            opts=inside,
        )
        tags = {**args.cost_tags, "mlplatform.io/tenant": tenant.name}
        pod_identity_role(
            key,
            cluster_name=args.cluster_name,
            namespace=tenant.namespace,
            service_account=WORKLOAD_SERVICE_ACCOUNT,
            description=f"{args.cluster_name}: team {tenant.name} (Pod Identity): {tenant.lake_prefix} in the lake",
            policy=pulumi.Output.all(args.key_arn, *args.lake_bucket_arns).apply(
                lambda v: s3_access_policy(
                    [S3Grant(arn, tenant.lake_prefix, write=True) for arn in v[1:]], key_arn=v[0]
                )
            ),
            tags=tags,
            opts=self._child,
        )
        for i, principal in enumerate(access.principal_arns):
            aws.eks.AccessEntry(
                f"{key}-access-{i}",
                cluster_name=args.cluster_name,
                principal_arn=principal,
                type="STANDARD",
                kubernetes_groups=list(tenant.groups),
                tags=tags,
                opts=self._child,
            )
