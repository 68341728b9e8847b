"""No role, user or group gets the AdministratorAccess managed policy."""

from collections.abc import Iterator

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, resource_rule

ADMIN_POLICIES = ("AdministratorAccess", "IAMFullAccess", "PowerUserAccess")


@resource_rule(
    id="aws-iam-no-admin-managed-policy",
    severity="critical",
    types=[
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
        "aws:iam/role:Role",
    ],
    description="AWS managed administrator policies (AdministratorAccess, IAMFullAccess, PowerUserAccess) are not "
    "attached by the platform.",
    remediation="Attach a least-privilege policy instead.",
    references=["checkov CKV_AWS_274"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    arns = as_list(r.inputs.get("policyArn")) + as_list(r.inputs.get("managedPolicyArns"))
    for arn in arns:
        if isinstance(arn, str) and arn.rsplit("/", 1)[-1] in ADMIN_POLICIES and ":aws:policy/" in arn:
            yield f"attaches the managed policy {arn.rsplit('/', 1)[-1]}"


RULE = check
