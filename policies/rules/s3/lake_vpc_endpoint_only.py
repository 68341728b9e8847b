"""Lake buckets deny object access from outside the VPC."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlplatform.policies.helpers import (
    BUCKET,
    actions_of,
    bucket_index,
    by_type,
    policy_document,
    settings_of,
    statements,
)
from mlplatform.policies.model import Resource, RuleContext, is_unknown, stack_rule

POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LAKE_ZONE_TAG = "mlplatform.io/lake-zone"
SOURCE_KEYS = ("aws:sourcevpce", "aws:sourcevpc")
OBJECT_READS = ("s3:getobject", "s3:getobject*", "s3:get*", "s3:*", "*")


def _perimeter(statement: Mapping[str, Any]) -> bool:
    """A Deny of object reads unless the request came through the VPC's endpoint (or from the VPC)."""
    condition = statement.get("Condition")
    if statement.get("Effect") != "Deny" or not isinstance(condition, Mapping):
        return False
    if not any(a.lower() in OBJECT_READS for a in actions_of(statement)):
        return False
    for operator, keys in condition.items():
        negated = str(operator).startswith("StringNotEquals") and isinstance(keys, Mapping)
        if negated and any(str(k).lower() in SOURCE_KEYS for k in keys):
            return True
    return False


@stack_rule(
    id="aws-s3-bucket-lake-vpc-endpoint-only",
    severity="high",
    types=[BUCKET, POLICY],
    description="Buckets of the data lake (tagged mlplatform.io/lake-zone) have a bucket policy that denies object "
    "reads coming neither through the VPC's S3 gateway endpoint (aws:SourceVpce) nor from the VPC "
    "(aws:SourceVpc): credentials that leave the cluster (a Pod Identity session's keys, a presigned URL) are "
    "useless outside it.",
    remediation="Keep data_lake.perimeter.enabled (infra/data/documents.py perimeter_statement): a Deny of object "
    'actions with {"StringNotEquals": {"aws:SourceVpce": "<the S3 gateway endpoint>"}}, excepting only a '
    "documented break-glass role.",
    references=[
        "AWS data perimeters: network perimeter controls (aws:SourceVpce in resource-based policies)",
        "AWS Prescriptive Guidance: establishing a data perimeter on AWS",
        "IAM User Guide: aws:SourceVpce and aws:SourceVpc global condition keys",
    ],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, POLICY)
    for bucket in by_type(resources, BUCKET):
        if LAKE_ZONE_TAG not in bucket.tags:
            continue
        policies = [p.inputs.get("policy") for p in settings_of(index, bucket)]
        policies.append(bucket.inputs.get("policy"))
        if any(is_unknown(p) for p in policies):
            continue
        if not any(_perimeter(s) for p in policies if p for s in statements(policy_document(p))):
            zone = bucket.tags[LAKE_ZONE_TAG]
            yield (
                bucket,
                (
                    f"the {zone} lake bucket's policy does not deny object access from outside the VPC (no Deny with "
                    "StringNotEquals on aws:SourceVpce or aws:SourceVpc)"
                ),
            )


RULE = check
