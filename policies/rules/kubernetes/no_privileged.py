"""No privileged containers or host namespaces, except the allow-listed GPU daemons."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import WORKLOAD_TYPES, containers, metadata_name, metadata_namespace, pod_specs
from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="kubernetes-workload-no-privileged",
    severity="critical",
    types=list(WORKLOAD_TYPES),
    description="Workloads run unprivileged and outside the host's network, PID and IPC namespaces; GPU node "
    "daemons (device plugin, DCGM exporter) may be allow-listed by namespace/name.",
    remediation="Remove privileged, hostNetwork, hostPID and hostIPC, or add the workload to allowedWorkloads.",
    references=[
        "checkov CKV_K8S_16",
        "checkov CKV_K8S_17",
        "checkov CKV_K8S_18",
        "checkov CKV_K8S_19",
        "CIS Amazon EKS Benchmark 4.2.1-4.2.4",
    ],
    params={
        "allowedWorkloads": [
            "nvidia-device-plugin/*",
            "aws-efa-device-plugin/*",
            "gpu-operator/*",
            "monitoring/dcgm-exporter",
        ]
    },
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    namespace, name = metadata_namespace(r), metadata_name(r)
    for allowed in ctx.params["allowedWorkloads"]:
        allowed_ns, _, allowed_name = str(allowed).partition("/")
        if allowed_ns == namespace and allowed_name in ("*", name):
            return
    for where, pod in pod_specs(r):
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(flag) is True:
                yield f"{where} uses {flag}"
        for cname, container in containers(pod):
            security = container.get("securityContext")
            if isinstance(security, Mapping) and security.get("privileged") is True:
                yield f"{where}.{cname} is privileged"


RULE = check
