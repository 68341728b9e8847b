"""Config to plan for the guardrails of issue 13: the lake's perimeter (which endpoint or VPC it keys on, the
break-glass roles, the runner's open prefix), the S3 gateway endpoint's policy (other accounts' buckets), and
load balancers that stay internal (the admission policy in every stack, the internet-facing class only where
config names a namespace). What the policies then allow or deny is evaluated in tests/test_data_perimeter.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from mlplatform.infra.data.documents import PERIMETER_SID
from mlplatform.infra.ingress.documents import INTERNET_FACING_CLASS, LOAD_BALANCER_POLICY
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.conftest import STACKS
from tests.k8s_schema import object_of

BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def _perimeters(plan: Plan) -> dict[str, dict[str, Any] | None]:
    """Per lake bucket policy (zone or access logs): its perimeter statement, or None."""
    found: dict[str, dict[str, Any] | None] = {}
    for r in plan.of_type(BUCKET_POLICY):
        if not r.name.startswith("lake-"):
            continue
        statements = json.loads(r.inputs["policy"])["Statement"]
        found[r.name] = next((s for s in statements if s.get("Sid") == PERIMETER_SID), None)
    return found


def _gateway_endpoint(plan: Plan) -> Any:
    return next(r for r in plan.of_type(ENDPOINT) if r.inputs["vpcEndpointType"] == "Gateway")


def _replan(project: Project, stack: str, config: dict[str, Any]) -> Plan:
    return plan_stack(dataclasses.replace(load_stack(project, stack), config=config))


def test_every_lake_bucket_admits_objects_through_the_stacks_own_gateway_endpoint(plans: dict[str, Plan]) -> None:
    for stack in STACKS:
        plan = plans[stack]
        endpoint_id = _gateway_endpoint(plan).outputs["id"]
        perimeters = _perimeters(plan)
        zones = {f"lake-{z}-policy" for z in ("raw", "curated", "features", "models", "artifacts")}
        assert set(perimeters) == zones | {"lake-access-logs-policy"}, stack
        for name, statement in perimeters.items():
            assert statement is not None, f"{stack}: {name} has no perimeter"
            assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
            assert statement["Condition"]["StringNotEquals"] == {"aws:SourceVpce": endpoint_id}
            assert statement["Condition"]["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}


def test_prod_names_its_break_glass_role_and_leaves_the_runners_bundles_open(plans: dict[str, Plan]) -> None:
    perimeters = _perimeters(plans["prod"])
    role = "arn:aws:iam::444455556666:role/mlp-prod-lake-break-glass"
    for statement in perimeters.values():
        assert statement is not None and statement["Condition"]["ArnNotEquals"] == {"aws:PrincipalArn": [role]}
    # prod's cluster layer is deployed by the in-VPC runner: `mlp runner` uploads its source bundle from anywhere,
    # so that prefix of the artifacts bucket (and nothing else) is outside the perimeter
    artifacts = perimeters["lake-artifacts-policy"]
    assert artifacts is not None and "Resource" not in artifacts
    assert [r.split(":::", 1)[1].split("/", 1)[1] for r in artifacts["NotResource"]] == ["deploy/cluster-layer/*"]
    raw = perimeters["lake-raw-policy"]
    assert raw is not None and "NotResource" not in raw and len(raw["Resource"]) == 2
    # dev: no runner, no break-glass role configured
    dev = _perimeters(plans["dev"])["lake-artifacts-policy"]
    assert dev is not None and "NotResource" not in dev and "ArnNotEquals" not in dev["Condition"]


def test_an_adopted_vpc_keys_the_perimeter_on_its_endpoint_or_on_the_vpc(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config("prod")
    adopt = {
        "vpc_id": "vpc-0a3f5c9e2b7d41c86",
        "private_subnet_ids": ["subnet-0c1d2e3f4a5b6c7d8", "subnet-0d2e3f4a5b6c7d8e9"],
    }
    config["ml-platform:network"] = {"adopt": dict(adopt)}
    by_vpc = _perimeters(_replan(project, "prod", config))["lake-raw-policy"]
    assert by_vpc is not None and by_vpc["Condition"]["StringNotEquals"] == {"aws:SourceVpc": "vpc-0a3f5c9e2b7d41c86"}
    config["ml-platform:network"] = {"adopt": {**adopt, "s3_gateway_endpoint_id": "vpce-0123456789abcdef0"}}
    by_endpoint = _perimeters(_replan(project, "prod", config))["lake-raw-policy"]
    assert by_endpoint is not None
    assert by_endpoint["Condition"]["StringNotEquals"] == {"aws:SourceVpce": "vpce-0123456789abcdef0"}


def test_a_dev_stack_may_turn_the_perimeter_off(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config("dev")
    config["ml-platform:data_lake"]["perimeter"] = {"enabled": False}
    assert set(_perimeters(_replan(project, "dev", config)).values()) == {None}


def test_the_gateway_endpoint_admits_the_runners_state_bucket_and_configured_read_buckets(
    plans: dict[str, Plan], project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    policy = json.loads(_gateway_endpoint(plans["prod"]).inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ThisAccountsBuckets"]["Condition"] == {"StringEquals": {"aws:ResourceAccount": "444455556666"}}
    # the runner's backend bucket (it may live in another account)
    assert by_sid["PlatformBucketsElsewhere"]["Resource"] == [
        "arn:aws:s3:::acme-pulumi-state-prod",
        "arn:aws:s3:::acme-pulumi-state-prod/*",
    ]
    assert "ConfiguredReadOnlyBuckets" not in by_sid
    dev = {s["Sid"] for s in json.loads(_gateway_endpoint(plans["dev"]).inputs["policy"])["Statement"]}
    assert dev == {"ThisAccountsBuckets", "AwsOwnedBucketsNodesRead", "ImageRegistryLayers"}
    config = stack_config("dev")
    config["ml-platform:network"]["s3_external_read_buckets"] = ["open-datasets", "common-crawl"]
    replanned = json.loads(_gateway_endpoint(_replan(project, "dev", config)).inputs["policy"])
    read = next(s for s in replanned["Statement"] if s["Sid"] == "ConfiguredReadOnlyBuckets")
    assert read["Action"] == ["s3:GetObject", "s3:ListBucket"]
    assert read["Resource"] == [
        "arn:aws:s3:::common-crawl",
        "arn:aws:s3:::common-crawl/*",
        "arn:aws:s3:::open-datasets",
        "arn:aws:s3:::open-datasets/*",
    ]


# --- load balancers ----------------------------------------------------------------------------------------------


def _named(plan: Plan, name: str) -> dict[str, Any]:
    return object_of(next(r for r in plan.resources if r.name == name))


def test_every_stack_refuses_internet_facing_load_balancer_services(plans: dict[str, Plan]) -> None:
    for stack in STACKS:
        plan = plans[stack]
        policy = _named(plan, "load-balancers-internal-policy")
        binding = _named(plan, "load-balancers-internal-policy-binding")
        assert policy["metadata"]["name"] == LOAD_BALANCER_POLICY and policy["spec"]["failurePolicy"] == "Fail"
        assert binding["spec"]["policyName"] == LOAD_BALANCER_POLICY
        assert binding["spec"]["validationActions"] == ["Deny"]
        # no namespace is exempt in the shipped stacks, and no internet-facing class exists
        assert "matchResources" not in binding["spec"], stack
        assert not [r for r in plan.resources if r.name.endswith("internet-facing-class")], stack


def test_the_controller_makes_internal_albs_whatever_an_ingress_asks(plans: dict[str, Plan]) -> None:
    release = next(r for r in plans["prod"].resources if r.name == "lb-controller-release")
    values = release.inputs["values"]
    assert values["ingressClassParams"] == {"create": True, "name": "alb-internal", "spec": {"scheme": "internal"}}
    assert values["ingressClass"] == "alb" and values["createIngressClassResource"] is True
    assert values["disableIngressClassAnnotation"] is True
    assert values["defaultLoadBalancerScheme"] == "internal"


def test_a_named_namespace_gets_the_internet_facing_class_and_is_exempt(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config("dev")
    config["ml-platform:ingress"] = {"internet_facing_namespaces": ["demo"]}
    plan = _replan(project, "dev", config)
    params = _named(plan, "lb-controller-internet-facing-params")
    assert params["spec"]["scheme"] == "internet-facing"
    assert params["spec"]["namespaceSelector"] == {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["demo"]}]
    }
    ingress_class = _named(plan, "lb-controller-internet-facing-class")
    assert ingress_class["metadata"]["name"] == INTERNET_FACING_CLASS
    assert ingress_class["spec"]["parameters"]["name"] == INTERNET_FACING_CLASS
    binding = _named(plan, "load-balancers-internal-policy-binding")
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["demo"]}]
    }
