"""Buckets disable ACLs: the bucket owner owns every object."""

from collections.abc import Iterator, Sequence

from mlplatform.policies.helpers import BUCKET, bucket_index, by_type, settings_of
from mlplatform.policies.model import Resource, RuleContext, is_unknown, stack_rule

OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"


@stack_rule(
    id="aws-s3-bucket-owner-enforced",
    severity="medium",
    types=[BUCKET, OWNERSHIP],
    description="S3 buckets use BucketOwnerEnforced object ownership (ACLs disabled).",
    remediation='Add an aws.s3.BucketOwnershipControls with rule.objectOwnership "BucketOwnerEnforced".',
    references=["checkov CKV2_AWS_65"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, OWNERSHIP)
    for bucket in by_type(resources, BUCKET):
        controls = [c.get("rule.objectOwnership") for c in settings_of(index, bucket)]
        if any(is_unknown(c) for c in controls):
            continue
        if "BucketOwnerEnforced" not in controls:
            yield bucket, "the bucket allows ACLs (object ownership is not BucketOwnerEnforced)"


RULE = check
