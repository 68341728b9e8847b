"""Where a component's AWS resources live: the partition, account and region of the caller's provider, read once
per component with invokes parented to it (so they use the component's provider). Builders take these as plain
strings inside an `apply`; nothing here creates a resource."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsAccount:
    partition: pulumi.Output[str]
    account_id: pulumi.Output[str]
    region: pulumi.Output[str]


def aws_account(component: pulumi.Resource) -> AwsAccount:
    invoke = pulumi.InvokeOutputOptions(parent=component)
    return AwsAccount(
        partition=aws.get_partition_output(opts=invoke).partition,
        account_id=aws.get_caller_identity_output(opts=invoke).account_id,
        region=aws.get_region_output(opts=invoke).region,
    )
