"""Identity policies name their actions: no "*" and no "service:*"."""

from collections.abc import Iterator

from mlplatform.policies.helpers import POLICY_TYPES, actions_of, allow_statements, identity_policies, not_actions_of
from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="aws-iam-policy-no-wildcard-actions",
    severity="high",
    types=list(POLICY_TYPES),
    description='IAM policies allow named actions, not "*" or every action of a service ("s3:*").',
    remediation="List the actions the workload calls.",
    references=["checkov CKV_AWS_63", "trivy AVD-AWS-0057"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for document in identity_policies(r):
        for statement in allow_statements(document):
            wild = sorted({a for a in actions_of(statement) if a == "*" or a.endswith(":*")})
            if wild:
                yield f"the policy allows wildcard actions {', '.join(wild)}"
            if "NotAction" in statement:
                excluded = ", ".join(not_actions_of(statement)) or "nothing"
                yield f"the policy allows every action except {excluded} (Allow with NotAction)"


RULE = check
