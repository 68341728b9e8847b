"""Buckets have lifecycle rules (incomplete uploads and old versions would otherwise be billed forever)."""

from collections.abc import Iterator, Sequence

from mlplatform.policies.helpers import BUCKET, as_list, bucket_index, by_type, settings_of
from mlplatform.policies.model import Resource, RuleContext, stack_rule

LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


@stack_rule(
    id="aws-s3-bucket-lifecycle",
    severity="low",
    types=[BUCKET, LIFECYCLE],
    description="S3 buckets have lifecycle rules: abort incomplete multipart uploads and expire noncurrent versions.",
    remediation="Add an aws.s3.BucketLifecycleConfiguration for the bucket.",
    references=["checkov CKV2_AWS_61"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, LIFECYCLE)
    for bucket in by_type(resources, BUCKET):
        if (
            settings_of(index, bucket)
            or as_list(bucket.inputs.get("lifecycleRules"))
            or as_list(bucket.inputs.get("lifecycleRule"))
        ):
            continue
        yield bucket, "the bucket has no lifecycle rules"


RULE = check
