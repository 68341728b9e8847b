"""The standalone example programs plan offline and use only the components they claim to."""

from __future__ import annotations

from mlplatform.mlp.planner import plan_stack
from mlplatform.mlp.stackfile import load_project, load_stack
from tests.conftest import ROOT
from tests.k8s_schema import validate_plan


def test_gpu_pools_only_example_plans_against_an_existing_cluster() -> None:
    project = load_project(ROOT / "examples" / "gpu-pools-only")
    plan = plan_stack(load_stack(project, "example"))
    types = {r.type for r in plan.resources}
    assert "aws:eks/cluster:Cluster" not in types and "aws:ec2/vpc:Vpc" not in types  # nothing but the pools
    pools = {p.inputs["metadata"]["name"] for p in plan.of_type("kubernetes:karpenter.sh/v1:NodePool")}
    assert pools == {"inference", "notebooks"}
    for node_class in plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        # subnets and security group come from the existing cluster (aws.eks.get_cluster)
        assert len(node_class.inputs["spec"]["subnetSelectorTerms"]) == 3
        assert node_class.inputs["spec"]["securityGroupSelectorTerms"][0]["id"].startswith("sg-")
        assert node_class.inputs["spec"]["tags"]["team"] == "research"
    assert validate_plan(plan) == {}
    assert all(
        r.provider in ("aws", "k8s") for r in plan.resources if r.custom and r.type.startswith(("aws:", "kubernetes:"))
    )
