#!/usr/bin/env python3
"""Benchmark of the offline planner. Prints figures; asserts nothing.

    python3 dev.py setup && .venv/bin/python bench/plan.py [--repeat 3]

Measures, each in a fresh process:
  floor      importing exactly the SDK modules the program uses (what any run of the program pays)
  plan       `mlp plan prod --format json` end to end: wall time, peak RSS, resources
  scaling    synthetic programs of N resources: planner time per resource as N grows
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


def _child_rss(cmd: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_chunks = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss // 1024, out_chunks


MODULES_PROBE = """
import json, sys
from pathlib import Path
from mlplatform.mlp.stackfile import load_project, load_stack
from mlplatform.mlp.planner import plan_stack
plan = plan_stack(load_stack(load_project(Path('.')), 'prod'))
mods = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws', 'pulumi_kubernetes',
              'pulumi_random', 'pulumi_terraform', 'pydantic', 'yaml', 'grpc', 'google'))
print(json.dumps(mods))
"""

FLOOR = """
import importlib, json, sys, time
mods = json.loads(sys.argv[1])
t = time.perf_counter()
for m in mods:
    importlib.import_module(m)
print(time.perf_counter() - t)
"""

SYNTHETIC = """
import pulumi
import pulumi_aws as aws

provider = aws.Provider("aws", region="us-east-1", default_tags={{"tags": {{"team": "bench"}}}})
vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16", opts=pulumi.ResourceOptions(provider=provider))
for i in range({n}):
    aws.ec2.SecurityGroup(f"sg-{{i}}", vpc_id=vpc.id, description="bench",
        ingress=[{{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["10.0.0.0/16"]}}],
        tags={{"Name": f"sg-{{i}}", "index": str(i)}}, opts=pulumi.ResourceOptions(provider=provider))
"""

RUN_SYNTHETIC = """
import sys, time
from pathlib import Path
t0 = time.perf_counter()
import pulumi_aws, pulumi_aws.ec2
from mlplatform.mlp.mocks import PlanContext
from mlplatform.mlp.planner import build_plan, run_program
t1 = time.perf_counter()
records = run_program(Path(sys.argv[1]), "bench", "bench", {}, PlanContext(region="us-east-1"))
plan = build_plan("bench", "bench", records)
plan.to_json()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, len(plan.resources))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="100,200,400,800,1600")
    args = parser.parse_args()

    _, _, mods_json = _child_rss([PY, "-c", MODULES_PROBE])
    modules = json.loads(mods_json)
    floors = [float(_child_rss([PY, "-c", FLOOR, mods_json])[2]) for _ in range(args.repeat)]
    floor_wall = [_child_rss([PY, "-c", FLOOR, mods_json])[0] for _ in range(args.repeat)]

    runs = [
        _child_rss([PY, "-m", "mlplatform.mlp.cli", "plan", "prod", "--format", "json"]) for _ in range(args.repeat)
    ]
    resources = json.loads(runs[0][2])["summary"]["count"]
    plan_wall = statistics.median(r[0] for r in runs)
    plan_rss = max(r[1] for r in runs)
    floor = statistics.median(floor_wall)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.repeat} runs")
    print(
        f"floor: importing the {len(modules)} SDK modules the program uses: "
        f"{statistics.median(floors):.2f} s in-process, {floor:.2f} s as a whole process"
    )
    print(f"mlp plan prod --format json: {plan_wall:.2f} s wall, peak RSS {plan_rss} MiB, {resources} resources")
    print(f"plan / floor: {plan_wall / floor:.2f}x (target: at most 2x)")

    print("\nscaling (synthetic program: 1 VPC + N security groups, planner time after imports):")
    print(f"{'N':>6} {'resources':>10} {'plan s':>8} {'ms/resource':>12}")
    per_resource = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            program = Path(tmp) / f"n{n}"
            program.mkdir()
            (program / "__main__.py").write_text(SYNTHETIC.format(n=n))
            times = []
            count = 0
            for _ in range(args.repeat):
                _, _, out = _child_rss([PY, "-c", RUN_SYNTHETIC, str(program / "__main__.py")])
                _imports, plan_s, count = out.split()
                times.append(float(plan_s))
            t = statistics.median(times)
            per_resource.append(t / int(count) * 1000)
            print(f"{n:>6} {count:>10} {t:>8.2f} {per_resource[-1]:>12.2f}")
    growth = per_resource[-1] / per_resource[0]
    print(
        f"per-resource cost from smallest to largest N: x{growth:.2f} "
        f"({'linear or better' if growth < 1.5 else 'GROWS FASTER THAN LINEAR'})"
    )


if __name__ == "__main__":
    main()
