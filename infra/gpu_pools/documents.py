"""Pure builders for node pools: Karpenter IAM and interruption handling, EC2NodeClass and NodePool manifests,
Helm values, the NVIDIA device plugin configuration and managed node group launch settings.

No Pulumi imports and no I/O: every function maps a spec to a dict or a string, and the tests validate the
manifests against the upstream Karpenter CRD schemas.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.cost.reservation import ANNOTATION as RESERVATION_ANNOTATION
from mlplatform.infra.cost.reservation import ReservationFacts

if TYPE_CHECKING:
    from mlplatform.infra.registry.documents import ImageRef

GPU_TAINT: dict[str, str] = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
POOL_LABEL = "mlplatform.io/gpu-pool"
DEVICE_PLUGIN_LABEL = "mlplatform.io/nvidia-device-plugin"
TIME_SLICING_CONFIG_LABEL = "nvidia.com/device-plugin.config"
GENERAL_POOL = "general"
KARPENTER_NAMESPACE = "karpenter"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
DEVICE_PLUGIN_NAMESPACE = "nvidia-device-plugin"
EFA_LABEL = "mlplatform.io/efa"
EFA_RESOURCE = "vpc.amazonaws.com/efa"
EFA_DEVICE_PLUGIN_NAMESPACE = "aws-efa-device-plugin"
EFA_ENV: dict[str, str] = {
    # Use EFA or fail: without it libfabric would pick its TCP provider and NCCL would run at a fraction of the
    # network's speed without saying so.
    "FI_PROVIDER": "efa",
    # Ray's workers fork; libfabric's registered memory must survive a fork (libfabric fi_efa(7)).
    "FI_EFA_FORK_SAFE": "1",
    # No hugepages: the pods request none (Karpenter's scheduling does not know a node's hugepages without the
    # alpha NodeOverlay, so a pod that asked for them would stay Pending), and a pod's hugetlb limit is then 0, so
    # libfabric must not map its buffers from hugepages (fi_efa(7) FI_EFA_USE_HUGE_PAGE).
    "FI_EFA_USE_HUGE_PAGE": "0",
}
"""The libfabric environment of pods on an efa pool. Device RDMA is left to libfabric, which uses it where the
instance type has it (p4d, p5) and not elsewhere."""
WARM_CAPACITY_NAMESPACE = "gpu-warm-capacity"
WARM_CAPACITY_PRIORITY = -100
# Tag keys Karpenter owns; EC2NodeClass `tags` may not set them (CEL rules of the v1 CRD).
KARPENTER_RESERVED_TAG_PREFIXES: tuple[str, ...] = ("kubernetes.io/cluster",)
KARPENTER_RESERVED_TAGS: tuple[str, ...] = (
    "eks:eks-cluster-name",
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
)

# EventBridge events Karpenter's interruption controller reads (aws/karpenter-provider-aws v1.14 cloudformation.yaml).
INTERRUPTION_EVENTS: dict[str, tuple[str, str]] = {
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "capacity-reservation-interruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}

KARPENTER_NODE_ROLE_POLICIES: tuple[str, ...] = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)


@dataclass(frozen=True, kw_only=True)
class PoolSpec:
    """One GPU pool, as the builders need it (mapped from the config by infra/platform.py)."""

    name: str
    provisioner: str  # karpenter | node_group
    instance_families: Sequence[str] = ()
    instance_types: Sequence[str] = ()
    capacity_types: Sequence[str] = ("on-demand",)
    architecture: str = "amd64"
    min_gpus: int = 0
    max_gpus: int = 1
    ami_family: str = "al2023"
    ami_alias: str = "al2023@latest"
    release_version: str | None = None
    disk_size_gib: int = 200
    consolidation_policy: str = "WhenEmptyOrUnderutilized"
    consolidate_after: str = "10m"
    expire_after: str = "720h"
    weight: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity_reservation_id: str | None = None
    capacity_reservation_kind: str | None = None  # odcr | capacity_block
    availability_zone: str | None = None
    """A Karpenter pool's AZ without a reservation (an efa pool's own placement group lives in one AZ)."""
    capacity_reservation_zone: str | None = None
    """The reservation's AZ: where a node group is placed; a Karpenter pool's nodes are kept in it when given."""
    on_demand_fallback: bool = False
    """Karpenter pools on a reservation: on-demand capacity when the reservation is full or has ended."""
    time_slicing_replicas: int | None = None
    efa_per_gpu: Fraction | None = None
    """EFA pools: the EFA interfaces per GPU of the pool's types (one ratio, config checks it); None without EFA."""
    placement_group: str | None = None
    """EFA pools: the cluster placement group (by name) the EC2NodeClass or launch template launches into."""
    creates_placement_group: bool = False
    """The cloud layer makes `placement_group` (an efa pool with no reservation and no group named in config)."""
    termination_grace_period: str | None = None
    """The NodePool's `terminationGracePeriod`: how long a draining node waits for its pods, do-not-disrupt ones
    included (None: Karpenter's default, which waits for them indefinitely)."""
    capacity_reservation_facts: ReservationFacts | None = None
    """The reservation's billing facts, carried into the plan so the cost estimate and the budget rule, which see
    only the plan, count the reservation: an annotation of a Karpenter pool's NodePool, a tag of a node group
    (tag values allow no JSON, so the tag has its own encoding)."""

    @property
    def karpenter_capacity_types(self) -> list[str]:
        """The NodePool's `karpenter.sh/capacity-type` values. On a reservation: `reserved` (ODCRs and Capacity
        Blocks; Karpenter launches into the reservations its EC2NodeClass selects) and, only when asked for,
        `on-demand` after it (Karpenter prefers reserved, then spot, then on-demand)."""
        if self.capacity_reservation_id:
            return sorted(["reserved", *(["on-demand"] if self.on_demand_fallback else [])])
        return sorted(self.capacity_types)

    def candidate_types(self) -> list[gpu_catalog.GpuInstance]:
        """The catalog entries this pool may launch."""
        found = [i for t in self.instance_types if (i := gpu_catalog.gpu_instance(t))]
        for family in self.instance_families:
            found += [i for i in gpu_catalog.instances_of_family(family) if i.arch == self.architecture]
        return [i for i in found if i.is_nvidia]

    @property
    def efa(self) -> bool:
        return self.efa_per_gpu is not None

    def efa_devices(self, gpus: int) -> int:
        """The `vpc.amazonaws.com/efa` a pod with `gpus` GPUs of this pool requests (0 without EFA): the EFA
        interfaces that go with its GPUs (config checks that it is a whole number)."""
        return int(self.efa_per_gpu * gpus) if self.efa_per_gpu is not None else 0

    @property
    def needs_device_plugin(self) -> bool:
        """AL2023 NVIDIA AMIs ship the driver and toolkit but not the device plugin; Bottlerocket NVIDIA ships it."""
        return self.ami_family == "al2023"


@dataclass(frozen=True, kw_only=True)
class GeneralPoolSpec:
    """The CPU NodePool for workloads that are not platform controllers (Ray CPU workers, CPU predictors)."""

    instance_families: Sequence[str]
    capacity_types: Sequence[str]
    architecture: str
    max_vcpus: int
    ami_alias: str
    disk_size_gib: int = 100
    consolidate_after: str = "5m"
    expire_after: str = "720h"


# --- Karpenter IAM -------------------------------------------------------------------------------------------


def karpenter_controller_policy(
    *, partition: str, region: str, account_id: str, cluster_name: str, node_role_arn: str, queue_arn: str
) -> str:
    """Least-privilege controller policy, after Karpenter v1.14's CloudFormation reference.

    Launches, tags and deletes only resources tagged for this cluster and a NodePool; passes only its node role;
    reads the interruption queue; discovery reads are limited to the region. Zonal shift is not enabled, so its
    read permission is left out.
    """
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"}
    request_owned = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster_name,
    }
    launched = [
        f"{ec2}:*:{kind}/*"
        for kind in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    profile = f"arn:{partition}:iam::{account_id}:instance-profile/*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AllowScopedEC2InstanceAccessActions",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": [
                f"{ec2}::image/*",
                f"{ec2}::snapshot/*",
                f"{ec2}:*:security-group/*",
                f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*",
                f"{ec2}:*:placement-group/*",
            ],
        },
        {
            "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": f"{ec2}:*:launch-template/*",
            "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Resource": launched,
            "Condition": {"StringEquals": request_owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": launched,
            "Condition": {
                "StringEquals": {
                    **request_owned,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": f"{ec2}:*:instance/*",
            "Condition": {
                "StringEquals": owned,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Effect": "Allow",
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "AllowPassingInstanceRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": node_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        },
        {
            "Sid": "AllowScopedInstanceProfileCreationActions",
            "Effect": "Allow",
            "Action": ["iam:CreateInstanceProfile"],
            "Resource": profile,
            "Condition": {
                "StringEquals": {**request_owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileTagActions",
            "Effect": "Allow",
            "Action": ["iam:TagInstanceProfile"],
            "Resource": profile,
            "Condition": {
                "StringEquals": {
                    **owned,
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                    **request_owned,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileActions",
            "Effect": "Allow",
            "Action": [
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            "Resource": profile,
            "Condition": {
                "StringEquals": {**owned, "aws:ResourceTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        },
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Effect": "Allow",
            "Action": "eks:DescribeCluster",
            "Resource": f"arn:{partition}:eks:{region}:{account_id}:cluster/{cluster_name}",
        },
        {
            "Sid": "AllowInterruptionQueueActions",
            "Effect": "Allow",
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            "Resource": queue_arn,
        },
        {
            "Sid": "AllowRegionalReadActions",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {
            "Sid": "AllowSSMReadActions",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
        },
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"},
        {
            "Sid": "AllowUnscopedInstanceProfileListAction",
            "Effect": "Allow",
            "Action": "iam:ListInstanceProfiles",
            "Resource": "*",
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Effect": "Allow",
            "Action": "iam:GetInstanceProfile",
            "Resource": profile,
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def interruption_queue_policy(queue_arn: str) -> str:
    """EventBridge (and SQS itself) may send to the queue; nothing may use it without TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "EC2InterruptionPolicy",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "DenyHTTP",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        },
        sort_keys=True,
    )


def interruption_event_pattern(kind: str) -> str:
    source, detail_type = INTERRUPTION_EVENTS[kind]
    return json.dumps({"source": [source], "detail-type": [detail_type]}, sort_keys=True)


# --- Helm values ---------------------------------------------------------------------------------------------


def karpenter_values(
    *,
    cluster_name: str,
    interruption_queue: str,
    region: str,
    replicas: int,
    system_node_selector: Mapping[str, str],
) -> dict[str, Any]:
    return {
        "settings": {
            "clusterName": cluster_name,
            "interruptionQueue": interruption_queue,
            # Launching into ODCRs and Capacity Blocks (capacity type `reserved`). Beta and on by default since
            # 1.6; set explicitly so that a chart whose default changes cannot silently strand a reservation.
            "featureGates": {"reservedCapacity": True},
        },
        # A fixed name: the Pod Identity association is made for this service account.
        "serviceAccount": {"create": True, "name": KARPENTER_SERVICE_ACCOUNT},
        "replicas": replicas,
        "controller": {
            # The chart (1.14.1) sets no region and Pod Identity injects none, so without AWS_REGION the controller
            # asks IMDS, which a pod cannot reach on nodes with hop limit 1, and panics at start (operator.go,
            # aws/karpenter-provider-aws#8219). `controller.env` is the chart's only way to set it.
            "env": [{"name": "AWS_REGION", "value": region}],
            "resources": {"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        },
        # Karpenter runs on the managed system nodes, never on nodes it manages itself.
        "nodeSelector": {"kubernetes.io/os": "linux", **system_node_selector},
        "logLevel": "info",
    }


def device_plugin_values(pools: Sequence[PoolSpec]) -> dict[str, Any]:
    """NVIDIA device plugin: only on nodes labelled for it, tolerating the GPU taint; time-slicing per pool."""
    values: dict[str, Any] = {
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
        ],
        # The chart's default affinity needs Node Feature Discovery labels; our pools label their nodes instead.
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": DEVICE_PLUGIN_LABEL, "operator": "In", "values": ["true"]}]}
                    ]
                }
            }
        },
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    }
    sliced = [p for p in pools if p.time_slicing_replicas and p.needs_device_plugin]
    if sliced:
        config_map = {"default": "version: v1\n"}
        for pool in sliced:
            config_map[time_slicing_config_name(pool.name)] = time_slicing_config(pool.time_slicing_replicas or 1)
        values["config"] = {"map": config_map, "default": "default"}
    return values


def efa_device_plugin_values() -> dict[str, Any]:
    """The EFA device plugin (eks-charts aws-efa-k8s-device-plugin): on efa pools' nodes only, tolerating the GPU
    taint. It advertises `vpc.amazonaws.com/efa`, one per EFA device. The chart runs it privileged on the host
    network (it reads /dev/infiniband), so its namespace is Pod Security `privileged`; the chart's own affinity
    keeps it to EFA instance types as well."""
    return {
        "nodeSelector": {EFA_LABEL: "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}, "limits": {"memory": "128Mi"}},
    }


def efa_network_interfaces(instance_type: str) -> list[dict[str, Any]]:
    """A node group launch template's interfaces on an efa pool: one `efa` interface per EFA network card, the
    first as the primary (device 0 on card 0), as Karpenter makes them for its own nodes."""
    spec = gpu_catalog.gpu_instance(instance_type)
    count = spec.efa_interfaces if spec else 0
    if not count:
        raise ValueError(f"{instance_type} takes no EFA interface")
    return [
        {
            "network_card_index": card,
            "device_index": 0 if card == 0 else 1,
            "interface_type": "efa",
            "delete_on_termination": "true",
        }
        for card in range(count)
    ]


def time_slicing_config_name(pool: str) -> str:
    return f"{pool}-time-sliced"


def time_slicing_config(replicas: int) -> str:
    """Device plugin config: each physical GPU is advertised `replicas` times (no memory or fault isolation)."""
    return (
        "version: v1\n"
        "sharing:\n"
        "  timeSlicing:\n"
        "    resources:\n"
        "      - name: nvidia.com/gpu\n"
        f"        replicas: {replicas}\n"
    )


# --- Karpenter manifests -------------------------------------------------------------------------------------


def pool_node_labels(pool: PoolSpec, cost_labels: Mapping[str, str]) -> dict[str, str]:
    labels = {**cost_labels, **pool.labels, POOL_LABEL: pool.name, "nvidia.com/gpu.present": "true"}
    if pool.needs_device_plugin:
        labels[DEVICE_PLUGIN_LABEL] = "true"
    if pool.time_slicing_replicas and pool.needs_device_plugin:
        labels[TIME_SLICING_CONFIG_LABEL] = time_slicing_config_name(pool.name)
    if pool.efa:
        labels[EFA_LABEL] = "true"
    return labels


def node_class_tags(cost_tags: Mapping[str, str], pool: str) -> dict[str, str]:
    """Tags for instances, volumes and ENIs Karpenter launches: every cost tag plus the pool."""
    tags = {
        k: v
        for k, v in cost_tags.items()
        if k not in KARPENTER_RESERVED_TAGS and not k.startswith(KARPENTER_RESERVED_TAG_PREFIXES)
    }
    tags["mlplatform.io/node-pool"] = pool
    return dict(sorted(tags.items()))


def _block_devices(ami_family: str, size_gib: int) -> list[dict[str, Any]]:
    ebs = {
        "volumeSize": f"{size_gib}Gi",
        "volumeType": "gp3",
        "iops": 3000,
        "throughput": 125,
        "encrypted": True,
        "deleteOnTermination": True,
    }
    if ami_family == "bottlerocket":
        # Bottlerocket: a small OS volume and a data volume for images and pods.
        os_volume = {**ebs, "volumeSize": "4Gi"}
        return [
            {"deviceName": "/dev/xvda", "ebs": os_volume},
            {"deviceName": "/dev/xvdb", "rootVolume": False, "ebs": ebs},
        ]
    return [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs}]


def ec2_node_class(
    *,
    name: str,
    ami_alias: str,
    ami_family: str,
    node_role_name: str,
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
    disk_size_gib: int,
    tags: Mapping[str, str],
    capacity_reservation_ids: Sequence[str] = (),
    placement_group: str | None = None,
) -> dict[str, Any]:
    """A karpenter.k8s.aws/v1 EC2NodeClass. Subnets and security groups are selected by id, so an adopted VPC
    needs no extra tags and no other subnet can be picked up by accident.

    Capacity reservations are selected by id too (one term each: `id` stands alone in a term). Karpenter v1.14
    uses only the reservations listed here, open ones included, and launches into one only in its AZ, so the
    subnets must include a subnet of that AZ (every private subnet of the stack is listed).

    EFA: the class lists no `networkInterfaces`. When a pending pod requests `vpc.amazonaws.com/efa`, Karpenter
    launches the instance with one `efa` interface per EFA network card, as many as the type takes, the first as
    the primary (pkg/providers/launchtemplate/launchtemplate.go generateNetworkInterfaces, amifamily/resolver.go,
    v1.14.1); the CRD's own list allows only `interface` and `efa-only`, which would leave the primary card without
    EFA. `placement_group` selects a cluster placement group by name (Karpenter reads it with
    ec2:DescribePlacementGroups, which its controller policy allows)."""
    spec: dict[str, Any] = {
        "role": node_role_name,
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": [{"id": s} for s in subnet_ids],
        "securityGroupSelectorTerms": [{"id": s} for s in security_group_ids],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": _block_devices(ami_family, disk_size_gib),
        "tags": dict(tags),
    }
    if capacity_reservation_ids:
        spec["capacityReservationSelectorTerms"] = [{"id": r} for r in capacity_reservation_ids]
    if placement_group:
        spec["placementGroupSelector"] = {"name": placement_group}
    return {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": name}, "spec": spec}


def cpu_limit_for(pool: PoolSpec) -> int:
    """The NodePool cpu limit that never binds before the GPU limit: max GPUs x the most vCPUs per GPU."""
    per_gpu = max((i.vcpus / i.gpu_count for i in pool.candidate_types() if i.gpu_count), default=32)
    return int(pool.max_gpus * per_gpu)


def gpu_node_pool(pool: PoolSpec, cost_labels: Mapping[str, str]) -> dict[str, Any]:
    """A karpenter.sh/v1 NodePool: tainted for GPU pods only, limited to the pool's GPUs, consolidating."""
    requirements: list[dict[str, Any]] = []
    if pool.instance_families:
        requirements.append(
            {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": sorted(pool.instance_families)}
        )
    if pool.instance_types:
        requirements.append(
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": sorted(pool.instance_types)}
        )
    requirements += [
        {"key": "karpenter.k8s.aws/instance-gpu-manufacturer", "operator": "In", "values": ["nvidia"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": pool.karpenter_capacity_types},
        {"key": "kubernetes.io/arch", "operator": "In", "values": [pool.architecture]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    if pool.capacity_reservation_id and pool.capacity_reservation_zone:
        # Reserved nodes are in the reservation's AZ anyway; this keeps on-demand fallback nodes beside them.
        requirements.append(
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [pool.capacity_reservation_zone]}
        )
    elif pool.availability_zone:
        # One AZ: where the pool's own cluster placement group is.
        requirements.append(
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [pool.availability_zone]}
        )
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": pool_node_labels(pool, cost_labels)},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
                "requirements": requirements,
                "taints": [dict(GPU_TAINT)],
                "expireAfter": pool.expire_after,
                **({"terminationGracePeriod": pool.termination_grace_period} if pool.termination_grace_period else {}),
            },
        },
        "disruption": {
            "consolidationPolicy": pool.consolidation_policy,
            "consolidateAfter": pool.consolidate_after,
            # At most one GPU node of this pool is disrupted at a time (training jobs and model servers restart).
            "budgets": [{"nodes": "1"}],
        },
        "limits": {"nvidia.com/gpu": str(pool.max_gpus), "cpu": str(cpu_limit_for(pool))},
    }
    if pool.weight is not None:
        spec["weight"] = pool.weight
    metadata: dict[str, Any] = {"name": pool.name}
    if pool.capacity_reservation_id and pool.capacity_reservation_facts:
        metadata["annotations"] = {RESERVATION_ANNOTATION: pool.capacity_reservation_facts.to_annotation()}
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": metadata, "spec": spec}


def general_node_pool(general: GeneralPoolSpec, cost_labels: Mapping[str, str]) -> dict[str, Any]:
    """The untainted CPU NodePool. GPU instance types are excluded so a CPU pod never holds a GPU node."""
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": GENERAL_POOL},
        "spec": {
            "template": {
                "metadata": {"labels": {**cost_labels, POOL_LABEL: GENERAL_POOL}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": GENERAL_POOL},
                    "requirements": [
                        {
                            "key": "karpenter.k8s.aws/instance-family",
                            "operator": "In",
                            "values": sorted(general.instance_families),
                        },
                        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "DoesNotExist"},
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": sorted(general.capacity_types),
                        },
                        {"key": "kubernetes.io/arch", "operator": "In", "values": [general.architecture]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                    "expireAfter": general.expire_after,
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": general.consolidate_after,
                "budgets": [{"nodes": "10%"}],
            },
            "limits": {"cpu": str(general.max_vcpus)},
            "weight": 10,
        },
    }


def warm_capacity_deployment(pool: PoolSpec, pause_image: ImageRef, labels: Mapping[str, str]) -> dict[str, Any]:
    """Placeholder pods that keep `min_gpus` GPUs of a Karpenter pool running.

    Karpenter has no minimum size; these lowest-priority pods request one GPU each, so the GPUs stay provisioned,
    and any real GPU pod preempts one at once (the placeholder then goes Pending and Karpenter adds capacity).
    """
    selector = {"app.kubernetes.io/name": "gpu-warm-capacity", POOL_LABEL: pool.name}
    return {
        "metadata": {
            "name": f"warm-{pool.name}",
            "namespace": WARM_CAPACITY_NAMESPACE,
            "labels": {**labels, **selector},
        },
        "spec": {
            "replicas": pool.min_gpus,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**labels, **selector}},
                "spec": {
                    "priorityClassName": "gpu-warm-capacity",
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "nodeSelector": {POOL_LABEL: pool.name},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65535,
                        "runAsGroup": 65535,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "pause",
                            "image": pause_image,
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi", "nvidia.com/gpu": "1"},
                                "limits": {"memory": "16Mi", "nvidia.com/gpu": "1"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


# --- managed node groups (reserved capacity) -------------------------------------------------------------------


def node_group_ami_type(pool: PoolSpec) -> str:
    arch = "x86_64" if pool.architecture == "amd64" else "ARM_64"
    return f"{'BOTTLEROCKET' if pool.ami_family == 'bottlerocket' else 'AL2023'}_{arch}_NVIDIA"


def node_group_sizes(pool: PoolSpec) -> tuple[int, int]:
    """(min nodes, max nodes) from the pool's GPU bounds and its one instance type."""
    spec = gpu_catalog.gpu_instance(pool.instance_types[0])
    per_node = spec.gpu_count if spec and spec.gpu_count else 1
    return pool.min_gpus // per_node, max(1, pool.max_gpus // per_node)


def subnets_in_zone(pool: str, zone: str, subnet_ids: Sequence[str], subnet_zones: Sequence[str]) -> list[str]:
    """The private subnets in `zone` (subnet ids and their AZs in the same order). A node group on a capacity
    reservation is placed only there: EKS spreads a group over all its subnets, and a reservation serves
    instances in its own AZ only."""
    if len(subnet_ids) != len(subnet_zones):
        raise ValueError(f"{len(subnet_ids)} subnet ids but {len(subnet_zones)} AZs")
    found = [s for s, z in zip(subnet_ids, subnet_zones, strict=True) if z == zone]
    if not found:
        where = f" (they are in {', '.join(dict.fromkeys(subnet_zones))})" if subnet_zones else ""
        raise ValueError(
            f"gpu_pools.{pool}.capacity_reservation.availability_zone: none of the stack's private subnets is in "
            f"{zone}{where}; use a reservation in one of the stack's AZs (`mlp preflight` checks this before a deploy)"
        )
    return found


def capacity_reservation_launch_settings(pool: PoolSpec) -> dict[str, Any]:
    """Launch template settings that target the pool's ODCR or Capacity Block."""
    if not pool.capacity_reservation_id:
        return {}
    settings: dict[str, Any] = {
        "capacity_reservation_specification": {
            "capacity_reservation_target": {"capacity_reservation_id": pool.capacity_reservation_id}
        }
    }
    if pool.capacity_reservation_kind == "capacity_block":
        settings["instance_market_options"] = {"market_type": "capacity-block"}
    return settings


def node_group_capacity_type(pool: PoolSpec) -> str:
    if pool.capacity_reservation_kind == "capacity_block":
        return "CAPACITY_BLOCK"
    return "SPOT" if pool.capacity_types == ("spot",) or list(pool.capacity_types) == ["spot"] else "ON_DEMAND"
