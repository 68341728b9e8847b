"""Maps the validated config to component arguments and wires the domains in order.

This is the only module that knows the order (keys, network, data lake, cluster, node pools, ...) and which
outputs feed which inputs. Domains never import each other; values pass through here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.catalog import versions
from infra.cluster import AdminAccess, Cluster, ClusterArgs, SystemNodeGroupArgs
from infra.config import GpuPoolConfig, PlatformConfig
from infra.data import DataLake, DataLakeArgs, ZoneSpec
from infra.gpu_pools import GeneralPoolSpec, GpuNodePools, GpuNodePoolsArgs, PoolSpec
from infra.network import AdoptedNetwork, AdoptedNetworkArgs, Network, NetworkArgs, TerraformStateSource
from infra.security import PlatformKeys, PlatformKeysArgs
from infra.tagging import cost_labels, platform_tags

SYSTEM_NODE_LABEL = {"node.mlplatform.io/role": "system"}


@dataclass(frozen=True)
class PlatformOutputs:
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    lake_buckets: dict[str, pulumi.Output[str]]
    lake_key_arn: pulumi.Output[str]


class Platform:
    """Builds one stack's platform. Creating it registers every resource; it exports nothing itself."""

    def __init__(self, cfg: PlatformConfig, stack: str) -> None:
        self.cfg = cfg
        self.tags = platform_tags(cfg.tags, stack)
        self.labels = cost_labels(cfg.tags)
        self.aws = aws.Provider(
            "aws",
            region=cfg.region,
            default_tags={"tags": self.tags},
            allowed_account_ids=[cfg.aws_account_id] if cfg.aws_account_id else None,
        )
        self._opts = pulumi.ResourceOptions(providers={"aws": self.aws})
        self.keys = self._create_keys()
        self.network = self._create_network()
        self.lake = self._create_data_lake()
        self.cluster = self._create_cluster()
        self._k8s_opts = pulumi.ResourceOptions(providers={"aws": self.aws, "kubernetes": self.cluster.provider})
        self.node_pools = self._create_node_pools()

    def _create_keys(self) -> PlatformKeys:
        return PlatformKeys(
            "platform",
            PlatformKeysArgs(
                alias_prefix=self.cfg.cluster_name, tags=self.tags, protect=self.cfg.cluster.deletion_protection
            ),
            opts=self._opts,
        )

    def _create_network(self) -> Network | AdoptedNetwork:
        cfg = self.cfg
        net = cfg.network
        if net.adopt is not None:
            adopt = net.adopt
            state = adopt.terraform_state
            return AdoptedNetwork(
                "network",
                AdoptedNetworkArgs(
                    vpc_id=adopt.vpc_id,
                    private_subnet_ids=adopt.private_subnet_ids,
                    public_subnet_ids=adopt.public_subnet_ids,
                    terraform_state=None
                    if state is None
                    else TerraformStateSource(
                        path=state.path,
                        s3_bucket=state.s3.bucket if state.s3 else None,
                        s3_key=state.s3.key if state.s3 else None,
                        s3_region=state.s3.region if state.s3 else None,
                        output_names=state.outputs.model_dump(),
                    ),
                ),
                opts=self._opts,
            )
        return Network(
            "network",
            NetworkArgs(
                cidr=net.cidr,
                az_count=net.az_count,
                nat=net.nat,
                cluster_name=cfg.cluster_name,
                s3_gateway_endpoint=net.s3_gateway_endpoint,
                interface_endpoints=net.interface_endpoints,
                flow_logs=net.flow_logs.enabled,
                flow_logs_retention_days=net.flow_logs.retention_days,
                flow_logs_traffic_type=net.flow_logs.traffic_type,
                logs_kms_key_arn=self.keys.logs_key_arn,
                tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_data_lake(self) -> DataLake:
        lake = self.cfg.data_lake
        return DataLake(
            "lake",
            DataLakeArgs(
                name_prefix=self.cfg.cluster_name,
                zones=[
                    ZoneSpec(
                        name=zone,
                        transition_to_ia_days=z.transition_to_ia_days,
                        transition_to_glacier_ir_days=z.transition_to_glacier_ir_days,
                        noncurrent_version_expiration_days=z.noncurrent_version_expiration_days,
                        expected_size_gb=z.expected_size_gb,
                    )
                    for zone, z in lake.zones.items()
                ],
                protect=lake.protect,
                access_log_retention_days=lake.access_log_retention_days,
                tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_cluster(self) -> Cluster:
        cfg = self.cfg
        c = cfg.cluster
        ng = c.system_node_group
        return Cluster(
            "cluster",
            ClusterArgs(
                cluster_name=cfg.cluster_name,
                kubernetes_version=c.version,
                support_type=c.support_type,
                private_subnet_ids=self.network.private_subnet_ids,
                endpoint_public=c.endpoint.public,
                public_access_cidrs=c.endpoint.public_cidrs,
                admins=[
                    AdminAccess(principal_arn=a.principal_arn, access_policy=a.access_policy, namespaces=a.namespaces)
                    for a in c.admins
                ],
                addon_versions={
                    **versions.addon_versions(c.version),
                    **{str(k): v for k, v in c.addon_versions.items()},
                },
                system_node_group=SystemNodeGroupArgs(
                    instance_types=ng.instance_types,
                    capacity_type=ng.capacity_type,
                    ami_type=ng.ami_type,
                    min_size=ng.min_size,
                    desired_size=ng.desired_size,
                    max_size=ng.max_size,
                    disk_size_gib=ng.disk_size_gib,
                    labels=SYSTEM_NODE_LABEL,
                ),
                log_retention_days=c.log_retention_days,
                logs_kms_key_arn=self.keys.logs_key_arn,
                deletion_protection=c.deletion_protection,
                region=cfg.region,
                tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_node_pools(self) -> GpuNodePools | None:
        cfg = self.cfg
        cpu = cfg.cpu_pool
        general = (
            GeneralPoolSpec(
                instance_families=cpu.instance_families,
                capacity_types=cpu.capacity_types,
                architecture=cpu.architecture,
                max_vcpus=cpu.max_vcpus,
                ami_alias=f"al2023@{versions.ami_alias_version('al2023')}",
                disk_size_gib=cpu.disk_size_gib,
                consolidate_after=cpu.consolidate_after,
                expire_after=cpu.expire_after,
            )
            if cpu.enabled
            else None
        )
        if not cfg.gpu_pools and general is None:
            return None
        return GpuNodePools(
            "nodepools",
            GpuNodePoolsArgs(
                cluster_name=cfg.cluster_name,
                cluster_security_group_id=self.cluster.cluster_security_group_id,
                private_subnet_ids=self.network.private_subnet_ids,
                node_group_role_arn=self.cluster.node_role_arn,
                pools=[pool_spec(name, pool) for name, pool in cfg.gpu_pools.items()],
                general_pool=general,
                cost_tags=self.tags,
                cost_labels=self.labels,
                karpenter_replicas=1 if cfg.environment == "dev" else 2,
                system_node_selector=SYSTEM_NODE_LABEL,
            ),
            opts=self._k8s_opts,
        )

    def outputs(self) -> PlatformOutputs:
        return PlatformOutputs(
            vpc_id=self.network.vpc_id,
            private_subnet_ids=self.network.private_subnet_ids,
            cluster_name=self.cluster.cluster_name,
            cluster_endpoint=self.cluster.endpoint,
            kubeconfig=self.cluster.kubeconfig,
            lake_buckets=self.lake.bucket_names,
            lake_key_arn=self.lake.key_arn,
        )


def pool_spec(name: str, pool: GpuPoolConfig) -> PoolSpec:
    """The builders' view of one configured GPU pool."""
    reservation = pool.capacity_reservation
    return PoolSpec(
        name=name,
        provisioner=pool.provisioner,
        instance_families=pool.instance_families,
        instance_types=pool.instance_types,
        capacity_types=pool.capacity_types,
        architecture=pool.architecture,
        min_gpus=pool.min_gpus,
        max_gpus=pool.max_gpus,
        ami_family=pool.ami_family,
        ami_alias=pool.ami_alias,
        release_version=pool.release_version,
        disk_size_gib=pool.disk_size_gib,
        consolidation_policy=pool.consolidation_policy,
        consolidate_after=pool.consolidate_after,
        expire_after=pool.expire_after,
        weight=pool.weight,
        labels=pool.labels,
        capacity_reservation_id=reservation.id if reservation else None,
        capacity_reservation_kind=reservation.kind if reservation else None,
        time_slicing_replicas=pool.time_slicing_replicas,
    )
