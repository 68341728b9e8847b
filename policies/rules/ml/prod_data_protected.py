"""Data stores are protected from `pulumi destroy` and kept if removed from the program (enforced in prod)."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, resource_rule

DATA_TYPES = [
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "aws:rds/instance:Instance",
    "aws:efs/fileSystem:FileSystem",
    "aws:dynamodb/table:Table",
]


@resource_rule(
    id="mlp-prod-data-protected",
    severity="high",
    types=DATA_TYPES,
    description="Buckets, KMS keys and databases have the Pulumi options protect and retainOnDelete (mandatory in "
    "prod, off in dev by the policy configs). Terraform plans carry no such options and are not checked.",
    remediation="Set data_lake.protect (and the database's deletion protection) in the stack config.",
    references=["Pulumi docs: protect and retainOnDelete resource options"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.source != "pulumi":
        return
    missing = [o for o in ("protect", "retainOnDelete") if r.options.get(o) is not True]
    if missing:
        yield f"the data resource is not {' and '.join(missing)}"


RULE = check
