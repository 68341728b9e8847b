#!/usr/bin/env python3
"""Benchmark of the schema gate (`mlp.schema_gate.check_plan`) on a stack's plan. Prints figures; asserts nothing.

    python3 dev.py setup && .venv/bin/python bench/schema.py [--stack prod] [--repeat 3]

Measures, each run in a fresh process (as `mlp plan` pays it):
  plan   planning the stack in-process (imports included), and `mlp plan <stack> --format json` end to end
  cold   the gate with an empty schema cache: importing it, deriving every provider and Kubernetes schema the plan
         uses from the installed SDKs, checking, writing the cache
  warm   the gate with the cache the cold run wrote: reading it and checking
The issue's goal: the warm gate adds under 10% to the plan's time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

RUN = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from mlplatform.mlp.planner import plan_stack
from mlplatform.mlp.stackfile import load_project, load_stack
plan = plan_stack(load_stack(load_project(Path('.')), sys.argv[1]))
t1 = time.perf_counter()
from mlplatform.mlp.schema_gate import check_plan
report = check_plan(plan)
t2 = time.perf_counter()
print(json.dumps({"plan": t1 - t0, "gate": t2 - t1, "derive": report.derive_seconds, "derived": report.derived,
                  "errors": len(report.errors), "checked": report.checked, "resources": len(plan.resources)}))
"""


def _run(cmd: list[str], cache: str) -> tuple[float, str]:
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    return wall, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    end_to_end: list[float] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(json.loads(_run([PY, "-c", RUN, args.stack], cache)[1]))
            warm.append(json.loads(_run([PY, "-c", RUN, args.stack], cache)[1]))
            end_to_end.append(_run([PY, "-m", "mlplatform.mlp.cli", "plan", args.stack, "--format", "json"], cache)[0])

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    plan_s = median(warm + cold, "plan")
    cli_s = statistics.median(end_to_end)
    first = warm[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.repeat} fresh processes each")
    print(
        f"plan {args.stack}: {first['resources']:.0f} resources, {plan_s:.2f} s in-process; "
        f"`mlp plan {args.stack} --format json` {cli_s:.2f} s end to end"
    )
    print(f"checked: {first['checked']}, errors: {first['errors']:.0f}")
    print(
        f"gate, cold cache: {median(cold, 'gate'):.3f} s, of which deriving {median(cold, 'derive'):.3f} s "
        f"({median(cold, 'derived'):.0f} types and Kubernetes models)"
    )
    print(f"gate, warm cache: {median(warm, 'gate'):.3f} s ({median(warm, 'derived'):.0f} derived)")
    for name, base in (("in-process plan", plan_s), ("`mlp plan` end to end", cli_s)):
        share = median(warm, "gate") / base * 100
        print(f"warm gate / {name}: {share:.1f}% (goal: under 10%); cold: {median(cold, 'gate') / base * 100:.1f}%")


if __name__ == "__main__":
    main()
