"""The workflow steps' image (images/steps): what it installs is what the step tests ran against, and enough to run
every step. Docker is not available here, so the build itself is not run; what it installs is checked instead:
the lock pins every package at the dev lock's version, with hashes; the Dockerfile installs only from it (then the
project's wheel without dependencies) and runs as a numeric non-root user; and the steps' modules, imported in a
fresh interpreter, load nothing that the lock does not install."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "images" / "steps"
STEPS = ("train", "evaluate_and_promote", "resolve", "drift")
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def _pins(lock: Path) -> dict[tuple[str, str], str]:
    """(normalised name, marker) -> version, for each pinned requirement of a uv/pip-compile lock."""
    out: dict[tuple[str, str], str] = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            out[(re.sub(r"[-_.]+", "-", name).lower(), (marker or "").strip())] = version
    return out


def test_the_lock_pins_the_dev_locks_versions_with_hashes() -> None:
    steps, dev = _pins(IMAGE / "requirements.txt"), _pins(ROOT / "requirements-dev.txt")
    assert {"mlflow", "scikit-learn", "boto3", "numpy"} <= {name for name, _ in steps}
    # the same versions (markers may be written differently: each lock resolves its own set of platforms)
    dev_versions = {(name, version) for (name, _), version in dev.items()}
    assert {(name, version) for (name, _), version in steps.items()} - dev_versions == set()
    text = (IMAGE / "requirements.txt").read_text()
    # every requirement carries its hashes (pip --require-hashes refuses the file otherwise)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    assert blocks and all("--hash=sha256:" in b for b in blocks if PIN.match(b.splitlines()[0]))
    # the direct pins are the versions pyproject's dev extra tests against
    direct = {
        line.split("==")[0]: line.split("==")[1]
        for line in (IMAGE / "requirements.in").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"mlflow[auth]=={direct["mlflow"]}"' in pyproject


def test_the_dockerfile_installs_only_the_lock_then_the_wheel_and_runs_as_non_root() -> None:
    lines = [
        line.strip() for line in (IMAGE / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")
    ]
    runs = [line for line in lines if line.startswith("RUN ")]
    assert runs == [
        "RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.txt "
        "&& rm /tmp/requirements.txt",
        "RUN pip install --no-cache-dir --no-deps /tmp/ml_platform_blueprint-*.whl "
        "&& rm /tmp/ml_platform_blueprint-*.whl",
    ]
    assert "COPY images/steps/requirements.txt /tmp/requirements.txt" in lines
    (user,) = [line for line in lines if line.startswith("USER ")]
    uid, gid = user.split()[1].split(":")
    assert int(uid) > 0 and int(gid) > 0  # numeric, so Pod Security `restricted` can verify runAsNonRoot
    assert 'name = "ml-platform-blueprint"' in (ROOT / "pyproject.toml").read_text()  # the wheel's file name


def _imports_of_the_steps() -> set[str]:
    """Every module the steps' code imports, at the top or inside a function (MLflow and scikit-learn load lazily),
    found by reading their source; relative to nothing (the steps use absolute imports)."""
    modules: set[str] = set()
    for source in sorted((ROOT / "infra" / "pipelines" / "steps").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
    return modules


BLOCKER = """
import importlib, importlib.abc, importlib.metadata as md, json, sys
locked, modules = set(json.loads(sys.argv[1])), json.loads(sys.argv[2])
def norm(name):
    return name.replace("_", "-").replace(".", "-").lower()
providers = {}
for top, dists in md.packages_distributions().items():
    providers.setdefault(top, set()).update(norm(d) for d in dists)
# A top-level module none of whose distributions the image installs is hidden, as if not installed: optional
# imports (Ray's of rich or colorful, say) then take their fallback, as they would in the image.
hidden = {top for top, dists in providers.items() if not dists & locked}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the steps' image)", name=name)
        return None
sys.meta_path.insert(0, Hide())
before = set(sys.modules)
for name in modules:
    importlib.import_module(name)
owner = {}
for dist in md.distributions():
    for f in dist.files or ():
        owner[str(dist.locate_file(f))] = norm(dist.metadata["Name"])
loaded = {getattr(m, "__file__", None) for k, m in list(sys.modules.items()) if k not in before}
print(json.dumps(sorted({owner[f] for f in loaded if f in owner})))
"""


def test_the_steps_import_with_only_what_the_lock_installs() -> None:
    """Import everything the steps import in a fresh interpreter in which every distribution the lock does not
    install is hidden (as if absent): each import succeeds, and what loaded is the lock's."""
    # and what `ray start` needs for the dashboard and the agent KubeRay probes (mlp-train-rayjob's cluster runs
    # this image): Ray starts them only when these import (ray/dashboard/optional_deps.py)
    modules = sorted({*(m for m in _imports_of_the_steps() if m != "__future__"), "ray.dashboard.optional_deps"})
    assert {"mlflow", "boto3", "numpy", "ray.job_submission"} <= set(modules) | {m.split(".")[0] for m in modules}
    locked = {name for name, _ in _pins(IMAGE / "requirements.txt")} | {"ml-platform-blueprint"}
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, json.dumps(sorted(locked)), json.dumps(modules)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert {"mlflow", "scikit-learn", "ray", "boto3"} <= imported  # the lazy third-party imports were made
    assert imported - locked == set()
