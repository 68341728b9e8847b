"""The stack's name: the one prefix of every physical name the platform gives an AWS resource (pure; no imports).

The EKS cluster, its control-plane log group (`/aws/eks/<name>/cluster`), the KMS aliases (`alias/<name>-logs`,
`-lake`, `-eks-secrets`, `-images`, `-alerts-key`), Karpenter's interruption queue (`<name>-karpenter`), the alert
topic, the container log groups (`/<name>/containers/...`), MLflow's secrets (`<name>/mlflow/database`, and by
default `<name>/mlflow/admin`), the bucket, database and security-group prefixes and the in-VPC runner's project
all start with it. It is `cluster.name` when the stack file sets it, else `mlp-<stack>`: derived from the stack's
name, never from its environment, so two stacks of one environment (a `sandbox` beside `dev`) cannot collide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_PREFIX = "mlp-"
"""The default name is this plus the stack's name (`mlp-dev`, `mlp-prod`)."""

NAME_PATTERN = r"^[a-z](-?[a-z0-9])*$"
"""Lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit: what S3
bucket prefixes and RDS identifiers (the strictest users of the name) accept."""

NAME_RULE = "lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen"

_BUCKET_PREFIX_MAX = 37
"""S3 `bucket_prefix` limit (63 characters less the provider's 26-character unique suffix)."""
_ACCESS_LOGS_ZONE = "access-logs"
"""The lake's access-log bucket: `<name>-access-logs-`, beside one `<name>-<zone>-` per lake zone."""


def default_name(stack: str) -> str:
    """The name of a stack whose file sets no `cluster.name`."""
    return f"{DEFAULT_PREFIX}{stack}"


def admin_secret_name(name: str) -> str:
    """The MLflow admin secret of a stack whose file names none: beside `<name>/mlflow/database`."""
    return f"{name}/mlflow/admin"


def max_name_length(zones: Iterable[str]) -> int:
    """The longest name whose lake bucket prefixes (`<name>-<zone>-`) stay within S3's limit."""
    longest = max((len(z) for z in zones), default=0)
    return _BUCKET_PREFIX_MAX - 2 - max(longest, len(_ACCESS_LOGS_ZONE))


def name_problem(name: str, zones: Iterable[str] = ()) -> str | None:
    """Why `name` cannot prefix the stack's physical names, or None."""
    if not re.fullmatch(NAME_PATTERN, name):
        return f"must be {NAME_RULE}"
    limit = max_name_length(zones)
    if len(name) > limit:
        return (
            f"is {len(name)} characters; at most {limit} fit the lake's bucket prefixes "
            f"(`{name}-<zone>-` within S3's {_BUCKET_PREFIX_MAX}-character bucket_prefix)"
        )
    return None
