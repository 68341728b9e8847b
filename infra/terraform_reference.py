"""Reading a Terraform state's outputs in a program, through `pulumi_terraform`'s state references (a local file
or an S3 backend). The offline planner answers the same invokes by reading the same state (`mlp.terraform_state`);
the values are then checked by the pure pickers (`infra.network.terraform_state`, `infra.cluster.terraform_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_terraform as terraform


@dataclass(frozen=True, kw_only=True)
class TerraformStateSource:
    path: str | None = None  # local state file, relative to the project directory
    s3_bucket: str | None = None
    s3_key: str | None = None
    s3_region: str | None = None
    output_names: Mapping[str, Any] = field(
        default_factory=lambda: {
            "vpc_id": "vpc_id",
            "private_subnet_ids": "private_subnets",
            "public_subnet_ids": "public_subnets",
        }
    )

    def describe(self) -> str:
        return f"terraform state {self.path}" if self.path else f"terraform state s3://{self.s3_bucket}/{self.s3_key}"


def state_outputs(state: TerraformStateSource, parent: pulumi.Resource) -> pulumi.Output[Mapping[str, Any]]:
    """The state's output values ({name: value}), read at deploy time (and by the planner, offline)."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    if state.path is not None:
        return terraform.state.get_local_reference_output(path=str(Path(state.path).resolve()), opts=invoke).outputs
    return terraform.state.get_s3_reference_output(
        bucket=state.s3_bucket, key=state.s3_key, region=state.s3_region, opts=invoke
    ).outputs
