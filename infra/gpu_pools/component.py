"""GPU node pools: Karpenter (controller, interruption handling, node role), one EC2NodeClass + NodePool per
Karpenter pool, managed node groups for reserved capacity, the NVIDIA device plugin, and warm GPU capacity.

Every Kubernetes object is an explicit resource (no remote Helm component), so `mlp plan` shows each of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.catalog import versions
from infra.gpu_pools import documents
from infra.gpu_pools.documents import GeneralPoolSpec, PoolSpec
from infra.iam_documents import managed_policy_arn, pod_identity_trust_policy, service_trust_policy
from infra.k8s_documents import pod_security_labels
from infra.node_launch import node_launch_template

COMPONENT_TYPE = "mlplatform:gpu_pools:GpuNodePools"


@dataclass(frozen=True, kw_only=True)
class GpuNodePoolsArgs:
    cluster_name: str
    cluster_security_group_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    node_group_role_arn: pulumi.Input[str]
    """Node role for managed node group pools (the cluster's node role, which has its EKS access entry)."""
    pools: Sequence[PoolSpec]
    general_pool: GeneralPoolSpec | None = None
    cost_tags: Mapping[str, str] = field(default_factory=dict)
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    karpenter_replicas: int = 2
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    install_karpenter: bool = True
    """False when Karpenter is already installed in the cluster (then only node classes and pools are created)."""
    karpenter_node_role_name: pulumi.Input[str] | None = None
    """With install_karpenter=False: the existing Karpenter node role's name."""


class GpuNodePools(pulumi.ComponentResource):
    """GPU capacity for one cluster. Needs the `aws` and `kubernetes` providers in `opts.providers`."""

    interruption_queue_name: pulumi.Output[str] | None
    karpenter_node_role_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: GpuNodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._partition = aws.get_partition_output(opts=invoke).partition
        self._account_id = aws.get_caller_identity_output(opts=invoke).account_id
        self._region = aws.get_region_output(opts=invoke).region

        karpenter_pools = [p for p in args.pools if p.provisioner == "karpenter"]
        uses_karpenter = bool(karpenter_pools) or args.general_pool is not None
        self.installs_karpenter = uses_karpenter and args.install_karpenter
        self.interruption_queue_name = None
        self.karpenter_node_role_name = None
        self._crds: list[pulumi.Resource] = []
        if uses_karpenter and args.install_karpenter:
            self._create_interruption_handling()
            self._create_karpenter_iam()
            self._install_karpenter()
        elif uses_karpenter:
            if args.karpenter_node_role_name is None:
                raise ValueError("install_karpenter=False needs karpenter_node_role_name (the existing node role)")
            self.karpenter_node_role_name = pulumi.Output.from_input(args.karpenter_node_role_name)
        for pool in karpenter_pools:
            self._create_karpenter_pool(pool)
        if args.general_pool is not None:
            self._create_general_pool(args.general_pool)
        for pool in args.pools:
            if pool.provisioner == "node_group":
                self._create_node_group_pool(pool)
        self._install_device_plugin()
        self._create_warm_capacity([p for p in karpenter_pools if p.min_gpus > 0])
        self.register_outputs(
            {
                "interruption_queue_name": self.interruption_queue_name,
                "karpenter_node_role_name": self.karpenter_node_role_name,
            }
        )

    # -- Karpenter ---------------------------------------------------------------------------------------------

    def _create_interruption_handling(self) -> None:
        name, args = self._name, self._args
        self.queue = aws.sqs.Queue(
            f"{name}-interruption-queue",
            name=f"{args.cluster_name}-karpenter",
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruption-queue-policy",
            queue_url=self.queue.url,
            policy=self.queue.arn.apply(documents.interruption_queue_policy),
            opts=self._child,
        )
        for kind in documents.INTERRUPTION_EVENTS:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{kind}",
                description=f"Karpenter interruption handling for {args.cluster_name}: {kind}",
                event_pattern=documents.interruption_event_pattern(kind),
                tags=dict(args.cost_tags),
                opts=self._child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{kind}-target",
                rule=rule.name,
                arn=self.queue.arn,
                target_id="KarpenterInterruptionQueueTarget",
                opts=self._child,
            )
        self.interruption_queue_name = self.queue.name

    def _policy_arn(self, policy: str) -> pulumi.Output[str]:
        return self._partition.apply(lambda p: managed_policy_arn(p, policy))

    def _create_karpenter_iam(self) -> None:
        name, args = self._name, self._args
        self.node_role = aws.iam.Role(
            f"{name}-karpenter-node-role",
            description=f"{args.cluster_name}: nodes launched by Karpenter",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        for policy in documents.KARPENTER_NODE_ROLE_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-karpenter-node-{policy}",
                role=self.node_role.name,
                policy_arn=self._policy_arn(policy),
                opts=self._child,
            )
        # EC2_LINUX: EKS grants the node permissions itself; no Kubernetes groups or access policies allowed.
        aws.eks.AccessEntry(
            f"{name}-karpenter-node-access",
            cluster_name=args.cluster_name,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        controller_role = aws.iam.Role(
            f"{name}-karpenter-controller-role",
            description=f"{args.cluster_name}: Karpenter controller (Pod Identity)",
            assume_role_policy=pod_identity_trust_policy(
                args.cluster_name, documents.KARPENTER_NAMESPACE, documents.KARPENTER_SERVICE_ACCOUNT
            ),
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        aws.iam.RolePolicy(
            f"{name}-karpenter-controller-policy",
            role=controller_role.id,
            policy=pulumi.Output.all(
                self._partition, self._region, self._account_id, self.node_role.arn, self.queue.arn
            ).apply(
                lambda v: documents.karpenter_controller_policy(
                    partition=v[0],
                    region=v[1],
                    account_id=v[2],
                    cluster_name=args.cluster_name,
                    node_role_arn=v[3],
                    queue_arn=v[4],
                )
            ),
            opts=self._child,
        )
        self.pod_identity = aws.eks.PodIdentityAssociation(
            f"{name}-karpenter-pod-identity",
            cluster_name=args.cluster_name,
            namespace=documents.KARPENTER_NAMESPACE,
            service_account=documents.KARPENTER_SERVICE_ACCOUNT,
            role_arn=controller_role.arn,
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        self.karpenter_node_role_name = self.node_role.name

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
            values=self.queue.name.apply(
                lambda queue: documents.karpenter_values(
                    cluster_name=args.cluster_name,
                    interruption_queue=queue,
                    replicas=args.karpenter_replicas,
                    system_node_selector=args.system_node_selector,
                )
            ),
            # The controller needs its Pod Identity association before it starts (no value links them).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, crds, self.pod_identity]),
        )
        self._crds = [crds, self.karpenter]

    def _node_class(
        self, resource_name: str, class_name: str, ami_alias: str, ami_family: str, disk_size_gib: int, pool_tag: str
    ) -> k8s.apiextensions.CustomResource:
        args = self._args
        assert self.karpenter_node_role_name is not None
        spec = pulumi.Output.all(
            self.karpenter_node_role_name,
            pulumi.Output.from_input(args.private_subnet_ids),
            pulumi.Output.from_input(args.cluster_security_group_id),
        ).apply(
            lambda v: documents.ec2_node_class(
                name=class_name,
                ami_alias=ami_alias,
                ami_family=ami_family,
                node_role_name=v[0],
                subnet_ids=v[1],
                security_group_ids=[v[2]],
                disk_size_gib=disk_size_gib,
                tags=documents.node_class_tags(args.cost_tags, pool_tag),
            )["spec"]
        )
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": class_name, "labels": dict(args.cost_labels)},
            spec=spec,
            # The CRDs come from the karpenter-crd release; nothing in the spec references it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._crds),
        )

    def _create_karpenter_pool(self, pool: PoolSpec) -> None:
        name, args = self._name, self._args
        node_class = self._node_class(
            f"{name}-{pool.name}-nodeclass", pool.name, pool.ami_alias, pool.ami_family, pool.disk_size_gib, pool.name
        )
        manifest = documents.gpu_node_pool(pool, args.cost_labels)
        k8s.apiextensions.CustomResource(
            f"{name}-{pool.name}-nodepool",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata={**manifest["metadata"], "labels": dict(args.cost_labels)},
            spec=manifest["spec"],
            # The NodePool names its EC2NodeClass; create the class first so no node launches without it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self._crds, node_class]),
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self._crds, node_class]),
        )

    # -- managed node groups -----------------------------------------------------------------------------------

    def _create_node_group_pool(self, pool: PoolSpec) -> None:
        name, args = self._name, self._args
        ami_type = documents.node_group_ami_type(pool)
        tags = {**args.cost_tags, "mlplatform.io/node-pool": pool.name, "Name": f"{args.cluster_name}-{pool.name}"}
        reservation = documents.capacity_reservation_launch_settings(pool)
        extra: dict[str, Any] = {}
        if reservation:
            target = reservation["capacity_reservation_specification"]["capacity_reservation_target"]
            extra["capacity_reservation_specification"] = aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                    **target
                )
            )
        if "instance_market_options" in reservation:
            extra["instance_market_options"] = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(
                **reservation["instance_market_options"]
            )
        launch_template = node_launch_template(
            f"{name}-{pool.name}-lt",
            description=f"{args.cluster_name} GPU pool {pool.name}",
            ami_type=ami_type,
            disk_size_gib=pool.disk_size_gib,
            instance_tags=tags,
            tags=args.cost_tags,
            opts=self._child,
            **extra,
        )
        min_nodes, max_nodes = documents.node_group_sizes(pool)
        labels = documents.pool_node_labels(pool, args.cost_labels)
        aws.eks.NodeGroup(
            f"{name}-{pool.name}",
            cluster_name=args.cluster_name,
            node_role_arn=args.node_group_role_arn,
            subnet_ids=args.private_subnet_ids,
            instance_types=list(pool.instance_types),
            ami_type=ami_type,
            release_version=pool.release_version,
            capacity_type=documents.node_group_capacity_type(pool),
            scaling_config={"min_size": min_nodes, "desired_size": min_nodes, "max_size": max_nodes},
            update_config={"max_unavailable": 1},
            launch_template={"id": launch_template.id, "version": launch_template.latest_version.apply(str)},
            labels=labels,
            taints=[
                {"key": documents.GPU_TAINT["key"], "value": documents.GPU_TAINT["value"], "effect": "NO_SCHEDULE"}
            ],
            tags=dict(args.cost_tags),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
        )

    # -- device plugin and warm capacity -----------------------------------------------------------------------

    def _install_device_plugin(self) -> None:
        name, args = self._name, self._args
        pools = [p for p in args.pools if p.needs_device_plugin]
        if not pools:
            return
        namespace = k8s.core.v1.Namespace(
            f"{name}-device-plugin-namespace",
            metadata={
                "name": documents.DEVICE_PLUGIN_NAMESPACE,
                # The device plugin mounts the kubelet's device-plugin socket directory from the host.
                "labels": {**args.cost_labels, **pod_security_labels("privileged")},
            },
            opts=self._child,
        )
        chart = versions.chart("nvidia-device-plugin")
        k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin",
            name="nvidia-device-plugin",
            chart=chart.name,
            version=chart.version,
            repository_opts={"repo": chart.repository},
            namespace=documents.DEVICE_PLUGIN_NAMESPACE,
            values=documents.device_plugin_values(pools),
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
        priority = k8s.scheduling.v1.PriorityClass(
            f"{name}-warm-capacity-priority",
            metadata={"name": "gpu-warm-capacity", "labels": dict(args.cost_labels)},
            value=documents.WARM_CAPACITY_PRIORITY,
            preemption_policy="Never",
            global_default=False,
            description="Placeholder pods that keep GPU capacity warm; every other pod preempts them.",
            opts=self._child,
        )
        pause = versions.image("pause")
        for pool in pools:
            manifest = documents.warm_capacity_deployment(pool, pause, args.cost_labels)
            k8s.apps.v1.Deployment(
                f"{name}-{pool.name}-warm-capacity",
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, priority, *self._crds]),
            )
