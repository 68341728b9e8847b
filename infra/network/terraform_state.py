"""Pure reading of a Terraform state (format version 4): outputs, and the network a landing zone exports.

The same checks run in the program (on what the `pulumi-terraform` provider returns) and in the offline planner
(on the state file itself), so a missing output or an output of the wrong type fails the same way in both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SUPPORTED_FORMAT_VERSION = 4
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


class TerraformStateError(ValueError):
    """A Terraform state that cannot give the network the config asks for."""


@dataclass(frozen=True)
class AdoptedNetworkIds:
    vpc_id: str
    private_subnet_ids: list[str]
    public_subnet_ids: list[str]


def parse_state(text: str, source: str) -> dict[str, Any]:
    """The output values of a state file, as the pulumi-terraform provider returns them ({name: value})."""
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise TerraformStateError(f"{source}: not a Terraform state (invalid JSON: {exc})") from None
    if not isinstance(state, dict) or "version" not in state:
        raise TerraformStateError(f"{source}: not a Terraform state (no `version` field)")
    if state["version"] != SUPPORTED_FORMAT_VERSION:
        raise TerraformStateError(
            f"{source}: Terraform state format version {state['version']} is not supported; "
            f"format {SUPPORTED_FORMAT_VERSION} (Terraform 0.12 and later) is"
        )
    outputs = state.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise TerraformStateError(f"{source}: `outputs` is not a mapping")
    values: dict[str, Any] = {}
    for name, output in outputs.items():
        if not isinstance(output, dict) or "value" not in output:
            raise TerraformStateError(f"{source}: output {name!r} has no value")
        values[name] = output["value"]
    return values


def network_from_outputs(outputs: Mapping[str, Any], names: Mapping[str, str], source: str) -> AdoptedNetworkIds:
    """Pick the VPC and subnet ids out of the state's outputs, checking that each has the right shape.

    `names` maps vpc_id / private_subnet_ids / public_subnet_ids to the names of the outputs holding them.
    """

    def output(role: str) -> Any:
        name = names[role]
        if name not in outputs:
            known = ", ".join(sorted(outputs)) or "(none)"
            raise TerraformStateError(f"{source}: output {name!r} (for {role}) is not in the state; outputs: {known}")
        return outputs[name]

    vpc_id = output("vpc_id")
    if not isinstance(vpc_id, str) or not _VPC_ID.match(vpc_id):
        raise TerraformStateError(
            f"{source}: output {names['vpc_id']!r} must be a VPC id such as vpc-0123456789abcdef0 "
            f"(got {type(vpc_id).__name__} {vpc_id!r})"
        )
    lists = {}
    for role in ("private_subnet_ids", "public_subnet_ids"):
        value = output(role)
        if not isinstance(value, list) or not all(isinstance(v, str) and _SUBNET_ID.match(v) for v in value):
            raise TerraformStateError(
                f"{source}: output {names[role]!r} must be a list of subnet ids (got {type(value).__name__} "
                f"{json.dumps(value)[:80]})"
            )
        lists[role] = list(value)
    if len(lists["private_subnet_ids"]) < 2:
        raise TerraformStateError(
            f"{source}: output {names['private_subnet_ids']!r} has {len(lists['private_subnet_ids'])} subnet(s); "
            "EKS needs at least 2 in different AZs"
        )
    return AdoptedNetworkIds(vpc_id, lists["private_subnet_ids"], lists["public_subnet_ids"])
