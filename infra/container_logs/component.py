"""Container logs (cluster layer): Fluent Bit as a DaemonSet on every node, shipping every pod's logs to the log
groups the cloud layer made (`infra.container_logs.cloud.ContainerLogsCloud`, which also holds its Pod Identity
role)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra import platform_policies
from mlplatform.infra import platform_policy_resources as policy_resources
from mlplatform.infra.container_logs import documents
from mlplatform.infra.k8s_documents import pod_security_labels
from mlplatform.infra.k8s_resources import helm_release
from mlplatform.infra.layer_outputs import missing_output

if TYPE_CHECKING:
    from mlplatform.infra.platform_policies import ClusterAddresses

COMPONENT_TYPE = "mlplatform:container_logs:ContainerLogs"


@dataclass(frozen=True, kw_only=True)
class ContainerLogsArgs:
    region: str
    log_groups: pulumi.Input[Mapping[str, str]] | None
    """The cloud layer's output `container_log_groups`: group name per destination (`platform`, team namespaces)."""
    team_namespaces: Sequence[str] = ()
    """Namespaces whose logs go to a group of their own (the teams'); every other namespace goes to `platform`."""
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    addresses: pulumi.Input[ClusterAddresses] = field(default_factory=lambda: platform_policies.ClusterAddresses())
    """What the namespace's NetworkPolicies name (the interface endpoints: CloudWatch Logs)."""


class ContainerLogs(pulumi.ComponentResource):
    """Needs the `kubernetes` provider in `opts.providers`."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: ContainerLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            # Fluent Bit mounts host paths (/var/log, its offsets database): `baseline` forbids hostPath volumes.
            metadata={"name": documents.NAMESPACE, "labels": {**labels, **pod_security_labels("privileged")}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy_resources.network_policies(
            f"{name}-{documents.NAMESPACE}",
            lambda a: platform_policies.logging_policies(a, labels),
            args.addresses,
            namespace,
            self,
        )
        self.release = helm_release(
            f"{name}-fluent-bit",
            "fluent-bit",
            documents.NAMESPACE,
            pulumi.Output.from_input(args.log_groups).apply(lambda groups: _values(args, groups, labels)),
            pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            release_name=documents.RELEASE,
        )
        self.register_outputs({})


def _values(args: ContainerLogsArgs, groups: Mapping[str, str] | None, labels: Mapping[str, str]) -> dict[str, object]:
    if not groups:
        raise missing_output("observability.logs is enabled", "container_log_groups")
    return documents.values_for(
        region=args.region, log_groups=groups, team_namespaces=args.team_namespaces, labels=labels
    )
