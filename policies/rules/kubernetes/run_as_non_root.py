"""Containers run as a non-root user."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import WORKLOAD_TYPES, containers, pod_specs
from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="kubernetes-workload-run-as-non-root",
    severity="high",
    types=list(WORKLOAD_TYPES),
    description="Pods or every container set securityContext.runAsNonRoot = true.",
    remediation="Set spec.securityContext.runAsNonRoot = true (and a runAsUser if the image has no USER).",
    references=["checkov CKV_K8S_23", "CIS Amazon EKS Benchmark 1.2.0 4.2.6"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for where, pod in pod_specs(r):
        pod_context = pod.get("securityContext")
        pod_non_root = isinstance(pod_context, Mapping) and pod_context.get("runAsNonRoot") is True
        for name, container in containers(pod):
            context = container.get("securityContext")
            own = context.get("runAsNonRoot") if isinstance(context, Mapping) else None
            if own is False or (own is None and not pod_non_root):
                yield f"{where}.{name} may run as root (runAsNonRoot not set)"


RULE = check
