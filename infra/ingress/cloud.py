"""The AWS Load Balancer Controller's AWS side (cloud layer): its Pod Identity role with the controller's
published policy, tightened (see `documents.controller_policy`). The controller itself is
`infra.ingress.component.LoadBalancerController`, in the cluster layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.ingress import documents
from mlplatform.infra.k8s_resources import pod_identity_role

COMPONENT_TYPE = "mlplatform:ingress:LoadBalancerControllerCloud"


@dataclass(frozen=True, kw_only=True)
class LoadBalancerControllerCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, an Output of the cluster (the association names it)."""
    label: str
    region: str
    vpc_id: pulumi.Input[str]
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class LoadBalancerControllerCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    def __init__(
        self, name: str, args: LoadBalancerControllerCloudArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        account = aws_account(self)
        partition, account_id = account.partition, account.account_id
        self.pod_identity = pod_identity_role(
            name,
            cluster_name=args.cluster_name,
            namespace=documents.NAMESPACE,
            service_account=documents.SERVICE_ACCOUNT,
            description=f"{args.label}: AWS Load Balancer Controller (Pod Identity)",
            policy=pulumi.Output.all(partition, account_id, args.vpc_id).apply(
                lambda v: documents.controller_policy(partition=v[0], region=args.region, account_id=v[1], vpc_id=v[2])
            ),
            tags=args.cost_tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
