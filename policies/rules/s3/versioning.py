"""Buckets keep object versions."""

from collections.abc import Iterator, Mapping, Sequence

from mlplatform.policies.helpers import BUCKET, bucket_index, by_type, settings_of
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, stack_rule

VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"


@stack_rule(
    id="aws-s3-bucket-versioning",
    severity="medium",
    types=[BUCKET, VERSIONING],
    description="S3 buckets have versioning enabled, so that overwritten or deleted objects can be recovered.",
    remediation='Add an aws.s3.BucketVersioning with versioningConfiguration.status "Enabled".',
    references=["checkov CKV_AWS_21", "trivy AVD-AWS-0090"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, VERSIONING)
    for bucket in by_type(resources, BUCKET):
        inline = bucket.inputs.get("versioning")
        states = [v.inputs.get("versioningConfiguration") for v in settings_of(index, bucket)]
        if any(contains_unknown(s) for s in states) or contains_unknown(inline):
            continue
        enabled = any(isinstance(s, Mapping) and s.get("status") == "Enabled" for s in states) or (
            isinstance(inline, Mapping) and inline.get("enabled") is True
        )
        if not enabled:
            yield bucket, "the bucket does not keep object versions"


RULE = check
