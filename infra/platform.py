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
from infra.gpu_pools.documents import POOL_LABEL
from infra.ingress import LoadBalancerController, LoadBalancerControllerArgs
from infra.mlops import DatabaseSpec, LakeAccess, Mlflow, MlflowArgs, Ray, RayArgs
from infra.mlops.documents import (
    MLFLOW_NAMESPACE,
    MLFLOW_PORT,
    RAY_CLIENT_PORT,
    RAY_DASHBOARD_PORT,
    RAY_NAMESPACE,
    RayClusterSpec,
    RayGpuGroup,
)
from infra.network import AdoptedNetwork, AdoptedNetworkArgs, Network, NetworkArgs, TerraformStateSource
from infra.observability import Monitoring, MonitoringArgs
from infra.observability.documents import NAMESPACE as MONITORING_NAMESPACE
from infra.observability.documents import PROMETHEUS_URL, MonitoringSpec, platform_monitors
from infra.observability.rules import Thresholds, gpu_hourly_prices
from infra.security import PlatformKeys, PlatformKeysArgs
from infra.serving import InferenceServiceArgs, Serving, ServingArgs
from infra.serving.documents import SERVING_NAMESPACE, VLLM_PORT, VllmServer, default_vllm_resources
from infra.tagging import cost_labels, platform_tags
from infra.tenancy import TenantAccess, Tenants, TenantsArgs
from infra.tenancy.documents import PlatformEndpoint, TenantSpec

SYSTEM_NODE_LABEL = {"node.mlplatform.io/role": "system"}
# Secrets Manager keeps a deleted secret this many days (its name stays taken); 0 deletes at once.
SECRET_RECOVERY_DAYS = {"dev": 0, "staging": 7, "prod": 30}


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
        self._pools: list[pulumi.Resource] = [self.node_pools] if self.node_pools is not None else []
        self.load_balancer_controller = self._create_load_balancer_controller()
        self.mlflow = self._create_mlflow()
        self.ray = self._create_ray()
        self.serving = self._create_serving()
        self.tenants = self._create_tenants()
        self.monitoring = self._create_monitoring()

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

    def _create_load_balancer_controller(self) -> LoadBalancerController | None:
        cfg = self.cfg
        if not (cfg.mlflow.enabled and cfg.mlflow.ingress.enabled):
            return None
        return LoadBalancerController(
            "lb-controller",
            LoadBalancerControllerArgs(
                cluster_name=cfg.cluster_name,
                region=cfg.region,
                vpc_id=self.network.vpc_id,
                replicas=1 if cfg.environment == "dev" else 2,
                cost_tags=self.tags,
                system_node_selector=SYSTEM_NODE_LABEL,
            ),
            opts=self._k8s_opts,
        )

    def _create_mlflow(self) -> Mlflow | None:
        cfg = self.cfg
        m = cfg.mlflow
        if not m.enabled:
            return None
        db = m.database
        return Mlflow(
            "mlflow",
            MlflowArgs(
                cluster_name=cfg.cluster_name,
                region=cfg.region,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=self.network.private_subnet_ids,
                cluster_security_group_id=self.cluster.cluster_security_group_id,
                key_arn=self.lake.key_arn,
                artifacts_bucket_name=self.lake.bucket_names["artifacts"],
                artifacts_bucket_arn=self.lake.bucket_arns["artifacts"],
                image=m.image or versions.image("mlflow"),
                replicas=m.replicas,
                auth_enabled=m.auth.enabled,
                admin_secret_name=m.auth.admin_secret,
                database=DatabaseSpec(
                    instance_class=db.instance_class,
                    allocated_storage_gib=db.allocated_storage_gib,
                    max_allocated_storage_gib=db.max_allocated_storage_gib,
                    multi_az=db.multi_az,
                    backup_retention_days=db.backup_retention_days,
                    deletion_protection=db.deletion_protection,
                ),
                ingress_enabled=m.ingress.enabled,
                ingress_hostname=m.ingress.hostname,
                ingress_certificate_arn=m.ingress.certificate_arn,
                ingress_depends_on=[self.load_balancer_controller] if self.load_balancer_controller else [],
                protect=db.deletion_protection,  # Pulumi refuses to delete what AWS would refuse to
                secret_recovery_days=SECRET_RECOVERY_DAYS[cfg.environment],
                cost_tags=self.tags,
                cost_labels=self.labels,
                system_node_selector=SYSTEM_NODE_LABEL,
            ),
            opts=self._k8s_opts,
        )

    def _create_ray(self) -> Ray | None:
        cfg = self.cfg
        if not cfg.ray.enabled:
            return None
        image, gpu_image = versions.image("ray"), versions.image("ray-gpu")
        cpu_selector = {POOL_LABEL: "general"} if cfg.cpu_pool.enabled else SYSTEM_NODE_LABEL
        clusters = [
            RayClusterSpec(
                name=name,
                ray_version=versions.image_version("ray"),
                image=image,
                gpu_image=gpu_image,
                head_cpu=c.head.cpu,
                head_memory=c.head.memory,
                cpu_min=c.cpu_workers.min_replicas,
                cpu_max=c.cpu_workers.max_replicas,
                cpu_cpu=c.cpu_workers.cpu,
                cpu_memory=c.cpu_workers.memory,
                gpu_groups=[
                    RayGpuGroup(
                        name=gname,
                        pool=g.pool,
                        gpus_per_worker=g.gpus_per_worker,
                        min_replicas=g.min_replicas,
                        max_replicas=g.max_replicas,
                        cpu=g.cpu,
                        memory=g.memory,
                    )
                    for gname, g in c.gpu_workers.items()
                ],
                head_node_selector=SYSTEM_NODE_LABEL if c.head.placement == "system" else {POOL_LABEL: "general"},
                cpu_node_selector=cpu_selector,
                pool_label=POOL_LABEL,
            )
            for name, c in cfg.ray.clusters.items()
        ]
        zones = self.lake.bucket_arns
        return Ray(
            "ray",
            RayArgs(
                cluster_name=cfg.cluster_name,
                clusters=clusters,
                lake=LakeAccess(
                    read_bucket_arns=[zones[z] for z in ("curated", "features", "models") if z in zones],
                    write_bucket_arn=zones.get("artifacts"),
                    key_arn=self.lake.key_arn,
                ),
                operator_replicas=1,
                cost_tags=self.tags,
                cost_labels=self.labels,
                system_node_selector=SYSTEM_NODE_LABEL,
                depends_on=self._pools,
            ),
            opts=self._k8s_opts,
        )

    def _create_serving(self) -> Serving | None:
        cfg = self.cfg
        if not cfg.kserve.enabled and not cfg.vllm.models:
            return None
        if "models" not in self.lake.bucket_names:
            return None  # config validation reports it; nothing to serve from
        services = [
            InferenceServiceArgs(
                name=name,
                model_format=s.model_format,
                runtime=s.runtime,
                storage_path=s.storage_path,
                min_replicas=s.min_replicas,
                max_replicas=s.max_replicas,
                cpu=s.resources.cpu,
                memory=s.resources.memory,
                gpus=s.resources.gpus,
                gpu_pool=s.gpu_pool,
                canary_storage_path=s.canary.storage_path if s.canary else None,
                canary_traffic_percent=s.canary.traffic_percent if s.canary else None,
            )
            for name, s in cfg.kserve.inference_services.items()
        ]
        servers = []
        for name, v in cfg.vllm.models.items():
            cpu, memory = default_vllm_resources(v.gpus_per_replica)
            servers.append(
                VllmServer(
                    name=name,
                    model=v.model,
                    source=v.source,
                    served_model_name=v.served_model_name,
                    pool=v.pool,
                    gpus=v.gpus_per_replica,
                    max_model_len=v.max_model_len,
                    gpu_memory_utilization=v.gpu_memory_utilization,
                    min_replicas=v.min_replicas,
                    max_replicas=v.max_replicas,
                    max_waiting_requests=v.max_waiting_requests,
                    cpu=v.cpu or cpu,
                    memory=v.memory or memory,
                    hub_token_secret=v.hub_token_secret,
                    region=cfg.region,
                )
            )
        return Serving(
            "serving",
            ServingArgs(
                cluster_name=cfg.cluster_name,
                region=cfg.region,
                models_bucket_name=self.lake.bucket_names["models"],
                models_bucket_arn=self.lake.bucket_arns["models"],
                key_arn=self.lake.key_arn,
                install_kserve=cfg.kserve.enabled,
                inference_services=services,
                vllm_servers=servers,
                vllm_image=cfg.vllm.image or versions.image("vllm"),
                prometheus_url=PROMETHEUS_URL if cfg.observability.enabled else None,
                cost_tags=self.tags,
                cost_labels=self.labels,
                system_node_selector=SYSTEM_NODE_LABEL,
                pool_label=POOL_LABEL,
                depends_on=self._pools,
            ),
            opts=self._k8s_opts,
        )

    def _create_tenants(self) -> Tenants | None:
        cfg = self.cfg
        if not cfg.tenants:
            return None
        endpoints = []
        if cfg.mlflow.enabled:
            endpoints.append(PlatformEndpoint(namespace=MLFLOW_NAMESPACE, ports=[MLFLOW_PORT]))
        if cfg.ray.enabled:
            endpoints.append(PlatformEndpoint(namespace=RAY_NAMESPACE, ports=[RAY_CLIENT_PORT, RAY_DASHBOARD_PORT]))
        if self.serving is not None:
            endpoints.append(PlatformEndpoint(namespace=SERVING_NAMESPACE, ports=[VLLM_PORT, 8080]))
        return Tenants(
            "tenants",
            TenantsArgs(
                cluster_name=cfg.cluster_name,
                tenants=[
                    TenantAccess(
                        tenant=TenantSpec(
                            name=name,
                            groups=t.groups,
                            gpus=t.quota.gpus,
                            cpu=t.quota.cpu,
                            memory=t.quota.memory,
                            storage=t.quota.storage,
                            labels=cost_labels(
                                {**cfg.tags, **({"cost-center": t.cost_center} if t.cost_center else {})},
                                team=name,
                            ),
                        ),
                        principal_arns=t.principal_arns,
                    )
                    for name, t in cfg.tenants.items()
                ],
                lake_bucket_arns=list(self.lake.bucket_arns.values()),
                key_arn=self.lake.key_arn,
                platform_endpoints=endpoints,
                monitoring_namespace=MONITORING_NAMESPACE if cfg.observability.enabled else None,
                cost_tags=self.tags,
            ),
            opts=self._k8s_opts,
        )

    def _create_monitoring(self) -> Monitoring | None:
        cfg = self.cfg
        obs = cfg.observability
        if not obs.enabled:
            return None
        prod = cfg.is_prod
        monitors = platform_monitors(
            vllm=bool(cfg.vllm.models),
            ray=cfg.ray.enabled and bool(cfg.ray.clusters),
            kserve=cfg.kserve.enabled and bool(cfg.kserve.inference_services),
            karpenter=self.node_pools is not None and self.node_pools.installs_karpenter,
            serving_namespace=SERVING_NAMESPACE,
            ray_namespace=RAY_NAMESPACE,
        )
        owners = [c for c in (self.ray, self.serving, self.node_pools) if c is not None]
        return Monitoring(
            "monitoring",
            MonitoringArgs(
                spec=MonitoringSpec(
                    retention=obs.prometheus_retention,
                    storage_gib=obs.prometheus_storage_gib,
                    grafana=obs.grafana,
                    prometheus_memory="4Gi" if prod else "1536Mi",
                    node_selector=SYSTEM_NODE_LABEL,
                    labels=self.labels,
                ),
                monitors=monitors,
                gpu_nodes=bool(cfg.gpu_pools),
                retain_volumes=prod,
                thresholds=Thresholds(**obs.alerts.model_dump()),
                gpu_hourly_prices=gpu_hourly_prices(
                    [
                        i.instance_type
                        for pool in cfg.gpu_pools.values()
                        for i in pool_spec("p", pool).candidate_types()
                    ],
                    cfg.region,
                ),
                cost_labels=self.labels,
                depends_on=owners,
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
