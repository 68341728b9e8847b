"""The EKS Kubernetes version is one the blueprint pins add-ons for, and in standard support."""

from collections.abc import Iterator

from mlplatform.infra.catalog import versions
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-eks-cluster-supported-version",
    severity="high",
    types=["aws:eks/cluster:Cluster"],
    description="The cluster runs a Kubernetes version in EKS standard support (extended support bills $0.60/h "
    "instead of $0.10/h) that the platform's catalog knows.",
    remediation="Upgrade to a version listed in infra/catalog/data/versions.json before its standard support ends.",
    references=["checkov CKV_AWS_339", "AWS EKS Kubernetes version lifecycle"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    version = r.inputs.get("version")
    if version is None or is_unknown(version):
        return  # EKS picks its current default version
    catalog = versions.eks()
    known = catalog.versions.get(str(version))
    if known is None:
        yield (f"Kubernetes {version} is not a version the catalog supports ({', '.join(sorted(catalog.versions))})")
        return
    status = known.support_on(ctx.today)
    if status == "extended":
        yield (
            f"Kubernetes {version} left standard support on {known.end_of_standard_support}: EKS bills extended "
            "support ($0.60/h instead of $0.10/h); upgrade"
        )
    elif status == "unsupported":
        yield f"Kubernetes {version} left extended support on {known.end_of_extended_support}; upgrade now"


RULE = check
