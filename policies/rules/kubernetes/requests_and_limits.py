"""Every container states its CPU and memory requests and a memory limit."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import WORKLOAD_TYPES, containers, pod_specs
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule


@resource_rule(
    id="kubernetes-workload-requests-limits",
    severity="medium",
    types=list(WORKLOAD_TYPES),
    description="Containers request CPU and memory (so the scheduler and Karpenter size nodes right) and limit "
    "memory (so one container cannot exhaust a node). CPU limits are optional: they throttle without protecting.",
    remediation="Set resources.requests.cpu, resources.requests.memory and resources.limits.memory.",
    references=["checkov CKV_K8S_10", "checkov CKV_K8S_11", "checkov CKV_K8S_12", "checkov CKV_K8S_13"],
    params={"requireCpuLimit": False},
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    required = [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")]
    if ctx.params["requireCpuLimit"]:
        required.append(("limits", "cpu"))
    for where, pod in pod_specs(r):
        for name, container in containers(pod):
            resources = container.get("resources")
            if contains_unknown(resources):
                continue
            missing = [
                f"{kind}.{res}"
                for kind, res in required
                if not (
                    isinstance(resources, Mapping)
                    and isinstance(resources.get(kind), Mapping)
                    and resources[kind].get(res)
                )
            ]
            if missing:
                yield f"{where}.{name} sets no {', '.join(missing)}"


RULE = check
