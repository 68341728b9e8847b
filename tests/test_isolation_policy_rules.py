"""The four tenant-isolation rules beyond their one-change cases (tests/test_policy_rules.py): what each admits,
what each refuses, and their findings on the shipped stacks' plans."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlplatform.mlp.planner import Plan
from mlplatform.policies.config import PolicyConfig
from mlplatform.policies.engine import evaluate
from mlplatform.policies.registry import rule_by_id
from mlplatform.policies.run import resources_from_plan
from tests.test_policy_rules import DELETE, TODAY, stack

NEW_RULES = (
    "kubernetes-rbac-no-group-edit-admin",
    "kubernetes-namespace-default-deny",
    "aws-s3-bucket-lake-vpc-endpoint-only",
    "aws-lb-controller-internal-only",
)


def _run(rule_id: str, changes: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, str]]:
    report = evaluate(stack(changes), [rule_by_id(rule_id)], PolicyConfig(default_level="mandatory"), today=TODAY)
    return [(v.resource, v.message) for v in report.violations]


def test_the_rules_are_registered_with_their_severity() -> None:
    assert {r: rule_by_id(r).severity for r in NEW_RULES} == {
        "kubernetes-rbac-no-group-edit-admin": "critical",
        "kubernetes-namespace-default-deny": "medium",
        "aws-s3-bucket-lake-vpc-endpoint-only": "high",
        "aws-lb-controller-internal-only": "critical",
    }


# --- (a) group bindings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"roleRef.name": "view"},  # read-only: not one of the three
        {"subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "team-a"}, {"kind": "User", "name": "u"}]},
        {"roleRef.kind": "Role", "roleRef.name": "edit"},  # a Role named edit is the namespace's own
    ],
)
def test_group_bindings_admitted(change: dict[str, Any]) -> None:
    assert _run("kubernetes-rbac-no-group-edit-admin", {"team-binding": {**change}}) == []


def test_group_bindings_refused_and_allow_listed() -> None:
    admin = {"team-binding": {"roleRef.name": "admin"}}
    assert _run("kubernetes-rbac-no-group-edit-admin", admin) == [
        ("team-binding", "group(s) ml-a get the built-in admin role in namespace team-a")
    ]
    rule = rule_by_id("kubernetes-rbac-no-group-edit-admin")
    config = PolicyConfig(default_level="mandatory", params={rule.id: {"allowedBindings": ["team-a/team-members"]}})
    assert evaluate(stack(admin), [rule], config, today=TODAY).violations == ()


# --- (b) default deny -----------------------------------------------------------------------------------------


def test_default_deny_admitted_variants() -> None:
    rule = "kubernetes-namespace-default-deny"
    assert _run(rule, {"default-deny": {"spec.podSelector": {"matchLabels": {}}}}) == []
    assert _run(rule, {"default-deny": {"spec.policyTypes": ["Egress", "Ingress"], "spec.egress": []}}) == []
    # kube-system is exempt: EKS owns it
    assert _run(rule, {"namespace": {"metadata.name": "kube-system"}, "default-deny": {"type": "x"}}) == []


def test_default_deny_refused_variants() -> None:
    rule, message = (
        "kubernetes-namespace-default-deny",
        ("namespace team-a has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)"),
    )
    for change in (
        {"spec.podSelector": {"matchLabels": {"app": "x"}}},
        {"spec.egress": [{"to": [{"podSelector": {}}]}]},
        {"type": "kubernetes:core/v1:ConfigMap"},
    ):
        assert _run(rule, {"default-deny": change}) == [("namespace", message)], change


# --- (c) lake perimeter ---------------------------------------------------------------------------------------


def _bucket_policy(*statements: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"bucket-policy": {"policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}}


def test_lake_perimeter_admitted_variants() -> None:
    rule = "aws-s3-bucket-lake-vpc-endpoint-only"
    vpc = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"StringNotEqualsIfExists": {"aws:SourceVpc": "vpc-1"}},
    }
    assert _run(rule, _bucket_policy(vpc)) == []
    # A bucket that is no lake zone is not this rule's business.
    assert _run(rule, {"bucket": {"tags": {"team": "ml"}}, **_bucket_policy()}) == []


def test_lake_perimeter_refused_variants() -> None:
    rule = "aws-s3-bucket-lake-vpc-endpoint-only"
    message = (
        "the curated lake bucket's policy does not deny object access from outside the VPC (no Deny with "
        "StringNotEquals on aws:SourceVpce or aws:SourceVpc)"
    )
    allow_with_condition = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}},
    }
    writes_only = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}},
    }
    for policy in (_bucket_policy(allow_with_condition), _bucket_policy(writes_only)):
        assert _run(rule, policy) == [("bucket", message)]
    assert _run(rule, {"bucket-policy": {"type": "x"}}) == [("bucket", message)]


# --- (d) internal load balancers --------------------------------------------------------------------------------


def test_internal_load_balancers_refused_variants() -> None:
    rule = "aws-lb-controller-internal-only"
    assert _run(rule, {"alb-controller": {"values.ingressClassParams": DELETE}}) == [
        (
            "alb-controller",
            "the controller's IngressClass does not fix the scheme: set ingressClassParams {create: true, spec: "
            "{scheme: internal}}",
        )
    ]
    assert _run(rule, {"alb-controller": {"values.defaultLoadBalancerScheme": "internet-facing"}}) == [
        ("alb-controller", "defaultLoadBalancerScheme is internet-facing")
    ]
    params = {"type": "kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams", "metadata": {"name": "public"}}
    open_params = {**params, "spec": {"scheme": "internet-facing"}}
    assert _run(rule, {"namespace": open_params}) == [
        ("namespace", "IngressClassParams public is internet-facing for every namespace (no namespaceSelector)")
    ]
    scoped = {
        **params,
        "spec": {
            "scheme": "internet-facing",
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}},
        },
    }
    assert _run(rule, {"namespace": scoped}) == []


def test_services_are_checked_only_where_the_controller_runs() -> None:
    rule = "aws-lb-controller-internal-only"
    public = {"service": {"spec.type": "LoadBalancer"}}
    assert _run(rule, public) == [
        (
            "service",
            "Service mlflow is of type LoadBalancer without "
            "service.beta.kubernetes.io/aws-load-balancer-scheme: internal",
        )
    ]
    internal = {
        "service": {
            "spec.type": "LoadBalancer",
            "metadata.annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
        }
    }
    assert _run(rule, internal) == []
    # Without the controller, mlp-no-public-ml-endpoints covers Services.
    assert _run(rule, {**public, "alb-controller": {"chart": "other"}}) == []


# --- the shipped stacks -----------------------------------------------------------------------------------------


def _findings(plan: Plan, rule_id: str) -> list[tuple[str, str]]:
    resources, _ = resources_from_plan(json.loads(plan.to_json()))
    report = evaluate(resources, [rule_by_id(rule_id)], PolicyConfig(default_level="mandatory"), today=TODAY)
    return [(v.resource, v.message) for v in report.violations]


@pytest.mark.parametrize("stack_name", ["dev", "staging", "prod"])
def test_the_shipped_stacks(plans: dict[str, Plan], stack_name: str) -> None:
    plan = plans[stack_name]
    for rule_id in NEW_RULES:
        assert _findings(plan, rule_id) == [], rule_id
    # The ALB controller (prod only) is what the load balancer rule reads there.
    controllers = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if "load-balancer" in r.inputs["chart"]]
    assert len(controllers) == (1 if stack_name == "prod" else 0)


def test_a_platform_namespace_without_its_default_deny_is_found(plans: dict[str, Plan]) -> None:
    body = json.loads(plans["dev"].to_json())
    body["resources"] = [
        r
        for r in body["resources"]
        if not (
            r["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
            and r["inputs"]["metadata"] == {**r["inputs"]["metadata"], "namespace": "mlflow", "name": "default-deny"}
        )
    ]
    resources, _ = resources_from_plan(body)
    rule = rule_by_id("kubernetes-namespace-default-deny")
    report = evaluate(resources, [rule], PolicyConfig(default_level="mandatory"), today=TODAY)
    assert [(v.resource, v.message) for v in report.violations] == [
        (
            "mlflow-namespace",
            "namespace mlflow has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)",
        )
    ]
