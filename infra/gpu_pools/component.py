"""GPU node pools, the Kubernetes side (cluster layer): Karpenter (pinned CRD and controller charts), one
EC2NodeClass + NodePool per Karpenter pool and for the general CPU pool, the NVIDIA device plugin, and warm GPU
capacity.

The AWS side (interruption queue, Karpenter's roles, access entry and Pod Identity association, reserved-capacity
node groups) is `infra.gpu_pools.cloud.GpuPoolsCloud`, in the cloud layer. Every Kubernetes object is an explicit
resource (no remote Helm component), so `mlp plan` shows each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra import platform_policies
from mlplatform.infra import platform_policy_resources as policy_resources
from mlplatform.infra.catalog import versions
from mlplatform.infra.gpu_pools import documents
from mlplatform.infra.gpu_pools.documents import GeneralPoolSpec, PoolSpec
from mlplatform.infra.k8s_documents import pod_security_labels
from mlplatform.infra.layer_outputs import missing_output
from mlplatform.infra.registry.documents import ImageCache, cached_image
from mlplatform.infra.registry.images import with_chart_images

if TYPE_CHECKING:
    from mlplatform.infra.platform_policies import ClusterAddresses

COMPONENT_TYPE = "mlplatform:gpu_pools:GpuNodePools"


@dataclass(frozen=True, kw_only=True)
class GpuNodePoolsArgs:
    cluster_name: pulumi.Input[str]
    region: str
    """The cluster's region, given to the Karpenter controller (it cannot read it from IMDS on hop-limit-1 nodes)."""
    cluster_security_group_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    pools: Sequence[PoolSpec]
    karpenter_node_role_name: pulumi.Input[str] | None = None
    """The role of the nodes Karpenter launches (it has an EC2_LINUX access entry); needed for Karpenter pools."""
    interruption_queue_name: pulumi.Input[str] | None = None
    """With install_karpenter: the SQS queue Karpenter reads interruption events from."""
    efa_security_group_id: pulumi.Input[str | None] | None = None
    """The cloud layer's EFA security group: efa pools' nodes carry it beside the cluster's."""
    general_pool: GeneralPoolSpec | None = None
    cost_tags: Mapping[str, str] = field(default_factory=dict)
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    karpenter_replicas: int = 2
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    install_karpenter: bool = True
    """False when Karpenter is already installed in the cluster (then only node classes and pools are created)."""
    image_cache: ImageCache | None = None
    """Pull Karpenter's controller and the warm-capacity pause image through the platform's ECR cache."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What Karpenter needs before it starts when both sides are in one program (its Pod Identity association and
    policies, the node role's access entry); the cloud layer provides them before the cluster layer runs."""
    addresses: pulumi.Input[ClusterAddresses] = field(default_factory=lambda: platform_policies.ClusterAddresses())
    """What the namespaces' NetworkPolicies name (the interface endpoints Karpenter calls)."""


class GpuNodePools(pulumi.ComponentResource):
    """GPU capacity for one cluster, in Kubernetes. Needs the `kubernetes` provider in `opts.providers`."""

    def __init__(self, name: str, args: GpuNodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        karpenter_pools = [p for p in args.pools if p.provisioner == "karpenter"]
        uses_karpenter = bool(karpenter_pools) or args.general_pool is not None
        self.installs_karpenter = uses_karpenter and args.install_karpenter
        if uses_karpenter and args.karpenter_node_role_name is None:
            raise ValueError("Karpenter pools need karpenter_node_role_name (the role of the nodes it launches)")
        # What every NodeClass, NodePool and GPU pod waits for (and outlives on delete): Karpenter and its CRDs.
        self._karpenter_ready: list[pulumi.Resource] = list(args.depends_on)
        if self.installs_karpenter:
            if args.interruption_queue_name is None:
                raise ValueError("install_karpenter needs interruption_queue_name (the SQS queue)")
            self._install_karpenter()
        for pool in karpenter_pools:
            self._create_karpenter_pool(pool)
        if args.general_pool is not None:
            self._create_general_pool(args.general_pool)
        self._install_device_plugin()
        self._install_efa_device_plugin()
        self._create_warm_capacity([p for p in karpenter_pools if p.min_gpus > 0])
        self.register_outputs({})

    # -- Karpenter ---------------------------------------------------------------------------------------------

    def _install_karpenter(self) -> None:
        name, args = self._name, self._args
        namespace = k8s.core.v1.Namespace(
            f"{name}-karpenter-namespace",
            metadata={
                "name": documents.KARPENTER_NAMESPACE,
                "labels": {**args.cost_labels, **pod_security_labels("restricted")},
            },
            opts=self._child,
        )
        labels = dict(args.cost_labels)
        policy_resources.network_policies(
            f"{name}-{documents.KARPENTER_NAMESPACE}",
            lambda a: platform_policies.karpenter_policies(a, labels),
            args.addresses,
            namespace,
            self,
        )
        crd_chart = versions.chart("karpenter-crd")
        crds = k8s.helm.v3.Release(
            f"{name}-karpenter-crd",
            name="karpenter-crd",
            chart=crd_chart.name,
            version=crd_chart.version,
            namespace=documents.KARPENTER_NAMESPACE,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        chart = versions.chart("karpenter")
        self.karpenter = k8s.helm.v3.Release(
            f"{name}-karpenter",
            name="karpenter",
            chart=chart.name,
            version=chart.version,
            namespace=documents.KARPENTER_NAMESPACE,
            skip_crds=True,  # the karpenter-crd release owns the CRDs, so `helm upgrade` updates them
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            values=with_chart_images(
                pulumi.Output.all(args.cluster_name, args.interruption_queue_name).apply(
                    lambda v: documents.karpenter_values(
                        cluster_name=v[0],
                        interruption_queue=v[1],
                        region=args.region,
                        replicas=args.karpenter_replicas,
                        system_node_selector=args.system_node_selector,
                    )
                ),
                "karpenter",
                args.image_cache,
            ),
            # The controller needs its Pod Identity association before it starts (no value links them).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, crds, *args.depends_on]),
        )
        self._karpenter_ready = [*args.depends_on, crds, self.karpenter]

    def _node_class(
        self,
        resource_name: str,
        class_name: str,
        ami_alias: str,
        ami_family: str,
        disk_size_gib: int,
        pool_tag: str,
        capacity_reservation_ids: Sequence[str] = (),
        efa: bool = False,
        placement_group: str | None = None,
    ) -> k8s.apiextensions.CustomResource:
        args = self._args
        assert args.karpenter_node_role_name is not None
        groups: list[pulumi.Input[str | None]] = [args.cluster_security_group_id]
        if efa:
            groups.append(pulumi.Output.from_input(args.efa_security_group_id).apply(_efa_group))
        spec = pulumi.Output.all(
            args.karpenter_node_role_name,
            pulumi.Output.from_input(args.private_subnet_ids),
            pulumi.Output.all(*groups),
        ).apply(
            lambda v: documents.ec2_node_class(
                name=class_name,
                ami_alias=ami_alias,
                ami_family=ami_family,
                node_role_name=v[0],
                subnet_ids=v[1],
                security_group_ids=list(v[2]),
                disk_size_gib=disk_size_gib,
                tags=documents.node_class_tags(args.cost_tags, pool_tag),
                capacity_reservation_ids=capacity_reservation_ids,
                placement_group=placement_group,
            )["spec"]
        )
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": class_name, "labels": dict(args.cost_labels)},
            spec=spec,
            # The CRDs come from the karpenter-crd release; nothing in the spec references it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._karpenter_ready),
        )

    def _create_karpenter_pool(self, pool: PoolSpec) -> None:
        name, args = self._name, self._args
        node_class = self._node_class(
            f"{name}-{pool.name}-nodeclass",
            pool.name,
            pool.ami_alias,
            pool.ami_family,
            pool.disk_size_gib,
            pool.name,
            capacity_reservation_ids=[pool.capacity_reservation_id] if pool.capacity_reservation_id else [],
            efa=pool.efa,
            placement_group=pool.placement_group,
        )
        manifest = documents.gpu_node_pool(pool, args.cost_labels)
        k8s.apiextensions.CustomResource(
            f"{name}-{pool.name}-nodepool",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata={**manifest["metadata"], "labels": dict(args.cost_labels)},
            spec=manifest["spec"],
            # The NodePool names its EC2NodeClass; create the class first so no node launches without it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self._karpenter_ready, node_class]),
        )

    def _create_general_pool(self, general: GeneralPoolSpec) -> None:
        name, args = self._name, self._args
        node_class = self._node_class(
            f"{name}-general-nodeclass",
            documents.GENERAL_POOL,
            general.ami_alias,
            "al2023",
            general.disk_size_gib,
            documents.GENERAL_POOL,
        )
        manifest = documents.general_node_pool(general, args.cost_labels)
        k8s.apiextensions.CustomResource(
            f"{name}-general-nodepool",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata={**manifest["metadata"], "labels": dict(args.cost_labels)},
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self._karpenter_ready, node_class]),
        )

    # -- device plugin and warm capacity -----------------------------------------------------------------------

    def _install_device_plugin(self) -> None:
        pools = [p for p in self._args.pools if p.needs_device_plugin]
        if pools:
            labels = dict(self._args.cost_labels)
            self._node_daemon(
                "device-plugin",
                documents.DEVICE_PLUGIN_NAMESPACE,
                "nvidia-device-plugin",
                "nvidia-device-plugin",
                documents.device_plugin_values(pools),
                lambda _: platform_policies.device_plugin_policies(labels),
            )

    def _install_efa_device_plugin(self) -> None:
        """The EFA device plugin on efa pools' nodes: without it no pod can request `vpc.amazonaws.com/efa`, and
        Karpenter launches efa nodes only for pods that do."""
        if any(p.efa for p in self._args.pools):
            labels = dict(self._args.cost_labels)
            self._node_daemon(
                "efa-device-plugin",
                documents.EFA_DEVICE_PLUGIN_NAMESPACE,
                "aws-efa-k8s-device-plugin",
                "efa-device-plugin",
                documents.efa_device_plugin_values(),
                lambda _: platform_policies.efa_device_plugin_policies(labels),
            )

    def _node_daemon(
        self,
        key: str,
        namespace_name: str,
        chart_key: str,
        release_key: str,
        values: dict[str, Any],
        policies: Callable[[Any], list[dict[str, Any]]],
    ) -> None:
        """A device plugin chart in a namespace of its own. Pod Security `privileged`: the plugins mount the
        kubelet's device-plugin socket directory from the host (the EFA plugin runs privileged on the host network
        and opens /dev/infiniband)."""
        name, args = self._name, self._args
        namespace = k8s.core.v1.Namespace(
            f"{name}-{key}-namespace",
            metadata={"name": namespace_name, "labels": {**args.cost_labels, **pod_security_labels("privileged")}},
            opts=self._child,
        )
        policy_resources.network_policies(f"{name}-{namespace_name}", policies, args.addresses, namespace, self)
        chart = versions.chart(chart_key)
        k8s.helm.v3.Release(
            f"{name}-{release_key}",
            name=chart.name,
            chart=chart.name,
            version=chart.version,
            repository_opts={"repo": chart.repository},
            namespace=namespace_name,
            values=values,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )

    def _create_warm_capacity(self, pools: Sequence[PoolSpec]) -> None:
        name, args = self._name, self._args
        if not pools:
            return
        namespace = k8s.core.v1.Namespace(
            f"{name}-warm-capacity-namespace",
            metadata={
                "name": documents.WARM_CAPACITY_NAMESPACE,
                "labels": {**args.cost_labels, **pod_security_labels("restricted")},
            },
            opts=self._child,
        )
        labels = dict(args.cost_labels)
        policy_resources.network_policies(
            f"{name}-{documents.WARM_CAPACITY_NAMESPACE}",
            lambda _: platform_policies.warm_capacity_policies(labels),
            args.addresses,
            namespace,
            self,
        )
        priority = k8s.scheduling.v1.PriorityClass(
            f"{name}-warm-capacity-priority",
            metadata={"name": "gpu-warm-capacity", "labels": dict(args.cost_labels)},
            value=documents.WARM_CAPACITY_PRIORITY,
            preemption_policy="Never",
            global_default=False,
            description="Placeholder pods that keep GPU capacity warm; every other pod preempts them.",
            opts=self._child,
        )
        pause = cached_image(versions.image("pause"), args.image_cache)
        for pool in pools:
            manifest = documents.warm_capacity_deployment(pool, pause, args.cost_labels)
            k8s.apps.v1.Deployment(
                f"{name}-{pool.name}-warm-capacity",
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, priority, *self._karpenter_ready]),
            )


def _efa_group(group: str | None) -> str:
    if not group:
        raise missing_output("a GPU pool has efa", "efa_security_group_id")
    return group
