"""The offline planner: run the project's own `__main__.py` under Pulumi's mock runtime and record every resource.

No second code path: the program, its config and its components are exactly what `pulumi up` runs. The mock
runtime replaces only the engine and the providers: resources are registered with a recording monitor, outputs
are the inputs plus deterministic fake ids, ARNs and endpoints, and invokes are answered from the config. The
plan is the desired state of a new stack; nothing is read from a cloud account or an existing state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import set_all_config
from pulumi.runtime.settings import ROOT, SETTINGS, get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlplatform.infra.config import PlatformConfig
from mlplatform.infra.constants import PROJECT
from mlplatform.mlp import terraform_state
from mlplatform.mlp.errors import ProgramError
from mlplatform.mlp.mocks import (
    DEFAULT_ACCOUNT_ID,
    RUN,
    PlanContext,
    PlanMocks,
    PlannerError,
    Recorded,
    RecordingMonitor,
    StackOutputs,
)
from mlplatform.mlp.stackfile import StackConfig, layer_projects

NOTICE = (
    "Offline plan: the desired state of a new stack, computed from the program and the stack file with Pulumi's "
    "mock runtime. Nothing was read from AWS, Kubernetes or an existing Pulumi state; ids, ARNs and endpoints are "
    "placeholders."
)


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    parent: str | None
    provider: str | None
    inputs: dict[str, Any]
    options: dict[str, Any]
    custom: bool
    references: dict[str, list[str]] = field(default_factory=dict)
    """Input name -> logical names of the resources its value comes from (the engine's property dependencies)."""
    layer: str = ""
    """The Pulumi project (layer) that creates it: `cloud` or `cluster` for this platform, "" for one program."""
    outputs: dict[str, Any] = field(default_factory=dict, compare=False)
    """What the mocks answered (inputs plus placeholder ids, ARNs, names): not part of the plan's JSON."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "inputs": self.inputs,
            "options": self.options,
            "references": self.references,
        }
        if self.layer:
            body["layer"] = self.layer
        return body

    def dependencies(self) -> set[str]:
        """Every resource this one waits for on create (and outlives on delete): its input references, its
        explicit `dependsOn` and its provider."""
        deps = {n for names in self.references.values() for n in names}
        deps.update(self.options.get("dependsOn") or [])
        if self.provider:
            deps.add(self.provider)
        return deps


@dataclass(frozen=True)
class Plan:
    project: str
    stack: str
    resources: tuple[PlannedResource, ...]
    layers: tuple[str, ...] = ()
    """The layers in deployment order (created first, destroyed last); empty for a one-program plan."""
    stack_config: dict[str, Any] | None = None
    """What the policy and cost checks need of this platform's stack (`environment`, `region`,
    `budget_monthly_usd`), so that a saved plan is checked as its stack is; None for other programs."""

    def by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def get(self, name: str, layer: str | None = None) -> PlannedResource:
        """The resource of that name (a custom resource before a component of the same name in another layer)."""
        matches = [r for r in self.resources if r.name == name and (layer is None or r.layer == layer)]
        if not matches:
            raise KeyError(name)
        return next((r for r in matches if r.custom), matches[0])

    def in_layer(self, layer: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.layer == layer]

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"count": len(self.resources), "by_type": self.by_type()}
        body: dict[str, Any] = {
            "project": self.project,
            "stack": self.stack,
            "notice": NOTICE,
            "resources": [r.to_json() for r in self.resources],
            "summary": summary,
        }
        if self.layers:
            body["layers"] = list(self.layers)
            summary["by_layer"] = {layer: len(self.in_layer(layer)) for layer in self.layers}
        if self.stack_config is not None:
            body["stack_config"] = dict(self.stack_config)
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


# One mock runtime per process: Pulumi's settings are process-global. Plans of several stacks reuse it, and each
# plan starts from a fresh recorder and a fresh root stack resource.
_MOCKS = PlanMocks()
_MONITOR = RecordingMonitor(_MOCKS)


def generated_secrets() -> list[str]:
    """The secret values (generated passwords) the mock runtime handed out during the last program run."""
    return list(_MOCKS.generated_secrets)


ORGANIZATION = "organization"
"""What `pulumi.get_organization()` returns with a self-managed backend (S3, local); Pulumi Cloud gives the org."""


def qualified_stack_name(project: str, stack: str, organization: str = ORGANIZATION) -> str:
    """The name a StackReference uses for a stack: `<organization>/<project>/<stack>`."""
    return f"{organization}/{project}/{stack}"


def plan_stack(stack_config: StackConfig, platform: PlatformConfig | None = None, *, preview: bool = False) -> Plan:
    """Plan one stack of this project or of another Pulumi program (an example, a user's own program).

    For this project the stack config is validated against the platform schema first (`platform` when the caller
    already validated it); other programs only need `aws:region`. A project made of layers (this platform: the
    cloud layer, then the cluster layer) is planned layer by layer in one process: each layer's StackReference to
    an earlier one is answered with that layer's planned exports.

    With `preview`, every layer runs as its first `pulumi preview` sees it: computed outputs unknown. A later layer
    is previewed once the earlier ones exist, so it still reads their (planned) exports as known values.
    """
    project = stack_config.project
    if project.name == PROJECT:
        platform = platform or stack_config.validate()
        region, account = platform.region, platform.aws_account_id or DEFAULT_ACCOUNT_ID
    else:
        region = str(stack_config.config.get("aws:region") or "us-east-1")
        account = DEFAULT_ACCOUNT_ID
    handlers = terraform_state.invoke_handlers(project.root)
    stack = stack_config.stack
    runs: list[tuple[str, list[Recorded]]] = []
    exports: dict[str, StackOutputs] = {}
    for layer, layer_project in layer_projects(project):
        # Every layer reads the same stack file (as given, possibly changed in memory) with its own Pulumi.yaml.
        config = {
            **layer_project.config,
            **{k: v for k, v in stack_config.config.items() if k not in project.config},
        }

        def context(as_preview: bool, known: dict[str, StackOutputs] = exports) -> PlanContext:
            return PlanContext(
                region=region,
                account_id=account,
                invoke_handlers=handlers,
                stack_outputs=dict(known),
                preview=as_preview,
            )

        later = bool(runs)
        records = run_program(layer_project.main, layer_project.name, stack, config, context(preview), later)
        if preview:  # its exports, as the next layer reads them once this one exists
            run_program(layer_project.main, layer_project.name, stack, config, context(False), True)
        exports[qualified_stack_name(layer_project.name, stack)] = last_exports()
        runs.append((layer, records))
    plan = build_layered_plan(project.name, stack, runs)
    if platform is None:
        return plan
    return replace(plan, stack_config=stack_settings(platform))


def stack_settings(platform: PlatformConfig) -> dict[str, Any]:
    """The stack's settings a saved plan records for `mlp policy --plan-json` (and the plan's summary)."""
    return {
        "environment": platform.environment,
        "region": platform.region,
        "budget_monthly_usd": platform.budget.monthly_usd,
    }


_LAST_EXPORTS: list[StackOutputs] = [StackOutputs(values={})]


def last_exports() -> StackOutputs:
    """What the last program run exported (as a StackReference to its stack would read it)."""
    return _LAST_EXPORTS[0]


def _collect_exports() -> StackOutputs:
    """The root stack's outputs (`pulumi.export`), resolved. The mock runtime registers the root stack's outputs
    before the program runs, so they are read from the stack resource itself rather than from the monitor."""
    root = get_root_resource()
    outputs: dict[str, Any] = dict(getattr(root, "outputs", None) or {})
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for key, value in outputs.items():
        out = pulumi.Output.from_input(value)
        values[key] = _sync_await(out.future()) if _sync_await(out.is_known()) else None
        if _sync_await(out.is_secret()):
            secret.add(key)
    return StackOutputs(values=_plain(values), secret_names=frozenset(secret))


def _plain(value: Any) -> Any:
    """Exported values as JSON would carry them (a StackReference reads the stored JSON)."""
    return json.loads(json.dumps(value, default=str))


def run_program(
    main: Path, project: str, stack: str, config: dict[str, Any], ctx: PlanContext, keep_secrets: bool = False
) -> list[Recorded]:
    """Run a Pulumi program file under the recording mock runtime and return what it registered."""
    with _in_directory(main.parent):
        return run_function(
            lambda: runpy.run_path(str(main), run_name="__main__"),
            project,
            stack,
            config,
            ctx,
            program_dir=main.parent,
            keep_secrets=keep_secrets,
        )


def run_function(
    fn: Callable[[], Any],
    project: str,
    stack: str,
    config: dict[str, Any],
    ctx: PlanContext,
    program_dir: Path | None = None,
    keep_secrets: bool = False,
) -> list[Recorded]:
    """Run any callable that declares resources (a program, or one component in a test) under the mock runtime."""
    loop = asyncio.get_event_loop()
    _settle_stale_tasks(loop)
    _MOCKS.reset(ctx, keep_secrets)
    RUN.set(_MONITOR.reset())
    ROOT.set(None)  # a new root Stack resource per plan, named after this stack
    pulumi_mocks.set_mocks(
        _MOCKS, project=project, stack=stack, preview=ctx.preview, monitor=_MONITOR, organization=ORGANIZATION
    )
    # Nothing of an earlier (possibly failed) run may be awaited again in this one.
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    set_all_config({k: _config_string(v) for k, v in config.items()}, [])
    loop.set_exception_handler(_quiet_after_failure)
    try:
        _sync_await(run_pulumi_func(fn))
        _LAST_EXPORTS[0] = _collect_exports()
    except pulumi.RunError as exc:
        raise ProgramError(str(exc)) from None
    except PlannerError as exc:
        raise ProgramError(str(exc)) from None
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        root = str(program_dir) if program_dir else ""
        own = [f for f in frames if root and root in f.filename and "site-packages" not in f.filename]
        where = f" at {Path(own[-1].filename).name}:{own[-1].lineno}" if own else ""
        raise ProgramError(f"the program failed{where}: {type(exc).__name__}: {exc}") from exc
    return list(_MONITOR.records)


def _settle_stale_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what an earlier, failed run left pending on the shared event loop, and let it finish cancelling.

    Left running, those tasks would go on registering resources in the next run, in the failed run's context (a
    plan's `dry_run` among it): a first preview would then show inputs as a deployment resolves them. The monitor
    also refuses any registration of an earlier run (`RUN`), for work already handed to an executor thread."""
    stale = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not stale:
        return
    for task in stale:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*stale, return_exceptions=True))


def _quiet_after_failure(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """When a program fails, every Output waiting on the failed step is left holding the same exception; asyncio
    would print each as "Future exception was never retrieved". The failure itself is reported once, as a message."""
    if str(context.get("message", "")).endswith("exception was never retrieved"):
        return
    loop.default_exception_handler(context)


def _config_string(value: Any) -> str:
    """Config values as the Pulumi CLI hands them to a program: strings, with objects and lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    """Run like the Pulumi CLI does: from the project directory, with it on sys.path."""
    previous = Path.cwd()
    inserted = str(path) not in sys.path
    if inserted:
        sys.path.insert(0, str(path))
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
        if inserted:
            sys.path.remove(str(path))


def _decode_provider_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Provider configuration travels as strings, objects JSON-encoded; show objects as objects."""
    decoded: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        decoded[key] = value
    return decoded


def build_layered_plan(project: str, stack: str, runs: list[tuple[str, list[Recorded]]]) -> Plan:
    """One plan of several layers (each a program run), resources in layer order; names unique across layers."""
    if len(runs) == 1 and not runs[0][0]:
        return build_plan(project, stack, runs[0][1])
    resources: list[PlannedResource] = []
    for layer, records in runs:
        resources.extend(build_plan(project, stack, records, layer=layer).resources)
    # A domain's component may have the same name in both layers (`mlflow`: its AWS side and its Kubernetes
    # side); resources with a physical counterpart must be unique, so that reports can name each one.
    seen: dict[str, str] = {}
    for r in resources:
        if not r.custom:
            continue
        if r.name in seen and seen[r.name] != r.layer:
            raise ProgramError(
                f"the resource name {r.name!r} is used in both the {seen[r.name]} and the {r.layer} layer; "
                "names must be unique across layers so that plans, policies and reports can name each resource"
            )
        seen[r.name] = r.layer
    return Plan(project=project, stack=stack, resources=tuple(resources), layers=tuple(layer for layer, _ in runs))


def build_plan(project: str, stack: str, records: list[Recorded], layer: str = "") -> Plan:
    by_urn = {r.urn: r for r in records}
    names: dict[str, str] = {}
    for r in records:
        names[r.urn] = r.name

    def ref_name(ref: str) -> str | None:
        if not ref:
            return None
        urn = ref.split("::", 4)
        # provider references are "<urn>::<id>"; resource URNs have exactly 4 "::" separators
        base = "::".join(urn[:4]) if len(urn) > 4 else ref
        target = by_urn.get(base) or by_urn.get(ref)
        return target.name if target else None

    def path_of(r: Recorded) -> tuple[str, ...]:
        chain: list[str] = []
        current: Recorded | None = r
        while current is not None:
            chain.append(current.name)
            current = by_urn.get(current.parent_urn)
        return tuple(reversed(chain))

    resources = []
    for r in sorted(records, key=lambda rec: (path_of(rec), rec.type)):
        options = dict(r.options)
        options["dependsOn"] = sorted(n for u in r.dependency_urns if (n := names.get(u)))
        resources.append(
            PlannedResource(
                type=r.type,
                name=r.name,
                parent=names.get(r.parent_urn),
                provider=ref_name(r.provider_ref) if r.custom else None,
                inputs=_decode_provider_inputs(r.inputs) if r.type.startswith("pulumi:providers:") else r.inputs,
                options=dict(sorted(options.items())),
                custom=r.custom,
                references={
                    prop: sorted({n for u in urns if (n := names.get(u))})
                    for prop, urns in sorted(r.property_dependencies.items())
                    if any(names.get(u) for u in urns)
                },
                layer=layer,
                outputs=r.outputs,
            )
        )
    return Plan(project=project, stack=stack, resources=tuple(resources), layers=(layer,) if layer else ())
