"""The component library as others install it: a wheel whose one import path is `mlplatform.*` (no top-level
`infra`, `mlp` or `policies` to clash with a user's own packages), installed into a fresh virtual environment and
used by a program outside this repository that plans under `mlp plan`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIBRARY = ("infra", "mlp", "policies")


def _site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3*/site-packages")
    return found


def _dependencies_site() -> Path:
    """Where this environment's third-party packages are (pulumi, pydantic, ...): the fresh environment reads
    them from there instead of downloading them (tests run offline)."""
    import pulumi

    return Path(pulumi.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .` of a copy of the repository (the build writes build/ and *.egg-info beside the sources)."""
    source = tmp_path_factory.mktemp("source") / "repo"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "tests", "bench", "build", "dist", "*.egg-info", "__pycache__"),
    )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("ml_platform_blueprint-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel installed (pip, offline) and the locked dependencies readable."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-deps"]
        + ["--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    # A plain path line: the dependencies' own .pth files (this repository's editable install) are not processed.
    (_site_packages(venv) / "dependencies.pth").write_text(f"{_dependencies_site()}\n")
    return venv


def _clean_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "COLUMNS": "100"}


def test_the_wheel_holds_one_distinctive_package_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("ml_platform_blueprint-")}
    assert tops == {"mlplatform"}  # nothing named infra, mlp or policies at the top level
    for data in (
        "mlplatform/infra/catalog/data/aws_prices.json",
        "mlplatform/infra/catalog/data/models.json",
        "mlplatform/policies/config.prod.json",
        "mlplatform/policies/data/taggable_types.json",
        "mlplatform/mlp/data/crds",
    ):
        assert any(n.startswith(data) for n in names), data
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mlp = mlplatform.mlp.entry:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_repository_has_one_import_path() -> None:
    # The card's folders stay where Pulumi and CrossGuard expect them; mlplatform/ links to them, and no code
    # imports them by their bare names (which would load a second copy of every module).
    for name in LIBRARY:
        link = ROOT / "mlplatform" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve()
    bare = re.compile(r"^\s*(?:from|import) (?:infra|mlp|policies)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in (*LIBRARY, "tests", "bench", "scripts", "examples", "cluster")
        for path in (ROOT / folder).rglob("*.py")
        if bare.search(path.read_text(encoding="utf-8"))
    ]
    offenders += [p for p in ("__main__.py", "dev.py") if bare.search((ROOT / p).read_text(encoding="utf-8"))]
    assert offenders == []


def test_a_program_outside_the_repository_plans_with_the_installed_wheel(fresh: Path, tmp_path: Path) -> None:
    python = fresh / "bin" / "python"
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import mlplatform, mlplatform.infra.gpu_pools as g; print(mlplatform.__file__, g.__file__)",
        ],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    site = str(_site_packages(fresh))
    assert all(path.startswith(site) for path in probe.stdout.split()), probe.stdout  # the wheel, not the repository
    for name in LIBRARY:  # the generic names are not installed
        missing = subprocess.run(
            [str(python), "-c", f"import {name}"], cwd=tmp_path, env=_clean_env(), capture_output=True, timeout=60
        )
        assert missing.returncode != 0, name

    # The user's program: GPU pools on an existing cluster, importing only `mlplatform.infra` (the repository's
    # example, copied out of the repository).
    program = tmp_path / "my-gpu-pools"
    shutil.copytree(ROOT / "examples" / "gpu-pools-only", program)
    main = (program / "__main__.py").read_text(encoding="utf-8")
    imports = sorted(set(re.findall(r"^from (mlplatform\.[\w.]+) import", main, re.MULTILINE)))
    assert imports and all(i.startswith("mlplatform.infra.") for i in imports)
    assert "sys.path" not in main
    plan = subprocess.run(
        [str(fresh / "bin" / "mlp"), "plan", "example", "-C", str(program), "-f", "json"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plan.returncode == 0, plan.stderr[-2000:]
    body = json.loads(plan.stdout)
    pools = {
        r["inputs"]["metadata"]["name"] for r in body["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool"
    }
    assert pools == {"inference", "notebooks"}
    assert not any(r["type"] == "aws:eks/cluster:Cluster" for r in body["resources"])
