"""EFA for GPU pools that ask for it (`gpu_pools.<pool>.efa`), checked for what each party will do with the plan.

- Config: only types that take EFA, one EFA-per-GPU ratio, workers with a whole number of interfaces.
- Karpenter v1.14.1: the EC2NodeClass is valid against the upstream CRD and lists no `networkInterfaces`. Karpenter
  adds every EFA interface of the type when a pending pod requests `vpc.amazonaws.com/efa` (launchtemplate.go
  generateNetworkInterfaces). So the test checks that the pods request it, within what the node offers. The
  class selects the placement group and carries the EFA security group beside the cluster's.
- EC2: the EFA group admits all traffic among its members, in and out. A node group's launch template lists one
  `efa` interface per EFA card, in both groups.
- The EFA device plugin: on the pool's nodes (its nodeSelector matches the NodePool's labels, its toleration the
  NodePool's taint), in a namespace Pod Security lets it run privileged.
- The pods: requests equal limits (the API server refuses an extended resource requested otherwise), the
  libfabric environment, and still Pod Security `restricted`.
- `mlp cost` does not change (EFA has no price).
- `mlp preflight` checks EC2's own EFA facts and the group named in config. moto serves DescribeInstanceTypes
  (with EfaInfo) and the offerings. It has no placement groups and no DescribeCapacityReservations, so those two
  are answered by hooks on the client.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.config import ConfigError, PlatformConfig, validate_config
from mlplatform.infra.gpu_pools import documents
from mlplatform.infra.gpu_pools.documents import EFA_ENV, EFA_LABEL, EFA_RESOURCE
from mlplatform.infra.specs import pool_specs
from mlplatform.mlp.cost import estimate_plan
from mlplatform.mlp.k8s_schema import object_of
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.preflight import StackNetwork, check_efa
from mlplatform.mlp.stackfile import Project, load_stack
from tests.aws_server import answer_operation
from tests.k8s_schema import validate_custom_resource
from tests.test_ray_tenancy import _restricted_violations

SOURCE = "stacks/Pulumi.test.yaml"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"


def _issues(config: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, SOURCE)
    assert info.value.source == SOURCE
    return {i.key_path(): i.message for i in info.value.issues}


def _pools(config: dict[str, Any]) -> dict[str, Any]:
    pools: dict[str, Any] = config["ml-platform:gpu_pools"]
    return pools


def _with_efa_pool(
    config: dict[str, Any], name: str, instance_type: str, zone: str = "us-east-1a", **pool: Any
) -> dict[str, Any]:
    """`config` with an efa pool `name` of one instance type, without a reservation, in `zone`; the budget's GPU
    cap raised to hold it."""
    _pools(config)[name] = {
        "instance_types": [instance_type],
        "max_gpus": 16,
        "efa": True,
        "availability_zone": zone,
        **pool,
    }
    config["ml-platform:budget"]["max_gpus"] = 64
    return config


# --- config -----------------------------------------------------------------------------------------------------


def test_efa_is_refused_on_types_without_it_and_the_error_names_those_with_it(stack_config: Any) -> None:
    config = stack_config("prod")
    _pools(config)["inference"]["efa"] = True  # g6e.xlarge..12xlarge take none or one; g6e.48xlarge takes 4
    issues = _issues(config)
    message = issues["gpu_pools.inference.instance_types"]
    assert "g6e.2xlarge, g6e.xlarge take no EFA interface" in message
    assert "here: g6e.12xlarge, g6e.48xlarge" in message


def test_efa_types_must_give_one_ratio_of_interfaces_to_gpus(stack_config: Any) -> None:
    config = stack_config("prod")
    _pools(config)["inference"].update(instance_types=["g6e.12xlarge", "g6e.48xlarge"], efa=True)
    message = _issues(config)["gpu_pools.inference.instance_types"]
    assert "g6e.12xlarge (1 EFA / 4 GPUs), g6e.48xlarge (4 EFA / 8 GPUs)" in message


def test_a_worker_gets_a_whole_number_of_interfaces(stack_config: Any) -> None:
    config = stack_config("prod")
    _pools(config)["inference"].update(instance_types=["g6e.48xlarge"], efa=True)  # 4 EFA / 8 GPUs
    config["ml-platform:ray"]["clusters"]["training"]["gpu_workers"]["l40s"] = {
        "pool": "inference",
        "gpus_per_worker": 1,
        "max_replicas": 1,
        "cpu": "8",
        "memory": "64Gi",
    }
    message = _issues(config)["ray.clusters.training.gpu_workers.l40s.gpus_per_worker"]
    assert "1/2 EFA interfaces per GPU" in message and "use a multiple of 2 GPUs per worker" in message


@pytest.mark.parametrize(
    ("change", "path", "part"),
    [
        ({"efa": False}, "gpu_pools.training.placement_group", "applies to efa pools"),
        ({"time_slicing_replicas": 2}, "gpu_pools.training.efa", "a time-sliced pool shares GPUs"),
        (
            {"capacity_reservation": {"kind": "capacity_block", "price_usd": 90000, "start_date": "2026-12-10"}},
            "gpu_pools.training.placement_group",
            "already placed together in an EC2 UltraCluster",
        ),
        ({"placement_group": "bad name"}, "gpu_pools.training.placement_group", "is not valid"),
    ],
)
def test_placement_group_and_efa_misuse_is_refused(
    stack_config: Any, change: dict[str, Any], path: str, part: str
) -> None:
    config = stack_config("staging" if "time_slicing_replicas" in change else "prod")
    config.setdefault("ml-platform:gpu_pools", {})
    pool = _pools(config).setdefault("training", copy_prod_training(stack_config))
    reservation = change.pop("capacity_reservation", None)
    if reservation:
        pool["capacity_reservation"].update(reservation, end_date="2026-12-20")
        pool["capacity_reservation"].pop("on_demand_fallback", None)
    pool.update(change)
    assert part in _issues(config).get(path, ""), _issues(config)


def copy_prod_training(stack_config: Any) -> dict[str, Any]:
    pool: dict[str, Any] = _pools(stack_config("prod"))["training"]
    return pool


# --- the prod plan: Karpenter, EC2, the device plugin and the pods -------------------------------------------------


def _by_name(plan: Plan, type_token: str, name: str) -> dict[str, Any]:
    (found,) = [object_of(r) for r in plan.of_type(type_token) if r.inputs["metadata"]["name"] == name]
    return found


def test_the_training_node_class_is_valid_selects_the_group_and_carries_the_efa_group(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    node_class = _by_name(plan, NODE_CLASS, "training")
    assert validate_custom_resource(node_class) == []
    spec = node_class["spec"]
    assert spec["placementGroupSelector"] == {"name": "mlp-prod-training"}  # the ODCR's group, named in config
    # No explicit interfaces: the CRD allows only `interface`/`efa-only`, Karpenter adds `efa` ones for EFA pods.
    assert "networkInterfaces" not in spec
    efa_group = plan.get("nodepools-efa")
    cluster_group = plan.get("cluster-eks").outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert spec["securityGroupSelectorTerms"] == [{"id": cluster_group}, {"id": efa_group.outputs["id"]}]
    # The inference pool has no EFA: neither the group nor a placement group.
    inference = _by_name(plan, NODE_CLASS, "inference")["spec"]
    assert inference["securityGroupSelectorTerms"] == [{"id": cluster_group}]
    assert "placementGroupSelector" not in inference
    # The check sees the CRD's constraints on the selector (an id is `pg-...`).
    broken = json.loads(json.dumps(node_class))
    broken["spec"]["placementGroupSelector"] = {"id": "mlp-prod-training"}
    assert validate_custom_resource(broken)


def test_the_efa_group_admits_all_traffic_among_its_members_only(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    group = plan.get("nodepools-efa")
    assert "ingress" not in group.inputs and "egress" not in group.inputs  # rules are separate resources
    rules = {r.name: r for r in plan.resources if r.name in ("nodepools-efa-in", "nodepools-efa-out")}
    assert {r.type.rsplit(":", 1)[1] for r in rules.values()} == {"SecurityGroupIngressRule", "SecurityGroupEgressRule"}
    for rule in rules.values():
        assert rule.inputs["ipProtocol"] == "-1"
        assert rule.inputs["securityGroupId"] == rule.inputs["referencedSecurityGroupId"] == group.outputs["id"]
        assert "cidrIpv4" not in rule.inputs
    assert not [r for r in plans["dev"].resources if r.name.startswith("nodepools-efa")]  # dev has no EFA pool


def test_the_device_plugin_runs_on_the_efa_nodes_and_only_there(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    release = plan.get("nodepools-efa-device-plugin").inputs
    assert (release["chart"], release["version"]) == ("aws-efa-k8s-device-plugin", "v0.5.30")
    assert release["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    namespace = plan.get("nodepools-efa-device-plugin-namespace").inputs["metadata"]
    assert namespace["name"] == release["namespace"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"  # the chart's pod is
    values = release["values"]
    for name in ("training", "inference"):
        template = _by_name(plan, NODE_POOL, name)["spec"]["template"]
        labels, taints = template["metadata"]["labels"], template["spec"]["taints"]
        selected = all(labels.get(k) == v for k, v in values["nodeSelector"].items())
        assert selected == (name == "training"), name
        tolerated = all(
            any(t["key"] == taint["key"] and t["effect"] == taint["effect"] for t in values["tolerations"])
            for taint in taints
        )
        assert tolerated, name
    assert values["nodeSelector"] == {EFA_LABEL: "true"}


def test_ray_workers_on_the_efa_pool_request_the_interfaces_of_their_gpus(plans: dict[str, Plan]) -> None:
    (cluster,) = [object_of(r) for r in plans["prod"].resources if r.type == "kubernetes:ray.io/v1:RayCluster"]
    groups = {g["groupName"]: g["template"]["spec"] for g in cluster["spec"]["workerGroupSpecs"]}
    h100 = groups["h100"]
    (container,) = h100["containers"]
    resources = container["resources"]
    assert resources["requests"] == resources["limits"]  # an extended resource is never overcommitted
    p5 = gpu_catalog.gpu_instance("p5.48xlarge")
    assert p5 is not None and p5.efa_interfaces == 32
    # 8 of the node's 8 GPUs: all 32 interfaces; no more than the node has, or Karpenter would find no type.
    assert resources["limits"][EFA_RESOURCE] == "32" and resources["limits"]["nvidia.com/gpu"] == "8"
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert {k: env.get(k) for k in EFA_ENV} == EFA_ENV
    assert _restricted_violations(h100) == []  # EFA needs no capability here
    # The CPU group has no EFA request or libfabric settings.
    cpu = groups["cpu"]["containers"][0]
    assert EFA_RESOURCE not in cpu["resources"]["limits"]
    assert not {e["name"] for e in cpu.get("env", [])} & set(EFA_ENV)


def test_efa_costs_nothing(project: Project, stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("prod")
    training = _pools(config)["training"]
    training.pop("efa")
    training.pop("placement_group")
    without = plan_stack(dataclasses.replace(load_stack(project, "prod"), config=config))
    day = dt.date(2026, 12, 4)
    with_efa = estimate_plan(plan_stack(load_stack(project, "prod")), "us-east-1", day)
    plain = estimate_plan(without, "us-east-1", day)
    totals = [(e.total("floor"), e.total("expected"), e.total("ceiling")) for e in (with_efa, plain)]
    assert totals[0] == totals[1] and totals[0][0] > 0
    # Line by line too: the EFA group, its rules and the device plugin add no priced line.
    assert {(x.resource, x.floor, x.ceiling) for x in with_efa.lines} == {
        (x.resource, x.floor, x.ceiling) for x in plain.lines
    }


def test_a_rayjob_on_an_efa_pool_requests_its_interfaces(project: Project, stack_config: Any) -> None:
    from tests.test_train_rayjob import _kuberay_pods, _rayjob

    config = _with_efa_pool(stack_config("dev"), "multinode", "p4d.24xlarge")
    config["ml-platform:pipelines"]["templates"]["ray_job"] = {
        "pool": "multinode",
        "workers": 2,
        "gpus_per_worker": 8,
        "cpu": "90",
        "memory": "1000Gi",
    }
    config["ml-platform:tenants"]["research"]["quota"].update(gpus=16, cpu="256", memory="4Ti")
    plan = plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))
    job = _rayjob(plan)
    assert validate_custom_resource(job) == []
    worker = _kuberay_pods(job)["gpu"]
    (ray,) = worker["containers"]
    assert ray["resources"]["limits"][EFA_RESOURCE] == ray["resources"]["requests"][EFA_RESOURCE] == "4"
    assert {e["name"]: e.get("value") for e in ray["env"] if e["name"] in EFA_ENV} == EFA_ENV
    assert _restricted_violations(worker) == []
    head = _kuberay_pods(job)["head"]["containers"][0]
    assert EFA_RESOURCE not in head["resources"]["limits"]  # the head is on the CPU pool


# --- a pool without a reservation, and a node group ------------------------------------------------------------


def _efa_variant(stack_config: Any, **pool: Any) -> dict[str, Any]:
    """Prod with a second training pool on p4d.24xlarge (4 EFA / 8 GPUs), without a reservation."""
    settings = {"ami_version": "v20260724", "consolidation_policy": "WhenEmpty", **pool}
    return _with_efa_pool(stack_config("prod"), "multinode", "p4d.24xlarge", "us-east-1b", **settings)


def test_a_pool_without_a_reservation_gets_its_own_cluster_placement_group(project: Project, stack_config: Any) -> None:
    plan = plan_stack(dataclasses.replace(load_stack(project, "prod"), config=_efa_variant(stack_config)))
    group = plan.get("nodepools-multinode-placement")
    assert group.inputs["strategy"] == "cluster" and group.inputs["name"] == "mlp-prod-multinode"
    selector = _by_name(plan, NODE_CLASS, "multinode")["spec"]["placementGroupSelector"]
    assert selector == {"name": group.inputs["name"]}
    assert group.inputs["tags"]["cost-center"] == "ml-platform"  # cost tags
    # The group lives in one AZ, so the pool's nodes do: a zone requirement on the NodePool.
    requirements = _by_name(plan, NODE_POOL, "multinode")["spec"]["template"]["spec"]["requirements"]
    assert {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b"]} in requirements
    config = _efa_variant(stack_config)
    del _pools(config)["multinode"]["availability_zone"]
    message = _issues(config)["gpu_pools.multinode.availability_zone"]
    assert "is required for an efa pool without a reservation" in message


def test_an_efa_node_group_lists_every_efa_interface_in_both_groups(project: Project, stack_config: Any) -> None:
    config = _efa_variant(stack_config, provisioner="node_group", min_gpus=8, release_version="1.35.3-20260724")
    for key in ("ami_version", "consolidation_policy"):
        _pools(config)["multinode"].pop(key)
    plan = plan_stack(dataclasses.replace(load_stack(project, "prod"), config=config))
    template = plan.get("nodepools-multinode-lt")
    interfaces = template.inputs["networkInterfaces"]
    assert [(i["networkCardIndex"], i["deviceIndex"], i["interfaceType"]) for i in interfaces] == [
        (0, 0, "efa"),
        (1, 1, "efa"),
        (2, 1, "efa"),
        (3, 1, "efa"),
    ]  # p4d.24xlarge: 4 EFA cards, the first carrying the primary interface
    efa_group = plan.get("nodepools-efa").outputs["id"]
    cluster_group = plan.get("cluster-eks").outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert all(i["securityGroups"] == [cluster_group, efa_group] for i in interfaces)
    assert template.inputs["placement"]["groupName"] == "mlp-prod-multinode"
    # The template names the group by its Output: it is created after the placement group.
    assert "nodepools-multinode-placement" in template.dependencies()
    # The group is in one AZ: so is the node group (its private subnet of us-east-1b only).
    group = plan.get("nodepools-multinode")
    assert len(group.inputs["subnetIds"]) == 1


def test_pool_specs_follow_the_config(stack_config: Any) -> None:
    cfg = validate_config(_with_efa_pool(stack_config("dev"), "p", "p5.48xlarge", max_gpus=8), SOURCE)
    spec = next(s for s in pool_specs(cfg) if s.name == "p")
    assert spec.efa and spec.efa_devices(8) == 32 and spec.efa_devices(4) == 16
    assert spec.placement_group == f"{cfg.cluster_name}-p" and spec.creates_placement_group
    assert documents.pool_node_labels(spec, {})[EFA_LABEL] == "true"
    shared = next(s for s in pool_specs(cfg) if s.name == "shared")
    assert not shared.efa and shared.efa_devices(1) == 0 and shared.placement_group is None
    assert EFA_LABEL not in documents.pool_node_labels(shared, {})


# --- preflight --------------------------------------------------------------------------------------------------


def _prod_cfg(stack_config: Any, **training: Any) -> PlatformConfig:
    config = stack_config("prod")
    _pools(config)["training"].update(training)
    return validate_config(config, SOURCE)


def _network() -> StackNetwork:
    return StackNetwork(zones=("us-east-1a", "us-east-1b", "us-east-1c"), subnets=(), adopted=False)


def _groups(found: dict[str, dict[str, str]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def answer(params: dict[str, Any]) -> dict[str, Any]:
        (name,) = params["GroupNames"]
        if name not in found:
            from botocore.exceptions import ClientError

            error = {"Error": {"Code": "InvalidPlacementGroup.Unknown", "Message": f"{name} is unknown"}}
            raise ClientError(error, "DescribePlacementGroups")  # type: ignore[arg-type]
        return {"PlacementGroups": [{"GroupName": name, **found[name]}]}

    return answer


def _reservation_in(group: str | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    arn = {"PlacementGroupArn": f"arn:aws:ec2:us-east-1:444455556666:placement-group/{group}"} if group else {}
    return lambda params: {
        "CapacityReservations": [{"CapacityReservationId": params["CapacityReservationIds"][0], **arn}]
    }


@pytest.fixture
def moto_ec2(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_preflight_passes_the_prod_pool_in_its_reservations_group(stack_config: Any, moto_ec2: Any) -> None:
    groups = answer_operation(moto_ec2, "DescribePlacementGroups", _groups({"mlp-prod-training": CLUSTER}))
    answer_operation(moto_ec2, "DescribeCapacityReservations", _reservation_in("mlp-prod-training"))
    findings = check_efa(_prod_cfg(stack_config), moto_ec2, _network())
    assert [(f.severity, f.subject) for f in findings] == [("ok", "gpu_pools.training")]
    # EC2's own count (moto's bundled DescribeInstanceTypes), in the reservation's AZ only.
    assert findings[0].message == "p5.48xlarge (32 EFA interfaces) offered with EFA in us-east-1a"
    assert groups == [{"GroupNames": ["mlp-prod-training"]}]


CLUSTER = {"Strategy": "cluster", "State": "available"}


@pytest.mark.parametrize(
    ("found", "held_in", "part"),
    [
        ({}, "mlp-prod-training", "placement group mlp-prod-training does not exist"),
        ({"mlp-prod-training": {"Strategy": "spread", "State": "available"}}, "mlp-prod-training", "a spread group"),
        ({"mlp-prod-training": CLUSTER}, "other-group", "was created in placement group other-group"),
        ({"mlp-prod-training": CLUSTER}, None, "was created in no placement group"),
    ],
)
def test_preflight_refuses_a_group_that_is_missing_of_another_kind_or_not_the_reservations(
    stack_config: Any, moto_ec2: Any, found: dict[str, dict[str, str]], held_in: str | None, part: str
) -> None:
    answer_operation(moto_ec2, "DescribePlacementGroups", _groups(found))
    answer_operation(moto_ec2, "DescribeCapacityReservations", _reservation_in(held_in))
    errors = [f for f in check_efa(_prod_cfg(stack_config), moto_ec2, _network()) if f.severity == "error"]
    assert len(errors) == 1 and part in errors[0].message, errors
    assert errors[0].subject == "gpu_pools.training: placement group mlp-prod-training"
    assert "gpu_pools.training.placement_group" in errors[0].fix


def test_preflight_needs_the_efa_type_in_the_reservations_az(stack_config: Any, moto_ec2: Any) -> None:
    # moto offers p5en.48xlarge in us-east-1a and 1c only: a reservation in 1b can hold none of it.
    config = stack_config("prod")
    training = _pools(config)["training"]
    training.update(instance_types=["p5en.48xlarge"])
    training.pop("placement_group")
    training["capacity_reservation"].update(instance_type="p5en.48xlarge", availability_zone="us-east-1b")
    config["ml-platform:ray"]["clusters"]["training"]["gpu_workers"]["h100"]["memory"] = "1800Gi"
    findings = check_efa(validate_config(config, SOURCE), moto_ec2, _network())
    (error,) = [f for f in findings if f.severity == "error"]
    assert error.message == (
        "GPU pods of pool `training` that request EFA will stay Pending: no EFA type of the pool is offered in "
        "us-east-1b"
    )


def test_preflight_reports_an_instance_type_ec2_says_takes_no_efa(stack_config: Any, moto_ec2: Any) -> None:
    # A catalog older than EC2: the type lost EFA (or the region's EC2 says otherwise). The answer is EC2's.
    def no_efa(params: dict[str, Any]) -> dict[str, Any]:
        return {
            "InstanceTypes": [
                {"InstanceType": t, "NetworkInfo": {"EfaSupported": False}} for t in params["InstanceTypes"]
            ]
        }

    answer_operation(moto_ec2, "DescribeInstanceTypes", no_efa)
    answer_operation(moto_ec2, "DescribePlacementGroups", _groups({"mlp-prod-training": CLUSTER}))
    answer_operation(moto_ec2, "DescribeCapacityReservations", _reservation_in("mlp-prod-training"))
    errors = [f for f in check_efa(_prod_cfg(stack_config), moto_ec2, _network()) if f.severity == "error"]
    assert next(e.message for e in errors) == (
        "GPU pods of pool `training` that request EFA will stay Pending: EC2 says p5.48xlarge does not support EFA"
    )


def test_preflight_checks_nothing_without_efa_pools(stack_config: Any, moto_ec2: Any) -> None:
    assert check_efa(validate_config(stack_config("dev"), SOURCE), moto_ec2, _network()) == []


def test_an_efa_pool_keeps_no_warm_nodes_and_serves_no_models(stack_config: Any) -> None:
    # Warm placeholders and model servers request no EFA: Karpenter would launch their nodes without EFA, and
    # the training workers, which request it, could not use them.
    config = stack_config("prod")
    _pools(config)["training"]["min_gpus"] = 16
    assert "warm-capacity placeholders request no EFA" in _issues(config)["gpu_pools.training.min_gpus"]
    config = stack_config("prod")
    config["ml-platform:vllm"]["models"]["embedder"]["pool"] = "training"
    message = _issues(config)["vllm.models.embedder.pool"]
    assert "a model server requests no EFA" in message and "serve from a pool without efa" in message


def test_preflight_asks_type_by_type_when_the_region_does_not_know_one(stack_config: Any, moto_ec2: Any) -> None:
    # EC2 refuses a whole DescribeInstanceTypes call for one type the region lacks (InvalidInstanceType): the
    # check then asks for each type, and the unknown one is a finding of its pool, not the end of preflight.
    from botocore.exceptions import ClientError

    def answer(params: dict[str, Any]) -> dict[str, Any]:
        if "p5en.48xlarge" in params["InstanceTypes"]:
            error = {"Error": {"Code": "InvalidInstanceType", "Message": "p5en.48xlarge is not supported here"}}
            raise ClientError(error, "DescribeInstanceTypes")  # type: ignore[arg-type]
        return {
            "InstanceTypes": [
                {"InstanceType": t, "NetworkInfo": {"EfaSupported": True, "EfaInfo": {"MaximumEfaInterfaces": 32}}}
                for t in params["InstanceTypes"]
            ]
        }

    answer_operation(moto_ec2, "DescribeInstanceTypes", answer)
    answer_operation(moto_ec2, "DescribePlacementGroups", _groups({"mlp-prod-training": CLUSTER}))
    answer_operation(moto_ec2, "DescribeCapacityReservations", _reservation_in("mlp-prod-training"))
    config = _with_efa_pool(stack_config("prod"), "multinode", "p5en.48xlarge", ami_version="v20260724")
    findings = check_efa(validate_config(config, SOURCE), moto_ec2, _network())
    errors = {f.subject: f.message for f in findings if f.severity == "error"}
    assert errors["gpu_pools.multinode: p5en.48xlarge"].endswith("EC2 says p5en.48xlarge does not support EFA")
    assert ("ok", "gpu_pools.training") in {(f.severity, f.subject) for f in findings}


def test_preflight_needs_the_efa_type_in_the_pools_own_az(stack_config: Any, moto_ec2: Any) -> None:
    # A pool with a placement group of its own launches in its availability_zone only: moto offers p5en.48xlarge in
    # us-east-1a and 1c, so a pool in 1b gets none, though other AZs of the stack have it.
    answer_operation(moto_ec2, "DescribePlacementGroups", _groups({"mlp-prod-training": CLUSTER}))
    answer_operation(moto_ec2, "DescribeCapacityReservations", _reservation_in("mlp-prod-training"))
    config = _with_efa_pool(stack_config("prod"), "multinode", "p5en.48xlarge", "us-east-1b", ami_version="v20260724")
    findings = check_efa(validate_config(config, SOURCE), moto_ec2, _network())
    errors = {f.subject: f.message for f in findings if f.severity == "error"}
    assert errors["gpu_pools.multinode"].endswith("no EFA type of the pool is offered in us-east-1b")
    _pools(config)["multinode"]["availability_zone"] = "us-east-1c"
    findings = check_efa(validate_config(config, SOURCE), moto_ec2, _network())
    assert ("ok", "gpu_pools.multinode") in {(f.severity, f.subject) for f in findings}
