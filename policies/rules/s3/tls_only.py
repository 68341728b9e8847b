"""Bucket policies refuse requests without TLS."""

from collections.abc import Iterator, Mapping, Sequence

from mlplatform.policies.helpers import BUCKET, as_list, bucket_index, by_type, policy_document, settings_of, statements
from mlplatform.policies.model import Resource, RuleContext, is_unknown, stack_rule

POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def _denies_plain_http(document: Mapping[str, object] | None) -> bool:
    for statement in statements(document):
        condition = statement.get("Condition")
        if statement.get("Effect") != "Deny" or not isinstance(condition, Mapping):
            continue
        secure = condition.get("Bool", {})
        if (
            isinstance(secure, Mapping)
            and str(secure.get("aws:SecureTransport")).lower() == "false"
            and any(str(a).lower() in ("s3:*", "*") for a in as_list(statement.get("Action")))
        ):
            return True
    return False


@stack_rule(
    id="aws-s3-bucket-tls-only",
    severity="medium",
    types=[BUCKET, POLICY],
    description="S3 bucket policies deny every request made without TLS (aws:SecureTransport false).",
    remediation='Add a Deny statement for "s3:*" on the bucket and its objects with Condition '
    '{"Bool": {"aws:SecureTransport": "false"}}.',
    references=["AWS Config s3-bucket-ssl-requests-only", "AWS Security Hub S3.5", "checkov CKV_AWS_379 (partial)"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    index = bucket_index(resources, POLICY)
    for bucket in by_type(resources, BUCKET):
        policies = [p.inputs.get("policy") for p in settings_of(index, bucket)]
        policies.append(bucket.inputs.get("policy"))
        if any(is_unknown(p) for p in policies):
            continue
        if not any(_denies_plain_http(policy_document(p)) for p in policies if p):
            yield bucket, "the bucket policy does not deny requests without TLS"


RULE = check
