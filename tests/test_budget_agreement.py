"""One budget computation: `mlp validate`, `mlp plan`, `mlp cost`, `mlp policy` and the `mlp-budget` rule function
(what the CrossGuard pack runs) give the same verdict, figure and message on every shipped stack, on prod moved to
us-west-2 (no prices there: the same fail-closed error from all five) and on that stack priced at us-east-1 rates
with `--price-region` (the same figure from all five, labelled as a fallback)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from mlplatform.infra.cost import MissingPricesError, budget_verdict
from mlplatform.mlp.cost import plan_resources
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import load_project, load_stack
from mlplatform.policies.model import RuleContext
from mlplatform.policies.rules.ml.budget import RULE as BUDGET_RULE

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("validate", "plan", "cost", "policy")
MISSING = (
    "no price data for region us-west-2 (30 line(s): EBS gp3 in us-west-2; EC2 prices of c7i, m7i in us-west-2; "
    "EC2 prices of g6e.12xlarge, g6e.2xlarge, g6e.48xlarge, g6e.xlarge in us-west-2; EC2 prices of m7i.xlarge in "
    "us-west-2; EC2 prices of p5.48xlarge in us-west-2; and 9 more): the budget cannot be checked; run `mlp prices "
    "refresh --regions us-west-2`, or pass `--price-region us-east-1` to price at us-east-1 rates (a labelled "
    "fallback)"
)
FALLBACK_OVER = (
    "the estimated monthly cost at full scale is $131,766.91 (priced at us-east-1 rates: fallback for us-west-2), "
    "over the budget of $1,000.00 (largest: nodepools-training-nodepool $80,358, nodepools-inference-nodepool "
    "$44,040, nodepools-general-nodepool $4,965)"
)


@pytest.fixture(autouse=True)
def no_price_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the shipped price data: a developer's `mlp prices refresh` cache would price us-west-2."""
    monkeypatch.setenv("MLP_PRICE_CACHE", str(tmp_path / "no-price-cache"))


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    # Rich and the error printer wrap long lines; the message is compared with its whitespace collapsed.
    return int(exit_info.value.code or 0), " ".join((captured.out + captured.err).split())


def _rule(plan: Plan, region: str, budget: float, price_region: str = "") -> list[str]:
    params = {"monthlyBudgetUsd": budget, "region": region, "priceRegion": price_region}
    # The rule's own check function, as the CrossGuard pack's stack policy calls it.
    ctx = RuleContext(params=params, today=dt.date.today())
    return [message for _, message in BUDGET_RULE.check(plan_resources(plan), ctx)]


@pytest.fixture(scope="module")
def west(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project whose prod stack is in us-west-2 with a $1,000 budget (the measured defect)."""
    project = tmp_path_factory.mktemp("west") / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "__pycache__", "bench"))
    path = project / "stacks" / "Pulumi.prod.yaml"
    text = path.read_text()
    text = text.replace("aws:region: us-east-1", "aws:region: us-west-2")
    text = text.replace(":us-east-1:", ":us-west-2:").replace("us-east-1a", "us-west-2a")
    text = text.replace("monthly_usd: 150000", "monthly_usd: 1000")
    path.write_text(text)
    return project


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_command_and_the_rule_agree_on_a_shipped_stack(
    stack: str, plans: dict[str, Plan], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_config = load_stack(load_project(ROOT), stack)
    cfg = stack_config.validate()
    verdict = budget_verdict(plan_resources(plans[stack]), cfg.region, cfg.budget.monthly_usd, today=dt.date.today())
    assert not verdict.over  # the shipped stacks are within their budgets
    assert _rule(plans[stack], cfg.region, cfg.budget.monthly_usd) == []
    for command in ("validate", "plan"):
        code, out = _run(monkeypatch, capsys, command, stack, *(["--no-order"] if command == "validate" else []))
        # no budget warning (the plan's summary names the budget it is within)
        assert code == 0 and "budget.monthly_usd" not in out and "over the budget" not in out, (command, out[:500])
    code, out = _run(monkeypatch, capsys, "cost", stack, "-f", "json")
    body = json.loads(out)
    assert code == 0 and body["over_budget"] is False
    assert body["totals"]["ceiling"] == verdict.ceiling and body["price_fallback"] is False
    code, out = _run(monkeypatch, capsys, "policy", stack, "-f", "json")
    assert not [v for v in json.loads(out)["violations"] if v["rule"] == "mlp-budget"]


def test_missing_prices_fail_closed_everywhere_with_one_message(
    west: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_config = load_stack(load_project(west), "prod")
    plan = plan_stack(stack_config, stack_config.validate())
    with pytest.raises(MissingPricesError) as missing:
        budget_verdict(plan_resources(plan), "us-west-2", 1000)
    assert str(missing.value) == MISSING
    assert _rule(plan, "us-west-2", 1000) == [MISSING]
    for command in COMMANDS:
        code, out = _run(monkeypatch, capsys, command, "prod", "-C", str(west))
        assert code == 2, (command, out[:500])
        assert MISSING in out, (command, out[:800])
        assert "within budget" not in out and "ok stack" not in out


def test_a_fallback_price_region_gives_one_labelled_figure_everywhere(
    west: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_config = load_stack(load_project(west), "prod")
    plan = plan_stack(stack_config, stack_config.validate())
    verdict = budget_verdict(plan_resources(plan), "us-west-2", 1000, price_region="us-east-1")
    assert verdict.over and verdict.message == FALLBACK_OVER
    assert _rule(plan, "us-west-2", 1000, "us-east-1") == [FALLBACK_OVER]
    for command in COMMANDS:
        code, out = _run(monkeypatch, capsys, command, "prod", "-C", str(west), "--price-region", "us-east-1")
        assert code != 0, command  # over budget: an error in prod
        assert FALLBACK_OVER in out, (command, out[:800])
    code, out = _run(monkeypatch, capsys, "cost", "prod", "-C", str(west), "--price-region", "us-east-1", "-f", "json")
    body, _ = json.JSONDecoder().raw_decode(out)  # the JSON on stdout, then the budget message on stderr
    assert body["totals"]["ceiling"] == 131766.91 and body["price_region"] == "us-east-1"
    assert body["price_fallback"] is True and any("FALLBACK PRICES" in note for note in body["notes"])


def test_recorded_prices_give_real_figures_and_one_verdict_everywhere(
    west: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `mlp prices refresh` against Stubber responses in the Price List API's documented format (every figure is
    # the fixture's $0.50, not a real price): afterwards the moved stack is priced in its own region, no fallback.
    from botocore.stub import Stubber

    from mlplatform.mlp import prices as price_cmd
    from tests.test_prices import client, complete_pages, stub_region

    monkeypatch.setenv("MLP_PRICE_CACHE", str(tmp_path / "cache"))
    pricing = client()
    monkeypatch.setattr(price_cmd, "client_factory", lambda: pricing)
    with Stubber(pricing) as stub:
        stub_region(stub, "us-west-2", complete_pages("us-west-2", "USW2-", usd=0.5))
        code, out = _run(monkeypatch, capsys, "prices", "refresh", "--regions", "us-west-2")
        assert code == 0, out
        stub.assert_no_pending_responses()
    stack_config = load_stack(load_project(west), "prod")
    plan = plan_stack(stack_config, stack_config.validate())
    verdict = budget_verdict(plan_resources(plan), "us-west-2", 1000)
    assert verdict.over and not verdict.estimate.fallback and not verdict.estimate.unpriced
    eks = next(line for line in verdict.estimate.lines if line.item.startswith("EKS control plane"))
    assert eks.ceiling == 0.5 * 730  # the recorded us-west-2 figure, not us-east-1's $0.10
    assert _rule(plan, "us-west-2", 1000) == [verdict.message]
    for command in COMMANDS:
        code, out = _run(monkeypatch, capsys, command, "prod", "-C", str(west))
        assert code in (1, 2), (command, out[:500])  # over budget is an error in prod (validate: a config error)
        assert " ".join(verdict.message.split()) in out, (command, out[:800])
        assert "no price data" not in out and "FALLBACK" not in out
