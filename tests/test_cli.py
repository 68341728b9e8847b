"""The mlp command line: exit codes, formats, and never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.mlp.docs import config_reference
from tests.conftest import ROOT


def _mlp(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplatform.mlp.entry", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def broken_project(tmp_path: Path) -> Path:
    """A copy of the project whose dev stack has three mistakes."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    shutil.copy(ROOT / "__main__.py", tmp_path)
    (tmp_path / "stacks").mkdir()
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    text = text.replace("nat: single", "nat: triple").replace("max_gpus: 4\n", "max_gpus: -1\n", 1)
    text = text.replace("cidr: 10.10.0.0/16", "cidr: 10.10.0.0/16\n    colour: blue")
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(text)
    return tmp_path


def test_validate_ok() -> None:
    result = _mlp("validate", "prod")
    assert result.returncode == 0, result.stderr
    assert "ok stack prod" in result.stdout


def test_config_errors_exit_2_with_every_problem_and_no_traceback(broken_project: Path) -> None:
    for command in (["validate", "dev"], ["plan", "dev"]):
        result = _mlp(*command, cwd=broken_project)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr + result.stdout
        assert "stacks/Pulumi.dev.yaml" in result.stderr
        for path in ("network.nat", "gpu_pools.shared.max_gpus", "network.colour"):
            assert path in result.stderr


def test_validate_json_lists_errors_with_lines(broken_project: Path) -> None:
    result = _mlp("validate", "dev", "--format", "json", cwd=broken_project)
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["valid"] is False
    by_path = {e["path"]: e for e in data["errors"]}
    assert by_path["network.colour"]["message"].startswith("unknown key `colour`; allowed: cidr, az_count")
    assert all(isinstance(e["line"], int) for e in data["errors"])


def test_unknown_stack_and_missing_project_are_messages(tmp_path: Path) -> None:
    result = _mlp("plan", "qa")
    assert result.returncode == 2 and "stacks here: dev, prod, staging" in result.stderr
    result = _mlp("validate", "dev", cwd=tmp_path)
    assert result.returncode == 2 and "no Pulumi.yaml here" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2() -> None:
    result = _mlp("plan", "dev", "--format", "yaml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("table", ["ml-platform / stack dev", "cluster-eks", "k8s 1.35", "resources by type", "Offline plan"]),
        ("tree", ["ml-platform-dev", "network-vpc", "cluster-system-lt", "IMDSv2 required"]),
        ("markdown", ["## Offline plan: `ml-platform` / `dev`", "| `eks.Cluster` | `cluster-eks` |"]),
    ],
)
def test_plan_formats(fmt: str, expected: list[str], tmp_path: Path) -> None:
    out = tmp_path / f"plan.{fmt}"
    result = _mlp("plan", "dev", "--format", fmt, "--output", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for part in expected:
        assert part in text


def test_config_reference_is_in_sync_with_the_schema() -> None:
    committed = (ROOT / "docs" / "CONFIG.md").read_text()
    assert committed == config_reference(), "docs/CONFIG.md is stale: run `mlp schema -o docs/CONFIG.md`"


def test_the_plan_table_prints_type_tokens_as_they_are() -> None:
    """Rich would read `:runner:` in `mlplatform:runner:ClusterRunner` as an emoji code."""
    result = _mlp("plan", "prod")
    assert result.returncode == 0, result.stderr
    assert "mlplatform:runner:ClusterRunner" in result.stdout
    assert "\N{RUNNER}" not in result.stdout
