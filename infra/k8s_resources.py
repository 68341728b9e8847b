"""Small resource helpers the domains share: a custom resource from a built manifest, a pinned Helm release (both
cluster layer), and a Pod Identity role for one service account (cloud layer). Each creates exactly what its
arguments say, under the caller's component (pass `opts` with `parent`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from mlplatform.infra.catalog import versions
from mlplatform.infra.iam_documents import pod_identity_trust_policy
from mlplatform.infra.registry.documents import ImageCache
from mlplatform.infra.registry.images import with_chart_images


def custom_resource(
    resource_name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """A custom resource from a pure builder's manifest (apiVersion, kind, metadata, spec)."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=opts,
    )


def helm_release(
    resource_name: str,
    chart_key: str,
    namespace: str,
    values: pulumi.Input[Mapping[str, Any]],
    opts: pulumi.ResourceOptions,
    *,
    release_name: str | None = None,
    timeout: int | None = None,
    image_cache: ImageCache | None = None,
) -> k8s.helm.v3.Release:
    """A Helm release of a chart pinned in the version catalog, rolled back if it fails (atomic). With
    `image_cache`, the chart's default images whose values keys are known come through the cache
    (`infra.registry.documents.CHART_IMAGES`)."""
    chart = versions.chart(chart_key)
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name or chart_key,
        chart=chart.name,
        version=chart.version,
        repository_opts={"repo": chart.repository} if chart.repository else None,
        namespace=namespace,
        values=with_chart_images(values, chart_key, image_cache),
        atomic=True,
        cleanup_on_fail=True,
        max_history=5,
        timeout=timeout,
        opts=opts,
    )


def pod_identity_role(
    resource_name: str,
    *,
    cluster_name: pulumi.Input[str],
    namespace: str,
    service_account: str,
    description: str,
    policy: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    also_service_accounts: Sequence[str] = (),
) -> aws.eks.PodIdentityAssociation:
    """An IAM role that only the given service account of the given cluster can assume (EKS Pod Identity), its
    inline policy, and the association: `<name>-role`, `<name>-policy`, `<name>-pod-identity`. Each of
    `also_service_accounts` (same namespace) gets an association to the same role, `<name>-pod-identity-<account>`,
    and the trust policy admits it; the first association is returned.

    `cluster_name` is the cluster's Output: the trust policy and the association name the cluster, so both are
    created after it. The association waits for the policy (no value links them): a workload that starts as soon
    as the association exists must find its permissions in place."""
    accounts = [service_account, *also_service_accounts]
    role = aws.iam.Role(
        f"{resource_name}-role",
        description=description[:1000],
        assume_role_policy=pulumi.Output.from_input(cluster_name).apply(
            lambda cluster: pod_identity_trust_policy(cluster, namespace, accounts)
        ),
        tags=dict(tags),
        opts=opts,
    )
    role_policy = aws.iam.RolePolicy(f"{resource_name}-policy", role=role.id, policy=policy, opts=opts)
    after_policy = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role_policy]))
    associations = [
        aws.eks.PodIdentityAssociation(
            f"{resource_name}-pod-identity" + (f"-{account}" if account != service_account else ""),
            cluster_name=cluster_name,
            namespace=namespace,
            service_account=account,
            role_arn=role.arn,
            tags=dict(tags),
            opts=after_policy,
        )
        for account in accounts
    ]
    return associations[0]
