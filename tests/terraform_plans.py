"""Builders of Terraform-shaped plan JSON (`terraform show -json`, format 1.2) for the reader's tests.

Hand-written, not produced by Terraform: the `terraform` CLI here is offline and cannot download hashicorp/aws, so
AWS-shaped plans cannot be generated. The shapes follow what Terraform 1.x writes, checked against a real plan of
`terraform_data` resources made with the local CLI: `configuration.root_module.resources[*].expressions` with
`references` such as `["aws_s3_bucket.b", "count.index"]` for `aws_s3_bucket.b[count.index].id` (the index is
not kept), `["aws_s3_bucket.b[1].id", "aws_s3_bucket.b[1]", "aws_s3_bucket.b"]` for a literal index,
`["module.m[0].out", "module.m[0]"]` and `["module.m", "each.key"]` for module outputs; instance addresses quote
for_each keys with backslash escapes (`f["q\\"x.y"]`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Instance:
    address: str
    after: dict[str, Any] | None
    unknown: dict[str, Any] = field(default_factory=dict)
    actions: tuple[str, ...] = ("create",)
    before: dict[str, Any] | None = None


@dataclass
class Block:
    """One resource block of the configuration (in `module`, a tuple of call names) and its planned instances."""

    address: str
    type: str
    expressions: dict[str, Any]
    instances: list[Instance]
    module: tuple[str, ...] = ()
    provider: str = "aws"
    mode: str = "managed"
    for_each_refs: list[str] | None = None
    count: int | None = None


def ref(*references: str) -> dict[str, Any]:
    return {"references": list(references)}


def const(value: Any) -> dict[str, Any]:
    return {"constant_value": value}


def plan(
    *blocks: Block,
    variables: dict[str, Any] | None = None,
    providers: dict[str, Any] | None = None,
    module_calls: dict[tuple[str, ...], dict[str, Any]] | None = None,
    prior_data: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A plan: `module_calls` maps call paths (("store",)) to {"outputs": ..., "expressions": ...}."""
    root: dict[str, Any] = {"resources": []}

    def module_of(names: tuple[str, ...]) -> dict[str, Any]:
        node = root
        for name in names:
            calls = node.setdefault("module_calls", {})
            call = calls.setdefault(name, {"source": f"./modules/{name}", "module": {"resources": []}})
            node = call["module"]
        return node

    for path, call in (module_calls or {}).items():
        module = module_of(path)
        module["outputs"] = call.get("outputs", {})
        parent = module_of(path[:-1])
        parent["module_calls"][path[-1]]["expressions"] = call.get("expressions", {})
    changes: list[dict[str, Any]] = []
    planned: list[dict[str, Any]] = []
    for block in blocks:
        entry: dict[str, Any] = {
            "address": block.address,
            "mode": block.mode,
            "type": block.type,
            "name": block.address.rsplit(".", 1)[-1],
            "provider_config_key": block.provider,
            "expressions": block.expressions,
            "schema_version": 0,
        }
        if block.for_each_refs is not None:
            entry["for_each_expression"] = ref(*block.for_each_refs)
        if block.count is not None:
            entry["count_expression"] = const(block.count)
        module_of(block.module)["resources"].append(entry)
        for inst in block.instances:
            change = {
                "address": inst.address,
                "mode": block.mode,
                "type": block.type,
                "name": entry["name"],
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {
                    "actions": list(inst.actions),
                    "before": inst.before,
                    "after": copy.deepcopy(inst.after),
                    "after_unknown": inst.unknown,
                    "before_sensitive": False,
                    "after_sensitive": {},
                },
            }
            changes.append(change)
            if inst.after is not None:
                planned.append({"address": inst.address, "mode": block.mode, "type": block.type, "values": inst.after})
    doc: dict[str, Any] = {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "variables": {k: {"value": v} for k, v in (variables or {}).items()},
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": providers
            or {"aws": {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws"}},
            "root_module": root,
        },
    }
    if prior_data is not None:
        doc["prior_state"] = {"format_version": "1.0", "values": {"root_module": {"resources": prior_data}}}
    return doc


def bucket(address: str, name: str | None = None, **extra: Any) -> Instance:
    """A new bucket: its name known when given, its id and arn known after apply."""
    after: dict[str, Any] = {"force_destroy": False, "tags": None, **extra}
    unknown: dict[str, Any] = {"id": True, "arn": True, "versioning": True, "tags_all": True}
    if name is None:
        unknown["bucket"] = True
    else:
        after["bucket"] = name
    return Instance(address, after, unknown)


PAB_FLAGS = {
    "block_public_acls": True,
    "block_public_policy": True,
    "ignore_public_acls": True,
    "restrict_public_buckets": True,
}


def public_access_block(address: str, bucket_name: str | None = None) -> Instance:
    after: dict[str, Any] = dict(PAB_FLAGS)
    unknown: dict[str, Any] = {"id": True}
    if bucket_name is None:
        unknown["bucket"] = True
    else:
        after["bucket"] = bucket_name
    return Instance(address, after, unknown)


PAB_EXPRESSIONS = {k: const(True) for k in PAB_FLAGS}
