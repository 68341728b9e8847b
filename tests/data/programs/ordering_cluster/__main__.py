"""A small program for the deploy-order check: an EKS cluster and what names it (a Pod Identity association, an
IAM policy naming a bucket), each given a plain string or, with config `test:wired`, the Output it comes from.

Also in it, wired either way: the control-plane log group the cluster depends on (an exempted reference), a
policy naming that log group's ARN (which holds the cluster's name), a queue whose name merely starts with the
cluster's, and a bucket sub-resource that carries the bucket's name.
"""

import json

import pulumi
import pulumi_aws as aws

wired = pulumi.Config().get_bool("wired") or False
provider = aws.Provider("aws", region="eu-west-1")
opts = pulumi.ResourceOptions(provider=provider)


def trust(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def read_policy(bucket_arn: str) -> str:
    statement = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [bucket_arn, f"{bucket_arn}/*"]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


logs = aws.cloudwatch.LogGroup("cluster-logs", name="/aws/eks/c-demo/cluster", retention_in_days=7, opts=opts)
cluster_role = aws.iam.Role("cluster-role", assume_role_policy=trust("eks.amazonaws.com"), opts=opts)
cluster = aws.eks.Cluster(
    "cluster",
    name="c-demo",
    role_arn=cluster_role.arn,
    vpc_config={"subnet_ids": ["subnet-0aaaa1111", "subnet-0bbbb2222"]},
    # EKS would create /aws/eks/c-demo/cluster itself, without retention, if the cluster came first.
    opts=pulumi.ResourceOptions(provider=provider, depends_on=[logs]),
)

app_role = aws.iam.Role("app-role", assume_role_policy=trust("pods.eks.amazonaws.com"), opts=opts)
aws.eks.PodIdentityAssociation(
    "app-pod-identity",
    cluster_name=cluster.name if wired else "c-demo",
    namespace="app",
    service_account="app",
    role_arn=app_role.arn,
    opts=opts,
)

data = aws.s3.Bucket("data", bucket="c-demo-data", opts=opts)
aws.s3.BucketPublicAccessBlock("data-public-access", bucket=data.id, block_public_acls=True, opts=opts)
aws.iam.RolePolicy(
    "app-read",
    role=app_role.id,
    policy=data.arn.apply(read_policy) if wired else read_policy("arn:aws:s3:::c-demo-data"),
    opts=opts,
)

aws.sqs.Queue("interruption", name="c-demo-karpenter", opts=opts)


def write_logs_policy(log_group_arn: str) -> str:
    statement = {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": f"{log_group_arn}:*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


# The log group's ARN holds the cluster's name (/aws/eks/c-demo/cluster): it names the log group, not the cluster.
aws.iam.RolePolicy("app-logs", role=app_role.id, policy=logs.arn.apply(write_logs_policy), opts=opts)
