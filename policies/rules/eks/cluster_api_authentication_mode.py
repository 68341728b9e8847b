"""EKS access is managed with access entries (API authentication mode), not the aws-auth ConfigMap."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-eks-cluster-access-entries",
    severity="medium",
    types=["aws:eks/cluster:Cluster"],
    description="Cluster access is granted by EKS access entries (authentication mode API), auditable in IAM, "
    "not by editing the aws-auth ConfigMap; the creator gets no hidden admin rights.",
    remediation='Set accessConfig = {authenticationMode: "API", bootstrapClusterCreatorAdminPermissions: false} '
    "and create an access entry per admin principal.",
    references=["CIS Amazon EKS Benchmark 5.5.1", "AWS EKS best practices: access entries"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    mode = r.get("accessConfig.authenticationMode")
    if is_unknown(mode):
        return
    if mode != "API":
        yield f"authentication mode is {mode or 'unset (CONFIG_MAP)'}; use API (access entries only)"
    if r.get("accessConfig.bootstrapClusterCreatorAdminPermissions") is not False and mode == "API":
        yield (
            "the identity that creates the cluster gets cluster-admin implicitly; set "
            "bootstrapClusterCreatorAdminPermissions to false"
        )


RULE = check
