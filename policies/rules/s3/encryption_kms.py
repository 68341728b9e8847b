"""Buckets are encrypted with SSE-KMS by default (access-log buckets may use SSE-S3, as S3 logging requires)."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlplatform.policies.helpers import BUCKET, as_list, bucket_index, by_type, is_access_log_bucket, settings_of
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, stack_rule

SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def _algorithms(rules: Any) -> list[str]:
    found = []
    for rule in as_list(rules):
        if isinstance(rule, Mapping):
            default = rule.get("applyServerSideEncryptionByDefault")
            if isinstance(default, Mapping) and default.get("sseAlgorithm"):
                found.append(str(default["sseAlgorithm"]))
    return found


@stack_rule(
    id="aws-s3-bucket-encryption-kms",
    severity="high",
    types=[BUCKET, SSE],
    description="S3 buckets encrypt new objects with SSE-KMS (a customer-managed key) by default.",
    remediation='Add a BucketServerSideEncryptionConfiguration with sseAlgorithm "aws:kms", kmsMasterKeyId and '
    "bucketKeyEnabled.",
    references=["checkov CKV_AWS_145", "trivy AVD-AWS-0088", "trivy AVD-AWS-0132"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, SSE)
    for bucket in by_type(resources, BUCKET):
        inline = bucket.inputs.get("serverSideEncryptionConfiguration")
        configs = [c.inputs.get("rules") for c in settings_of(index, bucket)]
        if isinstance(inline, Mapping):
            configs.append(inline.get("rule"))
        if any(contains_unknown(c) for c in configs):
            continue
        algorithms = [a for c in configs for a in _algorithms(c)]
        if any(a.startswith("aws:kms") for a in algorithms):
            continue
        if is_access_log_bucket(bucket) and "AES256" in algorithms:
            continue  # S3 server access logging cannot deliver to an SSE-KMS bucket
        if algorithms:
            yield bucket, f"the bucket is encrypted with {', '.join(algorithms)}, not SSE-KMS"
        else:
            yield bucket, "the bucket has no default encryption configuration"


RULE = check
