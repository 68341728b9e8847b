"""The builders' view of the validated config, shared by both layers: one function per domain that turns a config
section into the specs the components take. Pure: no resources, no Pulumi."""

from __future__ import annotations

from mlplatform.infra.catalog import versions
from mlplatform.infra.config import (
    CapacityReservationConfig,
    GpuPoolConfig,
    PlatformConfig,
    RetrainConfig,
    efa_per_gpu,
)
from mlplatform.infra.container_logs.documents import PLATFORM, LogDestination
from mlplatform.infra.cost.reservation import ReservationFacts
from mlplatform.infra.features.documents import FeatureStoreSpec
from mlplatform.infra.gpu_pools import GeneralPoolSpec, PoolSpec
from mlplatform.infra.gpu_pools.documents import POOL_LABEL
from mlplatform.infra.mlops.documents import (
    MLFLOW_IN_CLUSTER_URL,
    RAY_NAMESPACE,
    RAY_SERVICE_ACCOUNT,
    REGISTRY_READER_USER,
    TEAM_CREDENTIALS_SECRET,
    RayClusterSpec,
    RayGpuGroup,
    RayJobShape,
    team_user,
)
from mlplatform.infra.observability.alerting import AlertingSpec, RetrainRoute
from mlplatform.infra.pipelines.engine.documents import argo_event_url
from mlplatform.infra.pipelines.templates import DRIFT_DISCRIMINATOR
from mlplatform.infra.registry.documents import ImageCache, cached_image
from mlplatform.infra.serving.documents import InferenceServiceSpec, VllmServer, default_vllm_resources
from mlplatform.infra.tagging import cost_labels
from mlplatform.infra.tenancy.documents import WORKLOAD_SERVICE_ACCOUNT, TenantSpec

SYSTEM_NODE_LABEL = {"node.mlplatform.io/role": "system"}
# Secrets Manager keeps a deleted secret this many days (its name stays taken); 0 deletes at once.
SECRET_RECOVERY_DAYS = {"dev": 0, "staging": 7, "prod": 30}


def pool_spec(name: str, pool: GpuPoolConfig, cluster_name: str) -> PoolSpec:
    """The builders' view of one configured GPU pool."""
    reservation = pool.capacity_reservation
    per_gpu = efa_per_gpu(pool)
    # An efa pool launches into a cluster placement group: the one config names, else one of its own, except on a
    # reservation (an ODCR serves instances in its own group, a Capacity Block is already placed together).
    creates_group = per_gpu is not None and pool.placement_group is None and reservation is None
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
        availability_zone=pool.availability_zone,
        capacity_reservation_zone=reservation.availability_zone if reservation else None,
        on_demand_fallback=reservation.on_demand_fallback if reservation else False,
        time_slicing_replicas=pool.time_slicing_replicas,
        capacity_reservation_facts=_reservation_facts(reservation),
        termination_grace_period=pool.termination_grace_period,
        efa_per_gpu=per_gpu,
        placement_group=efa_placement_group(cluster_name, name) if creates_group else pool.placement_group,
        creates_placement_group=creates_group,
    )


def efa_placement_group(cluster_name: str, pool: str) -> str:
    """The cluster placement group the cloud layer makes for an efa pool without a reservation."""
    return f"{cluster_name}-{pool}"


def _reservation_facts(reservation: CapacityReservationConfig | None) -> ReservationFacts | None:
    if reservation is None or reservation.instance_type is None or reservation.instance_count is None:
        return None
    return ReservationFacts(
        id=reservation.id,
        kind=reservation.kind,
        instance_type=reservation.instance_type,
        instance_count=reservation.instance_count,
        availability_zone=reservation.availability_zone,
        price_usd=reservation.price_usd,
        start_date=reservation.start_date,
        end_date=reservation.end_date,
    )


def pool_specs(cfg: PlatformConfig) -> list[PoolSpec]:
    return [pool_spec(name, pool, cfg.cluster_name) for name, pool in cfg.gpu_pools.items()]


def general_pool(cfg: PlatformConfig) -> GeneralPoolSpec | None:
    cpu = cfg.cpu_pool
    if not cpu.enabled:
        return None
    return GeneralPoolSpec(
        instance_families=cpu.instance_families,
        capacity_types=cpu.capacity_types,
        architecture=cpu.architecture,
        max_vcpus=cpu.max_vcpus,
        ami_alias=f"al2023@{versions.ami_alias_version('al2023')}",
        disk_size_gib=cpu.disk_size_gib,
        consolidate_after=cpu.consolidate_after,
        expire_after=cpu.expire_after,
    )


def uses_karpenter(cfg: PlatformConfig) -> bool:
    return cfg.cpu_pool.enabled or any(p.provisioner == "karpenter" for p in cfg.gpu_pools.values())


def has_node_pools(cfg: PlatformConfig) -> bool:
    return bool(cfg.gpu_pools) or cfg.cpu_pool.enabled


def system_node_selector(cfg: PlatformConfig) -> dict[str, str]:
    """Where the platform's controllers run: the system node group's label, or the labels config names for an
    adopted cluster's own nodes (`cluster.adopt.system_node_labels`)."""
    adopt = cfg.cluster.adopt
    return dict(adopt.system_node_labels) if adopt is not None else dict(SYSTEM_NODE_LABEL)


def feature_store_spec(cfg: PlatformConfig, features_bucket: str = "") -> FeatureStoreSpec | None:
    """The feature store's names and settings; None when it is off."""
    store = cfg.feature_store
    if not store.enabled:
        return None
    return FeatureStoreSpec(
        label=cfg.cluster_name,
        project=store.project,
        views=tuple(store.feature_views),
        region=cfg.region,
        features_bucket=features_bucket,
        consistent_reads=store.consistent_reads,
    )


def ray_clusters(cfg: PlatformConfig, image_cache: ImageCache | None = None) -> list[RayClusterSpec]:
    """One spec per configured cluster: a team's runs in the team's namespace as its `workload` service account,
    labelled like the team's other objects (its cost labels); a platform cluster in the `ray` namespace. With
    `image_cache`, the Ray images come through it."""
    image = cached_image(versions.image("ray"), image_cache)
    gpu_image = cached_image(versions.image("ray-gpu"), image_cache)
    system = system_node_selector(cfg)
    cpu_selector = {POOL_LABEL: "general"} if cfg.cpu_pool.enabled else system
    teams = {t.name: t for t in tenant_specs(cfg)}
    users = mlflow_users(cfg)
    return [
        RayClusterSpec(
            team=c.team,
            namespace=teams[c.team].namespace if c.team else RAY_NAMESPACE,
            worker_service_account=WORKLOAD_SERVICE_ACCOUNT if c.team else RAY_SERVICE_ACCOUNT,
            labels=teams[c.team].labels if c.team else {},
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
                    efa=efa_devices(cfg, g.pool, g.gpus_per_worker),
                )
                for gname, g in c.gpu_workers.items()
            ],
            head_node_selector=system if c.head.placement == "system" else {POOL_LABEL: "general"},
            cpu_node_selector=cpu_selector,
            pool_label=POOL_LABEL,
            mlflow_credentials=TEAM_CREDENTIALS_SECRET if c.team and team_user(c.team) in users else None,
        )
        for name, c in cfg.ray.clusters.items()
    ]


def ray_job_shape(cfg: PlatformConfig) -> RayJobShape | None:
    """The cluster `mlp-train-rayjob` makes for a run, where the templates and `ray_job` are configured; its head on
    the CPU pool when there is one (a team's Ray heads' `general` placement), else the system nodes."""
    templates = cfg.pipelines.templates
    job = templates.ray_job
    if job is None or not (cfg.pipelines.enabled and templates.enabled):
        return None
    return RayJobShape(
        pool=job.pool,
        workers=job.workers,
        gpus_per_worker=job.gpus_per_worker,
        cpu=job.cpu,
        memory=job.memory,
        head_cpu=job.head_cpu,
        head_memory=job.head_memory,
        active_deadline_seconds=job.active_deadline_seconds,
        ray_version=versions.image_version("ray"),
        head_node_selector={POOL_LABEL: "general"} if cfg.cpu_pool.enabled else system_node_selector(cfg),
        pool_label=POOL_LABEL,
        efa=efa_devices(cfg, job.pool, job.gpus_per_worker),
    )


def efa_devices(cfg: PlatformConfig, pool: str, gpus: int) -> int:
    """The EFA devices a pod with `gpus` GPUs of `pool` requests: those of its GPUs on an efa pool, else 0."""
    config = cfg.gpu_pools.get(pool)
    return pool_spec(pool, config, cfg.cluster_name).efa_devices(gpus) if config is not None else 0


def ray_team_namespaces(cfg: PlatformConfig) -> list[str]:
    """The team namespaces KubeRay watches besides `ray`: those that host configured Ray clusters, and every team's
    when `mlp-train-rayjob` is installed (any team may submit it, and KubeRay ignores a RayJob in a namespace it does
    not watch). Each gets the heads' service account and network policies."""
    if not cfg.ray.enabled:
        return []
    hosts = {spec.namespace for spec in ray_clusters(cfg) if spec.team}
    if ray_job_shape(cfg) is not None:
        hosts |= {spec.namespace for spec in tenant_specs(cfg)}
    return sorted(hosts)


def has_platform_ray_clusters(cfg: PlatformConfig) -> bool:
    """Whether a Ray cluster without a team is configured (it needs the `ray` namespace's role)."""
    return cfg.ray.enabled and any(c.team is None for c in cfg.ray.clusters.values())


def serves_models(cfg: PlatformConfig) -> bool:
    """KServe or vLLM is configured and the lake has a models zone to serve from (config validation reports a
    missing zone)."""
    return (cfg.kserve.enabled or bool(cfg.vllm.models)) and "models" in cfg.data_lake.zones


def inference_services(cfg: PlatformConfig) -> list[InferenceServiceSpec]:
    if not cfg.kserve.enabled:
        return []
    return [
        InferenceServiceSpec(
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
            model_uri=s.model_uri,
            promoted_by=s.promoted_by,
            request_log=s.request_log,
        )
        for name, s in cfg.kserve.inference_services.items()
    ]


def mlflow_users(cfg: PlatformConfig) -> list[str]:
    """The MLflow accounts the platform's own workloads sign in with (MLflow's basic auth on): the registry reader
    when a model server resolves `models:/`, and each team's when the workflow templates are installed (its
    workflow steps and its Ray clusters sign in as the team)."""
    if not (cfg.mlflow.enabled and cfg.mlflow.auth.enabled):
        return []
    users = [REGISTRY_READER_USER] if serves_from_registry(cfg) else []
    if cfg.pipelines.enabled and cfg.pipelines.templates.enabled:
        users += [team_user(spec.name) for spec in tenant_specs(cfg)]
    return users


def serves_from_registry(cfg: PlatformConfig) -> bool:
    """Whether a model server resolves a `models:/` URI through MLflow (its pods then reach MLflow)."""
    return any(svc.model_uri for svc in inference_services(cfg)) or any(
        v.source == "registry" for v in cfg.vllm.models.values()
    )


def vllm_servers(cfg: PlatformConfig) -> list[VllmServer]:
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
                startup_minutes=v.startup_minutes,
                dtype=v.dtype,
                kv_cache_dtype=v.kv_cache_dtype,
                keeps_serving=cfg.serving_keeps_up,
                resolver_image=cfg.pipelines.templates.image if v.source == "registry" else None,
                mlflow_tracking_uri=MLFLOW_IN_CLUSTER_URL if v.source == "registry" else "",
                mlflow_auth=v.source == "registry" and cfg.mlflow.enabled and cfg.mlflow.auth.enabled,
                promoted_by=v.promoted_by if v.source == "registry" else None,
            )
        )
    return servers


def logs_requests(cfg: PlatformConfig) -> bool:
    """An InferenceService logs its requests to the lake (`request_log`)."""
    return cfg.kserve.enabled and any(s.request_log for s in cfg.kserve.inference_services.values())


def drift_jobs(cfg: PlatformConfig) -> dict[str, RetrainConfig]:
    """Teams whose drift job runs (retrain.<team>.drift_from, where the templates are installed)."""
    templates = cfg.pipelines.templates
    if not (cfg.pipelines.enabled and templates.enabled and cfg.observability.enabled):
        return {}
    return {team: r for team, r in sorted(templates.retrain.items()) if r.drift_from is not None}


def retrain_routes(cfg: PlatformConfig) -> tuple[RetrainRoute, ...]:
    """The teams' retrainings that a drift alert starts (retrain.on_drift, where the templates are installed)."""
    templates = cfg.pipelines.templates
    if not (cfg.pipelines.enabled and templates.enabled and cfg.observability.enabled):
        return ()
    return tuple(
        RetrainRoute(model=r.model, team=team, url=argo_event_url(f"team-{team}", DRIFT_DISCRIMINATOR))
        for team, r in sorted(templates.retrain.items())
        if r.retrains_on_drift
    )


def alerting_spec(cfg: PlatformConfig) -> AlertingSpec:
    """Where Alertmanager sends alerts; both layers read it (the topic and role, the Alertmanager values)."""
    a = cfg.observability.alerting
    sns, webhook = a.sns, a.webhook
    return AlertingSpec(
        label=cfg.cluster_name,
        region=cfg.region,
        sns_severities=sns.severities if sns.enabled else (),
        sns_send_resolved=sns.send_resolved,
        webhook_secret=webhook.secret if webhook else None,
        webhook_severities=webhook.severities if webhook else (),
        webhook_send_resolved=webhook.send_resolved if webhook else True,
        group_by=a.group_by,
        group_wait=a.group_wait,
        group_interval=a.group_interval,
        repeat_interval=a.repeat_interval,
        retrain_routes=retrain_routes(cfg),
    )


def tenant_specs(cfg: PlatformConfig) -> list[TenantSpec]:
    return [
        TenantSpec(
            name=name,
            groups=t.groups,
            gpus=t.quota.gpus,
            cpu=t.quota.cpu,
            memory=t.quota.memory,
            storage=t.quota.storage,
            internet_egress=t.internet_egress,
            labels=cost_labels(
                {**cfg.tags, **({"cost-center": t.cost_center} if t.cost_center else {})},
                team=name,
            ),
        )
        for name, t in cfg.tenants.items()
    ]


def container_log_destinations(cfg: PlatformConfig) -> list[LogDestination]:
    """The log groups of container logs: the platform's, then one per team namespace. A team's group carries the
    team (`mlplatform.io/tenant`, as its role does) and the team's cost center when it has its own, so its log
    ingestion is billed to it."""
    destinations = [LogDestination(key=PLATFORM)]
    for spec in tenant_specs(cfg):
        cost_center = cfg.tenants[spec.name].cost_center
        tags = {"mlplatform.io/tenant": spec.name, **({"cost-center": cost_center} if cost_center else {})}
        destinations.append(LogDestination(key=spec.namespace, tags=tags))
    return destinations
