"""The GPUs all pools may launch together stay under the environment's maximum."""

from collections.abc import Iterator, Sequence

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.policies.helpers import NODEGROUP, NODEPOOL, as_list, by_type, is_gpu_nodegroup, is_gpu_nodepool
from mlplatform.policies.model import Resource, RuleContext, stack_rule


def pool_max_gpus(r: Resource) -> int:
    """Most GPUs one pool can hold: the NodePool limit, or max nodes x GPUs per node of a node group."""
    if r.type == NODEPOOL:
        limits = r.get("spec.limits") or {}
        try:
            return int(str(limits.get("nvidia.com/gpu", 0)))
        except ValueError:
            return 0
    size = r.get("scalingConfig.maxSize") or 0
    per_node = max(
        (s.gpu_count for t in as_list(r.inputs.get("instanceTypes")) if (s := gpu_catalog.gpu_instance(str(t)))),
        default=0,
    )
    return int(size) * per_node if isinstance(size, int | float) else 0


@stack_rule(
    id="mlp-max-gpus",
    severity="high",
    types=[NODEPOOL, NODEGROUP],
    description="The sum of all GPU pools' maximum GPUs stays within the environment's maxGpus.",
    remediation="Lower the pools' max_gpus, or raise maxGpus in the environment's policy config.",
    references=["ML platform guardrail: GPUs per environment"],
    params={"maxGpus": 64},
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    pools = [p for p in by_type(resources, NODEPOOL) if is_gpu_nodepool(p)]
    pools += [g for g in by_type(resources, NODEGROUP) if is_gpu_nodegroup(g)]
    total = sum(pool_max_gpus(p) for p in pools)
    if pools and total > int(ctx.params["maxGpus"]):
        detail = ", ".join(f"{p.name}: {pool_max_gpus(p)}" for p in pools)
        yield (
            pools[0],
            f"the GPU pools allow {total} GPUs in all ({detail}); the maximum here is {ctx.params['maxGpus']}",
        )


RULE = check
