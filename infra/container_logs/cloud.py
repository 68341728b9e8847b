"""Container logs' AWS side (cloud layer): the log groups Fluent Bit writes to, KMS-encrypted with the platform's
logs key, with retention and cost tags, and Fluent Bit's Pod Identity role, which may only create streams in and
put events into those groups. Fluent Bit itself runs in the cluster layer (`infra.container_logs.component`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.container_logs import documents
from mlplatform.infra.container_logs.documents import LogDestination
from mlplatform.infra.k8s_resources import pod_identity_role

COMPONENT_TYPE = "mlplatform:container_logs:ContainerLogsCloud"


@dataclass(frozen=True, kw_only=True)
class ContainerLogsCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, an Output of the cluster (the Pod Identity association names it)."""
    label: str
    """The cluster's configured name (descriptions)."""
    destinations: Sequence[LogDestination]
    """`platform` and one per team namespace (known from config: no group is made inside an apply)."""
    retention_days: int
    kms_key_arn: pulumi.Input[str]
    """The platform's CloudWatch Logs key (its policy lets CloudWatch Logs of this account and region use it)."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class ContainerLogsCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    log_groups: pulumi.Output[dict[str, str]]
    """Group name per destination (`platform`, `team-research`, ...): the cluster layer's Fluent Bit routes to them."""

    def __init__(self, name: str, args: ContainerLogsCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keys = [d.key for d in args.destinations]
        if documents.PLATFORM not in keys or len(set(keys)) != len(keys):
            raise ValueError(f"log destinations must be unique and include {documents.PLATFORM!r}: {keys}")
        groups = {
            d.key: aws.cloudwatch.LogGroup(
                f"{name}-{d.key}",
                # From the cluster's Output (the name embeds the cluster's): created after the cluster, deleted
                # before it.
                name=pulumi.Output.from_input(args.cluster_name).apply(functools.partial(_group_name, key=d.key)),
                retention_in_days=args.retention_days,
                kms_key_id=args.kms_key_arn,
                log_group_class="STANDARD",  # INFREQUENT_ACCESS has no metric filters, subscriptions or Live Tail
                tags={**args.cost_tags, **d.tags},
                opts=child,
            )
            for d in args.destinations
        }
        self.pod_identity = pod_identity_role(
            f"{name}-fluent-bit",
            cluster_name=args.cluster_name,
            namespace=documents.NAMESPACE,
            service_account=documents.SERVICE_ACCOUNT,
            description=f"{args.label}: Fluent Bit (Pod Identity): write container logs to its log groups",
            policy=pulumi.Output.all(*[g.arn for g in groups.values()]).apply(documents.writer_policy),
            tags=args.cost_tags,
            opts=child,
        )
        self.log_groups = pulumi.Output.all(**{key: g.name for key, g in groups.items()})
        self.register_outputs({"log_groups": self.log_groups})


def _group_name(cluster: str, key: str) -> str:
    return documents.log_group_name(cluster, key)
