"""Team pods reach the VPC's interface endpoints (STS, ECR, CloudWatch Logs, ... with private DNS) on TCP 443, and
nothing else in the VPC: the builder's exact rule, the planner's answer for the endpoints' network interfaces,
the network component's output, the shipped stacks' policies, and the reachability of a team pod evaluated cell
by cell over the rendered NetworkPolicies."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.infra.network import Network, NetworkArgs
from mlplatform.infra.tenancy import documents
from mlplatform.infra.tenancy.documents import TenantSpec
from mlplatform.mlp.mocks import PLANNED_S3_CIDRS, PlanContext, PlanMocks, PlannerError
from mlplatform.mlp.planner import Plan, last_exports, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.conftest import plan_component
from tests.k8s_schema import object_of
from tests.network_policy import Destination, Pod, egress_allowed

GET_ENI = "aws:ec2/getNetworkInterface:getNetworkInterface"
SUBNET = "aws:ec2/subnet:Subnet"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
TENANT = TenantSpec(
    name="research", groups=["ml-research"], gpus=4, cpu="64", memory="256Gi", storage="1Ti", labels={"team": "r"}
)


# --- the builder ----------------------------------------------------------------------------------------------


def test_the_policy_admits_each_endpoint_address_on_tcp_443_only() -> None:
    assert documents.interface_endpoint_policy(TENANT, ["10.30.12.101/32", "10.30.45.114/32"]) == {
        "metadata": {"name": "allow-interface-endpoints", "namespace": "team-research", "labels": {"team": "r"}},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "10.30.12.101/32"}}, {"ipBlock": {"cidr": "10.30.45.114/32"}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }
            ],
        },
    }


def test_no_addresses_admit_nothing() -> None:
    """An egress rule without `to` would admit every destination: with no addresses there is no rule at all."""
    spec = documents.interface_endpoint_egress([])
    assert spec == {"podSelector": {}, "policyTypes": ["Egress"], "egress": []}
    policy = {"metadata": {"namespace": "team-research"}, "spec": spec}
    pod = Pod("team-research")
    assert not egress_allowed([policy], pod, Destination(443, address="10.30.12.101"))
    assert not egress_allowed([policy], pod, Destination(443, address="52.216.8.1"))


@pytest.mark.parametrize("bad", ["10.30.12.101/33", "10.30.12.0/16", "fd00::1/128", "endpoint"])
def test_a_malformed_block_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        documents.interface_endpoint_egress([bad])


# --- the planner's answer for a network interface ---------------------------------------------------------------


def _mocks_with_endpoint(
    subnets: dict[str, str], endpoint: str = "net-sts-endpoint"
) -> tuple[PlanMocks, dict[str, str], list[str]]:
    """A mock runtime that has planned these subnets (name -> CIDR) and one interface endpoint across them; the
    subnets' ids by name and the endpoint's network interface ids."""
    mocks = PlanMocks()
    mocks.reset(PlanContext(region="eu-west-1"))
    ids: dict[str, str] = {}
    for i, (name, cidr) in enumerate(subnets.items()):
        sid, _ = mocks.new_resource(
            MockResourceArgs(
                SUBNET, name, {"vpcId": "vpc-0a1b", "cidrBlock": cidr, "availabilityZone": f"eu-west-1{'abc'[i]}"}
            )
        )
        ids[name] = str(sid)
    _, state = mocks.new_resource(
        MockResourceArgs(ENDPOINT, endpoint, {"vpcEndpointType": "Interface", "subnetIds": list(ids.values())})
    )
    return mocks, ids, list(state["networkInterfaceIds"])


def _answer(mocks: PlanMocks, eni: str) -> dict[str, Any]:
    answer, _ = mocks.call(MockCallArgs(GET_ENI, {"id": eni}, ""))
    return answer


def test_each_endpoint_interface_gets_an_address_inside_its_own_subnet() -> None:
    subnets = {"net-private-az1": "10.30.0.0/19", "net-private-az2": "10.30.32.0/19"}
    mocks, ids, enis = _mocks_with_endpoint(subnets)
    assert len(enis) == 2 and all(e.startswith("eni-") for e in enis)
    for name, eni in zip(subnets, enis, strict=True):
        answer = _answer(mocks, eni)
        block = ipaddress.ip_network(subnets[name])
        address = ipaddress.ip_address(answer["privateIp"])
        # AWS keeps the first four addresses of a subnet and its last.
        assert block.network_address + 4 <= address < block.broadcast_address
        assert answer["privateIps"] == [answer["privateIp"]]
        assert (answer["id"], answer["subnetId"], answer["vpcId"]) == (eni, ids[name], "vpc-0a1b")
        assert answer["interfaceType"] == "vpc_endpoint"
        assert answer["availabilityZone"] == f"eu-west-1{'ab'[list(subnets).index(name)]}"
        # Deterministic: a fresh planner gives the same answer.
        again, _, again_enis = _mocks_with_endpoint(subnets)
        assert again_enis == enis and _answer(again, eni) == answer


def test_addresses_in_a_small_subnet_stay_clear_of_the_reserved_ones() -> None:
    addresses = set()
    for n in range(60):
        mocks, _, (eni,) = _mocks_with_endpoint({"net-private-az1": "10.30.0.16/28"}, endpoint=f"ep{n}-endpoint")
        addresses.add(ipaddress.ip_address(_answer(mocks, eni)["privateIp"]))
    first, last = ipaddress.ip_address("10.30.0.20"), ipaddress.ip_address("10.30.0.30")
    assert min(addresses) >= first and max(addresses) <= last
    assert len(addresses) > 5  # spread over the subnet, not one fixed address


def test_a_gateway_endpoint_has_no_network_interfaces() -> None:
    mocks = PlanMocks()
    mocks.reset(PlanContext(region="us-east-1"))
    _, state = mocks.new_resource(
        MockResourceArgs(ENDPOINT, "net-s3-endpoint", {"vpcEndpointType": "Gateway", "routeTableIds": ["rtb-1"]})
    )
    assert "networkInterfaceIds" not in state


def test_an_interface_the_plan_did_not_create_is_a_stand_in_and_filters_are_refused() -> None:
    mocks = PlanMocks()
    mocks.reset(PlanContext(region="us-east-1"))
    answer = _answer(mocks, "eni-0123456789abcdef0")
    assert ipaddress.ip_address(answer["privateIp"]) in ipaddress.ip_network("10.0.0.0/8")
    assert answer["interfaceType"] == "interface" and answer["id"] == "eni-0123456789abcdef0"
    with pytest.raises(PlannerError, match=r"looked up a network interface by filters; .* by id only"):
        mocks.call(MockCallArgs(GET_ENI, {"filters": [{"name": "vpc-id", "values": ["vpc-1"]}]}, ""))


# --- the network component ------------------------------------------------------------------------------------


def _network_plan(endpoints: tuple[str, ...]) -> tuple[Plan, list[str]]:
    def build() -> None:
        net = Network(
            "net",
            NetworkArgs(
                cidr="10.40.0.0/16", az_count=3, nat="single", cluster_name="mlp-test", interface_endpoints=endpoints
            ),
        )
        pulumi.export("cidrs", net.interface_endpoint_cidrs)

    plan = plan_component(build)
    return plan, list(last_exports().values["cidrs"])


def _private_subnets(plan: Plan) -> dict[str, ipaddress.IPv4Network]:
    return {r.name: ipaddress.IPv4Network(r.inputs["cidrBlock"]) for r in plan.of_type(SUBNET) if "-private-" in r.name}


def test_the_network_exports_one_address_per_endpoint_and_private_subnet() -> None:
    plan, cidrs = _network_plan(("sts", "logs"))
    assert len(cidrs) == 6 and all(c.endswith("/32") for c in cidrs)
    addresses = [ipaddress.IPv4Address(c.removesuffix("/32")) for c in cidrs]
    assert addresses == sorted(set(addresses))  # in address order, each once
    per_subnet = {name: sum(a in block for a in addresses) for name, block in _private_subnets(plan).items()}
    assert per_subnet == {"net-private-az1": 2, "net-private-az2": 2, "net-private-az3": 2}


def test_a_network_without_interface_endpoints_exports_none() -> None:
    _, cidrs = _network_plan(())
    assert cidrs == []


# --- the shipped stacks ---------------------------------------------------------------------------------------


def _team_policies(plan: Plan, team: str) -> list[dict[str, Any]]:
    return [object_of(r) for r in plan.of_type(NETWORK_POLICY) if r.name.startswith(f"tenants-{team}-")]


def _endpoint_blocks(plan: Plan, team: str) -> list[str] | None:
    found = [p for p in _team_policies(plan, team) if p["metadata"]["name"] == "allow-interface-endpoints"]
    if not found:
        return None
    ((rule,),) = [p["spec"]["egress"] for p in found]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    return [peer["ipBlock"]["cidr"] for peer in rule["to"]]


def _planned_interface_addresses(plan: Plan) -> set[str]:
    """Each planned interface endpoint's network interfaces, read by id as the program reads them (a fresh
    planner that has seen the planned subnets and endpoints answers the invoke; the address does not depend on
    the region)."""
    mocks = PlanMocks()
    mocks.reset(PlanContext(region="us-east-1"))
    for resource in [*plan.of_type(SUBNET), *plan.of_type(ENDPOINT)]:
        mocks.new_resource(MockResourceArgs(resource.type, resource.name, dict(resource.inputs)))
    enis = [e for r in plan.of_type(ENDPOINT) for e in r.outputs.get("networkInterfaceIds") or []]
    return {f"{_answer(mocks, e)['privateIp']}/32" for e in enis}


@pytest.mark.parametrize(("stack", "endpoints", "zones"), [("prod", 4, 3), ("staging", 3, 3)])
def test_team_policies_hold_exactly_the_endpoint_interfaces(
    plans: dict[str, Plan], stack: str, endpoints: int, zones: int
) -> None:
    plan = plans[stack]
    interface_endpoints = [r for r in plan.of_type(ENDPOINT) if r.inputs["vpcEndpointType"] == "Interface"]
    assert len(interface_endpoints) == endpoints
    expected = _planned_interface_addresses(plan)
    assert len(expected) == endpoints * zones
    for team in ("research", "applied"):
        blocks = _endpoint_blocks(plan, team)
        assert blocks is not None and len(blocks) == endpoints * zones
        assert set(blocks) == expected
        assert blocks == sorted(blocks, key=lambda b: ipaddress.IPv4Network(b).network_address)
        # one address per endpoint in each private subnet
        subnets = _private_subnets(plan)
        per_subnet = {
            name: sum(ipaddress.IPv4Network(b).network_address in block for b in blocks)
            for name, block in subnets.items()
        }
        assert per_subnet == dict.fromkeys(subnets, endpoints)


def test_dev_has_no_interface_endpoints_and_no_such_policy(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    assert [r for r in plan.of_type(ENDPOINT) if r.inputs["vpcEndpointType"] == "Interface"] == []
    assert _endpoint_blocks(plan, "research") is None
    assert {p["metadata"]["name"] for p in _team_policies(plan, "research")} == {
        "default-deny",
        "allow-same-namespace",
        "allow-dns",
        "allow-platform-services",
        "allow-aws-apis",
        "allow-s3",
        "allow-monitoring",
    }


def _adopting(stack_config: Callable[[str], dict[str, Any]], **extra: Any) -> dict[str, Any]:
    config = stack_config("prod")
    config["ml-platform:network"] = {
        "adopt": {
            "vpc_id": "vpc-0a3f5c9e2b7d41c86",
            "private_subnet_ids": ["subnet-0c1d2e3f4a5b6c7d8", "subnet-0d2e3f4a5b6c7d8e9"],
            **extra,
        }
    }
    return config


def test_an_adopted_vpc_admits_the_configured_endpoint_blocks(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = _adopting(stack_config, interface_endpoint_cidrs=["10.0.3.16/28", "10.0.1.5/32"])
    plan = plan_stack(dataclasses.replace(load_stack(project, "prod"), config=config))
    assert plan.of_type(ENDPOINT) == []
    assert _endpoint_blocks(plan, "research") == ["10.0.3.16/28", "10.0.1.5/32"]
    bare = plan_stack(dataclasses.replace(load_stack(project, "prod"), config=_adopting(stack_config)))
    assert _endpoint_blocks(bare, "research") is None


def test_an_adopted_endpoint_block_wider_than_a_24_is_refused(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = _adopting(stack_config, interface_endpoint_cidrs=["10.0.1.5/32", "10.0.0.0/16"])
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.prod.yaml")
    assert [(i.key_path(), i.message) for i in info.value.issues] == [
        (
            "network.adopt.interface_endpoint_cidrs[1]",
            "10.0.0.0/16 is wider than /24; team pods may reach it on 443, so give the endpoints' addresses (/32 "
            "each) or a subnet that holds only endpoints",
        )
    ]


# --- reachability: a team pod, evaluated over the rendered policies ---------------------------------------------


def _team_pod(plan: Plan, team: str) -> Pod:
    namespace = object_of(plan.get(f"tenants-{team}-namespace"))
    return Pod(namespace["metadata"]["name"], {"app": "trainer"}, namespace["metadata"]["labels"])


def _platform_pod(namespace: str, **labels: str) -> Pod:
    return Pod(namespace, labels)


def _first_free_address(block: ipaddress.IPv4Network, taken: set[str]) -> str:
    return next(str(a) for a in list(block.hosts())[4:] if f"{a}/32" not in taken)


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_a_team_pod_reaches_the_endpoints_on_443_and_nothing_else_in_the_vpc(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    policies = _team_policies(plan, "research")
    pod = _team_pod(plan, "research")
    blocks = _endpoint_blocks(plan, "research")
    assert blocks
    endpoints = [b.removesuffix("/32") for b in blocks]
    subnet = next(iter(_private_subnets(plan).values()))
    vpc = ipaddress.IPv4Network(plan.get("network-vpc").inputs["cidrBlock"])
    public_subnet = next(
        ipaddress.IPv4Network(r.inputs["cidrBlock"]) for r in plan.of_type(SUBNET) if "-public-" in r.name
    )

    def allowed(port: int, protocol: str = "TCP", address: str | None = None, to: Pod | None = None) -> bool:
        return egress_allowed(policies, pod, Destination(port, protocol, address, to))

    for address in endpoints:
        assert ipaddress.IPv4Address(address) in vpc
        assert allowed(443, address=address)
        assert not allowed(80, address=address)
        assert not allowed(443, "UDP", address=address)
    # the rest of the VPC: a private subnet's next free address (a node, a load balancer, RDS), a public subnet
    assert not allowed(443, address=_first_free_address(subnet, set(blocks)))
    assert not allowed(443, address=str(public_subnet.network_address + 10))
    assert not allowed(443, address="172.16.5.5") and not allowed(443, address="192.168.1.1")
    # S3 through the gateway endpoint (the region's prefix list: the planner's stand-ins) on 443 only; no other
    # public address (internet egress is off by default); the Pod Identity agent on 80, not IMDS
    s3 = str(ipaddress.IPv4Network(PLANNED_S3_CIDRS[0]).network_address + 7)
    assert allowed(443, address=s3) and not allowed(80, address=s3)
    assert not allowed(443, address="52.216.8.1") and not allowed(443, address="140.82.112.3")
    assert allowed(80, address="169.254.170.23") and not allowed(80, address="169.254.169.254")
    # cluster DNS, the platform's services on their ports, the team's own pods; not another team
    assert allowed(53, "UDP", to=_platform_pod("kube-system", **{"k8s-app": "kube-dns"}))
    assert allowed(5000, to=_platform_pod("mlflow", app="mlflow"))
    assert not allowed(443, to=_platform_pod("mlflow", app="mlflow"))
    assert allowed(9999, to=Pod("team-research", {"app": "other"}))
    assert not allowed(8080, to=Pod("team-applied", {"app": "server"}))
    # Without the new policy the endpoints were unreachable (the SDK calls timed out): the fix is what admits them.
    without = [p for p in policies if p["metadata"]["name"] != "allow-interface-endpoints"]
    assert not any(egress_allowed(without, pod, Destination(443, address=a)) for a in endpoints)


def test_in_dev_a_team_pod_reaches_s3_and_no_other_public_address(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    policies = _team_policies(plan, "research")
    pod = _team_pod(plan, "research")
    subnet = next(iter(_private_subnets(plan).values()))
    assert not egress_allowed(policies, pod, Destination(443, address=str(subnet.network_address + 20)))
    for block in PLANNED_S3_CIDRS:
        assert egress_allowed(policies, pod, Destination(443, address=str(ipaddress.IPv4Network(block)[9])))
    assert not egress_allowed(policies, pod, Destination(443, address="52.94.0.10"))
    # the S3 policy carries the cloud layer's prefix-list blocks, in address order
    spec = next(p for p in policies if p["metadata"]["name"] == "allow-s3")["spec"]
    assert [t["ipBlock"]["cidr"] for t in spec["egress"][0]["to"]] == sorted(
        PLANNED_S3_CIDRS, key=ipaddress.IPv4Network
    )


def test_internet_egress_opens_the_configured_blocks_on_443_only(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config("dev")
    config["ml-platform:tenants"]["research"]["internet_egress"] = ["198.51.100.0/24"]
    plan = plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))
    policies = _team_policies(plan, "research")
    pod = _team_pod(plan, "research")
    assert egress_allowed(policies, pod, Destination(443, address="198.51.100.20"))
    assert not egress_allowed(policies, pod, Destination(80, address="198.51.100.20"))
    assert not egress_allowed(policies, pod, Destination(443, address="198.51.101.20"))
    # 0.0.0.0/0 (dev only) is the internet, never the VPC or other private ranges
    config["ml-platform:tenants"]["research"]["internet_egress"] = ["0.0.0.0/0"]
    wide = plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))
    policies = _team_policies(wide, "research")
    assert egress_allowed(policies, pod, Destination(443, address="52.94.0.10"))
    assert not egress_allowed(policies, pod, Destination(443, address="10.0.99.9"))


@pytest.mark.parametrize(
    ("stack", "blocks", "message"),
    [
        ("prod", ["0.0.0.0/0"], "0.0.0.0/0 is refused in prod"),
        ("dev", ["10.1.0.0/16"], "10.1.0.0/16 is not a public block"),
        ("dev", ["169.254.169.254/32"], "is not a public block"),
    ],
)
def test_internet_egress_refuses_private_blocks_and_the_whole_internet_in_prod(
    stack_config: Callable[[str], dict[str, Any]], stack: str, blocks: list[str], message: str
) -> None:
    config = stack_config(stack)
    config["ml-platform:tenants"]["research"]["internet_egress"] = blocks
    with pytest.raises(ConfigError) as info:
        validate_config(config, f"stacks/Pulumi.{stack}.yaml")
    issues = [(i.key_path(), i.message) for i in info.value.issues]
    assert any(path == "tenants.research.internet_egress[0]" and message in m for path, m in issues), issues


# --- the evaluator itself can say no, and yes, for the right reasons -------------------------------------------------


def _np(spec: dict[str, Any], namespace: str = "a") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace}, "spec": spec}


def test_evaluator_semantics() -> None:
    pod = Pod("a", {"role": "job"})
    to_443 = Destination(443, address="10.1.2.3")
    # no policy, or only another namespace's, or only an Ingress policy: unrestricted
    assert egress_allowed([], pod, to_443)
    assert egress_allowed([_np({"podSelector": {}, "policyTypes": ["Egress"]}, "b")], pod, to_443)
    assert egress_allowed([_np({"podSelector": {}, "ingress": []})], pod, to_443)
    # a policy whose selector does not select the pod leaves it unrestricted
    other = {"podSelector": {"matchLabels": {"role": "web"}}, "policyTypes": ["Egress"]}
    assert egress_allowed([_np(other)], pod, to_443)
    # policyTypes unset with an egress section: egress is isolated
    assert not egress_allowed([_np({"podSelector": {}, "egress": []})], pod, to_443)
    # a rule without `to` admits every destination; `except` carves out; endPort makes a range
    assert egress_allowed([_np({"podSelector": {}, "egress": [{"ports": [{"port": 443}]}]})], pod, to_443)
    carve = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
    assert not egress_allowed([_np({"podSelector": {}, "egress": [{"to": [carve]}]})], pod, to_443)
    ranged = {"podSelector": {}, "egress": [{"ports": [{"protocol": "TCP", "port": 400, "endPort": 450}]}]}
    assert egress_allowed([_np(ranged)], pod, to_443)
    assert not egress_allowed([_np(ranged)], pod, Destination(451, address="10.1.2.3"))
    # selectors: matchExpressions, and a podSelector alone means the policy's own namespace
    expr = {"podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["job"]}]}}
    assert not egress_allowed([_np({**expr, "policyTypes": ["Egress"]})], pod, to_443)
    same_ns = {"podSelector": {}, "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]}
    assert egress_allowed([_np(same_ns)], pod, Destination(5432, pod=Pod("a", {"app": "db"})))
    assert not egress_allowed([_np(same_ns)], pod, Destination(5432, pod=Pod("b", {"app": "db"})))
