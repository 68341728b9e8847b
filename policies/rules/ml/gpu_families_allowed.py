"""GPU pools use only the instance families the environment allows."""

from collections.abc import Iterator

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.policies.helpers import (
    NODEGROUP,
    NODEPOOL,
    as_list,
    is_gpu_nodegroup,
    is_gpu_nodepool,
    nodepool_instance_types,
)
from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="mlp-gpu-families-allowed",
    severity="high",
    types=[NODEPOOL, NODEGROUP],
    description="GPU NodePools and node groups launch only the instance families allowed in the environment (for "
    "example no p5 in dev).",
    remediation="Use an allowed family, or change allowedFamilies in the environment's policy config.",
    references=["ML platform guardrail: GPU families per environment"],
    params={"allowedFamilies": list(gpu_catalog.nvidia_families())},
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    allowed = set(ctx.params["allowedFamilies"])
    if r.type == NODEPOOL:
        if not is_gpu_nodepool(r):
            return
        families, types = nodepool_instance_types(r)
        used = set(families) | {t.split(".")[0] for t in types}
    else:
        if not is_gpu_nodegroup(r):
            return
        used = {str(t).split(".")[0] for t in as_list(r.inputs.get("instanceTypes"))}
    refused = sorted(used - allowed)
    if refused:
        yield f"uses GPU families {', '.join(refused)}, not allowed here (allowed: {', '.join(sorted(allowed))})"


RULE = check
