"""`mlp preflight`: the stack's worst-case vCPUs per EC2 quota (hand arithmetic for prod and dev), quotas read
from Service Quotas, instance type offerings and subnets from a moto server, capacity reservations and access
errors.

moto serves EC2 (availability zones, instance type offerings from its bundled us-east-1 data, VPCs and subnets)
and STS. moto implements neither Service Quotas for EC2 nor DescribeCapacityReservations: those are answered by
botocore's Stubber (and, in the end-to-end run where moto serves the rest of EC2, by a hook on that one
operation). moto's us-east-1 offerings used below: g5/g6/g6e/t3.medium/m7i in us-east-1a-d, p5.48xlarge in every
AZ, p5en.48xlarge in us-east-1a and us-east-1c, p4de.24xlarge in us-east-1b and us-east-1c, p6-b200.48xlarge in
us-east-1c only, p5e.48xlarge nowhere.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from rich.console import Console

from mlplatform.infra.config import AdoptNetworkConfig, GpuPoolConfig, PlatformConfig
from mlplatform.mlp.aws import AwsContext
from mlplatform.mlp.errors import AccountError
from mlplatform.mlp.preflight import (
    IPS_PER_NODE,
    PreflightReport,
    StackNetwork,
    check_ips,
    check_offerings,
    check_quotas,
    check_reservations,
    max_nodes,
    quota_class,
    render_table,
    resolve_network,
    run_preflight,
    to_json,
    vcpu_demand,
    vcpus_of,
    worst_case_nodes,
)
from mlplatform.mlp.stackfile import Project, load_stack
from tests.aws_server import answer_operation

REGION = "us-east-1"
RESERVATION = "cr-0a1b2c3d4e5f60718"  # the prod stack's reservation id
MOTO_ACCOUNT = "123456789012"
MOTO_USER_ARN = "arn:aws:iam::123456789012:user/moto"  # moto's caller (its STS says arn:aws:sts::...:user/moto)


@pytest.fixture(scope="module")
def configs(project: Project) -> dict[str, PlatformConfig]:
    return {stack: load_stack(project, stack).validate() for stack in ("dev", "prod")}


def _deployer(cfg: PlatformConfig, *arns: str) -> PlatformConfig:
    return cfg.model_copy(update={"cluster": cfg.cluster.model_copy(update={"deployers": arns})})


def _stub_simulation(iam: Any, source_arn: str, decision: str, role: str | None = None) -> Stubber:
    """moto implements neither GetRole's path lookup for callers nor SimulatePrincipalPolicy: IAM's simulator is
    answered by Stubber in its documented response shape."""
    stub = Stubber(iam)
    if role is not None:
        stub.add_response(
            "get_role",
            {
                "Role": {
                    "Path": "/platform/",
                    "RoleName": role,
                    "RoleId": "AROAEXAMPLEEXAMPLE01",
                    "Arn": source_arn,
                    "CreateDate": "2026-01-01T00:00:00Z",
                }
            },
            {"RoleName": role},
        )
    project = "arn:aws:codebuild:us-east-1:{}:project/mlp-prod-cluster-layer".format(source_arn.split(":")[4])
    stub.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                {"EvalActionName": action, "EvalResourceName": project, "EvalDecision": decision}
                for action in ("codebuild:StartBuild", "codebuild:BatchGetBuilds")
            ],
            "IsTruncated": False,
        },
        {
            "PolicySourceArn": source_arn,
            "ActionNames": ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
            "ResourceArns": [project],
        },
    )
    stub.activate()
    return stub


def _with_pools(cfg: PlatformConfig, **pools: GpuPoolConfig) -> PlatformConfig:
    return cfg.model_copy(update={"gpu_pools": pools})


def _adopted(cfg: PlatformConfig, vpc_id: str, subnet_ids: list[str]) -> PlatformConfig:
    adopt = AdoptNetworkConfig(vpc_id=vpc_id, private_subnet_ids=tuple(subnet_ids))
    return cfg.model_copy(update={"network": cfg.network.model_copy(update={"adopt": adopt})})


def _seed_subnets(ec2: Any, cidrs: dict[str, str]) -> tuple[str, list[str]]:
    """A VPC with one subnet per (cidr -> AZ) in moto; returns the VPC id and the subnet ids."""
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    ids = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in cidrs.items()
    ]
    return vpc, ids


def _quota(code: str, value: float) -> dict[str, Any]:
    return {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "QuotaName": code, "Value": value}}


def _stub_quotas(client: Any, answers: list[tuple[str, float | str]]) -> Stubber:
    """Answer GetServiceQuota in this order: a number, or an error code (NoSuchResourceException falls back to
    GetAWSDefaultServiceQuota, answered by the next entry with the same code)."""
    stubber = Stubber(client)
    previous: str | None = None
    for code, value in answers:
        op = "get_aws_default_service_quota" if previous == code else "get_service_quota"
        params = {"ServiceCode": "ec2", "QuotaCode": code}
        if isinstance(value, str):
            stubber.add_client_error(op, service_error_code=value, service_message="stubbed", expected_params=params)
        else:
            stubber.add_response(op, _quota(code, value), params)
        previous = code if value == "NoSuchResourceException" else None
    stubber.activate()
    return stubber


def _reservation(**over: Any) -> dict[str, Any]:
    base = {
        "CapacityReservationId": RESERVATION,
        "InstanceType": "p5.48xlarge",
        "AvailabilityZone": "us-east-1a",
        "TotalInstanceCount": 2,
        "AvailableInstanceCount": 2,
        "State": "active",
        "ReservationType": "default",
    }
    return {**base, **over}


@pytest.fixture
def sq() -> Any:
    return AwsContext(REGION).client("service-quotas")


@pytest.fixture
def ec2_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Stubber]]:
    """A stubbed EC2 client (no server): for DescribeCapacityReservations, which moto lacks."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = AwsContext(REGION).client("ec2")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _answer_reservations(ec2: Any, reservations: list[dict[str, Any]], calls: list[list[str]]) -> None:
    """Let moto serve EC2 but answer DescribeCapacityReservations (which moto lacks) from `reservations`."""

    def answer(params: dict[str, Any]) -> dict[str, Any]:
        calls.append(list(params.get("CapacityReservationIds", [])))
        return {"CapacityReservations": [r for r in reservations if r["CapacityReservationId"] in calls[-1]]}

    answer_operation(ec2, "DescribeCapacityReservations", answer)


def _answer_placement_groups(ec2: Any, groups: dict[str, tuple[str, str]]) -> None:
    """Answer DescribePlacementGroups (which moto lacks) from `groups`: name -> (strategy, state)."""

    def answer(params: dict[str, Any]) -> dict[str, Any]:
        names = [n for n in params.get("GroupNames", []) if n in groups]
        return {"PlacementGroups": [{"GroupName": n, "Strategy": groups[n][0], "State": groups[n][1]} for n in names]}

    answer_operation(ec2, "DescribePlacementGroups", answer)


# --- vCPU demand: pure arithmetic ------------------------------------------------------------------------------


def test_prod_vcpu_demand_is_the_hand_calculation(configs: dict[str, PlatformConfig]) -> None:
    # inference (karpenter, on-demand, max_gpus 16): the worst mix of g6e.xlarge (4 vCPUs/1 GPU), g6e.2xlarge
    #   (8/1), g6e.12xlarge (48/4) and g6e.48xlarge (192/8) is 16 // 8 = 2 x g6e.48xlarge = 384 vCPUs of
    #   on-demand G (16 x g6e.2xlarge would be 128, 4 x g6e.12xlarge 192).
    # training (node group, p5.48xlarge: 8 GPUs, 192 vCPUs, max_gpus 16): 16 // 8 = 2 nodes x 192 = 384 on-demand P.
    # Standard on-demand: CPU pool max_vcpus 128 (on-demand only) + system 6 x m7i.xlarge (4 vCPUs) = 24 -> 152.
    demand = vcpu_demand(configs["prod"])
    assert {code: vcpus for code, (vcpus, _) in demand.items()} == {
        "L-1216C47A": 128 + 6 * 4,
        "L-DB2E81BA": 2 * 192,
        "L-417A185B": 2 * 192,
    }
    assert demand["L-417A185B"][1] == (
        "pool `training`: 384 = 2 x p5.48xlarge with 8 GPUs and 192 vCPUs each, at max_gpus 16"
    )
    assert demand["L-DB2E81BA"][1] == (
        "pool `inference`: 384 = 2 x g6e.48xlarge with 8 GPUs and 192 vCPUs each, the worst case if Karpenter "
        "picks this type within max_gpus 16"
    )
    assert demand["L-1216C47A"][1] == (
        "the CPU pool: 128 = its NodePool cpu limit max_vcpus 128; system nodes: 24 = max_size 6 x m7i.xlarge "
        "with 4 vCPUs"
    )


def test_dev_vcpu_demand_counts_spot_and_on_demand_each(configs: dict[str, PlatformConfig]) -> None:
    # shared (spot and on-demand, max_gpus 4, 1-GPU types of 4 or 8 vCPUs): 4 x 8 = 32 in both G buckets.
    # CPU pool (spot and on-demand): 16 in both Standard buckets; system 4 x t3.medium (2 vCPUs) on-demand only.
    demand = vcpu_demand(configs["dev"])
    assert {code: vcpus for code, (vcpus, _) in demand.items()} == {
        "L-1216C47A": 16 + 4 * 2,
        "L-34B43A08": 16,
        "L-DB2E81BA": 4 * 8,
        "L-3819A6DF": 4 * 8,
    }


def test_a_family_pool_worst_case_is_not_its_largest_type(configs: dict[str, PlatformConfig]) -> None:
    # g6e.48xlarge has 24 vCPUs per GPU, g6e.16xlarge 64: sixteen 1-GPU g6e.16xlarge are the worst case.
    cfg = _with_pools(configs["prod"], wide=GpuPoolConfig(instance_families=("g6e",), max_gpus=16))
    assert vcpu_demand(cfg)["L-DB2E81BA"] == (
        16 * 64,
        "pool `wide`: 1024 = 16 x g6e.16xlarge with 1 GPU and 64 vCPUs each, the worst case if Karpenter picks "
        "this type within max_gpus 16",
    )
    from mlplatform.infra.catalog.gpu import instances_of_family

    # A limit that is not a multiple of the big node mixes sizes: 9 GPUs = 9 x g6e.16xlarge (576).
    assert worst_case_nodes(instances_of_family("g6e"), 9) == (576, {"g6e.16xlarge": 9})
    # Only 8-GPU types and a 4-GPU limit: Karpenter launches nothing, so nothing counts.
    assert worst_case_nodes(instances_of_family("p5en"), 4) == (0, {})


@pytest.mark.parametrize(
    ("instance_type", "vcpus"),
    [
        ("t3.medium", 2),
        ("m7i.large", 2),
        ("m7i.xlarge", 4),
        ("m7i.12xlarge", 48),
        ("m7i.metal-24xl", 96),
        ("p5.48xlarge", 192),
    ],
)
def test_vcpus_come_from_the_catalog_or_the_size_name(instance_type: str, vcpus: int) -> None:
    assert vcpus_of(instance_type) == vcpus


def test_vcpus_of_a_metal_size_are_unknown() -> None:
    assert vcpus_of("m7i.metal") is None


@pytest.mark.parametrize(
    ("family", "cls"),
    [("m7i", "standard"), ("im4gn", "standard"), ("g6e", "g"), ("gr6", "g"), ("p6-b200", "p"), ("x2idn", None)],
)
def test_families_map_to_their_vcpu_quota_class(family: str, cls: str | None) -> None:
    assert quota_class(family) == cls


def test_max_nodes_of_prod(configs: dict[str, PlatformConfig]) -> None:
    # inference 16 GPUs on 1-GPU g6e.xlarge = 16; training 16 / 8 = 2; CPU pool 128 / 2 = 64; system max_size 6.
    assert max_nodes(configs["prod"]) == (88, "pool `inference` 16, pool `training` 2, the CPU pool 64, system nodes 6")


# --- quotas (Stubber: moto has no EC2 quotas) -------------------------------------------------------------------


def test_a_quota_below_the_demand_is_an_error_naming_the_code_and_numbers(
    configs: dict[str, PlatformConfig], sq: Any
) -> None:
    stubber = _stub_quotas(sq, [("L-1216C47A", 512), ("L-DB2E81BA", 384), ("L-417A185B", 64)])
    findings = {f.subject.split()[0]: f for f in check_quotas(configs["prod"], sq)}
    stubber.assert_no_pending_responses()
    assert {code: f.severity for code, f in findings.items()} == {
        "L-1216C47A": "ok",
        "L-DB2E81BA": "ok",
        "L-417A185B": "error",
    }
    p = findings["L-417A185B"]
    assert p.subject == "L-417A185B Running On-Demand P instances"
    assert p.message == (
        "GPU pods will stay Pending because the account may run 64 vCPUs of on-demand P instances and pool "
        "`training` needs 384 (2 x p5.48xlarge with 8 GPUs and 192 vCPUs each, at max_gpus 16)"
    )
    assert p.fix == (
        "request an increase of quota L-417A185B (Running On-Demand P instances) to at least 384 in Service Quotas "
        "(aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-417A185B "
        "--desired-value 384 --region us-east-1), or lower gpu_pools.training.max_gpus"
    )
    # Exactly enough is enough.
    assert findings["L-DB2E81BA"].message.startswith("the account may run 384 vCPUs of on-demand G and VT instances")


def test_a_shared_quota_names_every_part_of_the_demand(configs: dict[str, PlatformConfig], sq: Any) -> None:
    stubber = _stub_quotas(sq, [("L-1216C47A", 32), ("L-DB2E81BA", 384), ("L-417A185B", 384)])
    standard = check_quotas(configs["prod"], sq)[0]
    stubber.assert_no_pending_responses()
    assert (standard.severity, standard.subject.split()[0]) == ("error", "L-1216C47A")
    assert standard.message == (
        "system nodes will fail to launch and CPU pods will stay Pending because the account may run 32 vCPUs of "
        "on-demand Standard instances and the stack needs 152 (the CPU pool 128: its NodePool cpu limit max_vcpus "
        "128; system nodes 24: max_size 6 x m7i.xlarge with 4 vCPUs)"
    )
    assert standard.fix.endswith("or lower cpu_pool.max_vcpus, cluster.system_node_group.max_size")


def test_a_quota_without_an_applied_value_falls_back_to_the_aws_default(
    configs: dict[str, PlatformConfig], sq: Any
) -> None:
    answers: list[tuple[str, float | str]] = [
        ("L-1216C47A", 100),
        ("L-34B43A08", 100),
        ("L-DB2E81BA", "NoSuchResourceException"),
        ("L-DB2E81BA", 16),  # the default, from GetAWSDefaultServiceQuota
        ("L-3819A6DF", 32),
    ]
    stubber = _stub_quotas(sq, answers)
    findings = check_quotas(configs["dev"], sq)
    stubber.assert_no_pending_responses()
    assert [(f.subject.split()[0], f.severity) for f in findings] == [
        ("L-1216C47A", "ok"),
        ("L-34B43A08", "ok"),
        ("L-DB2E81BA", "error"),
        ("L-3819A6DF", "ok"),
    ]
    assert "the account may run 16 vCPUs of on-demand G and VT instances and pool `shared` needs 32" in (
        findings[2].message
    )


def test_access_denied_on_service_quotas_is_a_warning_that_keeps_the_numbers(
    configs: dict[str, PlatformConfig], sq: Any
) -> None:
    stubber = _stub_quotas(sq, [("L-1216C47A", "AccessDeniedException")])
    findings = check_quotas(configs["prod"], sq)
    stubber.assert_no_pending_responses()
    assert len(findings) == 1
    denied = findings[0]
    assert (denied.check, denied.severity, denied.subject) == ("quotas", "warning", "service-quotas")
    assert denied.message == (
        "the EC2 vCPU quotas were not checked: permission denied for GetServiceQuota (AccessDeniedException); "
        "the caller needs that action allowed; the stack needs L-1216C47A >= 152, L-DB2E81BA >= 384, "
        "L-417A185B >= 384"
    )
    assert "servicequotas:GetServiceQuota" in denied.fix


def test_another_service_quotas_failure_is_an_account_error(configs: dict[str, PlatformConfig], sq: Any) -> None:
    _stub_quotas(sq, [("L-1216C47A", "ServiceException")])
    with pytest.raises(AccountError, match=r"^reading quota L-1216C47A: GetServiceQuota failed \(ServiceException"):
        check_quotas(configs["prod"], sq)


def test_capacity_no_checked_quota_covers_is_a_warning(configs: dict[str, PlatformConfig], sq: Any) -> None:
    prod = configs["prod"]
    cfg = prod.model_copy(
        update={
            "cpu_pool": prod.cpu_pool.model_copy(update={"instance_families": ("m7i", "x2idn")}),
            "cluster": prod.cluster.model_copy(
                update={
                    "system_node_group": prod.cluster.system_node_group.model_copy(
                        update={"instance_types": ("m7i.metal",)}
                    )
                }
            ),
        }
    )
    # Standard on-demand is then the CPU pool alone (the metal system nodes are not counted).
    assert vcpu_demand(cfg)["L-1216C47A"][0] == 128
    stubber = _stub_quotas(sq, [("L-1216C47A", 512), ("L-DB2E81BA", 512), ("L-417A185B", 512)])
    warnings = [(f.subject, f.message) for f in check_quotas(cfg, sq) if f.severity == "warning"]
    stubber.assert_no_pending_responses()
    assert warnings == [
        (
            "cpu_pool",
            "the CPU pool may run 128 vCPUs of x2idn (its NodePool cpu limit max_vcpus 128); preflight checks no quota "
            "for x2idn",
        ),
        (
            "cluster.system_node_group",
            "the vCPUs of system node type m7i.metal are not in its name; its quota is not checked",
        ),
    ]


# --- offerings and subnets (moto) -----------------------------------------------------------------------------


def test_created_network_uses_the_first_az_count_zones(moto_endpoint: str, configs: dict[str, PlatformConfig]) -> None:
    ec2 = AwsContext(REGION).client("ec2")
    assert resolve_network(configs["dev"], ec2) == StackNetwork(zones=("us-east-1a", "us-east-1b"), adopted=False)
    assert resolve_network(configs["prod"], ec2).zones == ("us-east-1a", "us-east-1b", "us-east-1c")


def test_offerings_missing_in_the_stack_zones_are_errors_or_warnings(
    moto_endpoint: str, configs: dict[str, PlatformConfig]
) -> None:
    cfg = _with_pools(
        configs["dev"],  # created network over us-east-1a and us-east-1b
        frontier=GpuPoolConfig(instance_types=("p5en.48xlarge", "p6-b200.48xlarge"), max_gpus=16),
        h200=GpuPoolConfig(provisioner="node_group", instance_types=("p5e.48xlarge",), max_gpus=8),
        hopper=GpuPoolConfig(instance_families=("p4de",), max_gpus=8),
        l40s=GpuPoolConfig(instance_families=("g6e",), max_gpus=8),
    )
    ec2 = AwsContext(REGION).client("ec2")
    findings = check_offerings(cfg, ec2, resolve_network(cfg, ec2))
    got = {(f.subject, f.severity): f.message for f in findings}
    assert set(got) == {
        ("gpu_pools.frontier: p5en.48xlarge", "warning"),
        ("gpu_pools.frontier: p6-b200.48xlarge", "warning"),
        ("gpu_pools.h200", "error"),
        ("gpu_pools.hopper: family p4de", "warning"),
        ("gpu_pools.l40s", "ok"),
        ("cluster.system_node_group", "ok"),
    }
    assert got["gpu_pools.frontier: p5en.48xlarge", "warning"] == (
        "Karpenter will only launch p5en.48xlarge in us-east-1a; it is not offered in us-east-1b"
    )
    assert got["gpu_pools.frontier: p6-b200.48xlarge", "warning"] == (
        "Karpenter will never launch p6-b200.48xlarge: it is not offered in the stack's AZs "
        "(us-east-1a/us-east-1b); offered in us-east-1c"
    )
    assert got["gpu_pools.h200", "error"] == (
        "the node group of pool `h200` cannot launch nodes: none of its instance types is offered in the stack's "
        "AZs (us-east-1a/us-east-1b): p5e.48xlarge (not offered in any AZ of us-east-1)"
    )
    assert got["gpu_pools.hopper: family p4de", "warning"] == (
        "Karpenter will only launch p4de.24xlarge in us-east-1b (family p4de; the stack uses us-east-1a/us-east-1b)"
    )
    assert got["gpu_pools.l40s", "ok"] == (
        "all 8 instance types are offered in every one of the stack's AZs (us-east-1a/us-east-1b)"
    )


def test_adopted_subnets_set_the_zones_for_offerings(moto_endpoint: str, configs: dict[str, PlatformConfig]) -> None:
    ec2 = AwsContext(REGION).client("ec2")
    vpc, ids = _seed_subnets(ec2, {"10.50.0.0/24": "us-east-1c", "10.50.1.0/24": "us-east-1d"})
    cfg = _with_pools(
        _adopted(configs["dev"], vpc, ids),
        blackwell=GpuPoolConfig(provisioner="node_group", instance_types=("p6-b200.48xlarge",), max_gpus=8),
    )
    network = resolve_network(cfg, ec2)
    assert network.zones == ("us-east-1c", "us-east-1d")
    assert [(s.subnet_id, s.availability_zone, s.free_ips, s.vpc_id) for s in network.subnets] == [
        (ids[0], "us-east-1c", 251, vpc),
        (ids[1], "us-east-1d", 251, vpc),
    ]
    (blackwell,) = [f for f in check_offerings(cfg, ec2, network) if f.subject.startswith("gpu_pools.blackwell")]
    assert (blackwell.severity, blackwell.message) == (
        "warning",
        "the node group will only launch p6-b200.48xlarge in us-east-1c; it is not offered in us-east-1d",
    )


def test_adopted_subnets_that_do_not_exist_or_sit_in_another_vpc_are_errors(
    moto_endpoint: str, configs: dict[str, PlatformConfig]
) -> None:
    ec2 = AwsContext(REGION).client("ec2")
    _, ids = _seed_subnets(ec2, {"10.50.0.0/24": "us-east-1a"})
    other_vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    missing = "subnet-0123456789abcdef0"
    network = resolve_network(_adopted(configs["dev"], other_vpc, [ids[0], missing]), ec2)
    assert network.zones == ("us-east-1a",)
    assert [(f.severity, f.subject, f.message) for f in network.findings] == [
        (
            "error",
            f"network.adopt.private_subnet_ids: {ids[0]}",
            f"the cluster cannot use subnet {ids[0]}: it is in {network.subnets[0].vpc_id}, not in the adopted VPC "
            f"{other_vpc}",
        ),
        (
            "error",
            f"network.adopt.private_subnet_ids: {missing}",
            f"nodes cannot be placed: subnet {missing} does not exist in account/region us-east-1",
        ),
    ]


def test_subnets_from_a_terraform_state_are_passed_in_or_reported(
    moto_endpoint: str, configs: dict[str, PlatformConfig]
) -> None:
    ec2 = AwsContext(REGION).client("ec2")
    _, ids = _seed_subnets(ec2, {"10.50.0.0/24": "us-east-1b", "10.50.1.0/24": "us-east-1c"})
    adopt = AdoptNetworkConfig.model_validate({"terraform_state": {"path": "foundation.tfstate"}})
    cfg = configs["dev"].model_copy(update={"network": configs["dev"].network.model_copy(update={"adopt": adopt})})
    assert resolve_network(cfg, ec2, ids).zones == ("us-east-1b", "us-east-1c")
    unread = resolve_network(cfg, ec2)
    assert (unread.zones, unread.zones_known) == (
        ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"),
        False,
    )
    assert [(f.severity, f.subject) for f in unread.findings] == [("warning", "network.adopt.terraform_state")]
    assert check_ips(cfg, unread) == []


def test_access_denied_on_offerings_is_a_not_checked_warning(
    configs: dict[str, PlatformConfig], ec2_stub: tuple[Any, Stubber]
) -> None:
    client, stubber = ec2_stub
    stubber.add_client_error("describe_instance_type_offerings", "UnauthorizedOperation", "stubbed")
    findings = check_offerings(configs["dev"], client, StackNetwork(zones=("us-east-1a",), adopted=False))
    assert [(f.severity, f.subject, f.message) for f in findings] == [
        (
            "warning",
            "instance types",
            "instance type offerings were not checked: permission denied for DescribeInstanceTypeOfferings "
            "(UnauthorizedOperation); the caller needs that action allowed",
        )
    ]
    assert findings[0].fix.startswith("allow ec2:DescribeInstanceTypeOfferings")


# --- free IPs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "severity", "free"),
    [("/28", "error", 2 * 11), ("/24", "warning", 2 * 251), ("/22", "ok", 2 * 1019)],
)
def test_adopted_subnets_free_ips_against_the_nodes_at_full_scale(
    moto_endpoint: str, configs: dict[str, PlatformConfig], prefix: str, severity: str, free: int
) -> None:
    # dev at full scale: pool shared 4 (1-GPU nodes) + CPU pool 16 / 2 = 8 + system 4 = 16 nodes x 30 = 480 IPs.
    # /28: 11 free each -> 22 < 480; /24: 251 each -> 480 / 502 = 96% > 80%; /22: 1019 each -> 24%.
    ec2 = AwsContext(REGION).client("ec2")
    vpc, ids = _seed_subnets(ec2, {f"10.50.0.0{prefix}": "us-east-1a", f"10.50.4.0{prefix}": "us-east-1b"})
    cfg = _adopted(configs["dev"], vpc, ids)
    (finding,) = check_ips(cfg, resolve_network(cfg, ec2))
    assert (finding.check, finding.severity, finding.subject) == ("ips", severity, "network")
    need = (
        f"the stack may run 16 nodes (pool `shared` 4, the CPU pool 8, system nodes 4), about {16 * IPS_PER_NODE} "
        f"addresses at 30 per node (the VPC CNI gives every pod an address), and {free} are free in the adopted "
        f"private subnets ({ids[0]} in us-east-1a: {free // 2}, {ids[1]} in us-east-1b: {free // 2})"
    )
    prefix_text = {
        "error": "nodes and pods will fail to get addresses at full scale: ",
        "warning": "the subnets will be 96% full at full scale, leaving little room for load balancers, endpoints "
        "and other workloads: ",
        "ok": "",
    }[severity]
    assert finding.message == prefix_text + need


def test_created_network_free_ips_come_from_the_subnet_plan(configs: dict[str, PlatformConfig]) -> None:
    # prod: 10.30.0.0/16 over 3 AZs -> three /18 private subnets, 16384 - 5 = 16379 usable each = 49137;
    # 88 nodes x 30 = 2640, plus the training pool's EFA: 2 p5.48xlarge x 31 more interfaces = 62.
    (finding,) = check_ips(configs["prod"], StackNetwork(zones=(), adopted=False))
    assert finding.severity == "ok"
    assert finding.message.endswith(
        "about 2702 addresses: 2640 at 30 per node (the VPC CNI gives every pod an address) and 62 for EFA interfaces "
        "after each node's first (pool `training`: 62), and 49137 are usable in the planned private subnets "
        "(10.30.0.0/18, 10.30.64.0/18, 10.30.128.0/18; AWS reserves 5 addresses in each)"
    )
    big = configs["prod"].model_copy(
        update={"cpu_pool": configs["prod"].cpu_pool.model_copy(update={"max_vcpus": 100_000})}
    )
    (short,) = check_ips(big, StackNetwork(zones=(), adopted=False))
    assert short.severity == "error"


# --- capacity reservations (Stubber: moto has no DescribeCapacityReservations) ---------------------------------

PROD_ZONES = StackNetwork(zones=("us-east-1a", "us-east-1b", "us-east-1c"), adopted=False)


def _as_node_group(cfg: PlatformConfig) -> PlatformConfig:
    """Prod with its training pool on the other mechanism: a managed node group on the same ODCR, in us-east-1a."""
    pool = cfg.gpu_pools["training"]
    group = pool.model_copy(update={"provisioner": "node_group", "ami_version": None})
    return _with_pools(cfg, **{**cfg.gpu_pools, "training": group})


def _with_reservation(cfg: PlatformConfig, **changes: Any) -> PlatformConfig:
    pool = cfg.gpu_pools["training"]
    assert pool.capacity_reservation is not None
    ref = pool.capacity_reservation.model_copy(update=changes)
    return _with_pools(cfg, **{**cfg.gpu_pools, "training": pool.model_copy(update={"capacity_reservation": ref})})


def _reservation_findings(
    cfg: PlatformConfig, ec2_stub: tuple[Any, Stubber], answer: dict[str, Any] | str
) -> list[tuple[str, str]]:
    client, stubber = ec2_stub
    params = {"CapacityReservationIds": [RESERVATION]}
    if isinstance(answer, str):
        stubber.add_client_error("describe_capacity_reservations", answer, "stubbed", expected_params=params)
    else:
        stubber.add_response("describe_capacity_reservations", {"CapacityReservations": [answer]}, params)
    findings = check_reservations(cfg, client, PROD_ZONES)
    assert {(f.check, f.subject) for f in findings} == {("reservations", f"gpu_pools.training: {RESERVATION}")}
    return [(f.severity, f.message) for f in findings]


KARPENTER_STRANDED = "Karpenter will not use the reservation and GPU pods of pool `training` will stay Pending: "
NODE_GROUP_STRANDED = "the node group of pool `training` cannot launch nodes: "


@pytest.mark.parametrize("mechanism", ["karpenter", "node_group"])
def test_a_matching_active_reservation_is_ok(configs: dict[str, PlatformConfig], ec2_stub: Any, mechanism: str) -> None:
    cfg = configs["prod"] if mechanism == "karpenter" else _as_node_group(configs["prod"])
    assert _reservation_findings(cfg, ec2_stub, _reservation(AvailableInstanceCount=1)) == [
        (
            "ok",
            f"capacity reservation {RESERVATION} is active in us-east-1a with 2 x p5.48xlarge (1 unused); pool "
            "`training` needs 2",
        )
    ]


@pytest.mark.parametrize(
    ("mechanism", "prefix"), [("karpenter", KARPENTER_STRANDED), ("node_group", NODE_GROUP_STRANDED)]
)
def test_a_missing_reservation_is_an_error(
    configs: dict[str, PlatformConfig], ec2_stub: Any, mechanism: str, prefix: str
) -> None:
    cfg = configs["prod"] if mechanism == "karpenter" else _as_node_group(configs["prod"])
    assert _reservation_findings(cfg, ec2_stub, "InvalidCapacityReservationId.NotFound") == [
        ("error", prefix + f"capacity reservation {RESERVATION} does not exist in account/region us-east-1")
    ]


def test_an_inactive_reservation_is_an_error(configs: dict[str, PlatformConfig], ec2_stub: Any) -> None:
    assert _reservation_findings(_as_node_group(configs["prod"]), ec2_stub, _reservation(State="cancelled")) == [
        ("error", NODE_GROUP_STRANDED + f"capacity reservation {RESERVATION} is cancelled, not active")
    ]


def test_with_on_demand_fallback_a_stranded_pool_runs_at_on_demand_prices(
    configs: dict[str, PlatformConfig], ec2_stub: Any
) -> None:
    cfg = _with_reservation(configs["prod"], on_demand_fallback=True)
    assert _reservation_findings(cfg, ec2_stub, _reservation(State="expired")) == [
        (
            "error",
            "Karpenter will not use the reservation and pool `training` runs on demand only, at on-demand prices: "
            f"capacity reservation {RESERVATION} is expired, not active",
        )
    ]


def test_a_node_groups_reservation_of_another_type_zone_and_kind_is_an_error_each(
    configs: dict[str, PlatformConfig], ec2_stub: Any
) -> None:
    wrong = _reservation(InstanceType="p4d.24xlarge", AvailabilityZone="us-east-1f", ReservationType="capacity-block")
    prefix = NODE_GROUP_STRANDED + f"capacity reservation {RESERVATION} "
    assert _reservation_findings(_as_node_group(configs["prod"]), ec2_stub, wrong) == [
        ("error", prefix + "holds p4d.24xlarge, the pool launches p5.48xlarge"),
        ("error", prefix + "is in us-east-1f, outside the stack's AZs (us-east-1a/us-east-1b/us-east-1c)"),
        (
            "error",
            prefix + "is in us-east-1f, but gpu_pools.training.capacity_reservation.availability_zone is us-east-1a "
            "(the node group is placed in that AZ's subnet)",
        ),
        (
            "error",
            prefix + "is a Capacity Block but gpu_pools.training.capacity_reservation.kind is odcr (the launch "
            "template targets it the wrong way)",
        ),
    ]


def test_a_karpenter_pools_reservation_of_another_type_and_zone_is_an_error_and_its_kind_a_warning(
    configs: dict[str, PlatformConfig], ec2_stub: Any
) -> None:
    wrong = _reservation(InstanceType="p4d.24xlarge", AvailabilityZone="us-east-1f", ReservationType="capacity-block")
    prefix = KARPENTER_STRANDED + f"capacity reservation {RESERVATION} "
    assert _reservation_findings(configs["prod"], ec2_stub, wrong) == [
        (
            "warning",
            f"capacity reservation {RESERVATION} is a Capacity Block but gpu_pools.training.capacity_reservation.kind "
            "is odcr: Karpenter reads the type from EC2, but the config (and the cost estimate) describe it wrongly",
        ),
        ("error", prefix + "holds p4d.24xlarge, the pool launches p5.48xlarge"),
        ("error", prefix + "is in us-east-1f, outside the stack's AZs (us-east-1a/us-east-1b/us-east-1c)"),
        (
            "error",
            prefix + "is in us-east-1f, but gpu_pools.training.capacity_reservation.availability_zone is us-east-1a "
            "(the NodePool keeps the pool's nodes there)",
        ),
    ]


def test_a_reservation_in_another_of_the_stacks_azs_than_configured_is_an_error(
    configs: dict[str, PlatformConfig], ec2_stub: Any
) -> None:
    client, stubber = ec2_stub
    stubber.add_response(
        "describe_capacity_reservations",
        {"CapacityReservations": [_reservation(AvailabilityZone="us-east-1b")]},
        {"CapacityReservationIds": [RESERVATION]},
    )
    (finding,) = check_reservations(configs["prod"], client, PROD_ZONES)
    assert (finding.severity, finding.fix) == (
        "error",
        "set gpu_pools.training.capacity_reservation.availability_zone to us-east-1b",
    )
    # Without a configured AZ Karpenter finds the reservation's AZ itself: nothing to correct.
    stubber.add_response(
        "describe_capacity_reservations",
        {"CapacityReservations": [_reservation(AvailabilityZone="us-east-1b")]},
        {"CapacityReservationIds": [RESERVATION]},
    )
    (finding,) = check_reservations(_with_reservation(configs["prod"], availability_zone=None), client, PROD_ZONES)
    assert finding.severity == "ok"


@pytest.mark.parametrize(
    ("mechanism", "beyond"),
    [
        ("node_group", "the nodes beyond 1 will fail to launch into it"),
        ("karpenter", "Karpenter launches no node beyond 1 and GPU pods that need one stay Pending"),
        ("fallback", "the nodes beyond 1 launch on demand, at on-demand prices"),
    ],
)
def test_a_reservation_smaller_than_the_pool_is_a_warning(
    configs: dict[str, PlatformConfig], ec2_stub: Any, mechanism: str, beyond: str
) -> None:
    cfg = {
        "node_group": _as_node_group(configs["prod"]),
        "karpenter": configs["prod"],
        "fallback": _with_reservation(configs["prod"], on_demand_fallback=True),
    }[mechanism]
    # max_gpus 16 on 8-GPU p5.48xlarge = 2 nodes; the reservation holds 1.
    assert _reservation_findings(cfg, ec2_stub, _reservation(TotalInstanceCount=1, AvailableInstanceCount=0)) == [
        (
            "warning",
            f"capacity reservation {RESERVATION} holds 1 x p5.48xlarge (0 unused) and pool `training` may run 2 "
            f"(max_gpus 16): {beyond}",
        )
    ]


def test_a_capacity_block_that_has_not_started_is_a_warning(configs: dict[str, PlatformConfig], ec2_stub: Any) -> None:
    cfg = _with_reservation(configs["prod"], kind="capacity_block")
    block = _reservation(State="scheduled", ReservationType="capacity-block", StartDate=dt.datetime(2026, 12, 1))
    assert _reservation_findings(cfg, ec2_stub, block) == [
        (
            "warning",
            f"capacity block {RESERVATION} has not started (state scheduled, starts 2026-12-01 00:00:00): Karpenter "
            "launches nodes into it only from then",
        )
    ]


def test_access_denied_on_reservations_is_a_not_checked_warning(
    configs: dict[str, PlatformConfig], ec2_stub: Any
) -> None:
    assert _reservation_findings(configs["prod"], ec2_stub, "UnauthorizedOperation") == [
        (
            "warning",
            "the capacity reservation was not checked: permission denied for DescribeCapacityReservations "
            "(UnauthorizedOperation); the caller needs that action allowed",
        )
    ]


# --- end to end ------------------------------------------------------------------------------------------------


def test_prod_preflight_end_to_end(moto_endpoint: str, configs: dict[str, PlatformConfig]) -> None:
    ctx = AwsContext(REGION)
    calls: list[list[str]] = []
    # The training pool's ODCR was created in its cluster placement group (the EFA check compares them).
    group_arn = f"arn:aws:ec2:{REGION}:444455556666:placement-group/mlp-prod-training"
    _answer_reservations(ctx.client("ec2"), [_reservation(PlacementGroupArn=group_arn)], calls)
    _answer_placement_groups(ctx.client("ec2"), {"mlp-prod-training": ("cluster", "available")})
    stubber = _stub_quotas(ctx.client("service-quotas"), [("L-1216C47A", 256), ("L-DB2E81BA", 512), ("L-417A185B", 64)])
    iam = _stub_simulation(ctx.client("iam"), MOTO_USER_ARN, "allowed")
    steps: list[str] = []
    report = run_preflight(configs["prod"], ctx, steps.append, stack="prod")
    stubber.assert_no_pending_responses()
    iam.assert_no_pending_responses()
    assert calls == [[RESERVATION], [RESERVATION]]  # the reservations check, then the EFA check's group
    assert (report.region, report.account, report.ok) == (REGION, MOTO_ACCOUNT, False)
    # Errors first, then warnings, then ok; by check, then subject.
    assert [(f.severity, f.check, f.subject) for f in report.findings] == [
        ("error", "account", "aws_account_id"),
        ("error", "quotas", "L-417A185B Running On-Demand P instances"),
        ("ok", "cluster-access", "cluster.runner"),
        ("ok", "cluster-access", "runner permissions"),
        ("ok", "efa", "gpu_pools.training"),
        ("ok", "ips", "network"),
        ("ok", "offerings", "cluster.system_node_group"),
        ("ok", "offerings", "gpu_pools.inference"),
        ("ok", "offerings", "gpu_pools.training"),
        ("ok", "quotas", "L-1216C47A Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
        ("ok", "quotas", "L-DB2E81BA Running On-Demand G and VT instances"),
        ("ok", "reservations", f"gpu_pools.training: {RESERVATION}"),
    ]
    assert report.findings[0].message == (
        "`pulumi up` will refuse to run: the stack allows only account 444455556666 and the credentials are for "
        "123456789012"
    )
    assert steps == [
        "checking the AWS credentials",
        "checking your access to the cluster",
        "reading the stack's availability zones",
        "reading the EC2 vCPU quotas",
        "reading instance type offerings",
        "reading capacity reservations",
        "checking EFA",
        "counting free IP addresses",
    ]
    body = to_json(report)
    assert json.loads(json.dumps(body)) == body
    assert (body["ok"], body["counts"]) == (False, {"error": 2, "warning": 0, "ok": 10})
    assert body["findings"][1]["fix"].startswith("request an increase of quota L-417A185B")


def test_dev_preflight_is_ready_and_renders(moto_endpoint: str, configs: dict[str, PlatformConfig]) -> None:
    ctx = AwsContext(REGION)
    stubber = _stub_quotas(
        ctx.client("service-quotas"),
        [("L-1216C47A", 64), ("L-34B43A08", 64), ("L-DB2E81BA", 64), ("L-3819A6DF", 64)],
    )
    report = run_preflight(_deployer(configs["dev"], MOTO_USER_ARN), ctx, stack="dev")
    stubber.assert_no_pending_responses()
    assert report.ok
    assert report.counts() == {"error": 0, "warning": 0, "ok": 8}
    assert {f.check for f in report.findings} == {"quotas", "offerings", "ips", "cluster-access"}
    out = io.StringIO()
    render_table(report, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert f"preflight: account {MOTO_ACCOUNT}, us-east-1" in text
    assert "ready: 0 errors, 0 warnings, 8 ok" in text
    assert "L-3819A6DF" in text


def test_render_table_says_not_ready_on_errors() -> None:
    from mlplatform.mlp.preflight import Finding

    report = PreflightReport(REGION, MOTO_ACCOUNT, (Finding("quotas", "error", "L-417A185B", "too low", "ask"),))
    out = io.StringIO()
    render_table(report, Console(file=out, width=200, color_system=None))
    assert "not ready: 1 errors, 0 warnings, 0 ok" in out.getvalue()


def test_rejected_credentials_are_an_account_error(
    monkeypatch: pytest.MonkeyPatch, configs: dict[str, PlatformConfig]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ctx = AwsContext(REGION)
    with Stubber(ctx.client("sts")) as sts:
        sts.add_client_error("get_caller_identity", "InvalidClientTokenId", "The security token is invalid.", 403)
        with pytest.raises(AccountError) as caught:
            run_preflight(configs["dev"], ctx)
    assert str(caught.value) == (
        "checking the AWS credentials: the AWS credentials were rejected (InvalidClientTokenId: The security token "
        "is invalid.); refresh or replace them"
    )


def test_a_context_for_another_region_is_refused(configs: dict[str, PlatformConfig]) -> None:
    with pytest.raises(ValueError, match=r"^the stack deploys to us-east-1 but the AWS context is for eu-west-1"):
        run_preflight(configs["dev"], AwsContext("eu-west-1"))


# --- cluster access ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            "arn:aws:sts::111122223333:assumed-role/PlatformDeployer/alice",
            ("111122223333", "role", "PlatformDeployer", "arn:aws:iam::111122223333:role/PlatformDeployer"),
        ),
        (
            "arn:aws:iam::111122223333:role/platform/PlatformDeployer",
            ("111122223333", "role", "PlatformDeployer", "arn:aws:iam::111122223333:role/platform/PlatformDeployer"),
        ),
        ("arn:aws:iam::111122223333:user/ci", ("111122223333", "user", "ci", "arn:aws:iam::111122223333:user/ci")),
        ("arn:aws:sts::123456789012:user/moto", ("123456789012", "user", "moto", MOTO_USER_ARN)),
    ],
)
def test_callers_are_the_iam_principals_behind_them(arn: str, expected: tuple[str, str, str, str]) -> None:
    from mlplatform.mlp.preflight import principal_of

    p = principal_of(arn)
    assert p is not None and (p.account, p.kind, p.name, p.arn) == expected
    assert principal_of("arn:aws:iam::111122223333:root") is None


def test_a_caller_who_is_no_deployer_stops_preflight_with_the_fix(
    moto_endpoint: str, configs: dict[str, PlatformConfig]
) -> None:
    ctx = AwsContext(REGION)
    report = run_preflight(configs["dev"], ctx, stack="dev")
    assert report.stopped_early and not report.ok
    (finding,) = report.findings
    assert (finding.check, finding.severity, finding.subject) == ("cluster-access", "error", "cluster.deployers")
    assert finding.message == (
        "you (arn:aws:sts::123456789012:user/moto) will get no access to the cluster: every Kubernetes call of the "
        "cluster layer's `pulumi up` would be Unauthorized (the cluster's creator gets no admin rights)"
    )
    assert finding.fix == (
        "add arn:aws:iam::123456789012:user/moto to cluster.deployers in stacks/Pulumi.dev.yaml and run `pulumi up "
        "-s dev` (the cloud layer), or deploy as one of: arn:aws:iam::111122223333:role/PlatformDeployer, "
        "arn:aws:iam::111122223333:role/PlatformAdmin"
    )


def test_a_session_of_a_deployer_role_is_that_deployer(configs: dict[str, PlatformConfig]) -> None:
    from mlplatform.mlp.preflight import check_cluster_access

    findings = check_cluster_access(
        configs["dev"], "dev", "arn:aws:sts::111122223333:assumed-role/PlatformDeployer/alice", iam=None
    )
    assert [(f.severity, f.message) for f in findings] == [
        (
            "ok",
            "you (arn:aws:iam::111122223333:role/PlatformDeployer) get a cluster-admin access entry: run the cluster "
            "layer yourself (`pulumi -C cluster up -s dev`); the API endpoint is public (from "
            "cluster.endpoint.public_cidrs)",
        )
    ]
    # A namespaced `edit` admin is no deployer: it could not create cluster-wide objects.
    engineer = check_cluster_access(
        configs["dev"], "dev", "arn:aws:sts::111122223333:assumed-role/MLEngineer/bob", iam=None
    )
    assert [f.severity for f in engineer] == ["error"]


def test_private_endpoint_uses_the_runner_and_checks_the_caller_may_start_it(
    configs: dict[str, PlatformConfig],
) -> None:
    from mlplatform.mlp.preflight import check_cluster_access

    role = "arn:aws:iam::444455556666:role/platform/PlatformAdmin"
    ctx = AwsContext(REGION)
    iam = ctx.client("iam")
    with _stub_simulation(iam, role, "implicitDeny", role="PlatformAdmin"):
        denied = check_cluster_access(
            configs["prod"], "prod", "arn:aws:sts::444455556666:assumed-role/PlatformAdmin/alice", iam
        )
    project = "arn:aws:codebuild:us-east-1:444455556666:project/mlp-prod-cluster-layer"
    assert [(f.severity, f.subject, f.message, f.fix) for f in denied] == [
        (
            "error",
            "runner permissions",
            "you (arn:aws:iam::444455556666:role/PlatformAdmin) may not start the in-VPC runner: "
            f"codebuild:BatchGetBuilds, codebuild:StartBuild denied on {project}",
            f"grant codebuild:StartBuild, codebuild:BatchGetBuilds on {project} (whoever may start it is a cluster "
            "admin) and s3:PutObject on the artifacts bucket's deploy/cluster-layer/ prefix",
        )
    ]
    with _stub_simulation(iam, role, "allowed", role="PlatformAdmin"):
        allowed = check_cluster_access(
            configs["prod"], "prod", "arn:aws:sts::444455556666:assumed-role/PlatformAdmin/alice", iam
        )
    assert [(f.severity, f.subject) for f in allowed] == [
        ("ok", "cluster.runner"),
        ("ok", "runner permissions"),
    ]
    assert allowed[0].message == (
        "the API endpoint is private: the cluster layer runs in the in-VPC runner (CodeBuild project "
        "mlp-prod-cluster-layer, whose role has a cluster-admin access entry), started with `mlp runner prod up`"
    )


def test_a_simulator_the_caller_may_not_use_is_a_warning(configs: dict[str, PlatformConfig]) -> None:
    from mlplatform.mlp.preflight import check_cluster_access

    ctx = AwsContext(REGION)
    iam = ctx.client("iam")
    with Stubber(iam) as stub:
        stub.add_client_error("get_role", "AccessDenied", "not allowed", 403)
        findings = check_cluster_access(
            configs["prod"], "prod", "arn:aws:sts::444455556666:assumed-role/PlatformAdmin/alice", iam
        )
    assert [(f.severity, f.subject) for f in findings] == [("ok", "cluster.runner"), ("warning", "runner permissions")]
    assert findings[1].message == (
        "not checked whether you may start the runner (permission denied for GetRole (AccessDenied); the caller "
        "needs that action allowed)"
    )


def test_preflight_command_prints_one_line_and_fails_without_cluster_access(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", "preflight", "dev"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(
        "error: cluster-access (cluster.deployers): you (arn:aws:sts::123456789012:user/moto) will get no access"
    )
    assert line.endswith(
        "; fix: add arn:aws:iam::123456789012:user/moto to cluster.deployers in "
        + (
            "stacks/Pulumi.dev.yaml and run `pulumi up -s dev` (the cloud layer), or deploy as one of: "
            "arn:aws:iam::111122223333:role/PlatformDeployer, arn:aws:iam::111122223333:role/PlatformAdmin"
        )
    )
