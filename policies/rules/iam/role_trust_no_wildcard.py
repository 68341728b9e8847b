"""No role can be assumed by any AWS principal."""

from collections.abc import Iterator

from mlplatform.policies.helpers import allow_statements, policy_document, principal_is_wildcard
from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="aws-iam-role-trust-no-wildcard-principal",
    severity="critical",
    types=["aws:iam/role:Role"],
    description='Role trust policies name who may assume the role; no Allow statement has Principal "*" without '
    "conditions.",
    remediation="Name the service, account or role in Principal, or add conditions (aws:PrincipalOrgID, "
    "sts:ExternalId).",
    references=["checkov CKV_AWS_60"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for statement in allow_statements(policy_document(r.inputs.get("assumeRolePolicy"))):
        if principal_is_wildcard(statement.get("Principal")) and not statement.get("Condition"):
            yield 'any AWS principal can assume the role (Principal "*" without conditions)'


RULE = check
