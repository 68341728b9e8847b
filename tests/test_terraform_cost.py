"""`mlp cost --terraform-plan FILE`: the written GPU plan (`examples/terraform-plans/gpu-cost.json`) priced to the
cent against a hand calculation from the shipped us-east-1 prices; what cannot be priced is listed with the reason;
the region comes from --region, else the plan's aws provider, else an error; the 11 real plans never crash and
never show a $0 line for a priced type.

Regenerate the example after changing `gpu_cost_plan`: `.venv/bin/python -m tests.test_terraform_cost`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra.catalog.prices import ec2_on_demand_price
from mlplatform.infra.cost.estimate import rds_price, service_price
from mlplatform.mlp.terraform_cost import TerraformCost, plan_region, terraform_cost
from tests.terraform_plans import Block, Instance, const, plan, ref

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "terraform-plans" / "gpu-cost.json"
REAL_PLANS = sorted((ROOT / "tests" / "data" / "terraform-plans").glob("*.json"))
H = 730  # hours per month
TODAY = dt.date(2026, 12, 5)

AWS = {
    "name": "aws",
    "full_name": "registry.terraform.io/hashicorp/aws",
    "expressions": {"region": const("us-east-1")},
}
KUBERNETES = {"name": "kubernetes", "full_name": "registry.terraform.io/hashicorp/kubernetes"}

NODEPOOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "gpu"},
    "spec": {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                "requirements": [
                    {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["p5", "g6e"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                "expireAfter": "720h",
            }
        },
        "limits": {"nvidia.com/gpu": 16},
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"},
    },
}
NODECLASS = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "gpu"},
    "spec": {
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "role": "gpu-nodes",
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ml"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ml"}}],
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "300Gi", "volumeType": "gp3"}}],
    },
}


def _manifest(address: str, manifest: dict[str, Any]) -> Block:
    after: dict[str, Any] = {
        "manifest": manifest,
        "object": None,
        "computed_fields": None,
        "field_manager": [],
        "wait": [],
    }
    return Block(
        address,
        "kubernetes_manifest",
        {"manifest": const(manifest)},
        [Instance(address, after, {"object": True})],
        provider="kubernetes",
    )


def _node_group(name: str, after: dict[str, Any], unknown: dict[str, Any], exprs: dict[str, Any]) -> Block:
    address = f"aws_eks_node_group.{name}"
    base = {"cluster_name": "ml", "node_group_name": name, "capacity_type": "ON_DEMAND", "labels": None, "tags": None}
    unknown = {"id": True, "arn": True, "status": True, "resources": True, "tags_all": True, **unknown}
    exprs = {
        "cluster_name": ref("aws_eks_cluster.main.name", "aws_eks_cluster.main"),
        "node_role_arn": ref("aws_iam_role.nodes.arn", "aws_iam_role.nodes"),
        **exprs,
    }
    return Block(address, "aws_eks_node_group", exprs, [Instance(address, {**base, **after}, unknown)])


def gpu_cost_plan() -> dict[str, Any]:
    """A GPU platform in Terraform: EKS, a GPU managed node group on a launch template, a system node group, a
    node group whose instance types are known only after apply, a Karpenter GPU NodePool, the network and data."""
    blocks = [
        Block(
            "aws_eks_cluster.main",
            "aws_eks_cluster",
            {
                "name": const("ml"),
                "version": const("1.35"),
                "role_arn": ref("aws_iam_role.cluster.arn", "aws_iam_role.cluster"),
                "upgrade_policy": [{"support_type": const("STANDARD")}],
            },
            [
                Instance(
                    "aws_eks_cluster.main",
                    {"name": "ml", "version": "1.35", "upgrade_policy": [{"support_type": "STANDARD"}]},
                    {"id": True, "arn": True, "endpoint": True, "role_arn": True, "tags_all": True},
                )
            ],
        ),
        Block(
            "aws_iam_role.cluster",
            "aws_iam_role",
            {"name": const("ml-cluster")},
            [Instance("aws_iam_role.cluster", {"name": "ml-cluster"}, {"id": True, "arn": True})],
        ),
        Block(
            "aws_launch_template.gpu",
            "aws_launch_template",
            {
                "name": const("gpu-nodes"),
                "block_device_mappings": [
                    {
                        "device_name": const("/dev/xvda"),
                        "ebs": [{"volume_size": const(200), "volume_type": const("gp3")}],
                    }
                ],
            },
            [
                Instance(
                    "aws_launch_template.gpu",
                    {
                        "name": "gpu-nodes",
                        "block_device_mappings": [
                            {"device_name": "/dev/xvda", "ebs": [{"volume_size": 200, "volume_type": "gp3"}]}
                        ],
                    },
                    {"id": True, "arn": True, "latest_version": True},
                )
            ],
        ),
        _node_group(
            "gpu",
            {
                "instance_types": ["g6e.12xlarge"],
                "scaling_config": [{"min_size": 0, "desired_size": 1, "max_size": 4}],
                "launch_template": [{"name": None}],
                "taint": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
            },
            {"launch_template": [{"id": True, "version": True}]},
            {
                "instance_types": const(["g6e.12xlarge"]),
                "launch_template": [
                    {
                        "id": ref("aws_launch_template.gpu.id", "aws_launch_template.gpu"),
                        "version": ref("aws_launch_template.gpu.latest_version", "aws_launch_template.gpu"),
                    }
                ],
            },
        ),
        _node_group(
            "system",
            {
                "instance_types": ["t3.medium"],
                "disk_size": 50,
                "scaling_config": [{"min_size": 2, "desired_size": 2, "max_size": 3}],
            },
            {},
            {"instance_types": const(["t3.medium"]), "disk_size": const(50)},
        ),
        _node_group(
            "batch",
            {"scaling_config": [{"min_size": 0, "desired_size": 0, "max_size": 10}]},
            {"instance_types": True},
            {"instance_types": ref("data.aws_ec2_instance_types.batch.instance_types")},
        ),
        Block(
            "aws_nat_gateway.main",
            "aws_nat_gateway",
            {"allocation_id": ref("aws_eip.nat.id", "aws_eip.nat")},
            [Instance("aws_nat_gateway.main", {"connectivity_type": "public"}, {"id": True, "allocation_id": True})],
        ),
        Block(
            "aws_lb.ingress",
            "aws_lb",
            {"name": const("ml-ingress"), "load_balancer_type": const("application")},
            [
                Instance(
                    "aws_lb.ingress",
                    {"name": "ml-ingress", "load_balancer_type": "application", "internal": False},
                    {"id": True, "arn": True, "dns_name": True},
                )
            ],
        ),
        Block(
            "aws_db_instance.mlflow",
            "aws_db_instance",
            {"engine": const("postgres"), "instance_class": const("db.t4g.micro"), "allocated_storage": const(20)},
            [
                Instance(
                    "aws_db_instance.mlflow",
                    {
                        "engine": "postgres",
                        "instance_class": "db.t4g.micro",
                        "allocated_storage": 20,
                        "multi_az": False,
                        "storage_encrypted": True,
                    },
                    {"id": True, "arn": True, "endpoint": True},
                )
            ],
        ),
        Block(
            "aws_s3_bucket.artifacts",
            "aws_s3_bucket",
            {"bucket": const("ml-artifacts")},
            [Instance("aws_s3_bucket.artifacts", {"bucket": "ml-artifacts"}, {"id": True, "arn": True})],
        ),
        Block(
            "aws_ebs_volume.datasets",
            "aws_ebs_volume",
            {"size": const(500), "type": const("gp3")},
            [
                Instance(
                    "aws_ebs_volume.datasets",
                    {"availability_zone": "us-east-1a", "size": 500, "type": "gp3"},
                    {"id": True},
                )
            ],
        ),
        _manifest("kubernetes_manifest.gpu_nodepool", NODEPOOL),
        _manifest("kubernetes_manifest.gpu_nodeclass", NODECLASS),
    ]
    doc = plan(*blocks, providers=copy.deepcopy({"aws": AWS, "kubernetes": KUBERNETES}))
    for change in doc["resource_changes"]:
        if change["type"] == "kubernetes_manifest":
            change["provider_name"] = KUBERNETES["full_name"]
    return doc


def _example_text() -> str:
    return json.dumps(gpu_cost_plan(), indent=2, sort_keys=True) + "\n"


def _prices_are(expected: dict[str, float]) -> None:
    """The literal prices the hand calculation uses are the ones in the shipped price data."""
    for key, value in expected.items():
        if "." in key and not key.startswith("db."):
            actual = ec2_on_demand_price(key, "us-east-1")
        elif key.startswith("db."):
            actual = rds_price("us-east-1", key, False)[0]
        else:
            name, _, field = key.partition(":")
            actual = service_price("us-east-1", name, field or "price")
        assert actual == value, f"{key}: price data has {actual}, the hand calculation uses {value}"


@pytest.fixture(scope="module")
def gpu_cost() -> TerraformCost:
    return terraform_cost(EXAMPLE, today=TODAY)


def test_the_example_is_the_builders_output() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == _example_text(), "regenerate: python -m tests.test_terraform_cost"


def test_the_written_plan_equals_the_hand_calculation(gpu_cost: TerraformCost) -> None:
    _prices_are(
        {
            "eks_cluster_hour:STANDARD": 0.10,
            "g6e.12xlarge": 10.49264,
            "g6e.16xlarge": 7.57719,
            "p5.4xlarge": 6.88,
            "t3.medium": 0.0416,
            "ebs_gp3_gb_month": 0.08,
            "nat_gateway_hour": 0.045,
            "alb_hour": 0.0225,
            "db.t4g.micro": 0.016,
            "rds_gp3_gb_month:single_az": 0.115,
        }
    )
    gpu_node = H * 10.49264 + 200 * 0.08  # g6e.12xlarge + its 200 GiB launch-template disk
    system_node = H * 0.0416 + 50 * 0.08  # t3.medium + its disk_size of 50 GiB (gp3 assumed)
    # The NodePool's ceiling: 16 GPUs (its limit) at the dearest per-GPU candidate of p5 and g6e with the node
    # class's 300 GiB disk: g6e.16xlarge (1 GPU, $7.57719/h) beats p5.4xlarge (1 GPU, $6.88/h) and p5.48xlarge
    # ($55.04/h over 8 GPUs); its floor is 0 (nothing holds a node).
    per_gpu = H * 7.57719 + 300 * 0.08
    fixed = (
        H * 0.10  # EKS control plane, standard support
        + H * 0.045  # NAT gateway
        + H * 0.0225  # application load balancer
        + (H * 0.016 + 20 * 0.115)  # RDS PostgreSQL db.t4g.micro single-AZ + 20 GB gp3
        + 500 * 0.08  # the 500 GiB gp3 volume
    )
    floor = fixed + 0 * gpu_node + 2 * system_node + 0
    expected = fixed + 1 * gpu_node + 2 * system_node + 0.25 * (16 * per_gpu)  # a pool: floor + 25% of headroom
    ceiling = fixed + 4 * gpu_node + 3 * system_node + 16 * per_gpu
    e = gpu_cost.estimate
    assert (e.total("floor"), e.total("expected"), e.total("ceiling")) == (
        round(floor, 2),
        round(expected, 2),
        round(ceiling, 2),
    )
    lines = {line.resource: line for line in e.lines}
    assert (lines["aws_eks_node_group.gpu"].floor, lines["aws_eks_node_group.gpu"].ceiling) == (0, 4 * gpu_node)
    pool = lines["kubernetes_manifest.gpu_nodepool"]
    assert (pool.floor, round(pool.ceiling, 2)) == (0, round(16 * per_gpu, 2))
    assert "g6e.16xlarge" in pool.how
    assert gpu_cost.region == "us-east-1" and gpu_cost.region_from == "the plan's AWS provider configuration"


def test_what_the_written_plan_cannot_price_is_listed(gpu_cost: TerraformCost) -> None:
    assert {(n.resource, n.reason) for n in gpu_cost.not_priced} == {
        ("aws_eks_node_group.batch", "unknown until apply: instanceTypes"),
        (
            "aws_s3_bucket.artifacts",
            "S3 storage and requests are usage-based: not estimated (no `mlplatform.io/expected-size-gb` tag)",
        ),
    }
    assert any("node root volumes of 50 GiB (disk_size), priced as gp3" in n for n in gpu_cost.estimate.notes)


def test_the_cli_prints_the_three_formats(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from mlplatform.mlp.cli import main

    # piped output is printed 200 columns wide unless COLUMNS says otherwise (a test runner may set it)
    monkeypatch.delenv("COLUMNS", raising=False)

    def run(*argv: str) -> int:
        monkeypatch.setattr("sys.argv", ["mlp", "cost", "--terraform-plan", str(EXAMPLE), *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return int(exit_info.value.code or 0)

    assert run("-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["region"] == "us-east-1" and body["region_from"] == "the plan's AWS provider configuration"
    assert {n["resource"] for n in body["not_priced"]} == {"aws_eks_node_group.batch", "aws_s3_bucket.artifacts"}
    assert run("-f", "markdown") == 0
    assert "| `aws_eks_node_group.batch` |" in capsys.readouterr().out
    assert run() == 0
    assert "kubernetes_manifest.gpu_nodepool" in capsys.readouterr().out


def test_the_region_comes_from_the_option_then_the_plan_else_it_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplatform.mlp.cli import main

    doc = gpu_cost_plan()
    assert plan_region(doc) == "us-east-1"
    doc["configuration"]["provider_config"]["aws"]["expressions"]["region"] = ref("var.region")
    doc["variables"] = {"region": {"value": "eu-west-1"}}
    assert plan_region(doc) == "eu-west-1"
    del doc["configuration"]["provider_config"]["aws"]["expressions"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    assert terraform_cost(path, "us-east-1", TODAY).region_from == "--region"

    def run(*argv: str) -> int:
        monkeypatch.setattr("sys.argv", ["mlp", "cost", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return int(exit_info.value.code or 0)

    assert run("--terraform-plan", str(path)) == 2
    assert "give it with --region" in capsys.readouterr().err
    path.write_text('{"resource_changes": {}}')
    assert run("--terraform-plan", str(path), "--region", "us-east-1") == 2
    assert "$.resource_changes: must be a list" in capsys.readouterr().err
    assert run("--terraform-plan", str(path), "dev") == 2


def test_a_region_without_prices_lists_every_line_as_not_priced(tmp_path: Path) -> None:
    cost = terraform_cost(EXAMPLE, "zz-nowhere-1", TODAY)
    assert not cost.estimate.lines and cost.estimate.total("ceiling") == 0
    assert any(n.resource == "aws_eks_cluster.main" and "zz-nowhere-1" in n.reason for n in cost.not_priced)


def test_unknown_limits_and_unbounded_pools_are_not_priced(tmp_path: Path) -> None:
    doc = gpu_cost_plan()
    change = next(c for c in doc["resource_changes"] if c["address"] == "kubernetes_manifest.gpu_nodepool")
    del change["change"]["after"]["manifest"]["spec"]["limits"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    cost = terraform_cost(path, today=TODAY)
    (pool,) = [n for n in cost.not_priced if n.resource == "kubernetes_manifest.gpu_nodepool"]
    assert pool.reason == "no `nvidia.com/gpu` or `cpu` limit: its ceiling is unbounded, so it is not priced"
    assert "kubernetes_manifest.gpu_nodepool" not in {line.resource for line in cost.estimate.lines}


def _changed(tmp_path: Path, doc: dict[str, Any]) -> TerraformCost:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return terraform_cost(path, today=TODAY)


def _after(doc: dict[str, Any], address: str) -> dict[str, Any]:
    after: dict[str, Any] = next(c for c in doc["resource_changes"] if c["address"] == address)["change"]["after"]
    return after


def _reasons(cost: TerraformCost) -> dict[str, str]:
    return {n.resource: n.reason for n in cost.not_priced}


def test_spot_is_priced_on_demand_with_the_spot_scenario_flagged_as_an_assumption(tmp_path: Path) -> None:
    doc = gpu_cost_plan()
    _after(doc, "aws_eks_node_group.gpu")["capacity_type"] = "SPOT"
    pool = _after(doc, "kubernetes_manifest.gpu_nodepool")["manifest"]["spec"]["template"]["spec"]["requirements"]
    pool[1]["values"] = ["spot", "on-demand"]
    cost = _changed(tmp_path, doc)
    lines = {line.resource: line for line in cost.estimate.lines}
    gpu_node = H * 10.49264 + 200 * 0.08
    group = lines["aws_eks_node_group.gpu"]
    assert (group.ceiling, group.spot, group.flags) == (4 * gpu_node, 4 * gpu_node * 0.35, ("spot assumed",))
    assert lines["kubernetes_manifest.gpu_nodepool"].flags == ("spot assumed",)
    assert any(
        n.startswith("aws_eks_node_group.gpu: spot capacity: floor, expected and ceiling at on-demand")
        for n in cost.estimate.notes
    )


def test_a_nodepool_through_kubectl_manifest_is_priced_alike(tmp_path: Path) -> None:
    doc = gpu_cost_plan()
    change = next(c for c in doc["resource_changes"] if c["address"] == "kubernetes_manifest.gpu_nodepool")
    change.update(address="kubectl_manifest.gpu_nodepool", type="kubectl_manifest")
    change["change"]["after"] = {"yaml_body": yaml.safe_dump(NODEPOOL), "override_namespace": None}
    config = doc["configuration"]["root_module"]["resources"]
    entry = next(r for r in config if r["address"] == "kubernetes_manifest.gpu_nodepool")
    entry.update(address="kubectl_manifest.gpu_nodepool", type="kubectl_manifest")
    entry["expressions"] = {"yaml_body": const(yaml.safe_dump(NODEPOOL))}
    cost = _changed(tmp_path, doc)
    pool = next(line for line in cost.estimate.lines if line.resource == "kubectl_manifest.gpu_nodepool")
    assert round(pool.ceiling, 2) == round(16 * (H * 7.57719 + 300 * 0.08), 2)


def test_what_cannot_be_priced_says_why(tmp_path: Path) -> None:
    doc = gpu_cost_plan()
    _after(doc, "aws_ebs_volume.datasets")["type"] = "gp2"
    _after(doc, "aws_db_instance.mlflow")["engine"] = "mysql"
    system = next(c for c in doc["resource_changes"] if c["address"] == "aws_eks_node_group.system")
    system["change"]["after"]["scaling_config"] = None
    system["change"]["after_unknown"]["scaling_config"] = True
    config = next(
        r for r in doc["configuration"]["root_module"]["resources"] if r["address"] == "aws_eks_node_group.system"
    )
    config["expressions"]["scaling_config"] = ref("var.system_scaling")
    pool = _after(doc, "kubernetes_manifest.gpu_nodepool")["manifest"]["spec"]
    pool["template"]["spec"]["requirements"][0]["operator"] = "NotIn"
    reasons = _reasons(_changed(tmp_path, doc))
    assert reasons["aws_ebs_volume.datasets"] == "no price data: EBS gp2 volumes in us-east-1"
    assert reasons["aws_db_instance.mlflow"] == "engine mysql: the price data holds RDS for PostgreSQL only"
    assert reasons["aws_eks_node_group.system"] == "unknown until apply: scalingConfig"
    assert reasons["kubernetes_manifest.gpu_nodepool"] == (
        "requirement karpenter.k8s.aws/instance-family uses operator NotIn: only `In` lists are priced"
    )


def test_odd_shapes_are_listed_or_assumed_never_a_crash(tmp_path: Path) -> None:
    doc = gpu_cost_plan()
    change = next(c for c in doc["resource_changes"] if c["address"] == "aws_eks_cluster.main")
    del change["change"]["after"]["version"]
    change["change"]["after_unknown"]["version"] = True
    nodeclass = _after(doc, "kubernetes_manifest.gpu_nodeclass")["manifest"]["spec"]
    nodeclass["blockDeviceMappings"][0]["ebs"]["volumeSize"] = "1Ti"
    _after(doc, "aws_eks_node_group.system")["scaling_config"] = [{"min_size": 2, "max_size": 3}]
    cost = _changed(tmp_path, doc)
    reasons = _reasons(cost)
    assert reasons["aws_eks_node_group.system"] == "scaling_config has no whole min_size, desired_size and max_size"
    assert reasons["kubernetes_manifest.gpu_nodeclass"].startswith("a disk size not in whole Gi")
    assert "aws_eks_cluster.main: Kubernetes version unknown until apply: standard support assumed" in (
        cost.estimate.notes
    )
    pool = next(line for line in cost.estimate.lines if line.resource == "kubernetes_manifest.gpu_nodepool")
    assert round(pool.ceiling, 2) == round(16 * H * 7.57719, 2)  # priced without the node class's disks


@pytest.mark.parametrize("address", [c["address"] for c in gpu_cost_plan()["resource_changes"]])
def test_a_resource_with_empty_planned_values_does_not_crash(tmp_path: Path, address: str) -> None:
    doc = gpu_cost_plan()
    change = next(c for c in doc["resource_changes"] if c["address"] == address)
    change["change"]["after"] = (
        {"manifest": {"apiVersion": "karpenter.sh/v1", "kind": "NodePool"}}
        if (change["type"] == "kubernetes_manifest")
        else {}
    )
    cost = _changed(tmp_path, doc)
    assert all(line.ceiling > 0 for line in cost.estimate.lines)


def test_a_deployment_pinned_to_the_pool_holds_its_floor(tmp_path: Path) -> None:
    """A minimum expressed in the plan: one replica of a 1-GPU Deployment on the pool keeps the cheapest node that
    fits it (g6e.xlarge with the node class's 300 GiB disk)."""
    server = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "server", "namespace": "serving"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "server"}},
            "template": {
                "metadata": {"labels": {"app": "server"}},
                "spec": {
                    "nodeSelector": {"mlplatform.io/gpu-pool": "gpu"},
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.9.2",
                            "resources": {"requests": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                },
            },
        },
    }
    doc = gpu_cost_plan()
    extra = plan(_manifest("kubernetes_manifest.server", server))
    doc["resource_changes"] += extra["resource_changes"]
    doc["configuration"]["root_module"]["resources"] += extra["configuration"]["root_module"]["resources"]
    pool = next(x for x in _changed(tmp_path, doc).estimate.lines if x.resource == "kubernetes_manifest.gpu_nodepool")
    assert ec2_on_demand_price("g6e.xlarge", "us-east-1") == 1.861
    assert round(pool.floor, 2) == round(H * 1.861 + 300 * 0.08, 2)


def test_nodepools_a_chart_renders_are_listed_not_guessed(tmp_path: Path) -> None:
    values = {"nodePools": {"gpu": {"limits": {"nvidia.com/gpu": 8}}}}
    doc = gpu_cost_plan()
    extra = plan(
        Block(
            "helm_release.pools",
            "helm_release",
            {"chart": const("karpenter-nodepools"), "values": const([json.dumps(values)])},
            [
                Instance(
                    "helm_release.pools",
                    {
                        "name": "pools",
                        "chart": "karpenter-nodepools",
                        "values": [json.dumps(values)],
                        "set": [],
                        "set_list": [],
                        "set_sensitive": [],
                    },
                )
            ],
            provider="helm",
        )
    )
    doc["resource_changes"] += extra["resource_changes"]
    doc["configuration"]["root_module"]["resources"] += extra["configuration"]["root_module"]["resources"]
    reason = _reasons(_changed(tmp_path, doc))["helm_release.pools"]
    assert reason.startswith("chart 'karpenter-nodepools' renders NodePools from its values")


def test_a_launch_template_named_by_the_node_group_gives_the_disk(tmp_path: Path) -> None:
    doc = gpu_cost_plan()
    _after(doc, "aws_eks_node_group.gpu")["launch_template"] = [{"name": "gpu-nodes", "version": "1"}]
    change = next(c for c in doc["resource_changes"] if c["address"] == "aws_eks_node_group.gpu")
    change["change"]["after_unknown"].pop("launch_template")
    config = next(
        r for r in doc["configuration"]["root_module"]["resources"] if r["address"] == "aws_eks_node_group.gpu"
    )
    config["expressions"]["launch_template"] = [{"name": const("gpu-nodes"), "version": const("1")}]
    line = next(x for x in _changed(tmp_path, doc).estimate.lines if x.resource == "aws_eks_node_group.gpu")
    assert "200 GiB gp3" in line.how


@pytest.mark.parametrize("path", REAL_PLANS, ids=lambda p: p.name)
def test_each_real_plan_is_priced_or_says_what_it_could_not_price(path: Path) -> None:
    from mlplatform.policies.sources.terraform import load_terraform_plan

    own_region = plan_region(load_terraform_plan(path))
    for region in {"us-east-1", own_region or "us-east-1"}:
        cost = terraform_cost(path, region, TODAY)
        # no silent $0: every line shown carries money; every resource of a priced type is a line or listed
        assert all(line.priced and line.ceiling > 0 for line in cost.estimate.lines), path.name
        assert all(n.reason for n in cost.not_priced)
        assert cost.estimate.lines or cost.not_priced or cost.no_charge or cost.not_counted


def test_the_real_plans_add_up_to_what_they_declare() -> None:
    summary = {}
    for path in REAL_PLANS:
        cost = terraform_cost(path, "us-east-1", TODAY)
        summary[path.stem] = (len(cost.estimate.lines), cost.estimate.total("ceiling"), len(cost.not_priced))
    assert summary["checkov_plan_resources_ids"] == (3, 219.0, 0)  # three EKS control planes, 3 x $73
    # one node group of one t3.medium (the EKS default) with the default 20 GiB disk
    assert summary["checkov_eks_node_group_remote_access"] == (1, round(H * 0.0416 + 20 * 0.08, 2), 0)
    assert summary["infracost_example_plan"][2] == 5  # 2 EC2 instances, 2 Lambda functions, 1 bucket


if __name__ == "__main__":
    EXAMPLE.write_text(_example_text(), encoding="utf-8")
    print(f"wrote {EXAMPLE.relative_to(ROOT)}")


def _policy(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    from mlplatform.policies.cli import main

    code = main(["--format", "json", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_policy_and_cost_give_one_budget_answer_on_a_terraform_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplatform.mlp.cli import main

    config = tmp_path / "budget.json"
    config.write_text(
        json.dumps({"all": "advisory", "mlp-budget": {"enforcementLevel": "mandatory", "monthlyBudgetUsd": 1000}})
    )
    ceiling = terraform_cost(EXAMPLE, today=TODAY).estimate.total("ceiling")
    code, out = _policy(monkeypatch, capsys, "--terraform-plan", str(EXAMPLE), "--config", str(config))
    (budget,) = [v for v in json.loads(out)["violations"] if v["rule"] == "mlp-budget"]
    # The figure `mlp cost --terraform-plan` shows, not the rule's reading of the bare resources.
    assert code == 1 and f"is ${ceiling:,.2f}, over the budget of $1,000.00" in budget["message"]

    # Moved to a region without price data: both commands fail closed with the same message (exit 2).
    doc = json.loads(EXAMPLE.read_text())
    doc["configuration"]["provider_config"]["aws"]["expressions"]["region"] = const("eu-central-1")
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(doc))
    code, out = _policy(monkeypatch, capsys, "--terraform-plan", str(moved), "--config", str(config))
    assert (
        code == 2
        and "no price data for region eu-central-1" in out
        and "mlp prices refresh --regions eu-central-1" in out
    )
    monkeypatch.setattr("sys.argv", ["mlp", "cost", "--terraform-plan", str(moved), "-f", "json"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    message = err.split(f"error: {moved}: ", 1)[1].strip()
    assert message in out  # the policy printed the same message
    # A labelled fallback when asked for, the same figure as in us-east-1.
    code, out = _policy(
        monkeypatch, capsys, "--terraform-plan", str(moved), "--config", str(config), "--price-region", "us-east-1"
    )
    assert code == 1 and f"${ceiling:,.2f} (priced at us-east-1 rates: fallback for eu-central-1)" in out

    # No region anywhere: the budget cannot be priced, exit 2 naming the key; --region answers it.
    del doc["configuration"]["provider_config"]["aws"]["expressions"]["region"]
    moved.write_text(json.dumps(doc))
    code, out = _policy(monkeypatch, capsys, "--terraform-plan", str(moved), "--config", str(config))
    assert code == 2 and "configuration.provider_config.aws.expressions.region" in out and "--region" in out
    code, out = _policy(
        monkeypatch, capsys, "--terraform-plan", str(moved), "--config", str(config), "--region", "us-east-1"
    )
    assert code == 1 and f"is ${ceiling:,.2f}, over" in out
