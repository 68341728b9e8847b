"""The EKS upgrade policy is STANDARD, so that a cluster never drifts into paid extended support."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-eks-cluster-upgrade-policy-standard",
    severity="medium",
    types=["aws:eks/cluster:Cluster"],
    description="upgradePolicy.supportType is STANDARD: at the end of standard support EKS upgrades the cluster "
    "instead of billing extended support.",
    remediation='Set upgradePolicy = {supportType: "STANDARD"} and plan upgrades.',
    references=["AWS EKS API UpgradePolicyRequest (default EXTENDED)"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    support = r.get("upgradePolicy.supportType")
    if is_unknown(support):
        return
    if support != "STANDARD":
        yield (
            f"upgrade policy is {support or 'unset (EKS default: EXTENDED)'}: the cluster moves to extended "
            "support at $0.60/h; set upgradePolicy.supportType to STANDARD"
        )


RULE = check
