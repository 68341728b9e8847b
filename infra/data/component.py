"""The S3 data lake: a KMS key, one bucket per zone with the full set of controls, and an access-log bucket.

Every lake bucket gets: SSE-KMS with the lake key and a bucket key, versioning, all four public-access-block
flags, BucketOwnerEnforced ownership, a TLS-only policy that also refuses other encryption and (with a perimeter)
object access from outside the VPC, lifecycle rules, and server access logging. With `protect`, buckets and the
key are protected and retained on delete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.data import documents
from mlplatform.infra.data.documents import ZoneSpec
from mlplatform.infra.iam_documents import account_only_key_policy

COMPONENT_TYPE = "mlplatform:data:DataLake"


@dataclass(frozen=True, kw_only=True)
class DataLakeArgs:
    name_prefix: str
    """Bucket name prefix, e.g. `mlp-prod` (AWS appends a unique suffix)."""
    zones: Sequence[ZoneSpec]
    protect: bool = True
    access_log_retention_days: int = 365
    perimeter_vpce_id: pulumi.Input[str] | None = None
    """The S3 gateway endpoint object requests must come through (`documents.LakePerimeter`)."""
    perimeter_vpc_id: pulumi.Input[str] | None = None
    """Or, when the endpoint is not known, the VPC they must come from. Neither: no perimeter."""
    break_glass_role_arns: Sequence[str] = ()
    """Roles exempt from the perimeter."""
    open_prefixes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Per zone, object key prefixes left outside the perimeter (the runner's source bundles)."""
    tags: Mapping[str, str] = field(default_factory=dict)


class DataLake(pulumi.ComponentResource):
    key_arn: pulumi.Output[str]
    """The lake's KMS key (SSE-KMS of every lake bucket)."""
    bucket_names: dict[str, pulumi.Output[str]]
    """Bucket name per zone."""
    bucket_arns: dict[str, pulumi.Output[str]]
    """Bucket ARN per zone."""
    access_log_bucket_name: pulumi.Output[str]

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        # Data outlives the stack when protected: `pulumi destroy` stops, and removal from the program keeps it.
        self._data_opts = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        account = aws_account(self)
        self._partition, self._account_id = account.partition, account.account_id

        self._perimeter = self._perimeter_of(args)
        self._create_key()
        self._create_access_log_bucket()
        self.bucket_names = {}
        self.bucket_arns = {}
        for zone in args.zones:
            self._create_zone(zone)
        self._finish_access_log_bucket()
        self.register_outputs(
            {"key_arn": self.key_arn, "bucket_names": self.bucket_names, "bucket_arns": self.bucket_arns}
        )

    @staticmethod
    def _perimeter_of(args: DataLakeArgs) -> pulumi.Output[documents.LakePerimeter | None]:
        if args.perimeter_vpce_id is None and args.perimeter_vpc_id is None:
            return pulumi.Output.from_input(None)
        roles = tuple(args.break_glass_role_arns)
        if args.perimeter_vpce_id is not None:
            return pulumi.Output.from_input(args.perimeter_vpce_id).apply(
                lambda vpce: documents.LakePerimeter(source_vpce=vpce, break_glass_role_arns=roles)
            )
        return pulumi.Output.from_input(args.perimeter_vpc_id).apply(
            lambda vpc: documents.LakePerimeter(source_vpc=vpc, break_glass_role_arns=roles)
        )

    def _create_key(self) -> None:
        name, args = self._name, self._args
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.name_prefix}: data lake encryption",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(self._partition, self._account_id).apply(
                lambda v: account_only_key_policy(v[0], v[1])
            ),
            tags=dict(args.tags),
            opts=self._data_opts,
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{args.name_prefix}-lake", target_key_id=self.key.key_id, opts=self._child
        )
        self.key_arn = self.key.arn

    def _secure_bucket(self, key: str, bucket: aws.s3.Bucket, sse: dict[str, Any]) -> aws.s3.BucketPublicAccessBlock:
        """The controls every bucket of the lake gets, the access-log bucket included."""
        name = self._name
        aws.s3.BucketOwnershipControls(
            f"{name}-{key}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs disabled
            opts=self._child,
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-{key}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child,
        )
        aws.s3.BucketVersioning(
            f"{name}-{key}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=self._data_opts,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-{key}-encryption",
            bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(**sse)],
            opts=self._child,
        )
        return block

    def _create_access_log_bucket(self) -> None:
        name, args = self._name, self._args
        self.log_bucket = aws.s3.Bucket(
            f"{name}-access-logs",
            bucket_prefix=f"{args.name_prefix}-access-logs-",
            force_destroy=False,
            tags={**args.tags, "mlplatform.io/purpose": "s3-access-logs"},
            opts=self._data_opts,
        )
        # S3 server access logging cannot deliver to a bucket whose default encryption is SSE-KMS: SSE-S3 here.
        self._log_block = self._secure_bucket(
            "access-logs",
            self.log_bucket,
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "blocked_encryption_types": ["SSE-C"],
            },
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-lifecycle",
            bucket=self.log_bucket.id,
            rules=[_lifecycle_rule(r) for r in documents.access_log_lifecycle_rules(args.access_log_retention_days)],
            opts=self._child,
        )
        self.access_log_bucket_name = self.log_bucket.bucket

    def _create_zone(self, zone: ZoneSpec) -> None:
        name, args = self._name, self._args
        bucket = aws.s3.Bucket(
            f"{name}-{zone.name}",
            bucket_prefix=f"{args.name_prefix}-{zone.name}-",
            force_destroy=False,
            tags={
                **args.tags,
                "mlplatform.io/lake-zone": zone.name,
                **({"mlplatform.io/expected-size-gb": f"{zone.expected_size_gb:g}"} if zone.expected_size_gb else {}),
            },
            opts=self._data_opts,
        )
        block = self._secure_bucket(
            zone.name,
            bucket,
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": self.key.arn,
                },
                "bucket_key_enabled": True,  # one KMS call per bucket key instead of per object
                "blocked_encryption_types": ["SSE-C"],
            },
        )
        aws.s3.BucketPolicy(
            f"{name}-{zone.name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, self.key.arn, self._perimeter).apply(
                lambda v: documents.lake_bucket_policy(
                    v[0], v[1], v[2], open_prefixes=tuple(args.open_prefixes.get(zone.name, ()))
                )
            ),
            # S3 rejects policy changes that race the public access block on a new bucket.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-{zone.name}-lifecycle",
            bucket=bucket.id,
            rules=[_lifecycle_rule(r) for r in documents.lifecycle_rules(zone)],
            opts=self._child,
        )
        aws.s3.BucketLogging(
            f"{name}-{zone.name}-access-logging",
            bucket=bucket.id,
            target_bucket=self.log_bucket.id,
            target_prefix=f"{zone.name}/",
            opts=self._child,
        )
        self.bucket_names[zone.name] = bucket.bucket
        self.bucket_arns[zone.name] = bucket.arn

    def _finish_access_log_bucket(self) -> None:
        name = self._name
        aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=self.log_bucket.id,
            policy=pulumi.Output.all(
                self.log_bucket.arn, self._account_id, self._perimeter, *self.bucket_arns.values()
            ).apply(lambda v: documents.access_log_bucket_policy(v[0], v[3:], v[1], v[2])),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._log_block]),
        )


def _lifecycle_rule(rule: dict[str, Any]) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=rule["id"],
        status=rule["status"],
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(**rule["filter"]),
        abort_incomplete_multipart_upload=(
            aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                **rule["abort_incomplete_multipart_upload"]
            )
            if "abort_incomplete_multipart_upload" in rule
            else None
        ),
        noncurrent_version_expiration=(
            aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                **rule["noncurrent_version_expiration"]
            )
            if "noncurrent_version_expiration" in rule
            else None
        ),
        expiration=(
            aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(**rule["expiration"])
            if "expiration" in rule
            else None
        ),
        transitions=[aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(**t) for t in rule.get("transitions", [])]
        or None,
    )
