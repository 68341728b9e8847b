"""No identity policy lets its holder grant itself more permissions."""

from collections.abc import Iterator, Mapping
from typing import Any

from mlplatform.policies.helpers import (
    POLICY_TYPES,
    action_matches,
    actions_of,
    allow_statements,
    identity_policies,
    not_actions_of,
    resources_of,
)
from mlplatform.policies.model import Resource, RuleContext, resource_rule

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
    # new code for an existing function runs with that function's role (Rhino Security Labs: escalation methods)
    "lambda:UpdateFunctionCode",
)


TAKEOVER = "iam:UpdateAssumeRolePolicy"
"""On a named role: the holder rewrites its trust policy to admit itself, then acts as that role."""


def _allows(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(action_matches(n, action) for n in not_actions_of(statement))
    return any(action_matches(a, action) for a in actions_of(statement))


def _granted(statement: Mapping[str, Any]) -> list[str]:
    """Escalation actions an Allow statement grants (Action patterns, any case; or all but its NotAction)."""
    if "NotAction" in statement:
        excluded = not_actions_of(statement)
        return sorted(e for e in ESCALATION if not any(action_matches(n, e) for n in excluded))
    actions = [a for a in actions_of(statement) if a != "*"]  # "*" is the administrator rule's finding
    return sorted({e for e in ESCALATION for a in actions if action_matches(a, e)})


@resource_rule(
    id="aws-iam-policy-no-privilege-escalation",
    severity="high",
    types=list(POLICY_TYPES),
    description="IAM policies do not allow privilege escalation on unscoped resources: changing policies, creating "
    'credentials, passing any role (iam:PassRole on "*") or replacing a Lambda function\'s code; nor rewriting a '
    "named role's trust policy (iam:UpdateAssumeRolePolicy, which `*` and `iam:*` include); action names match in "
    "any case, and an Allow with NotAction grants everything it does not exclude.",
    remediation="Remove the action, or scope it to named resources (iam:PassRole to the one role a service needs).",
    references=["checkov CKV_AWS_286", "Rhino Security Labs: AWS IAM privilege escalation methods"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for document in identity_policies(r):
        for statement in allow_statements(document):
            resources = resources_of(statement)
            roles = sorted(res for res in resources if ":role/" in res and not res.endswith("/*"))
            if roles and _allows(statement, TAKEOVER):
                yield (
                    f"the policy allows {TAKEOVER} on {', '.join(roles)}: the holder can make the role assumable by "
                    "itself and act as it"
                )
            if not any(res == "*" or res.endswith((":*", "/*")) for res in resources):
                continue
            granted = _granted(statement)
            if granted:
                yield f"the policy allows {', '.join(granted)} on unscoped resources"


RULE = check
