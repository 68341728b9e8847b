"""Roles trusted through a CI OIDC provider are limited to named repositories."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import allow_statements, as_list, policy_document
from mlplatform.policies.model import Resource, RuleContext, resource_rule

PROVIDERS = {
    "token.actions.githubusercontent.com": "token.actions.githubusercontent.com:sub",
    "gitlab.com": "gitlab.com:sub",
    "app.terraform.io": "app.terraform.io:sub",
}


def _conditions_on(statement: Mapping[str, object], key: str) -> list[str]:
    found: list[str] = []
    condition = statement.get("Condition")
    if isinstance(condition, Mapping):
        for operator in condition.values():
            if isinstance(operator, Mapping) and key in operator:
                found += [str(v) for v in as_list(operator[key])]
    return found


@resource_rule(
    id="aws-iam-role-oidc-trust-scoped",
    severity="critical",
    types=["aws:iam/role:Role"],
    description="Roles federated to GitHub Actions, GitLab or Terraform Cloud OIDC restrict the token subject, so "
    "that not every repository of the provider can assume them.",
    remediation='Add a condition on "<provider>:sub" such as "repo:my-org/my-repo:ref:refs/heads/main".',
    references=["checkov CKV_AWS_393", "checkov CKV_AWS_358"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for statement in allow_statements(policy_document(r.inputs.get("assumeRolePolicy"))):
        principal = statement.get("Principal")
        federated = as_list(principal.get("Federated")) if isinstance(principal, Mapping) else []
        for provider, sub_key in PROVIDERS.items():
            if not any(provider in str(f) for f in federated):
                continue
            subjects = _conditions_on(statement, sub_key)
            if not subjects or any(s in ("*", "repo:*") for s in subjects):
                yield f"any {provider} workflow can assume the role (no condition on {sub_key})"


RULE = check
