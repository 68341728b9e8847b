"""The network component under the mock runtime: security- and cost-relevant inputs."""

from __future__ import annotations

import json

import pytest

from mlplatform.infra.network import Network, NetworkArgs
from tests.conftest import plan_component


def _network(**overrides: object) -> Network:
    args: dict[str, object] = {
        "cidr": "10.0.0.0/16",
        "az_count": 3,
        "nat": "per_az",
        "cluster_name": "mlp-test",
        "flow_logs_retention_days": 90,
        "logs_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/test",
        "tags": {"team": "ml"},
    }
    args.update(overrides)
    return Network("net", NetworkArgs(**args))  # type: ignore[arg-type]


@pytest.mark.parametrize(("nat", "expected"), [("per_az", 3), ("single", 1)])
def test_nat_gateways_per_profile(nat: str, expected: int) -> None:
    plan = plan_component(lambda: _network(nat=nat))
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == expected
    private_routes = [
        r.inputs["routes"][0]["natGatewayId"]
        for r in plan.of_type("aws:ec2/routeTable:RouteTable")
        if r.name.startswith("net-private-")
    ]
    assert len(private_routes) == 3  # every private subnet has its own route table
    assert len(set(private_routes)) == expected  # ...pointing at its own NAT, or at the single one
    public_subnets = {r.inputs["subnetId"] for r in nats}
    assert len(public_subnets) == expected


def test_subnets_span_distinct_azs_and_nothing_gets_a_public_ip() -> None:
    plan = plan_component(_network)
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 6
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    private = [s for s in subnets if "-private-" in s.name]
    assert len({s.inputs["availabilityZone"] for s in private}) == 3
    for s in private:
        assert s.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert s.inputs["tags"]["karpenter.sh/discovery"] == "mlp-test"
        assert s.inputs["tags"]["team"] == "ml"
    for s in subnets:
        if "-public-" in s.name:
            assert s.inputs["tags"]["kubernetes.io/role/elb"] == "1"
            assert "karpenter.sh/discovery" not in s.inputs["tags"]


def test_default_security_group_is_emptied() -> None:
    plan = plan_component(_network)
    (default_sg,) = plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default_sg.inputs.get("ingress") and not default_sg.inputs.get("egress")


def test_interface_endpoints_accept_only_https_from_the_vpc() -> None:
    plan = plan_component(_network)
    (sg,) = plan.of_type("aws:ec2/securityGroup:SecurityGroup")
    (rule,) = sg.inputs["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == (
        "tcp",
        443,
        443,
        ["10.0.0.0/16"],
    )
    endpoints = {e.inputs["serviceName"]: e.inputs for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert set(endpoints) == {f"com.amazonaws.us-east-1.{s}" for s in ("s3", "ecr.api", "ecr.dkr", "sts")}
    assert endpoints["com.amazonaws.us-east-1.s3"]["vpcEndpointType"] == "Gateway"
    assert len(endpoints["com.amazonaws.us-east-1.s3"]["routeTableIds"]) == 3
    for name in ("ecr.api", "ecr.dkr", "sts"):
        e = endpoints[f"com.amazonaws.us-east-1.{name}"]
        assert e["privateDnsEnabled"] is True and len(e["subnetIds"]) == 3


def test_no_interface_endpoints_means_no_endpoint_security_group() -> None:
    plan = plan_component(lambda: _network(interface_endpoints=()))
    assert not plan.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert len(plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")) == 1


def test_flow_logs_are_encrypted_retained_and_delivered_with_a_scoped_role() -> None:
    plan = plan_component(_network)
    (flow_log,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    (group,) = plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    (policy,) = plan.of_type("aws:iam/rolePolicy:RolePolicy")
    statement = json.loads(policy.inputs["policy"])["Statement"][0]
    assert "*" not in statement["Resource"]
    assert all(r.startswith("arn:aws:logs:us-east-1:123456789012:log-group:") for r in statement["Resource"])


def test_flow_logs_can_be_turned_off() -> None:
    plan = plan_component(lambda: _network(flow_logs=False))
    assert not plan.of_type("aws:ec2/flowLog:FlowLog")
