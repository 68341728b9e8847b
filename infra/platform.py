"""The cloud layer: maps the validated config to the AWS components and wires them in order (keys, network, data
lake, cluster, runner, then each domain's AWS side), and says what the cluster layer gets (`CloudOutputs`).

Everything AWS lives here: the VPC, EKS, IAM and Pod Identity, KMS, the lake, RDS, queues. An adopted VPC and
cluster (`network.adopt`, `cluster.adopt`) are read, not created: only what the platform needs that such a cluster
lacks is attached to it (access entries, the Pod Identity agent when asked, Karpenter's AWS side). The cluster layer
(`infra.cluster_layer`) holds every Kubernetes object. Because the cluster layer is created after this one and
destroyed before it, every controller's IAM and every Pod Identity association exists for as long as the objects
it finalizes (NodeClaims, Ingresses, volumes) do.

Domains never import each other; values pass through here. Every input that names another resource is an Output
of it (`self.cluster.cluster_name`, never the configured string), so the engine orders it after that resource.
"""

from __future__ import annotations

import pulumi

from mlplatform.infra import specs
from mlplatform.infra.aws_provider import explicit_provider, get_token_options, update_kubeconfig_flags
from mlplatform.infra.catalog import versions
from mlplatform.infra.cluster import (
    AdminAccess,
    AdoptedCluster,
    AdoptedClusterArgs,
    Cluster,
    ClusterArgs,
    SystemNodeGroupArgs,
)
from mlplatform.infra.cluster.terraform_state import AdoptedClusterFacts
from mlplatform.infra.config import PlatformConfig
from mlplatform.infra.container_logs import ContainerLogsCloud, ContainerLogsCloudArgs
from mlplatform.infra.data import DataLake, DataLakeArgs, ZoneSpec
from mlplatform.infra.features.cloud import FeatureStoreCloud, FeatureStoreCloudArgs
from mlplatform.infra.features.documents import team_grants
from mlplatform.infra.gpu_pools import GpuPoolsCloud, GpuPoolsCloudArgs
from mlplatform.infra.ingress import LoadBalancerControllerCloud, LoadBalancerControllerCloudArgs
from mlplatform.infra.layer_outputs import CloudOutputs
from mlplatform.infra.mlops import DatabaseSpec, MlflowCloud, MlflowCloudArgs, RayCloud, RayCloudArgs
from mlplatform.infra.mlops.documents import RAY_HEAD_SERVICE_ACCOUNT, checkpoints_prefix
from mlplatform.infra.network import AdoptedNetwork, AdoptedNetworkArgs, Network, NetworkArgs
from mlplatform.infra.observability import AlertingCloud, AlertingCloudArgs
from mlplatform.infra.pipelines.engine.documents import WORKFLOW_SERVICE_ACCOUNT, pipelines_prefix
from mlplatform.infra.registry import ImageCacheCloud, ImageCacheCloudArgs
from mlplatform.infra.runner import ClusterRunner, ClusterRunnerArgs
from mlplatform.infra.runner.documents import SOURCE_PREFIX, parse_backend
from mlplatform.infra.security import PlatformKeys, PlatformKeysArgs
from mlplatform.infra.serving import ServingCloud, ServingCloudArgs
from mlplatform.infra.tagging import cost_labels, platform_tags
from mlplatform.infra.tenancy import TenantAccess, TenantsCloud, TenantsCloudArgs
from mlplatform.infra.terraform_reference import TerraformStateSource


class CloudLayer:
    """Builds one stack's cloud layer. Creating it registers every AWS resource; it exports nothing itself."""

    def __init__(self, cfg: PlatformConfig, stack: str) -> None:
        self.cfg = cfg
        self.stack = stack
        self.tags = platform_tags(cfg.tags, stack)
        self.labels = cost_labels(cfg.tags)
        # Pulumi hands `aws:*` stack config to the default provider only: this one gets each setting explicitly.
        self.aws = explicit_provider(
            "aws", cfg.aws, region=cfg.region, default_tags=self.tags, aws_account_id=cfg.aws_account_id
        )
        self._opts = pulumi.ResourceOptions(providers={"aws": self.aws})
        self.keys = self._create_keys()
        self.network = self._create_network()
        self.lake = self._create_data_lake()
        self.cluster = self._create_cluster()
        self.runner = self._create_runner()
        self.node_pools = self._create_node_pools()
        self.load_balancer_controller = self._create_load_balancer_controller()
        self.mlflow = self._create_mlflow()
        self.ray = self._create_ray()
        self.serving = self._create_serving()
        self.tenants = self._create_tenants()
        self.alerting = self._create_alerting()
        self.container_logs = self._create_container_logs()
        self.image_cache = self._create_image_cache()
        self.feature_store = self._create_feature_store()

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
                        remote=state.remote.model_dump() if state.remote else None,
                        output_names=state.outputs.model_dump(),
                    ),
                    interface_endpoint_cidrs=adopt.interface_endpoint_cidrs,
                    s3_gateway_endpoint_id=adopt.s3_gateway_endpoint_id,
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
                s3_write_buckets=[b for b in [self._state_bucket()] if b],
                s3_read_buckets=net.s3_external_read_buckets,
                protect=cfg.cluster.deletion_protection,
                tags=self.tags,
            ),
            opts=self._opts,
        )

    def _state_bucket(self) -> str | None:
        """The in-VPC runner's Pulumi state bucket (it may belong to another account): the S3 gateway endpoint's
        policy admits it."""
        runner = self.cfg.cluster.runner
        if not (self.cfg.runs_in_vpc_runner and runner.backend_url):
            return None
        return parse_backend(runner.backend_url, None, self.cfg.region).bucket

    def _create_data_lake(self) -> DataLake:
        lake = self.cfg.data_lake
        perimeter = lake.perimeter
        network = self.network
        endpoint = network.s3_gateway_endpoint_id if perimeter.enabled else None
        # An adopted VPC whose endpoint config does not name: any endpoint of the VPC (`aws:SourceVpc`).
        vpc = network.vpc_id if perimeter.enabled and endpoint is None else None
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
                perimeter_vpce_id=endpoint,
                perimeter_vpc_id=vpc,
                break_glass_role_arns=perimeter.break_glass_role_arns,
                # `mlp runner` uploads the cluster layer's source bundle from wherever it runs.
                open_prefixes={"artifacts": [SOURCE_PREFIX]} if self.cfg.runs_in_vpc_runner else {},
                tags=self.tags,
            ),
            opts=self._opts,
        )

    def _admins(self) -> list[AdminAccess]:
        c = self.cfg.cluster
        admins = [
            AdminAccess(principal_arn=a.principal_arn, access_policy=a.access_policy, namespaces=a.namespaces)
            for a in c.admins
        ]
        # Who runs the cluster layer's `pulumi up` from outside the VPC; the in-VPC runner is added below.
        admins += [AdminAccess(principal_arn=arn, access_policy="cluster-admin") for arn in c.deployers]
        return admins

    def _create_cluster(self) -> Cluster | AdoptedCluster:
        cfg = self.cfg
        c = cfg.cluster
        if c.adopt is not None:
            return self._adopt_cluster()
        ng = c.system_node_group
        admins = self._admins()
        return Cluster(
            "cluster",
            ClusterArgs(
                cluster_name=cfg.cluster_name,
                kubernetes_version=c.version,
                support_type=c.support_type,
                private_subnet_ids=self.network.private_subnet_ids,
                endpoint_public=c.endpoint.public,
                public_access_cidrs=c.endpoint.public_cidrs,
                admins=admins,
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
                    labels=specs.SYSTEM_NODE_LABEL,
                ),
                log_retention_days=c.log_retention_days,
                logs_kms_key_arn=self.keys.logs_key_arn,
                deletion_protection=c.deletion_protection,
                region=cfg.region,
                tags=self.tags,
                get_token=get_token_options(cfg.aws),
            ),
            opts=self._opts,
        )

    def _adopt_cluster(self) -> AdoptedCluster:
        """An existing cluster: only access entries (and, unless config says the cluster has it, the Pod Identity
        agent add-on) are created; the control plane, node groups and security groups stay its owner's."""
        cfg = self.cfg
        c = cfg.cluster
        adopt = c.adopt
        assert adopt is not None
        state = adopt.terraform_state
        facts = None
        if state is None:
            assert adopt.cluster_name and adopt.endpoint and adopt.certificate_authority_data  # config validation
            assert adopt.cluster_security_group_id and adopt.node_security_group_id
            facts = AdoptedClusterFacts(
                cluster_name=adopt.cluster_name,
                endpoint=adopt.endpoint,
                certificate_authority_data=adopt.certificate_authority_data,
                cluster_security_group_id=adopt.cluster_security_group_id,
                node_security_group_id=adopt.node_security_group_id,
                version=c.version,
                oidc_provider_arn=adopt.oidc_provider_arn,
            )
        return AdoptedCluster(
            "cluster",
            AdoptedClusterArgs(
                facts=facts,
                terraform_state=None
                if state is None
                else TerraformStateSource(
                    path=state.path,
                    s3_bucket=state.s3.bucket if state.s3 else None,
                    s3_key=state.s3.key if state.s3 else None,
                    s3_region=state.s3.region if state.s3 else None,
                    remote=state.remote.model_dump() if state.remote else None,
                    output_names=state.outputs.model_dump(),
                ),
                kubernetes_version=c.version,
                expected_name=c.name,
                admins=self._admins(),
                pod_identity_agent_version=(
                    c.addon_versions.get("eks-pod-identity-agent")
                    or versions.addon_versions(c.version)["eks-pod-identity-agent"]
                    if adopt.install_pod_identity_agent
                    else None
                ),
                node_role_names=adopt.node_role_names,
                region=cfg.region,
                tags=self.tags,
                get_token=get_token_options(cfg.aws),
            ),
            opts=self._opts,
        )

    def _create_runner(self) -> ClusterRunner | None:
        cfg = self.cfg
        if not cfg.runs_in_vpc_runner:
            return None
        runner = cfg.cluster.runner
        assert runner.backend_url is not None  # config validation
        cluster = self.cluster
        return ClusterRunner(
            "runner",
            ClusterRunnerArgs(
                label=cfg.cluster_name,
                stack=self.stack,
                environment=cfg.environment,
                region=cfg.region,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=self.network.private_subnet_ids,
                cluster_security_group_id=cluster.cluster_security_group_id,
                # An adopted cluster's security groups are its owner's: one rule only when config asks.
                api_ingress=cfg.cluster.adopt is None or cfg.cluster.adopt.runner_api_ingress,
                source_bucket_name=self.lake.bucket_names["artifacts"],
                source_bucket_arn=self.lake.bucket_arns["artifacts"],
                lake_key_arn=self.lake.key_arn,
                logs_key_arn=self.keys.logs_key_arn,
                backend_url=runner.backend_url,
                secrets_provider=runner.secrets_provider,
                access_token_secret=runner.access_token_secret,
                compute_type=runner.compute_type,
                timeout_minutes=runner.timeout_minutes,
                log_retention_days=runner.log_retention_days,
                grant_cluster_admin=lambda arn: cluster.grant_access(
                    AdminAccess(principal_arn=arn, access_policy="cluster-admin", key="runner")
                ),
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_node_pools(self) -> GpuPoolsCloud | None:
        cfg = self.cfg
        if not specs.has_node_pools(cfg):
            return None
        return GpuPoolsCloud(
            "nodepools",
            GpuPoolsCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                private_subnet_ids=self.network.private_subnet_ids,
                # A created network knows each subnet's AZ (a reserved node group is placed in its AZ's subnet).
                private_subnet_zones=self.network.availability_zones if isinstance(self.network, Network) else None,
                # An adopted cluster gets no node group (config refuses node_group pools there).
                node_group_role_arn=self.cluster.node_role_arn if isinstance(self.cluster, Cluster) else None,
                pools=specs.pool_specs(cfg),
                karpenter=specs.uses_karpenter(cfg),
                cost_tags=self.tags,
                cost_labels=self.labels,
                # Reserved GPU nodes need the CNI and the Pod Identity agent, like the system nodes.
                depends_on=self._nodes_ready(),
                vpc_id=self.network.vpc_id,
                node_security_group_id=self.cluster.node_security_group_id,
            ),
            opts=self._opts,
        )

    def _nodes_ready(self) -> list[pulumi.Resource]:
        cluster = self.cluster
        if isinstance(cluster, Cluster):
            return [cluster.system_node_group]
        return [cluster.pod_identity_agent] if cluster.pod_identity_agent is not None else []

    def _create_load_balancer_controller(self) -> LoadBalancerControllerCloud | None:
        cfg = self.cfg
        if not cfg.installs_load_balancer_controller:
            return None
        return LoadBalancerControllerCloud(
            "lb-controller",
            LoadBalancerControllerCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                region=cfg.region,
                vpc_id=self.network.vpc_id,
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_mlflow(self) -> MlflowCloud | None:
        cfg = self.cfg
        m = cfg.mlflow
        if not m.enabled:
            return None
        db = m.database
        return MlflowCloud(
            "mlflow",
            MlflowCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=self.network.private_subnet_ids,
                # The group the nodes (and so MLflow's pods) carry: the cluster security group of a created
                # cluster, the node security group of an adopted one.
                cluster_security_group_id=self.cluster.node_security_group_id,
                key_arn=self.lake.key_arn,
                artifacts_bucket_arn=self.lake.bucket_arns["artifacts"],
                auth_enabled=m.auth.enabled,
                accounts_job=bool(specs.mlflow_users(cfg)),
                admin_secret_name=cfg.mlflow_admin_secret,
                database=DatabaseSpec(
                    instance_class=db.instance_class,
                    allocated_storage_gib=db.allocated_storage_gib,
                    max_allocated_storage_gib=db.max_allocated_storage_gib,
                    multi_az=db.multi_az,
                    backup_retention_days=db.backup_retention_days,
                    deletion_protection=db.deletion_protection,
                ),
                protect=db.deletion_protection,  # Pulumi refuses to delete what AWS would refuse to
                secret_recovery_days=specs.SECRET_RECOVERY_DAYS[cfg.environment],
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_ray(self) -> RayCloud | None:
        """The platform Ray clusters' role; none without such clusters (a team's carry the team's role)."""
        cfg = self.cfg
        if not specs.has_platform_ray_clusters(cfg):
            return None
        return RayCloud(
            "ray",
            RayCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                artifacts_bucket_arn=self.lake.bucket_arns["artifacts"],
                key_arn=self.lake.key_arn,
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_serving(self) -> ServingCloud | None:
        cfg = self.cfg
        if not specs.serves_models(cfg):
            return None
        return ServingCloud(
            "serving",
            ServingCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                region=cfg.region,
                models_bucket_arn=self.lake.bucket_arns["models"],
                raw_bucket_arn=self.lake.bucket_arns["raw"] if specs.logs_requests(cfg) else None,
                key_arn=self.lake.key_arn,
                inference_services=specs.inference_services(cfg),
                vllm_servers=specs.vllm_servers(cfg),
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_tenants(self) -> TenantsCloud | None:
        cfg = self.cfg
        if not cfg.tenants:
            return None
        ray_teams = specs.ray_team_namespaces(cfg)
        pipelines = cfg.pipelines.enabled
        store = cfg.feature_store
        return TenantsCloud(
            "tenants",
            TenantsCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                tenants=[
                    TenantAccess(
                        tenant=spec,
                        principal_arns=cfg.tenants[spec.name].principal_arns,
                        # The heads of the team's Ray clusters run jobs' driver code with the team's role.
                        also_service_accounts=[
                            *([RAY_HEAD_SERVICE_ACCOUNT] if spec.namespace in ray_teams else []),
                            # Workflow pods run as the team, with its artifacts under pipelines/<team>/.
                            *([WORKFLOW_SERVICE_ACCOUNT] if pipelines else []),
                        ],
                        artifact_prefixes=[
                            *([pipelines_prefix(spec.name)] if pipelines else []),
                            # Ray Train runs of the team's clusters and RayJobs checkpoint under checkpoints/<team>/
                            # (and only there: the shipped job's storage makes no directory markers and calls no
                            # HeadBucket, `train_distributed._NoDirectories`).
                            *([checkpoints_prefix(spec.name)] if spec.namespace in ray_teams else []),
                        ],
                        # Feast's registry and offline files: read by every team, written by its producers.
                        feature_grants=team_grants(store.project, producer=spec.name in store.producers)
                        if store.enabled
                        else [],
                    )
                    for spec in specs.tenant_specs(cfg)
                ],
                lake_bucket_arns=list(self.lake.bucket_arns.values()),
                key_arn=self.lake.key_arn,
                artifacts_bucket_arn=self.lake.bucket_arns["artifacts"] if pipelines or ray_teams else None,
                features_bucket_arn=self.lake.bucket_arns["features"] if store.enabled else None,
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_alerting(self) -> AlertingCloud | None:
        cfg = self.cfg
        alerting = specs.alerting_spec(cfg)
        if not (cfg.observability.enabled and alerting.has_receivers):
            return None
        return AlertingCloud(
            "alerting",
            AlertingCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                region=cfg.region,
                topic=alerting.uses_sns,
                webhook_secret=alerting.webhook_secret,
                protect=cfg.cluster.deletion_protection,
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_container_logs(self) -> ContainerLogsCloud | None:
        cfg = self.cfg
        logs = cfg.observability.logs
        if not logs.enabled:
            return None
        return ContainerLogsCloud(
            "container-logs",
            ContainerLogsCloudArgs(
                cluster_name=self.cluster.cluster_name,
                label=cfg.cluster_name,
                destinations=specs.container_log_destinations(cfg),
                retention_days=logs.retention_days,
                kms_key_arn=self.keys.logs_key_arn,
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_image_cache(self) -> ImageCacheCloud | None:
        cfg = self.cfg
        cache = cfg.cluster.image_cache
        if not cache.is_enabled(cfg.environment):
            return None
        pools = self.node_pools
        cluster = self.cluster
        node_roles: list[pulumi.Input[str]] = (
            [cluster.node_role.name] if isinstance(cluster, Cluster) else list(cluster.node_role_names)
        )
        if pools is not None and pools.karpenter_node_role_name is not None:
            node_roles.append(pools.karpenter_node_role_name)
        return ImageCacheCloud(
            "image-cache",
            ImageCacheCloudArgs(
                label=cfg.cluster_name,
                # The default names the cluster: from its Output, so the rules are made after it.
                prefix=cache.prefix or self.cluster.cluster_name.apply(str.lower),
                credentials={str(k): v for k, v in cache.credentials.items()},
                node_role_names=node_roles,
                protect=cfg.cluster.deletion_protection,
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def _create_feature_store(self) -> FeatureStoreCloud | None:
        spec = specs.feature_store_spec(self.cfg)
        if spec is None:
            return None
        return FeatureStoreCloud(
            "features",
            FeatureStoreCloudArgs(
                cluster_name=self.cluster.cluster_name,
                spec=spec,
                features_bucket_arn=self.lake.bucket_arns["features"],
                key_arn=self.lake.key_arn,
                # The tables hold what the lake's features zone does: protected where the lake is.
                protect=self.cfg.data_lake.protect and self.cfg.environment != "dev",
                cost_tags=self.tags,
            ),
            opts=self._opts,
        )

    def outputs(self) -> CloudOutputs:
        cluster = self.cluster
        pools = self.node_pools
        return CloudOutputs(
            region=self.cfg.region,
            cluster_name=cluster.cluster_name,
            cluster_endpoint=cluster.endpoint,
            cluster_certificate_authority=cluster.certificate_authority,
            cluster_security_group_id=cluster.cluster_security_group_id,
            node_security_group_id=cluster.node_security_group_id if isinstance(cluster, AdoptedCluster) else None,
            vpc_id=self.network.vpc_id,
            private_subnet_ids=self.network.private_subnet_ids,
            interface_endpoint_cidrs=self.network.interface_endpoint_cidrs,
            s3_cidrs=self.network.s3_cidrs,
            lake_buckets=pulumi.Output.all(**self.lake.bucket_names),
            lake_key_arn=self.lake.key_arn,
            kubeconfig=cluster.kubeconfig,
            update_kubeconfig_command=pulumi.Output.concat(
                "aws eks update-kubeconfig --region ",
                self.cfg.region,
                " --name ",
                cluster.cluster_name,
                update_kubeconfig_flags(self.cfg.aws),
            ),
            karpenter_node_role_name=pools.karpenter_node_role_name if pools else None,
            karpenter_interruption_queue=pools.interruption_queue_name if pools else None,
            efa_security_group_id=pools.efa_security_group_id if pools else None,
            mlflow_db_secret_arn=self.mlflow.db_secret_arn if self.mlflow else None,
            mlflow_admin_secret_arn=self.mlflow.admin_secret_arn if self.mlflow else None,
            runner_project=self.runner.project_name if self.runner else None,
            alerts_topic_arn=self.alerting.topic_arn if self.alerting else None,
            container_log_groups=self.container_logs.log_groups if self.container_logs else None,
            image_registry=self.image_cache.registry if self.image_cache else None,
        )
