"""`mlp`: the platform's command-line tool.

Exit codes: 0 success; 1 the command's check failed (e.g. a mandatory policy violation); 2 bad input (stack
config, arguments); 3 the program failed under the offline planner; 4 an AWS account call failed (credentials,
permissions, region); 70 an internal error. No command prints a
Python traceback unless MLP_DEBUG=1.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlplatform.infra.config_errors import ConfigError
from mlplatform.infra.constants import PROJECT
from mlplatform.mlp.errors import AccountError, PlanFileError, ProgramError

if TYPE_CHECKING:
    from rich.console import Console

    from mlplatform.infra.config import PlatformConfig
    from mlplatform.infra.serving.fit import FitReport
    from mlplatform.mlp.aws import AwsContext
    from mlplatform.mlp.ordering import OrderReport
    from mlplatform.mlp.plan_summary import PlanSummary
    from mlplatform.mlp.planner import Plan
    from mlplatform.mlp.schema_gate import SchemaReport
    from mlplatform.mlp.stackfile import StackConfig

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PROGRAM = 3
EXIT_ACCOUNT = 4
EXIT_INTERNAL = 70

app = typer.Typer(
    name="mlp",
    help="ML platform blueprint: offline plans, validation and checks of Pulumi stacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console(stderr: bool = False) -> Console:
    """A rich console, imported on first use (commands that print JSON never pay for rich)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, files) gets a wide console so that tables do not wrap every cell, unless COLUMNS says
    # how wide (which rich reads when no width is given).
    width = None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 200
    return Console(stderr=stderr, soft_wrap=True, width=width, emoji=False)


def _say(text: str, stderr: bool = True) -> None:
    """Plain text output (no markup): messages and errors."""
    print(text, file=sys.stderr if stderr else sys.stdout, flush=True)


class PlanFormat(enum.StrEnum):
    table = "table"
    tree = "tree"
    json = "json"
    markdown = "markdown"


class ValidateFormat(enum.StrEnum):
    text = "text"
    json = "json"


PriceRegion = Annotated[
    str | None,
    typer.Option(
        "--price-region",
        help="Price the stack at this region's rates when its own region has no price data (a labelled fallback, "
        "e.g. us-east-1); without it, missing prices fail closed.",
    ),
]
ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", "-C", help="The Pulumi project (default: the nearest Pulumi.yaml upwards)."),
]


def _project_root(project_dir: Path | None) -> Path:
    if project_dir is not None:
        return project_dir
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return here


@app.command()
def validate(
    stack: Annotated[str, typer.Argument(help="Stack name, e.g. dev (reads stacks/Pulumi.<stack>.yaml).")],
    fmt: Annotated[ValidateFormat, typer.Option("--format", "-f")] = ValidateFormat.text,
    budget: Annotated[
        bool,
        typer.Option(
            "--budget/--no-budget",
            help="Also plan the stack offline and check its full-scale cost against budget.monthly_usd (an error "
            "in prod, a warning elsewhere).",
        ),
    ] = True,
    check_order: Annotated[
        bool,
        typer.Option(
            "--order/--no-order",
            help="Also check the planned resources: their deploy order (every input that names another resource "
            "has a dependency path to it, every finalized object depends on its controller) and their inputs "
            "against the providers' schemas, the Kubernetes API and the charts' values schemas (errors).",
        ),
    ] = True,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List the exempted references of the order check with reasons.")
    ] = False,
    project_dir: ProjectDir = None,
    price_region: PriceRegion = None,
) -> None:
    """Check a stack's configuration against the platform schema (every problem at once), its cost against the
    budget and its resources' creation and deletion order. Exit 2 on a config error, 1 on an order violation or a
    budget error."""
    from mlplatform.mlp.planner import plan_stack
    from mlplatform.mlp.stackfile import load_project, load_stack

    project = load_project(_project_root(project_dir))
    stack_config = load_stack(project, stack)
    warning = None
    order = None
    schemas = None
    try:
        cfg = stack_config.validate()
        if project.name == PROJECT:  # no two stack files may claim one name or VPC CIDR (mlp/stack_clashes.py)
            from mlplatform.mlp.stack_clashes import check_stack_clashes

            check_stack_clashes(project, stack_config, cfg)
        if budget or check_order:
            planned = plan_stack(stack_config, cfg)
            if budget:
                warning = _budget_warning(stack_config, cfg, planned, price_region)
            if check_order:
                order = _order_check(planned)
                schemas = _schema_check(planned)
    except ConfigError as error:
        if fmt is ValidateFormat.json:
            _say(json.dumps(_errors_json(stack, error), indent=2), stderr=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        raise
    for message in (warning, _image_cache_warning(cfg)):
        if message:
            _say(message)
    plan_ok = (order is None or order.ok) and (schemas is None or schemas.ok)
    if fmt is ValidateFormat.json:
        body: dict[str, object] = {"stack": stack, "valid": plan_ok, "errors": []}
        if order is not None:
            body["order"] = _order_json(order)
        if schemas is not None:
            body["schema"] = _schema_json(schemas)
        _say(json.dumps(body, indent=2), stderr=False)
    else:
        pools = len(cfg.gpu_pools)
        if plan_ok:
            _say(
                f"ok stack {stack}: environment {cfg.environment}, region {cfg.region}, "
                f"cluster {cfg.cluster_name} (Kubernetes {cfg.cluster.version}), {pools} GPU pool(s)",
                stderr=False,
            )
        if order is not None:
            _report_order(order, verbose)
        if schemas is not None:
            _report_schemas(schemas, verbose)
    if not plan_ok:
        raise typer.Exit(EXIT_FAILED)


def _order_check(planned: Plan) -> OrderReport:
    from mlplatform.mlp.ordering import check_order as check

    return check(planned)


def _report_order(order: OrderReport, verbose: bool = False) -> None:
    """The deploy-order verdict on stderr: one summary line, and each violation with both resources and the path
    (verbose: also each exempted reference with its reason)."""
    from mlplatform.mlp.ordering import render

    for line in render(order, verbose=verbose):
        _say(line)


def _schema_check(planned: Plan) -> SchemaReport:
    from mlplatform.mlp.schema_gate import check_plan

    return check_plan(planned)


def _report_schemas(report: SchemaReport, verbose: bool = False) -> None:
    """The schema gate's verdict on stderr: counts per provider, then each error (resource, property path, what the
    schema allows) and warning (deprecations)."""
    from mlplatform.mlp.schema_gate import render

    for line in render(report, verbose=verbose):
        _say(line)


def _schema_json(report: SchemaReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "checked": dict(report.checked),
        "errors": [str(e) for e in report.errors],
        "warnings": [str(w) for w in report.warnings],
    }


def _order_json(order: OrderReport) -> dict[str, object]:
    return {
        "ok": order.ok,
        "references_checked": order.references_checked,
        "finalized_checked": order.finalized_checked,
        "violations": [
            {"kind": v.kind, "resource": v.resource, "path": v.path, "target": v.target, "message": v.message()}
            for v in (*order.creation, *order.deletion)
        ],
    }


def _budget_warning(
    stack_config: StackConfig, cfg: PlatformConfig, plan: Plan | None = None, price_region: str | None = None
) -> str | None:
    """Plan the stack (unless given) and check its cost ceiling against the budget: raises in prod, and wherever
    prices are missing (fail closed)."""
    from mlplatform.mlp.cost import check_budget, stack_cost
    from mlplatform.mlp.planner import plan_stack

    plan = plan if plan is not None else plan_stack(stack_config, cfg)
    return check_budget(stack_cost(stack_config, cfg, plan, price_region=price_region), stack_config)


def _image_cache_warning(cfg: PlatformConfig) -> str | None:
    """With the image cache on, the pinned (or configured) images whose registry has no cache rule for want of
    credentials."""
    from mlplatform.infra.catalog import versions
    from mlplatform.infra.registry.documents import PULLED_IMAGES, uncached_images

    cache = cfg.cluster.image_cache
    if not cache.is_enabled(cfg.environment):
        return None
    refs = [versions.image(name) for name in PULLED_IMAGES]
    refs += [ref for ref in (cfg.mlflow.image, cfg.vllm.image) if ref]
    missing = uncached_images(refs, cache.credentials)
    if not missing:
        return None
    return (
        "warning: cluster.image_cache is on but these images keep their public reference (pulled through the NAT "
        "addresses; Docker Hub limits anonymous pulls per address) because their registry needs credentials that "
        "cluster.image_cache.credentials does not name: " + ", ".join(missing)
    )


def _errors_json(stack: str, error: ConfigError) -> dict[str, object]:
    return {
        "stack": stack,
        "valid": False,
        "errors": [
            {"file": error.source, "line": i.line, "path": i.key_path(), "message": i.message} for i in error.issues
        ],
    }


@app.command()
def plan(
    stack: Annotated[str, typer.Argument(help="Stack name, e.g. prod.")],
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f", help="table, tree, json or markdown.")] = (
        PlanFormat.table
    ),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
    order: Annotated[
        bool,
        typer.Option(
            "--order",
            help="Instead of the resources: the creation waves the engine would run per layer, typical durations "
            "with their sources, the critical path, the expected wall time of `pulumi up`, and the destroy waves.",
        ),
    ] = False,
    parallelism: Annotated[
        int, typer.Option("--parallel", min=1, help="With --order: `pulumi up --parallel` (default 4 x 8 CPUs).")
    ] = 32,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List the exempted references of the order check with reasons.")
    ] = False,
    project_dir: ProjectDir = None,
    price_region: PriceRegion = None,
) -> None:
    """Show everything a stack would create, offline: no Pulumi CLI, no cloud credentials. Both layers of the
    platform are planned (the cluster layer reads the cloud layer's planned outputs). Exit 1 when the deploy order
    is broken (an input naming a resource it does not depend on, a finalized object outliving its controller) or
    an input breaks its provider's schema (a misspelled nested key, a wrong type, a missing required input, a
    value outside an enum, an unknown Kubernetes field, a chart value its schema refuses)."""
    from mlplatform.mlp.planner import plan_stack
    from mlplatform.mlp.stackfile import load_project, load_stack

    project = load_project(_project_root(project_dir))
    stack_config = load_stack(project, stack)
    result = plan_stack(stack_config)
    adoption = None
    summary: PlanSummary | None = None
    budget_error: ConfigError | None = None
    fit_reports: list[FitReport] = []
    if project.name == PROJECT:
        from mlplatform.infra.serving.fit import serving_fit

        platform = stack_config.validate()
        fit_reports = serving_fit(platform)
        summary, warning, budget_error = _plan_summary(stack_config, platform, result, price_region)
        if warning:
            _say(warning)
        if platform.adopts_cluster:
            from mlplatform.mlp.adoption import check_adoption

            adoption = check_adoption(result)
    order_report = _order_check(result)
    schema_report = _schema_check(result)
    if order:
        from mlplatform.mlp.waves import order_report as waves
        from mlplatform.mlp.waves import render_text, to_json

        report = waves(result, parallelism=parallelism)
        if fmt is PlanFormat.json:
            _emit(json.dumps(to_json(report), indent=2) + "\n", output)
        else:
            _emit(render_text(report), output)
    else:
        _render_plan(
            result,
            fmt,
            output,
            {"serving_fit": [r.to_json() for r in fit_reports]} if fit_reports else None,
            summary=summary,
        )
    for fit_report in fit_reports:  # weights + KV cache against each vLLM server's GPUs (infra/serving/fit.py)
        _say(fit_report.line())
    _report_order(order_report, verbose)
    _report_schemas(schema_report, verbose)
    if adoption is not None:
        _say(adoption.summary())
    if budget_error is not None:  # after the plan, whose summary says why (no price data, over budget in prod)
        raise budget_error
    if not (order_report.ok and schema_report.ok and (adoption is None or adoption.ok)):
        raise typer.Exit(EXIT_FAILED)


def _plan_summary(
    stack_config: StackConfig, cfg: PlatformConfig, plan: Plan, price_region: str | None
) -> tuple[PlanSummary, str | None, ConfigError | None]:
    """The plan's summary, the budget warning and the budget error (raised once the plan is shown): one estimate
    for both, as `mlp cost` computes it. Missing prices give a summary that says so and the fail-closed error."""
    from mlplatform.mlp.cost import check_budget, stack_cost
    from mlplatform.mlp.plan_summary import summarize

    try:
        cost = stack_cost(stack_config, cfg, plan, price_region=price_region)
    except ConfigError as error:  # missing prices: the summary says "no price data for REGION"
        return summarize(plan, price_region=price_region), None, error
    summary = summarize(plan, price_region=price_region, estimate=cost.estimate)
    try:
        return summary, check_budget(cost, stack_config), None
    except ConfigError as error:  # over budget in prod: the same estimate, not a second one
        return summary, None, error


def _render_plan(
    result: Plan,
    fmt: PlanFormat,
    output: Path | None,
    extra: dict[str, object] | None = None,
    summary: PlanSummary | None = None,
) -> None:
    """The plan in a format, opening with its summary (the JSON's `summary` object); `extra` adds top-level keys
    to the JSON form (the vLLM servers' memory fit)."""
    from mlplatform.mlp.render import render_json, render_markdown, render_table, render_tree

    if fmt is PlanFormat.json:
        _emit(render_json(result, summary, extra), output)
    elif fmt is PlanFormat.markdown:
        _emit(render_markdown(result, summary), output)
    else:
        if output:
            from rich.console import Console

            console = Console(file=output.open("w", encoding="utf-8"), width=200, emoji=False)
        else:
            console = _console()
        (render_tree if fmt is PlanFormat.tree else render_table)(result, console, summary)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def policy(ctx: typer.Context) -> None:
    """Check a stack, a saved plan or a Terraform plan against the policy rules (`mlp policy --help`)."""
    from mlplatform.policies.cli import main as policy_main

    raise typer.Exit(policy_main(list(ctx.args)))


@app.command()
def new(
    stack: Annotated[str, typer.Argument(help="The new stack, e.g. sandbox (writes stacks/Pulumi.<stack>.yaml).")],
    source: Annotated[str, typer.Option("--from", help="The stack whose file to copy, e.g. dev.")],
    project_dir: ProjectDir = None,
) -> None:
    """Start a stack from another one's file: a copy with its comments, a VPC CIDR no other stack file uses and
    names of its own (never over an existing file); then validate it and print the next commands. Exit 2 on a bad
    name, an existing file or a config error (mlp/newstack.py)."""
    from mlplatform.mlp.newstack import NewStackError, new_stack, next_commands
    from mlplatform.mlp.stackfile import load_project, load_stack

    project = load_project(_project_root(project_dir))
    try:
        made = new_stack(project, stack, source)
    except NewStackError as error:
        _say(f"error: {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    written = project.relative(made.path)
    _say(f"wrote {written} from {project.relative(project.stack_file(source))}", stderr=False)
    for change in made.changes:
        _say(f"  {change}", stderr=False)
    try:
        validate(stack, project_dir=project.root)
    except ConfigError as error:
        _say(f"{error}\n{written} was written; fix it, then run `mlp validate {stack}`")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    _say("next:", stderr=False)
    for line in next_commands(stack, load_stack(project, stack).validate(), written):
        _say(f"  {line}", stderr=False)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
) -> None:
    """Print the stack configuration reference (Markdown), generated from the schema."""
    from mlplatform.mlp.docs import config_reference

    _emit(config_reference(), output)


class CostFormat(enum.StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command()
def cost(
    stack: Annotated[str | None, typer.Argument(help="Stack name, e.g. prod (not with --terraform-plan).")] = None,
    compare: Annotated[str | None, typer.Option("--compare", help="A second stack to compare with.")] = None,
    fmt: Annotated[CostFormat, typer.Option("--format", "-f", help="table, json or markdown.")] = CostFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
    project_dir: ProjectDir = None,
    terraform_plan: Annotated[
        Path | None,
        typer.Option("--terraform-plan", help="Price a Terraform plan (`terraform show -json PLAN`) instead."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="With --terraform-plan: the AWS region (default: the plan's aws provider)."),
    ] = None,
    price_region: PriceRegion = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print the arithmetic of every line (table format).")
    ] = False,
) -> None:
    """Monthly cost from the offline plan and the dated price data: floor, expected, ceiling and spot scenario,
    per component and resource, each line saying how it was computed. Exit 1 when the ceiling is over budget.
    With --terraform-plan FILE: the same for what a Terraform plan declares, with what it could not price."""
    if terraform_plan is not None:
        if stack is not None or compare is not None:
            raise typer.BadParameter("--terraform-plan prices a plan file: give no STACK and no --compare")
        _terraform_cost(terraform_plan, region, fmt, output, price_region)
        return
    if stack is None:
        raise typer.BadParameter("give a STACK, or --terraform-plan FILE")
    if region is not None:
        raise typer.BadParameter("--region goes with --terraform-plan (a stack's region is in its config)")
    from mlplatform.mlp import cost as costs
    from mlplatform.mlp.planner import plan_stack
    from mlplatform.mlp.stackfile import load_project, load_stack

    project = load_project(_project_root(project_dir))

    def one(name: str) -> costs.StackCost:
        stack_config = load_stack(project, name)
        cfg = stack_config.validate()
        return costs.stack_cost(stack_config, cfg, plan_stack(stack_config, cfg), price_region=price_region)

    first = one(stack)
    second = one(compare) if compare else None
    if fmt is CostFormat.json:
        _emit(json.dumps(costs.to_json(first, second), indent=2) + "\n", output)
    elif fmt is CostFormat.markdown:
        _emit(costs.render_markdown(first, second), output)
    else:
        console = _file_console(output) if output else _console()
        if second is not None:
            costs.render_compare_table(first, second, console)
        else:
            costs.render_table(first, console)
            if explain:
                costs.render_explain(first, console)
    if first.over_budget:
        _say(f"{first.stack}: {costs.budget_message(first)}")
        raise typer.Exit(EXIT_FAILED)


def _terraform_cost(
    plan_file: Path, region: str | None, fmt: CostFormat, output: Path | None, price_region: str | None = None
) -> None:
    """`mlp cost --terraform-plan FILE`: a malformed plan or an unknown region is bad input (exit 2); so are
    missing prices (after the report, which lists them): never a silent $0."""
    from mlplatform.infra.cost.budget import missing_prices_message
    from mlplatform.mlp import terraform_cost as tf_cost

    result = tf_cost.terraform_cost(plan_file, region, price_region=price_region)
    if fmt is CostFormat.json:
        _emit(json.dumps(result.to_json(), indent=2) + "\n", output)
    elif fmt is CostFormat.markdown:
        _emit(tf_cost.render_markdown(result), output)
    else:
        tf_cost.render_table(result, _file_console(output) if output else _console())
    if result.missing_prices:
        missing = dataclasses.replace(result.estimate, lines=result.missing_prices)
        _say(f"error: {plan_file}: {missing_prices_message(missing)}")
        raise typer.Exit(EXIT_BAD_INPUT)


class IsolationFormat(enum.StrEnum):
    table = "table"
    json = "json"


@app.command()
def isolation(
    stack: Annotated[str, typer.Argument(help="Stack name, e.g. prod.")],
    fmt: Annotated[IsolationFormat, typer.Option("--format", "-f", help="table or json.")] = IsolationFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """What each team can do, from the offline plan: the Kubernetes RBAC verbs of a member (the team's groups,
    per resource, in the team's namespace, elsewhere and cluster-wide) and the reachability matrix of the team's
    pods (its namespace, other teams, DNS, MLflow, model servers, the database, the API server, instance
    metadata, Pod Identity, interface endpoints, S3, the internet), evaluated over the planned policies."""
    from mlplatform.mlp import isolation as iso
    from mlplatform.mlp.planner import plan_stack
    from mlplatform.mlp.stackfile import load_project, load_stack

    project = load_project(_project_root(project_dir))
    stack_config = load_stack(project, stack)
    cfg = stack_config.validate()
    report = iso.isolation(plan_stack(stack_config, cfg), {t: tuple(c.groups) for t, c in cfg.tenants.items()})
    if fmt is IsolationFormat.json:
        _emit(json.dumps(iso.to_json(stack, report), indent=2) + "\n", output)
    else:
        _emit(iso.render(stack, report), output)


def _file_console(output: Path) -> Console:
    from rich.console import Console

    return Console(file=output.open("w", encoding="utf-8"), width=200, emoji=False)


class DiffFormat(enum.StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def _plan_dict(ref: str, project_dir: Path | None) -> dict[str, object]:
    """A plan from a saved JSON file (a path ending in .json) or by planning a stack."""
    from mlplatform.mlp.diff import load_plan_json
    from mlplatform.mlp.planner import plan_stack
    from mlplatform.mlp.stackfile import load_project, load_stack

    if ref.endswith(".json"):
        return load_plan_json(Path(ref))
    stack_config = load_stack(load_project(_project_root(project_dir)), ref)
    return plan_stack(stack_config).to_dict()


@app.command()
def diff(
    left: Annotated[str, typer.Argument(help="A stack name or a saved plan (FILE.json from mlp plan -f json).")],
    right: Annotated[str, typer.Argument(help="Another stack name or saved plan.")],
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="text, json or markdown.")] = DiffFormat.text,
    project_dir: ProjectDir = None,
    with_cost: Annotated[
        bool, typer.Option("--cost/--no-cost", help="Also compare the monthly cost per component (default: on).")
    ] = True,
) -> None:
    """What differs between two plans: resources added and removed, every changed input or option, and per
    component the monthly cost before and after (floor, expected, ceiling) with the change, in each plan's region
    (its AWS provider's; a plan without one is not priced, and the output says why)."""
    from mlplatform.mlp import diff as diffs
    from mlplatform.mlp import diff_cost

    before, after = _plan_dict(left, project_dir), _plan_dict(right, project_dir)
    result = diffs.diff_plans(before, after, left, right)
    cost = diff_cost.cost_diff(before, after, left, right) if with_cost else None
    if fmt is DiffFormat.json:
        body = diffs.to_json(result)
        if cost is not None:
            body["cost"] = diff_cost.to_json(cost)
        _say(json.dumps(body, indent=2, default=str), stderr=False)
    elif fmt is DiffFormat.markdown:
        _say(diffs.render_markdown(result), stderr=False)
        if cost is not None:
            _say(diff_cost.render_markdown(cost), stderr=False)
    else:
        console = _console()
        diffs.render_text(result, console)
        if cost is not None:
            diff_cost.render_text(cost, console)


@app.command()
def graph(
    stack: Annotated[str, typer.Argument(help="A stack name or a saved plan (FILE.json).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="mermaid (default) or json (components and edges).")
    ] = "mermaid",
    project_dir: ProjectDir = None,
) -> None:
    """A Mermaid diagram of the stack's components and the dependencies between them."""
    from mlplatform.mlp import graph as graphs

    plan = _plan_dict(stack, project_dir)
    if fmt == "json":
        components, edges = graphs.component_edges(plan)
        body = {
            "components": [{"name": n, "type": t, "resources": c} for n, (t, c) in sorted(components.items())],
            "edges": [{"from": a, "to": b} for a, b in sorted(edges)],
        }
        _emit(json.dumps(body, indent=2) + "\n", output)
    elif fmt == "mermaid":
        _emit(graphs.mermaid(plan), output)
    else:
        raise typer.BadParameter(f"--format {fmt!r}: allowed: mermaid, json")


class AccountFormat(enum.StrEnum):
    table = "table"
    json = "json"


RegionOption = Annotated[
    str | None, typer.Option("--region", help="AWS region (default: the stack's, else AWS_REGION).")
]
ProfileOption = Annotated[
    str | None, typer.Option("--profile", help="AWS profile (default: the stack's aws:profile, else the shell's).")
]
StackOption = Annotated[
    str | None, typer.Option("--stack", "-s", help="A stack whose region (and, for --fix, cost tags) to use.")
]


def _aws_context(region: str | None, profile: str | None, stack_cfg: PlatformConfig | None = None) -> AwsContext:
    from mlplatform.mlp.aws import AwsContext

    chosen = region or (stack_cfg.region if stack_cfg else None) or os.environ.get("AWS_REGION")
    chosen = chosen or os.environ.get("AWS_DEFAULT_REGION")
    if not chosen:
        raise typer.BadParameter("no AWS region: pass --region or --stack, or set AWS_REGION")
    return AwsContext(region=chosen, profile=profile or (stack_cfg.aws.profile if stack_cfg else None))


def _stack_cfg(stack: str | None, project_dir: Path | None) -> PlatformConfig | None:
    if stack is None:
        return None
    from mlplatform.mlp.stackfile import load_project, load_stack

    return load_stack(load_project(_project_root(project_dir)), stack).validate()


def _adopted_subnets(cfg: PlatformConfig, project_root: Path) -> list[str] | None:
    """The private subnet ids of a network adopted from a Terraform state (read as the planner reads it)."""
    adopt = cfg.network.adopt
    if adopt is None or adopt.terraform_state is None:
        return None
    from mlplatform.infra.network.terraform_state import TerraformStateError, network_from_outputs
    from mlplatform.mlp.mocks import PlannerError
    from mlplatform.mlp.terraform_state import invoke_handlers

    state = adopt.terraform_state
    handlers = invoke_handlers(project_root)
    try:
        if state.path is not None:
            outputs = handlers["terraform:state:getLocalReference"]({"path": state.path})["outputs"]
            source = state.path
        else:
            assert state.s3 is not None
            args = {"bucket": state.s3.bucket, "key": state.s3.key, "region": state.s3.region}
            outputs = handlers["terraform:state:getS3Reference"](args)["outputs"]
            source = f"s3://{state.s3.bucket}/{state.s3.key}"
        return network_from_outputs(outputs, state.outputs.model_dump(), source).private_subnet_ids
    except (PlannerError, TerraformStateError) as exc:
        raise AccountError(str(exc)) from None


def _adopted_cluster_name(cfg: PlatformConfig, project_root: Path) -> str | None:
    """The name of a cluster adopted from a Terraform state (read as the planner reads it, checked as the program
    checks it)."""
    adopt = cfg.cluster.adopt
    if adopt is None or adopt.terraform_state is None:
        return None
    from mlplatform.infra.cluster.terraform_state import cluster_from_outputs
    from mlplatform.infra.terraform_state import TerraformStateError
    from mlplatform.mlp.mocks import PlannerError
    from mlplatform.mlp.terraform_state import invoke_handlers

    state = adopt.terraform_state
    handlers = invoke_handlers(project_root)
    try:
        if state.path is not None:
            outputs = handlers["terraform:state:getLocalReference"]({"path": state.path})["outputs"]
            source = f"terraform state {state.path}"
        else:
            assert state.s3 is not None
            args = {"bucket": state.s3.bucket, "key": state.s3.key, "region": state.s3.region}
            outputs = handlers["terraform:state:getS3Reference"](args)["outputs"]
            source = f"terraform state s3://{state.s3.bucket}/{state.s3.key}"
        facts = cluster_from_outputs(
            outputs,
            state.outputs.model_dump(),
            source,
            expected_version=cfg.cluster.version,
            expected_name=cfg.cluster.name,
        )
    except (PlannerError, TerraformStateError) as exc:
        raise AccountError(str(exc)) from None
    return facts.cluster_name


@app.command()
def preflight(
    stack: Annotated[str, typer.Argument(help="Stack name, e.g. prod (its config says what to check).")],
    profile: ProfileOption = None,
    fmt: Annotated[AccountFormat, typer.Option("--format", "-f")] = AccountFormat.table,
    project_dir: ProjectDir = None,
) -> None:
    """Before `pulumi up` (needs AWS credentials, reads only): your access to the cluster (which path deploys the
    cluster layer; checked first, and alone on failure), an adopted cluster against what the stack declares (version,
    authentication mode, endpoint, the VPC CNI and Pod Identity agent add-ons, the runner's way in), GPU vCPU quotas
    against the stack's maximum, instance type offerings in its AZs, capacity reservations, free IPs. Exit 1 when
    something will fail."""
    from mlplatform.mlp import preflight as checks
    from mlplatform.mlp.aws import Progress

    root = _project_root(project_dir)
    cfg = _stack_cfg(stack, root)
    assert cfg is not None
    ctx = _aws_context(None, profile, cfg)
    subnets = _adopted_subnets(cfg, root)
    cluster_name = _adopted_cluster_name(cfg, root)
    with Progress(quiet=fmt is AccountFormat.json) as progress:
        report = checks.run_preflight(
            cfg,
            ctx,
            progress.step,
            adopted_subnet_ids=subnets,
            adopted_cluster_name=cluster_name,
            stack=stack,
            source=f"stacks/Pulumi.{stack}.yaml",
        )
    if report.stopped_early and fmt is not AccountFormat.json:
        # No cluster access: nothing else matters yet. One line: what fails and the fix.
        for f in report.findings:
            if f.severity == "error":
                _say(f"error: {f.check} ({f.subject}): {f.message}; fix: {f.fix}")
        raise typer.Exit(EXIT_FAILED)
    if fmt is AccountFormat.json:
        _say(json.dumps(checks.to_json(report), indent=2), stderr=False)
    else:
        checks.render_table(report, _console())
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("audit-tags")
def audit_tags(
    fix: Annotated[
        Path | None,
        typer.Option("--fix", help="A mapping file (YAML/JSON: defaults and per-resource values) to fill the gaps."),
    ] = None,
    fix_from_stack: Annotated[
        bool, typer.Option("--fix-from-stack", help="With --stack: fill the gaps with the stack's own cost tags.")
    ] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Write the tags (without it --fix is a dry run).")] = False,
    required: Annotated[
        str | None, typer.Option("--required", help="Comma-separated tag keys (default: the platform's cost tags).")
    ] = None,
    stack: StackOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    fmt: Annotated[AccountFormat, typer.Option("--format", "-f")] = AccountFormat.table,
    project_dir: ProjectDir = None,
) -> None:
    """AWS resources of an account and region missing required cost tags (EC2 instances, volumes, network
    interfaces, S3, RDS, EKS clusters and node groups, load balancers), each through its own service's API.
    Exit 1 when resources lack tags (or would after the fix), 4 when a kind could not be read or a tag failed."""
    from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS
    from mlplatform.mlp import audit_tags as audits
    from mlplatform.mlp.aws import Progress

    cfg = _stack_cfg(stack, project_dir)
    if fix_from_stack and cfg is None:
        raise typer.BadParameter("--fix-from-stack needs --stack")
    if apply and fix is None and not fix_from_stack:
        raise typer.BadParameter("--apply needs --fix FILE or --fix-from-stack")
    keys = tuple(k.strip() for k in required.split(",")) if required else REQUIRED_COST_TAGS
    ctx = _aws_context(region, profile, cfg)
    with Progress(quiet=fmt is AccountFormat.json) as progress:
        report = audits.audit(ctx, keys, progress.step)
        changes = None
        if fix is not None or fix_from_stack:
            mapping = (
                audits.load_mapping(fix)
                if fix is not None
                else audits.parse_mapping({"defaults": dict(cfg.tags) if cfg else {}}, f"stack {stack}")
            )
            changes = audits.plan_fix(report, mapping)
            if apply:
                changes = audits.apply_fix(ctx, changes, progress.step)
    if fmt is AccountFormat.json:
        body = audits.to_json(report)
        if changes is not None:
            body["fix"] = {"applied": apply, **audits.to_json(changes)}
        _say(json.dumps(body, indent=2), stderr=False)
    else:
        console = _console()
        audits.render_table(report, console)
        if changes is not None:
            audits.render_table(changes, console)
            if not apply:
                _say("dry run: nothing was tagged; add --apply to write these tags", stderr=False)
    if report.errors or (changes is not None and any(c.error for c in changes)):
        raise typer.Exit(EXIT_ACCOUNT)
    if changes is None:
        unresolved = bool(report.findings)
    else:
        unresolved = any(c.unfixable for c in changes) or (not apply and any(c.add for c in changes))
    if unresolved:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def residue(
    stack: Annotated[str, typer.Argument(help="The destroyed stack (its `pulumi-stack` tag value).")],
    delete: Annotated[bool, typer.Option("--delete", help="Delete the deletable leftovers (asks to confirm).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --delete: confirm without a prompt (for CI).")] = False,
    region: RegionOption = None,
    profile: ProfileOption = None,
    fmt: Annotated[AccountFormat, typer.Option("--format", "-f")] = AccountFormat.table,
    project_dir: ProjectDir = None,
) -> None:
    """After `pulumi destroy`: billable leftovers tagged with the stack (instances Karpenter launched, volumes,
    network interfaces, addresses, NAT gateways, load balancers, target groups, security groups, log groups; data
    such as buckets, databases, snapshots and keys is listed and never deleted). A dry run unless --delete.
    Exit 1 when deletable leftovers remain, 4 when a deletion failed."""
    from mlplatform.mlp import residue as leftovers
    from mlplatform.mlp.aws import Progress

    cfg = None
    if region is None:
        from mlplatform.mlp.stackfile import load_project

        project = load_project(_project_root(project_dir))
        if project.stack_file(stack).is_file():
            cfg = _stack_cfg(stack, project_dir)
    ctx = _aws_context(region, profile, cfg)
    quiet = fmt is AccountFormat.json
    with Progress(quiet=quiet) as progress:
        report = leftovers.find_residue(ctx, stack, progress.step)
    results = None
    if delete and report.deletable:
        if not yes:
            if not sys.stdin.isatty():
                raise typer.BadParameter("--delete without a terminal needs --yes")
            leftovers.render_table(report, _console())
            answer = typer.prompt(f"Delete {len(report.deletable)} item(s) of stack {stack!r}? Type the stack name")
            if answer.strip() != stack:
                _say("not confirmed: nothing deleted")
                raise typer.Exit(EXIT_FAILED)
        with Progress(quiet=quiet) as progress:
            results = leftovers.delete_residue(ctx, report, progress.step)
    if fmt is AccountFormat.json:
        body = leftovers.to_json(report)
        if results is not None:
            body["deletions"] = leftovers.to_json(results)
        _say(json.dumps(body, indent=2), stderr=False)
    else:
        console = _console()
        leftovers.render_table(results if results is not None else report, console)
        if results is None and report.deletable:
            _say(f"dry run: nothing deleted; `mlp residue {stack} --delete` removes the deletable items", stderr=False)
    if results is not None:
        if any(r.outcome == "failed" for r in results):
            raise typer.Exit(EXIT_ACCOUNT)
    elif report.deletable:
        raise typer.Exit(EXIT_FAILED)


@app.command("bootstrap-backend")
def bootstrap_backend(
    name: Annotated[str, typer.Argument(help="The state bucket's name (also names the KMS key's alias).")],
    region: RegionOption = None,
    profile: ProfileOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be created or changed.")] = False,
    noncurrent_days: Annotated[
        int, typer.Option("--noncurrent-days", min=1, help="Keep old state versions this many days.")
    ] = 90,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="A cost tag KEY=VALUE for the bucket and key (repeatable; overrides --stack's)."),
    ] = None,
    stack: Annotated[
        str | None, typer.Option("--stack", "-s", help="A stack whose cost tags (and region) to use.")
    ] = None,
    fmt: Annotated[AccountFormat, typer.Option("--format", "-f")] = AccountFormat.table,
    project_dir: ProjectDir = None,
) -> None:
    """The Pulumi state backend: a versioned, SSE-KMS, private, TLS-only S3 bucket and a KMS key (with alias) for
    stack secrets, both carrying the required cost tags (from --tag or --stack). Idempotent: a second run changes
    nothing, and adds only missing tags to an existing bucket or key; nothing is ever deleted. Prints the login
    lines."""
    from mlplatform.mlp import bootstrap as backend

    cfg = _stack_cfg(stack, project_dir)
    cost_tags = dict(cfg.tags) if cfg else {}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--tag {item!r}: expected KEY=VALUE")
        cost_tags[key.strip()] = value.strip()
    try:
        backend.validate_bucket_name(name)
        backend.backend_tags(cost_tags)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    ctx = _aws_context(region, profile, cfg)
    plan = backend.plan_bootstrap(ctx, name, ctx.region, noncurrent_days=noncurrent_days, cost_tags=cost_tags)
    result = None if dry_run else backend.apply_bootstrap(ctx, plan)
    if fmt is AccountFormat.json:
        body = backend.to_json(plan if result is None else result)
        _say(json.dumps(body, indent=2), stderr=False)
        return
    console = _console()
    backend.render_table(plan if result is None else result, console)  # a result's table ends with the login lines
    if result is None:
        _say("dry run: nothing was created or changed", stderr=False)
        for line in backend.login_lines(name, ctx.region, plan.alias):
            _say(line, stderr=False)


class RunnerCommand(enum.StrEnum):
    preview = "preview"
    up = "up"
    destroy = "destroy"
    refresh = "refresh"


@app.command()
def runner(
    stack: Annotated[str, typer.Argument(help="A stack with a private endpoint (its cloud layer is deployed).")],
    command: Annotated[RunnerCommand, typer.Argument(help="The cluster layer's pulumi command.")] = (
        RunnerCommand.preview
    ),
    yes: Annotated[bool, typer.Option("--yes", help="With destroy: confirm without a prompt (for CI).")] = False,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Stream the build's log until it finishes.")
    ] = True,
    allow_dirty: Annotated[
        bool,
        typer.Option("--allow-dirty", help="Run although the tree has uncommitted changes (they are not deployed)."),
    ] = False,
    profile: ProfileOption = None,
    fmt: Annotated[AccountFormat, typer.Option("--format", "-f")] = AccountFormat.table,
    project_dir: ProjectDir = None,
) -> None:
    """Run the cluster layer's `pulumi preview|up|destroy|refresh` in the in-VPC runner (a CodeBuild project in the
    private subnets with a cluster-admin access entry), from the committed tree: upload it, start the build, stream
    its log. Exit 1 when the build fails, 4 when an AWS call or a precondition fails."""
    from mlplatform.mlp import runner as runs

    root = _project_root(project_dir)
    cfg = _stack_cfg(stack, root)
    assert cfg is not None
    runs.check_request(cfg, stack, command.value, confirmed=True)
    confirmed = command is not RunnerCommand.destroy or yes
    if not confirmed:
        if not sys.stdin.isatty():
            raise typer.BadParameter("destroy without a terminal needs --yes")
        answer = typer.prompt(f"Destroy the cluster layer of stack {stack!r}? Type the stack name")
        if answer.strip() != stack:
            _say("not confirmed: nothing started")
            raise typer.Exit(EXIT_FAILED)
        confirmed = True
    quiet = fmt is AccountFormat.json
    result = runs.run_runner(
        cfg,
        stack,
        command.value,
        _aws_context(None, profile, cfg),
        root,
        emit=(lambda _line: None) if quiet else (lambda line: _say(line, stderr=False)),
        confirmed=confirmed,
        follow=follow,
        allow_dirty=allow_dirty,
    )
    if quiet:
        _say(json.dumps(runs.to_json(result), indent=2), stderr=False)
    if result.succeeded is False:
        raise typer.Exit(EXIT_FAILED)


class SmokeFormat(enum.StrEnum):
    table = "table"
    json = "json"


@app.command()
def smoke(
    stack: Annotated[str, typer.Argument(help="Stack name, e.g. dev (its config says what to check).")],
    only: Annotated[
        str | None,
        typer.Option("--only", help="Comma-separated checks: kubernetes, mlflow, ray, vllm, prometheus."),
    ] = None,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="KEY=URL of a service instead of a kubectl port-forward; KEY is mlflow, prometheus, ray:<cluster> "
            "or vllm:<model>. Repeatable.",
        ),
    ] = None,
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Kubeconfig file.")] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for Ray jobs and woken servers.")] = 600,
    wake: Annotated[bool, typer.Option("--wake", help="Scale parked vLLM servers (0 replicas) to one.")] = False,
    fmt: Annotated[SmokeFormat, typer.Option("--format", "-f")] = SmokeFormat.table,
    project_dir: ProjectDir = None,
) -> None:
    """After `pulumi up`: check the deployed platform end to end (pass or fail per check, exit 1 on any failure)."""
    from mlplatform.mlp.smoke import CHECK_NAMES, CheckResult, SmokeOptions, results_json, run_smoke
    from mlplatform.mlp.stackfile import load_project, load_stack

    checks = tuple(c.strip() for c in only.split(",")) if only else CHECK_NAMES
    unknown = sorted(set(checks) - set(CHECK_NAMES))
    if unknown:
        raise typer.BadParameter(f"unknown check(s) {', '.join(unknown)}; allowed: {', '.join(CHECK_NAMES)}")
    urls: dict[str, str] = {}
    for item in url or []:
        key, sep, value = item.partition("=")
        if not sep or not value.startswith(("http://", "https://")):
            raise typer.BadParameter(f"--url {item!r}: expected KEY=http(s)://HOST:PORT")
        urls[key] = value
    cfg = load_stack(load_project(_project_root(project_dir)), stack).validate()

    def emit(result: CheckResult) -> None:
        if fmt is SmokeFormat.table:
            mark = "PASS" if result.ok else "FAIL"
            _say(f"{mark}  {result.check:<11} {result.target}: {result.detail} ({result.seconds:.1f}s)", stderr=False)

    options = SmokeOptions(checks=checks, kubeconfig=kubeconfig, context=context, urls=urls, timeout=timeout, wake=wake)
    results = run_smoke(cfg, options, emit)
    if fmt is SmokeFormat.json:
        _say(results_json(stack, results), stderr=False)
    failed = [r for r in results if not r.ok]
    if fmt is SmokeFormat.table:
        _say(f"{len(results) - len(failed)} passed, {len(failed)} failed", stderr=False)
    if failed or not results:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def prices(
    action: Annotated[str, typer.Argument(help="refresh: fetch prices from the AWS Price List API into the cache.")],
    regions: Annotated[
        str | None, typer.Option("--regions", help="Comma-separated regions (default: the stacks' aws:region).")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Where to write (default: $MLP_PRICE_CACHE, else ~/.cache/mlp/prices)."),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """`mlp prices refresh`: EC2, EKS, NAT, RDS, EBS, S3, KMS, Secrets Manager, load balancer, CloudWatch Logs, ECR
    and CodeBuild prices of REGIONS from the AWS Price List API (needs AWS credentials) into the user's price
    cache, which `mlp cost` reads before the shipped us-east-1 snapshot. Exit 1 when some price was not found (it
    stays unpriced, never $0), 4 when the API cannot be called."""
    from mlplatform.mlp import prices as price_cmd

    if action != price_cmd.PricesAction.refresh:
        raise typer.BadParameter(f"unknown action {action!r}: the only one is 'refresh'")
    stack_files = sorted((_project_root(project_dir) / "stacks").glob("Pulumi.*.yaml"))
    try:
        wanted = price_cmd.parse_regions(regions, stack_files)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    code = price_cmd.refresh(wanted, cache_dir, stack_files, say=_say)
    if code:
        raise typer.Exit(code)


def _emit(text: str, output: Path | None) -> None:
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def main() -> None:
    """Console-script entry point: run the app and turn every failure into a message and an exit code."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.TyperException as error:  # usage errors: bad option, missing argument
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            _say(f"error: {error.format_message()}")
        sys.exit(error.exit_code)
    except ConfigError as error:
        _say(str(error))
        sys.exit(EXIT_BAD_INPUT)
    except ProgramError as error:
        _say(f"error: {error}")
        sys.exit(EXIT_PROGRAM)
    except PlanFileError as error:
        _say(f"error: {error}")
        sys.exit(EXIT_BAD_INPUT)
    except AccountError as error:
        _say(f"error: {error}")
        sys.exit(EXIT_ACCOUNT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("MLP_DEBUG") == "1":
            raise
        _say(f"internal error: {type(exc).__name__}: {exc}\n(run with MLP_DEBUG=1 for a traceback)")
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
