"""Team tenancy's AWS side (cloud layer): per team a Pod Identity role scoped to the team's prefix in every lake
zone, and optional EKS access entries that put the team's IAM principals in its Kubernetes groups. The Kubernetes
side (namespace, quota, defaults, network policies, RBAC) is `infra.tenancy.component.Tenants`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.iam_documents import S3Grant, s3_access_policy
from mlplatform.infra.k8s_resources import pod_identity_role
from mlplatform.infra.tenancy.documents import WORKLOAD_SERVICE_ACCOUNT, TenantSpec

COMPONENT_TYPE = "mlplatform:tenancy:TenantsCloud"


@dataclass(frozen=True, kw_only=True)
class TenantAccess:
    tenant: TenantSpec
    principal_arns: Sequence[str] = ()
    """IAM roles given an EKS access entry in the team's groups."""
    also_service_accounts: Sequence[str] = ()
    """Further service accounts of the team's namespace that carry the team's role, besides `workload` (the heads
    of the team's Ray clusters: `ray-head`; the pipeline engine's `workflow`)."""
    artifact_prefixes: Sequence[str] = ()
    """Further prefixes of the lake's artifacts zone the team's role reads and writes (its workflows' artifacts,
    `pipelines/<team>/`); needs `TenantsCloudArgs.artifacts_bucket_arn`."""
    feature_grants: Sequence[S3Grant] = ()
    """Grants in the feature store's bucket (`TenantsCloudArgs.features_bucket_arn` replaces their `bucket_arn`):
    the registry and offline files of the Feast project."""


@dataclass(frozen=True, kw_only=True)
class TenantsCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, an Output of the cluster (associations and access entries name it)."""
    label: str
    tenants: Sequence[TenantAccess]
    lake_bucket_arns: Sequence[pulumi.Input[str]]
    key_arn: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str] | None = None
    """The lake's artifacts bucket, for the tenants' `artifact_prefixes`."""
    features_bucket_arn: pulumi.Input[str] | None = None
    """The lake's features bucket, for the tenants' `feature_grants`."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class TenantsCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    def __init__(self, name: str, args: TenantsCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        for access in args.tenants:
            self._create_tenant(access)
        self.register_outputs({})

    def _create_tenant(self, access: TenantAccess) -> None:
        name, args = self._name, self._args
        tenant = access.tenant
        key = f"{name}-{tenant.name}"
        if access.artifact_prefixes and args.artifacts_bucket_arn is None:
            raise ValueError(f"team {tenant.name}: artifact_prefixes need TenantsCloudArgs.artifacts_bucket_arn")
        if access.feature_grants and args.features_bucket_arn is None:
            raise ValueError(f"team {tenant.name}: feature_grants need TenantsCloudArgs.features_bucket_arn")
        extra = list(access.artifact_prefixes)
        features = list(access.feature_grants)
        tags = {**args.cost_tags, "mlplatform.io/tenant": tenant.name}
        pod_identity_role(
            key,
            cluster_name=args.cluster_name,
            namespace=tenant.namespace,
            service_account=WORKLOAD_SERVICE_ACCOUNT,
            description=f"{args.label}: team {tenant.name} (Pod Identity): {tenant.lake_prefix} in the lake",
            policy=pulumi.Output.all(
                args.key_arn, args.artifacts_bucket_arn or "", args.features_bucket_arn or "", *args.lake_bucket_arns
            ).apply(
                lambda v: s3_access_policy(
                    [S3Grant(arn, tenant.lake_prefix, write=True) for arn in v[3:]]
                    + [S3Grant(v[1], prefix, write=True) for prefix in extra]
                    + [dataclasses.replace(g, bucket_arn=v[2]) for g in features],
                    key_arn=v[0],
                )
            ),
            tags=tags,
            opts=self._child,
            also_service_accounts=access.also_service_accounts,
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
