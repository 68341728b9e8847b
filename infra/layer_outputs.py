"""The contract between the two layers: what the cloud layer exports and the cluster layer reads back through a
StackReference. One dataclass, one field per stack output, so that the exporter and the reader cannot drift.

Every value the cluster layer gets from AWS comes through here (names, ids, endpoints), never re-derived from
config, so that a cluster layer pointed at a cluster someone else made needs only these outputs.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import pulumi

from mlplatform.infra.constants import PROJECT


@dataclass(frozen=True)
class CloudOutputs:
    """Values of the cloud layer's stack. In the cloud layer they are Outputs of its resources; in the cluster layer
    Outputs read from the StackReference. `None` (optional fields) when the stack has no such part."""

    region: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_certificate_authority: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    interface_endpoint_cidrs: pulumi.Input[list[str]]
    """Where the VPC's interface endpoints answer (each network interface's address as a /32, or configured blocks
    of an adopted VPC); empty when it has none. Team namespaces' egress admits these on TCP 443."""
    s3_cidrs: pulumi.Input[list[str]]
    """The region's S3 address blocks (the AWS-managed prefix list `com.amazonaws.<region>.s3`, read at deploy
    time): where requests through the S3 gateway endpoint go. Team namespaces' egress admits these on TCP 443."""
    lake_buckets: pulumi.Input[dict[str, str]]
    """Bucket name per lake zone."""
    lake_key_arn: pulumi.Input[str]
    kubeconfig: pulumi.Input[str]
    """Secret: a kubeconfig for people (`aws eks get-token`); the cluster layer builds its own provider."""
    update_kubeconfig_command: pulumi.Input[str]
    karpenter_node_role_name: pulumi.Input[str] | None = None
    karpenter_interruption_queue: pulumi.Input[str] | None = None
    mlflow_db_secret_arn: pulumi.Input[str] | None = None
    mlflow_admin_secret_arn: pulumi.Input[str] | None = None
    runner_project: pulumi.Input[str] | None = None
    """The in-VPC runner's CodeBuild project (`mlp runner STACK up` starts it)."""
    alerts_topic_arn: pulumi.Input[str] | None = None
    """The SNS topic Alertmanager publishes alerts to (subscribe to it); None when no severity goes to SNS."""
    container_log_groups: pulumi.Input[dict[str, str]] | None = None
    """Container log group name per destination (`platform`, each team namespace); None when observability.logs is
    off."""
    node_security_group_id: pulumi.Input[str] | None = None
    """The security group an adopted cluster's nodes carry (Karpenter's nodes get it too); None for a cluster the
    cloud layer created, whose nodes carry `cluster_security_group_id`."""
    efa_security_group_id: pulumi.Input[str] | None = None
    """The security group of efa pools' nodes (all traffic among its members); None when no pool has efa."""
    image_registry: pulumi.Input[str] | None = None
    """The private registry the image cache's pull-through rules live in (`<account>.dkr.ecr.<region>.amazonaws.com`);
    None when cluster.image_cache is off."""

    def export(self) -> None:
        """Export every field as a stack output of the same name (None exports as null)."""
        for f in dataclasses.fields(self):
            pulumi.export(f.name, getattr(self, f.name))

    @classmethod
    def read(cls, reference: pulumi.StackReference) -> CloudOutputs:
        """Every field from the referenced cloud-layer stack; a missing required output fails with what to do."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            check = functools.partial(_present, key=f.name, required=f.default is dataclasses.MISSING)
            values[f.name] = reference.get_output(f.name).apply(check)
        return cls(**values)


def _present(value: Any, key: str, required: bool) -> Any:
    if value is None and required:
        raise ValueError(
            f"the cloud layer's stack has no output {key!r}: run `pulumi up` for the cloud layer (project "
            f"{PROJECT}) of this stack first, with this version of the program"
        )
    return value


def missing_output(feature: str, key: str) -> ValueError:
    """The error for an optional output the cluster layer needs (`feature` is configured) and the cloud layer's stack
    does not have: that stack was deployed by an older version of the program, or not at all."""
    return ValueError(
        f"{feature}, but the cloud layer's stack has no output {key}: run `pulumi up` for the cloud layer with this "
        "version of the program first"
    )


def cloud_stack_name(organization: str, stack: str) -> str:
    """The cloud layer's stack, as a StackReference names it (`organization/ml-platform/dev` on a self-managed
    backend, `<org>/ml-platform/dev` on Pulumi Cloud)."""
    return f"{organization}/{PROJECT}/{stack}"
