"""The AWS Load Balancer Controller (cluster layer), installed when an ingress needs it. Its Pod Identity role is
`infra.ingress.cloud.LoadBalancerControllerCloud`, in the cloud layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.ingress import documents
from infra.k8s_resources import helm_release

COMPONENT_TYPE = "mlplatform:ingress:LoadBalancerController"


@dataclass(frozen=True, kw_only=True)
class LoadBalancerControllerArgs:
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    replicas: int = 2
    cost_tags: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    depends_on: Sequence[pulumi.Resource] = ()
    """The controller's Pod Identity role when it is created in the same program."""


class LoadBalancerController(pulumi.ComponentResource):
    """Needs the `kubernetes` provider in `opts.providers`."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.release = helm_release(
            f"{name}-release",
            "aws-load-balancer-controller",
            documents.NAMESPACE,
            pulumi.Output.all(args.cluster_name, args.vpc_id).apply(
                lambda v: documents.controller_values(
                    cluster_name=v[0],
                    region=args.region,
                    vpc_id=v[1],
                    replicas=args.replicas,
                    node_selector=args.system_node_selector,
                    default_tags=args.cost_tags,
                )
            ),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({})
