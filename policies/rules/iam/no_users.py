"""Access is through roles (SSO, Pod Identity), not IAM users with long-lived keys."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="aws-iam-no-users",
    severity="medium",
    types=[
        "aws:iam/user:User",
        "aws:iam/accessKey:AccessKey",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    ],
    description="The platform creates no IAM users, user policies or access keys: people use IAM Identity Center "
    "roles and workloads use Pod Identity.",
    remediation="Replace the user with a role assumed through SSO, or a Pod Identity role for workloads.",
    references=["checkov CKV_AWS_273", "checkov CKV_AWS_40"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    kind = {"aws:iam/accessKey:AccessKey": "a long-lived access key"}.get(r.type, "an IAM user or user policy")
    yield f"the stack creates {kind}; use roles instead"


RULE = check
