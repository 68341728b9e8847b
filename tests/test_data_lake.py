"""The data lake in every shipped stack: the five controls on every bucket, lifecycle, logging, protection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlplatform.infra.data.documents import ZoneSpec, lifecycle_rules
from mlplatform.mlp.planner import Plan, PlannedResource
from tests.conftest import STACKS


def _zones(stack_config: Any, stack: str) -> list[str]:
    configured = stack_config(stack).get("ml-platform:data_lake", {}).get("zones")
    return list(configured) if configured else ["raw", "curated", "features", "models", "artifacts"]


def _by_bucket(plan: Plan, bucket: str, suffix: str) -> PlannedResource:
    return plan.get(f"lake-{bucket}-{suffix}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_lake_bucket_has_the_five_controls(plans: dict[str, Plan], stack_config: Any, stack: str) -> None:
    plan = plans[stack]
    zones = _zones(stack_config, stack)
    buckets = {r.name for r in plan.of_type("aws:s3/bucket:Bucket")}
    assert buckets == {f"lake-{z}" for z in zones} | {"lake-access-logs"}
    key = plan.get("lake-key")
    assert key.inputs["enableKeyRotation"] is True
    for statement in json.loads(key.inputs["policy"])["Statement"]:
        assert statement["Principal"] != "*" and statement["Principal"].get("AWS") != "*"
    for zone in zones:
        bucket = plan.get(f"lake-{zone}")
        assert bucket.inputs["bucketPrefix"].startswith(f"mlp-{stack}-{zone}-")
        assert bucket.inputs.get("forceDestroy") is False
        (rule,) = _by_bucket(plan, zone, "encryption").inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith("arn:aws:kms:")
        assert rule["bucketKeyEnabled"] is True
        assert _by_bucket(plan, zone, "versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
        block = _by_bucket(plan, zone, "public-access-block").inputs
        assert all(
            block[k] is True
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        assert _by_bucket(plan, zone, "ownership").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
        statements = {s["Sid"]: s for s in json.loads(_by_bucket(plan, zone, "policy").inputs["policy"])["Statement"]}
        assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        # each deny applies only when the upload sends the header it checks (uploads relying on the bucket's
        # default encryption, and multipart parts, send none); tests/test_iam_eval.py evaluates them
        sse, key_id = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
        lake_key = _by_bucket(plan, zone, "encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        assert {sid: s["Condition"] for sid, s in statements.items() if sid.startswith("DenyUploads")} == {
            "DenyUploadsNotEncryptedWithKms": {"StringNotEquals": {sse: "aws:kms"}, "Null": {sse: "false"}},
            "DenyUploadsWithAnotherKey": {
                "StringNotEquals": {key_id: lake_key["kmsMasterKeyId"]},
                "Null": {key_id: "false"},
            },
            "DenyUploadsWithTheAwsManagedKey": {"StringEquals": {sse: "aws:kms"}, "Null": {key_id: "true"}},
        }
        logging = _by_bucket(plan, zone, "access-logging").inputs
        assert logging["targetPrefix"] == f"{zone}/"
        assert logging["targetBucket"].startswith(f"mlp-{stack}-access-logs-")


@pytest.mark.parametrize("stack", STACKS)
def test_lifecycle_aborts_uploads_expires_versions_and_tiers(
    plans: dict[str, Plan], stack_config: Any, stack: str
) -> None:
    plan = plans[stack]
    configured = stack_config(stack).get("ml-platform:data_lake", {}).get("zones") or {}
    for zone in _zones(stack_config, stack):
        rules = {r["id"]: r for r in _by_bucket(plan, zone, "lifecycle").inputs["rules"]}
        assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": 7
        }
        expected_days = configured.get(zone, {}).get("noncurrent_version_expiration_days", 90)
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == expected_days
        ia = configured.get(zone, {}).get("transition_to_ia_days")
        if ia:
            assert {"days": ia, "storageClass": "STANDARD_IA"} in rules["tier-cold-objects"]["transitions"]


def test_access_log_bucket_accepts_only_s3_log_delivery_from_the_lake(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    (rule,) = plan.get("lake-access-logs-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"  # log delivery needs SSE-S3
    statements = {s["Sid"]: s for s in json.loads(plan.get("lake-access-logs-policy").inputs["policy"])["Statement"]}
    delivery = statements["S3ServerAccessLogsDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": "444455556666"}
    assert len(delivery["Condition"]["ArnLike"]["aws:SourceArn"]) == 5
    (expire,) = plan.get("lake-access-logs-lifecycle").inputs["rules"]
    assert expire["expiration"] == {"days": 730}


def test_prod_data_is_protected_and_retained_dev_is_not(plans: dict[str, Plan]) -> None:
    for name in ("lake-key", "lake-raw", "lake-models", "lake-access-logs", "lake-raw-versioning"):
        options = plans["prod"].get(name).options
        assert options["protect"] is True and options["retainOnDelete"] is True, name
        assert plans["dev"].get(name).options["protect"] is False
    assert plans["staging"].get("lake-raw").options["protect"] is True


def test_lifecycle_rules_builder_without_tiering() -> None:
    rules = lifecycle_rules(ZoneSpec(name="features", noncurrent_version_expiration_days=30))
    assert [r["id"] for r in rules] == ["abort-incomplete-multipart-uploads", "expire-noncurrent-versions"]
