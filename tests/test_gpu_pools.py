"""GPU node pools: pure builders, the upstream Karpenter schemas, and the pools in the shipped stacks' plans."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.catalog import gpu as gpu_catalog
from infra.catalog import versions
from infra.gpu_pools import documents
from infra.gpu_pools.documents import PoolSpec
from mlp.planner import Plan
from tests.k8s_schema import object_of, validate_custom_resource, validate_plan

LABELS = {"team": "ml", "cost-center": "cc", "environment": "dev"}


def _pool(**overrides: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "name": "inference",
        "provisioner": "karpenter",
        "instance_families": ("g6e",),
        "capacity_types": ("spot", "on-demand"),
        "max_gpus": 8,
        "ami_alias": "al2023@v20260724",
    }
    base.update(overrides)
    return PoolSpec(**base)


def test_node_pool_taints_limits_and_consolidates() -> None:
    manifest = documents.gpu_node_pool(_pool(weight=40), LABELS)
    spec = manifest["spec"]
    assert spec["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert spec["limits"]["nvidia.com/gpu"] == "8"
    assert spec["disruption"] == {
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "consolidateAfter": "10m",
        "budgets": [{"nodes": "1"}],
    }
    assert spec["template"]["spec"]["expireAfter"] == "720h"
    assert spec["weight"] == 40
    requirements = {r["key"]: r["values"] for r in spec["template"]["spec"]["requirements"]}
    assert requirements["karpenter.k8s.aws/instance-family"] == ["g6e"]
    assert requirements["karpenter.sh/capacity-type"] == ["on-demand", "spot"]
    assert requirements["kubernetes.io/arch"] == ["amd64"]
    assert validate_custom_resource(manifest) == []


@given(family=st.sampled_from(gpu_catalog.nvidia_families()), max_gpus=st.integers(min_value=1, max_value=64))
def test_cpu_limit_never_binds_before_the_gpu_limit(family: str, max_gpus: int) -> None:
    pool = _pool(instance_families=(family,), max_gpus=max_gpus)
    limit = documents.cpu_limit_for(pool)
    for itype in pool.candidate_types():
        nodes = max_gpus // itype.gpu_count
        assert nodes * itype.vcpus <= limit, f"{itype.instance_type}: {nodes} nodes need more than {limit} vCPUs"


def test_node_class_pins_the_ami_and_hardens_the_node() -> None:
    manifest = documents.ec2_node_class(
        name="inference",
        ami_alias="al2023@v20260724",
        ami_family="al2023",
        node_role_name="node-role",
        subnet_ids=["subnet-1", "subnet-2"],
        security_group_ids=["sg-1"],
        disk_size_gib=300,
        tags=documents.node_class_tags({"team": "ml", "kubernetes.io/cluster/x": "owned"}, "inference"),
    )
    spec = manifest["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260724"}]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (device,) = spec["blockDeviceMappings"]
    assert device["ebs"]["encrypted"] is True and device["ebs"]["volumeSize"] == "300Gi"
    assert spec["tags"] == {"team": "ml", "mlplatform.io/node-pool": "inference"}  # reserved key dropped
    assert spec["subnetSelectorTerms"] == [{"id": "subnet-1"}, {"id": "subnet-2"}]
    assert validate_custom_resource(manifest) == []


def test_bottlerocket_keeps_images_on_a_data_volume() -> None:
    manifest = documents.ec2_node_class(
        name="br",
        ami_alias="bottlerocket@1.64.0",
        ami_family="bottlerocket",
        node_role_name="r",
        subnet_ids=["subnet-1"],
        security_group_ids=["sg-1"],
        disk_size_gib=200,
        tags={"team": "ml"},
    )
    devices = {d["deviceName"]: d["ebs"]["volumeSize"] for d in manifest["spec"]["blockDeviceMappings"]}
    assert devices == {"/dev/xvda": "4Gi", "/dev/xvdb": "200Gi"}
    assert validate_custom_resource(manifest) == []
    assert not documents.PoolSpec(name="br", provisioner="karpenter", ami_family="bottlerocket").needs_device_plugin


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("spec", "disruption", "consolidationPolicy"), "Sometimes", "is not one of"),
        (("spec", "template", "spec", "expireAfter"), "30 days", "does not match"),
        (("spec", "template", "spec", "taints"), [{"key": "nvidia.com/gpu", "effect": "NoPlease"}], "is not one of"),
        (("spec", "limits", "nvidia.com/gpu"), "eight", "does not match"),
        (("spec", "weight"), 500, "is greater than the maximum"),
        (("spec", "template", "spec", "nodeClassRefs"), {}, "Additional properties are not allowed"),
    ],
)
def test_schema_check_catches_broken_node_pools(path: tuple[str, ...], value: Any, error: str) -> None:
    manifest = documents.gpu_node_pool(_pool(), LABELS)
    node: Any = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = validate_custom_resource(manifest)
    assert any(error in e for e in errors), errors


def test_controller_policy_is_scoped() -> None:
    policy = json.loads(
        documents.karpenter_controller_policy(
            partition="aws",
            region="us-east-1",
            account_id="123456789012",
            cluster_name="mlp-prod",
            node_role_arn="arn:aws:iam::123456789012:role/node",
            queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        )
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["AllowPassingInstanceRole"]["Resource"] == "arn:aws:iam::123456789012:role/node"
    assert statements["AllowInterruptionQueueActions"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:q"
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a != "*" and not a.endswith(":*") for a in actions)
        if statement["Resource"] == "*":  # only reads, or region-scoped reads
            assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions), statement["Sid"]
    for sid in ("AllowScopedDeletion", "AllowScopedEC2InstanceActionsWithTags", "AllowScopedResourceCreationTagging"):
        conditions = json.dumps(statements[sid]["Condition"])
        assert "kubernetes.io/cluster/mlp-prod" in conditions and "karpenter.sh/nodepool" in conditions


def test_time_slicing_config_and_node_labels() -> None:
    pool = _pool(name="shared", time_slicing_replicas=4)
    values = documents.device_plugin_values([pool])
    assert values["config"]["default"] == "default"
    assert "replicas: 4" in values["config"]["map"]["shared-time-sliced"]
    labels = documents.pool_node_labels(pool, LABELS)
    assert labels["nvidia.com/device-plugin.config"] == "shared-time-sliced"
    assert labels[documents.DEVICE_PLUGIN_LABEL] == "true"
    affinity = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert affinity["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] == documents.DEVICE_PLUGIN_LABEL


# --- in the shipped stacks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_kubernetes_object_in_every_plan_validates(plans: dict[str, Plan], stack: str) -> None:
    assert validate_plan(plans[stack]) == {}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_configured_pool_is_in_the_plan(plans: dict[str, Plan], stack_config: Any, stack: str) -> None:
    plan = plans[stack]
    pools = stack_config(stack)["ml-platform:gpu_pools"]
    node_pools = {
        p.inputs["metadata"]["name"]: p.inputs["spec"] for p in plan.of_type("kubernetes:karpenter.sh/v1:NodePool")
    }
    node_classes = {
        c.inputs["metadata"]["name"]: c.inputs["spec"]
        for c in plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    }
    assert "general" in node_pools and "general" in node_classes
    for name, pool in pools.items():
        if pool.get("provisioner", "karpenter") == "karpenter":
            spec = node_pools[name]
            assert spec["template"]["spec"]["taints"] == [documents.GPU_TAINT]
            assert spec["limits"]["nvidia.com/gpu"] == str(pool["max_gpus"])
            assert int(spec["limits"]["cpu"]) >= pool["max_gpus"]
            assert spec["disruption"]["consolidationPolicy"] == pool["consolidation_policy"]
            assert spec["disruption"]["consolidateAfter"] == pool["consolidate_after"]
            assert spec["template"]["spec"]["expireAfter"] == pool["expire_after"]
            capacity = {r["key"]: r["values"] for r in spec["template"]["spec"]["requirements"]}
            assert capacity["karpenter.sh/capacity-type"] == sorted(pool["capacity_types"])
            assert node_classes[name]["amiSelectorTerms"][0]["alias"].startswith("al2023@v")
            assert "@latest" not in node_classes[name]["amiSelectorTerms"][0]["alias"]
        else:
            group = plan.get(f"nodepools-{name}")
            assert group.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
            assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    general = node_pools["general"]
    assert {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "DoesNotExist"} in (
        general["template"]["spec"]["requirements"]
    )
    assert "taints" not in general["template"]["spec"]


def test_reserved_training_pool_targets_its_capacity_reservation(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    lt = plan.get("nodepools-training-lt").inputs
    assert lt["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0a1b2c3d4e5f60718"}
    }
    assert lt["metadataOptions"]["httpTokens"] == "required"
    group = plan.get("nodepools-training").inputs
    assert group["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 2}  # 16 GPUs / 8 per p5.48xlarge
    assert group["capacityType"] == "ON_DEMAND" and group["instanceTypes"] == ["p5.48xlarge"]
    assert group["labels"]["mlplatform.io/gpu-pool"] == "training"


def test_karpenter_is_installed_pinned_with_interruption_handling(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    crds, controller = plan.get("nodepools-karpenter-crd").inputs, plan.get("nodepools-karpenter").inputs
    assert (crds["chart"], crds["version"]) == (versions.chart("karpenter-crd").name, "1.14.1")
    assert controller["version"] == "1.14.1" and controller["skipCrds"] is True
    queue = plan.get("nodepools-interruption-queue").inputs
    assert controller["values"]["settings"] == {"clusterName": "mlp-prod", "interruptionQueue": queue["name"]}
    assert controller["values"]["serviceAccount"]["name"] == "karpenter"
    assert controller["values"]["nodeSelector"]["node.mlplatform.io/role"] == "system"
    assert queue["messageRetentionSeconds"] == 300 and queue["sqsManagedSseEnabled"] is True
    patterns = {
        json.loads(r.inputs["eventPattern"])["detail-type"][0]
        for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")
    }
    assert patterns == {
        "AWS Health Event",
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Capacity Reservation Instance Interruption Warning",
    }
    assert len(plan.of_type("aws:cloudwatch/eventTarget:EventTarget")) == 5
    association = plan.get("nodepools-karpenter-pod-identity").inputs
    assert (association["namespace"], association["serviceAccount"]) == ("karpenter", "karpenter")
    access = plan.get("nodepools-karpenter-node-access").inputs
    assert access["type"] == "EC2_LINUX"


def test_device_plugin_and_time_slicing_in_dev(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    plugin = plan.get("nodepools-nvidia-device-plugin").inputs
    assert (plugin["chart"], plugin["version"]) == ("nvidia-device-plugin", "0.20.0")
    assert plugin["repositoryOpts"]["repo"] == "https://nvidia.github.io/k8s-device-plugin"
    assert "replicas: 4" in plugin["values"]["config"]["map"]["shared-time-sliced"]
    (shared,) = [
        p for p in plan.of_type("kubernetes:karpenter.sh/v1:NodePool") if p.inputs["metadata"]["name"] == "shared"
    ]
    labels = shared.inputs["spec"]["template"]["metadata"]["labels"]
    assert labels["nvidia.com/device-plugin.config"] == "shared-time-sliced"


def test_prod_keeps_min_gpus_warm_with_preemptible_placeholders(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    deployment = object_of(plan.get("nodepools-inference-warm-capacity"))
    assert deployment["spec"]["replicas"] == 2  # min_gpus of the inference pool
    pod = deployment["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "gpu-warm-capacity"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["securityContext"]["runAsNonRoot"] is True
    priority = plan.get("nodepools-warm-capacity-priority").inputs
    assert priority["value"] < 0 and priority["preemptionPolicy"] == "Never"
    assert not plans["dev"].of_type("kubernetes:apps/v1:Deployment") or all(
        "warm" not in d.name for d in plans["dev"].of_type("kubernetes:apps/v1:Deployment")
    )
