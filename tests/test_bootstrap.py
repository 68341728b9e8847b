"""`mlp bootstrap-backend` against a moto server: a fresh account gets a bucket and key with every setting (read
back from S3 and KMS), a second run has nothing to do and changes nothing, an existing bucket converges without
losing objects, policy statements, lifecycle rules or tags; wrong names, other accounts' buckets, other regions and
unusable keys are clear errors. A 403 from HeadBucket, AccessDenied and rejected credentials are simulated with
botocore's Stubber (moto accepts any credentials and answers HeadBucket for any account's bucket)."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from rich.console import Console

from mlplatform.mlp.aws import AwsContext
from mlplatform.mlp.bootstrap import (
    TARGETS,
    BootstrapPlan,
    alias_for,
    apply_bootstrap,
    login_lines,
    plan_bootstrap,
    render_table,
    to_json,
    validate_bucket_name,
)
from mlplatform.mlp.errors import AccountError
from tests.aws_server import REJECTED_CREDENTIALS_MESSAGE, rejected_credentials

REGION = "us-east-1"
ACCOUNT = "123456789012"
NAME = "acme-pulumi-state"
ALIAS = "alias/acme-pulumi-state-secrets"
KEY = ".pulumi/stacks/ml-platform/dev.json"
COST = {
    "cost-center": "ml-research",
    "team": "ml-platform",
    "environment": "shared",
    "project": "ml-platform",
    "owner": "ml-platform@example.com",
}
BACKEND = {"managed-by": "mlp/bootstrap-backend", "purpose": "pulumi-state"}


def _actions(plan_or_result: Any) -> dict[str, str]:
    return {step.target: step.action for step in plan_or_result.steps}


def test_fresh_account_gets_the_bucket_and_key_with_every_setting(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    plan = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    assert [step.target for step in plan.steps] == list(TARGETS)
    assert set(_actions(plan).values()) == {"create"}
    assert plan.key_arn is None
    assert plan.alias == ALIAS

    result = apply_bootstrap(ctx, plan)

    assert _actions(result) == dict.fromkeys(TARGETS, "created")
    assert result.changed
    s3, kms = ctx.client("s3"), ctx.client("kms")
    key = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
    assert key["Arn"] == result.key_arn
    assert key["Arn"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT" and key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert key["Description"] == f"Pulumi secrets of the state backend s3://{NAME} (mlp bootstrap-backend)"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert [(a["AliasName"], a["TargetKeyId"]) for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]] == [
        (ALIAS, key["KeyId"])
    ]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
    assert tags == {**COST, **BACKEND}
    key_policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert key_policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}

    assert s3.get_bucket_versioning(Bucket=NAME)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=NAME)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_public_access_block(Bucket=NAME)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_ownership_controls(Bucket=NAME)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    policy = json.loads(s3.get_bucket_policy(Bucket=NAME)["Policy"])
    assert policy["Statement"] == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{NAME}", f"arn:aws:s3:::{NAME}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=NAME)["Rules"]
    assert [
        (r["ID"], r["Status"], r["NoncurrentVersionExpiration"], r["AbortIncompleteMultipartUpload"]) for r in rules
    ] == [("mlp-state-noncurrent-versions", "Enabled", {"NoncurrentDays": 90}, {"DaysAfterInitiation": 7})]
    assert s3.get_bucket_tagging(Bucket=NAME)["TagSet"] == [
        {"Key": k, "Value": v} for k, v in sorted({**COST, **BACKEND}.items())
    ]
    assert result.login == (
        f"pulumi login 's3://{NAME}?region={REGION}&awssdk=v2'",
        f"pulumi stack init <stack> --secrets-provider 'awskms://{ALIAS}?region={REGION}'",
    )


def test_second_run_has_nothing_to_do_and_changes_nothing(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    first = apply_bootstrap(ctx, plan_bootstrap(ctx, NAME, REGION, cost_tags=COST))

    again = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    assert again.up_to_date
    assert again.changes == ()
    assert _actions(again) == dict.fromkeys(TARGETS, "none")
    assert again.key_arn == first.key_arn

    second = apply_bootstrap(ctx, again)
    assert not second.changed
    assert _actions(second) == dict.fromkeys(TARGETS, "unchanged")
    assert second.key_arn == first.key_arn
    kms = ctx.client("kms")
    assert [k["KeyArn"] for k in kms.list_keys()["Keys"]] == [first.key_arn]
    assert [a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == ALIAS] == [ALIAS]


@pytest.mark.parametrize("versioning", [None, "Suspended"])
def test_an_existing_bucket_converges_and_keeps_its_objects_and_settings(
    moto_endpoint: str, versioning: str | None
) -> None:
    ctx = AwsContext(REGION)
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=NAME)
    if versioning:
        s3.put_bucket_versioning(Bucket=NAME, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_versioning(Bucket=NAME, VersioningConfiguration={"Status": versioning})
    s3.put_object(Bucket=NAME, Key=KEY, Body=b'{"version": 3}')
    other_statement = {
        "Sid": "AllowCi",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{NAME}/*",
    }
    s3.put_bucket_policy(Bucket=NAME, Policy=json.dumps({"Version": "2012-10-17", "Statement": [other_statement]}))
    other_rule = {"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=NAME, LifecycleConfiguration={"Rules": [other_rule]})
    s3.put_bucket_tagging(Bucket=NAME, Tagging={"TagSet": [{"Key": "team", "Value": "platform"}]})

    plan = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    actions = _actions(plan)
    assert actions["bucket"] == "none"
    assert actions["bucket-versioning"] == "update"
    assert {actions[t] for t in ("bucket-policy", "bucket-lifecycle", "bucket-tags")} == {"update"}
    steps = {step.target: step.detail for step in plan.steps}
    assert steps["bucket-versioning"] == f"{versioning or 'never enabled'} -> Enabled"
    assert steps["bucket-policy"] == "DenyInsecureTransport: deny requests without TLS (its 1 other statement(s) kept)"

    apply_bootstrap(ctx, plan)

    assert s3.get_bucket_versioning(Bucket=NAME)["Status"] == "Enabled"
    statements = json.loads(s3.get_bucket_policy(Bucket=NAME)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["AllowCi", "DenyInsecureTransport"]
    assert statements[0] == other_statement
    rules = s3.get_bucket_lifecycle_configuration(Bucket=NAME)["Rules"]
    assert sorted(r["ID"] for r in rules) == ["expire-tmp", "mlp-state-noncurrent-versions"]
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=NAME)["TagSet"]}
    assert tags == {**COST, **BACKEND, "team": "platform"}  # its own team value is kept
    assert plan_bootstrap(ctx, NAME, REGION, cost_tags=COST).up_to_date

    # moto enforces the policy on object calls, and its endpoint is plain HTTP: the TLS statement is in force.
    with pytest.raises(ClientError, match="Forbidden"):
        s3.get_object(Bucket=NAME, Key=KEY)
    s3.delete_bucket_policy(Bucket=NAME)  # only to read the object back here
    assert s3.get_object(Bucket=NAME, Key=KEY)["Body"].read() == b'{"version": 3}'
    assert [v["Key"] for v in s3.list_object_versions(Bucket=NAME)["Versions"]] == [KEY]


def test_an_existing_key_converges_without_a_second_key(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    kms = ctx.client("kms")
    key_id = kms.create_key(Description="made by hand")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)

    plan = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    assert {t: a for t, a in _actions(plan).items() if t.startswith("kms")} == {
        "kms-key": "none",
        "kms-alias": "none",
        "kms-key-rotation": "update",
        "kms-key-tags": "update",
    }
    result = apply_bootstrap(ctx, plan)

    assert result.key_arn.endswith(key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "made by hand"
    assert len(kms.list_keys()["Keys"]) == 1
    sse = ctx.client("s3").get_bucket_encryption(Bucket=NAME)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == result.key_arn


def test_noncurrent_days_are_configurable(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    apply_bootstrap(ctx, plan_bootstrap(ctx, NAME, REGION, noncurrent_days=30, cost_tags=COST))
    rule = ctx.client("s3").get_bucket_lifecycle_configuration(Bucket=NAME)["Rules"][0]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    # Asking for the default later is a change of that one rule.
    assert [s.target for s in plan_bootstrap(ctx, NAME, REGION, cost_tags=COST).changes] == ["bucket-lifecycle"]
    with pytest.raises(ValueError, match=re.escape("noncurrent version retention of 0 days: use 1 to 36500 days")):
        plan_bootstrap(ctx, NAME, REGION, noncurrent_days=0, cost_tags=COST)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ab", "bucket name 'ab' is 2 characters long: S3 bucket names are 3 to 63 characters"),
        ("a" * 64, f"bucket name '{'a' * 64}' is 64 characters long"),
        ("Acme-State", "bucket name 'Acme-State' contains 'AS': S3 bucket names are 3 to 63 characters of lowercase"),
        ("acme_state", "bucket name 'acme_state' contains '_'"),
        ("-acme-state", "bucket name '-acme-state' must begin and end with a lowercase letter or a digit"),
        ("acme-state.", "bucket name 'acme-state.' must begin and end with a lowercase letter or a digit"),
        ("acme..state", "bucket name 'acme..state' must not contain two adjacent dots"),
        ("192.168.5.4", "bucket name '192.168.5.4' must not be formatted as an IP address"),
        ("xn--acme", "bucket name 'xn--acme' must not begin with 'xn--' (reserved by S3)"),
        ("acme-s3alias", "bucket name 'acme-s3alias' must not end with '-s3alias' (reserved by S3)"),
    ],
)
def test_bad_bucket_names_are_rejected(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_bucket_name(name)
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_bootstrap(AwsContext(REGION), name, REGION, cost_tags=COST)  # before any AWS call: no server here


@pytest.mark.parametrize("name", ["abc", "acme-pulumi-state", "state.example.com", "a" * 63, "1-2-3"])
def test_good_bucket_names_pass(name: str) -> None:
    validate_bucket_name(name)


def test_login_lines_are_exact() -> None:
    assert login_lines("acme-state", "eu-west-1", "alias/acme-state-secrets") == [
        "pulumi login 's3://acme-state?region=eu-west-1&awssdk=v2'",
        "pulumi stack init <stack> --secrets-provider 'awskms://alias/acme-state-secrets?region=eu-west-1'",
    ]
    assert alias_for("state.example.com") == "alias/state-example-com-secrets"


def test_a_bucket_of_another_account_is_a_clear_error(moto_endpoint: str) -> None:
    sts = boto3.client("sts", region_name=REGION)
    creds = sts.assume_role(RoleArn="arn:aws:iam::111111111111:role/other", RoleSessionName="other")["Credentials"]
    other = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    other.create_bucket(Bucket=NAME)

    with pytest.raises(AccountError) as raised:
        plan_bootstrap(AwsContext(REGION), NAME, REGION, cost_tags=COST)
    assert str(raised.value) == (
        f"the S3 bucket {NAME} exists and is not owned by this account: bucket names are global; choose another name"
    )


def test_head_bucket_forbidden_means_another_accounts_bucket(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    s3 = boto3.client("s3", region_name=REGION)
    ctx._clients["s3"] = s3  # the stub answers S3; KMS and STS go to moto
    with Stubber(s3) as stub:
        stub.add_response("list_buckets", {"Buckets": []})
        stub.add_client_error(
            "head_bucket", service_error_code="403", service_message="Forbidden", http_status_code=403
        )
        with pytest.raises(
            AccountError, match=re.escape(f"the S3 bucket {NAME} exists and is not owned by this account")
        ):
            plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
        stub.assert_no_pending_responses()


def test_a_bucket_in_another_region_is_a_clear_error(moto_endpoint: str) -> None:
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=NAME, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    with pytest.raises(AccountError) as raised:
        plan_bootstrap(AwsContext(REGION), NAME, REGION, cost_tags=COST)
    assert str(raised.value) == f"the S3 bucket {NAME} is in region eu-west-1, not us-east-1: use --region eu-west-1"


def test_a_key_scheduled_for_deletion_is_not_used(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    kms = ctx.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(AccountError) as raised:
        plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    assert str(raised.value) == (
        f"the KMS key {key_id} behind {ALIAS} is scheduled for deletion: cancel it "
        f"(`aws kms cancel-key-deletion --key-id {key_id}`, then `aws kms enable-key --key-id {key_id}`) "
        "or choose another backend name"
    )
    assert ctx.client("s3").list_buckets()["Buckets"] == []


def test_access_denied_on_one_call_is_a_clear_error(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    with Stubber(ctx.client("kms")) as stub:
        stub.add_client_error(
            "describe_key",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: kms:DescribeKey",
            http_status_code=400,
        )
        with pytest.raises(AccountError) as raised:
            plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    assert str(raised.value) == (
        f"reading KMS alias {ALIAS}: permission denied for DescribeKey (AccessDeniedException); "
        "the caller needs that action allowed"
    )


def test_access_denied_while_applying_says_what_was_done(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    plan = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    kms = ctx.client("kms")
    real_rotation = kms.enable_key_rotation

    def denied(**_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "EnableKeyRotation")

    kms.enable_key_rotation = denied
    with pytest.raises(AccountError) as raised:
        apply_bootstrap(ctx, plan)
    message = str(raised.value)
    assert message.startswith("turning on rotation of KMS key arn:aws:kms:us-east-1:123456789012:key/")
    assert message.endswith(
        ": permission denied for EnableKeyRotation (AccessDeniedException); the caller needs that action allowed "
        "(applied before it: kms-key, kms-alias; run again once fixed)"
    )
    # The next run picks up the key made before the failure instead of making another.
    kms.enable_key_rotation = real_rotation
    result = apply_bootstrap(ctx, plan_bootstrap(ctx, NAME, REGION, cost_tags=COST))
    assert _actions(result)["kms-key"] == "unchanged"
    assert len(kms.list_keys()["Keys"]) == 1


def test_rejected_credentials_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    ctx = AwsContext(REGION)
    with rejected_credentials(ctx), pytest.raises(AccountError) as raised:
        plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    assert str(raised.value) == REJECTED_CREDENTIALS_MESSAGE


def test_a_region_other_than_the_sessions_is_rejected() -> None:
    with pytest.raises(
        ValueError, match=re.escape("region 'eu-west-1' differs from the AWS session's region 'us-east-1'")
    ):
        plan_bootstrap(AwsContext(REGION), NAME, "eu-west-1", cost_tags=COST)


def test_json_and_table(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    plan = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    body = to_json(plan)
    json.dumps(body)
    assert body["up_to_date"] is False
    assert body["steps"][0] == {
        "target": "kms-key",
        "action": "create",
        "detail": "a symmetric encryption key for Pulumi secrets",
    }
    console = Console(record=True, width=300)
    render_table(plan, console)
    assert "12 setting(s) to create or change" in console.export_text()

    result = apply_bootstrap(ctx, plan)
    body = to_json(result)
    assert body["changed"] is True
    assert body["login"] == login_lines(NAME, REGION, ALIAS)
    details = {s["target"]: s["detail"] for s in body["steps"]}
    assert details["kms-alias"] == f"{ALIAS} -> {result.key_arn}"
    assert (
        details["kms-key"]
        == f"{result.key_arn} (Pulumi secrets of the state backend s3://{NAME} (mlp bootstrap-backend))"
    )
    console = Console(record=True, width=300)
    render_table(result, console)
    text = console.export_text()
    assert f"pulumi login 's3://{NAME}?region={REGION}&awssdk=v2'" in text
    assert isinstance(plan_bootstrap(ctx, NAME, REGION, cost_tags=COST), BootstrapPlan)


MISSING = "the state bucket and its KMS key must carry the platform's required cost tags; no value for {} (pass "
MISSING += "--tag KEY=VALUE for each, or --stack STACK to use that stack's tags)"


@pytest.mark.parametrize(
    ("cost_tags", "message"),
    [
        ({k: v for k, v in COST.items() if k != "owner"}, MISSING.format("owner")),
        ({**COST, "owner": "  "}, MISSING.format("owner")),
        ({}, MISSING.format("cost-center, team, environment, project, owner")),
        (
            {**COST, "managed-by": "me"},
            "tag managed-by: is set by bootstrap-backend itself (managed-by=mlp/bootstrap-backend)",
        ),
        (
            {**COST, "team": "ml<platform>"},
            "tag team: tag value may contain only letters, digits, spaces and _ . : / = + - @",
        ),
    ],
)
def test_cost_tags_are_checked_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch, cost_tags: dict[str, str], message: str
) -> None:
    def no_aws(self: AwsContext, service: str) -> None:
        raise AssertionError(f"called {service}")

    monkeypatch.setattr(AwsContext, "client", no_aws)
    with pytest.raises(ValueError) as raised:
        plan_bootstrap(AwsContext(REGION), NAME, REGION, cost_tags=cost_tags)
    assert str(raised.value) == message


def test_an_existing_bucket_and_key_get_the_missing_tags_and_keep_the_others(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    s3, kms = ctx.client("s3"), ctx.client("kms")
    s3.create_bucket(Bucket=NAME)
    own = [("team", "data"), ("owner", ""), ("backup", "daily")]  # an empty value counts as missing
    s3.put_bucket_tagging(Bucket=NAME, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in own]})
    key_tags = [{"TagKey": "team", "TagValue": "data"}, {"TagKey": "purpose", "TagValue": "pulumi-state"}]
    key_id = kms.create_key(Tags=key_tags)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)

    plan = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    steps = {step.target: (step.action, step.detail) for step in plan.steps}
    assert steps["bucket-tags"] == (
        "update",
        "add cost-center=ml-research, environment=shared, managed-by=mlp/bootstrap-backend, "
        "owner=ml-platform@example.com, project=ml-platform, purpose=pulumi-state (its 2 other tag(s) kept)",
    )
    assert steps["kms-key-tags"] == (
        "update",
        "add cost-center=ml-research, environment=shared, managed-by=mlp/bootstrap-backend, "
        "owner=ml-platform@example.com, project=ml-platform",
    )

    result = apply_bootstrap(ctx, plan)

    assert {t: a for t, a in _actions(result).items() if t.endswith("tags")} == {
        "kms-key-tags": "updated",
        "bucket-tags": "updated",
    }
    bucket_tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=NAME)["TagSet"]}
    assert bucket_tags == {**COST, **BACKEND, "team": "data", "backup": "daily"}
    key_tags_now = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    assert key_tags_now == {**COST, **BACKEND, "team": "data"}
    again = plan_bootstrap(ctx, NAME, REGION, cost_tags=COST)
    assert again.up_to_date
    assert {step.target: step.detail for step in again.steps}["bucket-tags"] == (
        "cost-center=ml-research, environment=shared, managed-by=mlp/bootstrap-backend, "
        "owner=ml-platform@example.com, project=ml-platform, purpose=pulumi-state, team=data"
    )
