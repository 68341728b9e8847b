"""Adopt an existing VPC: explicit ids, or the outputs of a Terraform state (local file or S3 backend).

Nothing is created: the component only exposes the ids, so that the cluster and node pools land in the
foundation's subnets. Reading a state uses `pulumi_terraform`'s state references; the offline planner answers
them by reading the same state file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlplatform.infra.network.component import s3_prefix_list_cidrs
from mlplatform.infra.network.terraform_state import AdoptedNetworkIds, network_from_outputs
from mlplatform.infra.terraform_reference import TerraformStateSource, state_outputs

COMPONENT_TYPE = "mlplatform:network:AdoptedNetwork"


@dataclass(frozen=True, kw_only=True)
class AdoptedNetworkArgs:
    vpc_id: str | None = None
    private_subnet_ids: Sequence[str] = ()
    public_subnet_ids: Sequence[str] = ()
    terraform_state: TerraformStateSource | None = None
    interface_endpoint_cidrs: Sequence[str] = ()
    """Where the foundation's interface endpoints answer (their addresses, or a subnet that holds only endpoints):
    given in config, because the endpoints are not this program's."""
    s3_gateway_endpoint_id: str | None = None
    """The foundation's S3 gateway endpoint on the private subnets' route tables, when config names it."""


class AdoptedNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    interface_endpoint_cidrs: pulumi.Output[list[str]]
    """As configured (`network.adopt.interface_endpoint_cidrs`); empty when none are given."""
    s3_gateway_endpoint_id: pulumi.Output[str] | None
    """As configured (`network.adopt.s3_gateway_endpoint_id`); None when not given (the lake's perimeter then keys
    on the VPC instead: `aws:SourceVpc`)."""
    s3_cidrs: pulumi.Output[list[str]]
    """The region's S3 address blocks (the AWS-managed prefix list), as for a created network."""

    def __init__(self, name: str, args: AdoptedNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        state = args.terraform_state
        if state is None:
            if args.vpc_id is None:
                raise ValueError("AdoptedNetwork needs vpc_id and subnet ids, or a terraform_state")
            ids = pulumi.Output.from_input(
                AdoptedNetworkIds(args.vpc_id, list(args.private_subnet_ids), list(args.public_subnet_ids))
            )
        else:
            outputs = state_outputs(state, self)
            source = state.describe()
            ids = outputs.apply(lambda o: network_from_outputs(o, state.output_names, source))
        self.vpc_id = ids.apply(lambda i: i.vpc_id)
        self.private_subnet_ids = ids.apply(lambda i: i.private_subnet_ids)
        self.public_subnet_ids = ids.apply(lambda i: i.public_subnet_ids)
        self.interface_endpoint_cidrs = pulumi.Output.from_input(list(args.interface_endpoint_cidrs))
        self.s3_gateway_endpoint_id = (
            None if args.s3_gateway_endpoint_id is None else pulumi.Output.from_input(args.s3_gateway_endpoint_id)
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        self.s3_cidrs = s3_prefix_list_cidrs(self, region)
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids})
