"""Pure subnet planning: split a VPC CIDR into one private and one public subnet per availability zone.

Layout: the VPC is cut into `slots` equal blocks, where `slots` is the next power of two above the AZ count.
Private subnets (nodes and pods: the VPC CNI gives every pod a VPC address, so they must be large) take one block
per AZ. The last block is cut again into `slots` pieces for the public subnets (NAT gateways and load balancers
only). Blocks in between stay free for later use. The same input always gives the same plan.

Hazard: going from 2 to 3 AZs moves nothing (both use 4 slots), but crossing a power of two (3 to 4 AZs) re-plans
every subnet, which would replace all of them and everything inside. Choose the AZ count up front.

Example, 10.0.0.0/16 over 3 AZs: private 10.0.0.0/18, 10.0.64.0/18, 10.0.128.0/18; public 10.0.192.0/20,
10.0.208.0/20, 10.0.224.0/20.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# AWS reserves 5 addresses in every subnet.
AWS_RESERVED_PER_SUBNET = 5
# Smallest private subnet we accept: nodes plus their pods' addresses must fit.
MIN_PRIVATE_PREFIX = 24
# AWS's smallest subnet.
MIN_PUBLIC_PREFIX = 28


class SubnetPlanError(ValueError):
    """The VPC CIDR cannot hold the requested subnets."""


@dataclass(frozen=True)
class SubnetPlan:
    vpc: ipaddress.IPv4Network
    private: tuple[ipaddress.IPv4Network, ...]
    public: tuple[ipaddress.IPv4Network, ...]

    @property
    def private_usable_ips(self) -> int:
        return sum(n.num_addresses - AWS_RESERVED_PER_SUBNET for n in self.private)


def slot_count(az_count: int) -> int:
    """How many equal blocks the VPC is cut into: the next power of two above the AZ count."""
    slots = 1
    while slots < az_count + 1:
        slots *= 2
    return slots


def plan_subnets(vpc: ipaddress.IPv4Network | str, az_count: int) -> SubnetPlan:
    """Plan one private and one public subnet per AZ inside `vpc`."""
    network = ipaddress.ip_network(vpc) if isinstance(vpc, str) else vpc
    if not isinstance(network, ipaddress.IPv4Network):
        raise SubnetPlanError(f"{vpc} is not an IPv4 network")
    if az_count < 1:
        raise SubnetPlanError("az_count must be at least 1")
    slots = slot_count(az_count)
    bits = slots.bit_length() - 1
    private_prefix = network.prefixlen + bits
    public_prefix = private_prefix + bits
    if private_prefix > MIN_PRIVATE_PREFIX:
        largest = MIN_PRIVATE_PREFIX - bits
        raise SubnetPlanError(
            f"{network} is too small for {az_count} AZs: private subnets would be /{private_prefix} "
            f"({2 ** (32 - private_prefix) - AWS_RESERVED_PER_SUBNET} usable addresses each); use /{largest} or larger "
            f"(private subnets must be /{MIN_PRIVATE_PREFIX} or larger)"
        )
    if public_prefix > MIN_PUBLIC_PREFIX:  # pragma: no cover - implied by the private check for az_count <= 7
        raise SubnetPlanError(f"{network} is too small for {az_count} public subnets")
    blocks = list(network.subnets(prefixlen_diff=bits))
    private = tuple(blocks[:az_count])
    public = tuple(list(blocks[-1].subnets(prefixlen_diff=bits))[:az_count])
    return SubnetPlan(vpc=network, private=private, public=public)
