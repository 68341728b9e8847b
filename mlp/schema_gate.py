"""The schema gate: every planned resource's inputs checked against the input schema of its type, offline.

The mock runtime accepts any input, and the Python SDKs reject only unknown top-level keyword arguments: a
misspelled key inside a nested dict (`scaling_config={"min_sise": 0}`), a value of the wrong type, a missing
nested required field or a value outside an enum would surface only at a real `pulumi preview`. This gate checks,
per custom resource of a plan:

- AWS, random (and any other Pulumi package) resources and providers: against the input schema derived from
  the pinned SDK (`mlp.provider_schema`): property names at every depth (an unknown key is an error, with the
  closest known name as a hint), required inputs, value types, enums and consts; deprecated resources and
  properties are warnings.
- Kubernetes objects: built-in kinds against the Kubernetes 1.35 API models, custom resources against the
  upstream CRDs, both strict (`mlp.k8s_schema`).
- Helm releases: the release's own inputs against the pulumi-kubernetes schema, and its `values` against the
  chart's `values.schema.json` where the chart ships one (`mlp.chart_values`).

Plan placeholders (`[secret]`, `[unknown]`) are accepted anywhere. The few places where a provider accepts a value
whose JSON type differs from its SDK annotation are listed in `LENIENCIES`, each with its reason.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mlplatform.mlp.chart_values import check_release
from mlplatform.mlp.k8s_schema import client_schemas, is_object, object_findings
from mlplatform.mlp.planner import Plan, PlannedResource
from mlplatform.mlp.provider_schema import PROVIDER_PREFIX, ProviderSchemas, derive_totals, package_of
from mlplatform.mlp.schema_check import STRICT, Checker, Finding, Leniency

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_VALUES = "helm values"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
PROVIDERS = ("aws", "kubernetes", "random", HELM_VALUES)
"""The counters `SchemaReport.checked` always has (others appear when a plan uses another package)."""


@dataclass(frozen=True)
class LenientRule:
    """A place where the provider accepts what the SDK's annotation does not say."""

    name: str
    applies: Callable[[PlannedResource], bool]
    leniency: Leniency
    reason: str


LENIENCIES: tuple[LenientRule, ...] = (
    LenientRule(
        "provider-config-strings",
        lambda r: r.type.startswith(PROVIDER_PREFIX),
        Leniency(bool_strings=True, number_strings=True, decoded_strings=True),
        "A provider resource's inputs travel to the engine as strings (the SDK JSON-encodes every non-string "
        'provider input: `skipCredentialsValidation: "false"`), and the provider parses them back with its '
        "config schema; the plan records them as sent, except that it shows a JSON object or array decoded "
        "(`defaultTags`), so a string input holding JSON (a kubeconfig) appears as an object.",
    ),
)


def leniency_for(resource: PlannedResource) -> tuple[Leniency, tuple[str, ...]]:
    """The union of the leniencies that apply to a resource, and their names."""
    rules = [rule for rule in LENIENCIES if rule.applies(resource)]
    if not rules:
        return STRICT, ()
    merged = Leniency(
        bool_strings=any(r.leniency.bool_strings for r in rules),
        number_strings=any(r.leniency.number_strings for r in rules),
        decoded_strings=any(r.leniency.decoded_strings for r in rules),
    )
    return merged, tuple(r.name for r in rules)


@dataclass(frozen=True)
class SchemaIssue:
    resource: str
    type: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.path}: {self.message}"


@dataclass(frozen=True)
class SchemaReport:
    errors: tuple[SchemaIssue, ...]
    warnings: tuple[SchemaIssue, ...]
    checked: dict[str, int]
    """Resources checked per provider (`aws`, `kubernetes`, `random`, ...), and `helm values`: releases whose
    values were validated against a chart schema."""
    notes: tuple[str, ...] = ()
    """What was not checked, and why (a chart without a schema, a type no installed SDK declares)."""
    lenient: dict[str, int] = field(default_factory=dict)
    """Values let through by each leniency (`LENIENCIES`), by rule name."""
    seconds: float = 0.0
    derive_seconds: float = 0.0
    """Of `seconds`: deriving schemas missing from the cache (0 when warm)."""
    derived: int = 0
    """Types derived (not found in the cache)."""

    @property
    def ok(self) -> bool:
        return not self.errors


@contextlib.contextmanager
def _existing_objects_left_to_the_collector() -> Iterator[None]:
    """Keep the garbage collector from rescanning what exists already while the gate runs. After a plan the heap
    holds some 300,000 objects; the schemas the gate loads trigger full collections that would walk them all
    (two thirds of the gate's time, measured). `gc.unfreeze` hands them back to the oldest generation."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def check_plan(plan: Plan, schemas: ProviderSchemas | None = None) -> SchemaReport:
    """Check every custom resource of a plan against its type's schema (see the module docstring)."""
    with _existing_objects_left_to_the_collector():
        return _check_plan(plan, schemas)


def _check_plan(plan: Plan, schemas: ProviderSchemas | None) -> SchemaReport:
    start = time.perf_counter()
    schemas = schemas or ProviderSchemas()
    k8s_store = client_schemas()
    derived_before, derive_seconds_before = derive_totals()
    checked: Counter[str] = Counter(dict.fromkeys(PROVIDERS, 0))
    errors: list[SchemaIssue] = []
    warnings: list[SchemaIssue] = []
    notes: list[str] = []
    lenient: Counter[str] = Counter()

    def issues(r: PlannedResource, findings: list[Finding]) -> list[SchemaIssue]:
        return [SchemaIssue(r.name, r.type, f.path, f.message) for f in findings]

    for r in plan.resources:
        if not r.custom or r.type == STACK_REFERENCE:
            continue
        if is_object(r):
            errors += issues(r, object_findings(r))
            checked["kubernetes"] += 1
            continue
        schema = schemas.schema(r.type)
        if schema is None:
            notes.append(f"{r.name}: no installed SDK declares {r.type}; its inputs are not checked")
            continue
        leniency, names = leniency_for(r)
        checker = Checker(schemas.definitions(r.type), leniency)
        checker.check({k: v for k, v in r.inputs.items() if not k.startswith("__")}, schema, "inputs")
        errors += issues(r, checker.errors)
        warnings += issues(r, checker.warnings)
        if checker.lenient:
            lenient.update({name: sum(checker.lenient.values()) for name in names})
        checked[package_of(r.type)] += 1
        if r.type == HELM_RELEASE:
            chart = check_release(r.inputs)
            errors += issues(r, list(chart.errors))
            warnings += issues(r, list(chart.warnings))
            notes += [f"{r.name}: {note}" for note in chart.notes]
            if chart.checked:
                checked[HELM_VALUES] += 1
    schemas.save()
    k8s_store.save()
    derived, derive_seconds = derive_totals()
    return SchemaReport(
        errors=tuple(errors),
        warnings=tuple(warnings),
        checked=dict(checked),
        notes=tuple(notes),
        lenient=dict(lenient),
        seconds=time.perf_counter() - start,
        derive_seconds=derive_seconds - derive_seconds_before,
        derived=derived - derived_before,
    )


def summary(report: SchemaReport) -> str:
    """`Schema: 179 aws, 86 kubernetes, 4 random resources and 1 release's Helm values checked against their schemas:
    0 errors, 0 warnings`."""
    counts = [f"{n} {p}" for p, n in report.checked.items() if p != HELM_VALUES]
    helm = report.checked.get(HELM_VALUES, 0)
    releases = "1 release's" if helm == 1 else f"{helm} releases'"
    return (
        f"Schema: {', '.join(counts)} resources and {releases} Helm values checked against their schemas: "
        f"{_count(len(report.errors), 'error')}, {_count(len(report.warnings), 'warning')}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render(report: SchemaReport, *, verbose: bool = False) -> list[str]:
    """The report as lines: a summary, each error and warning (verbose: also what was not checked, and why, and
    the leniencies applied)."""
    lines = [summary(report)]
    lines += [f"  error: {issue}" for issue in report.errors]
    lines += [f"  warning: {issue}" for issue in report.warnings]
    if verbose:
        lines += [f"  not checked: {note}" for note in report.notes]
        lines += [f"  lenient: {name}: {count} value(s) accepted" for name, count in sorted(report.lenient.items())]
    return lines
