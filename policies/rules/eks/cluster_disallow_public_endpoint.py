"""The EKS API endpoint is private (EKS makes it public when `endpointPublicAccess` is not set)."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-eks-cluster-disallow-public-endpoint",
    severity="high",
    types=["aws:eks/cluster:Cluster"],
    description="The Kubernetes API endpoint of an EKS cluster is not reachable from the internet.",
    remediation="Set vpcConfig.endpointPublicAccess to false and endpointPrivateAccess to true; reach the API over "
    "VPN, Direct Connect or a bastion.",
    references=["checkov CKV_AWS_39", "trivy AVD-AWS-0040", "CIS Amazon EKS Benchmark 5.4.2"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    public = r.get("vpcConfig.endpointPublicAccess")
    if is_unknown(public):
        return
    if public is None or public is True:
        yield (
            "the Kubernetes API endpoint is public"
            + (" (EKS default when endpointPublicAccess is unset)" if public is None else "")
            + "; set vpcConfig.endpointPublicAccess to false"
        )


RULE = check
