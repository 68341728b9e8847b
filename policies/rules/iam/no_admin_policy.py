"""No identity policy grants every action on every resource."""

from collections.abc import Iterator

from mlplatform.policies.helpers import POLICY_TYPES, actions_of, allow_statements, identity_policies, resources_of
from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="aws-iam-policy-no-admin",
    severity="critical",
    types=list(POLICY_TYPES),
    description='IAM policies do not allow Action "*" on Resource "*" (full administrator).',
    remediation="Grant the actions and resources the principal needs; keep administrator access for break-glass "
    "roles outside the platform.",
    references=["checkov CKV_AWS_62", "checkov CKV_AWS_1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for document in identity_policies(r):
        for statement in allow_statements(document):
            if "*" in actions_of(statement) and "*" in resources_of(statement):
                yield 'the policy allows Action "*" on Resource "*" (administrator)'


RULE = check
