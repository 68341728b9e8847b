"""No identity policy lets its holder grant itself more permissions."""

import fnmatch
from collections.abc import Iterator

from policies.helpers import POLICY_TYPES, actions_of, allow_statements, identity_policies, resources_of
from policies.model import Resource, RuleContext, resource_rule

ESCALATION = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachGroupPolicy",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:PutGroupPolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:UpdateAssumeRolePolicy",
    "iam:AddUserToGroup",
    "iam:PassRole",
)


@resource_rule(
    id="aws-iam-policy-no-privilege-escalation",
    severity="high",
    types=list(POLICY_TYPES),
    description="IAM policies do not allow privilege escalation: changing policies, creating credentials, or "
    'passing any role (iam:PassRole on "*").',
    remediation="Remove the action, or scope it to named resources (iam:PassRole to the one role a service needs).",
    references=["checkov CKV_AWS_286", "Rhino Security Labs: AWS IAM privilege escalation methods"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for document in identity_policies(r):
        for statement in allow_statements(document):
            resources = resources_of(statement)
            if not any(res == "*" or res.endswith((":*", "/*")) for res in resources):
                continue
            granted = sorted(
                {e for e in ESCALATION for a in actions_of(statement) if a != "*" and fnmatch.fnmatchcase(e, a)}
            )
            if granted:
                yield f"the policy allows {', '.join(granted)} on unscoped resources"


RULE = check
