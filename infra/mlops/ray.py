"""Ray on Kubernetes (cluster layer): the KubeRay operator (pinned chart) and one RayCluster per configured entry.

The Ray pods' Pod Identity role (read the lake's datasets, write under its own prefix) is
`infra.mlops.cloud.RayCloud`, in the cloud layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s_documents import pod_security_labels
from infra.k8s_resources import custom_resource, helm_release
from infra.mlops import documents
from infra.mlops.documents import RAY_NAMESPACE, RAY_OPERATOR_NAMESPACE, RAY_SERVICE_ACCOUNT, RayClusterSpec

COMPONENT_TYPE = "mlplatform:mlops:Ray"


@dataclass(frozen=True, kw_only=True)
class RayArgs:
    clusters: Sequence[RayClusterSpec]
    operator_replicas: int = 1
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    depends_on: Sequence[pulumi.Resource] = ()
    """Node pools (their CRDs and Karpenter) the workers are scheduled on; in a one-program setup also the Ray
    pods' Pod Identity role (`RayCloud`)."""


class Ray(pulumi.ComponentResource):
    """KubeRay and Ray clusters. Needs the `kubernetes` provider in `opts.providers`."""

    def __init__(self, name: str, args: RayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        # The operator gets Roles in this namespace only (it must exist before the operator).
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": RAY_NAMESPACE, "labels": {**labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        operator_ns = k8s.core.v1.Namespace(
            f"{name}-operator-namespace",
            metadata={"name": RAY_OPERATOR_NAMESPACE, "labels": {**labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        self.operator = helm_release(
            f"{name}-kuberay-operator",
            "kuberay-operator",
            RAY_OPERATOR_NAMESPACE,
            documents.kuberay_operator_values(
                replicas=args.operator_replicas, node_selector=args.system_node_selector, labels=labels
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[operator_ns, self.namespace]),
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={"name": RAY_SERVICE_ACCOUNT, "namespace": RAY_NAMESPACE, "labels": labels},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.cluster_names: list[str] = []
        for spec in args.clusters:
            custom_resource(
                f"{name}-{spec.name}",
                documents.ray_cluster(spec, labels),
                pulumi.ResourceOptions(
                    parent=self,
                    # KubeRay finalizes RayClusters: it must outlive them on destroy.
                    depends_on=[self.operator, self.namespace, service_account, *args.depends_on],
                ),
            )
            self.cluster_names.append(spec.name)
        self.register_outputs({"clusters": self.cluster_names})
