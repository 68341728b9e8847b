"""The VPC's default security group allows nothing."""

from collections.abc import Iterator

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule


@resource_rule(
    id="aws-ec2-default-security-group-no-rules",
    severity="low",
    types=["aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"],
    description="The default security group of a VPC has no ingress and no egress rules, so nothing uses it by "
    "accident.",
    remediation="Manage the default security group with no rules and use dedicated groups.",
    references=["checkov CKV2_AWS_12", "CIS AWS Foundations 5.4"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for direction in ("ingress", "egress"):
        rules = r.inputs.get(direction)
        if not contains_unknown(rules) and as_list(rules):
            yield f"the default security group has {direction} rules"


RULE = check
