"""The cluster layer: every Kubernetes object and Helm release of the platform, through a Kubernetes provider built
from the cloud layer's outputs (read with a StackReference), wired in order: node pools, load balancer
controller, MLflow, serving, tenants, Ray, monitoring.

It runs after the cloud layer (`pulumi -C cluster up`, or `mlp runner STACK up` for a private endpoint) and is
destroyed before it, so the controllers' IAM and Pod Identity associations outlive everything they finalize.
Because the kubeconfig comes from a stack that exists, the first preview of this layer already checks every
object and chart against the live API server.

Within the layer, every object that a controller finalizes depends on that controller's release (directly or
through its component), so a destroy deletes the object while the controller still runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from mlplatform.infra import platform_policies, specs
from mlplatform.infra.aws_provider import get_token_options
from mlplatform.infra.catalog import versions
from mlplatform.infra.cluster.provider import kubernetes_provider
from mlplatform.infra.config import PlatformConfig
from mlplatform.infra.container_logs import ContainerLogs, ContainerLogsArgs
from mlplatform.infra.features.component import FeatureStore, FeatureStoreArgs
from mlplatform.infra.features.documents import FEAST_NAMESPACE, FEATURE_SERVER_PORT
from mlplatform.infra.gpu_pools import GpuNodePools, GpuNodePoolsArgs
from mlplatform.infra.gpu_pools.documents import POOL_LABEL
from mlplatform.infra.ingress import LoadBalancerController, LoadBalancerControllerArgs
from mlplatform.infra.ingress.component import create_load_balancer_guard
from mlplatform.infra.layer_outputs import CloudOutputs, cloud_stack_name
from mlplatform.infra.mlops import Mlflow, MlflowAccounts, MlflowAccountsArgs, MlflowArgs, Ray, RayArgs
from mlplatform.infra.mlops.documents import (
    MLFLOW_NAMESPACE,
    MLFLOW_PORT,
    RAY_NAMESPACE,
    REGISTRY_READER_USER,
    TEAM_CREDENTIALS_SECRET,
    team_user,
)
from mlplatform.infra.observability import Monitoring, MonitoringArgs
from mlplatform.infra.observability.documents import (
    ALERTMANAGER_SERVICE_ACCOUNT,
    PROMETHEUS_URL,
    MonitoringSpec,
    platform_monitors,
)
from mlplatform.infra.observability.documents import NAMESPACE as MONITORING_NAMESPACE
from mlplatform.infra.observability.pushgateway import PORT as PUSHGATEWAY_PORT
from mlplatform.infra.observability.pushgateway import URL as PUSHGATEWAY_URL
from mlplatform.infra.observability.rules import Thresholds, gpu_hourly_prices
from mlplatform.infra.pipelines.engine import PipelineEngine, PipelineEngineArgs, TeamPipelines
from mlplatform.infra.pipelines.engine.component import DriftJobs
from mlplatform.infra.registry.documents import ImageCache, cached_image, cached_upstreams
from mlplatform.infra.registry.images import required_registry
from mlplatform.infra.serving import Serving, ServingArgs
from mlplatform.infra.serving.documents import REGISTRY_READER_SECRET, SERVING_NAMESPACE, VLLM_PORT
from mlplatform.infra.serving.routing import ENVOY_CONTAINER_PORT, ENVOY_GATEWAY_NAMESPACE
from mlplatform.infra.tagging import cost_labels, platform_tags
from mlplatform.infra.tenancy import Tenants, TenantsArgs
from mlplatform.infra.tenancy.documents import PlatformEndpoint


class ClusterLayer:
    """Builds one stack's cluster layer. Creating it registers every Kubernetes resource."""

    def __init__(self, cfg: PlatformConfig, stack: str, cloud_stack: str | None = None) -> None:
        self.cfg = cfg
        self.tags = platform_tags(cfg.tags, stack)
        self.labels = cost_labels(cfg.tags)
        # The cloud layer's stack of the same name, in the same organization (self-managed backends: "organization").
        self.reference = pulumi.StackReference(cloud_stack or cloud_stack_name(pulumi.get_organization(), stack))
        self.cloud = CloudOutputs.read(self.reference)
        self.provider = kubernetes_provider(
            "k8s",
            cluster_name=self.cloud.cluster_name,
            endpoint=self.cloud.cluster_endpoint,
            certificate_authority=self.cloud.cluster_certificate_authority,
            region=cfg.region,
            # The in-VPC runner deploys as its own role (it has the cluster-admin access entry); a deployer's
            # profile or role would not exist there.
            get_token=None if cfg.runs_in_vpc_runner else get_token_options(cfg.aws),
        )
        self._opts = pulumi.ResourceOptions(providers={"kubernetes": self.provider})
        self.image_cache = self._image_cache()
        self.addresses = self._cluster_addresses()
        self.node_pools = self._create_node_pools()
        self._pools: list[pulumi.Resource] = [self.node_pools] if self.node_pools is not None else []
        self.load_balancer_controller = self._create_load_balancer_controller()
        self.mlflow_users = specs.mlflow_users(cfg)
        """The MLflow accounts the platform's own workloads sign in with (none with MLflow's auth off)."""
        self.mlflow = self._create_mlflow()
        self.mlflow_accounts = self._create_mlflow_accounts()  # before the namespaces whose Secrets hold them
        self.serving = self._create_serving()
        self.feature_store = self._create_feature_store()
        self.tenants = self._create_tenants()
        self.team_mlflow_secrets = self._create_team_mlflow_secrets()  # before the team pods that name them
        self.ray = self._create_ray()  # a team's Ray clusters go into the team's namespace
        self.pipelines = self._create_pipelines()  # so do a team's workflows
        self.monitoring = self._create_monitoring()
        self.container_logs = self._create_container_logs()

    def _cluster_addresses(self) -> pulumi.Output[platform_policies.ClusterAddresses]:
        """What the platform namespaces' NetworkPolicies and the database guard name: the private subnets (planned
        from `network.cidr`; an adopted VPC's are inside RFC 1918's ranges) and the interface endpoints."""
        network = self.cfg.network
        ranges = platform_policies.private_ranges(
            None if network.adopt is not None else str(network.cidr), network.az_count
        )
        endpoints = self.cloud.interface_endpoint_cidrs if network.has_interface_endpoints else []
        return pulumi.Output.from_input(endpoints).apply(
            lambda cidrs: platform_policies.ClusterAddresses(private_ranges=ranges, interface_endpoints=tuple(cidrs))
        )

    def _image_cache(self) -> ImageCache | None:
        """Where images come from when cluster.image_cache is on: the cloud layer's registry, for the upstreams that
        have a rule (those needing credentials only when config names a secret)."""
        cache = self.cfg.cluster.image_cache
        if not cache.is_enabled(self.cfg.environment):
            return None
        return ImageCache(
            base=required_registry(self.cloud.image_registry),
            upstreams=frozenset(cached_upstreams(cache.credentials)),
        )

    def _image(self, name: str, override: str | None = None) -> pulumi.Input[str]:
        """A pinned image (or config's override) through the cache when its registry has a rule."""
        return cached_image(override or versions.image(name), self.image_cache)

    def _bucket(self, zone: str) -> pulumi.Output[str]:
        return pulumi.Output.from_input(self.cloud.lake_buckets).apply(lambda buckets: str(buckets[zone]))

    def _create_node_pools(self) -> GpuNodePools | None:
        cfg = self.cfg
        if not specs.has_node_pools(cfg):
            return None
        karpenter = specs.uses_karpenter(cfg)
        return GpuNodePools(
            "nodepools",
            GpuNodePoolsArgs(
                cluster_name=self.cloud.cluster_name,
                region=cfg.region,
                cluster_security_group_id=self._node_security_group(),
                private_subnet_ids=self.cloud.private_subnet_ids,
                karpenter_node_role_name=self.cloud.karpenter_node_role_name if karpenter else None,
                interruption_queue_name=self.cloud.karpenter_interruption_queue if karpenter else None,
                efa_security_group_id=self.cloud.efa_security_group_id,
                pools=specs.pool_specs(cfg),
                general_pool=specs.general_pool(cfg),
                cost_tags=self.tags,
                cost_labels=self.labels,
                karpenter_replicas=1 if cfg.environment == "dev" else 2,
                system_node_selector=specs.system_node_selector(cfg),
                addresses=self.addresses,
                image_cache=self.image_cache,
            ),
            opts=self._opts,
        )

    def _node_security_group(self) -> pulumi.Output[str]:
        """The group Karpenter's nodes carry: an adopted cluster's node security group, else the cluster's."""
        return pulumi.Output.all(self.cloud.node_security_group_id, self.cloud.cluster_security_group_id).apply(
            lambda groups: str(groups[0] or groups[1])
        )

    def _create_load_balancer_controller(self) -> LoadBalancerController | None:
        cfg = self.cfg
        create_load_balancer_guard(
            "load-balancers",
            internet_facing_namespaces=cfg.ingress.internet_facing_namespaces,
            labels=self.labels,
            opts=self._opts,
        )
        if not cfg.installs_load_balancer_controller:
            return None
        return LoadBalancerController(
            "lb-controller",
            LoadBalancerControllerArgs(
                cluster_name=self.cloud.cluster_name,
                region=cfg.region,
                vpc_id=self.cloud.vpc_id,
                replicas=1 if cfg.environment == "dev" else 2,
                cost_tags=self.tags,
                system_node_selector=specs.system_node_selector(cfg),
                internet_facing_namespaces=cfg.ingress.internet_facing_namespaces,
                labels=self.labels,
            ),
            opts=self._opts,
        )

    def _create_mlflow(self) -> Mlflow | None:
        cfg = self.cfg
        m = cfg.mlflow
        if not m.enabled:
            return None
        return Mlflow(
            "mlflow",
            MlflowArgs(
                region=cfg.region,
                db_secret_arn=self.cloud.mlflow_db_secret_arn or "",
                admin_secret_arn=self.cloud.mlflow_admin_secret_arn if m.auth.enabled else None,
                artifacts_bucket_name=self._bucket("artifacts"),
                image=self._image("mlflow", m.image),
                replicas=m.replicas,
                ingress_enabled=m.ingress.enabled,
                ingress_hostname=m.ingress.hostname,
                ingress_certificate_arn=m.ingress.certificate_arn,
                registry_clients=specs.serves_from_registry(cfg),
                accounts_job=bool(self.mlflow_users),
                ingress_depends_on=[self.load_balancer_controller] if self.load_balancer_controller else [],
                cost_labels=self.labels,
                system_node_selector=specs.system_node_selector(cfg),
                addresses=self.addresses,
            ),
            opts=self._opts,
        )

    def _create_mlflow_accounts(self) -> MlflowAccounts | None:
        cfg = self.cfg
        if not self.mlflow_users or self.mlflow is None:
            return None
        return MlflowAccounts(
            "mlflow-accounts",
            MlflowAccountsArgs(
                usernames=self.mlflow_users,
                admin_secret_arn=self.cloud.mlflow_admin_secret_arn or "",
                region=cfg.region,
                image=self._image("mlflow", cfg.mlflow.image),
                cost_labels=self.labels,
                system_node_selector=specs.system_node_selector(cfg),
                server=[self.mlflow],
                generation=cfg.mlflow.auth.accounts_generation,
            ),
            opts=self._opts,
        )

    def _create_team_mlflow_secrets(self) -> dict[str, list[pulumi.Resource]]:
        """Each team namespace's `mlflow-credentials` Secret (its MLflow account), by namespace."""
        accounts = self.mlflow_accounts
        if accounts is None or self.tenants is None:
            return {}
        return {
            spec.namespace: [
                accounts.credentials_secret(
                    f"{spec.namespace}-mlflow-credentials",
                    user=team_user(spec.name),
                    namespace=spec.namespace,
                    secret_name=TEAM_CREDENTIALS_SECRET,
                    labels=spec.labels,
                    depends_on=self.tenants.namespace_resources[spec.namespace],
                )
            ]
            for spec in specs.tenant_specs(self.cfg)
            if team_user(spec.name) in self.mlflow_users
        }

    def _registry_reader_secret(self) -> Callable[[pulumi.Resource], pulumi.Resource] | None:
        """What makes the registry reader's Secret in the serving namespace, once Serving has made the namespace."""
        accounts = self.mlflow_accounts
        if accounts is None or REGISTRY_READER_USER not in self.mlflow_users:
            return None
        return lambda namespace: accounts.credentials_secret(
            "serving-registry-reader-secret",
            user=REGISTRY_READER_USER,
            namespace=SERVING_NAMESPACE,
            secret_name=REGISTRY_READER_SECRET,
            labels={**self.labels, "app.kubernetes.io/part-of": "ml-platform"},
            depends_on=[namespace],
        )

    def _create_ray(self) -> Ray | None:
        cfg = self.cfg
        if not cfg.ray.enabled:
            return None
        hosts = specs.ray_team_namespaces(cfg)
        return Ray(
            "ray",
            RayArgs(
                clusters=specs.ray_clusters(cfg, self.image_cache),
                team_namespaces={
                    ns: [*self.tenants.namespace_resources[ns], *self.team_mlflow_secrets.get(ns, [])] for ns in hosts
                }
                if self.tenants
                else {},
                monitoring_namespace=MONITORING_NAMESPACE if cfg.observability.enabled else None,
                operator_replicas=1,
                cost_labels=self.labels,
                system_node_selector=specs.system_node_selector(cfg),
                depends_on=self._pools,
                image_cache=self.image_cache,
            ),
            opts=self._opts,
        )

    def _create_serving(self) -> Serving | None:
        cfg = self.cfg
        if not specs.serves_models(cfg):
            return None
        return Serving(
            "serving",
            ServingArgs(
                region=cfg.region,
                models_bucket_name=self._bucket("models"),
                raw_bucket_name=self._bucket("raw") if specs.logs_requests(cfg) else None,
                install_kserve=cfg.kserve.enabled,
                inference_services=specs.inference_services(cfg),
                vllm_servers=specs.vllm_servers(cfg),
                vllm_image=self._image("vllm", cfg.vllm.image),
                feature_server=cfg.feature_store.enabled,
                registry_resolver_image=cfg.pipelines.templates.image,
                mlflow_auth=cfg.mlflow.enabled and cfg.mlflow.auth.enabled,
                registry_reader_secret=self._registry_reader_secret(),
                aws_cli_image=self._image("aws-cli"),
                envoy_gateway_image=self._image("envoy-gateway"),
                envoy_proxy_image=self._image("envoy-proxy"),
                image_cache=self.image_cache,
                prometheus_url=PROMETHEUS_URL if cfg.observability.enabled else None,
                cost_labels=self.labels,
                system_node_selector=specs.system_node_selector(cfg),
                pool_label=POOL_LABEL,
                keeps_serving=cfg.serving_keeps_up,
                addresses=self.addresses,
                depends_on=self._pools,
            ),
            opts=self._opts,
        )

    def _create_feature_store(self) -> FeatureStore | None:
        cfg = self.cfg
        spec = specs.feature_store_spec(cfg)
        if spec is None:
            return None
        assert cfg.feature_store.image is not None  # config validation
        return FeatureStore(
            "features",
            FeatureStoreArgs(
                spec=spec,
                features_bucket=self._bucket("features"),
                image=cached_image(cfg.feature_store.image, self.image_cache),
                server_replicas=cfg.feature_store.server_replicas,
                materialize_schedule=cfg.feature_store.materialize_schedule,
                serving_clients=self.serving is not None,
                cost_labels=self.labels,
                system_node_selector=specs.system_node_selector(cfg),
                addresses=self.addresses,
            ),
            opts=self._opts,
        )

    def _create_tenants(self) -> Tenants | None:
        cfg = self.cfg
        if not cfg.tenants:
            return None
        endpoints = []
        if cfg.mlflow.enabled:
            endpoints.append(PlatformEndpoint(namespace=MLFLOW_NAMESPACE, ports=[MLFLOW_PORT]))
        # No Ray: a team reaches only its own clusters, in its namespace; the `ray` namespace admits no team.
        if self.serving is not None:
            endpoints.append(PlatformEndpoint(namespace=SERVING_NAMESPACE, ports=[VLLM_PORT, 8080]))
        if self.serving is not None and self.serving.routes_models:
            # The models' Gateway: its Envoy proxies listen on the shifted port (80 + 10000).
            endpoints.append(PlatformEndpoint(namespace=ENVOY_GATEWAY_NAMESPACE, ports=[ENVOY_CONTAINER_PORT]))
        if self.feature_store is not None:
            endpoints.append(PlatformEndpoint(namespace=FEAST_NAMESPACE, ports=[FEATURE_SERVER_PORT]))
        if specs.drift_jobs(cfg):
            # The drift jobs push their gauges (the Pushgateway admits only their pods).
            endpoints.append(PlatformEndpoint(namespace=MONITORING_NAMESPACE, ports=[PUSHGATEWAY_PORT]))
        return Tenants(
            "tenants",
            TenantsArgs(
                tenants=specs.tenant_specs(cfg),
                platform_endpoints=endpoints,
                monitoring_namespace=MONITORING_NAMESPACE if cfg.observability.enabled else None,
                interface_endpoint_cidrs=self.cloud.interface_endpoint_cidrs
                if cfg.network.has_interface_endpoints
                else None,
                s3_cidrs=self.cloud.s3_cidrs,
                labels=self.labels,
            ),
            opts=self._opts,
        )

    def _create_pipelines(self) -> PipelineEngine | None:
        cfg = self.cfg
        if not cfg.pipelines.enabled or self.tenants is None:
            return None
        ready = self.tenants.namespace_resources
        return PipelineEngine(
            "pipelines",
            PipelineEngineArgs(
                teams=[
                    TeamPipelines(
                        team=spec.name,
                        namespace=spec.namespace,
                        groups=spec.groups,
                        labels=spec.labels,
                        ready=[*ready[spec.namespace], *self.team_mlflow_secrets.get(spec.namespace, [])],
                        retrain=cfg.pipelines.templates.retrain.get(spec.name),
                        rollouts={
                            svc.name: self.serving.inference_service_ready(svc.name)
                            for svc in specs.inference_services(cfg)
                            if self.serving is not None and svc.promoted_by == spec.name
                        },
                        vllm_rollouts={
                            server.name: self.serving.vllm_server_ready(server.name)
                            for server in specs.vllm_servers(cfg)
                            if self.serving is not None and server.promoted_by == spec.name
                        },
                    )
                    for spec in specs.tenant_specs(cfg)
                ],
                artifacts_bucket=self._bucket("artifacts"),
                region=cfg.region,
                server_replicas=cfg.pipelines.server_replicas,
                templates_image=cfg.pipelines.templates.image if cfg.pipelines.templates.enabled else None,
                event_sender=(MONITORING_NAMESPACE, ALERTMANAGER_SERVICE_ACCOUNT)
                if specs.retrain_routes(cfg)
                else None,
                mlflow_auth=self.mlflow_accounts is not None,
                ray_job=specs.ray_job_shape(cfg),
                registry_reader=REGISTRY_READER_USER if REGISTRY_READER_USER in self.mlflow_users else "",
                drift=DriftJobs(logs_bucket=self._bucket("raw"), pushgateway=PUSHGATEWAY_URL)
                if specs.drift_jobs(cfg)
                else None,
                cost_labels=self.labels,
                system_node_selector=specs.system_node_selector(cfg),
                image_cache=self.image_cache,
            ),
            opts=self._opts,
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
            ray_cluster_namespaces=sorted({spec.namespace for spec in specs.ray_clusters(cfg)}),
            feature_server=self.feature_store is not None,
        )
        owners = [c for c in (self.ray, self.serving, self.node_pools, self.feature_store) if c is not None]
        alerting = specs.alerting_spec(cfg)
        return Monitoring(
            "monitoring",
            MonitoringArgs(
                spec=MonitoringSpec(
                    retention=obs.prometheus_retention,
                    storage_gib=obs.prometheus_storage_gib,
                    grafana=obs.grafana,
                    prometheus_memory="4Gi" if prod else "1536Mi",
                    node_selector=specs.system_node_selector(cfg),
                    labels=self.labels,
                ),
                alerting=alerting,
                alerts_topic_arn=self.cloud.alerts_topic_arn if alerting.uses_sns else None,
                aws_cli_image=self._image("aws-cli"),
                pushgateway_image=self._image("pushgateway") if specs.drift_jobs(cfg) else None,
                monitors=monitors,
                gpu_nodes=bool(cfg.gpu_pools),
                retain_volumes=prod,
                thresholds=Thresholds(**obs.alerts.model_dump()),
                # The drift rule's `action: retrain` is for the pipelines' retraining; no pipelines, no rule.
                drift_alerts=cfg.pipelines.enabled,
                gpu_hourly_prices=gpu_hourly_prices(
                    [i.instance_type for pool in specs.pool_specs(cfg) for i in pool.candidate_types()],
                    cfg.region,
                ),
                cost_labels=self.labels,
                depends_on=owners,
                addresses=self.addresses,
            ),
            opts=self._opts,
        )

    def _create_container_logs(self) -> ContainerLogs | None:
        cfg = self.cfg
        if not cfg.observability.logs.enabled:
            return None
        return ContainerLogs(
            "container-logs",
            ContainerLogsArgs(
                region=cfg.region,
                log_groups=self.cloud.container_log_groups,
                team_namespaces=[d.key for d in specs.container_log_destinations(cfg) if d.is_team],
                cost_labels=self.labels,
                addresses=self.addresses,
            ),
            opts=self._opts,
        )

    def exports(self) -> dict[str, pulumi.Input[object]]:
        """What the cluster layer tells its users: where the platform's services answer inside the cluster."""
        out: dict[str, pulumi.Input[object]] = {"cloud_stack": self.reference.name}
        if self.mlflow is not None:
            out["mlflow_url"] = self.mlflow.service_url
        if self.tenants is not None:
            out["team_namespaces"] = [t.namespace for t in specs.tenant_specs(self.cfg)]
        if self.pipelines is not None:
            out["pipelines_server"] = self.pipelines.server_address
        if self.serving is not None and self.serving.model_gateway_url:
            out["model_gateway_url"] = self.serving.model_gateway_url
            out["model_hosts"] = self.serving.model_hosts
        return out
