#!/usr/bin/env python3
"""Benchmark of the policy engine. Prints figures; asserts nothing.

  .venv/bin/python bench/policy.py [--repeat 5]

throughput   rules x resources per second on the prod plan and on a synthetic 10,000-resource plan
process      whole-process wall time of `mlp policy --terraform-plan FILE` for each upstream Terraform plan
             (and of checkov on the same file, when `checkov` is on PATH)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLANS = ROOT / "tests" / "data" / "terraform-plans"


def synthetic(n: int) -> list:
    """A plan-shaped mix of buckets, roles, security groups, launch templates, node pools and deployments."""
    from mlplatform.policies.model import Resource

    tags = {"cost-center": "cc", "team": "t", "environment": "prod", "project": "p", "owner": "o"}
    kinds = [
        ("aws:s3/bucket:Bucket", {"bucketPrefix": "b-"}),
        ("aws:s3/bucketVersioning:BucketVersioning", {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}}),
        (
            "aws:iam/rolePolicy:RolePolicy",
            {
                "policy": json.dumps(
                    {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}]}
                )
            },
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.0.0.0/16"]}]},
        ),
        (
            "aws:ec2/launchTemplate:LaunchTemplate",
            {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}},
        ),
        (
            "kubernetes:apps/v1:Deployment",
            {
                "metadata": {"name": "d"},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "i:1",
                                    "resources": {
                                        "requests": {"cpu": "1", "memory": "1Gi"},
                                        "limits": {"memory": "1Gi"},
                                    },
                                }
                            ]
                        }
                    }
                },
            },
        ),
        ("aws:ec2/subnet:Subnet", {"cidrBlock": "10.0.0.0/24"}),
    ]
    out = []
    for i in range(n):
        type_token, inputs = kinds[i % len(kinds)]
        out.append(Resource(type=type_token, name=f"r{i}", inputs=inputs, tags=tags))
    return out


def throughput(resources: list, label: str, repeat: int) -> None:
    from mlplatform.policies.config import PolicyConfig
    from mlplatform.policies.engine import evaluate
    from mlplatform.policies.registry import all_rules

    rules = all_rules()
    config = PolicyConfig(default_level="mandatory")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        evaluate(resources, rules, config)
        times.append(time.perf_counter() - start)
    t = statistics.median(times)
    pairs = len(rules) * len(resources)
    print(
        f"{label:<34} {len(resources):>7} resources x {len(rules)} rules in {t * 1000:8.1f} ms "
        f"= {pairs / t:,.0f} rule-resource checks/s"
    )


def process_time(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from mlplatform.mlp.planner import plan_stack
    from mlplatform.mlp.stackfile import load_project, load_stack
    from mlplatform.policies.run import resources_from_plan

    plan = plan_stack(load_stack(load_project(ROOT), "prod"))
    prod, _ = resources_from_plan(plan.to_dict())
    print(f"python {sys.version.split()[0]}, median of {args.repeat} runs")
    throughput(prod, "prod offline plan", args.repeat)
    throughput(synthetic(10_000), "synthetic plan", args.repeat)

    mlp = shutil.which("mlp", path=str(ROOT / ".venv" / "bin")) or "mlp"
    checkov = shutil.which("checkov")
    print(f"\nwhole process, {'mlp policy vs checkov' if checkov else 'mlp policy (checkov not on PATH)'}:")
    for plan_file in sorted(PLANS.glob("*.json")):
        ours = process_time([mlp, "policy", "--terraform-plan", str(plan_file), "-f", "json"], args.repeat)
        line = f"  {plan_file.name:<48} mlp {ours:6.2f} s"
        if checkov:
            theirs = process_time(
                [checkov, "-f", str(plan_file), "--framework", "terraform_plan", "--quiet", "--compact"], 1
            )
            line += f"   checkov {theirs:6.2f} s   ({theirs / ours:4.1f}x)"
        print(line)


if __name__ == "__main__":
    main()
