"""All five EKS control-plane log types go to CloudWatch Logs."""

from collections.abc import Iterator

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


@resource_rule(
    id="aws-eks-cluster-control-plane-logging",
    severity="medium",
    types=["aws:eks/cluster:Cluster"],
    description="The EKS control plane sends all five log types (api, audit, authenticator, controllerManager, "
    "scheduler) to CloudWatch Logs.",
    remediation="Set enabledClusterLogTypes to all five types and give the log group a retention.",
    references=["checkov CKV_AWS_37", "trivy AVD-AWS-0038", "CIS Amazon EKS Benchmark 2.1.1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    enabled = r.inputs.get("enabledClusterLogTypes")
    if contains_unknown(enabled):
        return
    missing = [t for t in LOG_TYPES if t not in as_list(enabled)]
    if missing:
        yield f"control-plane log types not enabled: {', '.join(missing)}"


RULE = check
