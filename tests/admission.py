"""What the API server's ValidatingAdmissionPolicy plugin decides for a request, from the policies and bindings of
a plan: the tests ask it as a user would ask the cluster ("may I create this Service in that namespace?").

Semantics (Kubernetes 1.35, `staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating`, and the API
reference for ValidatingAdmissionPolicy / ValidatingAdmissionPolicyBinding):
- a policy applies to a request that matches its `matchConstraints.resourceRules` (API group, version, operation,
  resource; `*` matches all) and, when set, its `matchConstraints.namespaceSelector`;
- each binding of the policy applies when the request also matches the binding's `matchResources` (its
  `namespaceSelector`, and its `resourceRules` when given); a namespace selector is matched against the labels of
  the request's namespace, and ignored for cluster-scoped objects;
- then every `matchConditions` expression must be true, and every `validations` expression is evaluated with
  `object`, `oldObject`, `request` and `namespaceObject`; a false one fails the request with its message when the
  binding's `validationActions` holds `Deny`. An expression that errors follows `failurePolicy` (Fail: denied).

The expressions are evaluated with cel-python, a CEL implementation; Kubernetes' CEL extension libraries
(`quantity`, `url`, `authorizer`, ...) are not available, and the platform's policies use none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"


@dataclass(frozen=True)
class Request:
    """One admission request: `operation` on `resource` (plural, e.g. `services`) of `group`/`version`."""

    operation: str
    resource: str
    obj: Mapping[str, Any]
    namespace: str | None = None
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    group: str = ""
    version: str = "v1"
    old: Mapping[str, Any] | None = None
    user: str = "kubernetes-admin"
    """`request.userInfo.username`: who asks (a service account is `system:serviceaccount:<namespace>:<name>`)."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    messages: tuple[str, ...] = ()
    """Why it was denied: `<policy>: <message>` for each failed validation."""


def _requirement(req: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = req["key"], req["operator"], req.get("values", [])
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown selector operator {op!r}")


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: unset or empty matches everything; matchLabels and matchExpressions are ANDed."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(_requirement(r, labels) for r in selector.get("matchExpressions") or [])


def _rule_matches(rule: Mapping[str, Any], request: Request) -> bool:
    def holds(values: Iterable[str], value: str) -> bool:
        values = list(values)
        return "*" in values or value in values

    return (
        holds(rule.get("apiGroups", ["*"]), request.group)
        and holds(rule.get("apiVersions", ["*"]), request.version)
        and holds(rule.get("operations", ["*"]), request.operation)
        and holds(rule.get("resources", ["*"]), request.resource)
    )


def _in_scope(match: Mapping[str, Any] | None, request: Request) -> bool:
    if not match:
        return True
    rules = match.get("resourceRules")
    if rules is not None and not any(_rule_matches(r, request) for r in rules):
        return False
    if any(_rule_matches(r, request) for r in match.get("excludeResourceRules") or []):
        return False
    if request.namespace is not None:
        return label_selector_matches(match.get("namespaceSelector"), request.namespace_labels)
    return True


class Admission:
    """The ValidatingAdmissionPolicies and bindings of a plan (their `object_of` manifests)."""

    def __init__(self, policies: Iterable[Mapping[str, Any]], bindings: Iterable[Mapping[str, Any]]) -> None:
        self.policies = {p["metadata"]["name"]: p for p in policies}
        self.bindings = list(bindings)
        self._env = celpy.Environment()
        for binding in self.bindings:
            name = binding["spec"]["policyName"]
            if name not in self.policies:
                raise ValueError(f"binding {binding['metadata']['name']} names no planned policy {name!r}")

    def _evaluate(self, expression: str, activation: Mapping[str, Any]) -> Any:
        program = self._env.program(self._env.compile(expression))
        return program.evaluate(dict(activation))

    def review(self, request: Request) -> Verdict:
        ns_object = (
            {"metadata": {"name": request.namespace, "labels": dict(request.namespace_labels)}}
            if request.namespace
            else None
        )
        activation = {
            "object": celpy.json_to_cel(dict(request.obj)),
            "oldObject": celpy.json_to_cel(dict(request.old) if request.old else None),
            "request": celpy.json_to_cel(
                {
                    "operation": request.operation,
                    "namespace": request.namespace or "",
                    "resource": request.resource,
                    "userInfo": {"username": request.user},
                }
            ),
            "namespaceObject": celpy.json_to_cel(ns_object),
        }
        failures: list[str] = []
        for binding in self.bindings:
            policy = self.policies[binding["spec"]["policyName"]]
            spec = policy["spec"]
            if not _in_scope(spec.get("matchConstraints"), request):
                continue
            if not _in_scope(binding["spec"].get("matchResources"), request):
                continue
            if not all(bool(self._evaluate(c["expression"], activation)) for c in spec.get("matchConditions") or []):
                continue
            for validation in spec.get("validations", []):
                try:
                    result = self._evaluate(validation["expression"], activation)
                except celpy.CELEvalError:
                    result = None
                if isinstance(result, celpy.CELEvalError) or result is None:
                    ok = spec.get("failurePolicy", "Fail") != "Fail"
                else:
                    ok = bool(result)
                if not ok and "Deny" in binding["spec"].get("validationActions", []):
                    failures.append(f"{policy['metadata']['name']}: {validation.get('message', 'denied')}")
        return Verdict(allowed=not failures, messages=tuple(failures))
