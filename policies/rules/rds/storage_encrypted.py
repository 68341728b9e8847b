"""RDS storage is encrypted."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-rds-instance-storage-encrypted",
    severity="high",
    types=["aws:rds/instance:Instance"],
    description="RDS instances encrypt storage, backups and snapshots (with the platform key).",
    remediation="Set storageEncrypted = true and kmsKeyId (this replaces an existing instance).",
    references=["checkov CKV_AWS_16", "trivy AVD-AWS-0080"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    encrypted = r.inputs.get("storageEncrypted")
    if not is_unknown(encrypted) and encrypted is not True:
        yield "the database storage is not encrypted"


RULE = check
