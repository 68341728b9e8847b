"""The AWS side of the GPU node pools (cloud layer): Karpenter's interruption queue and its EventBridge rules,
Karpenter's node and controller roles with the node role's access entry and the controller's Pod Identity
association, and the managed node groups of `provisioner: node_group` pools (fixed size; on an ODCR or Capacity
Block, placed in the reservation's AZ only).

The Kubernetes side (Karpenter's charts, EC2NodeClasses, NodePools, device plugin, warm capacity) is
`infra.gpu_pools.component.GpuNodePools`, in the cluster layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.cost.reservation import TAG as RESERVATION_TAG
from mlplatform.infra.gpu_pools import documents
from mlplatform.infra.gpu_pools.documents import PoolSpec
from mlplatform.infra.iam_documents import managed_policy_arn, pod_identity_trust_policy, service_trust_policy
from mlplatform.infra.node_launch import node_launch_template

COMPONENT_TYPE = "mlplatform:gpu_pools:GpuPoolsCloud"


@dataclass(frozen=True, kw_only=True)
class GpuPoolsCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name as an Output of the cluster (orders everything here after it)."""
    label: str
    """The cluster's configured name, for descriptions and instance Name tags only."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    private_subnet_zones: pulumi.Input[Sequence[str]] | None = None
    """The AZ of each private subnet, in the same order (a created network knows them). None for an adopted
    network: then a node group on a reservation finds its AZ's subnets with ec2:DescribeSubnets."""
    node_group_role_arn: pulumi.Input[str] | None
    """Node role for managed node group pools (the cluster's node role, which has its EKS access entry); None on an
    adopted cluster, where config refuses such pools."""
    pools: Sequence[PoolSpec]
    karpenter: bool
    """Create Karpenter's AWS resources (some pool, or the general CPU pool, is provisioned by Karpenter)."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    """Kubernetes labels of the reserved node groups' nodes."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the reserved node groups wait for besides the cluster (its CNI and Pod Identity add-ons)."""
    vpc_id: pulumi.Input[str] | None = None
    """The cluster's VPC: where the EFA security group is made (needed when a pool has efa)."""
    node_security_group_id: pulumi.Input[str] | None = None
    """The group the cluster's nodes carry. A node group on an efa pool lists its interfaces, and EKS then adds no
    group of its own, so each interface gets this one and the EFA group."""


class GpuPoolsCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    interruption_queue_name: pulumi.Output[str] | None
    karpenter_node_role_name: pulumi.Output[str] | None
    efa_security_group_id: pulumi.Output[str] | None
    """The security group of every efa pool's nodes: all traffic among its members (EFA's requirement); None
    when no pool has efa."""

    def __init__(self, name: str, args: GpuPoolsCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        account = aws_account(self)
        self._partition, self._account_id, self._region = account.partition, account.account_id, account.region
        self.interruption_queue_name = None
        self.karpenter_node_role_name = None
        self.efa_security_group_id = None
        self._placement_groups: dict[str, aws.ec2.PlacementGroup] = {}
        efa_pools = [p for p in args.pools if p.efa]
        if efa_pools:
            self._create_efa_security_group()
        for pool in efa_pools:
            if pool.creates_placement_group:
                self._create_placement_group(pool)
        if args.karpenter:
            self._create_interruption_handling()
            self._create_karpenter_iam()
        for pool in args.pools:
            if pool.provisioner == "node_group":
                self._create_node_group_pool(pool)
        self.register_outputs(
            {
                "interruption_queue_name": self.interruption_queue_name,
                "karpenter_node_role_name": self.karpenter_node_role_name,
                "efa_security_group_id": self.efa_security_group_id,
            }
        )

    # -- EFA -----------------------------------------------------------------------------------------------------

    def _create_efa_security_group(self) -> None:
        """EFA needs all traffic, in and out, among the interfaces that talk to each other (EC2 user guide, "Prepare
        an EFA-enabled security group"). A group of its own, added to the efa pools' nodes beside the cluster's:
        the cluster's group is EKS's (or, adopted, someone else's) and keeps its rules. It has no other rule: its
        members' other traffic goes by their other group."""
        name, args = self._name, self._args
        if args.vpc_id is None:
            raise ValueError("efa pools need vpc_id (the EFA security group is made in the cluster's VPC)")
        group = aws.ec2.SecurityGroup(
            f"{name}-efa",
            description=f"{args.label}: all traffic among EFA nodes",
            vpc_id=args.vpc_id,
            tags={**args.cost_tags, "Name": f"{args.label}-efa"},
            opts=self._child,
        )
        for direction, rule in (("in", aws.vpc.SecurityGroupIngressRule), ("out", aws.vpc.SecurityGroupEgressRule)):
            rule(
                f"{name}-efa-{direction}",
                security_group_id=group.id,
                referenced_security_group_id=group.id,
                ip_protocol="-1",
                description="EFA: all traffic among the group's members",
                tags=dict(args.cost_tags),
                opts=pulumi.ResourceOptions(parent=group),
            )
        self.efa_security_group_id = group.id

    def _create_placement_group(self, pool: PoolSpec) -> None:
        """A cluster placement group (one AZ, one network segment) for an efa pool without a reservation, named
        as the EC2NodeClass selects it. Free; empty until nodes launch."""
        assert pool.placement_group is not None
        self._placement_groups[pool.name] = aws.ec2.PlacementGroup(
            f"{self._name}-{pool.name}-placement",
            name=pool.placement_group,
            strategy="cluster",
            tags={**self._args.cost_tags, "mlplatform.io/node-pool": pool.name},
            opts=self._child,
        )

    # -- Karpenter ---------------------------------------------------------------------------------------------

    def _create_interruption_handling(self) -> None:
        name, args = self._name, self._args
        self.queue = aws.sqs.Queue(
            f"{name}-interruption-queue",
            name=f"{args.label}-karpenter",
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
                description=f"Karpenter interruption handling for {args.label}: {kind}",
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
        cluster = pulumi.Output.from_input(args.cluster_name)
        self.node_role = aws.iam.Role(
            f"{name}-karpenter-node-role",
            description=f"{args.label}: nodes launched by Karpenter",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        self.node_role_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-karpenter-node-{policy}",
                role=self.node_role.name,
                policy_arn=self._policy_arn(policy),
                opts=self._child,
            )
            for policy in documents.KARPENTER_NODE_ROLE_POLICIES
        ]
        # EC2_LINUX: EKS grants the node permissions itself; no Kubernetes groups or access policies allowed.
        self.node_access = aws.eks.AccessEntry(
            f"{name}-karpenter-node-access",
            cluster_name=args.cluster_name,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        controller_role = aws.iam.Role(
            f"{name}-karpenter-controller-role",
            description=f"{args.label}: Karpenter controller (Pod Identity)",
            assume_role_policy=cluster.apply(
                lambda c: pod_identity_trust_policy(
                    c, documents.KARPENTER_NAMESPACE, documents.KARPENTER_SERVICE_ACCOUNT
                )
            ),
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        self.controller_policy = aws.iam.RolePolicy(
            f"{name}-karpenter-controller-policy",
            role=controller_role.id,
            policy=pulumi.Output.all(
                self._partition, self._region, self._account_id, self.node_role.arn, self.queue.arn, cluster
            ).apply(
                lambda v: documents.karpenter_controller_policy(
                    partition=v[0],
                    region=v[1],
                    account_id=v[2],
                    cluster_name=v[5],
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

    # -- managed node groups -----------------------------------------------------------------------------------

    def _node_group_subnets(self, pool: PoolSpec) -> pulumi.Input[Sequence[str]]:
        """All private subnets, or on a reservation only those in its AZ. No cluster autoscaler runs, so a node
        group keeps min_gpus worth of nodes and never grows for pending pods; spread over several AZs, EKS would
        also launch some of them where the reservation cannot serve them."""
        args, zone = self._args, pool.capacity_reservation_zone or pool.availability_zone
        if zone is None:
            return args.private_subnet_ids
        if args.private_subnet_zones is not None:
            return pulumi.Output.all(args.private_subnet_ids, args.private_subnet_zones).apply(
                lambda v: documents.subnets_in_zone(pool.name, zone, v[0], v[1])
            )
        # An adopted network: ask EC2 which of its private subnets are in the AZ (a read, nothing is created).
        filters = pulumi.Output.from_input(args.private_subnet_ids).apply(
            lambda ids: [
                aws.ec2.GetSubnetsFilterArgs(name="subnet-id", values=list(ids)),
                aws.ec2.GetSubnetsFilterArgs(name="availability-zone", values=[zone]),
            ]
        )
        found = aws.ec2.get_subnets_output(filters=filters, opts=pulumi.InvokeOutputOptions(parent=self))
        return found.ids.apply(lambda ids: documents.subnets_in_zone(pool.name, zone, ids, [zone] * len(ids)))

    def _efa_launch_settings(self, pool: PoolSpec) -> dict[str, Any]:
        """An efa node group's launch template: every EFA interface of its type, each in the nodes' group and the
        EFA group, and its placement group when it has one."""
        args = self._args
        if args.node_security_group_id is None or self.efa_security_group_id is None:
            raise ValueError(f"gpu_pools.{pool.name}: an efa node group needs the nodes' and the EFA security group")
        groups = [args.node_security_group_id, self.efa_security_group_id]
        settings: dict[str, Any] = {
            "network_interfaces": [
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(**interface, security_groups=groups)
                for interface in documents.efa_network_interfaces(pool.instance_types[0])
            ]
        }
        created = self._placement_groups.get(pool.name)
        if pool.placement_group:
            # The group's own Output where this layer makes it: the template (and its nodes) come after the group.
            group_name = created.name if created is not None else pool.placement_group
            settings["placement"] = aws.ec2.LaunchTemplatePlacementArgs(group_name=group_name)
        return settings

    def _create_node_group_pool(self, pool: PoolSpec) -> None:
        name, args = self._name, self._args
        ami_type = documents.node_group_ami_type(pool)
        tags = {**args.cost_tags, "mlplatform.io/node-pool": pool.name, "Name": f"{args.label}-{pool.name}"}
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
        if pool.efa:
            extra.update(self._efa_launch_settings(pool))
        launch_template = node_launch_template(
            f"{name}-{pool.name}-lt",
            description=f"{args.label} GPU pool {pool.name}",
            ami_type=ami_type,
            disk_size_gib=pool.disk_size_gib,
            instance_tags=tags,
            tags=args.cost_tags,
            opts=self._child,
            **extra,
        )
        min_nodes, max_nodes = documents.node_group_sizes(pool)
        labels = documents.pool_node_labels(pool, args.cost_labels)
        if args.node_group_role_arn is None:
            raise ValueError(f"gpu_pools.{pool.name}: a node_group pool needs the cluster's node role")
        aws.eks.NodeGroup(
            f"{name}-{pool.name}",
            cluster_name=args.cluster_name,
            node_role_arn=args.node_group_role_arn,
            subnet_ids=self._node_group_subnets(pool),
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
            tags={
                **args.cost_tags,
                **(
                    {RESERVATION_TAG: pool.capacity_reservation_facts.to_tag()}
                    if pool.capacity_reservation_facts
                    else {}
                ),
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args.depends_on), ignore_changes=["scalingConfig.desiredSize"]
            ),
        )
