"""Pure KMS key policy builders. Principals are always named accounts or services, never `*`."""

from __future__ import annotations

import json

from mlplatform.infra.iam_documents import account_root_statement


def logs_key_policy(partition: str, account_id: str, region: str) -> str:
    """CloudWatch Logs of this account and region may use the key for log groups, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_root_statement(partition, account_id),
                {
                    "Sid": "CloudWatchLogsEncryptsLogGroups",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": (
                                f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                            )
                        }
                    },
                },
            ],
        },
        sort_keys=True,
    )
