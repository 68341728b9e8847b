"""DynamoDB tables can be recovered: point-in-time recovery and deletion protection."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-dynamodb-table-recoverable",
    severity="medium",
    types=["aws:dynamodb/table:Table"],
    description="DynamoDB tables keep point-in-time recovery (35 days of restorable state) and refuse deletion "
    "(mandatory in staging and prod).",
    remediation="Set pointInTimeRecovery = {enabled: true} and deletionProtectionEnabled = true (the feature store "
    "does both where data_lake.protect is set, outside dev).",
    references=["checkov CKV_AWS_28", "trivy AVD-AWS-0024", "AWS Security Hub DynamoDB.2, DynamoDB.6"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    recovery = r.inputs.get("pointInTimeRecovery")
    enabled = recovery.get("enabled") if isinstance(recovery, dict) else recovery
    if not is_unknown(enabled) and enabled is not True:
        yield "point-in-time recovery is off"
    protected = r.inputs.get("deletionProtectionEnabled")
    if not is_unknown(protected) and protected is not True:
        yield "deletion protection is off"


RULE = check
