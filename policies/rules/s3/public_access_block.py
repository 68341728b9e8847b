"""Every bucket has a public access block with all four flags on."""

from collections.abc import Iterator, Sequence

from mlplatform.policies.helpers import BUCKET, bucket_index, by_type, settings_of
from mlplatform.policies.model import Resource, RuleContext, is_unknown, stack_rule

FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"


@stack_rule(
    id="aws-s3-bucket-public-access-block",
    severity="high",
    types=[BUCKET, PAB],
    description="Every S3 bucket has a BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, "
    "ignorePublicAcls and restrictPublicBuckets set.",
    remediation="Add an aws.s3.BucketPublicAccessBlock for the bucket with all four flags true.",
    references=[
        "checkov CKV2_AWS_6",
        "trivy AVD-AWS-0086",
        "trivy AVD-AWS-0087",
        "trivy AVD-AWS-0091",
        "trivy AVD-AWS-0093",
        "trivy AVD-AWS-0094",
    ],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, PAB)
    for bucket in by_type(resources, BUCKET):
        blocks = settings_of(index, bucket)
        if not blocks:
            yield bucket, "the bucket has no public access block"
            continue
        for block in blocks:
            off = [f for f in FLAGS if not is_unknown(block.inputs.get(f)) and block.inputs.get(f) is not True]
            if off:
                yield bucket, f"the public access block leaves {', '.join(off)} off"


RULE = check
