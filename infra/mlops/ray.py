"""Ray on Kubernetes (cluster layer): the KubeRay operator (pinned chart), the `ray` namespace and its network
policies, and one RayCluster per configured entry, in its team's namespace or, without a team, in `ray`.

Each namespace that hosts clusters gets a `ray-head` service account (KubeRay binds its autoscaler Role to it) and
the heads' two network policies (`documents.ray_head_policies`). A team's namespace, its `workload` service account
and its own network policies come from `infra.tenancy`; the AWS roles from the cloud layer (the team's role in
`infra.tenancy.cloud.TenantsCloud`, the platform clusters' in `infra.mlops.cloud.RayCloud`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra import platform_policies
from mlplatform.infra import platform_policy_resources as policy_resources
from mlplatform.infra.k8s_documents import pod_security_labels
from mlplatform.infra.k8s_resources import custom_resource, helm_release
from mlplatform.infra.mlops import documents
from mlplatform.infra.mlops.documents import (
    RAY_HEAD_SERVICE_ACCOUNT,
    RAY_NAMESPACE,
    RAY_OPERATOR_NAMESPACE,
    RAY_SERVICE_ACCOUNT,
    RayClusterSpec,
)
from mlplatform.infra.registry.documents import ImageCache

COMPONENT_TYPE = "mlplatform:mlops:Ray"


@dataclass(frozen=True, kw_only=True)
class RayArgs:
    clusters: Sequence[RayClusterSpec]
    team_namespaces: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per team namespace that hosts clusters, what must exist before anything of Ray goes in: the namespace and
    the team's `workload` service account (made by `infra.tenancy`)."""
    monitoring_namespace: str | None = None
    """Prometheus's namespace: it may scrape the `ray` namespace's metrics port (None: no monitoring)."""
    operator_replicas: int = 1
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    depends_on: Sequence[pulumi.Resource] = ()
    """Node pools (their CRDs and Karpenter) the workers are scheduled on."""
    image_cache: ImageCache | None = None
    """Pull the operator's image through the platform's ECR cache (the clusters' images come in `clusters`)."""


class Ray(pulumi.ComponentResource):
    """KubeRay and Ray clusters. Needs the `kubernetes` provider in `opts.providers`."""

    def __init__(self, name: str, args: RayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        missing = sorted({s.namespace for s in args.clusters if s.team} - set(args.team_namespaces))
        if missing:
            raise ValueError(f"Ray clusters in {', '.join(missing)}: the namespaces are not in team_namespaces")
        self.namespace = self._create_namespace()
        self.operator = self._create_operator()
        self._prepared = self._prepare_namespaces()
        self.cluster_names = self._create_clusters()
        self.register_outputs({"clusters": self.cluster_names})

    def _create_namespace(self) -> k8s.core.v1.Namespace:
        """The platform clusters' namespace, fenced whether or not it hosts any (its policies deny all else)."""
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-namespace",
            metadata={"name": RAY_NAMESPACE, "labels": {**self._labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        for policy in documents.ray_namespace_policies(
            monitoring_namespace=self._args.monitoring_namespace, labels=self._labels
        ):
            _network_policy(f"{self._name}-{policy['metadata']['name']}", policy, inside)
        return namespace

    def _create_operator(self) -> k8s.helm.v3.Release:
        name, args = self._name, self._args
        operator_ns = k8s.core.v1.Namespace(
            f"{name}-operator-namespace",
            metadata={
                "name": RAY_OPERATOR_NAMESPACE,
                "labels": {**self._labels, **pod_security_labels("restricted")},
            },
            opts=self._child,
        )
        # The operator calls no AWS API: its policies name no cloud address.
        policy_resources.network_policies(
            f"{name}-{RAY_OPERATOR_NAMESPACE}",
            lambda _: platform_policies.kuberay_operator_policies(self._labels),
            platform_policies.ClusterAddresses(),
            operator_ns,
            self,
        )
        watched = [RAY_NAMESPACE, *sorted(args.team_namespaces)]
        # The chart puts the operator's Roles in each watched namespace: they must exist first, and so must the
        # admission policy that keeps the operator from making Ingresses and NetworkPolicies there.
        team_resources = [r for ns in sorted(args.team_namespaces) for r in args.team_namespaces[ns]]
        team_resources += self._create_team_guard() if args.team_namespaces else []
        return helm_release(
            f"{name}-kuberay-operator",
            "kuberay-operator",
            RAY_OPERATOR_NAMESPACE,
            documents.kuberay_operator_values(
                replicas=args.operator_replicas,
                node_selector=args.system_node_selector,
                labels=self._labels,
                watch_namespaces=watched,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[operator_ns, self.namespace, *team_resources]),
            image_cache=args.image_cache,
        )

    def _create_team_guard(self) -> list[pulumi.Resource]:
        """`documents.kuberay_team_admission_policy`: what the operator may not make in a team namespace."""
        policy, binding = documents.kuberay_team_admission_policy(self._labels)
        created = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{self._name}-team-objects-policy", metadata=policy["metadata"], spec=policy["spec"], opts=self._child
        )
        bound = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{self._name}-team-objects-policy-binding",
            metadata=binding["metadata"],
            spec=binding["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[created]),
        )
        return [created, bound]

    def _prepare_namespaces(self) -> dict[str, list[pulumi.Resource]]:
        """Per namespace that hosts clusters, or whose RayJobs make them (every watched team namespace): what its
        clusters wait for (the namespace, the service accounts)."""
        name, args = self._name, self._args
        hosting = {s.namespace for s in args.clusters} | set(args.team_namespaces)
        prepared: dict[str, list[pulumi.Resource]] = {}
        for namespace in sorted(hosting):
            base: list[pulumi.Resource] = (
                [self.namespace] if namespace == RAY_NAMESPACE else list(args.team_namespaces[namespace])
            )
            key = name if namespace == RAY_NAMESPACE else f"{name}-{namespace}"
            inside = pulumi.ResourceOptions(parent=self, depends_on=base)
            accounts = [RAY_HEAD_SERVICE_ACCOUNT]
            if namespace == RAY_NAMESPACE:
                accounts.append(RAY_SERVICE_ACCOUNT)  # a team's workers use its `workload` account
                # the `ray` namespace's copies of the head policies come with its own (`_create_namespace`)
            else:
                for policy in documents.ray_head_policies(namespace, self._labels):
                    _network_policy(f"{key}-{policy['metadata']['name']}", policy, inside)
            created: list[pulumi.Resource] = [
                _service_account(
                    f"{key}-{'head-' if account == RAY_HEAD_SERVICE_ACCOUNT else ''}service-account",
                    documents.ray_service_account(account, namespace, self._labels),
                    inside,
                )
                for account in accounts
            ]
            prepared[namespace] = [*base, *created]
        return prepared

    def _create_clusters(self) -> list[str]:
        names: list[str] = []
        for spec in self._args.clusters:
            custom_resource(
                f"{self._name}-{spec.name}",
                documents.ray_cluster(spec, self._labels),
                pulumi.ResourceOptions(
                    parent=self,
                    # KubeRay finalizes RayClusters: it must outlive them on destroy.
                    depends_on=[self.operator, *self._prepared[spec.namespace], *self._args.depends_on],
                ),
            )
            names.append(spec.name)
        return names


def _network_policy(
    resource_name: str, policy: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    return k8s.networking.v1.NetworkPolicy(resource_name, metadata=policy["metadata"], spec=policy["spec"], opts=opts)


def _service_account(
    resource_name: str, account: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.core.v1.ServiceAccount:
    return k8s.core.v1.ServiceAccount(
        resource_name,
        metadata=account["metadata"],
        automount_service_account_token=account["automountServiceAccountToken"],
        opts=opts,
    )
