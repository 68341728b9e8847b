"""`mlp policy`: check a stack, a saved plan or a Terraform plan against the rules.

Parsed with argparse, not typer: `mlp policy --terraform-plan` is a CI gate that must start in a fraction of a
second, so this path imports neither typer, rich, pydantic nor any Pulumi SDK (planning a stack loads them only
when a stack is named; typer parses through pydantic). `--help` is typer's, like every other `mlp` command's: a
typer command is built from this parser (one definition of the options) and prints it; usage errors are worded as
typer words them.

A saved plan (`mlp plan -f json`) records its stack's environment, region and budget (`stack_config`): `--plan-json`
checks it with that environment's policy config, budget and region, unless -e or --config names another config
(stderr says which config was used).

Exit codes: 0 no mandatory violation; 1 a mandatory violation; 2 bad input; 3 the program failed under the planner.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from mlplatform.infra.config_errors import ConfigError, ConfigIssue

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_PROGRAM = 1, 2, 3


HELP_OPTIONS = ("-h", "--help")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error as typer words it (the rest of `mlp`), exit 2."""
        sys.stderr.write(
            f"Usage: {self.prog} [OPTIONS] [STACK]\nTry '{self.prog} --help' for help.\n\nError: {message}\n"
        )
        sys.exit(EXIT_BAD_INPUT)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mlp policy",
        add_help=False,  # -h/--help print typer's help (print_help below)
        description="Check a stack (planned offline), a saved `mlp plan --format json`, or Terraform plan JSON "
        "against the policy rules. Exit 1 on any mandatory violation, 2 on bad input (missing prices included), "
        "3 when the program fails under the planner.",
    )
    p.add_argument("stack", nargs="?", help="stack to plan offline and check, e.g. prod")
    p.add_argument("--terraform-plan", type=Path, help="Terraform plan JSON (terraform show -json PLAN)")
    p.add_argument(
        "--plan-json",
        type=Path,
        help="a saved `mlp plan --format json`, checked with the environment, budget and region it records",
    )
    p.add_argument(
        "-e",
        "--environment",
        help="policy config to apply: dev, staging or prod (default: the stack's environment, or the one a saved "
        "plan records; dev for a Terraform plan)",
    )
    p.add_argument("--config", type=Path, help="a policy config file (CrossGuard --policy-pack-config format)")
    p.add_argument("-f", "--format", choices=("table", "json", "sarif"), default="table", help="the report's format")
    p.add_argument("-o", "--output", type=Path, help="write the report to a file instead of stdout")
    p.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    p.add_argument("--docs", action="store_true", help="print the policy reference (Markdown) and exit")
    p.add_argument("-C", "--project-dir", type=Path, help="the Pulumi project (default: nearest Pulumi.yaml)")
    p.add_argument(
        "--region",
        help="with --terraform-plan: the AWS region its budget is priced in (default: the plan's aws provider "
        "region; a plan that names none needs this when a budget applies)",
    )
    p.add_argument(
        "--price-region",
        help="price the budget at this region's rates when the stack's region has no price data (a labelled "
        "fallback, e.g. us-east-1); without it, missing prices fail closed",
    )
    p.add_argument(*HELP_OPTIONS, action="store_true", help="show this message and exit")
    return p


def print_help(p: argparse.ArgumentParser) -> None:
    """Typer's help (rich panels, as `mlp plan --help`) for this argparse parser: a typer command is built from the
    parser's arguments (names, help, choices, defaults) and renders it; typer and rich load only here."""
    import enum
    import inspect
    from typing import Annotated

    import typer

    params: list[inspect.Parameter] = []
    for action in p._actions:  # argparse keeps its arguments here (a stable attribute since Python 2.7)
        if action.dest == "help":
            continue
        kind: Any = bool if isinstance(action, argparse._StoreTrueAction) else (action.type or str)
        default = action.default
        if action.choices:
            choices = enum.StrEnum(action.dest.title(), {str(c): str(c) for c in action.choices})  # type: ignore[misc]
            kind, default = choices, choices(default) if default is not None else None
        help_text = f"{action.help[:1].upper()}{action.help[1:]}." if action.help else ""
        if action.option_strings:
            names = sorted(action.option_strings, key=lambda o: (not o.startswith("--"), o))
            info: Any = typer.Option(*names, help=help_text, show_default=action.default is not None)
        else:
            info = typer.Argument(help=help_text, metavar=action.dest.upper(), show_default=False)
        optional = kind if kind is bool or default is not None else kind | None
        params.append(
            inspect.Parameter(
                action.dest, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[optional, info]
            )
        )

    def command(**_: Any) -> None:  # never runs: the help is printed while parsing
        pass

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {param.name: param.annotation for param in params}
    command.__doc__ = p.description
    app = typer.Typer(add_completion=False, context_settings={"help_option_names": list(HELP_OPTIONS)})
    app.command()(command)
    typer.main.get_command(app).main(args=["--help"], prog_name=p.prog, standalone_mode=False)


def _emit(text: str, output: Path | None) -> None:
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _project_root(project_dir: Path | None) -> Path:
    if project_dir is not None:
        return project_dir
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return here


def run(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.help:
        print_help(p)
        return 0
    from mlplatform.policies import output as render
    from mlplatform.policies import run as engine
    from mlplatform.policies.registry import all_rules

    rules = all_rules()
    if args.docs:
        from mlplatform.policies.docs import policies_reference

        _emit(policies_reference(), args.output)
        return 0
    if args.list_rules:
        _emit("".join(f"{r.id}\t{r.severity}\t{r.kind}\t{r.description}\n" for r in rules), args.output)
        return 0
    given = [x for x in (args.stack, args.terraform_plan, args.plan_json) if x is not None]
    if len(given) != 1:
        p.error("give exactly one of STACK, --terraform-plan or --plan-json")
    environment = args.environment
    budget: float | None = None
    region: str | None = None
    if args.terraform_plan is not None:
        terraform_read = engine.read_terraform_plan(args.terraform_plan)
        _, resources, skipped = terraform_read
        artifact = str(args.terraform_plan)
    elif args.plan_json is not None:
        plan = engine.load_json(args.plan_json)
        resources, skipped = engine.resources_from_plan(plan)
        artifact = str(args.plan_json)
        recorded = _recorded_stack(plan, args.plan_json)
        if recorded is not None:
            budget, region = float(recorded["budget_monthly_usd"]), str(recorded["region"])
        _say_config_source(args.plan_json, recorded, environment, args.config)
        environment = environment or (recorded or {}).get("environment")
    else:
        from mlplatform.mlp.planner import plan_stack
        from mlplatform.mlp.stackfile import load_project, load_stack

        stack_config = load_stack(load_project(_project_root(args.project_dir)), args.stack)
        platform = stack_config.validate()
        environment = environment or platform.environment
        budget = platform.budget.monthly_usd
        region = platform.region
        resources, skipped = engine.resources_from_plan(plan_stack(stack_config, platform).to_dict())
        artifact = stack_config.source
    settings = engine.policy_config(environment, args.config, rules)
    if args.terraform_plan is not None:
        region = _terraform_budget_region(terraform_read[0], args.region)
    if budget is not None:
        settings = engine.with_stack_budget(settings, budget, region, args.price_region)
    elif region is not None or args.price_region:
        settings = engine.with_stack_budget(settings, 0.0, region, args.price_region)
    report = engine.check(resources, settings, skipped=skipped)
    if args.terraform_plan is not None:
        report = engine.terraform_budget(
            report, terraform_read, args.terraform_plan, settings, region, args.price_region
        )
    if args.format == "json":
        _emit(render.to_json(report), args.output)
    elif args.format == "sarif":
        _emit(render.to_sarif(report, rules, artifact), args.output)
    else:
        _emit(render.to_table(report), args.output)
    missing = engine.missing_prices(report)
    if missing is not None:
        # Fail closed whatever the rule's level: a budget without prices is no verdict.
        print(f"error: {artifact}: {missing}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_FAILED if report.mandatory else 0


STACK_KEYS: dict[str, type | tuple[type, ...]] = {
    "environment": str,
    "region": str,
    "budget_monthly_usd": (int, float),
}


def _recorded_stack(plan: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """The stack settings a saved plan records (`stack_config`), checked; None for a plan saved without them."""
    recorded = plan.get("stack_config")
    if recorded is None:
        return None
    issues = []
    if not isinstance(recorded, Mapping):
        issues.append(ConfigIssue(("stack_config",), "must be an object"))
    else:
        for key, kind in STACK_KEYS.items():
            value = recorded.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                wanted = "number" if isinstance(kind, tuple) else "string"
                issues.append(ConfigIssue(("stack_config", key), f"is missing or not a {wanted}"))
    if issues:
        raise ConfigError(str(path), issues)
    return {key: recorded[key] for key in STACK_KEYS}


def _say_config_source(
    path: Path, recorded: Mapping[str, Any] | None, environment: str | None, config: Path | None
) -> None:
    """Say on stderr which policy config a saved plan is checked with, and why (the report itself stays clean)."""
    planned = f"the plan records environment {recorded['environment']}" if recorded else "the plan records no stack"
    if config is not None:
        said = f"{config} (--config; {planned})"
    elif environment is not None:
        said = f"{environment} (-e; {planned})"
    elif recorded is not None:
        said = f"{recorded['environment']} ({planned}, with its budget and region)"
    else:
        said = f"dev ({planned}: saved before plans recorded it; pass -e to choose)"
    print(f"{path}: policy config {said}", file=sys.stderr)


def _terraform_budget_region(plan: Mapping[str, Any], region: str | None) -> str | None:
    """The region a Terraform plan's budget is priced in: --region, else the plan's aws provider (when neither
    names one and a budget applies, the budget check exits 2 naming the key: never a silent us-east-1)."""
    from mlplatform.mlp.terraform_cost import plan_region

    return region or plan_region(plan)


def main(argv: list[str]) -> int:
    """Run and turn every failure into a message and an exit code (no traceback)."""
    from mlplatform.mlp.errors import ProgramError

    try:
        return run(argv)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProgramError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_PROGRAM
