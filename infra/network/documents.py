"""Pure builders for the network: IAM documents and discovery tags. No resources, no I/O."""

from __future__ import annotations

import json


def private_subnet_tags(cluster_name: str) -> dict[str, str]:
    """Internal load balancers land here; Karpenter discovers node subnets by this tag."""
    return {"kubernetes.io/role/internal-elb": "1", "karpenter.sh/discovery": cluster_name}


def public_subnet_tags() -> dict[str, str]:
    """Internet-facing load balancers (only if a user creates one) land here."""
    return {"kubernetes.io/role/elb": "1"}


def flow_logs_assume_role_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )


def flow_logs_delivery_policy(log_group_arn: str) -> str:
    """Write access to one log group and its streams only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DeliverFlowLogs",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": [log_group_arn, f"{log_group_arn}:*"],
                }
            ],
        },
        sort_keys=True,
    )
