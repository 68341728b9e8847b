#!/usr/bin/env python3
"""Cost of reading and checking large count-indexed Terraform plans. Prints figures; asserts nothing.

  .venv/bin/python bench/terraform_plan.py [--sizes 2000 5000 20000]

Each plan has N resources: N/5 buckets `aws_s3_bucket.b[i]` (count) and four companions per bucket, each counted
with the same count and linked by `aws_s3_bucket.b[count.index].id` (so the plan's configuration references name
the resource, not the instance): public access blocks, versioning, encryption and ownership controls. One bucket in
ten has no public access block. Bucket ids are known after apply, as in a real first plan.

Per size: the time to read the plan and run every rule (best of --repeat), the peak memory of one read-and-check
under tracemalloc (Python allocations: the plan itself is built before tracing starts), the findings, and the
public-access-block findings against the number expected (one per bucket without a block).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FLAGS = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
COMPANIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # type: (after values, configuration expressions besides `bucket`)
    "aws_s3_bucket_public_access_block": (dict.fromkeys(FLAGS, True), {k: {"constant_value": True} for k in FLAGS}),
    "aws_s3_bucket_versioning": (
        {"versioning_configuration": [{"status": "Enabled", "mfa_delete": None}]},
        {"versioning_configuration": [{"status": {"constant_value": "Enabled"}}]},
    ),
    "aws_s3_bucket_server_side_encryption_configuration": (
        {
            "rule": [
                {"apply_server_side_encryption_by_default": [{"sse_algorithm": "aws:kms"}], "bucket_key_enabled": True}
            ]
        },
        {
            "rule": [
                {
                    "apply_server_side_encryption_by_default": [{"sse_algorithm": {"constant_value": "aws:kms"}}],
                    "bucket_key_enabled": {"constant_value": True},
                }
            ]
        },
    ),
    "aws_s3_bucket_ownership_controls": (
        {"rule": [{"object_ownership": "BucketOwnerEnforced"}]},
        {"rule": [{"object_ownership": {"constant_value": "BucketOwnerEnforced"}}]},
    ),
}
PAB = "aws_s3_bucket_public_access_block"


def generate_plan(resources: int) -> tuple[dict[str, Any], int]:
    """A plan with `resources` resource changes, and the number of buckets without a public access block."""
    buckets = resources // (1 + len(COMPANIONS))
    missing_pab = buckets // 10
    changes: list[dict[str, Any]] = []
    config: list[dict[str, Any]] = []
    tags = {"cost-center": "cc", "team": "t", "environment": "prod", "project": "p", "owner": "o"}
    for i in range(buckets):
        changes.append(
            {
                "address": f"aws_s3_bucket.b[{i}]",
                "mode": "managed",
                "type": "aws_s3_bucket",
                "name": "b",
                "index": i,
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": {"bucket": f"bench-{i}", "force_destroy": False, "tags": tags, "tags_all": tags},
                    "after_unknown": {"id": True, "arn": True, "versioning": True},
                },
            }
        )
    config.append(
        {
            "address": "aws_s3_bucket.b",
            "mode": "managed",
            "type": "aws_s3_bucket",
            "name": "b",
            "provider_config_key": "aws",
            "expressions": {"bucket": {"references": ["count.index"]}, "tags": {"references": ["local.tags"]}},
            "count_expression": {"references": ["var.n"]},
        }
    )
    for tf_type, (after, expressions) in COMPANIONS.items():
        count = buckets - missing_pab if tf_type == PAB else buckets
        for i in range(count):
            changes.append(
                {
                    "address": f"{tf_type}.c[{i}]",
                    "mode": "managed",
                    "type": tf_type,
                    "name": "c",
                    "index": i,
                    "change": {
                        "actions": ["create"],
                        "before": None,
                        "after": dict(after),
                        "after_unknown": {"id": True, "bucket": True},
                    },
                }
            )
        config.append(
            {
                "address": f"{tf_type}.c",
                "mode": "managed",
                "type": tf_type,
                "name": "c",
                "provider_config_key": "aws",
                "expressions": {"bucket": {"references": ["aws_s3_bucket.b", "count.index"]}, **expressions},
                "count_expression": {"references": ["var.n"]},
            }
        )
    plan = {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "variables": {"n": {"value": buckets}},
        "resource_changes": changes,
        "configuration": {"provider_config": {"aws": {"name": "aws"}}, "root_module": {"resources": config}},
    }
    return plan, missing_pab


def read_and_check(plan: dict[str, Any]) -> tuple[int, int, int]:
    """(resources checked, findings, public-access-block findings) of one read and one run of every rule."""
    from mlplatform.policies.config import PolicyConfig
    from mlplatform.policies.run import check
    from mlplatform.policies.sources.terraform import from_terraform_plan

    resources, skipped = from_terraform_plan(plan)
    report = check(resources, PolicyConfig(default_level="mandatory"), skipped=skipped)
    pab = sum(1 for v in report.violations if v.rule == "aws-s3-bucket-public-access-block")
    return report.checked, len(report.violations), pab


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    read_and_check(generate_plan(60)[0])  # imports and rule discovery out of the figures
    print(f"{'resources':>9}  {'checked':>7}  {'seconds':>7}  {'peak MiB':>8}  {'findings':>8}  PAB found/expected")
    for size in args.sizes:
        plan, expected = generate_plan(size)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            checked, findings, pab = read_and_check(plan)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        read_and_check(plan)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        row = (len(plan["resource_changes"]), checked, min(times), peak / 2**20, findings)
        print("{:>9}  {:>7}  {:>7.2f}  {:>8.1f}  {:>8}  ".format(*row) + f"{pab}/{expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
