"""A program with one nested typo the Python SDK lets through (`min_sise` inside `scaling_config`): the schema gate
must catch it offline, before any `pulumi preview`."""

import pulumi
import pulumi_aws as aws

provider = aws.Provider("aws", region="eu-west-1")
role = aws.iam.Role(
    "nodes",
    assume_role_policy='{"Version": "2012-10-17", "Statement": []}',
    opts=pulumi.ResourceOptions(provider=provider),
)
aws.eks.NodeGroup(
    "workers",
    cluster_name="demo",
    node_role_arn=role.arn,
    subnet_ids=["subnet-0123456789abcdef0"],
    scaling_config={"min_sise": 1, "max_size": 2, "desired_size": 1},  # type: ignore[typeddict-unknown-key]
    opts=pulumi.ResourceOptions(provider=provider),
)
