"""Reading a Terraform state's outputs in a program, through `pulumi_terraform`'s state references (a local file,
an S3 backend, or an HCP Terraform / Terraform Enterprise workspace). The offline planner answers the same invokes
by reading the same state (`mlp.terraform_state`); the values are then checked by the pure pickers
(`infra.network.terraform_state`, `infra.cluster.terraform_state`).
"""

from __future__ import annotations

import os
import re
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
    remote: Mapping[str, str] | None = None
    """{hostname, organization, workspace} of an HCP Terraform / Terraform Enterprise workspace."""
    output_names: Mapping[str, Any] = field(
        default_factory=lambda: {
            "vpc_id": "vpc_id",
            "private_subnet_ids": "private_subnets",
            "public_subnet_ids": "public_subnets",
        }
    )

    def describe(self) -> str:
        if self.path:
            return f"terraform state {self.path}"
        if self.remote:
            r = self.remote
            return f"terraform state of workspace {r['organization']}/{r['workspace']} on {r['hostname']}"
        return f"terraform state s3://{self.s3_bucket}/{self.s3_key}"


def remote_token_variable(hostname: str) -> str:
    """The environment variable that holds the API token for `hostname`, named as Terraform names it
    (`TF_TOKEN_app_terraform_io`: dots as `_`, hyphens as `__`; a port is not part of the name)."""
    host = hostname.split(":", 1)[0]
    return "TF_TOKEN_" + re.sub(r"[^A-Za-z0-9_]", "_", host.replace("-", "__"))


def remote_token(hostname: str, source: str) -> str:
    """The API token for a remote state, from the environment; never config (it would sit in the stack file)."""
    variable = remote_token_variable(hostname)
    token = os.environ.get(variable, "")
    if not token:
        raise ValueError(
            f"{source}: set {variable} to an HCP Terraform / Terraform Enterprise API token that can read the "
            "workspace's state (a team or user token; never in config)"
        )
    return token


def state_outputs(state: TerraformStateSource, parent: pulumi.Resource) -> pulumi.Output[Mapping[str, Any]]:
    """The state's output values ({name: value}), read at deploy time (and by the planner, offline)."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    if state.path is not None:
        return terraform.state.get_local_reference_output(path=str(Path(state.path).resolve()), opts=invoke).outputs
    if state.remote is not None:
        hostname = state.remote["hostname"]
        outputs = terraform.state.get_remote_reference_output(
            hostname=hostname,
            organization=state.remote["organization"],
            # a secret: Pulumi encrypts it wherever it would be recorded
            token=pulumi.Output.secret(remote_token(hostname, state.describe())),
            workspaces={"name": state.remote["workspace"]},
            opts=invoke,
        ).outputs
        # The secret token taints what the invoke returns; the outputs read (ids, names, endpoints) are not secret,
        # and as secrets they would hide the cluster's name in every preview.
        return pulumi.Output.unsecret(outputs)
    return terraform.state.get_s3_reference_output(
        bucket=state.s3_bucket, key=state.s3_key, region=state.s3_region, opts=invoke
    ).outputs
