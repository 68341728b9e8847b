"""ECR scans images when they are pushed."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-ecr-repository-scan-on-push",
    severity="medium",
    types=["aws:ecr/repository:Repository"],
    description="ECR repositories scan images on push.",
    remediation="Set imageScanningConfiguration = {scanOnPush: true} (or enhanced scanning for the registry).",
    references=["checkov CKV_AWS_163", "trivy AVD-AWS-0030", "CIS Amazon EKS Benchmark 5.1.1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    scan = r.get("imageScanningConfiguration.scanOnPush")
    if not is_unknown(scan) and scan is not True:
        yield "images are not scanned on push"


RULE = check
