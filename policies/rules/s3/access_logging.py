"""Buckets log access to an access-log bucket."""

from collections.abc import Iterator, Mapping, Sequence

from mlplatform.policies.helpers import BUCKET, bucket_index, by_type, is_access_log_bucket, settings_of
from mlplatform.policies.model import Resource, RuleContext, stack_rule

LOGGING = "aws:s3/bucketLogging:BucketLogging"


@stack_rule(
    id="aws-s3-bucket-access-logging",
    severity="low",
    types=[BUCKET, LOGGING],
    description="S3 buckets have server access logging (the access-log bucket itself excepted).",
    remediation="Add an aws.s3.BucketLogging that targets the access-log bucket.",
    references=["checkov CKV_AWS_18", "trivy AVD-AWS-0089"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, LOGGING)
    for bucket in by_type(resources, BUCKET):
        if is_access_log_bucket(bucket):
            continue
        inline = bucket.inputs.get("logging") or bucket.inputs.get("loggings")
        if settings_of(index, bucket) or (isinstance(inline, Mapping | list) and inline):
            continue
        yield bucket, "the bucket has no server access logging"


RULE = check
