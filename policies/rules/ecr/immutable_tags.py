"""ECR image tags cannot be overwritten."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-ecr-repository-immutable-tags",
    severity="medium",
    types=["aws:ecr/repository:Repository"],
    description="ECR repositories have immutable tags, so a deployed tag always means the same image.",
    remediation='Set imageTagMutability = "IMMUTABLE".',
    references=["checkov CKV_AWS_51", "trivy AVD-AWS-0031"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    mutability = r.inputs.get("imageTagMutability")
    if not is_unknown(mutability) and mutability not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        yield f"image tags are mutable ({mutability or 'MUTABLE by default'})"


RULE = check
