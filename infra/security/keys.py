"""KMS keys shared across domains."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.security.documents import logs_key_policy

COMPONENT_TYPE = "mlplatform:security:PlatformKeys"


@dataclass(frozen=True, kw_only=True)
class PlatformKeysArgs:
    alias_prefix: str  # e.g. "mlp-prod": aliases become alias/mlp-prod-logs
    deletion_window_days: int = 30
    protect: bool = False
    """`protect` and `retainOnDelete` on the keys (log groups encrypted with them become unreadable without them)."""
    tags: Mapping[str, str] = field(default_factory=dict)


class PlatformKeys(pulumi.ComponentResource):
    logs_key_arn: pulumi.Output[str]
    """Key for CloudWatch log groups (flow logs, EKS control-plane logs)."""

    def __init__(self, name: str, args: PlatformKeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws_account(self)
        partition, region = account.partition, account.region

        logs_key = aws.kms.Key(
            f"{name}-logs-key",
            description=f"{args.alias_prefix}: CloudWatch Logs encryption",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=args.deletion_window_days,
            policy=pulumi.Output.all(partition, account.account_id, region).apply(
                lambda v: logs_key_policy(v[0], v[1], v[2])
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        aws.kms.Alias(
            f"{name}-logs-alias", name=f"alias/{args.alias_prefix}-logs", target_key_id=logs_key.key_id, opts=child
        )
        self.logs_key_arn = logs_key.arn
        self.register_outputs({"logs_key_arn": self.logs_key_arn})
