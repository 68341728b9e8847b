"""RDS instances are not reachable from the internet."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="aws-rds-instance-not-public",
    severity="critical",
    types=["aws:rds/instance:Instance"],
    description="RDS instances are not publicly accessible.",
    remediation="Set publiclyAccessible = false and place the instance in private subnets.",
    references=["checkov CKV_AWS_17", "trivy AVD-AWS-0180"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.inputs.get("publiclyAccessible") is True:
        yield "the database is publicly accessible"


RULE = check
