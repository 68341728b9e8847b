"""The normalized resource every rule reads, the rule definition, and the results of a policy run.

A normalized resource is what CrossGuard, an offline plan and a Terraform plan have in common: a Pulumi type token,
a name, inputs under their engine (camelCase) names, the effective tags (the provider's default tags merged under
the resource's own), resource options and references to other resources. Values unknown before deployment (during
`pulumi preview`, or `(known after apply)` in a Terraform plan) are the `UNKNOWN` sentinel; rules treat an unknown
value as "cannot tell yet" and report nothing for it (CrossGuard checks again during the update, when it is known).
Inputs wrapped in `TrackedInputs` (the Terraform reader's) note each unknown value a rule reads, and the report lists
those as unjudged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
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
        found = False
        for key, item in value.items():
            if item is UNKNOWN:
                if isinstance(value, TrackedInputs):
                    value.note(key)
                found = True
            elif contains_unknown(item):
                found = True
        return found
    if isinstance(value, list | tuple):
        found_any = [contains_unknown(v) for v in value]  # every element, so that each unknown read is noted
        return any(found_any)
    return False


_UNKNOWN_READS: ContextVar[set[tuple[str, str]] | None] = ContextVar("unknown_reads", default=None)


class TrackedInputs(dict[str, Any]):
    """Inputs (or an object nested in them) that note each unknown value a rule reads.

    A rule skips what it cannot know; the engine collects those reads (see `unknown_reads`) so that a report lists
    what went unjudged instead of passing it silently. A plain dict to everything else (equality, JSON).
    """

    __slots__ = ("owner", "path")

    def __init__(self, data: Mapping[str, Any], owner: str, path: str = "") -> None:
        super().__init__(data)
        self.owner = owner
        self.path = path

    def note(self, key: str) -> None:
        sink = _UNKNOWN_READS.get()
        if sink is not None:
            sink.add((self.owner, f"{self.path}.{key}" if self.path else str(key)))

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, default)
        if value is UNKNOWN:
            self.note(key)
        return value

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if value is UNKNOWN:
            self.note(key)
        return value


def peek(inputs: Mapping[str, Any], key: str) -> Any:
    """`inputs[key]` without noting an unknown read: for looking up links, not for judging a value."""
    return dict.get(inputs, key) if isinstance(inputs, dict) else inputs.get(key)


def track_unknowns(value: Any, owner: str, path: str = "") -> Any:
    """`value` with every object wrapped in TrackedInputs (paths like `rootBlockDevice.encrypted`, `rules.0.x`)."""
    if isinstance(value, Mapping):
        return TrackedInputs(
            {k: track_unknowns(v, owner, f"{path}.{k}" if path else str(k)) for k, v in value.items()}, owner, path
        )
    if isinstance(value, list):
        return [track_unknowns(v, owner, f"{path}.{i}") for i, v in enumerate(value)]
    return value


@contextmanager
def unknown_reads() -> Iterator[set[tuple[str, str]]]:
    """Collect (resource, attribute) of every unknown value read from TrackedInputs inside the block."""
    sink: set[tuple[str, str]] = set()
    token = _UNKNOWN_READS.set(sink)
    try:
        yield sink
    finally:
        _UNKNOWN_READS.reset(token)


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
        if other.name in self.references.get(prop, ()):
            return True
        mine = self.inputs.get(prop)
        return mine is not None and mine is not UNKNOWN and mine in [v for v in values if v is not None]


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
class Unjudged:
    """A rule read a value that is configured but known only after apply, so it could not judge it."""

    rule: str
    resource: str
    attribute: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "resource": self.resource, "attribute": self.attribute}


@dataclass(frozen=True)
class Report:
    violations: tuple[Violation, ...]
    checked: int
    skipped: tuple[Skipped, ...]
    rules: int
    unjudged: tuple[Unjudged, ...] = ()

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    def to_json(self) -> dict[str, Any]:
        return {
            "violations": [v.to_json() for v in self.violations],
            "checked": self.checked,
            "skipped": [s.to_json() for s in self.skipped],
            "unjudged": [u.to_json() for u in self.unjudged],
        }
