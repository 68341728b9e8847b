"""Pure builders for the in-VPC runner: its buildspec, its IAM documents and the names `mlp runner` looks up.

The runner is a CodeBuild project in the VPC's private subnets whose service role has a cluster-admin access
entry. `mlp runner STACK up` uploads the committed source tree to the lake's artifacts zone and starts a build that
installs the pinned Pulumi CLI (checksum-verified) and the hashed lock file, then runs the cluster layer's
`pulumi <command>` against the private API endpoint. Nothing here imports Pulumi.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

SOURCE_PREFIX = "deploy/cluster-layer/"
"""Key prefix of the source bundles in the lake's artifacts zone; the runner's role reads nothing else there."""
COMMANDS = ("preview", "up", "destroy", "refresh")
"""What a run may do: the cluster layer's `pulumi <command>`. Anything else fails the build before it starts."""
DEFAULT_COMMAND = "preview"
CODEBUILD_SERVICE = "codebuild.amazonaws.com"


def project_name(cluster_label: str) -> str:
    """The CodeBuild project's name: explicit, so that `mlp runner` finds it from the stack file alone."""
    return f"{cluster_label}-cluster-layer"


def log_group_name(cluster_label: str) -> str:
    return f"/aws/codebuild/{project_name(cluster_label)}"


@dataclass(frozen=True)
class Backend:
    """The Pulumi state backend the runner logs in to, as its IAM policy needs it."""

    url: str
    bucket: str | None
    """The S3 bucket of an s3:// backend (None for Pulumi Cloud)."""
    secrets_alias: str | None
    """The KMS alias of an awskms:// secrets provider (`alias/NAME`)."""
    secrets_region: str | None


def parse_backend(url: str, secrets_provider: str | None, default_region: str) -> Backend:
    bucket = urlsplit(url).netloc if url.startswith("s3://") else None
    alias = region = None
    if secrets_provider:
        parts = urlsplit(secrets_provider)
        alias = f"alias/{parts.path.lstrip('/')}" if parts.netloc == "alias" else None
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        region = query.get("region", default_region)
    return Backend(url=url, bucket=bucket, secrets_alias=alias, secrets_region=region)


def buildspec(*, stack: str, pulumi_version: str, environment: str) -> str:
    """The build: install the pinned Pulumi CLI (sha256 checked against the release's checksum file) and the
    project's hashed lock file, log in to the backend, select (or create) the cluster layer's stack, run the
    requested command. `PULUMI_COMMAND` comes from `mlp runner`; the rest is fixed here and in the project.
    A preview and an `up` run the platform's policy pack (CrossGuard) with the environment's policy config.

    The archive and its checksum file come from the same host, so the check catches a corrupted or truncated
    download, not a compromised release server (there is no signature to check for the CLI archive).
    """
    archive = f"pulumi-v{pulumi_version}-linux-x64.tar.gz"
    sums = f"pulumi-{pulumi_version}-checksums.txt"
    base = "https://get.pulumi.com/releases/sdk"
    allowed = "|".join(COMMANDS)
    layer = "pulumi --cwd cluster"
    stack_arg = shlex.quote(stack)
    policy = (
        '--policy-pack "$CODEBUILD_SRC_DIR/policies" '
        f'--policy-pack-config "$CODEBUILD_SRC_DIR/policies/config.{shlex.quote(environment)}.json"'
    )
    spec: dict[str, Any] = {
        "version": 0.2,
        "env": {
            "shell": "bash",
            "variables": {
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DIY_BACKEND_GZIP": "true",
            },
        },
        "phases": {
            "install": {
                "on-failure": "ABORT",
                # The image's default Python may change; dev.py and the lock file are made for 3.11.
                "runtime-versions": {"python": "3.11"},
                "commands": [
                    f'case "$PULUMI_COMMAND" in {allowed}) ;; *) echo "PULUMI_COMMAND must be one of: '
                    f'{", ".join(COMMANDS)}" >&2; exit 2;; esac',
                    f"curl -fsSL --retry 3 -o /tmp/{archive} {base}/{archive}",
                    f"curl -fsSL --retry 3 -o /tmp/{sums} {base}/{sums}",
                    f"(cd /tmp && grep ' {archive}$' {sums} | sha256sum --check --strict -)",
                    f"tar -xzf /tmp/{archive} -C /opt",
                    "export PATH=/opt/pulumi:$PATH && pulumi version",
                    "python3.11 dev.py setup",
                ],
            },
            "build": {
                "on-failure": "ABORT",
                "commands": [
                    "export PATH=/opt/pulumi:$PWD/.venv/bin:$PATH",
                    'pulumi login "$PULUMI_BACKEND_URL"',
                    # A new stack gets the same secrets provider as the cloud layer's (they share the stack file).
                    f"{layer} stack select {stack_arg} --create "
                    '${PULUMI_SECRETS_PROVIDER:+--secrets-provider "$PULUMI_SECRETS_PROVIDER"}',
                    f'if [ "$PULUMI_COMMAND" = preview ]; then {layer} preview --stack {stack_arg} '
                    f"--diff --non-interactive {policy}; "
                    f'elif [ "$PULUMI_COMMAND" = up ]; then {layer} up --stack {stack_arg} '
                    f"--yes --non-interactive --skip-preview {policy}; "
                    f'else {layer} "$PULUMI_COMMAND" --stack {stack_arg} --yes --non-interactive --skip-preview; fi',
                ],
            },
        },
    }
    text: str = yaml.safe_dump(spec, sort_keys=False, width=1000)
    return text


def trust_policy(partition: str, account_id: str, region: str, project: str) -> str:
    """Only CodeBuild, building this project of this account, may assume the role (no confused deputy)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": CODEBUILD_SERVICE},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:{partition}:codebuild:{region}:{account_id}:project/{project}"
                        },
                    },
                }
            ],
        },
        sort_keys=True,
    )


def runner_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    log_group_arn: str,
    subnet_ids: list[str],
    security_group_id: str,
    source_bucket_arn: str,
    lake_key_arn: str,
    backend: Backend,
    access_token_secret_arn: str | None,
) -> str:
    """What the build's own code does, and nothing more: write its log stream; create, use and delete its network
    interfaces in the private subnets (AWS's documented VPC policy for CodeBuild, scoped to this region, these
    subnets and its security group); read the source bundles; use the state backend (its `.pulumi/` prefix and
    the secrets key) or read the Pulumi Cloud token. Cluster access comes from its EKS access entry, not IAM."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    subnets = [f"{ec2}:subnet/{s}" for s in subnet_ids]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteBuildLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        },
        {
            "Sid": "DescribeNetworkForVpcBuilds",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeVpcs",
            ],
            "Resource": "*",
        },
        {
            "Sid": "BuildNetworkInterfaces",
            "Effect": "Allow",
            "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
            "Resource": [f"{ec2}:network-interface/*", *subnets, f"{ec2}:security-group/{security_group_id}"],
        },
        {
            "Sid": "AttachNetworkInterfacesInPrivateSubnets",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterfacePermission",
            "Resource": f"{ec2}:network-interface/*",
            "Condition": {
                "StringEquals": {"ec2:AuthorizedService": CODEBUILD_SERVICE},
                "ArnEquals": {"ec2:Subnet": subnets},
            },
        },
        {
            "Sid": "ReadSourceBundles",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{source_bucket_arn}/{SOURCE_PREFIX}*",
        },
        {
            "Sid": "LocateSourceBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketAcl", "s3:GetBucketLocation"],
            "Resource": source_bucket_arn,
        },
        {
            "Sid": "DecryptSourceBundles",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": lake_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
    ]
    if backend.bucket:
        state = f"arn:{partition}:s3:::{backend.bucket}"
        statements += [
            {
                "Sid": "ListState",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": state,
                "Condition": {"StringLike": {"s3:prefix": [".pulumi/*", ".pulumi"]}},
            },
            {
                "Sid": "ReadWriteState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{state}/.pulumi/*",
            },
        ]
    if backend.secrets_alias:
        statements.append(
            {
                # The bucket's SSE-KMS key and the secrets provider's key are the same key (mlp bootstrap-backend).
                "Sid": "UseStateAndSecretsKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": f"arn:{partition}:kms:{backend.secrets_region or region}:{account_id}:key/*",
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": backend.secrets_alias}},
            }
        )
    if access_token_secret_arn:
        statements.append(
            {
                "Sid": "ReadPulumiAccessToken",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": access_token_secret_arn,
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
