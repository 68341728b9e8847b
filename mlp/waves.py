"""Creation and deletion order of an offline plan, with expected durations: what `mlp plan STACK --order` shows.

A pure model over `mlp.planner.Plan` (read through its dataclasses; nothing here runs Pulumi):
- `creation_waves`: the topological levels of one layer's dependency graph, as the engine orders creates;
- `critical_path`: the longest chain by typical create durations (each resource starts when all it waits for
  has finished);
- `expected_wall_time`: the makespan of a list schedule with Pulumi's parallelism limit;
- `destroy_waves` / `destroy_wall_time`: the reverse order (a resource is deleted only after everything that depends
  on it), with typical delete durations;
- `order_report` gathers all of it per layer, `render_text` and `to_json` write it.

Durations come from `mlp/data/durations.json` (`load_durations`): typical seconds per resource type token, each
figure with its basis and its source, refined by inputs where they matter (Multi-AZ RDS, add-ons that need nodes,
Interface endpoints, Helm charts, GPU and vLLM Deployments). A type without an entry takes a default of a few
seconds, and `types_with_default` names such types so that a report can say so.

The model, and where it is knowingly simple:
- Only custom resources are operations. A dependency on a component stands for the component's custom
  descendants (as the SDKs expand `dependsOn`: children of a component, recursively through child components).
  Providers and StackReferences are operations of zero seconds (a provider is configured, a stack output read).
- Layers are separate Pulumi projects run one after another: a dependency on another layer, or on a name not
  in the plan, is ignored (that layer is complete before this one starts, and destroyed after it).
- A child waits for a custom parent (its URN is known only once the parent is registered), so it counts as a
  dependency.
- Timing adds one kind of wait the dependency graph does not show: pulumi-kubernetes awaits a Service with a
  selector until its endpoints target a ready pod, so a Service finishes no earlier than the Deployments (or
  other workloads) in its namespace whose pod labels it selects ("pod waits"). Creation waves are the engine's
  order and leave these out.
- Creates start as soon as their dependencies finished, at most `parallelism` at a time (Pulumi's default is
  4 x CPUs since CLI v3.100.0: 32 on 8 CPUs), in plan order among those ready.
- Delete durations: a `retainOnDelete` resource is only dropped from the state (zero seconds, left in the
  account); a protected one makes `pulumi destroy` stop, and destroy times assume the protection was lifted.
This is an estimate from typical durations, not a measurement; first-run extras (plugin downloads, chart pulls)
are not included.
"""

from __future__ import annotations

import heapq
import json
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from mlplatform.mlp.planner import Plan, PlannedResource

BASES: Final = ("measured", "documented", "provider-timeout", "estimate")
"""How a figure is known: a published measurement, documentation or source code, only the provider's default timeout
(an upper bound), or our own estimate."""

DEFAULT_PARALLELISM: Final = 32
"""Pulumi's default `--parallel` (4 x usable CPUs since CLI v3.100.0) on an 8-CPU machine; the data file records
the rule and its source, and a test keeps the two equal."""

NO_OPERATION_TYPES: Final = frozenset({"pulumi:pulumi:StackReference"})
NO_OPERATION_PREFIXES: Final = ("pulumi:providers:",)
"""Resource types that create nothing in a cloud: a provider is configured, a StackReference reads outputs."""

POD_WORKLOADS: Final = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:ReplicaSet",
    }
)
"""Workloads whose pods a Service's await waits for (see `pod_waits`)."""

SERVICE_TYPE: Final = "kubernetes:core/v1:Service"

TIMEOUT_MARGIN: Final = 0.8
"""A create estimated at this share of its default timeout or more is reported as near the timeout."""

WIDTH: Final = 120

Operation = Literal["create", "delete"]
ClauseOp = Literal["equals", "in", "contains", "exists"]
CLAUSE_OPS: Final[tuple[ClauseOp, ...]] = ("equals", "in", "contains", "exists")


def is_no_operation(type_token: str) -> bool:
    """Whether a resource of this type is a provider or a StackReference: no cloud operation, zero seconds."""
    return type_token in NO_OPERATION_TYPES or type_token.startswith(NO_OPERATION_PREFIXES)


# -- the duration table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a figure comes from: a title, its address where it has one, a short verbatim quote where one was taken."""

    title: str
    url: str = ""
    quote: str = ""
    also: tuple[Source, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"title": self.title, "url": self.url, "quote": self.quote}
        if self.also:
            body["also"] = [s.to_json() for s in self.also]
        return body


@dataclass(frozen=True)
class Figure:
    """Typical seconds of one operation, how that is known, and from where."""

    seconds: float
    basis: str
    source: Source
    note: str = ""
    adds: bool = False
    """A variant's figure added to the figure before it (an extra step), rather than replacing it."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"seconds": self.seconds, "basis": self.basis, "source": self.source.to_json()}
        if self.note:
            body["note"] = self.note
        if self.adds:
            body["adds"] = True
        return body


@dataclass(frozen=True)
class Clause:
    """One condition on a resource's inputs: the values at `path` (`*` for every list element) compared by `op`."""

    path: tuple[str, ...]
    op: ClauseOp
    value: Any

    def holds(self, inputs: Mapping[str, Any]) -> bool:
        found = _values_at(inputs, self.path)
        if self.op == "equals":
            return any(v == self.value for v in found)
        if self.op == "in":  # a missing input counts as null: the provider's default applies
            return any(v in self.value for v in (found or [None]))
        if self.op == "contains":
            return any(isinstance(v, str) and self.value in v for v in found)
        return bool(found) == bool(self.value)


def _values_at(value: Any, path: Sequence[str]) -> list[Any]:
    if not path:
        return [value]
    head, rest = path[0], path[1:]
    if head == "*":
        return [found for item in value for found in _values_at(item, rest)] if isinstance(value, list) else []
    if isinstance(value, Mapping) and head in value:
        return _values_at(value[head], rest)
    return []


@dataclass(frozen=True)
class Variant:
    """A refinement of a type's figures for resources whose inputs satisfy every clause of `when`."""

    id: str
    description: str
    when: tuple[Clause, ...]
    create: Figure | None = None
    delete: Figure | None = None

    def applies(self, inputs: Mapping[str, Any]) -> bool:
        return all(clause.holds(inputs) for clause in self.when)

    def figure(self, operation: Operation) -> Figure | None:
        return self.create if operation == "create" else self.delete


@dataclass(frozen=True)
class Timeouts:
    """The provider's default timeouts (an upper bound, never a typical figure)."""

    create: float
    delete: float
    source: Source


@dataclass(frozen=True)
class TypeEntry:
    token: str
    create: Figure
    delete: Figure
    variants: tuple[Variant, ...] = ()
    timeout: Timeouts | None = None

    def figure(self, operation: Operation) -> Figure:
        return self.create if operation == "create" else self.delete


@dataclass(frozen=True)
class Parallelism:
    """Pulumi's default number of resource operations at once: `per_cpu` x the usable CPUs."""

    per_cpu: int
    assumed_cpus: int
    since: str
    basis: str
    source: Source
    note: str = ""

    def limit(self, cpus: int | None = None) -> int:
        return self.per_cpu * (cpus if cpus is not None else self.assumed_cpus)


@dataclass(frozen=True)
class Used:
    """One figure that went into an estimate: `key` is the type token, with the variant id in brackets."""

    key: str
    operation: Operation
    figure: Figure


DEFAULT_KEY: Final = "(default)"


@dataclass(frozen=True)
class Estimate:
    seconds: float
    used: tuple[Used, ...] = ()
    defaulted: bool = False
    """No entry for the type: the default figure was used."""


@dataclass(frozen=True)
class DurationTable:
    date: str
    how_to_read: str
    types: Mapping[str, TypeEntry]
    default: TypeEntry
    parallelism: Parallelism

    def estimate(self, resource: PlannedResource, operation: Operation) -> Estimate:
        """The typical seconds of creating or deleting this resource, and the figures that make it up."""
        if not resource.custom or is_no_operation(resource.type):
            return Estimate(0.0)
        entry = self.types.get(resource.type)
        if entry is None:
            fallback = self.default.figure(operation)
            return Estimate(fallback.seconds, (Used(DEFAULT_KEY, operation, fallback),), defaulted=True)
        base = entry.figure(operation)
        seconds, used = base.seconds, [Used(entry.token, operation, base)]
        for variant in entry.variants:
            fig = variant.figure(operation)
            if fig is None or not variant.applies(resource.inputs):
                continue
            step = Used(f"{entry.token} [{variant.id}]", operation, fig)
            if fig.adds:
                seconds, used = seconds + fig.seconds, [*used, step]
            else:
                seconds, used = fig.seconds, [step]
        return Estimate(seconds, tuple(used))

    def create_seconds(self, resource: PlannedResource) -> float:
        return self.estimate(resource, "create").seconds

    def delete_seconds(self, resource: PlannedResource) -> float:
        return self.estimate(resource, "delete").seconds

    def create_timeout(self, resource: PlannedResource) -> float | None:
        """The default create timeout this resource runs under, where known: a Helm release's own `timeout` input,
        else the type's provider default; None when `customTimeouts` is set or nothing is known."""
        if resource.options.get("customTimeouts"):
            return None
        own = resource.inputs.get("timeout")
        if resource.type == "kubernetes:helm.sh/v3:Release" and isinstance(own, int | float) and own > 0:
            return float(own)
        entry = self.types.get(resource.type)
        return entry.timeout.create if entry and entry.timeout else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DurationTable:
        """Read the data file's structure; every problem raises a ValueError naming its path."""
        about = _object(data, "_about")
        parallel = _object(data, "parallelism")
        types = _object(data, "types")
        return cls(
            date=_text(about, "date", "_about"),
            how_to_read=_text(about, "how_to_read", "_about"),
            types={token: _entry(token, _object(types, token, "types"), f"types.{token}") for token in types},
            default=_entry(DEFAULT_KEY, _object(data, "default"), "default"),
            parallelism=Parallelism(
                per_cpu=int(parallel["per_cpu"]),
                assumed_cpus=int(parallel["assumed_cpus"]),
                since=_text(parallel, "since", "parallelism"),
                basis=_basis(parallel, "parallelism"),
                source=_source(parallel.get("source"), "parallelism.source"),
                note=str(parallel.get("note", "")),
            ),
        )


def _object(data: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"{where + '.' if where else ''}{key}: expected an object")
    return value


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}.{key}: expected a non-empty string")
    return value


def _basis(data: Mapping[str, Any], where: str) -> str:
    basis = data.get("basis")
    if basis not in BASES:
        raise ValueError(f"{where}.basis: {basis!r} is not one of {', '.join(BASES)}")
    return str(basis)


def _source(raw: Any, where: str) -> Source:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object with a title")
    return Source(
        title=_text(raw, "title", where),
        url=str(raw.get("url", "")),
        quote=str(raw.get("quote", "")),
        also=tuple(_source(s, f"{where}.also[{i}]") for i, s in enumerate(raw.get("also", []))),
    )


def _figure(raw: Any, where: str) -> Figure:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object")
    seconds = raw.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f"{where}.seconds: expected a number >= 0")
    basis = _basis(raw, where)
    source = _source(raw.get("source"), f"{where}.source")
    if basis != "estimate" and not source.url:
        raise ValueError(f"{where}.source.url: a {basis} figure needs the address of its source")
    return Figure(float(seconds), basis, source, str(raw.get("note", "")), bool(raw.get("adds", False)))


def _clause(raw: Any, where: str) -> Clause:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("path"), list):
        raise ValueError(f"{where}: expected an object with a path (a list of keys)")
    ops = [op for op in CLAUSE_OPS if op in raw]
    if len(ops) != 1:
        raise ValueError(f"{where}: expected exactly one of equals, in, contains, exists")
    op = ops[0]
    value = raw[op]
    if op == "in" and not isinstance(value, list):
        raise ValueError(f"{where}.in: expected a list")
    if op == "contains" and not isinstance(value, str):
        raise ValueError(f"{where}.contains: expected a string")
    return Clause(tuple(str(p) for p in raw["path"]), op, value)


def _entry(token: str, raw: Mapping[str, Any], where: str) -> TypeEntry:
    variants = []
    for i, v in enumerate(raw.get("variants", [])):
        at = f"{where}.variants[{i}]"
        when = v.get("when")
        if not isinstance(when, list) or not when:
            raise ValueError(f"{at}.when: expected a non-empty list of clauses")
        if "create" not in v and "delete" not in v:
            raise ValueError(f"{at}: refines neither create nor delete")
        variants.append(
            Variant(
                id=_text(v, "id", at),
                description=_text(v, "description", at),
                when=tuple(_clause(c, f"{at}.when[{j}]") for j, c in enumerate(when)),
                create=_figure(v["create"], f"{at}.create") if "create" in v else None,
                delete=_figure(v["delete"], f"{at}.delete") if "delete" in v else None,
            )
        )
    timeout = None
    if "timeout" in raw:
        t = _object(raw, "timeout", where)
        timeout = Timeouts(float(t["create"]), float(t["delete"]), _source(t.get("source"), f"{where}.timeout.source"))
    return TypeEntry(
        token=token,
        create=_figure(raw.get("create"), f"{where}.create"),
        delete=_figure(raw.get("delete"), f"{where}.delete"),
        variants=tuple(variants),
        timeout=timeout,
    )


@cache
def load_durations() -> DurationTable:
    """The shipped duration table, `mlp/data/durations.json` (read once)."""
    text = resources.files("mlp").joinpath("data", "durations.json").read_text(encoding="utf-8")
    return DurationTable.from_dict(json.loads(text))


def types_with_default(plan: Plan, table: DurationTable | None = None) -> list[str]:
    """The resource types of a plan that have no entry in the table and were given the default durations."""
    table = table or load_durations()
    return sorted(
        {r.type for r in plan.resources if r.custom and not is_no_operation(r.type) and r.type not in table.types}
    )


# -- the graph of one layer -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerGraph:
    """The custom resources of one layer and what each waits for, all within the layer."""

    layer: str
    names: tuple[str, ...]
    """In plan order."""
    resources: Mapping[str, PlannedResource]
    dependencies: Mapping[str, frozenset[str]]
    """What each resource's create waits for (and, reversed, what must be deleted before it)."""
    pod_waits: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Service -> the workloads whose ready pods its create await waits for (timing only)."""

    def timing_dependencies(self, name: str) -> frozenset[str]:
        return self.dependencies[name] | self.pod_waits.get(name, frozenset())

    def dependents(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {n: set() for n in self.names}
        for name, deps in self.dependencies.items():
            for dep in deps:
                out[dep].add(name)
        return out


def _layers(plan: Plan) -> tuple[str, ...]:
    return plan.layers or ("",)


def layer_graph(plan: Plan, layer: str) -> LayerGraph:
    """The dependency graph of one layer: components expanded to their custom descendants, other layers and
    unknown names left out, a custom parent counted as a dependency."""
    members = plan.in_layer(layer)
    custom = {r.name: r for r in members if r.custom}
    components = {r.name for r in members if not r.custom}
    children: dict[str, list[PlannedResource]] = {}
    for r in members:
        if r.parent is not None:
            children.setdefault(r.parent, []).append(r)

    def expand(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in custom:
            return {name}
        if name not in components or name in seen:
            return set()  # another layer, or a name the plan does not hold
        found: set[str] = set()
        for child in children.get(name, []):
            if child.custom:
                found.add(child.name)
            else:
                found |= expand(child.name, seen | {name})
        return found

    deps: dict[str, frozenset[str]] = {}
    for name, r in custom.items():
        wanted = set(r.dependencies())
        if r.parent in custom:
            wanted.add(r.parent)
        expanded = {d for w in wanted for d in expand(w)}
        expanded.discard(name)
        deps[name] = frozenset(expanded)
    # A workload that itself waits for the Service (it reads the Service's name, say) is created only after the
    # Service finished: there the Service cannot wait for its pods (in a real run its await times out instead).
    waits = {
        svc: kept
        for svc, workloads in pod_waits(custom.values()).items()
        if (kept := frozenset(w for w in workloads if svc not in _upstream(w, deps)))
    }
    graph = LayerGraph(layer, tuple(custom), custom, deps, waits)
    _check_acyclic(graph)
    return graph


def _upstream(name: str, deps: Mapping[str, Iterable[str]]) -> set[str]:
    """Everything `name` waits for, directly or through others."""
    seen: set[str] = set()
    stack = list(deps.get(name, ()))
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(deps.get(n, ()))
    return seen


def pod_waits(resources: Iterable[PlannedResource]) -> dict[str, frozenset[str]]:
    """Each Service with a selector -> the workloads in its namespace whose pod template labels it selects.

    pulumi-kubernetes awaits such a Service until its endpoints target a pod (then ~10 s to settle), so it finishes
    only once those pods are ready. Headless and ExternalName Services are not awaited that way."""
    listed = list(resources)
    workloads = [r for r in listed if r.type in POD_WORKLOADS]
    out: dict[str, frozenset[str]] = {}
    for svc in listed:
        if svc.type != SERVICE_TYPE:
            continue
        spec = svc.inputs.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector or spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            continue
        namespace = _namespace(svc)
        selected = frozenset(
            w.name
            for w in workloads
            if _namespace(w) == namespace
            and selector.items()
            <= (((w.inputs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}).items()
        )
        if selected:
            out[svc.name] = selected
    return out


def _namespace(r: PlannedResource) -> str:
    return str((r.inputs.get("metadata") or {}).get("namespace") or "default")


def _check_acyclic(graph: LayerGraph) -> None:
    levels = _levels(graph.names, graph.dependencies)
    stuck = [n for n in graph.names if n not in levels]
    if stuck:
        raise ValueError(f"dependency cycle in the {graph.layer or 'plan'} layer among: {', '.join(stuck[:8])}")


def _levels(names: Sequence[str], before: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each name's topological level: 0 when nothing comes before it, else one more than the latest before it.
    Names on a cycle get no level."""
    pending = {n: set(before.get(n, ())) for n in names}
    after: dict[str, list[str]] = {n: [] for n in names}
    for n, deps in pending.items():
        for d in deps:
            after[d].append(n)
    level: dict[str, int] = {}
    frontier = [n for n in names if not pending[n]]
    for n in frontier:
        level[n] = 0
    while frontier:
        nxt: list[str] = []
        for n in frontier:
            for m in after[n]:
                pending[m].discard(n)
                level[m] = max(level.get(m, 0), level[n] + 1)
                if not pending[m]:
                    nxt.append(m)
        frontier = nxt
    return {n: lvl for n, lvl in level.items() if not pending[n]}


def _waves(names: Sequence[str], before: Mapping[str, Iterable[str]]) -> list[list[str]]:
    levels = _levels(names, before)
    waves: list[list[str]] = [[] for _ in range(max(levels.values(), default=-1) + 1)]
    for n in names:  # plan order within a wave
        waves[levels[n]].append(n)
    return waves


def creation_waves(plan: Plan, layer: str) -> list[list[str]]:
    """The creation waves of one layer: wave k holds the custom resources whose longest chain of dependencies
    within the layer has k links (the engine's order; pod waits are left out)."""
    graph = layer_graph(plan, layer)
    return _waves(graph.names, graph.dependencies)


def destroy_waves(plan: Plan, layer: str) -> list[list[str]]:
    """The deletion waves of one layer: wave k holds the resources whose longest chain of dependents has k links
    (a resource is deleted only after everything that depends on it)."""
    graph = layer_graph(plan, layer)
    return _waves(graph.names, graph.dependents())


# -- timing ---------------------------------------------------------------------------------------------------


def _longest_path(
    names: Sequence[str], before: Mapping[str, Iterable[str]], seconds: Mapping[str, float]
) -> tuple[list[str], float]:
    """The chain with the latest earliest finish, each resource starting when all before it finished."""
    if not names:
        return [], 0.0
    order = {n: i for i, n in enumerate(names)}
    levels = _levels(names, before)
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for n in sorted(names, key=lambda x: (levels[x], order[x])):
        preds = sorted(before.get(n, ()), key=lambda p: (-finish[p], order[p]))
        via[n] = preds[0] if preds else None
        finish[n] = seconds[n] + (finish[preds[0]] if preds else 0.0)
    end: str | None = min(names, key=lambda x: (-finish[x], order[x]))
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return path[::-1], finish[path[0]]


def _makespan(
    names: Sequence[str], before: Mapping[str, Iterable[str]], seconds: Mapping[str, float], parallelism: int
) -> float:
    """Simulate a list schedule: a resource is ready when all before it finished; at most `parallelism` run at
    once; ready resources start in plan order. Returns when the last one finishes."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be at least 1, not {parallelism}")
    order = {n: i for i, n in enumerate(names)}
    waiting = {n: len(set(before.get(n, ()))) for n in names}
    after: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for d in set(before.get(n, ())):
            after[d].append(n)
    ready = [order[n] for n in names if not waiting[n]]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    now, done = 0.0, 0
    while ready or running:
        while ready and len(running) < parallelism:
            i = heapq.heappop(ready)
            heapq.heappush(running, (now + seconds[names[i]], i))
        now, i = heapq.heappop(running)
        finished = [i]
        while running and running[0][0] == now:
            finished.append(heapq.heappop(running)[1])
        for j in finished:
            done += 1
            for m in after[names[j]]:
                waiting[m] -= 1
                if not waiting[m]:
                    heapq.heappush(ready, order[m])
    if done != len(names):
        raise ValueError("dependency cycle: some resources never became ready")
    return now


def critical_path(plan: Plan, layer: str, table: DurationTable | None = None) -> tuple[list[str], float]:
    """The longest chain of one layer by typical create durations, and its length in seconds."""
    table = table or load_durations()
    graph = layer_graph(plan, layer)
    seconds = {n: table.create_seconds(graph.resources[n]) for n in graph.names}
    return _longest_path(graph.names, {n: graph.timing_dependencies(n) for n in graph.names}, seconds)


def expected_wall_time(
    plan: Plan, layer: str, parallelism: int = DEFAULT_PARALLELISM, table: DurationTable | None = None
) -> float:
    """The expected seconds of `pulumi up` for one layer of a new stack (typical durations, the parallelism limit)."""
    table = table or load_durations()
    graph = layer_graph(plan, layer)
    seconds = {n: table.create_seconds(graph.resources[n]) for n in graph.names}
    return _makespan(graph.names, {n: graph.timing_dependencies(n) for n in graph.names}, seconds, parallelism)


def _delete_seconds(table: DurationTable, r: PlannedResource) -> float:
    return 0.0 if r.options.get("retainOnDelete") else table.delete_seconds(r)


def destroy_wall_time(
    plan: Plan, layer: str, parallelism: int = DEFAULT_PARALLELISM, table: DurationTable | None = None
) -> float:
    """The expected seconds of `pulumi destroy` for one layer, with protection lifted; retained resources are only
    dropped from the state."""
    table = table or load_durations()
    graph = layer_graph(plan, layer)
    seconds = {n: _delete_seconds(table, graph.resources[n]) for n in graph.names}
    dependents = graph.dependents()
    return _makespan(graph.names, dependents, seconds, parallelism)


# -- the report -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    type: str
    seconds: float
    defaulted: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "type": self.type, "seconds": self.seconds}
        if self.defaulted:
            body["default_duration"] = True
        return body


@dataclass(frozen=True)
class NearTimeout:
    name: str
    seconds: float
    timeout: float


@dataclass(frozen=True)
class LayerOrder:
    """One layer's creation and deletion order with its expected durations."""

    layer: str
    creation_waves: tuple[tuple[Step, ...], ...]
    critical_path: tuple[Step, ...]
    critical_seconds: float
    up_seconds: float
    """Expected seconds of `pulumi up` with the parallelism limit."""
    destroy_waves: tuple[tuple[Step, ...], ...]
    destroy_seconds: float
    protected: tuple[str, ...]
    retained: tuple[str, ...]
    pod_waits: tuple[tuple[str, str], ...] = ()
    """(Service, workload) pairs: the Service's create finishes once the workload's pods are ready."""
    near_timeout: tuple[NearTimeout, ...] = ()

    @property
    def resource_count(self) -> int:
        return sum(len(w) for w in self.creation_waves)


@dataclass(frozen=True)
class OrderReport:
    project: str
    stack: str
    parallelism: int
    table_date: str
    layers: tuple[LayerOrder, ...]
    """In creation order; destroyed in the reverse order."""
    figures: tuple[Used, ...]
    """Every table figure used, once."""
    defaulted_types: tuple[str, ...]
    default_create: float
    default_delete: float
    parallelism_rule: Parallelism | None = None
    """Where the default parallelism comes from."""

    @property
    def up_seconds(self) -> float:
        return sum(layer.up_seconds for layer in self.layers)

    @property
    def destroy_seconds(self) -> float:
        return sum(layer.destroy_seconds for layer in self.layers)


def order_report(plan: Plan, parallelism: int = DEFAULT_PARALLELISM, table: DurationTable | None = None) -> OrderReport:
    """Creation waves, critical path, expected `pulumi up` and `pulumi destroy` time per layer of a plan."""
    table = table or load_durations()
    used: dict[tuple[str, str], Used] = {}
    layers = tuple(_layer_order(layer_graph(plan, layer), table, parallelism, used) for layer in _layers(plan))
    return OrderReport(
        project=plan.project,
        stack=plan.stack,
        parallelism=parallelism,
        table_date=table.date,
        layers=layers,
        figures=tuple(sorted(used.values(), key=lambda u: (u.key, u.operation))),
        defaulted_types=tuple(types_with_default(plan, table)),
        default_create=table.default.create.seconds,
        default_delete=table.default.delete.seconds,
        parallelism_rule=table.parallelism,
    )


def _layer_order(
    graph: LayerGraph, table: DurationTable, parallelism: int, used: dict[tuple[str, str], Used]
) -> LayerOrder:
    """One layer's part of the report; the table figures it uses are added to `used`."""
    res = graph.resources
    create = {n: table.estimate(res[n], "create") for n in graph.names}
    delete = {n: table.estimate(res[n], "delete") for n in graph.names}
    for n in graph.names:
        retained = bool(res[n].options.get("retainOnDelete"))
        for est in (create[n],) if retained else (create[n], delete[n]):
            for u in est.used:
                used.setdefault((u.key, u.operation), u)
    create_s = {n: create[n].seconds for n in graph.names}
    delete_s = {n: _delete_seconds(table, res[n]) for n in graph.names}
    timing = {n: graph.timing_dependencies(n) for n in graph.names}
    dependents = graph.dependents()
    path, path_seconds = _longest_path(graph.names, timing, create_s)
    near = []
    for n in graph.names:
        limit = table.create_timeout(res[n])
        if limit and create_s[n] >= TIMEOUT_MARGIN * limit:
            near.append(NearTimeout(n, create_s[n], limit))

    def created(names: Iterable[str]) -> tuple[Step, ...]:
        return tuple(Step(n, res[n].type, create_s[n], create[n].defaulted) for n in names)

    def deleted(names: Iterable[str]) -> tuple[Step, ...]:
        return tuple(Step(n, res[n].type, delete_s[n], delete[n].defaulted) for n in names)

    return LayerOrder(
        layer=graph.layer,
        creation_waves=tuple(created(wave) for wave in _waves(graph.names, graph.dependencies)),
        critical_path=created(path),
        critical_seconds=path_seconds,
        up_seconds=_makespan(graph.names, timing, create_s, parallelism),
        destroy_waves=tuple(deleted(wave) for wave in _waves(graph.names, dependents)),
        destroy_seconds=_makespan(graph.names, dependents, delete_s, parallelism),
        protected=tuple(n for n in graph.names if res[n].options.get("protect")),
        retained=tuple(n for n in graph.names if res[n].options.get("retainOnDelete")),
        pod_waits=tuple((svc, w) for svc in graph.names for w in sorted(graph.pod_waits.get(svc, ()))),
        near_timeout=tuple(near),
    )


# -- rendering ------------------------------------------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """`45s`, `3m`, `2m30s`."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    minutes, rest = divmod(total, 60)
    return f"{minutes}m" if rest == 0 else f"{minutes}m{rest:02d}s"


def _minutes(seconds: float) -> str:
    return f"~{math.floor(seconds / 60 + 0.5)} min"  # half up, not to the even neighbour


def _wrap(text: str, indent: str = "", subsequent: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent,
        subsequent_indent=subsequent if subsequent is not None else indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _slowest(wave: Sequence[Step], count: int = 3) -> list[Step]:
    ranked = sorted(enumerate(wave), key=lambda item: (-item[1].seconds, item[0]))
    return [s for _, s in ranked[:count]]


def _wave_lines(waves: Sequence[Sequence[Step]]) -> list[str]:
    lines = []
    for i, wave in enumerate(waves, start=1):
        slowest = ", ".join(f"{s.name} {duration_text(s.seconds)}" for s in _slowest(wave))
        more = f" (+{len(wave) - 3} more)" if len(wave) > 3 else ""
        count = f"{len(wave):>3} resource{'' if len(wave) == 1 else 's'}"
        lines += _wrap(f"wave {i:>2}: {count}; slowest {slowest}{more}", "    ", " " * 24)
    return lines


def _chain(layer: LayerOrder) -> str:
    waits = set(layer.pod_waits)
    parts = []
    for i, s in enumerate(layer.critical_path):
        if i:
            prev = layer.critical_path[i - 1].name
            parts.append("~>" if (s.name, prev) in waits else "->")
        parts.append(f"{s.name} ({duration_text(s.seconds)})")
    return " ".join(parts)


def render_text(report: OrderReport) -> str:
    """The report as plain text, at most 120 columns wide."""
    names = [layer.layer or "plan" for layer in report.layers]
    lines = [f"Creation and deletion order: {report.project}/{report.stack}"]
    lines += _wrap(
        "An estimate from typical durations per resource type (mlp/data/durations.json, "
        f"{report.table_date}), not a measurement. First-run extras (plugin downloads, chart pulls) are not "
        f"included. At most {report.parallelism} operations at once (Pulumi's default: 4 x CPUs, 8 CPUs assumed).",
        "",
        "",
    )
    up = ", then ".join(f"{n} {_minutes(layer.up_seconds)}" for n, layer in zip(names, report.layers, strict=True))
    down = ", then ".join(
        f"{n} {_minutes(layer.destroy_seconds)}" for n, layer in reversed(list(zip(names, report.layers, strict=True)))
    )
    lines.append(f"pulumi up:      {_minutes(report.up_seconds)} in all ({up})")
    lines.append(f"pulumi destroy: {_minutes(report.destroy_seconds)} in all ({down}), with protection lifted")
    for name, layer in zip(names, report.layers, strict=True):
        lines += ["", f"== {name} layer: create ({layer.resource_count} resources, {len(layer.creation_waves)} waves)"]
        lines += _wave_lines(layer.creation_waves)
        lines += _wrap(f"critical path, {duration_text(layer.critical_seconds)}: {_chain(layer)}", "  ", "    ")
        if any(link in set(layer.pod_waits) for link in _links(layer.critical_path)):
            lines.append("    (a ~> b: the Service b finishes once the pods of a are ready)")
        extra = layer.up_seconds - layer.critical_seconds
        limit = (
            f"the limit of {report.parallelism} at once adds {duration_text(extra)}"
            if extra > 0.5
            else f"the limit of {report.parallelism} at once adds nothing"
        )
        lines.append(f"  pulumi up: {_minutes(layer.up_seconds)} ({duration_text(layer.up_seconds)}; {limit})")
        for near in layer.near_timeout:
            lines += _wrap(
                f"near its timeout: {near.name} {duration_text(near.seconds)} of {duration_text(near.timeout)}",
                "  ",
            )
    for name, layer in reversed(list(zip(names, report.layers, strict=True))):
        lines += ["", f"== {name} layer: destroy ({len(layer.destroy_waves)} waves)"]
        lines += _wave_lines(layer.destroy_waves)
        lines.append(f"  pulumi destroy: {_minutes(layer.destroy_seconds)} ({duration_text(layer.destroy_seconds)})")
        if layer.protected:
            lines += _wrap(
                "protected (pulumi destroy stops at these until `pulumi state unprotect`): "
                + ", ".join(layer.protected),
                "  ",
            )
        if layer.retained:
            lines += _wrap(
                "retainOnDelete (dropped from the state, left in the account and still billed): "
                + ", ".join(layer.retained),
                "  ",
            )
    lines += ["", *_figure_lines(report.figures, report.parallelism_rule)]
    default = f"{duration_text(report.default_create)} create, {duration_text(report.default_delete)} delete"
    lines += [""]
    lines += _wrap(
        f"Types without an entry (default {default}, estimate): "
        + (", ".join(report.defaulted_types) if report.defaulted_types else "none"),
        "",
    )
    return "\n".join(lines) + "\n"


def _figure_lines(figures: Sequence[Used], parallelism: Parallelism | None) -> list[str]:
    """The figures used, one line per type or variant, then their sources, each listed once and numbered."""
    numbers: dict[Source, int] = {}
    by_key: dict[str, list[str]] = {}
    for u in figures:
        number = numbers.setdefault(u.figure.source, len(numbers) + 1)
        f = u.figure
        by_key.setdefault(u.key, []).append(
            f"{u.operation} {'+' if f.adds else ''}{duration_text(f.seconds)} {f.basis} [{number}]"
        )
    lines = ["Figures used (typical seconds per operation; + adds to the figure before it; [n]: source)"]
    for key, parts in by_key.items():
        lines += _wrap(f"{key}: {'; '.join(parts)}", "  ", "      ")
    if parallelism is not None:
        number = numbers.setdefault(parallelism.source, len(numbers) + 1)
        lines += _wrap(
            f"parallelism: {parallelism.per_cpu} x CPUs since Pulumi CLI {parallelism.since}, "
            f"{parallelism.basis} [{number}]",
            "  ",
        )
    lines += ["", "Sources"]
    for source, number in numbers.items():
        lines += _wrap(f"[{number}] {source.title}", "  ", "      ")
        detail = " ".join(p for p in (source.url, f'"{source.quote}"' if source.quote else "") if p)
        if detail:
            lines += _wrap(detail, "      ", "      ")
    return lines


def _links(path: Sequence[Step]) -> list[tuple[str, str]]:
    return [(path[i].name, path[i - 1].name) for i in range(1, len(path))]


def to_json(report: OrderReport) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {
        "project": report.project,
        "stack": report.stack,
        "notice": (
            "An estimate from typical durations per resource type, not a measurement; first-run extras (plugin "
            "downloads, chart pulls) are not included."
        ),
        "durations_date": report.table_date,
        "parallelism": report.parallelism,
        "up_seconds": report.up_seconds,
        "destroy_seconds": report.destroy_seconds,
        "layers": [
            {
                "layer": layer.layer,
                "creation_waves": [[s.to_json() for s in wave] for wave in layer.creation_waves],
                "critical_path": [s.to_json() for s in layer.critical_path],
                "critical_seconds": layer.critical_seconds,
                "up_seconds": layer.up_seconds,
                "destroy_waves": [[s.to_json() for s in wave] for wave in layer.destroy_waves],
                "destroy_seconds": layer.destroy_seconds,
                "protected": list(layer.protected),
                "retained": list(layer.retained),
                "pod_waits": [{"service": svc, "workload": w} for svc, w in layer.pod_waits],
                "near_timeout": [
                    {"name": n.name, "seconds": n.seconds, "timeout": n.timeout} for n in layer.near_timeout
                ],
            }
            for layer in report.layers
        ],
        "figures": [{"key": u.key, "operation": u.operation, **u.figure.to_json()} for u in report.figures],
        "default_types": list(report.defaulted_types),
    }
