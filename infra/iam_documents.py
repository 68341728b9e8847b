"""Pure IAM building blocks shared by the domains (documents only; no resources)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def account_root_statement(partition: str, account_id: str) -> dict[str, Any]:
    """The account keeps control of a key through IAM (AWS's default key policy statement)."""
    return {
        "Sid": "AccountAdministersKeyThroughIam",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def account_only_key_policy(partition: str, account_id: str) -> str:
    """A key used only through IAM permissions of this account's principals."""
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [account_root_statement(partition, account_id)]}, sort_keys=True
    )


def service_trust_policy(service: str, actions: tuple[str, ...] = ("sts:AssumeRole",)) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}],
        },
        sort_keys=True,
    )


def pod_identity_trust_policy(cluster_name: str, namespace: str, service_account: str | Sequence[str]) -> str:
    """EKS Pod Identity for one service account of one cluster (or a few of one namespace: a list, any of them).

    The Pod Identity agent assumes the role and tags the session with the pod's cluster, namespace and service
    account; the conditions make the role unusable from any other, even if an association were added by mistake.
    """
    accounts: str | list[str] = service_account if isinstance(service_account, str) else sorted(service_account)
    if isinstance(accounts, list) and len(accounts) == 1:
        accounts = accounts[0]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {
                        "StringEquals": {
                            "aws:RequestTag/eks-cluster-name": cluster_name,
                            "aws:RequestTag/kubernetes-namespace": namespace,
                            "aws:RequestTag/kubernetes-service-account": accounts,
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


@dataclass(frozen=True)
class S3Grant:
    """Access to the objects under one key prefix of one bucket ("" = the whole bucket)."""

    bucket_arn: str
    prefix: str = ""
    write: bool = False
    head_bucket: bool = False
    """The client checks the bucket with HeadBucket first (KServe's storage initializer does). S3 authorizes
    HeadBucket as s3:ListBucket with no `s3:prefix` in the request, so the role may then also list the bucket without
    a prefix: every key name (and size) of the bucket, not the objects' contents. No condition key tells the two
    apart."""
    read: bool = True
    """False: put objects only (no get, list, or delete), e.g. KServe's logger writing requests."""


def s3_access_policy(
    grants: Sequence[S3Grant], *, key_arn: str, secret_arns: Sequence[str] = (), sid_prefix: str = ""
) -> str:
    """Least privilege over the lake: objects under the granted prefixes, listing only those prefixes, the lake
    key for them, and reading the named secrets. Nothing else (no bucket configuration, no other prefix)."""
    statements: list[dict[str, Any]] = []
    reads = sorted({f"{g.bucket_arn}/{g.prefix}*" for g in grants if g.read})
    writes = sorted({f"{g.bucket_arn}/{g.prefix}*" for g in grants if g.write and g.read})
    puts = sorted({f"{g.bucket_arn}/{g.prefix}*" for g in grants if g.write and not g.read})
    if reads:
        statements.append({"Sid": "ReadObjects", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": reads})
    if writes:
        statements.append(
            {
                "Sid": "WriteObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": writes,
            }
        )
    if puts:
        statements.append({"Sid": "PutObjects", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": puts})
    by_bucket: dict[str, set[str]] = {}
    for g in grants:
        if g.read:
            by_bucket.setdefault(g.bucket_arn, set()).add(g.prefix)
    head_buckets = {g.bucket_arn for g in grants if g.head_bucket}
    for i, (bucket, prefixes) in enumerate(sorted(by_bucket.items())):
        statement: dict[str, Any] = {
            "Sid": f"List{i}",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket,
        }
        if "" not in prefixes:
            statement["Condition"] = {"StringLike": {"s3:prefix": sorted(f"{p}*" for p in prefixes)}}
            if bucket in head_buckets:
                statements.append(
                    {
                        "Sid": f"HeadBucket{i}",
                        "Effect": "Allow",
                        "Action": "s3:ListBucket",
                        "Resource": bucket,
                        "Condition": {"Null": {"s3:prefix": "true"}},
                    }
                )
        statements.append(statement)
    if grants:
        statements.append(
            {
                "Sid": "UseTheLakeKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if writes or puts else ["kms:Decrypt"],
                "Resource": key_arn,
            }
        )
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadOwnSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            }
        )
        if not grants:
            statements.append(
                {"Sid": "DecryptSecrets", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn}
            )
    for st in statements:
        st["Sid"] = sid_prefix + st["Sid"]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def secret_arn_pattern(partition: str, region: str, account_id: str, name: str) -> str:
    """The ARN of a Secrets Manager secret known by name (AWS appends a random 6-character suffix)."""
    if name.startswith("arn:"):
        return name
    return f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{name}-??????"
