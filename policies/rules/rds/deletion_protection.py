"""RDS instances refuse deletion (mandatory in prod)."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-rds-instance-deletion-protection",
    severity="medium",
    types=["aws:rds/instance:Instance"],
    description="RDS instances have deletion protection (enforced in prod by the prod policy config).",
    remediation="Set deletionProtection = true.",
    references=["checkov CKV_AWS_293", "trivy AVD-AWS-0177"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    protected = r.inputs.get("deletionProtection")
    if not is_unknown(protected) and protected is not True:
        yield "the database has no deletion protection"


RULE = check
