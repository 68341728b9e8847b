"""Sitting on a Terraform-managed foundation: plans against a real state file (format 4), locally and in S3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from mlplatform.infra.network.terraform_state import TerraformStateError, network_from_outputs, parse_state
from mlplatform.mlp.planner import Plan, ProgramError, plan_stack
from mlplatform.mlp.stackfile import load_project, load_stack
from tests.conftest import ROOT

STATE = Path(__file__).parent / "data" / "terraform" / "landing-zone.tfstate"
PRIVATE = ["subnet-0c1d2e3f4a5b6c7d8", "subnet-0d2e3f4a5b6c7d8e9", "subnet-0e3f4a5b6c7d8e9fa"]
NAMES = {"vpc_id": "vpc_id", "private_subnet_ids": "private_subnets", "public_subnet_ids": "public_subnets"}


def _project_with(tmp_path: Path, adopt: dict[str, Any]) -> Path:
    """A copy of the project whose prod stack adopts a network instead of creating one, with its reserved training
    pool on a managed node group in us-east-1b (the mechanism that must find the subnet of the reservation's AZ
    among the adopted ones)."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    shutil.copy(ROOT / "__main__.py", tmp_path)
    (tmp_path / "stacks").mkdir()
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
    stack["config"]["ml-platform:network"] = {"adopt": adopt}
    training = stack["config"]["ml-platform:gpu_pools"]["training"]
    for karpenter_only in (
        "ami_version",
        "consolidation_policy",
        "consolidate_after",
        "expire_after",
        "termination_grace_period",
    ):
        training.pop(karpenter_only)
    training["provisioner"] = "node_group"
    training["capacity_reservation"].update(availability_zone="us-east-1b", on_demand_fallback=False)
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack))
    return tmp_path


def _plan(project_dir: Path) -> Plan:
    return plan_stack(load_stack(load_project(project_dir), "prod"))


def _assert_adopted(plan: Plan) -> None:
    assert not plan.of_type("aws:ec2/vpc:Vpc") and not plan.of_type("aws:ec2/subnet:Subnet")
    assert not plan.of_type("aws:ec2/natGateway:NatGateway")
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["subnetIds"] == PRIVATE
    for node_class in plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert [t["id"] for t in node_class.inputs["spec"]["subnetSelectorTerms"]] == PRIVATE
    (training,) = [n for n in plan.of_type("aws:eks/nodeGroup:NodeGroup") if n.name == "nodepools-training"]
    # Only the subnet of the reservation's AZ, found with ec2:DescribeSubnets (the planner answers adopted subnets
    # as lying in us-east-1a, b, c in the order they are listed).
    assert training.inputs["subnetIds"] == [PRIVATE[1]]


def test_plan_adopts_the_network_from_a_local_state_file(tmp_path: Path) -> None:
    project = _project_with(tmp_path, {"terraform_state": {"path": "foundation/landing-zone.tfstate"}})
    (project / "foundation").mkdir()
    shutil.copy(STATE, project / "foundation" / "landing-zone.tfstate")
    _assert_adopted(_plan(project))


def test_plan_adopts_the_network_from_a_state_in_s3(tmp_path: Path, moto_endpoint: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="landing-zone-tfstate")
    s3.put_object(Bucket="landing-zone-tfstate", Key="network/terraform.tfstate", Body=STATE.read_bytes())
    project = _project_with(
        tmp_path,
        {
            "terraform_state": {
                "s3": {"bucket": "landing-zone-tfstate", "key": "network/terraform.tfstate", "region": "us-east-1"}
            }
        },
    )
    _assert_adopted(_plan(project))


def test_missing_s3_state_is_a_named_error(tmp_path: Path, moto_endpoint: str) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="landing-zone-tfstate")
    project = _project_with(
        tmp_path,
        {
            "terraform_state": {
                "s3": {"bucket": "landing-zone-tfstate", "key": "missing.tfstate", "region": "us-east-1"}
            }
        },
    )
    with pytest.raises(
        ProgramError,
        match=r"cannot read the Terraform state s3://landing-zone-tfstate/missing"
        r"\.tfstate \(us-east-1\): NoSuchKey",
    ):
        _plan(project)


def test_explicit_ids_adopt_without_a_state(tmp_path: Path) -> None:
    project = _project_with(
        tmp_path, {"vpc_id": "vpc-0a3f5c9e2b7d41c86", "private_subnet_ids": PRIVATE, "public_subnet_ids": []}
    )
    _assert_adopted(_plan(project))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("outputs"), None),  # a state without outputs: every output is missing
        (
            lambda s: s["outputs"].pop("private_subnets"),
            "output 'private_subnets' (for private_subnet_ids) is not in the state; outputs: azs, nat_public_ips",
        ),
        (
            lambda s: s["outputs"].__setitem__(
                "private_subnets", {"value": "subnet-0c1d2e3f4a5b6c7d8", "type": "string"}
            ),
            "output 'private_subnets' must be a list of subnet ids (got str",
        ),
        (
            lambda s: s["outputs"].__setitem__(
                "vpc_id", {"value": ["vpc-0a3f5c9e2b7d41c86"], "type": ["list", "string"]}
            ),
            "output 'vpc_id' must be a VPC id such as vpc-0123456789abcdef0 (got list",
        ),
        (lambda s: s.__setitem__("version", 3), "Terraform state format version 3 is not supported"),
    ],
)
def test_bad_states_give_named_errors(tmp_path: Path, mutate: Any, message: str | None) -> None:
    state = json.loads(STATE.read_text())
    mutate(state)
    project = _project_with(tmp_path, {"terraform_state": {"path": "state.tfstate"}})
    (project / "state.tfstate").write_text(json.dumps(state))
    with pytest.raises(ProgramError) as info:
        _plan(project)
    assert "state.tfstate" in str(info.value)
    assert (message or "is not in the state; outputs: (none)") in str(info.value)


def test_missing_state_file_is_a_named_error(tmp_path: Path) -> None:
    project = _project_with(tmp_path, {"terraform_state": {"path": "nowhere.tfstate"}})
    with pytest.raises(ProgramError, match=r"Terraform state not found: .*nowhere\.tfstate"):
        _plan(project)


def test_output_names_are_configurable() -> None:
    outputs = parse_state(STATE.read_text(), "s")
    outputs["app_subnets"] = outputs.pop("private_subnets")
    ids = network_from_outputs(outputs, {**NAMES, "private_subnet_ids": "app_subnets"}, "s")
    assert ids.private_subnet_ids == PRIVATE
    with pytest.raises(TerraformStateError, match="needs at least 2"):
        network_from_outputs(
            {**outputs, "app_subnets": PRIVATE[:1]}, {**NAMES, "private_subnet_ids": "app_subnets"}, "s"
        )


def test_invalid_json_is_not_a_state() -> None:
    with pytest.raises(TerraformStateError, match="not a Terraform state"):
        parse_state("{", "x.tfstate")
