"""GPU node pools: pure builders, the upstream Karpenter schemas, and the pools in the shipped stacks' plans."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.catalog import versions
from mlplatform.infra.gpu_pools import documents
from mlplatform.infra.gpu_pools.documents import PoolSpec
from mlplatform.mlp.planner import Plan
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


def _controller_policy() -> Any:
    """The Karpenter controller policy for a prod-like cluster in one account and region."""
    return json.loads(
        documents.karpenter_controller_policy(
            partition="aws",
            region="us-east-1",
            account_id="123456789012",
            cluster_name="mlp-prod",
            node_role_arn="arn:aws:iam::123456789012:role/node",
            queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        )
    )


def test_controller_policy_is_scoped() -> None:
    policy = _controller_policy()
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
            if "capacity_reservation" in pool:  # reserved first, on-demand only as the configured fallback
                fallback = pool["capacity_reservation"].get("on_demand_fallback", False)
                assert capacity["karpenter.sh/capacity-type"] == (
                    ["on-demand", "reserved"] if fallback else ["reserved"]
                )
                terms = node_classes[name]["capacityReservationSelectorTerms"]
                assert terms == [{"id": pool["capacity_reservation"]["id"]}]
            else:
                assert capacity["karpenter.sh/capacity-type"] == sorted(pool["capacity_types"])
                assert "capacityReservationSelectorTerms" not in node_classes[name]
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


def test_prod_training_pool_launches_into_its_reservation_with_karpenter(plans: dict[str, Plan]) -> None:
    """Prod's ODCR pool: Karpenter selects the reservation by id and launches `reserved` capacity only, in the
    reservation's AZ, up to 16 GPUs, and removes nodes only when they are empty."""
    plan = plans["prod"]
    node_class = object_of(plan.get("nodepools-training-nodeclass"))
    assert node_class["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0a1b2c3d4e5f60718"}]
    # Karpenter launches into a reservation only through a subnet of its AZ: every private subnet is listed.
    subnets = [s.inputs for s in plan.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("network-private-")]
    assert len(node_class["spec"]["subnetSelectorTerms"]) == len(subnets) == 3
    assert "us-east-1a" in {s["availabilityZone"] for s in subnets}
    pool = object_of(plan.get("nodepools-training-nodepool"))
    spec = pool["spec"]
    requirements = {r["key"]: (r["operator"], r["values"]) for r in spec["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ("In", ["reserved"])  # on_demand_fallback: false
    assert requirements["node.kubernetes.io/instance-type"] == ("In", ["p5.48xlarge"])
    assert requirements["topology.kubernetes.io/zone"] == ("In", ["us-east-1a"])
    assert spec["limits"] == {"nvidia.com/gpu": "16", "cpu": "384"}  # 2 x p5.48xlarge: 16 GPUs, 2 x 192 vCPUs
    assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty" and spec["disruption"]["consolidateAfter"] == "30m"
    assert spec["template"]["spec"]["nodeClassRef"]["name"] == "training"
    assert validate_custom_resource(node_class) == [] and validate_custom_resource(pool) == []
    # No managed node group, launch template or warm placeholders for it: it scales from zero on pending pods.
    assert [g.name for g in plan.of_type("aws:eks/nodeGroup:NodeGroup")] == ["cluster-system"]
    names = {r.name for r in plan.resources}
    assert "nodepools-training-lt" not in names and "nodepools-training-warm-capacity" not in names


def test_rays_h100_group_lands_on_the_reserved_pools_nodes(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    cluster = object_of(plan.get("ray-training"))
    (h100,) = [g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "h100"]
    pod = h100["template"]["spec"]
    assert pod["nodeSelector"] == {documents.POOL_LABEL: "training"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    node_pool = object_of(plan.get("nodepools-training-nodepool"))["spec"]["template"]
    # The NodePool labels its nodes with exactly what the group selects, and the group tolerates its taint.
    assert node_pool["metadata"]["labels"][documents.POOL_LABEL] == "training"
    (taint,) = node_pool["spec"]["taints"]
    assert any(
        t["key"] == taint["key"] and t["effect"] == taint["effect"] and t["operator"] == "Exists"
        for t in pod["tolerations"]
    )
    assert (h100["minReplicas"], h100["maxReplicas"]) == (0, 2)  # scaled from zero by Ray's autoscaler


def _reserved(**overrides: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "name": "training",
        "provisioner": "karpenter",
        "instance_types": ("p5.48xlarge",),
        "max_gpus": 16,
        "ami_alias": "al2023@v20260724",
        "capacity_reservation_id": "cr-0123456789abcdef0",
        "capacity_reservation_kind": "odcr",
    }
    base.update(overrides)
    return PoolSpec(**base)


def _capacity_requirements(manifest: dict[str, Any]) -> dict[str, list[str]]:
    return {r["key"]: r["values"] for r in manifest["spec"]["template"]["spec"]["requirements"]}


@pytest.mark.parametrize(
    ("overrides", "capacity_types", "zone"),
    [
        ({}, ["reserved"], None),
        ({"on_demand_fallback": True}, ["on-demand", "reserved"], None),
        ({"capacity_reservation_zone": "us-east-1b"}, ["reserved"], ["us-east-1b"]),
        ({"capacity_reservation_kind": "capacity_block", "on_demand_fallback": True}, ["on-demand", "reserved"], None),
    ],
)
def test_reserved_node_pool_allows_reserved_capacity_and_optional_on_demand(
    overrides: dict[str, Any], capacity_types: list[str], zone: list[str] | None
) -> None:
    manifest = documents.gpu_node_pool(_reserved(**overrides), LABELS)
    requirements = _capacity_requirements(manifest)
    assert requirements["karpenter.sh/capacity-type"] == capacity_types
    assert requirements.get("topology.kubernetes.io/zone") == zone
    assert manifest["spec"]["limits"]["nvidia.com/gpu"] == "16"
    assert validate_custom_resource(manifest) == []


def test_a_pool_without_a_reservation_keeps_its_capacity_types() -> None:
    # capacity_types are Karpenter's own values; a zone without a reservation pins nothing.
    manifest = documents.gpu_node_pool(_pool(capacity_reservation_zone="us-east-1a"), LABELS)
    requirements = _capacity_requirements(manifest)
    assert requirements["karpenter.sh/capacity-type"] == ["on-demand", "spot"]
    assert "topology.kubernetes.io/zone" not in requirements


def test_node_class_selects_capacity_reservations_by_id_alone() -> None:
    manifest = documents.ec2_node_class(
        name="training",
        ami_alias="al2023@v20260724",
        ami_family="al2023",
        node_role_name="node-role",
        subnet_ids=["subnet-1", "subnet-2", "subnet-3"],
        security_group_ids=["sg-1"],
        disk_size_gib=1000,
        tags={"team": "ml"},
        capacity_reservation_ids=["cr-0123456789abcdef0", "cr-0fedcba9876543210"],
    )
    terms = manifest["spec"]["capacityReservationSelectorTerms"]
    assert terms == [{"id": "cr-0123456789abcdef0"}, {"id": "cr-0fedcba9876543210"}]
    assert validate_custom_resource(manifest) == []
    # The CRD's CEL rules, which the schema check does not evaluate: each term selects by id, tags or
    # instanceMatchCriteria, and `id` stands alone in its term.
    assert all(set(term) == {"id"} for term in terms)
    wrong = {**manifest, "spec": {**manifest["spec"], "capacityReservationSelectorTerms": [{"id": "CR-1"}]}}
    assert any("does not match" in e for e in validate_custom_resource(wrong))
    plain = documents.ec2_node_class(
        name="inference",
        ami_alias="al2023@v20260724",
        ami_family="al2023",
        node_role_name="node-role",
        subnet_ids=["subnet-1"],
        security_group_ids=["sg-1"],
        disk_size_gib=300,
        tags={},
    )
    assert "capacityReservationSelectorTerms" not in plain["spec"]


def test_controller_policy_grants_what_reservations_need() -> None:
    """aws/karpenter-provider-aws website/content/en/v1.14/getting-started/getting-started-with-karpenter/
    cloudformation.yaml (as of 1d927085, 2026-08-21): RunInstances and CreateFleet on capacity-reservation/*,
    DescribeCapacityReservations among the region-scoped reads."""
    policy = _controller_policy()
    statements = {s["Sid"]: s for s in policy["Statement"]}
    launch = statements["AllowScopedEC2InstanceAccessActions"]
    assert launch["Action"] == ["ec2:RunInstances", "ec2:CreateFleet"] and "Condition" not in launch
    assert "arn:aws:ec2:us-east-1:*:capacity-reservation/*" in launch["Resource"]
    reads = statements["AllowRegionalReadActions"]
    assert "ec2:DescribeCapacityReservations" in reads["Action"]
    assert reads["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert documents.INTERRUPTION_EVENTS["capacity-reservation-interruption"] == (
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
    )


# --- managed node groups on a reservation (the other mechanism) ---------------------------------------------


def _node_group_plan(pool: PoolSpec, zones: list[str] | None) -> Plan:
    """GpuPoolsCloud alone, under the planner's mocks, with three private subnets in us-east-1a/b/c."""
    import pulumi

    from mlplatform.infra.gpu_pools import GpuPoolsCloud, GpuPoolsCloudArgs
    from tests.conftest import plan_component

    def build() -> None:
        GpuPoolsCloud(
            "nodepools",
            GpuPoolsCloudArgs(
                cluster_name="mlp-x",
                label="mlp-x",
                private_subnet_ids=pulumi.Output.from_input(["subnet-a", "subnet-b", "subnet-c"]),
                private_subnet_zones=zones,
                node_group_role_arn="arn:aws:iam::123456789012:role/nodes",
                pools=[pool],
                karpenter=False,
            ),
        )

    return plan_component(build)


def _node_group(**overrides: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "provisioner": "node_group",
        "min_gpus": 8,
        "capacity_reservation_zone": "us-east-1b",
    }
    base.update(overrides)
    return _reserved(**base)


def test_a_reserved_node_group_is_placed_in_its_reservations_az_only() -> None:
    plan = _node_group_plan(_node_group(), ["us-east-1a", "us-east-1b", "us-east-1c"])
    group = plan.get("nodepools-training").inputs
    assert group["subnetIds"] == ["subnet-b"]
    # No autoscaler: min_gpus (8 = one p5.48xlarge) is what runs; desiredSize is the same and then ignored.
    assert group["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 2}
    assert group["capacityType"] == "ON_DEMAND" and group["instanceTypes"] == ["p5.48xlarge"]
    assert group["labels"][documents.POOL_LABEL] == "training"
    template = plan.get("nodepools-training-lt").inputs
    assert template["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123456789abcdef0"}
    }
    assert "instanceMarketOptions" not in template


def test_a_capacity_block_node_group_uses_the_capacity_block_market() -> None:
    plan = _node_group_plan(
        _node_group(capacity_reservation_kind="capacity_block"), ["us-east-1a", "us-east-1b", "us-east-1c"]
    )
    assert plan.get("nodepools-training").inputs["capacityType"] == "CAPACITY_BLOCK"
    assert plan.get("nodepools-training-lt").inputs["instanceMarketOptions"] == {"marketType": "capacity-block"}


def test_an_adopted_networks_node_group_finds_its_az_subnet_with_describe_subnets() -> None:
    # Without the subnets' AZs (an adopted network) the group asks EC2 (aws.ec2.get_subnets by subnet-id and
    # availability-zone); the planner answers adopted ids as lying in us-east-1a, b, c in list order.
    plan = _node_group_plan(_node_group(capacity_reservation_zone="us-east-1c"), None)
    assert plan.get("nodepools-training").inputs["subnetIds"] == ["subnet-c"]


def test_a_node_group_without_a_reservation_zone_spans_every_private_subnet() -> None:
    plan = _node_group_plan(_node_group(capacity_reservation_id=None, capacity_reservation_zone=None), None)
    assert plan.get("nodepools-training").inputs["subnetIds"] == ["subnet-a", "subnet-b", "subnet-c"]


def test_a_reservation_zone_without_a_subnet_is_a_clear_error() -> None:
    with pytest.raises(ValueError) as error:
        documents.subnets_in_zone("training", "us-east-1d", ["subnet-a", "subnet-b"], ["us-east-1a", "us-east-1b"])
    assert str(error.value) == (
        "gpu_pools.training.capacity_reservation.availability_zone: none of the stack's private subnets is in "
        "us-east-1d (they are in us-east-1a, us-east-1b); use a reservation in one of the stack's AZs "
        "(`mlp preflight` checks this before a deploy)"
    )
    assert documents.subnets_in_zone(
        "t", "us-east-1a", ["s-1", "s-2", "s-3"], ["us-east-1a", "us-east-1b", "us-east-1a"]
    ) == [
        "s-1",
        "s-3",
    ]


def test_karpenter_is_installed_pinned_with_interruption_handling(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    crds, controller = plan.get("nodepools-karpenter-crd").inputs, plan.get("nodepools-karpenter").inputs
    assert (crds["chart"], crds["version"]) == (versions.chart("karpenter-crd").name, "1.14.1")
    assert controller["version"] == "1.14.1" and controller["skipCrds"] is True
    queue = plan.get("nodepools-interruption-queue").inputs
    assert controller["values"]["settings"] == {
        "clusterName": "mlp-prod",
        "interruptionQueue": queue["name"],
        "featureGates": {"reservedCapacity": True},  # the training pool launches into its ODCR
    }
    assert controller["values"]["serviceAccount"]["name"] == "karpenter"
    # The region from the stack's aws:region: the controller cannot read it from IMDS (hop limit 1).
    assert controller["values"]["controller"]["env"] == [{"name": "AWS_REGION", "value": "us-east-1"}]
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


def test_karpenter_gets_its_region_through_the_charts_env_value() -> None:
    values = documents.karpenter_values(
        cluster_name="mlp-x",
        interruption_queue="q",
        region="eu-west-1",
        replicas=2,
        system_node_selector={"node.mlplatform.io/role": "system"},
    )
    # charts/karpenter@1.14.1 has no region value; templates/deployment.yaml appends `controller.env` as it is.
    assert values["controller"]["env"] == [{"name": "AWS_REGION", "value": "eu-west-1"}]
    assert values["settings"] == {
        "clusterName": "mlp-x",
        "interruptionQueue": "q",
        "featureGates": {"reservedCapacity": True},
    }


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
