"""The normalized resource every rule reads, the rule definition, and the results of a policy run.

A normalized resource is what CrossGuard, an offline plan and a Terraform plan have in common: a Pulumi type token,
a name, inputs under their engine (camelCase) names, the effective tags (the provider's default tags merged under
the resource's own), resource options and references to other resources. Values unknown before deployment (during
`pulumi preview`, or `(known after apply)` in a Terraform plan) are the `UNKNOWN` sentinel; rules treat an unknown
value as "cannot tell yet" and report nothing for it (CrossGuard checks again during the update, when it is known).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["low", "medium", "high", "critical"]
Level = Literal["mandatory", "advisory", "disabled"]
LEVELS: tuple[Level, ...] = ("mandatory", "advisory", "disabled")
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


class _Unknown:
    """A value that will only be known after deployment."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


@dataclass(frozen=True)
class Resource:
    type: str
    """Pulumi type token, e.g. `aws:eks/cluster:Cluster` (Terraform types are mapped onto these)."""
    name: str
    """Logical name (Pulumi) or address (Terraform)."""
    inputs: Mapping[str, Any]
    """Inputs under their engine (camelCase) names."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Effective tags: the provider's default tags merged under the resource's own."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Resource options (`protect`, `retainOnDelete`, ...); empty where the source has none (Terraform)."""
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Input name -> names of the resources its value comes from."""
    source: str = "pulumi"
    """`pulumi` (an offline plan or CrossGuard) or `terraform`."""

    def get(self, path: str, default: Any = None) -> Any:
        """A nested input by dotted path (`vpcConfig.endpointPublicAccess`, `rules.0.bucketKeyEnabled`)."""
        node: Any = self.inputs
        for part in path.split("."):
            if node is UNKNOWN:
                return UNKNOWN
            if isinstance(node, Mapping):
                if part not in node:
                    return default
                node = node[part]
            elif isinstance(node, list | tuple) and part.isdigit():
                index = int(part)
                if index >= len(node):
                    return default
                node = node[index]
            else:
                return default
        return node

    def refers_to(self, prop: str, other: Resource, *values: Any) -> bool:
        """Whether input `prop` points at `other`: by a recorded reference, or by one of `other`'s id values."""
        refs = self.references.get(prop, ())
        if other.name in refs or _instance_free(other.name) in refs:
            return True
        mine = self.inputs.get(prop)
        return mine is not None and mine is not UNKNOWN and mine in [v for v in values if v is not None]


def _instance_free(address: str) -> str:
    """A Terraform instance address without its keys: `aws_s3_bucket.b["x"]` -> `aws_s3_bucket.b`."""
    return re.sub(r"\[[^\]]*\]", "", address)


@dataclass(frozen=True)
class RuleContext:
    params: Mapping[str, Any]
    today: dt.date


ResourceCheck = Callable[[Resource, RuleContext], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], RuleContext], Iterable[tuple[Resource, str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    description: str
    remediation: str
    references: tuple[str, ...]
    """The checks this rule follows: checkov, trivy, KICS ids, CIS EKS benchmark sections, AWSGuard policies."""
    resource_types: tuple[str, ...]
    """Resource rules: the types checked. Stack rules: the types they read (for documentation)."""
    kind: Literal["resource", "stack"]
    check: Callable[..., Iterable[Any]]
    params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters with their defaults; a policy config file may override them."""

    def run_on(self, resource: Resource, ctx: RuleContext) -> list[str]:
        return list(self.check(resource, ctx))

    def run_stack(self, resources: Sequence[Resource], ctx: RuleContext) -> list[tuple[Resource, str]]:
        return list(self.check(resources, ctx))


def resource_rule(
    *,
    id: str,
    severity: Severity,
    types: Sequence[str],
    description: str,
    remediation: str,
    references: Sequence[str],
    params: Mapping[str, Any] | None = None,
) -> Callable[[ResourceCheck], Rule]:
    def wrap(check: ResourceCheck) -> Rule:
        return Rule(
            id=id,
            severity=severity,
            description=description,
            remediation=remediation,
            references=tuple(references),
            resource_types=tuple(types),
            kind="resource",
            check=check,
            params=dict(params or {}),
        )

    return wrap


def stack_rule(
    *,
    id: str,
    severity: Severity,
    types: Sequence[str],
    description: str,
    remediation: str,
    references: Sequence[str],
    params: Mapping[str, Any] | None = None,
) -> Callable[[StackCheck], Rule]:
    def wrap(check: StackCheck) -> Rule:
        return Rule(
            id=id,
            severity=severity,
            description=description,
            remediation=remediation,
            references=tuple(references),
            resource_types=tuple(types),
            kind="stack",
            check=check,
            params=dict(params or {}),
        )

    return wrap


@dataclass(frozen=True)
class Violation:
    rule: str
    severity: Severity
    level: Level
    resource: str
    resource_type: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "level": self.level,
            "resource": self.resource,
            "message": self.message,
        }


@dataclass(frozen=True)
class Skipped:
    resource: str
    type: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"resource": self.resource, "type": self.type, "reason": self.reason}


@dataclass(frozen=True)
class Report:
    violations: tuple[Violation, ...]
    checked: int
    skipped: tuple[Skipped, ...]
    rules: int

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    def to_json(self) -> dict[str, Any]:
        return {
            "violations": [v.to_json() for v in self.violations],
            "checked": self.checked,
            "skipped": [s.to_json() for s in self.skipped],
        }
