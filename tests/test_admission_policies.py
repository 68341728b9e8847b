"""The plan's ValidatingAdmissionPolicies, asked as the API server would be (tests/admission.py evaluates their CEL
with a CEL implementation): what a team member, or anyone, can and cannot create. Every stack carries the guards
of issue 13: no internet-facing load balancer Service outside the namespaces config names, no `externalIPs` on a
team's Services (CVE-2020-8554)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.admission import BINDING, POLICY, Admission, Request
from tests.conftest import STACKS
from tests.k8s_schema import object_of

SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LEGACY = "service.beta.kubernetes.io/aws-load-balancer-internal"


def _admission(plan: Plan) -> Admission:
    return Admission(
        [object_of(r) for r in plan.of_type(POLICY)],
        [object_of(r) for r in plan.of_type(BINDING)],
    )


def _namespace_labels(plan: Plan, namespace: str) -> dict[str, str]:
    """The namespace's labels as the API server holds them (it adds `kubernetes.io/metadata.name`)."""
    for r in plan.of_type("kubernetes:core/v1:Namespace"):
        manifest = object_of(r)
        if manifest["metadata"]["name"] == namespace:
            return {**manifest["metadata"].get("labels", {}), "kubernetes.io/metadata.name": namespace}
    return {"kubernetes.io/metadata.name": namespace}


def _service(kind: str = "ClusterIP", annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "svc"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {"type": kind, "ports": [{"port": 443}], **spec},
    }


def _create(plan: Plan, namespace: str, obj: dict[str, Any]) -> Request:
    return Request("CREATE", "services", obj, namespace, _namespace_labels(plan, namespace))


@pytest.mark.parametrize("stack", STACKS)
def test_no_namespace_gets_an_internet_facing_load_balancer_service(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    admission = _admission(plan)
    for namespace in ("team-research", "serving", "mlflow", "default", "kube-system"):
        bare = admission.review(_create(plan, namespace, _service("LoadBalancer")))
        assert not bare.allowed, namespace
        assert bare.messages == (
            "mlplatform-internal-load-balancers: a Service of type LoadBalancer must be internal "
            f"({SCHEME}: internal); only the namespaces of ingress.internet_facing_namespaces may have "
            "internet-facing ones",
        )
        facing = _service("LoadBalancer", {SCHEME: "internet-facing"})
        assert not admission.review(_create(plan, namespace, facing)).allowed
        assert admission.review(_create(plan, namespace, _service("LoadBalancer", {SCHEME: "internal"}))).allowed
        # EKS's cloud controller reads the legacy annotation instead
        assert admission.review(_create(plan, namespace, _service("LoadBalancer", {LEGACY: "true"}))).allowed
        assert admission.review(_create(plan, namespace, _service("ClusterIP"))).allowed
    # an update that turns an internal Service public is refused too
    update = Request(
        "UPDATE",
        "services",
        _service("LoadBalancer", {SCHEME: "internet-facing"}),
        "serving",
        _namespace_labels(plan, "serving"),
        old=_service("LoadBalancer", {SCHEME: "internal"}),
    )
    assert not admission.review(update).allowed


@pytest.mark.parametrize("stack", STACKS)
def test_team_services_cannot_claim_external_ips(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    admission = _admission(plan)
    hijack = _service(externalIPs=["10.0.12.7"])
    verdict = admission.review(_create(plan, "team-research", hijack))
    assert not verdict.allowed
    assert verdict.messages == (
        "mlplatform-tenant-services: team namespaces may not set spec.externalIPs on a Service (CVE-2020-8554)",
    )
    assert admission.review(_create(plan, "team-research", _service(externalIPs=[]))).allowed
    assert admission.review(_create(plan, "team-research", _service())).allowed
    # the policy selects team namespaces by their tenant label: a platform namespace is not bound by it
    assert admission.review(_create(plan, "serving", hijack)).allowed


def test_a_namespace_config_names_may_have_an_internet_facing_service(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config("dev")
    config["ml-platform:ingress"] = {"internet_facing_namespaces": ["demo"]}
    plan = plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))
    admission = _admission(plan)
    facing = _service("LoadBalancer", {SCHEME: "internet-facing"})
    assert admission.review(_create(plan, "demo", facing)).allowed
    assert not admission.review(_create(plan, "team-research", facing)).allowed
    assert not admission.review(_create(plan, "serving", facing)).allowed


def test_the_evaluator_can_say_no_for_the_right_reason() -> None:
    policy = {
        "metadata": {"name": "p"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                ]
            },
            "validations": [{"expression": "object.spec.hostNetwork != true", "message": "no host network"}],
        },
    }
    binding = {
        "metadata": {"name": "b"},
        "spec": {
            "policyName": "p",
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"tier": "team"}}},
        },
    }
    admission = Admission([policy], [binding])
    host = {"spec": {"hostNetwork": True}}
    assert not admission.review(Request("CREATE", "pods", host, "a", {"tier": "team"})).allowed
    assert admission.review(Request("CREATE", "pods", host, "a", {"tier": "platform"})).allowed  # not bound there
    assert admission.review(Request("UPDATE", "pods", host, "a", {"tier": "team"})).allowed  # CREATE only
    assert admission.review(Request("CREATE", "pods", {"spec": {}}, "a", {"tier": "team"})).allowed is False  # error
    audit = {**binding, "spec": {**binding["spec"], "validationActions": ["Audit"]}}
    assert Admission([policy], [audit]).review(Request("CREATE", "pods", host, "a", {"tier": "team"})).allowed
    with pytest.raises(ValueError, match="names no planned policy"):
        Admission([], [binding])
