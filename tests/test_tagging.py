"""Cost tags end to end: every taggable AWS resource, launch template tag specifications, EC2NodeClass tags,
EBS CSI volume tags, and cost labels on Kubernetes objects."""

from __future__ import annotations

import importlib
import inspect
import json
from functools import cache

import pytest

from mlplatform.infra.tagging import COST_LABEL_KEYS, cost_labels, effective_tags, missing_required_tags, platform_tags
from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS
from mlplatform.mlp.planner import Plan
from tests.conftest import STACKS


@cache
def takes_tags(type_token: str) -> bool:
    """Whether a pulumi_aws resource type accepts `tags`, read from the SDK itself."""
    _, module_path, class_name = type_token.split(":")
    module = importlib.import_module("pulumi_aws." + module_path.split("/")[0].replace("-", "_"))
    cls = getattr(module, class_name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_effective_tags_merge_provider_defaults_under_own_tags() -> None:
    assert effective_tags({"team": "a", "owner": "x"}, {"team": "b"}) == {"team": "b", "owner": "x"}
    assert missing_required_tags({"team": "a"}) == ["cost-center", "environment", "project", "owner"]


def test_platform_tags_add_the_stack_and_keep_config_tags() -> None:
    tags = platform_tags({"team": "ml", "cost-center": "cc"}, "prod")
    assert tags["pulumi-stack"] == "prod" and tags["team"] == "ml" and tags["managed-by"] == "pulumi/ml-platform"


def test_cost_labels_are_valid_label_values() -> None:
    labels = cost_labels({"team": "ML Platform/Core", "cost-center": "cc:42", "environment": "prod"})
    assert labels == {"team": "ML-Platform-Core", "cost-center": "cc-42", "environment": "prod"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_aws_resource_has_every_required_tag(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    providers = {
        r.name: r.inputs.get("defaultTags", {}).get("tags", {})
        for r in plan.resources
        if r.type == "pulumi:providers:aws"
    }
    checked = 0
    for r in plan.resources:
        if not (r.custom and r.type.startswith("aws:")) or not takes_tags(r.type):
            continue
        checked += 1
        tags = effective_tags(providers[r.provider or ""], r.inputs.get("tags"))
        assert not missing_required_tags(tags), f"{r.name} ({r.type}) lacks {missing_required_tags(tags)}"
    assert checked > 40


@pytest.mark.parametrize("stack", STACKS)
def test_tags_reach_what_default_tags_cannot(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    for lt in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        kinds = {s["resourceType"] for s in lt.inputs["tagSpecifications"]}
        assert kinds == {"instance", "volume", "network-interface"}, lt.name
        for spec in lt.inputs["tagSpecifications"]:
            assert not missing_required_tags(spec["tags"]), f"{lt.name} {spec['resourceType']}"
    node_classes = plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    assert node_classes
    for nc in node_classes:
        tags = nc.inputs["spec"]["tags"]
        assert not missing_required_tags(tags), nc.name
        assert tags["mlplatform.io/node-pool"] == nc.inputs["metadata"]["name"]
        # keys Karpenter reserves (the CRD's CEL rules would reject them)
        assert not any(
            k.startswith("kubernetes.io/cluster") or k in ("karpenter.sh/nodepool", "eks:eks-cluster-name")
            for k in tags
        )
    (ebs,) = [a for a in plan.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver"]
    volume_tags = json.loads(ebs.inputs["configurationValues"])["controller"]["extraVolumeTags"]
    assert not missing_required_tags(volume_tags)


@pytest.mark.parametrize("stack", STACKS)
def test_kubernetes_objects_carry_cost_labels(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    labelled = [
        r
        for r in plan.resources
        if r.type.startswith("kubernetes:") and r.custom and r.type != "kubernetes:helm.sh/v3:Release"
    ]
    assert labelled
    for r in labelled:
        labels = r.inputs["metadata"].get("labels", {})
        assert all(labels.get(k) for k in COST_LABEL_KEYS), f"{r.name} lacks cost labels: {labels}"
    for pool in plan.of_type("kubernetes:karpenter.sh/v1:NodePool"):
        node_labels = pool.inputs["spec"]["template"]["metadata"]["labels"]
        assert all(node_labels.get(k) for k in COST_LABEL_KEYS), pool.name


def test_required_tags_constant_is_what_the_issue_asks() -> None:
    assert set(REQUIRED_COST_TAGS) >= {"cost-center", "team", "environment", "project", "owner"}
