"""Pure builders for the data lake: bucket and key policies, lifecycle rules. No resources, no I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ABORT_MULTIPART_AFTER_DAYS = 7


@dataclass(frozen=True, kw_only=True)
class ZoneSpec:
    name: str
    transition_to_ia_days: int | None = None
    transition_to_glacier_ir_days: int | None = None
    noncurrent_version_expiration_days: int = 90
    expected_size_gb: float = 0.0
    """For the cost estimate only (carried as a tag, so that plans and cost reports agree)."""


def _deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


SSE_HEADER = "s3:x-amz-server-side-encryption"
SSE_KEY_HEADER = "s3:x-amz-server-side-encryption-aws-kms-key-id"


def lake_bucket_policy(bucket_arn: str, key_arn: str) -> str:
    """TLS only; uploads may not ask for another encryption than SSE-KMS with the lake key.

    Uploads that name no encryption get the bucket default (SSE-KMS with the lake key; SSE-C is blocked by the
    bucket's encryption configuration), so each deny applies only when the upload sends the header it checks
    (`Null: false`): a header asking for SSE-S3 or DSSE, a key other than the lake key, or SSE-KMS without naming
    a key (S3 would then use the AWS managed key aws/s3). A negated operator on an absent key is true, with or
    without IfExists (IAM User Guide, condition operators), so `StringNotEqualsIfExists` alone would deny every
    upload relying on the default, and every UploadPart of a multipart upload, which carries no such header.
    """

    def deny(sid: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": condition,
        }

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _deny_insecure_transport(bucket_arn),
                deny(
                    "DenyUploadsNotEncryptedWithKms",
                    {"StringNotEquals": {SSE_HEADER: "aws:kms"}, "Null": {SSE_HEADER: "false"}},
                ),
                deny(
                    "DenyUploadsWithAnotherKey",
                    {"StringNotEquals": {SSE_KEY_HEADER: key_arn}, "Null": {SSE_KEY_HEADER: "false"}},
                ),
                deny(
                    "DenyUploadsWithTheAwsManagedKey",
                    {"StringEquals": {SSE_HEADER: "aws:kms"}, "Null": {SSE_KEY_HEADER: "true"}},
                ),
            ],
        },
        sort_keys=True,
    )


def access_log_bucket_policy(log_bucket_arn: str, source_bucket_arns: Sequence[str], account_id: str) -> str:
    """S3 server access logging of this account's lake buckets may write here; TLS only.

    With BucketOwnerEnforced ownership, log delivery is granted by bucket policy, not by ACL.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _deny_insecure_transport(log_bucket_arn),
                {
                    "Sid": "S3ServerAccessLogsDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{log_bucket_arn}/*",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {"aws:SourceArn": sorted(source_bucket_arns)},
                    },
                },
            ],
        },
        sort_keys=True,
    )


def lifecycle_rules(zone: ZoneSpec) -> list[dict[str, Any]]:
    """Abort incomplete multipart uploads, expire old versions, and tier cold zones."""
    rules: list[dict[str, Any]] = [
        {
            "id": "abort-incomplete-multipart-uploads",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_AFTER_DAYS},
        },
        {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": {"noncurrent_days": zone.noncurrent_version_expiration_days},
        },
    ]
    transitions = []
    if zone.transition_to_ia_days is not None:
        transitions.append({"days": zone.transition_to_ia_days, "storage_class": "STANDARD_IA"})
    if zone.transition_to_glacier_ir_days is not None:
        transitions.append({"days": zone.transition_to_glacier_ir_days, "storage_class": "GLACIER_IR"})
    if transitions:
        rules.append(
            {"id": "tier-cold-objects", "status": "Enabled", "filter": {"prefix": ""}, "transitions": transitions}
        )
    return rules


def access_log_lifecycle_rules(retention_days: int) -> list[dict[str, Any]]:
    return [
        {
            "id": "expire-access-logs",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "expiration": {"days": retention_days},
            "noncurrent_version_expiration": {"noncurrent_days": 1},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_AFTER_DAYS},
        }
    ]
