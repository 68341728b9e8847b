"""Pure builders for the AWS Load Balancer Controller: its IAM policy (the controller's own published policy, read
from a data file with its provenance) and chart values. No resources, no I/O beyond the package data."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"

INGRESS_CLASS = "alb"
"""The IngressClass the chart creates (`ingressClass`, `createIngressClassResource`): every Ingress of the
platform names it. Its IngressClassParams `alb-internal` fixes the scheme to internal."""
INTERNAL_PARAMS = "alb-internal"
INTERNET_FACING_CLASS = "alb-internet-facing"
"""The IngressClass (and IngressClassParams) for the namespaces config allows internet-facing ALBs; only created
when `ingress.internet_facing_namespaces` names some."""
CONTROLLER = "ingress.k8s.aws/alb"
SCHEME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LEGACY_INTERNAL_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-internal"
LOAD_BALANCER_POLICY = "mlplatform-internal-load-balancers"


@cache
def _policy_file() -> dict[str, Any]:
    text = (
        resources.files("mlplatform.infra.ingress").joinpath("data", "lbc_iam_policy.json").read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


# Features the platform turns off in the chart values, so their actions leave the policy.
DROPPED_PREFIXES = ("waf-regional:", "wafv2:", "shield:", "elasticloadbalancing:SetWebAcl")


def upstream_policy() -> dict[str, Any]:
    """The IAM policy the controller's release publishes (docs/install/iam_policy.json at the pinned tag)."""
    policy: dict[str, Any] = _policy_file()["policy"]
    return policy


def controller_policy(*, partition: str, region: str, account_id: str, vpc_id: str) -> str:
    """The controller's published policy, tightened for one cluster:

    - WAF, Shield and web ACL actions removed (the chart values turn those features off);
    - security group changes limited to groups of the cluster's VPC, creation to that VPC;
    - listener and rule changes limited to load balancers of this account and region;
    - ARNs in the stack's partition, account and region instead of `*`;
    - what must stay on `*` (describe calls, tag-conditioned creation) limited to the stack's region.
    """
    arn = f"arn:{partition}"
    elb = f"{arn}:elasticloadbalancing:{region}:{account_id}"
    ec2 = f"{arn}:ec2:{region}:{account_id}"
    in_region = {"StringEquals": {"aws:RequestedRegion": region}}
    statements: list[dict[str, Any]] = []
    for original in upstream_policy()["Statement"]:
        st = json.loads(
            json.dumps(original).replace("arn:aws:", f"{arn}:").replace(":*:*:", f":{region}:{account_id}:")
        )
        actions = [a for a in _as_list(st["Action"]) if not a.startswith(DROPPED_PREFIXES)]
        if not actions:
            continue
        st["Action"] = sorted(actions)
        resources = _as_list(st["Resource"])
        condition = st.get("Condition", {})
        if resources == ["*"]:
            names = set(actions)
            if names <= {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"} and not condition:
                st["Resource"] = f"{ec2}:security-group/*"
                st["Condition"] = {"StringEquals": {"ec2:Vpc": f"{ec2}:vpc/{vpc_id}"}}
            elif names == {"ec2:CreateSecurityGroup"}:
                st["Resource"] = [f"{ec2}:security-group/*", f"{ec2}:vpc/{vpc_id}"]
            elif names & {"acm:DescribeCertificate", "cognito-idp:DescribeUserPoolClient", "iam:GetServerCertificate"}:
                scoped = {
                    "acm:DescribeCertificate": f"{arn}:acm:{region}:{account_id}:certificate/*",
                    "cognito-idp:DescribeUserPoolClient": f"{arn}:cognito-idp:{region}:{account_id}:userpool/*",
                    "iam:GetServerCertificate": f"{arn}:iam::{account_id}:server-certificate/*",
                }
                for action in sorted(names & set(scoped)):
                    statements.append({"Effect": "Allow", "Action": [action], "Resource": scoped[action]})
                # Listing calls have no resource-level permissions. IAM is global (its calls are not "in" a
                # region), so only the regional ones get the region condition.
                listing = sorted(names - set(scoped))
                regional = [a for a in listing if not a.startswith("iam:")]
                if regional:
                    statements.append(
                        {"Effect": "Allow", "Action": regional, "Resource": "*", "Condition": dict(in_region)}
                    )
                if global_ := [a for a in listing if a.startswith("iam:")]:
                    statements.append({"Effect": "Allow", "Action": global_, "Resource": "*"})
                continue
            elif all(a.startswith("elasticloadbalancing:") for a in names) and not condition:
                st["Resource"] = [
                    f"{elb}:loadbalancer/app/*/*",
                    f"{elb}:loadbalancer/net/*/*",
                    f"{elb}:listener/app/*/*/*",
                    f"{elb}:listener/net/*/*/*",
                    f"{elb}:listener-rule/app/*/*/*",
                    f"{elb}:listener-rule/net/*/*/*",
                ]
            elif not condition:
                st["Condition"] = in_region
        statements.append(st)
    for i, st in enumerate(statements):
        st["Sid"] = f"LoadBalancerController{i}"
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def policy_source() -> dict[str, str]:
    source: dict[str, str] = _policy_file()["source"]
    return source


def controller_values(
    *,
    cluster_name: str,
    region: str,
    vpc_id: str,
    replicas: int,
    node_selector: Mapping[str, str],
    default_tags: Mapping[str, str],
) -> dict[str, Any]:
    """Chart values (keys as in the chart's values.yaml at v3.5.0).

    Every ALB it creates is internal whatever an Ingress asks: the one IngressClass the chart makes (`alb`)
    points at IngressClassParams with `scheme: internal`, which the controller prefers to the Ingress's
    `alb.ingress.kubernetes.io/scheme` annotation (`buildLoadBalancerScheme`, pkg/ingress/model_build_load_balancer.go
    @v3.5.0), and the legacy `kubernetes.io/ingress.class: alb` annotation, which bypasses IngressClasses, is
    refused by the controller's webhook (`--disable-ingress-class-annotation`). Only an IngressClass the platform
    makes (`internet_facing_class`, for the namespaces config names) can ask for internet-facing. Load balancers
    of Services default to internal (`defaultLoadBalancerScheme`); `load_balancer_admission_policy` refuses the
    others. Targets are pods, TLS 1.2+, and the stack's cost tags on every load balancer."""
    values: dict[str, Any] = {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": replicas,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "nodeSelector": dict(node_selector),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "defaultLoadBalancerScheme": "internal",
        "ingressClass": INGRESS_CLASS,
        "createIngressClassResource": True,
        "ingressClassConfig": {"default": False},
        "ingressClassParams": {"create": True, "name": INTERNAL_PARAMS, "spec": {"scheme": "internal"}},
        "disableIngressClassAnnotation": True,
        "defaultTargetType": "ip",
        "defaultSSLPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "defaultTags": dict(default_tags),
        # Leave Services of type LoadBalancer alone unless they ask for this controller.
        "enableServiceMutatorWebhook": False,
        # Off, so the role needs no WAF or Shield rights (see controller_policy).
        "enableWaf": False,
        "enableWafv2": False,
        "enableShield": False,
    }
    if replicas > 1:
        values["podDisruptionBudget"] = {"maxUnavailable": 1}
    return values


def internet_facing_class(
    namespaces: Sequence[str], labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The IngressClassParams and IngressClass that let Ingresses of `namespaces` (config:
    `ingress.internet_facing_namespaces`) have an internet-facing ALB. The params' `namespaceSelector` names them
    by `kubernetes.io/metadata.name`, a label the API server sets and nobody can change; the controller refuses
    an Ingress of this class in any other namespace (`validateIngressClassParamsNamespaceRestriction`,
    pkg/ingress/class_loader.go @v3.5.0)."""
    if not namespaces:
        raise ValueError("an internet-facing IngressClass needs at least one namespace")
    params = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "IngressClassParams",
        "metadata": {"name": INTERNET_FACING_CLASS, "labels": dict(labels)},
        "spec": {
            "scheme": "internet-facing",
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(namespaces)}
                ]
            },
        },
    }
    ingress_class = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": INTERNET_FACING_CLASS, "labels": dict(labels)},
        "spec": {
            "controller": CONTROLLER,
            "parameters": {"apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": INTERNET_FACING_CLASS},
        },
    }
    return params, ingress_class


INTERNAL_SERVICE = (
    "object.spec.type != 'LoadBalancer' || (has(object.metadata.annotations) && ("
    f"('{SCHEME_ANNOTATION}' in object.metadata.annotations && "
    f"object.metadata.annotations['{SCHEME_ANNOTATION}'] == 'internal') || "
    f"('{LEGACY_INTERNAL_ANNOTATION}' in object.metadata.annotations && "
    f"object.metadata.annotations['{LEGACY_INTERNAL_ANNOTATION}'] == 'true')))"
)
"""CEL: a Service is no load balancer, or an internal one by the annotation the load balancer controller reads
(`aws-load-balancer-scheme: internal`) or the one EKS's cloud controller reads (`aws-load-balancer-internal`).
Without either, the cloud controller's Classic Load Balancer is internet-facing."""


def load_balancer_admission_policy(
    allowed_namespaces: Sequence[str], labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ValidatingAdmissionPolicy and binding that refuse a Service of type LoadBalancer that is not internal,
    in every namespace but `allowed_namespaces`: the guard for NLBs, which no IngressClass governs."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": LOAD_BALANCER_POLICY, "labels": dict(labels)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["services"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": INTERNAL_SERVICE,
                    "message": f"a Service of type LoadBalancer must be internal ({SCHEME_ANNOTATION}: internal); "
                    "only the namespaces of ingress.internet_facing_namespaces may have internet-facing ones",
                }
            ],
        },
    }
    binding: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": LOAD_BALANCER_POLICY, "labels": dict(labels)},
        "spec": {"policyName": LOAD_BALANCER_POLICY, "validationActions": ["Deny"]},
    }
    if allowed_namespaces:
        binding["spec"]["matchResources"] = {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": sorted(allowed_namespaces)}
                ]
            }
        }
    return policy, binding
