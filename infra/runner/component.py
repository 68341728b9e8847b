"""The in-VPC runner (cloud layer): a CodeBuild project in the private subnets that runs the cluster layer's
`pulumi` against a private EKS endpoint, so that no workstation needs a route into the VPC.

It owns: a security group (egress 443 only: the API endpoint, the S3 gateway endpoint, and through the NAT the
Pulumi CLI, provider plugins, charts and the state backend), an ingress rule on the cluster security group from
it, a service role (trusted by CodeBuild for this project only) with a cluster-admin access entry, its log group
(KMS-encrypted, with retention) and the project itself, limited to one build at a time (a deploy lock).

Whoever may start a build of this project runs code as a cluster admin: grant `codebuild:StartBuild` on it only
to the people who may deploy the cluster layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.catalog import versions
from mlplatform.infra.iam_documents import secret_arn_pattern
from mlplatform.infra.runner import documents

COMPONENT_TYPE = "mlplatform:runner:ClusterRunner"


@dataclass(frozen=True, kw_only=True)
class ClusterRunnerArgs:
    label: str
    """The cluster's configured name: names the project (`<label>-cluster-layer`) and its log group."""
    stack: str
    """The stack the runner deploys (the cluster layer's stack of the same name)."""
    environment: str
    """Selects the policy pack's config (`policies/config.<environment>.json`)."""
    region: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    cluster_security_group_id: pulumi.Input[str]
    api_ingress: bool = True
    """Add the rule admitting the runner to the API on the cluster security group. Off for an adopted cluster
    unless config asks (`cluster.adopt.runner_api_ingress`): its owner admits the runner instead."""
    source_bucket_name: pulumi.Input[str]
    source_bucket_arn: pulumi.Input[str]
    lake_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    backend_url: str
    secrets_provider: str | None = None
    access_token_secret: str | None = None
    compute_type: str = "BUILD_GENERAL1_SMALL"
    timeout_minutes: int = 120
    log_retention_days: int = 90
    grant_cluster_admin: Callable[[pulumi.Input[str]], pulumi.Resource]
    """Gives the runner's role its cluster-admin access entry (the cluster component's `grant_access`)."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class ClusterRunner(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    project_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterRunnerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        account = aws_account(self)
        self._partition, self._account_id = account.partition, account.account_id
        self._create_network()
        self._create_identity()
        self._create_project()
        self.register_outputs({"project_name": self.project_name, "role_arn": self.role_arn})

    def _create_network(self) -> None:
        name, args = self._name, self._args
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name_prefix=f"{args.label}-runner-",
            description=f"{args.label} in-VPC runner: HTTPS out only, nothing in",
            vpc_id=args.vpc_id,
            tags={**args.cost_tags, "Name": f"{args.label}-runner"},
            opts=self._child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-https-out",
            security_group_id=self.security_group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="API endpoint, S3 gateway endpoint, and via NAT: Pulumi CLI, plugins, charts, backend",
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        self.api_ingress: aws.vpc.SecurityGroupIngressRule | None = None
        if not args.api_ingress:
            return
        # The control plane's ENIs carry the cluster security group; it admits only itself until this rule.
        self.api_ingress = aws.vpc.SecurityGroupIngressRule(
            f"{name}-to-api",
            security_group_id=args.cluster_security_group_id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Kubernetes API from the in-VPC runner",
            tags=dict(args.cost_tags),
            opts=self._child,
        )

    def _create_identity(self) -> None:
        name, args = self._name, self._args
        project = documents.project_name(args.label)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=documents.log_group_name(args.label),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            description=f"{args.label}: in-VPC runner of the cluster layer (CodeBuild; cluster admin)",
            assume_role_policy=pulumi.Output.all(self._partition, self._account_id).apply(
                lambda v: documents.trust_policy(v[0], v[1], args.region, project)
            ),
            tags=dict(args.cost_tags),
            opts=self._child,
        )
        backend = documents.parse_backend(args.backend_url, args.secrets_provider, args.region)
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                self._partition,
                self._account_id,
                self.log_group.arn,
                pulumi.Output.from_input(args.private_subnet_ids),
                self.security_group.id,
                args.source_bucket_arn,
                args.lake_key_arn,
            ).apply(
                lambda v: documents.runner_policy(
                    partition=v[0],
                    region=args.region,
                    account_id=v[1],
                    log_group_arn=v[2],
                    subnet_ids=list(v[3]),
                    security_group_id=v[4],
                    source_bucket_arn=v[5],
                    lake_key_arn=v[6],
                    backend=backend,
                    access_token_secret_arn=secret_arn_pattern(v[0], args.region, v[1], args.access_token_secret)
                    if args.access_token_secret
                    else None,
                )
            ),
            opts=self._child,
        )
        self.access = args.grant_cluster_admin(self.role.arn)
        self.role_arn = self.role.arn

    def _create_project(self) -> None:
        name, args = self._name, self._args
        variables = [
            aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(name="PULUMI_BACKEND_URL", value=args.backend_url),
            aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                name="PULUMI_COMMAND", value=documents.DEFAULT_COMMAND
            ),
        ]
        if args.secrets_provider:
            variables.append(
                aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                    name="PULUMI_SECRETS_PROVIDER", value=args.secrets_provider
                )
            )
        if args.access_token_secret:
            variables.append(
                aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                    name="PULUMI_ACCESS_TOKEN", value=args.access_token_secret, type="SECRETS_MANAGER"
                )
            )
        project = aws.codebuild.Project(
            f"{name}-project",
            name=documents.project_name(args.label),
            description=f"{args.label}: runs the cluster layer's pulumi inside the VPC (mlp runner)",
            service_role=self.role.arn,
            # Builds are started by `mlp runner`, which uploads the committed tree and overrides this location
            # with the bundle's own key (and S3 version); nothing is ever written to latest.zip.
            source=aws.codebuild.ProjectSourceArgs(
                type="S3",
                location=pulumi.Output.concat(args.source_bucket_name, "/", documents.SOURCE_PREFIX, "latest.zip"),
                buildspec=documents.buildspec(
                    stack=args.stack, pulumi_version=versions.tool("pulumi-cli"), environment=args.environment
                ),
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER",
                image=versions.image("codebuild"),
                compute_type=args.compute_type,
                image_pull_credentials_type="CODEBUILD",
                environment_variables=variables,
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.vpc_id,
                subnets=args.private_subnet_ids,
                security_group_ids=[self.security_group.id],
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=self.log_group.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            build_timeout=args.timeout_minutes,
            queued_timeout=30,
            concurrent_build_limit=1,  # one deploy at a time: a second start fails instead of racing the first
            tags=dict(args.cost_tags),
            # CodeBuild checks the role's EC2 permissions for VPC builds when the project is created, and the
            # build reaches the API endpoint only once the ingress rule exists.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.policy, *([self.api_ingress] if self.api_ingress else []), self.access]
            ),
        )
        self.project_name = project.name
