"""The platform VPC: public and private subnets per AZ, NAT, endpoints, flow logs.

Subnets come from the pure planner in `cidr.py`; every child is named after the component and a stable key
(`az1`, `az2`, ... is the subnet slot, which never moves when an AZ is added).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.network import documents
from mlplatform.infra.network.cidr import plan_subnets

COMPONENT_TYPE = "mlplatform:network:Network"


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    cidr: str
    az_count: int
    nat: str  # "single" | "per_az"
    cluster_name: str  # for load balancer and Karpenter discovery tags
    s3_gateway_endpoint: bool = True
    interface_endpoints: Sequence[str] = ("ecr.api", "ecr.dkr", "sts")
    flow_logs: bool = True
    flow_logs_retention_days: int = 30
    flow_logs_traffic_type: str = "ALL"
    logs_kms_key_arn: pulumi.Input[str] | None = None
    s3_write_buckets: Sequence[str] = ()
    """Other accounts' buckets the platform writes through the S3 gateway endpoint (the runner's state backend)."""
    s3_read_buckets: Sequence[str] = ()
    """Other accounts' buckets that may be read and listed through the S3 gateway endpoint."""
    protect: bool = False
    """protect/retainOnDelete on the flow log group (prod): a destroy leaves the group and its records."""
    tags: Mapping[str, str] = field(default_factory=dict)


def zone_key(index: int) -> str:
    """The stable key of subnet slot `index` (0-based): az1, az2, ..."""
    return f"az{index + 1}"


def _slot(interface_ids: Sequence[str], slot: int) -> str:
    if slot >= len(interface_ids):
        raise ValueError(
            f"an interface endpoint has {len(interface_ids)} network interfaces, expected one per private subnet "
            f"({slot + 1} or more): check the endpoint in the VPC console, then run `pulumi refresh`"
        )
    return interface_ids[slot]


def _interface_policy(account_id: str, service: str) -> str:
    return documents.interface_endpoint_policy(account_id=account_id, service=service)


def _address_order(blocks: Sequence[str]) -> list[str]:
    """IPv4 blocks in address order, each once."""
    return [str(b) for b in sorted({ipaddress.IPv4Network(b) for b in blocks})]


def s3_prefix_list_cidrs(parent: pulumi.Resource, region: pulumi.Input[str]) -> pulumi.Output[list[str]]:
    """The region's S3 address blocks, read from the AWS-managed prefix list `com.amazonaws.<region>.s3` (the
    destinations an S3 gateway endpoint's routes carry; AWS keeps the list current, a `pulumi up` reads it again)."""
    found = aws.ec2.get_prefix_list_output(
        name=pulumi.Output.concat("com.amazonaws.", region, ".s3"), opts=pulumi.InvokeOutputOptions(parent=parent)
    )
    return found.cidr_blocks.apply(_address_order)


def _host_blocks(addresses: Sequence[str]) -> list[str]:
    """Addresses as /32 blocks, in address order, each once."""
    return [f"{ip}/32" for ip in sorted({ipaddress.IPv4Address(a) for a in addresses})]


class Network(pulumi.ComponentResource):
    """A VPC for one EKS cluster."""

    vpc_id: pulumi.Output[str]
    """The VPC id."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnets, one per AZ, in slot order (nodes, pods, internal load balancers, endpoints)."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Public subnets, one per AZ (NAT gateways and internet-facing load balancers only)."""
    availability_zones: pulumi.Output[list[str]]
    interface_endpoint_cidrs: pulumi.Output[list[str]]
    """The private address of every interface endpoint's network interface (one per endpoint and private subnet),
    each as a /32, in address order; empty without interface endpoints. With private DNS on, the AWS SDKs resolve
    those services to these addresses, so workloads whose egress is fenced must be allowed to reach them."""
    s3_gateway_endpoint_id: pulumi.Output[str] | None
    """The S3 gateway endpoint (`vpce-...`): the lake's bucket policies admit object requests through it only. None
    when `s3_gateway_endpoint` is off."""
    s3_cidrs: pulumi.Output[list[str]]
    """The region's S3 address blocks: the AWS-managed prefix list `com.amazonaws.<region>.s3` that the gateway
    endpoint's routes carry, read at deploy time, in address order. Team pods reach S3 (through the endpoint) on
    TCP 443 to these and no other public address."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._plan = plan_subnets(args.cidr, args.az_count)

        zones = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self._zone_names = zones.names
        self._account = aws_account(self)

        self._create_vpc()
        self._create_subnets()
        self._create_routing()
        self._create_endpoints()
        if args.flow_logs:
            self._create_flow_logs()

        self.vpc_id = self.vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in self.private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in self.public_subnets])
        self.availability_zones = pulumi.Output.all(*[s.availability_zone for s in self.private_subnets])
        self.interface_endpoint_cidrs = self._endpoint_addresses()
        self.s3_cidrs = s3_prefix_list_cidrs(self, self._account.region)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
                "interface_endpoint_cidrs": self.interface_endpoint_cidrs,
                "s3_gateway_endpoint_id": self.s3_gateway_endpoint_id,
                "s3_cidrs": self.s3_cidrs,
            }
        )

    def _tags(self, name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self._args.tags, "Name": name, **(extra or {})}

    def _create_vpc(self) -> None:
        name = self._name
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(self._plan.vpc),
            enable_dns_support=True,
            enable_dns_hostnames=True,  # required for private endpoint DNS and EKS private API access
            tags=self._tags(f"{name}-vpc"),
            opts=self._child,
        )
        # Take over the VPC's default security group and leave it with no rules (CIS AWS 5.4).
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            tags=self._tags(f"{name}-default-deny"),
            opts=self._child,
        )
        self.igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=self._tags(f"{name}-igw"), opts=self._child
        )

    def _create_subnets(self) -> None:
        name, args = self._name, self._args
        self.private_subnets: list[aws.ec2.Subnet] = []
        self.public_subnets: list[aws.ec2.Subnet] = []
        for i, (private_cidr, public_cidr) in enumerate(zip(self._plan.private, self._plan.public, strict=True)):
            key = zone_key(i)
            zone = self._zone_names[i]
            self.private_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-private-{key}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(private_cidr),
                    availability_zone=zone,
                    map_public_ip_on_launch=False,
                    tags=self._tags(f"{name}-private-{key}", documents.private_subnet_tags(args.cluster_name)),
                    opts=self._child,
                )
            )
            self.public_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-public-{key}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(public_cidr),
                    availability_zone=zone,
                    # Nothing launched here needs a public address: NAT gateways use EIPs, ALBs their own.
                    map_public_ip_on_launch=False,
                    tags=self._tags(f"{name}-public-{key}", documents.public_subnet_tags()),
                    opts=self._child,
                )
            )

    def _create_routing(self) -> None:
        name, args = self._name, self._args
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": self.igw.id}],
            tags=self._tags(f"{name}-public"),
            opts=self._child,
        )
        for i, subnet in enumerate(self.public_subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone_key(i)}-rta", subnet_id=subnet.id, route_table_id=public_rt.id, opts=self._child
            )

        nat_count = 1 if args.nat == "single" else len(self.public_subnets)
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        for i in range(nat_count):
            key = zone_key(i)
            eip = aws.ec2.Eip(
                f"{name}-nat-{key}-eip", domain="vpc", tags=self._tags(f"{name}-nat-{key}"), opts=self._child
            )
            self.nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{key}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[i].id,
                    connectivity_type="public",
                    tags=self._tags(f"{name}-nat-{key}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.igw]),  # NAT needs the IGW attached
                )
            )

        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for i, subnet in enumerate(self.private_subnets):
            key = zone_key(i)
            nat = self.nat_gateways[i if nat_count > 1 else 0]
            rt = aws.ec2.RouteTable(
                f"{name}-private-{key}-rt",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags=self._tags(f"{name}-private-{key}"),
                opts=self._child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{key}-rta", subnet_id=subnet.id, route_table_id=rt.id, opts=self._child
            )
            self.private_route_tables.append(rt)

    def _create_endpoints(self) -> None:
        name, args = self._name, self._args
        self.interface_endpoints: list[aws.ec2.VpcEndpoint] = []
        account = self._account
        region = account.region
        self.s3_gateway_endpoint_id = None
        if args.s3_gateway_endpoint:
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-s3-endpoint",
                vpc_id=self.vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region, ".s3"),
                vpc_endpoint_type="Gateway",
                route_table_ids=[rt.id for rt in self.private_route_tables],
                policy=pulumi.Output.all(account.partition, account.account_id, region).apply(
                    lambda v: documents.s3_gateway_endpoint_policy(
                        partition=v[0],
                        account_id=v[1],
                        region=v[2],
                        write_buckets=args.s3_write_buckets,
                        read_buckets=args.s3_read_buckets,
                    )
                ),
                tags=self._tags(f"{name}-s3"),
                opts=self._child,
            )
            self.s3_gateway_endpoint_id = endpoint.id
        if not args.interface_endpoints:
            return
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            description="HTTPS from inside the VPC to interface endpoints",
            vpc_id=self.vpc.id,
            ingress=[
                {
                    "description": "HTTPS from the VPC",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [str(self._plan.vpc)],
                }
            ],
            tags=self._tags(f"{name}-endpoints"),
            opts=self._child,
        )
        for service in args.interface_endpoints:
            self.interface_endpoints.append(
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}-endpoint",
                    vpc_id=self.vpc.id,
                    service_name=pulumi.Output.concat("com.amazonaws.", region, ".", service),
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    policy=account.account_id.apply(functools.partial(_interface_policy, service=service)),
                    tags=self._tags(f"{name}-{service}"),
                    opts=self._child,
                )
            )

    def _endpoint_addresses(self) -> pulumi.Output[list[str]]:
        """Each interface endpoint's network interfaces (AWS makes one per subnet it is given: the private subnets,
        a count known from config) read by id; their private addresses as /32 blocks, sorted and unique."""
        invoke = pulumi.InvokeOutputOptions(parent=self)
        addresses: list[pulumi.Output[str]] = []
        for endpoint in self.interface_endpoints:
            for slot in range(len(self.private_subnets)):
                interface_id = endpoint.network_interface_ids.apply(functools.partial(_slot, slot=slot))
                addresses.append(aws.ec2.get_network_interface_output(id=interface_id, opts=invoke).private_ip)
        return pulumi.Output.all(*addresses).apply(_host_blocks)

    def _create_flow_logs(self) -> None:
        name, args = self._name, self._args
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.flow_logs_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            tags=self._tags(f"{name}-flow-logs"),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            description="VPC flow logs delivery to CloudWatch Logs",
            assume_role_policy=documents.flow_logs_assume_role_policy(),
            tags=self._tags(f"{name}-flow-logs"),
            opts=self._child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=log_group.arn.apply(documents.flow_logs_delivery_policy),
            opts=self._child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type=args.flow_logs_traffic_type,
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=self._tags(f"{name}-flow-log"),
            opts=self._child,
        )
