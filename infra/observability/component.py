"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana, kube-state-metrics, node exporter), the
DCGM exporter on GPU nodes, and monitors for the platform's services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlplatform.infra import platform_policies
from mlplatform.infra import platform_policy_resources as policy_resources
from mlplatform.infra.catalog import versions
from mlplatform.infra.drift.alerts import drift_alert_group
from mlplatform.infra.features.alerts import feature_store_alert_group
from mlplatform.infra.k8s_documents import pod_security_labels
from mlplatform.infra.k8s_resources import custom_resource, helm_release
from mlplatform.infra.layer_outputs import missing_output
from mlplatform.infra.observability import dashboards, documents, pushgateway, rules
from mlplatform.infra.observability.alerting import AlertingSpec
from mlplatform.infra.observability.documents import DCGM_NAMESPACE, NAMESPACE, Monitor, MonitoringSpec
from mlplatform.infra.observability.rules import Thresholds
from mlplatform.infra.pipelines.engine.documents import ARGO_NAMESPACE, SERVER_PORT, SERVER_SELECTOR
from mlplatform.infra.pipelines.templates import DRIFT_POD_LABEL

if TYPE_CHECKING:
    from mlplatform.infra.platform_policies import ClusterAddresses

COMPONENT_TYPE = "mlplatform:observability:Monitoring"


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    spec: MonitoringSpec
    alerting: AlertingSpec
    """Where Alertmanager sends alerts (`observability.alerting`)."""
    alerts_topic_arn: pulumi.Input[str] | None = None
    """The cloud layer's alert topic, when `alerting` publishes to SNS."""
    monitors: Sequence[Monitor] = ()
    gpu_nodes: bool = True
    """Install the DCGM exporter (there are GPU pools)."""
    retain_volumes: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    gpu_hourly_prices: Mapping[str, float] = field(default_factory=dict)
    """On-demand price of one GPU per instance type the pools may launch (recording rules for cost panels)."""
    drift_alerts: bool = False
    """Add `infra.drift`'s ModelFeatureDrift group (label action=retrain) to the platform's alert rules."""
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()
    """Namespaces the monitors live in (their components)."""
    addresses: pulumi.Input[ClusterAddresses] = field(default_factory=lambda: platform_policies.ClusterAddresses())
    """What the namespaces' NetworkPolicies name (the private subnets, the interface endpoints)."""
    pushgateway_image: pulumi.Input[str] | None = None
    """Set: run the platform's Pushgateway (`observability.pushgateway`) in this image, for the drift jobs."""
    aws_cli_image: pulumi.Input[str] = field(default_factory=lambda: versions.image("aws-cli"))
    """The image of Alertmanager's webhook URL fetcher (the cluster layer passes it through the image cache)."""


class Monitoring(pulumi.ComponentResource):
    """Needs the `kubernetes` provider in `opts.providers`."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            # The node exporter mounts host paths; the namespace cannot be `restricted`.
            metadata={"name": NAMESPACE, "labels": {**labels, **pod_security_labels("privileged")}},
            opts=child,
        )
        names = {m.name for m in args.monitors}
        targets = platform_policies.scrape_targets(
            dcgm=args.gpu_nodes,
            vllm="vllm" in names,
            kserve="kserve-predictors" in names,
            ray="ray" in names,
            karpenter="karpenter" in names,
            feature_server="feature-server" in names,
        )
        if args.pushgateway_image is not None:
            targets.append(
                platform_policies.ScrapeTarget(namespace=NAMESPACE, pods=pushgateway.SELECTOR, port=pushgateway.PORT)
            )
        policy_resources.network_policies(
            f"{name}-{NAMESPACE}",
            lambda a: platform_policies.monitoring_policies(
                a,
                labels,
                targets=targets,
                grafana=args.spec.grafana,
                event_endpoints=[(ARGO_NAMESPACE, SERVER_SELECTOR, SERVER_PORT)]
                if args.alerting.retrain_routes
                else [],
                pushgateway=(pushgateway.SELECTOR, pushgateway.PORT, DRIFT_POD_LABEL)
                if args.pushgateway_image is not None
                else None,
            ),
            args.addresses,
            namespace,
            self,
        )
        sc = documents.storage_class(retain=args.retain_volumes, labels=labels)
        storage = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=sc["metadata"],
            provisioner=sc["provisioner"],
            parameters=sc["parameters"],
            reclaim_policy=sc["reclaimPolicy"],
            volume_binding_mode=sc["volumeBindingMode"],
            allow_volume_expansion=sc["allowVolumeExpansion"],
            opts=child,
        )
        password = random.RandomPassword(f"{name}-grafana-admin-password", length=32, special=False, opts=child)
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": documents.GRAFANA_ADMIN_SECRET, "namespace": NAMESPACE, "labels": labels},
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        self.release = helm_release(
            f"{name}-kube-prometheus-stack",
            "kube-prometheus-stack",
            NAMESPACE,
            pulumi.Output.all(args.alerts_topic_arn, args.aws_cli_image).apply(lambda v: _values(args, v[0], v[1])),
            pulumi.ResourceOptions(parent=self, depends_on=[namespace, storage, admin]),
            release_name=documents.RELEASE,
            timeout=900,  # Prometheus' volume and the admission webhook's jobs take a while on first install
        )
        self.crds: list[pulumi.Resource] = [self.release]
        if args.gpu_nodes:
            dcgm_ns = k8s.core.v1.Namespace(
                f"{name}-dcgm-namespace",
                # The exporter talks to the GPU driver as root with SYS_ADMIN (NVIDIA's chart default).
                metadata={"name": DCGM_NAMESPACE, "labels": {**labels, **pod_security_labels("privileged")}},
                opts=child,
            )
            policy_resources.network_policies(
                f"{name}-{DCGM_NAMESPACE}",
                lambda _: platform_policies.dcgm_policies(labels),
                args.addresses,
                dcgm_ns,
                self,
            )
            helm_release(
                f"{name}-dcgm-exporter",
                "dcgm-exporter",
                DCGM_NAMESPACE,
                documents.dcgm_exporter_values(labels=labels),
                # Its ServiceMonitor needs the Prometheus Operator's CRDs.
                pulumi.ResourceOptions(parent=self, depends_on=[dcgm_ns, self.release]),
            )
        for monitor in args.monitors:
            custom_resource(
                f"{name}-{monitor.name}-monitor",
                documents.monitor_manifest(monitor, labels),
                pulumi.ResourceOptions(parent=self, depends_on=[self.release, *args.depends_on]),
            )
        after_stack = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        if args.pushgateway_image is not None:
            self._create_pushgateway(name, args, args.pushgateway_image, labels, namespace)
        extra_groups = [drift_alert_group()] if args.drift_alerts else []
        if "feature-server" in names:  # the feature store is on: its group (materialization, freshness, the server)
            extra_groups.append(feature_store_alert_group(args.thresholds.feature_server_error_percent))
        for rule_name, groups in (
            ("mlplatform-alerts", [*rules.alert_groups(args.thresholds), *extra_groups]),
            ("mlplatform-cost", rules.recording_groups(args.gpu_hourly_prices)),
        ):
            custom_resource(f"{name}-{rule_name}", rules.prometheus_rule(rule_name, groups, labels), after_stack)
        for dashboard in dashboards.platform_dashboards(args.thresholds.gpu_idle_utilization_percent):
            config_map = dashboards.dashboard_config_map(dashboard, labels)
            k8s.core.v1.ConfigMap(
                f"{name}-{dashboard.uid}",
                metadata=config_map["metadata"],
                data=config_map["data"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
        self.register_outputs({})

    def _create_pushgateway(
        self,
        name: str,
        args: MonitoringArgs,
        image: pulumi.Input[str],
        labels: Mapping[str, str],
        namespace: k8s.core.v1.Namespace,
    ) -> None:
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        manifest = pulumi.Output.from_input(image).apply(
            lambda i: pushgateway.deployment(i, args.spec.node_selector, labels)
        )
        k8s.apps.v1.Deployment(
            f"{name}-pushgateway",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=after_ns,
        )
        svc = pushgateway.service(labels)
        k8s.core.v1.Service(f"{name}-pushgateway-service", metadata=svc["metadata"], spec=svc["spec"], opts=after_ns)
        custom_resource(
            f"{name}-pushgateway-monitor",
            documents.monitor_manifest(pushgateway.monitor(), labels),
            pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )


def _values(args: MonitoringArgs, topic_arn: str | None, aws_cli_image: str) -> dict[str, object]:
    if args.alerting.uses_sns and not topic_arn:
        raise missing_output("observability.alerting.sns is enabled", "alerts_topic_arn")
    return documents.kube_prometheus_stack_values(
        args.spec, alerting=args.alerting, topic_arn=topic_arn, aws_cli_image=aws_cli_image
    )
