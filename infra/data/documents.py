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

PERIMETER_SID = "DenyObjectAccessFromOutsideTheVpc"
OBJECT_DATA_ACTIONS = (
    "s3:GetObject*",
    "s3:PutObject*",
    "s3:DeleteObject*",
    "s3:RestoreObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
)
"""What the perimeter refuses from outside: reading, writing and deleting objects (and their versions, tags, ACLs,
retention), multipart uploads, and listings of versions and uploads. Not bucket configuration (GetBucket*,
PutBucket*, PutLifecycleConfiguration, ...): the deployer's `pulumi up`, `refresh` and `destroy` make those calls
from wherever it runs, and a perimeter on them would lock the deployer out of the bucket's own policy. Not
s3:ListBucket either: HeadBucket is authorized as s3:ListBucket (S3 API reference) and the AWS provider calls it on
every read of a bucket, and no condition key tells it from a listing; so a principal whose IAM policy allows the
listing can list key names from outside, never read what they hold."""


@dataclass(frozen=True, kw_only=True)
class LakePerimeter:
    """Where object requests to the lake may come from: through the VPC's S3 gateway endpoint (`source_vpce`), or,
    when the endpoint is not known (an adopted VPC whose config does not name it), through any endpoint of the VPC
    (`source_vpc`). Exactly one is set."""

    source_vpce: str | None = None
    source_vpc: str | None = None
    break_glass_role_arns: Sequence[str] = ()
    """Roles allowed from anywhere (the documented break-glass role)."""

    def __post_init__(self) -> None:
        if (self.source_vpce is None) == (self.source_vpc is None):
            raise ValueError("a lake perimeter keys on the S3 gateway endpoint or on the VPC: give exactly one")


def perimeter_statement(
    bucket_arn: str, perimeter: LakePerimeter, *, open_prefixes: Sequence[str] = ()
) -> dict[str, Any]:
    """Deny object access that comes neither through the VPC (its S3 gateway endpoint) nor from an AWS service
    principal (S3 server access logging) nor from a break-glass role.

    `aws:SourceVpce` / `aws:SourceVpc` are in the request context only when the request comes through a VPC
    endpoint (IAM User Guide, global condition keys); a negated operator on an absent key is true, so a request
    from anywhere else is denied, valid credentials or not (a Pod Identity session's keys used from a laptop, a
    presigned URL opened outside the VPC). `aws:PrincipalIsAWSService` is in every signed request; `true` only for
    a service principal, which needs its own Allow in the bucket policy anyway (only the access-log bucket grants
    one: to logging.s3.amazonaws.com, for this account's buckets). Requests that a service makes with a caller's
    credentials (`aws:ViaAWSService`: Athena, Glue) are not excepted: nothing of the platform uses them, and
    they come from outside the VPC. `open_prefixes`: object key prefixes left outside the perimeter (the runner's
    source bundles, uploaded by `mlp runner` from wherever it runs)."""
    condition: dict[str, Any] = {
        "StringNotEquals": (
            {"aws:SourceVpce": perimeter.source_vpce}
            if perimeter.source_vpce is not None
            else {"aws:SourceVpc": perimeter.source_vpc}
        ),
        "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
    }
    if perimeter.break_glass_role_arns:
        condition["ArnNotEquals"] = {"aws:PrincipalArn": sorted(perimeter.break_glass_role_arns)}
    statement: dict[str, Any] = {
        "Sid": PERIMETER_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(OBJECT_DATA_ACTIONS),
        "Condition": condition,
    }
    if open_prefixes:
        # Every resource of this bucket but the open prefixes (a bucket policy decides only its own bucket).
        statement["NotResource"] = [f"{bucket_arn}/{p}*" for p in sorted(open_prefixes)]
    else:
        statement["Resource"] = [bucket_arn, f"{bucket_arn}/*"]
    return statement


def lake_bucket_policy(
    bucket_arn: str,
    key_arn: str,
    perimeter: LakePerimeter | None = None,
    *,
    open_prefixes: Sequence[str] = (),
) -> str:
    """TLS only; uploads may not ask for another encryption than SSE-KMS with the lake key.

    Uploads that name no encryption get the bucket default (SSE-KMS with the lake key; SSE-C is blocked by the
    bucket's encryption configuration), so each deny applies only when the upload sends the header it checks
    (`Null: false`): a header asking for SSE-S3 or DSSE, a key other than the lake key, or SSE-KMS without naming
    a key (S3 would then use the AWS managed key aws/s3). A negated operator on an absent key is true, with or
    without IfExists (IAM User Guide, condition operators), so `StringNotEqualsIfExists` alone would deny every
    upload relying on the default, and every UploadPart of a multipart upload, which carries no such header.

    With a `perimeter`, object access from outside the VPC is denied as well (`perimeter_statement`).
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
                *([perimeter_statement(bucket_arn, perimeter, open_prefixes=open_prefixes)] if perimeter else []),
            ],
        },
        sort_keys=True,
    )


def access_log_bucket_policy(
    log_bucket_arn: str,
    source_bucket_arns: Sequence[str],
    account_id: str,
    perimeter: LakePerimeter | None = None,
) -> str:
    """S3 server access logging of this account's lake buckets may write here; TLS only; with a `perimeter`, no
    object access from outside the VPC except the log delivery itself (a service principal).

    With BucketOwnerEnforced ownership, log delivery is granted by bucket policy, not by ACL.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _deny_insecure_transport(log_bucket_arn),
                *([perimeter_statement(log_bucket_arn, perimeter)] if perimeter else []),
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
