"""Shared fixtures: the project, its stacks' configs, and plans (each stack planned once per session)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlplatform.mlp.mocks import PlanContext
from mlplatform.mlp.planner import Plan, build_plan, plan_stack, run_function
from mlplatform.mlp.stackfile import Project, load_project, load_stack

pytest_plugins = ["tests.aws_server"]

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="session")
def plans(project: Project) -> dict[str, Plan]:
    return {stack: plan_stack(load_stack(project, stack)) for stack in STACKS}


@pytest.fixture
def stack_config(project: Project) -> Callable[[str], dict[str, Any]]:
    """A fresh, mutable copy of a shipped stack's merged config map."""

    def load(stack: str) -> dict[str, Any]:
        return copy.deepcopy(load_stack(project, stack).config)

    return load


def plan_component(build: Callable[[], Any], region: str = "us-east-1", stack: str = "test") -> Plan:
    """Run a callable that creates resources under the planner's mock runtime and return the plan."""
    records = run_function(build, "ml-platform", stack, {}, PlanContext(region=region))
    return build_plan("ml-platform", stack, records)


@pytest.fixture(autouse=True)
def _no_user_price_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests price from the shipped snapshot: a user's `mlp prices refresh` cache must not change their figures."""
    monkeypatch.setenv("MLP_PRICE_CACHE", str(tmp_path_factory.getbasetemp() / "no-user-price-cache"))


def run_mlp(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`mlp ARGV` in this process: (exit code, stdout, stderr)."""
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err
