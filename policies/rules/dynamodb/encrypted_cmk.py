"""DynamoDB tables are encrypted with a customer managed key."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-dynamodb-table-encrypted-cmk",
    severity="medium",
    types=["aws:dynamodb/table:Table"],
    description="DynamoDB tables are encrypted with a customer managed KMS key (the platform's lake key), not the "
    "AWS owned key, whose use no key policy or CloudTrail event of the account shows.",
    remediation="Set serverSideEncryption = {enabled: true, kmsKeyArn: <key ARN>}.",
    references=["checkov CKV_AWS_119", "trivy AVD-AWS-0025"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    sse = r.inputs.get("serverSideEncryption")
    if is_unknown(sse):
        return
    sse = sse or {}
    enabled, key = sse.get("enabled"), sse.get("kmsKeyArn")
    if is_unknown(enabled) or is_unknown(key):
        return
    if enabled is not True:
        yield "the table is encrypted with the AWS owned key (serverSideEncryption is not enabled)"
    elif not key:
        yield "the table is encrypted with the AWS managed key aws/dynamodb, not a customer managed key"


RULE = check
