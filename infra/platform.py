"""Maps the validated config to component arguments and wires the domains in order.

This is the only module that knows the order (keys, network, cluster, ...) and which outputs feed which inputs.
Domains never import each other; values pass through here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.catalog import versions
from infra.cluster import AdminAccess, Cluster, ClusterArgs, SystemNodeGroupArgs
from infra.config import PlatformConfig
from infra.network import Network, NetworkArgs
from infra.security import PlatformKeys, PlatformKeysArgs
from infra.tagging import platform_tags


@dataclass(frozen=True)
class PlatformOutputs:
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]


class Platform:
    """Builds one stack's platform. Creating it registers every resource; it exports nothing itself."""

    def __init__(self, cfg: PlatformConfig, stack: str) -> None:
        self.cfg = cfg
        self.tags = platform_tags(cfg.tags, stack)
        self.aws = aws.Provider(
            "aws",
            region=cfg.region,
            default_tags={"tags": self.tags},
            allowed_account_ids=[cfg.aws_account_id] if cfg.aws_account_id else None,
        )
        self._opts = pulumi.ResourceOptions(providers={"aws": self.aws})
        self.keys = self._create_keys()
        self.network = self._create_network()
        self.cluster = self._create_cluster()

    def _create_keys(self) -> PlatformKeys:
        return PlatformKeys(
            "platform",
            PlatformKeysArgs(alias_prefix=self.cfg.cluster_name, tags=self.tags),
            opts=self._opts,
        )

    def _create_network(self) -> Network:
        cfg = self.cfg
        net = cfg.network
        if net.adopt is not None:
            raise NotImplementedError("network.adopt is planned for the Terraform foundation change")
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
                ),
                log_retention_days=c.log_retention_days,
                logs_kms_key_arn=self.keys.logs_key_arn,
                deletion_protection=c.deletion_protection,
                region=cfg.region,
                tags=self.tags,
            ),
            opts=self._opts,
        )

    def outputs(self) -> PlatformOutputs:
        return PlatformOutputs(
            vpc_id=self.network.vpc_id,
            private_subnet_ids=self.network.private_subnet_ids,
            cluster_name=self.cluster.cluster_name,
            cluster_endpoint=self.cluster.endpoint,
            kubeconfig=self.cluster.kubeconfig,
        )
