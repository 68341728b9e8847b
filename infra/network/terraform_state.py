"""The network a landing zone's Terraform state exports: the VPC and subnet ids, each checked for its shape
(reading the state itself: `infra.terraform_state`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.infra.terraform_state import SUPPORTED_FORMAT_VERSION, TerraformStateError, parse_state

__all__ = [
    "SUPPORTED_FORMAT_VERSION",
    "AdoptedNetworkIds",
    "TerraformStateError",
    "network_from_outputs",
    "parse_state",
]

_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class AdoptedNetworkIds:
    vpc_id: str
    private_subnet_ids: list[str]
    public_subnet_ids: list[str]


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
