#!/usr/bin/env python3
"""Project tasks that need nothing but python3 on the machine.

    python3 dev.py plan dev            the main job: the offline plan of a stack (sets up .venv on first use)
    python3 dev.py test [PYTEST ARGS]  lint, format check, type check and the test suite (on every core)
    python3 dev.py mlp ARGS...         any mlp command inside the project environment
    python3 dev.py setup [--dev]       only create/refresh .venv from the lock files (--dev: also .venv-feast)
    python3 dev.py lock                regenerate the lock files (requirements*.txt, images/*/requirements.txt)

The environment is `.venv`, installed with hash checking from `requirements.txt` (what `pulumi up` and mlp need;
the Pulumi CLI installs the same file) or `requirements-dev.txt` (plus the test tools). It is reinstalled only
when a lock file changes. With --dev, `.venv-feast` gets the feature store image's lock
(images/feast/requirements.txt), which the Feast contract test runs: Feast cannot share the project's lock.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
LOCKS = {False: ROOT / "requirements.txt", True: ROOT / "requirements-dev.txt"}
FEAST_VENV = ROOT / ".venv-feast"
FEAST_LOCK = ROOT / "images" / "feast" / "requirements.txt"
TEST_STEPS = (
    ("ruff check", ["ruff", "check", "."]),
    ("ruff format --check", ["ruff", "format", "--check", "."]),
    ("mypy (infra, mlp, policies)", ["mypy"]),
    # One worker per core, each test file on one worker (a module's servers start once).
    ("pytest", ["pytest", "-n", "auto", "--dist", "loadfile"]),
)


def _say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def _run(cmd: list[str], **kwargs: object) -> int:
    return subprocess.call(cmd, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def setup(dev: bool) -> None:
    """Create .venv and install the locked dependencies (and the project, editable) when they changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 the machine has
        sys.exit(f"dev.py: Python 3.11 or newer is needed (this is {sys.version.split()[0]})")
    lock = LOCKS[dev]
    stamp = VENV / f".installed-{'dev' if dev else 'runtime'}"
    digest = hashlib.sha256(lock.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        _say(f"creating {VENV.name} with {sys.executable}")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # noqa: BLE001 - typically Debian without python3-venv
            sys.exit(f"dev.py: could not create a virtual environment ({exc}); on Debian/Ubuntu install python3-venv")
    _say(f"installing {lock.name} into {VENV.name} (hash-checked)")
    steps = [
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps", "-r", str(lock)],
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", "."],
    ]
    for cmd in steps:
        if _run(cmd) != 0:
            sys.exit(f"dev.py: failed: {' '.join(cmd)}")
    for other in VENV.glob(".installed-*"):
        other.unlink()
    stamp.write_text(digest)


def setup_feast() -> None:
    """Create .venv-feast and install the feature store image's lock (hash-checked) when it changed."""
    python = FEAST_VENV / ("Scripts" if os.name == "nt" else "bin") / "python"
    stamp = FEAST_VENV / ".installed"
    digest = hashlib.sha256(FEAST_LOCK.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest and python.exists():
        return
    if not python.exists():
        _say(f"creating {FEAST_VENV.name} with {sys.executable}")
        venv.EnvBuilder(with_pip=True).create(FEAST_VENV)
    _say(f"installing {FEAST_LOCK.relative_to(ROOT)} into {FEAST_VENV.name} (hash-checked)")
    steps = [
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps", "-r", str(FEAST_LOCK)],
    ]
    for cmd in steps:
        if _run(cmd) != 0:
            sys.exit(f"dev.py: failed: {' '.join(cmd)}")
    stamp.write_text(digest)


def _tool(name: str) -> str:
    return str(BIN / name)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    task, rest = argv[0], argv[1:]
    if task == "setup":
        setup(dev="--dev" in rest)
        if "--dev" in rest:
            setup_feast()
        return 0
    if task == "plan":
        setup(dev=(VENV / ".installed-dev").is_file())
        return _run([_tool("mlp"), "plan", *rest])
    if task == "mlp":
        setup(dev=(VENV / ".installed-dev").is_file())
        return _run([_tool("mlp"), *rest])
    if task == "test":
        setup(dev=True)
        setup_feast()
        for label, (tool, *args) in TEST_STEPS:
            _say(f"running {label}")
            code = _run([_tool(tool), *args, *(rest if tool == "pytest" else [])])
            if code != 0:
                _say(f"{label} failed (exit {code})")
                return code
        return 0
    if task == "lock":
        setup(dev=True)
        uv = [
            str(PYTHON),
            "-m",
            "uv",
            "pip",
            "compile",
            "pyproject.toml",
            "--generate-hashes",
            "--python-version",
            "3.11",
            "--universal",
            "--no-header",
        ]
        if _run([str(PYTHON), "-m", "pip", "install", "--quiet", "uv"]) != 0:
            return 1
        # The steps' image: what its steps import, at the versions of the dev lock (their tests run against those).
        steps = [*uv[:5], "images/steps/requirements.in", *uv[6:], "-c", "requirements-dev.txt"]
        # The feature store's image: its own lock (Feast's pins conflict with the project's).
        feast = [*uv[:5], "images/feast/requirements.in", *uv[6:]]
        return (
            _run([*uv, "-o", "requirements.txt"])
            or _run([*uv, "--extra", "dev", "-o", "requirements-dev.txt"])
            or _run([*steps, "-o", "images/steps/requirements.txt"])
            or _run([*feast, "-o", "images/feast/requirements.txt"])
        )
    print(f"dev.py: unknown task {task!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
