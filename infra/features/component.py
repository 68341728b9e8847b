"""The feature store's Kubernetes side (cluster layer): the `feast` namespace, its NetworkPolicies, the two
service accounts, `feature_store.yaml` (ConfigMap), the feature server (Deployment, Service, PodDisruptionBudget)
and the materialization CronJob. The tables and roles are `infra.features.cloud.FeatureStoreCloud`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra import platform_policies
from mlplatform.infra import platform_policy_resources as policy_resources
from mlplatform.infra.features import documents
from mlplatform.infra.features.documents import (
    FEAST_NAMESPACE,
    FEATURE_SERVER,
    FEATURE_SERVER_PORT,
    FEATURE_SERVER_SELECTOR,
    FEATURE_SERVER_SERVICE_ACCOUNT,
    MATERIALIZER_SERVICE_ACCOUNT,
    FeatureStoreSpec,
)
from mlplatform.infra.k8s_documents import pod_disruption_budget, pod_security_labels, service

COMPONENT_TYPE = "mlplatform:features:FeatureStore"


@dataclass(frozen=True, kw_only=True)
class FeatureStoreArgs:
    spec: FeatureStoreSpec
    """Its `features_bucket` is ignored: the bucket's name comes from the cloud layer (below)."""
    features_bucket: pulumi.Input[str]
    image: pulumi.Input[str]
    server_replicas: int = 1
    materialize_schedule: str = "0 * * * *"
    serving_clients: bool = False
    """The serving namespace exists: its model servers may reach the feature server."""
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    addresses: pulumi.Input[platform_policies.ClusterAddresses] = field(
        default_factory=lambda: platform_policies.ClusterAddresses()
    )


class FeatureStore(pulumi.ComponentResource):
    """Needs the `kubernetes` provider in `opts.providers`."""

    def __init__(self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": FEAST_NAMESPACE, "labels": {**labels, **pod_security_labels("restricted")}},
            opts=child,
        )
        after_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        policy_resources.network_policies(
            f"{name}-{FEAST_NAMESPACE}",
            lambda a: platform_policies.feast_policies(a, labels, serving=args.serving_clients),
            args.addresses,
            namespace,
            self,
        )
        accounts = [
            k8s.core.v1.ServiceAccount(
                f"{name}-{account}",
                metadata={"name": account, "namespace": FEAST_NAMESPACE, "labels": labels},
                automount_service_account_token=False,  # neither workload calls the Kubernetes API
                opts=after_namespace,
            )
            for account in (FEATURE_SERVER_SERVICE_ACCOUNT, MATERIALIZER_SERVICE_ACCOUNT)
        ]
        # Everything but the ConfigMap's registry path is known before the cloud layer's outputs: the objects'
        # metadata stays known at preview.
        spec = pulumi.Output.from_input(args.features_bucket).apply(
            lambda bucket: dataclasses.replace(args.spec, features_bucket=bucket)
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": documents.CONFIG_MAP, "namespace": FEAST_NAMESPACE, "labels": labels},
            data=spec.apply(lambda s: documents.config_map(s, labels)["data"]),
            opts=after_namespace,
        )
        ready = pulumi.ResourceOptions(parent=self, depends_on=[namespace, config, *accounts])
        static = args.spec
        server = documents.server_deployment(
            spec=static,
            image="",
            replicas=args.server_replicas,
            labels=labels,
            node_selector=args.system_node_selector,
            config_hash="",
        )
        k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=server["metadata"],
            spec=pulumi.Output.all(spec, args.image).apply(
                lambda v: documents.server_deployment(
                    spec=v[0],
                    image=v[1],
                    replicas=args.server_replicas,
                    labels=labels,
                    node_selector=args.system_node_selector,
                    config_hash=documents.config_hash(v[0]),
                )["spec"]
            ),
            opts=ready,
        )
        svc = service(FEATURE_SERVER, FEAST_NAMESPACE, FEATURE_SERVER_SELECTOR, FEATURE_SERVER_PORT, labels)
        k8s.core.v1.Service(f"{name}-service", metadata=svc["metadata"], spec=svc["spec"], opts=after_namespace)
        pdb = pod_disruption_budget(
            FEATURE_SERVER, FEAST_NAMESPACE, FEATURE_SERVER_SELECTOR, labels, args.server_replicas
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=after_namespace
        )
        job = documents.materialize_cronjob(
            spec=static,
            image="",
            schedule=args.materialize_schedule,
            labels=labels,
            node_selector=args.system_node_selector,
        )
        k8s.batch.v1.CronJob(
            f"{name}-materialize",
            metadata=job["metadata"],
            spec=pulumi.Output.from_input(args.image).apply(
                lambda image: documents.materialize_cronjob(
                    spec=static,
                    image=image,
                    schedule=args.materialize_schedule,
                    labels=labels,
                    node_selector=args.system_node_selector,
                )["spec"]
            ),
            opts=ready,
        )
        self.register_outputs({})
