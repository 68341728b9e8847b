"""Pure builders for the network: IAM documents and discovery tags. No resources, no I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence


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


# --- VPC endpoint policies (the network side of the data perimeter) ------------------------------------------------

S3_OBJECT_READ = ("s3:GetObject",)
"""What the AWS-owned buckets below are read with (every source below grants exactly this)."""


def node_s3_buckets(region: str) -> dict[str, str]:
    """The AWS-owned buckets that the platform's nodes read through the S3 gateway endpoint, each with why and its
    source (read 2026-12-04). Names only for buckets that exist in `region`: a bucket name is global, so one that
    AWS does not hold could be created by anyone, and a read of it would carry its key out in the request.

    - `prod-<region>-starport-layer-bucket`: every image layer pulled from Amazon ECR (the EKS add-ons, the platform's
      ECR repositories). Amazon ECR User Guide, "Amazon ECR interface VPC endpoints", section "Minimum Amazon S3
      bucket permissions for Amazon ECR": `arn:aws:s3:::prod-region-starport-layer-bucket/*`, s3:GetObject.
    - `al2023-repos-<region>-de612dc2`: the Amazon Linux 2023 package repositories (`dnf` on the EKS AL2023 AMIs
      and the CodeBuild image; the suffix is the same in every region, as dnf resolves it:
      `al2023-repos-us-east-1-de612dc2`, `al2023-repos-ap-northeast-1-de612dc2`). Amazon Linux 2 buckets are not
      listed: the platform's node AMI types are AL2023 and Bottlerocket only (`cluster.system_node_group.ami_type`).
    - The SSM Agent's buckets (the nodes run it for Session Manager, `AmazonSSMManagedInstanceCore`): AWS Systems
      Manager User Guide, "SSM Agent communications with AWS managed S3 buckets" (ssm-agent-minimum-s3-permissions):
      `aws-ssm-<region>`, `amazon-ssm-<region>` (agent updates), `amazon-ssm-packages-<region>` and
      `<region>-birdwatcher-prod` (`AWS-ConfigureAWSPackage`; `aws-ssm-distributor-file-<region>` instead in
      af-south-1 and eu-south-1), `aws-ssm-document-attachments-<region>` (Distributor packages),
      `patch-baseline-snapshot-<region>` (Patch Manager; other names in me-south-1 and af-south-1). The Windows
      bucket is left out (no Windows nodes).
    """
    distributor = (
        {f"aws-ssm-distributor-file-{region}": "SSM Agent: AWS-ConfigureAWSPackage (this region's distributor)"}
        if region in ("af-south-1", "eu-south-1")
        else {f"{region}-birdwatcher-prod": "SSM Agent: AWS-ConfigureAWSPackage (distribution service)"}
    )
    patch = {
        "me-south-1": "patch-baseline-snapshot-me-south-1-uduvl7q8",
        "af-south-1": "patch-baseline-snapshot-af-south-1-tbxdb5b9",
    }
    return {
        f"prod-{region}-starport-layer-bucket": "Amazon ECR image layers",
        f"al2023-repos-{region}-de612dc2": "Amazon Linux 2023 package repositories",
        f"aws-ssm-{region}": "SSM Agent",
        f"amazon-ssm-{region}": "SSM Agent updates",
        f"amazon-ssm-packages-{region}": "SSM Agent: AWS-ConfigureAWSPackage (agents before 2.2.45.0)",
        **distributor,
        f"aws-ssm-document-attachments-{region}": "SSM Distributor packages owned by AWS",
        patch.get(region, f"patch-baseline-snapshot-{region}"): "SSM Patch Manager baseline snapshots",
    }


def registry_s3_buckets(region: str) -> dict[str, str]:
    """Buckets of public image registries that send a pull's layer downloads straight to S3, with the source
    (read 2026-12-04). A blob request to such a registry from an AWS address is redirected to a presigned S3 URL;
    in the same region the download goes through the gateway endpoint, whose policy must then admit the bucket
    (the symptom otherwise: `403 AccessDenied` while pulling, kubernetes/k8s.io#4214).

    - `prod-registry-k8s-io-<region>`: registry.k8s.io (kube-state-metrics, the pause image) redirects AWS clients
      to its copy in their region (kubernetes/registry.k8s.io, `cmd/archeio` `awsRegionToS3URL`, PR #82); a region
      without a copy is sent to another region's bucket, which does not go through this endpoint.
    - `quayio-production-s3` (us-east-1): quay.io (KubeRay's operator, the Prometheus operator's images, cert-manager)
      serves layers from it (listed among quay.io's download hosts, IBM/cloud-pak-deployer#504).
    Images pulled through an ECR pull-through cache come from the ECR layer bucket instead.
    """
    return {
        f"prod-registry-k8s-io-{region}": "registry.k8s.io image layers",
        "quayio-production-s3": "quay.io image layers",
    }


def s3_gateway_endpoint_policy(
    *,
    partition: str,
    account_id: str,
    region: str,
    write_buckets: Sequence[str] = (),
    read_buckets: Sequence[str] = (),
) -> str:
    """The S3 gateway endpoint's policy: what any request through the endpoint may reach, whoever makes it.

    - every bucket of this account (`aws:ResourceAccount`), any action: the lake, the runner's source bundles, the
      state backend when it lives here. What a principal may do there is still its identity policy's and the
      bucket policy's to say; the endpoint only refuses other accounts' buckets, so that data cannot be written
      (or read back) to a bucket outside the account with credentials brought in from elsewhere;
    - reads (s3:GetObject) of the AWS-owned buckets nodes need (`node_s3_buckets`) and of the registries' layer
      buckets (`registry_s3_buckets`). These are read anonymously or with presigned URLs made by their owner, so
      the statement names no principal;
    - `write_buckets`: buckets of other accounts the platform itself writes (the runner's Pulumi state backend),
      any object action; `read_buckets`: other accounts' buckets that may be read and listed (configured).

    Without a policy the endpoint admits every bucket of every account (the AWS default, full access)."""

    def objects(buckets: Sequence[str] | dict[str, str]) -> list[str]:
        return [f"arn:{partition}:s3:::{b}/*" for b in sorted(buckets)]

    statements: list[dict[str, object]] = [
        {
            "Sid": "ThisAccountsBuckets",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceAccount": account_id}},
        },
        {
            "Sid": "AwsOwnedBucketsNodesRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": list(S3_OBJECT_READ),
            "Resource": objects(node_s3_buckets(region)),
        },
        {
            "Sid": "ImageRegistryLayers",
            "Effect": "Allow",
            "Principal": "*",
            "Action": list(S3_OBJECT_READ),
            "Resource": objects(registry_s3_buckets(region)),
        },
    ]
    if write_buckets:
        statements.append(
            {
                "Sid": "PlatformBucketsElsewhere",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [
                    r
                    for b in sorted(set(write_buckets))
                    for r in (f"arn:{partition}:s3:::{b}", f"arn:{partition}:s3:::{b}/*")
                ],
            }
        )
    if read_buckets:
        statements.append(
            {
                "Sid": "ConfiguredReadOnlyBuckets",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [
                    r
                    for b in sorted(set(read_buckets))
                    for r in (f"arn:{partition}:s3:::{b}", f"arn:{partition}:s3:::{b}/*")
                ],
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


UNAUTHENTICATED_STS = ("sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML")


def interface_endpoint_policy(*, account_id: str, service: str) -> str:
    """An interface endpoint's policy: only this account's principals may call the service through it.

    With team egress to the internet off, the interface endpoints are what a team pod still reaches; without a
    policy, credentials of another account brought into a pod would carry data out through them (CloudWatch Logs
    `PutLogEvents` to that account's log group, an ECR push to its registry). `aws:PrincipalAccount` is in every
    authenticated request (IAM User Guide, global condition keys). STS's web-identity and SAML calls are not
    signed (no principal yet) and stay open: the credentials they return are of the role's account, which the
    other endpoints then refuse."""
    statements: list[dict[str, object]] = [
        {
            "Sid": "ThisAccountsPrincipals",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account_id}},
        }
    ]
    if service == "sts":
        statements.append(
            {
                "Sid": "UnsignedFederation",
                "Effect": "Allow",
                "Principal": "*",
                "Action": list(UNAUTHENTICATED_STS),
                "Resource": "*",
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
