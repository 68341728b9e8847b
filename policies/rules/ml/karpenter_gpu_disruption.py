"""Karpenter GPU pools consolidate idle nodes and expire old ones."""

from collections.abc import Iterator

from mlplatform.policies.helpers import NODEPOOL, is_gpu_nodepool
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="mlp-karpenter-gpu-consolidation",
    severity="medium",
    types=[NODEPOOL],
    description="GPU NodePools consolidate (empty or underutilized nodes are removed after consolidateAfter) and "
    "expire nodes (expireAfter), so idle GPUs are not paid for and nodes pick up new AMIs.",
    remediation="Set disruption.consolidationPolicy, disruption.consolidateAfter (not Never) and "
    "template.spec.expireAfter (not Never).",
    references=["Karpenter docs: disruption"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if not is_gpu_nodepool(r):
        return
    after = r.get("spec.disruption.consolidateAfter")
    expire = r.get("spec.template.spec.expireAfter")
    if not is_unknown(after) and (after is None or after == "Never"):
        yield f"idle GPU nodes are never consolidated (consolidateAfter: {after or 'unset'})"
    if not is_unknown(expire) and expire == "Never":
        yield "GPU nodes never expire (expireAfter: Never)"


RULE = check
