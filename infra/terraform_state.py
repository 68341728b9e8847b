"""Pure reading of a Terraform state (format version 4): its output values, checked the same way in the program
(on what the `pulumi-terraform` provider returns) and in the offline planner (on the state file itself), so that a
missing output or an output of the wrong type fails the same way in both. The network (`infra.network`) and the
cluster (`infra.cluster`) each pick their own outputs out of these values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SUPPORTED_FORMAT_VERSION = 4


class TerraformStateError(ValueError):
    """A Terraform state that cannot give what the config asks for (the network, the cluster)."""


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


def missing_output(
    outputs: Mapping[str, Any], name: str, role: str, source: str, config_key: str
) -> TerraformStateError:
    """The error for an output the state does not have: which state, which output, what it was for, what to do."""
    known = ", ".join(sorted(outputs)) or "(none)"
    return TerraformStateError(
        f"{source}: output {name!r} (for {role}) is not in the state; outputs: {known}. Export it from the root "
        f'module (`output "{name}" {{ value = module.<name>.{name} }}`, then `terraform apply`), or name the '
        f"output that holds it in {config_key}"
    )
