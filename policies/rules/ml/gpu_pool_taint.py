"""GPU pools are tainted, so only pods that ask for GPUs land there (no GPU node kept alive by CPU pods)."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import NODEGROUP, NODEPOOL, as_list, is_gpu_nodegroup, is_gpu_nodepool
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule


@resource_rule(
    id="mlp-gpu-pool-taint",
    severity="high",
    types=[NODEPOOL, NODEGROUP],
    description="Karpenter NodePools and managed node groups with GPU instances carry the taint "
    "nvidia.com/gpu:NoSchedule.",
    remediation='Add the taint {key: nvidia.com/gpu, value: "true", effect: NoSchedule} (NO_SCHEDULE for node groups).',
    references=["AWS EKS best practices: GPU node taints", "Karpenter docs: scheduling (taints)"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.type == NODEPOOL:
        if not is_gpu_nodepool(r):
            return
        taints = r.get("spec.template.spec.taints")
        effects: tuple[str, ...] = ("NoSchedule",)
    else:
        if not is_gpu_nodegroup(r):
            return
        taints = r.inputs.get("taints")
        effects = ("NO_SCHEDULE", "NoSchedule")
    if contains_unknown(taints):
        return
    if not any(
        isinstance(t, Mapping) and t.get("key") == "nvidia.com/gpu" and t.get("effect") in effects
        for t in as_list(taints)
    ):
        yield "GPU nodes have no nvidia.com/gpu NoSchedule taint: CPU pods can land on them and keep them running"


RULE = check
