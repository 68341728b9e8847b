"""GPU containers set nvidia.com/gpu limits and their pods tolerate the GPU taint."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import WORKLOAD_TYPES, as_list, containers, gpu_count, pod_specs
from mlplatform.policies.model import Resource, RuleContext, resource_rule


def _tolerates_gpu(pod: Mapping[str, object]) -> bool:
    for toleration in as_list(pod.get("tolerations")):
        if isinstance(toleration, Mapping) and (
            toleration.get("key") == "nvidia.com/gpu"
            or (toleration.get("operator") == "Exists" and not toleration.get("key"))
        ):
            return True
    return False


@resource_rule(
    id="kubernetes-workload-gpu-limits",
    severity="high",
    types=list(WORKLOAD_TYPES),
    description="A container that uses GPUs sets nvidia.com/gpu in limits (extended resources cannot be "
    "overcommitted; requests alone are rejected or ignored), and its pod tolerates the nvidia.com/gpu taint of the "
    "GPU pools.",
    remediation='Set resources.limits["nvidia.com/gpu"] (requests default to it) and add a toleration for '
    "nvidia.com/gpu:NoSchedule.",
    references=["Kubernetes docs: schedule GPUs", "NVIDIA k8s-device-plugin"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for where, pod in pod_specs(r):
        uses_gpu = False
        for name, container in containers(pod):
            resources = container.get("resources") if isinstance(container.get("resources"), Mapping) else {}
            requested, limited = gpu_count(resources, "requests"), gpu_count(resources, "limits")
            uses_gpu = uses_gpu or bool(requested or limited)
            if requested and not limited:
                yield f"{where}.{name} requests nvidia.com/gpu without a limit"
            elif requested and limited and requested != limited:
                yield f"{where}.{name} requests {requested} and limits {limited} nvidia.com/gpu (must be equal)"
        if uses_gpu and not _tolerates_gpu(pod):
            yield f"{where} uses GPUs but does not tolerate the nvidia.com/gpu taint"


RULE = check
