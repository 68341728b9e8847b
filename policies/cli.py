"""`mlp policy`: check a stack, a saved plan or a Terraform plan against the rules.

Parsed with argparse, not typer: `mlp policy --terraform-plan` is a CI gate that must start in a fraction of a
second, so this path imports neither typer, rich, pydantic nor any Pulumi SDK (planning a stack loads them only
when a stack is named).

Exit codes: 0 no mandatory violation; 1 a mandatory violation; 2 bad input; 3 the program failed under the planner.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from infra.config_errors import ConfigError

if TYPE_CHECKING:
    from policies.config import PolicyConfig

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_PROGRAM = 1, 2, 3


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlp policy",
        description="Check a stack (planned offline), a saved `mlp plan --format json`, or Terraform plan JSON "
        "against the policy rules. Exit 1 on any mandatory violation.",
    )
    p.add_argument("stack", nargs="?", help="stack to plan offline and check, e.g. prod")
    p.add_argument("--terraform-plan", type=Path, help="Terraform plan JSON (terraform show -json PLAN)")
    p.add_argument("--plan-json", type=Path, help="a saved `mlp plan --format json`")
    p.add_argument(
        "-e",
        "--environment",
        help="policy config to apply: dev, staging or prod (default: the stack's environment; dev for plan files)",
    )
    p.add_argument("--config", type=Path, help="a policy config file (CrossGuard --policy-pack-config format)")
    p.add_argument("-f", "--format", choices=("table", "json", "sarif"), default="table")
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
    return p


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
    args = parser().parse_args(argv)
    from policies import output as render
    from policies import run as engine
    from policies.registry import all_rules

    rules = all_rules()
    if args.docs:
        from policies.docs import policies_reference

        _emit(policies_reference(), args.output)
        return 0
    if args.list_rules:
        _emit("".join(f"{r.id}\t{r.severity}\t{r.kind}\t{r.description}\n" for r in rules), args.output)
        return 0
    given = [x for x in (args.stack, args.terraform_plan, args.plan_json) if x is not None]
    if len(given) != 1:
        parser().error("give exactly one of STACK, --terraform-plan or --plan-json")
    environment = args.environment
    budget: float | None = None
    region: str | None = None
    if args.terraform_plan is not None:
        resources, skipped = engine.resources_from_terraform(args.terraform_plan)
        artifact = str(args.terraform_plan)
    elif args.plan_json is not None:
        resources, skipped = engine.resources_from_plan(engine.load_json(args.plan_json))
        artifact = str(args.plan_json)
    else:
        from mlp.planner import plan_stack
        from mlp.stackfile import load_project, load_stack

        stack_config = load_stack(load_project(_project_root(args.project_dir)), args.stack)
        platform = stack_config.validate()
        environment = environment or platform.environment
        budget = platform.budget.monthly_usd
        region = platform.region
        resources, skipped = engine.resources_from_plan(plan_stack(stack_config, platform).to_dict())
        artifact = stack_config.source
    settings = engine.policy_config(environment, args.config, rules)
    if args.terraform_plan is not None:
        region = _terraform_budget_region(args, settings)
    if budget is not None:
        settings = engine.with_stack_budget(settings, budget, region, args.price_region)
    elif region is not None or args.price_region:
        settings = engine.with_stack_budget(settings, 0.0, region, args.price_region)
    report = engine.check(resources, settings, skipped=skipped)
    if args.terraform_plan is not None:
        report = engine.terraform_budget(report, resources, args.terraform_plan, settings, region, args.price_region)
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


def _terraform_budget_region(args: argparse.Namespace, settings: PolicyConfig) -> str | None:
    """The region a Terraform plan's budget is priced in: --region, else the plan's aws provider (when neither
    names one and a budget applies, the budget check exits 2 naming the key: never a silent us-east-1)."""
    from mlp.terraform_cost import plan_region
    from policies.sources.terraform import load_terraform_plan

    return str(args.region) if args.region else plan_region(load_terraform_plan(args.terraform_plan))


def main(argv: list[str]) -> int:
    """Run and turn every failure into a message and an exit code (no traceback)."""
    from mlp.errors import ProgramError

    try:
        return run(argv)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProgramError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_PROGRAM
