"""Actions that support resource-level permissions are scoped to resources, not "*"."""

from collections.abc import Iterator

from mlplatform.policies.helpers import (
    POLICY_TYPES,
    action_matches,
    actions_of,
    allow_statements,
    identity_policies,
    resources_of,
)
from mlplatform.policies.model import Resource, RuleContext, resource_rule

# Actions that do not support resource-level permissions (AWS Service Authorization Reference): "*" is the only
# possible resource for them.
UNRESTRICTABLE = (
    "ec2:Describe*",
    "autoscaling:Describe*",
    "elasticloadbalancing:Describe*",
    "eks:List*",
    "eks:DescribeAddonVersions",
    "iam:List*",
    "iam:GetAccountSummary",
    "pricing:*",
    "sts:GetCallerIdentity",
    "ecr:GetAuthorizationToken",
    "s3:ListAllMyBuckets",
    "kms:ListKeys",
    "kms:ListAliases",
    "logs:DescribeLogGroups",
    "cloudwatch:PutMetricData",
    "cloudwatch:Get*",
    "cloudwatch:List*",
    "cloudwatch:Describe*",
    "xray:Put*",
    "xray:Get*",
    "ssm:DescribeParameters",
    "sqs:ListQueues",
    "tag:Get*",
    "route53:ListHostedZones",
    "servicequotas:Get*",
    "servicequotas:List*",
    "aps:RemoteWrite",
    "ec2:CreateTags",
    "support:*",
)


def _restrictable(action: str) -> bool:
    return action != "*" and not any(action_matches(pattern, action) for pattern in UNRESTRICTABLE)


@resource_rule(
    id="aws-iam-policy-no-wildcard-resources",
    severity="medium",
    types=list(POLICY_TYPES),
    description='Actions that support resource-level permissions name their resources instead of "*".',
    remediation="Scope the statement's Resource to the ARNs the workload uses (buckets, prefixes, keys, queues).",
    references=["checkov CKV_AWS_355"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for document in identity_policies(r):
        for statement in allow_statements(document):
            if "*" not in resources_of(statement) or statement.get("Condition"):
                continue
            scoped = sorted({a for a in actions_of(statement) if _restrictable(a)})
            if scoped:
                shown = ", ".join(scoped[:5]) + (f" and {len(scoped) - 5} more" if len(scoped) > 5 else "")
                yield f'the policy allows {shown} on Resource "*"'


RULE = check
