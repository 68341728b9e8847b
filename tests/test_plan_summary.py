"""The plan's summary (components, resources by layer, GPUs, cost floor and ceiling, policy verdict) agrees with the
plan, the config, `mlp cost` and `mlp policy`; key settings are filled for GPU, serving, Ray, database and bucket
resources; the plan table fits 100 columns without cutting a name; `mlp policy --plan-json` checks a saved plan
with the policy config, budget and region of the stack it records; `mlp policy --help` is typer's."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from mlplatform.mlp.key_settings import KeySettings
from mlplatform.mlp.plan_summary import summarize
from mlplatform.mlp.planner import Plan
from mlplatform.mlp.render import render_json, render_markdown, render_table
from mlplatform.mlp.stackfile import Project, load_stack
from tests.conftest import ROOT, STACKS, run_mlp


def _mlp(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_mlp(monkeypatch, capsys, *argv)


# --- the summary ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_summary_agrees_with_the_plan_the_config_mlp_cost_and_mlp_policy(
    stack: str,
    project: Project,
    plans: dict[str, Plan],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = plans[stack]
    cfg = load_stack(project, stack).validate()
    code, out, _ = _mlp(monkeypatch, capsys, "plan", stack, "-f", "json")
    assert code == 0
    summary = json.loads(out)["summary"]
    # the keys saved plans always had are kept
    assert summary["count"] == len(plan.resources) and summary["by_type"] == plan.by_type()
    assert summary["by_layer"] == {layer: len(plan.in_layer(layer)) for layer in ("cloud", "cluster")}
    assert sum(summary["by_layer"].values()) == len(plan.resources)
    assert summary["components"] == sum(summary["components_by_layer"].values()) > 0
    pools = cfg.gpu_pools
    assert summary["gpus"]["min"] == sum(p.min_gpus for p in pools.values())
    assert summary["gpus"]["max"] == sum(p.max_gpus for p in pools.values())
    assert {name: (p["min"], p["max"]) for name, p in summary["gpus"]["pools"].items()} == {
        name: (p.min_gpus, p.max_gpus) for name, p in pools.items()
    }
    code, out, _ = _mlp(monkeypatch, capsys, "cost", stack, "-f", "json")
    totals = json.loads(out)["totals"]
    assert code == 0
    assert (summary["cost"]["floor"], summary["cost"]["ceiling"]) == (totals["floor"], totals["ceiling"])
    assert summary["cost"]["missing_prices"] is None and summary["cost"]["region"] == cfg.region
    code, out, _ = _mlp(monkeypatch, capsys, "policy", stack, "-f", "json")
    violations = json.loads(out)["violations"]
    levels = [v["level"] for v in violations]
    assert summary["policy"]["environment"] == cfg.environment
    assert summary["policy"]["config"] == f"policies/config.{cfg.environment}.json"
    assert summary["policy"]["mandatory"] == levels.count("mandatory")
    assert summary["policy"]["advisory"] == levels.count("advisory")
    assert summary["policy"]["passed"] is (code == 0)
    if stack == "dev":  # dev's config lets two findings through as advisory: the count is not a trivial zero
        assert summary["policy"]["advisory"] == 2


def test_prod_summary_in_table_and_markdown(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    summary = summarize(plan)
    assert summary.gpus == (2, 32)
    rows = dict(summary.rows())
    assert rows["GPUs"] == "min 2, max 32 (inference 2..16, training 0..16)"
    assert rows["resources"] == f"{len(plan.resources)} (cloud {len(plan.in_layer('cloud'))}, cluster " + (
        f"{len(plan.in_layer('cluster'))})"
    )
    assert summary.cost is not None and summary.policy is not None
    assert rows["monthly cost"].startswith(f"floor ${summary.cost.floor:,.2f}, ceiling ${summary.cost.ceiling:,.2f}")
    assert rows["policy"].startswith("pass: 0 mandatory, 0 advisory")
    markdown = render_markdown(plan, summary)
    head = markdown.split("### ", 1)[0]  # before the first component's section
    for label, text in summary.rows():
        assert f"| {label} | {text} |" in head
    buffer = io.StringIO()
    render_table(plan, Console(file=buffer, width=100, color_system=None), summary)
    top = buffer.getvalue().split("layer:", 1)[0]
    assert "min 2, max 32" in top and "floor $" in top and "pass: 0 mandatory" in top


def test_missing_prices_give_a_summary_that_says_so(plans: dict[str, Plan]) -> None:
    assert plans["prod"].stack_config is not None
    moved = replace(plans["prod"], stack_config={**plans["prod"].stack_config, "region": "us-west-2"})
    summary = summarize(moved)
    assert summary.cost is not None and summary.cost.floor is None
    assert dict(summary.rows())["monthly cost"] == "no price data for region us-west-2"
    assert summary.policy is not None and summary.policy.missing_prices
    assert dict(summary.rows())["policy"].startswith("FAIL")
    assert json.loads(render_json(moved, summary))["summary"]["cost"]["missing_prices"] == (
        "no price data for region us-west-2"
    )


# --- key settings -----------------------------------------------------------------------------------------------

LISTED = {
    "kubernetes:karpenter.sh/v1:NodePool",
    "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
    "aws:eks/nodeGroup:NodeGroup",
    "kubernetes:serving.kserve.io/v1beta1:InferenceService",
    "kubernetes:ray.io/v1:RayCluster",
    "aws:rds/instance:Instance",
    "aws:s3/bucket:Bucket",
}


@pytest.mark.parametrize("stack", STACKS)
def test_key_settings_filled_for_gpu_serving_ray_database_and_bucket_resources(
    stack: str, project: Project, plans: dict[str, Plan]
) -> None:
    plan = plans[stack]
    cfg = load_stack(project, stack).validate()
    settings = KeySettings(plan.resources)
    listed = [r for r in plan.resources if r.type in LISTED]
    assert {r.type for r in listed} == LISTED
    assert all(settings(r) for r in listed), [r.name for r in listed if not settings(r)]
    for name, model in cfg.vllm.models.items():
        text = settings(plan.get(f"serving-vllm-{name}-deployment"))
        assert f"model {model.model}" in text, text
        assert f"TP {model.gpus_per_replica}, max_model_len {model.max_model_len}" in text, text
        assert f"x {model.gpus_per_replica} GPU on {model.pool}" in text, text
    for name, pool in cfg.gpu_pools.items():
        assert f"GPUs <= {pool.max_gpus}" in settings(plan.get(f"nodepools-{name}-nodepool"))
    for name, cluster in cfg.ray.clusters.items():
        low = sum(g.min_replicas * g.gpus_per_worker for g in cluster.gpu_workers.values())
        high = sum(g.max_replicas * g.gpus_per_worker for g in cluster.gpu_workers.values())
        assert settings(plan.get(f"ray-{name}")).endswith(f"GPUs {low}..{high}")
    db = cfg.mlflow.database
    assert settings(plan.get("mlflow-db")).startswith(
        f"postgres 17, {db.instance_class}, multi-AZ {'on' if db.multi_az else 'off'}, "
        f"{db.allocated_storage_gib}..{db.max_allocated_storage_gib} GiB gp3, encrypted kms"
    )
    assert settings(plan.get("lake-raw")).startswith(
        "versioning Enabled, SSE aws:kms (bucket key), public access blocked, object lock off"
    )
    isvc = settings(plan.get("serving-isvc-churn-model"))
    assert isvc.startswith("sklearn ") and "churn/v3" in isvc


def test_a_bucket_without_its_companions_says_what_it_lacks(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    bucket = plan.get("lake-raw")
    alone = KeySettings([bucket])(bucket)
    assert alone == "versioning off, SSE default (S3), NO public access block, object lock off"


# --- 100 columns ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_plan_table_fits_100_columns_with_every_name_whole(stack: str, plans: dict[str, Plan]) -> None:
    plan = plans[stack]
    buffer = io.StringIO()
    render_table(plan, Console(file=buffer, width=100, color_system=None), summarize(plan, with_checks=False))
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 100
    text = "\n".join(lines)
    for r in plan.resources:
        if r.custom:  # each name whole in its own cell of the name column
            assert re.search(rf"│ {re.escape(r.name)} +│", text), r.name


def test_mlp_plan_fits_the_columns_it_is_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], plans: dict[str, Plan]
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = _mlp(monkeypatch, capsys, "plan", "prod")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "│ serving-vllm-assistant-deployment " in out and "summary" in out.splitlines()[1]


# --- mlp policy --plan-json -------------------------------------------------------------------------------------


def _saved_prod_plan(plans: dict[str, Plan], tmp_path: Path, public_endpoint: bool, **stack: object) -> Path:
    body = json.loads(render_json(plans["prod"], summarize(plans["prod"], with_checks=False)))
    (cluster,) = [r for r in body["resources"] if r["type"] == "aws:eks/cluster:Cluster"]
    cluster["inputs"]["vpcConfig"]["endpointPublicAccess"] = public_endpoint
    body["stack_config"].update(stack)
    path = tmp_path / "prod-plan.json"
    path.write_text(json.dumps(body))
    return path


def _policy(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str], str]:
    from mlplatform.policies.cli import main

    code = main([*argv, "-f", "json"])
    captured = capsys.readouterr()
    return code, {v["rule"]: v["level"] for v in json.loads(captured.out)["violations"]}, captured.err


def test_plan_json_records_the_stack_config(plans: dict[str, Plan]) -> None:
    assert json.loads(plans["prod"].to_json())["stack_config"] == {
        "environment": "prod",
        "region": "us-east-1",
        "budget_monthly_usd": 150000,
    }


def test_policy_on_a_saved_prod_plan_applies_prod_config_budget_and_region(
    plans: dict[str, Plan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    public = "aws-eks-cluster-disallow-public-endpoint"  # advisory in dev, mandatory in prod
    path = _saved_prod_plan(plans, tmp_path, public_endpoint=True)
    code, levels, err = _policy(capsys, "--plan-json", str(path))
    assert code == 1 and levels[public] == "mandatory"
    assert "mlp-gpu-families-allowed" not in levels  # dev allows no p5; prod does
    assert f"{path}: policy config prod (the plan records environment prod, with its budget and region)" in err
    # -e names another config: used, and said
    code, levels, err = _policy(capsys, "--plan-json", str(path), "-e", "dev")
    assert levels[public] == "advisory" and levels["mlp-gpu-families-allowed"] == "mandatory"
    assert "policy config dev (-e; the plan records environment prod)" in err
    # the budget is the recorded one
    path = _saved_prod_plan(plans, tmp_path, public_endpoint=False, budget_monthly_usd=1000)
    code, levels, _ = _policy(capsys, "--plan-json", str(path))
    assert code == 1 and levels == {"mlp-budget": "mandatory"}


def test_policy_on_a_plan_saved_without_stack_config_says_it_uses_dev(
    plans: dict[str, Plan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = plans["prod"].to_dict()
    del body["stack_config"]
    path = tmp_path / "old-plan.json"
    path.write_text(json.dumps(body, default=str))
    code, levels, err = _policy(capsys, "--plan-json", str(path))
    assert code == 1 and levels["mlp-gpu-families-allowed"] == "mandatory"
    assert "policy config dev (the plan records no stack: saved before plans recorded it; pass -e to choose)" in err
    body["stack_config"] = {"environment": "prod", "region": "us-east-1"}
    path.write_text(json.dumps(body, default=str))
    from mlplatform.policies.cli import main

    assert main(["--plan-json", str(path)]) == 2
    assert "stack_config.budget_monthly_usd: is missing or not a number" in capsys.readouterr().err


# --- mlp policy --help ------------------------------------------------------------------------------------------


def _entry(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "100", "HOME": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mlplatform.mlp.entry", "policy", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_policy_help_is_typer_style_and_lists_every_option() -> None:
    from mlplatform.policies.cli import parser

    result = _entry("--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Usage: mlp policy [OPTIONS] [STACK]" in out
    assert re.search(r"╭─ Arguments ─+╮", out) and re.search(r"╭─ Options ─+╮", out)
    assert "usage:" not in out and "options:" not in out  # argparse's headings
    for action in parser()._actions:
        for option in action.option_strings:
            assert re.search(rf"│ .*{re.escape(option)}\b", out), option
    assert "<table|json|sarif>" in out and "[default: table]" in out
    assert _entry("-h").stdout == out


def test_policy_usage_errors_are_worded_as_typer_words_them_and_exit_2() -> None:
    result = _entry("--no-such-option")
    assert result.returncode == 2
    assert result.stderr.startswith("Usage: mlp policy [OPTIONS] [STACK]\nTry 'mlp policy --help' for help.\n")
    assert "Error: unrecognized arguments: --no-such-option" in result.stderr
    neither = _entry()
    assert neither.returncode == 2 and "give exactly one of STACK, --terraform-plan or --plan-json" in neither.stderr


def test_the_policy_gate_still_imports_neither_typer_rich_nor_pydantic() -> None:
    plan = ROOT / "tests" / "data" / "terraform-plans" / "checkov_plan_change_keys.json"
    code = (
        "import sys; from policies.cli import main; "
        f"code = main(['--terraform-plan', {str(plan)!r}, '-e', 'prod', '-f', 'json', '-o', '/dev/null']); "
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'rich', 'pydantic', 'pulumi'}); "
        "print(code, bad); assert code == 0 and not bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
