"""Karpenter GPU pools are bounded by an nvidia.com/gpu limit."""

from collections.abc import Iterator

from mlplatform.policies.helpers import NODEPOOL, is_gpu_nodepool
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="mlp-gpu-pool-limits",
    severity="high",
    types=[NODEPOOL],
    description='GPU NodePools set limits["nvidia.com/gpu"], the most GPUs Karpenter may launch for the pool.',
    remediation='Set spec.limits["nvidia.com/gpu"] (the platform derives it from the pool\'s max_gpus).',
    references=["Karpenter docs: NodePool limits"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if not is_gpu_nodepool(r):
        return
    limits = r.get("spec.limits")
    if is_unknown(limits):
        return
    if not isinstance(limits, dict) or not limits.get("nvidia.com/gpu"):
        yield "the GPU NodePool has no nvidia.com/gpu limit: Karpenter may launch GPUs without bound"


RULE = check
