"""Pure IAM building blocks shared by the domains (documents only; no resources)."""

from __future__ import annotations

import json
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


def pod_identity_trust_policy(cluster_name: str, namespace: str, service_account: str) -> str:
    """EKS Pod Identity for one service account of one cluster.

    The Pod Identity agent assumes the role and tags the session with the pod's cluster, namespace and service
    account; the conditions make the role unusable from any other, even if an association were added by mistake.
    """
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
                            "aws:RequestTag/kubernetes-service-account": service_account,
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"
