"""RDS keeps automated backups long enough to recover."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-rds-instance-backup-retention",
    severity="medium",
    types=["aws:rds/instance:Instance"],
    description="RDS instances keep automated backups for at least the configured number of days (7 by default).",
    remediation="Set backupRetentionPeriod to 7 or more.",
    references=["checkov CKV_AWS_133", "trivy AVD-AWS-0077"],
    params={"minimumDays": 7},
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    days = r.inputs.get("backupRetentionPeriod")
    if is_unknown(days):
        return
    minimum = int(ctx.params["minimumDays"])
    if days is None or int(days) < minimum:
        yield f"automated backups are kept {days if days is not None else 1} day(s); at least {minimum} are required"


RULE = check
