"""The AWS Load Balancer Controller with a Pod Identity role, installed when an ingress needs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.ingress import documents
from infra.k8s_resources import helm_release, pod_identity_role

COMPONENT_TYPE = "mlplatform:ingress:LoadBalancerController"


@dataclass(frozen=True, kw_only=True)
class LoadBalancerControllerArgs:
    cluster_name: str
    region: str
    vpc_id: pulumi.Input[str]
    replicas: int = 2
    cost_tags: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})


class LoadBalancerController(pulumi.ComponentResource):
    """Needs the `aws` and `kubernetes` providers in `opts.providers`."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        identity = pod_identity_role(
            name,
            cluster_name=args.cluster_name,
            namespace=documents.NAMESPACE,
            service_account=documents.SERVICE_ACCOUNT,
            description=f"{args.cluster_name}: AWS Load Balancer Controller (Pod Identity)",
            policy=pulumi.Output.all(partition, account_id, args.vpc_id).apply(
                lambda v: documents.controller_policy(partition=v[0], region=args.region, account_id=v[1], vpc_id=v[2])
            ),
            tags=args.cost_tags,
            opts=child,
        )
        self.release = helm_release(
            f"{name}-release",
            "aws-load-balancer-controller",
            documents.NAMESPACE,
            pulumi.Output.from_input(args.vpc_id).apply(
                lambda vpc: documents.controller_values(
                    cluster_name=args.cluster_name,
                    region=args.region,
                    vpc_id=vpc,
                    replicas=args.replicas,
                    node_selector=args.system_node_selector,
                    default_tags=args.cost_tags,
                )
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[identity]),
        )
        self.register_outputs({})
