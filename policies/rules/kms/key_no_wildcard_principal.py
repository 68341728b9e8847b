"""KMS key policies never allow any principal."""

from collections.abc import Iterator

from mlplatform.policies.helpers import allow_statements, policy_document, principal_is_wildcard
from mlplatform.policies.model import Resource, RuleContext, resource_rule

SCOPING_KEYS = (
    "aws:PrincipalAccount",
    "kms:CallerAccount",
    "aws:PrincipalOrgID",
    "aws:SourceAccount",
    "aws:PrincipalArn",
)


@resource_rule(
    id="aws-kms-key-no-wildcard-principal",
    severity="high",
    types=["aws:kms/key:Key"],
    description='KMS key policies name their principals; no Allow statement has Principal "*" unless a condition '
    "limits it to an account or organization.",
    remediation="Name the account root (so IAM policies decide) and the services that use the key.",
    references=["checkov CKV_AWS_33"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for statement in allow_statements(policy_document(r.inputs.get("policy"))):
        if not principal_is_wildcard(statement.get("Principal")):
            continue
        conditions = statement.get("Condition") or {}
        scoped = any(k in op for op in conditions.values() if isinstance(op, dict) for k in SCOPING_KEYS)
        if not scoped:
            yield 'the key policy allows Principal "*" without an account or organization condition'


RULE = check
