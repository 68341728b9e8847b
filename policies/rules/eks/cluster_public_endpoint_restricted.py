"""A public EKS endpoint, where allowed, is limited to listed CIDRs."""

from collections.abc import Iterator

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, is_unknown, resource_rule


@resource_rule(
    id="aws-eks-cluster-public-endpoint-restricted",
    severity="high",
    types=["aws:eks/cluster:Cluster"],
    description="If the EKS API endpoint is public, only listed CIDRs can reach it (never 0.0.0.0/0).",
    remediation="Set vpcConfig.publicAccessCidrs to your office or VPN egress ranges, or make the endpoint private.",
    references=["checkov CKV_AWS_38", "trivy AVD-AWS-0041", "CIS Amazon EKS Benchmark 5.4.1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    public = r.get("vpcConfig.endpointPublicAccess")
    if public is False or is_unknown(public):
        return
    cidrs = r.get("vpcConfig.publicAccessCidrs")
    if contains_unknown(cidrs):
        return
    listed = as_list(cidrs)
    if not listed:
        yield "the public API endpoint is open to 0.0.0.0/0 (no vpcConfig.publicAccessCidrs)"
    elif "0.0.0.0/0" in listed:
        yield "the public API endpoint is open to 0.0.0.0/0 (vpcConfig.publicAccessCidrs)"


RULE = check
