"""What AWS authorizes for an API call: the IAM action(s), resource ARN(s) and request context of each call.

Input is what went over the wire (`HttpExchange`: method, path, query, headers of a request to S3 or a JSON
service), so that any client can be checked, whatever its SDK: the AWS CLI, boto3, KServe's storage initializer.
`api_call` names the operation (S3's REST routes; `X-Amz-Target` for JSON services); `authorizations` lists the
`mlp.iam_eval.Request`s AWS evaluates for it, including the KMS calls S3 and Secrets Manager make on the caller's
behalf (their permissions are the caller's: kms:Decrypt to read an SSE-KMS object, kms:GenerateDataKey to write
one).

Operation -> action follows "Required permissions for Amazon S3 API operations" (docs.aws.amazon.com/AmazonS3/
latest/userguide/using-with-s3-policy-actions.html, read 2026-12): HeadObject needs s3:GetObject; HeadBucket,
ListObjects and ListObjectsV2 need s3:ListBucket; the multipart upload calls need s3:PutObject, and with SSE-KMS
also kms:Decrypt (mpuoverview.html#mpuAndPermissions). The request context carries only what the request sends:
`s3:prefix` is absent when the request has no `prefix` parameter (HeadBucket never has one), and the encryption
keys only when the upload names an encryption. Unknown routes raise `UnroutedCallError` rather than guessing.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlplatform.mlp.iam_eval import ContextValue, Request


class UnroutedCallError(ValueError):
    """A request this module does not know the IAM authorization of."""


@dataclass(frozen=True, kw_only=True)
class HttpExchange:
    """One HTTP request to an AWS API, as a server sees it."""

    service: str
    """The SigV4 signing name from the Authorization header's credential scope (`s3`, `secretsmanager`, `kms`)."""
    method: str
    path: str
    """Percent-encoded, as sent."""
    query: Mapping[str, str] = field(default_factory=dict)
    """Parameters as sent (a blank value kept: `prefix=` is a prefix of "")."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-case names."""
    body: bytes = b""
    status: int = 200


@dataclass(frozen=True, kw_only=True)
class ApiCall:
    service: str
    operation: str
    bucket: str = ""
    key: str = ""
    keys: tuple[str, ...] = ()
    """DeleteObjects: the keys in its body."""
    params: Mapping[str, str] = field(default_factory=dict)
    """S3: the query parameters and the x-amz-* headers of the request. JSON services: the body's string fields."""
    tables: tuple[str, ...] = ()
    """DynamoDB: the tables the request names (`TableName`, the keys of a batch's `RequestItems`, a tag call's
    `ResourceArn`)."""

    def describe(self) -> str:
        target = f"{self.bucket}/{self.key}" if self.key else self.bucket or ", ".join(self.tables)
        return f"{self.service} {self.operation}" + (f" {target}" if target else "")


# -- routing ----------------------------------------------------------------------------------------------------

_BUCKET_GET = (
    ("versions", "ListObjectVersions"),
    ("uploads", "ListMultipartUploads"),
    ("location", "GetBucketLocation"),
)
_SUBRESOURCES = frozenset(
    {
        "acl",
        "analytics",
        "cors",
        "encryption",
        "inventory",
        "lifecycle",
        "logging",
        "metrics",
        "notification",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "retention",
        "legal-hold",
        "tagging",
        "torrent",
        "versioning",
        "website",
        "object-lock",
        "attributes",
        "restore",
        "select",
    }
)


def _s3_route(method: str, bucket: str, key: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    sub = sorted(_SUBRESOURCES.intersection(query))
    if sub:
        raise UnroutedCallError(f"S3 {method} with ?{sub[0]} is not modelled")
    if not bucket:
        if method == "GET":
            return "ListBuckets"
    elif not key:
        if method == "HEAD":
            return "HeadBucket"
        if method == "GET":
            if query.get("list-type") == "2":
                return "ListObjectsV2"
            return next((op for param, op in _BUCKET_GET if param in query), "ListObjects")
        if method == "PUT":
            return "CreateBucket"
        if method == "DELETE":
            return "DeleteBucket"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
    else:
        copy = "x-amz-copy-source" in headers
        if method == "HEAD":
            return "HeadObject"
        if method == "GET":
            return "ListParts" if "uploadId" in query else "GetObject"
        if method == "PUT":
            if "uploadId" in query and "partNumber" in query:
                return "UploadPartCopy" if copy else "UploadPart"
            return "CopyObject" if copy else "PutObject"
        if method == "POST":
            if "uploads" in query:
                return "CreateMultipartUpload"
            if "uploadId" in query:
                return "CompleteMultipartUpload"
        if method == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    raise UnroutedCallError(f"S3 {method} /{bucket}{'/' + key if key else ''} ({sorted(query)}) is not modelled")


_DELETE_KEY = re.compile(r"<Key>(.*?)</Key>", re.DOTALL)


def api_call(exchange: HttpExchange) -> ApiCall:
    """The operation of a request (S3 path-style addressing; JSON services by `X-Amz-Target`)."""
    if exchange.service == "s3":
        path = exchange.path.lstrip("/")
        bucket, _, raw_key = path.partition("/")
        bucket = urllib.parse.unquote(bucket)
        key = urllib.parse.unquote(raw_key)
        operation = _s3_route(exchange.method, bucket, key, exchange.query, exchange.headers)
        params = {**exchange.query, **{k: v for k, v in exchange.headers.items() if k.startswith("x-amz-")}}
        keys: tuple[str, ...] = ()
        if operation == "DeleteObjects":
            keys = tuple(_xml_unescape(k) for k in _DELETE_KEY.findall(exchange.body.decode("utf-8", "replace")))
        return ApiCall(service="s3", operation=operation, bucket=bucket, key=key, keys=keys, params=params)
    target = exchange.headers.get("x-amz-target", "")
    if not target or "." not in target:
        raise UnroutedCallError(f"{exchange.service} {exchange.method} {exchange.path} has no X-Amz-Target")
    operation = target.rsplit(".", 1)[1]
    if exchange.service == "dynamodb":
        return ApiCall(service="dynamodb", operation=operation, tables=_dynamodb_tables(exchange.body))
    return ApiCall(service=exchange.service, operation=operation)


def _dynamodb_tables(body: bytes) -> tuple[str, ...]:
    """The tables a DynamoDB request names (batch calls name several: each is authorized on its own)."""
    document = json.loads(body or b"{}")
    if "TableName" in document:
        return (str(document["TableName"]),)
    if "RequestItems" in document:
        return tuple(sorted(document["RequestItems"]))
    if "ResourceArn" in document:
        return (str(document["ResourceArn"]).split(":table/", 1)[1].split("/", 1)[0],)
    return ()


def _xml_unescape(text: str) -> str:
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


# -- authorization ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BucketEncryption:
    """A bucket's default encryption: SSE-KMS with `key_arn` (None: SSE-S3, no KMS permission involved)."""

    key_arn: str | None
    bucket_key: bool = False
    """With an S3 Bucket Key the KMS encryption context is the bucket's ARN, else the object's."""


_LIST_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))
_UPLOAD_KEYS = (
    ("x-amz-server-side-encryption", "s3:x-amz-server-side-encryption"),
    ("x-amz-server-side-encryption-aws-kms-key-id", "s3:x-amz-server-side-encryption-aws-kms-key-id"),
    ("x-amz-server-side-encryption-customer-algorithm", "s3:x-amz-server-side-encryption-customer-algorithm"),
    ("x-amz-acl", "s3:x-amz-acl"),
)
_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
}
_BUCKET_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
}
_WRITES = frozenset({"PutObject", "CreateMultipartUpload", "CopyObject"})
# KMS on the caller's behalf, for a bucket encrypted with SSE-KMS (HeadObject reads metadata only: no KMS)
_KMS_FOR_S3 = {
    "GetObject": ("kms:Decrypt",),
    "PutObject": ("kms:GenerateDataKey",),
    "CreateMultipartUpload": ("kms:GenerateDataKey",),
    "CompleteMultipartUpload": ("kms:Decrypt",),
    "CopyObject": ("kms:GenerateDataKey",),
}


@dataclass(frozen=True, kw_only=True)
class Caller:
    """What the request context says about where the call comes from."""

    account: str
    region: str
    partition: str = "aws"
    secure_transport: bool = True
    """Production endpoints are HTTPS (the contract tests talk plain HTTP to moto, so this is set, not observed)."""

    def context(self) -> dict[str, ContextValue]:
        return {
            "aws:SecureTransport": "true" if self.secure_transport else "false",
            "aws:RequestedRegion": self.region,
        }


def authorizations(
    call: ApiCall,
    caller: Caller,
    *,
    bucket_encryption: Mapping[str, BucketEncryption] | None = None,
    secret_arn: str = "",
    secret_key_arn: str | None = None,
) -> list[Request]:
    """The requests AWS authorizes for `call`, in order.

    S3: `bucket_encryption` (bucket name -> its default encryption) adds the implied KMS requests. Secrets Manager:
    `secret_arn` is the secret's full ARN (the response's `ARN`: a request may name the secret by name) and
    `secret_key_arn` its customer-managed key (None: the AWS managed key, which any caller of the account may use
    through Secrets Manager)."""
    if call.service == "s3":
        return _s3_authorizations(call, caller, bucket_encryption or {})
    if call.service == "secretsmanager":
        if not secret_arn:
            raise UnroutedCallError(f"secretsmanager {call.operation}: the secret's ARN is needed")
        requests = [Request(action=f"secretsmanager:{call.operation}", resource=secret_arn, context=caller.context())]
        if call.operation == "GetSecretValue" and secret_key_arn:
            requests.append(
                Request(
                    action="kms:Decrypt",
                    resource=secret_key_arn,
                    context={
                        **caller.context(),
                        "kms:ViaService": f"secretsmanager.{caller.region}.amazonaws.com",
                        "kms:CallerAccount": caller.account,
                        "kms:EncryptionContext:SecretARN": secret_arn,
                        "kms:EncryptionContextKeys": ("SecretARN", "SecretVersionId"),
                    },
                )
            )
        return requests
    if call.service == "dynamodb":
        # One request per table, on the table's ARN ("Actions, resources, and condition keys for Amazon DynamoDB":
        # BatchGetItem and BatchWriteItem are authorized on each table they name). DynamoDB uses a table's KMS key
        # through its own grant and cached table key: no per-call KMS request is modelled.
        base = caller.context()
        if not call.tables:
            return [Request(action=f"dynamodb:{call.operation}", resource="*", context=base)]
        return [
            Request(
                action=f"dynamodb:{call.operation}",
                resource=f"arn:{caller.partition}:dynamodb:{caller.region}:{caller.account}:table/{table}",
                context=base,
            )
            for table in call.tables
        ]
    raise UnroutedCallError(f"{call.service} {call.operation}: authorization not modelled")


def _s3_authorizations(call: ApiCall, caller: Caller, encryption: Mapping[str, BucketEncryption]) -> list[Request]:
    p = caller.partition
    bucket_arn = f"arn:{p}:s3:::{call.bucket}"
    object_arn = f"{bucket_arn}/{call.key}"
    base = caller.context()
    op = call.operation
    out: list[Request] = []
    if op == "ListBuckets":
        return [Request(action="s3:ListAllMyBuckets", resource="*", context=base)]
    if op in _BUCKET_ACTIONS:
        context = dict(base)
        if _BUCKET_ACTIONS[op] == "s3:ListBucket":
            context.update({key: call.params[param] for param, key in _LIST_KEYS if param in call.params})
        return [Request(action=_BUCKET_ACTIONS[op], resource=bucket_arn, context=context)]
    if op == "DeleteObjects":
        return [Request(action="s3:DeleteObject", resource=f"{bucket_arn}/{k}", context=base) for k in call.keys]
    if op in ("CopyObject", "UploadPartCopy"):
        source = urllib.parse.unquote(call.params["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
        out.append(Request(action="s3:GetObject", resource=f"arn:{p}:s3:::{source}", context=base))
        action = "s3:PutObject"
    elif op in _OBJECT_ACTIONS:
        action = _OBJECT_ACTIONS[op]
        if "versionId" in call.params and action in ("s3:GetObject", "s3:DeleteObject"):
            action += "Version"
    else:
        raise UnroutedCallError(f"S3 {op}: authorization not modelled")
    context = dict(base)
    if op in _WRITES:
        context.update({key: call.params[header] for header, key in _UPLOAD_KEYS if header in call.params})
    out.append(Request(action=action, resource=object_arn, context=context))
    if op in _WRITES:
        if "x-amz-acl" in call.params or any(h.startswith("x-amz-grant-") for h in call.params):
            out.append(Request(action="s3:PutObjectAcl", resource=object_arn, context=context))
        if "x-amz-tagging" in call.params:
            out.append(Request(action="s3:PutObjectTagging", resource=object_arn, context=context))
    out.extend(_kms_for_s3(call, caller, encryption.get(call.bucket), bucket_arn, object_arn))
    return out


def _kms_for_s3(
    call: ApiCall, caller: Caller, encryption: BucketEncryption | None, bucket_arn: str, object_arn: str
) -> Sequence[Request]:
    actions = _KMS_FOR_S3.get(call.operation, ())
    requested = call.params.get("x-amz-server-side-encryption")
    if call.operation in _WRITES and requested is not None:
        if requested not in ("aws:kms", "aws:kms:dsse"):
            return ()  # the upload asks for SSE-S3: no KMS involved
        key = call.params.get("x-amz-server-side-encryption-aws-kms-key-id") or (
            encryption.key_arn if encryption else None
        )
    else:
        key = encryption.key_arn if encryption else None
    if not actions or not key:
        return ()
    bucket_key = encryption.bucket_key if encryption else False
    context: dict[str, ContextValue] = {
        **caller.context(),
        "kms:ViaService": f"s3.{caller.region}.amazonaws.com",
        "kms:CallerAccount": caller.account,
        "kms:EncryptionContext:aws:s3:arn": bucket_arn if bucket_key else object_arn,
        "kms:EncryptionContextKeys": ("aws:s3:arn",),
    }
    return [Request(action=a, resource=key, context=context) for a in actions]
