"""The platform's stack configuration: one typed schema, validated once.

A stack file (`stacks/Pulumi.<stack>.yaml`) holds the platform under the `ml-platform:` namespace, one key per
section (`ml-platform:network`, `ml-platform:gpu_pools`, ...), plus the standard `aws:region`.
`validate_config` checks the whole file and raises `ConfigError`, which lists every problem at once, each with the
stack file, the key path and what is allowed. Structure and ranges are checked by the pydantic models below;
rules that span fields or sections are in `_semantic_checks`, so that each message can name the exact key.

Secrets never live here: where a component needs a credential the config names an AWS Secrets Manager secret
and the component reads it at deploy time.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
)

from mlplatform.infra import naming
from mlplatform.infra.aws_provider import AwsProviderSettings, parse_settings, stack_issues
from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.catalog import versions as version_catalog
from mlplatform.infra.config_errors import ConfigError, ConfigIssue, Path
from mlplatform.infra.constants import PROJECT
from mlplatform.infra.tagging.rules import MAX_AWS_TAGS, PLATFORM_TAG_KEYS, REQUIRED_COST_TAGS, tag_problems

NAMESPACE = PROJECT  # config keys are `ml-platform:<section>`

SERVING_RUNTIMES = ("vllm",)
"""ServingRuntimes the platform installs (KServe's ClusterServingRuntimes are chosen through model_format)."""

Environment = Literal["dev", "staging", "prod"]

# --- reusable constrained types -------------------------------------------------------------------------------

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=_DNS_LABEL, max_length=40)]
"""A map key that becomes part of resource and Kubernetes names: lowercase DNS label, at most 40 characters."""

Duration = Annotated[str, StringConstraints(pattern=r"^(Never|([0-9]+(s|m|h))+)$")]
"""A Go duration as Karpenter accepts it (`30s`, `10m`, `720h`, `1h30m`) or `Never`."""

Quantity = Annotated[str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P|E|Ei)?$")]
"""A Kubernetes resource quantity: `500m`, `2`, `16Gi`."""

SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")]
"""The name (or ARN) of an AWS Secrets Manager secret; never the secret value."""

ImageRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9.\-/:_]+(:[A-Za-z0-9_.\-]+|@sha256:[a-f0-9]{64})$")]
"""A container image with an explicit tag or digest."""

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of the CloudWatch Logs retention periods {list(LOG_RETENTION_DAYS)}")
    return days


RetentionDays = Annotated[int, AfterValidator(_retention)]


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"must be an IPv4 CIDR block such as 10.0.0.0/16 ({exc})") from None
    if net.version != 4:
        raise ValueError("must be an IPv4 CIDR block")
    return str(net)


Cidr = Annotated[str, AfterValidator(_cidr)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, use_attribute_docstrings=True)


# --- network --------------------------------------------------------------------------------------------------

InterfaceEndpoint = Literal[
    "ecr.api",
    "ecr.dkr",
    "sts",
    "logs",
    "ec2",
    "elasticloadbalancing",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "secretsmanager",
    "kms",
    "sqs",
    "autoscaling",
    "eks",
    "eks-auth",
]


BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")]


class FlowLogsConfig(_Model):
    enabled: bool = Field(True, description="VPC flow logs to CloudWatch Logs, encrypted with the platform key.")
    retention_days: RetentionDays = Field(30, description="How long flow log records are kept.")
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"
    """Which flows to record."""


class S3Location(_Model):
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")]
    """Bucket of the Terraform S3 backend."""
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    """Object key of the state file."""
    region: str
    """Region of the bucket."""


class RemoteStateLocation(_Model):
    """A workspace of HCP Terraform or Terraform Enterprise (the `remote` / `cloud` backend). The token is never
    config: `pulumi up` and `mlp plan` read it from `TF_TOKEN_<hostname>` (dots as underscores, Terraform's own
    convention), e.g. `TF_TOKEN_app_terraform_io`."""

    hostname: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$")] = Field(
        "app.terraform.io", description="HCP Terraform, or your Terraform Enterprise host."
    )
    organization: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    """The organization that owns the workspace."""
    workspace: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,90}$")]
    """The workspace's full name."""


class TerraformOutputNames(_Model):
    """Names of the Terraform outputs that hold the foundation's network."""

    vpc_id: str = "vpc_id"
    """Output holding the VPC id."""
    private_subnet_ids: str = "private_subnets"
    """Output holding the private subnet ids (a list)."""
    public_subnet_ids: str = "public_subnets"
    """Output holding the public subnet ids (a list)."""


class TerraformStateConfig(_Model):
    """A Terraform state (format version 4) to read the foundation's network from: a local file, an S3 backend or an
    HCP Terraform / Terraform Enterprise workspace."""

    path: str | None = Field(None, description="Local state file, relative to the project directory.")
    s3: S3Location | None = Field(None, description="State in an S3 backend.")
    remote: RemoteStateLocation | None = Field(
        None, description="State in an HCP Terraform / Terraform Enterprise workspace (token from TF_TOKEN_<host>)."
    )
    outputs: TerraformOutputNames = TerraformOutputNames()
    """Names of the state's outputs to read."""


class AdoptNetworkConfig(_Model):
    """Use an existing VPC (for example from a Terraform landing zone) instead of creating one."""

    vpc_id: Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8,17}$")] | None = None
    """Existing VPC id."""
    private_subnet_ids: tuple[Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")], ...] = ()
    """Existing private subnets (at least 2, in different AZs) for nodes and pods."""
    public_subnet_ids: tuple[Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")], ...] = ()
    """Existing public subnets (only for internet-facing load balancers)."""
    terraform_state: TerraformStateConfig | None = None
    """Read the VPC and subnet ids from a Terraform state instead."""
    interface_endpoint_cidrs: tuple[Cidr, ...] = Field(
        (),
        description="Where the VPC's interface endpoints with private DNS answer (their addresses as /32, or a "
        "subnet that holds only endpoints; /24 or narrower): team pods may reach these on TCP 443. Empty: none "
        "(AWS SDK calls to such endpoints from team namespaces time out).",
    )
    s3_gateway_endpoint_id: Annotated[str, StringConstraints(pattern=r"^vpce-[0-9a-f]{8,17}$")] | None = Field(
        None,
        description="The foundation's S3 gateway endpoint on the private subnets' route tables. The lake's "
        "perimeter then admits object requests through it only (`aws:SourceVpce`); unset, through any endpoint of "
        "the VPC (`aws:SourceVpc`). Its endpoint policy is the foundation's to set (see docs/components.md, data "
        "perimeter).",
    )


class NetworkConfig(_Model):
    cidr: Cidr = Field("10.0.0.0/16", description="VPC IPv4 CIDR, RFC 1918; /16 to /22.")
    az_count: int = Field(3, ge=2, le=4, description="Availability zones to spread subnets over.")
    nat: Literal["single", "per_az"] = Field(
        "per_az", description="`single`: one NAT gateway (cheaper, one AZ failure domain); `per_az`: one per AZ."
    )
    s3_gateway_endpoint: bool = Field(True, description="Free S3 gateway endpoint on the private route tables.")
    interface_endpoints: tuple[InterfaceEndpoint, ...] = Field(
        ("ecr.api", "ecr.dkr", "sts"), description="Interface endpoints in the private subnets (billed per AZ-hour)."
    )
    flow_logs: FlowLogsConfig = FlowLogsConfig()
    """VPC flow logs."""
    s3_external_read_buckets: tuple[BucketName, ...] = Field(
        (),
        description="Buckets of other accounts that pods may read (GetObject, ListBucket) through the S3 gateway "
        "endpoint, such as a public dataset. The endpoint's policy admits this account's buckets, the AWS-owned "
        "buckets nodes need and the image registries' layer buckets, and refuses every other bucket: data cannot "
        "be copied out to a bucket of another account from inside the VPC.",
    )
    adopt: AdoptNetworkConfig | None = Field(None, description="Adopt an existing VPC instead of creating one.")

    @property
    def has_interface_endpoints(self) -> bool:
        """The VPC has interface endpoints that team pods must reach: the ones created here, or an adopted VPC's
        configured `interface_endpoint_cidrs`."""
        return bool(self.adopt.interface_endpoint_cidrs if self.adopt is not None else self.interface_endpoints)


# --- cluster --------------------------------------------------------------------------------------------------

AccessPolicy = Literal["cluster-admin", "admin", "edit", "view"]
IamPrincipalArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws(-[a-z]+)*:(iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+|sts::[0-9]{12}:assumed-role/[\w+=,.@/-]+)$"
    ),
]


class EndpointConfig(_Model):
    public: bool = Field(False, description="Expose the Kubernetes API publicly (never in prod).")
    public_cidrs: tuple[Cidr, ...] = Field((), description="Who may reach the public endpoint.")


class AdminConfig(_Model):
    principal_arn: IamPrincipalArn
    """IAM role or user ARN."""
    access_policy: AccessPolicy = "cluster-admin"
    """EKS access policy to associate."""
    namespaces: tuple[Name, ...] = Field((), description="Empty: the whole cluster; else only these namespaces.")


class RunnerConfig(_Model):
    enabled: bool | None = Field(
        None,
        description="The in-VPC runner: a CodeBuild project in the private subnets, with a cluster-admin access "
        "entry, that runs the cluster layer's `pulumi` (`mlp runner`). Default: on when the API endpoint is "
        "private, off when it is public.",
    )
    backend_url: (
        Annotated[str, StringConstraints(pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\?.*)?|https://\S+)$")]
        | None
    ) = Field(
        None,
        description="The Pulumi state backend the runner logs in to: `s3://BUCKET?region=...` (its role may use the "
        "bucket's `.pulumi/` prefix) or `https://api.pulumi.com`.",
    )
    secrets_provider: Annotated[str, StringConstraints(pattern=r"^awskms://alias/[A-Za-z0-9/_-]+(\?.*)?$")] | None = (
        Field(
            None,
            description="The stacks' secrets provider, `awskms://alias/NAME?region=...` (its role may use that key); "
            "required with an s3:// backend.",
        )
    )
    access_token_secret: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")] | None = Field(
        None, description="Secrets Manager secret holding PULUMI_ACCESS_TOKEN; required with an https:// backend."
    )
    compute_type: Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"] = Field(
        "BUILD_GENERAL1_SMALL", description="CodeBuild compute type (small: 2 vCPU, 4 GiB)."
    )
    timeout_minutes: int = Field(120, ge=30, le=480, description="A run is stopped after this long.")
    log_retention_days: RetentionDays = Field(90, description="Retention of the runner's build logs.")


class SystemNodeGroupConfig(_Model):
    instance_types: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")], ...] = (
        "m7i.large",
    )
    """EC2 instance types."""
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    """On-demand or spot."""
    ami_type: Literal[
        "AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "BOTTLEROCKET_x86_64", "BOTTLEROCKET_ARM_64"
    ] = "AL2023_x86_64_STANDARD"
    """EKS-optimized AMI family."""
    min_size: int = Field(2, ge=1, le=100)
    """Minimum nodes."""
    desired_size: int = Field(2, ge=1, le=100)
    """Nodes at creation (then left to scaling)."""
    max_size: int = Field(4, ge=1, le=100)
    """Maximum nodes."""
    disk_size_gib: int = Field(50, ge=20, le=2000)
    """Encrypted gp3 root volume size."""


AddonName = Literal["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent"]

PullThroughCacheSecretArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]+$"
    ),
]


class ImageCacheConfig(_Model):
    """ECR pull-through cache rules the cloud layer creates; the cluster layer pulls the platform's images through
    them instead of from public registries through the NAT addresses (Docker Hub rate-limits those)."""

    enabled: bool | None = Field(
        None, description="Pull the platform's images through the cache; default: on in prod, off elsewhere."
    )
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")] | None = Field(
        None,
        description="Repository prefix of the stack's cache rules (`<prefix>/quay`, `<prefix>/docker-hub`, ...), "
        "at most 19 characters; default: the cluster name in lower case. A prefix has one rule per account and "
        "region: two stacks in one account and region need two prefixes.",
    )
    credentials: dict[Literal["docker-hub", "ghcr"], PullThroughCacheSecretArn] = Field(
        default_factory=dict,
        description="Secrets Manager secret ARN per upstream that needs credentials (`docker-hub`: a Docker Hub "
        "user name and access token; `ghcr`: a GitHub user name and token with read:packages), named "
        "`ecr-pullthroughcache/...`, in the stack's account and region. Without one, that upstream gets no rule "
        "and its images keep their public reference (pulled through the NAT; Docker Hub limits anonymous pulls "
        "per address): `mlp validate` warns.",
    )

    def is_enabled(self, environment: str) -> bool:
        return self.enabled if self.enabled is not None else environment == "prod"


LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    ),
]
LabelValue = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


class ClusterOutputNames(_Model):
    """Names of the Terraform outputs that hold the adopted cluster. The defaults are terraform-aws-modules/eks's
    own output names (v21.19.0, `outputs.tf` at commit bef29c4d9523523e57fe898643fde2895106b339); a root module
    must re-export them (`output "cluster_name" { value = module.eks.cluster_name }`): only root outputs are in
    the state."""

    cluster_name: str = "cluster_name"
    """Output holding the cluster's name."""
    cluster_endpoint: str = "cluster_endpoint"
    """Output holding the API server endpoint (https://...)."""
    cluster_certificate_authority_data: str = "cluster_certificate_authority_data"
    """Output holding the cluster's CA certificate, base64-encoded."""
    cluster_security_group_id: str = "cluster_security_group_id"
    """Output holding a security group on the control plane's network interfaces (the module's cluster security
    group; `cluster_primary_security_group_id`, the one EKS creates, also works)."""
    node_security_group_id: str = "node_security_group_id"
    """Output holding the security group the cluster's nodes (and so their pods) carry."""
    cluster_version: str = "cluster_version"
    """Output holding the Kubernetes version (checked against cluster.version)."""
    oidc_provider_arn: str | None = "oidc_provider_arn"
    """Output holding the IAM OIDC provider's ARN (optional: the platform uses Pod Identity; null: not read)."""


class ClusterStateConfig(_Model):
    """A Terraform state (format version 4) to read the adopted cluster from: a local file, an S3 backend or an HCP
    Terraform / Terraform Enterprise workspace."""

    path: str | None = Field(None, description="Local state file, relative to the project directory.")
    s3: S3Location | None = Field(None, description="State in an S3 backend.")
    remote: RemoteStateLocation | None = Field(
        None, description="State in an HCP Terraform / Terraform Enterprise workspace (token from TF_TOKEN_<host>)."
    )
    outputs: ClusterOutputNames = ClusterOutputNames()
    """Names of the state's outputs to read."""


class AdoptClusterConfig(_Model):
    """Use an existing EKS cluster (for example one Terraform manages) instead of creating one. The platform then
    creates only what such a cluster lacks (Pod Identity agent, access entries, Karpenter's AWS side, the lake,
    MLflow's database, Pod Identity roles and associations) and never changes the cluster, its node groups, its
    aws-auth ConfigMap, its other add-ons or its security groups' rules (see `runner_api_ingress`)."""

    cluster_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")] | None = None
    """Explicit source: the cluster's name."""
    endpoint: Annotated[str, StringConstraints(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]+)?/?$")] | None = None
    """Explicit source: the API server endpoint."""
    certificate_authority_data: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=]{16,}$")] | None = None
    """Explicit source: the cluster's CA certificate, base64-encoded (as `aws eks describe-cluster` gives it)."""
    cluster_security_group_id: Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")] | None = None
    """Explicit source: a security group on the control plane's network interfaces."""
    node_security_group_id: Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")] | None = None
    """Explicit source: the security group the cluster's nodes carry (Karpenter's nodes get it too)."""
    oidc_provider_arn: (
        Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/\S+$")] | None
    ) = None
    """Explicit source, optional: the IAM OIDC provider (not used: the platform's workloads use Pod Identity)."""
    terraform_state: ClusterStateConfig | None = None
    """Read the cluster from a Terraform state instead of explicit values."""
    authentication_mode: Literal["API", "API_AND_CONFIG_MAP", "CONFIG_MAP"] = Field(
        "API_AND_CONFIG_MAP",
        description="The cluster's authentication mode (terraform-aws-eks's default: API_AND_CONFIG_MAP). The "
        "platform grants its roles (deployers, the in-VPC runner, Karpenter's nodes) access with access entries, "
        "so CONFIG_MAP is refused; `mlp preflight` compares the declared mode with the cluster's.",
    )
    install_pod_identity_agent: bool = Field(
        True,
        description="Install the eks-pod-identity-agent add-on (the platform's workloads get AWS credentials "
        "through Pod Identity). Offline the program cannot know whether the cluster has it: set false when it "
        "does (terraform-aws-eks `addons = { eks-pod-identity-agent = {} }`), or the create fails with "
        "ResourceInUseException.",
    )
    runner_api_ingress: bool = Field(
        False,
        description="Add one rule to the cluster security group admitting the in-VPC runner's security group on "
        "TCP 443, the only change the platform makes to the adopted cluster's security groups. Off: the "
        "foundation admits the runner (e.g. the private subnets on 443 in terraform-aws-eks "
        "`security_group_additional_rules`).",
    )
    node_role_names: tuple[Annotated[str, StringConstraints(pattern=r"^[\w+=,.@-]{1,64}$")], ...] = Field(
        (),
        description="IAM role names of the cluster's own node groups. Only with cluster.image_cache: each gets an "
        "inline policy of the platform's letting the kubelet import images under the cache's prefixes (nothing "
        "else of the role is changed).",
    )
    system_node_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"node.mlplatform.io/role": "system"},
        description="Labels of the adopted cluster's nodes that run the platform's controllers (Karpenter, "
        "operators, MLflow, Prometheus). Give the node group these labels in Terraform, or name labels it has.",
    )


class ClusterConfig(_Model):
    name: Annotated[str, StringConstraints(pattern=naming.NAME_PATTERN)] | None = Field(
        None,
        description="The stack's name: the EKS cluster's name and the prefix of every physical name the platform "
        "gives (log groups, KMS aliases, the interruption queue, secrets, bucket and database prefixes); default "
        "`mlp-<stack>`, from the stack file's name (`stacks/Pulumi.<stack>.yaml`), so every stack gets its own. "
        "Lowercase letters, digits and single hyphens, at most 24 characters (fewer with lake zone names longer "
        "than 11). Changing it replaces the cluster and everything named after it.",
    )
    version: str = Field(default_factory=lambda: version_catalog.eks().default_version)
    """Kubernetes version; add-on versions are pinned per version in the catalog."""
    deletion_protection: bool = Field(
        False,
        description="Refuse cluster deletion (required in prod); Pulumi also protects, and on destroy keeps, the "
        "control-plane (audit) and VPC flow log groups.",
    )
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "STANDARD", description="EKS upgrade policy; EXTENDED bills $0.60/h instead of $0.10/h once standard ends."
    )
    endpoint: EndpointConfig = EndpointConfig()
    """Kubernetes API endpoint access."""
    admins: tuple[AdminConfig, ...] = ()
    """IAM principals given access entries."""
    deployers: tuple[IamPrincipalArn, ...] = Field(
        (),
        description="IAM roles that run the cluster layer's `pulumi up` themselves (a cluster-admin access entry "
        "each); with a private endpoint their network must reach the VPC. The in-VPC runner needs none.",
    )
    runner: RunnerConfig = RunnerConfig()
    """The in-VPC runner that deploys the cluster layer of a private cluster."""
    log_retention_days: RetentionDays = 90
    """Retention of the control-plane log group (all five log types)."""
    system_node_group: SystemNodeGroupConfig = SystemNodeGroupConfig()
    """Managed node group for the platform's own controllers."""
    addon_versions: dict[AddonName, Annotated[str, StringConstraints(pattern=r"^v[0-9].*-eksbuild\.[0-9]+$")]] = Field(
        default_factory=dict, description="Override the pinned add-on versions."
    )
    image_cache: ImageCacheConfig = ImageCacheConfig()
    """Images through ECR pull-through cache rules of the platform's (`infra.registry`)."""
    adopt: AdoptClusterConfig | None = Field(
        None,
        description="Adopt an existing EKS cluster (explicit values or a Terraform state) instead of creating one; "
        "needs network.adopt. The control plane, node groups, add-ons and security groups stay the owner's.",
    )


# --- GPU pools ------------------------------------------------------------------------------------------------


AvailabilityZone = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9][a-z]$")]


class CapacityReservationConfig(_Model):
    id: Annotated[str, StringConstraints(pattern=r"^cr-[0-9a-f]{17}$")]
    """Capacity reservation id."""
    kind: Literal["odcr", "capacity_block"] = "odcr"
    """On-Demand Capacity Reservation or Capacity Block for ML."""
    availability_zone: AvailabilityZone | None = Field(
        None,
        description="The reservation's AZ (`us-east-1a`). node_group pools: required, the group is placed in that "
        "AZ's private subnet only. karpenter pools: optional (Karpenter reads the AZ from the reservation); when "
        "given, the pool's nodes, on-demand fallback included, stay in that AZ.",
    )
    on_demand_fallback: bool = Field(
        False,
        description="karpenter pools: when the reservation is full or has ended, launch on-demand instances of the "
        "same type (billed at on-demand rates) instead of leaving GPU pods Pending. node_group pools launch into "
        "the reservation only.",
    )
    instance_type: str | None = Field(
        None,
        description="The reservation's instance type (`p5.48xlarge`), the pool's one instance type. Required: the "
        "cost floor prices the reservation from it.",
    )
    instance_count: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Instances the reservation holds. Required: an ODCR bills its whole count at the on-demand rate "
        "whether instances run in it or not, so the cost floor includes it.",
    )
    price_usd: float | None = Field(
        None,
        gt=0,
        description="capacity_block only, required there: the upfront price paid for the block (USD; block prices "
        "vary, so state what was paid). The cost floor spreads it over the block's term.",
    )
    start_date: dt.date | None = Field(
        None, description="capacity_block only, required there: the block's first day (`2026-12-01`)."
    )
    end_date: dt.date | None = Field(
        None, description="capacity_block only, required there: the block's last day, on or after start_date."
    )


class GpuPoolConfig(_Model):
    provisioner: Literal["karpenter", "node_group"] = Field(
        "karpenter",
        description="`karpenter`: NodePool + EC2NodeClass, scaled by pending pods (with or without a capacity "
        "reservation); `node_group`: a managed node group of fixed size (min_gpus runs; no autoscaler).",
    )
    instance_families: tuple[str, ...] = Field((), description="Karpenter only: EC2 families such as g6e.")
    instance_types: tuple[str, ...] = Field((), description="Exact instance types (one for node groups).")
    capacity_types: tuple[Literal["spot", "on-demand"], ...] = ("on-demand",)
    """Karpenter capacity types; spot is preferred when both are given."""
    architecture: Literal["amd64", "arm64"] = "amd64"
    """CPU architecture of the nodes."""
    min_gpus: int = Field(0, ge=0, le=4096, description="GPUs kept running; 0 scales the pool to zero.")
    max_gpus: int = Field(..., ge=1, le=4096, description="Upper bound; becomes the NodePool nvidia.com/gpu limit.")
    ami_family: Literal["al2023", "bottlerocket"] = "al2023"
    """EKS-optimized AMI family (NVIDIA variant chosen for GPU types)."""
    ami_version: (
        Annotated[str, StringConstraints(pattern=r"^(latest|v?[0-9]{8}(\.[0-9]+)?|v?[0-9]+\.[0-9]+\.[0-9]+)$")] | None
    ) = None
    """Karpenter pools: AMI release for the alias (`v20260724`, Bottlerocket `1.64.0`); default: the catalog's pin."""
    release_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+-[0-9]{8}$")] | None = None
    """node_group pools: EKS AMI release (`1.35.3-20260724`); default: the newest when the group is created."""
    disk_size_gib: int = Field(200, ge=50, le=16000)
    """Encrypted gp3 root volume (container images of ML frameworks are large)."""
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = "WhenEmptyOrUnderutilized"
    """When Karpenter may remove or replace nodes."""
    consolidate_after: Duration = "10m"
    """How long a node must be consolidatable before it is removed."""
    expire_after: Duration = "720h"
    """Nodes are replaced after this age (fresh AMIs, no drift)."""
    weight: int | None = Field(None, ge=1, le=100)
    """NodePool priority among pools that fit a pod (higher first)."""
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Extra node labels."""
    capacity_reservation: CapacityReservationConfig | None = Field(
        None,
        description="Launch into an ODCR or Capacity Block: karpenter pools select it in their EC2NodeClass and "
        "allow the `reserved` capacity type; node_group pools target it in their launch template.",
    )
    time_slicing_replicas: int | None = Field(None, ge=2, le=16, description="Share each GPU (dev only).")
    termination_grace_period: Duration | None = Field(
        None,
        description="Karpenter pools: how long a node being drained (interruption, drift, expiry) waits for its pods "
        "before it is terminated, `karpenter.sh/do-not-disrupt` pods included, which are otherwise never evicted. "
        "Pools that run Ray training set it (`2m`, a spot notice) so that a RayJob's workers get SIGTERM, Ray drains "
        "the node for preemption, and Ray Train writes a checkpoint before the node goes. Also lets drift and expiry "
        "replace such nodes, after the same wait.",
    )
    efa: bool = Field(
        False,
        description="Elastic Fabric Adapter for multi-node training (NCCL over EFA instead of TCP): every instance "
        "type of the pool must support EFA. The nodes get all their EFA interfaces, the EFA device plugin and a "
        "security group that admits all traffic among EFA nodes; Ray workers and RayJobs on the pool request the "
        "interfaces of their GPUs and get the libfabric environment. Free (no price of its own).",
    )
    availability_zone: AvailabilityZone | None = Field(
        None,
        description="Keep the pool's nodes in this AZ (`us-east-1a`; a node group: in its private subnet). Required "
        "for an efa pool "
        "with a placement group of its own: a cluster placement group lives in one AZ, so nodes launched in "
        "parallel into other AZs would fail (on a reservation, capacity_reservation.availability_zone does this).",
    )
    placement_group: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")] | None = Field(
        None,
        description="efa pools: an existing cluster placement group to launch into, by name. Without it, an efa "
        "pool without a reservation gets a cluster placement group of its own (`<cluster>-<pool>`); on an ODCR, name "
        "the group the reservation was created in (`mlp preflight` compares them), else nodes go where the "
        "reservation is; Capacity Blocks are already placed together and take none.",
    )

    @property
    def ami_alias(self) -> str:
        """The Karpenter amiSelectorTerms alias, e.g. `al2023@v20260724`."""
        version = self.ami_version or version_catalog.ami_alias_version(self.ami_family)
        if self.ami_family == "al2023" and version != "latest" and not version.startswith("v"):
            version = f"v{version}"
        return f"{self.ami_family}@{version}"

    def candidate_types(self) -> tuple[gpu_catalog.GpuInstance, ...]:
        """Every catalog type the pool may launch: its instance types and every NVIDIA type of its families (of its
        architecture), once each, by name."""
        seen: dict[str, gpu_catalog.GpuInstance] = {}
        for itype in self.instance_types:
            spec = gpu_catalog.gpu_instance(itype)
            if spec is not None:
                seen[itype] = spec
        for family in self.instance_families:
            for spec in gpu_catalog.instances_of_family(family):
                if spec.is_nvidia and spec.arch == self.architecture:
                    seen.setdefault(spec.instance_type, spec)
        return tuple(seen[t] for t in sorted(seen))


class CpuPoolConfig(_Model):
    """Karpenter NodePool for CPU workloads (Ray CPU workers, CPU predictors); GPU types are excluded."""

    enabled: bool = True
    """Create the general CPU pool (without it, CPU workloads share the system nodes)."""
    instance_families: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*$")], ...] = (
        "m7i",
        "c7i",
        "r7i",
    )
    """EC2 families Karpenter may choose from."""
    capacity_types: tuple[Literal["spot", "on-demand"], ...] = ("spot", "on-demand")
    """Karpenter capacity types; spot is preferred when both are given."""
    architecture: Literal["amd64", "arm64"] = "amd64"
    """CPU architecture of the nodes."""
    max_vcpus: int = Field(64, ge=2, le=100_000)
    """NodePool cpu limit: the pool never grows beyond this many vCPUs."""
    disk_size_gib: int = Field(100, ge=20, le=16000)
    """Encrypted gp3 root volume."""
    consolidate_after: Duration = "5m"
    """How long a node must be consolidatable before it is removed."""
    expire_after: Duration = "720h"
    """Nodes are replaced after this age."""


# --- data lake ------------------------------------------------------------------------------------------------

ZoneName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,19}$")]


class LakeZoneConfig(_Model):
    transition_to_ia_days: int | None = Field(None, ge=30, description="Move objects to STANDARD_IA after N days.")
    transition_to_glacier_ir_days: int | None = Field(None, ge=90, description="Then to GLACIER_IR.")
    noncurrent_version_expiration_days: int = Field(90, ge=1, le=3650)
    """Delete old object versions after N days."""
    expected_size_gb: float = Field(0.0, ge=0, description="For the cost estimate only.")


def _default_zones() -> dict[str, LakeZoneConfig]:
    return {
        "raw": LakeZoneConfig(transition_to_ia_days=30, transition_to_glacier_ir_days=180),
        "curated": LakeZoneConfig(),
        "features": LakeZoneConfig(),
        "models": LakeZoneConfig(),
        "artifacts": LakeZoneConfig(transition_to_ia_days=90),
    }


IamRoleArn = Annotated[str, StringConstraints(pattern=r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")]


class LakePerimeterConfig(_Model):
    enabled: bool = Field(
        True,
        description="Deny object reads, writes and deletes on the lake's buckets that come neither through the "
        "VPC's S3 gateway endpoint nor from a break-glass role (required in prod). Consequences: credentials of "
        "the platform's roles (Pod Identity sessions, the runner's) are useless outside the VPC; nobody uploads "
        "to or downloads from the lake from a laptop (use a pod, the runner, or a break-glass role); presigned "
        "URLs work only inside the VPC (MLflow proxies artifacts, so its clients are unaffected). Bucket "
        "configuration (what `pulumi up` changes) stays reachable from anywhere.",
    )
    break_glass_role_arns: tuple[IamRoleArn, ...] = Field(
        (),
        description="IAM roles exempt from the perimeter: object access from anywhere, within what their own "
        "policies allow. Keep it to one role that only a few people may assume, with MFA, and whose use "
        "CloudTrail alerts on (see docs/components.md, data perimeter).",
    )


class DataLakeConfig(_Model):
    zones: dict[ZoneName, LakeZoneConfig] = Field(default_factory=_default_zones)
    """Lake zones by name; one bucket each."""
    protect: bool = Field(True, description="`protect` and `retainOnDelete` on buckets and the key (required in prod).")
    access_log_retention_days: int = Field(365, ge=1, le=3650)
    """Retention of S3 server access logs."""
    perimeter: LakePerimeterConfig = LakePerimeterConfig()
    """The lake's data perimeter: object access only from inside the VPC."""


# --- MLflow ---------------------------------------------------------------------------------------------------


class MlflowDatabaseConfig(_Model):
    instance_class: Annotated[str, StringConstraints(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.small"
    """RDS instance class."""
    allocated_storage_gib: int = Field(20, ge=20, le=65536)
    """Initial storage."""
    max_allocated_storage_gib: int = Field(100, ge=20, le=65536)
    """Storage autoscaling ceiling."""
    multi_az: bool = False
    """Standby in a second AZ (required in prod)."""
    backup_retention_days: int = Field(7, ge=7, le=35)
    """Automated backups kept (7 to 35 days)."""
    deletion_protection: bool = True
    """Refuse deletion (required in prod); Pulumi also protects, and on destroy keeps, the database and MLflow's
    connection and admin secrets."""


class MlflowAuthConfig(_Model):
    enabled: bool = Field(True, description="MLflow's basic-auth app; anonymous access is refused.")
    admin_secret: SecretName | None = Field(
        None,
        description="Secrets Manager secret the platform creates with the admin username and password; default "
        "`<cluster.name>/mlflow/admin`, one per stack.",
    )
    accounts_generation: int = Field(
        0,
        ge=0,
        description="Raise it to give the platform's own MLflow accounts (the registry reader, each team's) new "
        "passwords: the generated passwords, the Secrets that hold them and the accounts Job that sets them in "
        "MLflow all follow in one `pulumi up`.",
    )


class MlflowIngressConfig(_Model):
    enabled: bool = False
    """Create an internal ALB ingress (installs the AWS Load Balancer Controller)."""
    internal: bool = Field(True, description="Internal ALB only; MLflow is never exposed to the internet.")
    hostname: (
        Annotated[str, StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")] | None
    ) = None
    """Host name of the ingress (a DNS name you point at the ALB)."""
    certificate_arn: (
        Annotated[
            str, StringConstraints(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]{36}$")
        ]
        | None
    ) = None
    """ACM certificate for HTTPS (required in prod)."""


class MlflowConfig(_Model):
    enabled: bool = True
    """Deploy MLflow."""
    image: ImageRef | None = Field(None, description="Override the pinned MLflow image.")
    replicas: int = Field(1, ge=1, le=10)
    """Server replicas."""
    auth: MlflowAuthConfig = MlflowAuthConfig()
    """Authentication."""
    ingress: MlflowIngressConfig = MlflowIngressConfig()
    """Optional internal ALB."""
    database: MlflowDatabaseConfig = MlflowDatabaseConfig()
    """RDS PostgreSQL backend store."""


# --- Ray ------------------------------------------------------------------------------------------------------


class RayHeadConfig(_Model):
    cpu: Quantity = "2"
    """CPU request and limit."""
    memory: Quantity = "8Gi"
    """Memory request and limit."""
    placement: Literal["system", "general"] = Field(
        "system",
        description="`system`: the managed system nodes (no extra node); `general`: the Karpenter CPU pool "
        "(for heads larger than a system node; never consolidated away while it runs).",
    )


class RayCpuWorkersConfig(_Model):
    min_replicas: int = Field(0, ge=0)
    """Autoscaling floor (0 scales to zero)."""
    max_replicas: int = Field(4, ge=0)
    """Autoscaling ceiling."""
    cpu: Quantity = "4"
    """CPU per worker."""
    memory: Quantity = "16Gi"
    """Memory per worker."""


class RayGpuWorkersConfig(_Model):
    pool: Name = Field(..., description="Key of a `gpu_pools` entry the workers run on.")
    gpus_per_worker: int = Field(1, ge=1, le=16)
    """nvidia.com/gpu per worker."""
    min_replicas: int = Field(0, ge=0)
    """Autoscaling floor."""
    max_replicas: int = Field(2, ge=0)
    """Autoscaling ceiling."""
    cpu: Quantity = "8"
    """CPU per worker."""
    memory: Quantity = "32Gi"
    """Memory per worker."""


class RayClusterConfig(_Model):
    team: Name | None = Field(
        None,
        description="Key of a `tenants` entry: the cluster runs in the team's namespace (`team-<name>`), under the "
        "team's AWS role (its `teams/<name>/` prefix of the lake, nothing else), within the team's quota (at "
        "max_replicas it must fit), and only the team's pods reach it. Unset: a platform cluster in the `ray` "
        "namespace that no team can reach and whose role reads and writes only `ray/` in the artifacts zone.",
    )
    head: RayHeadConfig = RayHeadConfig()
    """Head pod (no GPU)."""
    cpu_workers: RayCpuWorkersConfig = RayCpuWorkersConfig()
    """CPU worker group."""
    gpu_workers: dict[Name, RayGpuWorkersConfig] = Field(default_factory=dict)
    """GPU worker groups by name, each bound to a GPU pool."""


class RayConfig(_Model):
    enabled: bool = True
    """Deploy the KubeRay operator."""
    clusters: dict[Name, RayClusterConfig] = Field(default_factory=dict)
    """Ray clusters by name (unique across namespaces)."""


Cron = Annotated[
    str, StringConstraints(pattern=r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+( \S+){4})$")
]


class RetrainConfig(_Model):
    """A team's scheduled retraining: a CronWorkflow in the team's namespace that runs `mlp-train`, then
    `mlp-evaluate-promote`."""

    schedule: Cron = Field(..., description="Cron schedule (5 fields, UTC), e.g. `0 3 * * 1`.")
    model: Name = Field(..., description="Registered model name in MLflow.")
    dataset: Annotated[str, StringConstraints(pattern=r"^(s3|file|runs|models)://?\S+$|^/\S+$")] = Field(
        ..., description="CSV dataset URI the train step reads (s3://bucket/key.csv in the lake)."
    )
    label: str = Field("label", min_length=1, description="Label column of the dataset.")
    metric: str = Field(
        "accuracy", min_length=1, description="Metric the promotion compares (train logs accuracy and f1)."
    )
    greater_is_better: bool = True
    """False for losses and errors."""
    min_improvement: float = Field(0.0, ge=0.0, description="Least improvement over the champion to promote.")
    inference_service: Name | None = Field(
        None,
        description="A registry-served InferenceService to roll out after a promotion: its model_uri names this "
        "model's `champion` alias and its promoted_by names this team.",
    )
    drift_from: Name | None = Field(
        None,
        description="Measure drift on this InferenceService's logged requests (its request_log names this team): "
        "the CronWorkflow `mlp-drift` compares them with the dataset and pushes the gauges the drift alert reads "
        "(needs observability).",
    )
    drift_schedule: Cron = Field("17 * * * *", description="When `mlp-drift` runs (5 fields, UTC).")
    on_drift: bool = Field(
        True,
        description="With drift_from, also retrain when the model's drift alert fires: Alertmanager posts it to "
        "the Argo server's event endpoint, where a WorkflowEventBinding in the team's namespace submits "
        "`mlp-retrain`.",
    )

    @property
    def retrains_on_drift(self) -> bool:
        return self.drift_from is not None and self.on_drift

    suspend: bool = False
    """Keep the CronWorkflow but start nothing."""


class RayJobTemplateConfig(_Model):
    """The cluster `mlp-train-rayjob` trains on: a KubeRay RayJob makes it for one run (head and a fixed number
    of GPU workers, no autoscaling) in the team's namespace, under the team's `workload` service account, and
    deletes it after the job."""

    pool: Name = Field(..., description="Key of a `gpu_pools` entry the workers run on (its taint is tolerated).")
    workers: int = Field(1, ge=1, le=64, description="GPU workers (fixed: the cluster exists for one job).")
    gpus_per_worker: int = Field(
        1, ge=1, le=16, description="nvidia.com/gpu per worker; the driver takes one worker's."
    )
    cpu: Quantity = Field("4", description="CPU per worker (request and limit).")
    memory: Quantity = Field("16Gi", description="Memory per worker (request and limit).")
    head_cpu: Quantity = Field(
        "1", description="The head's CPU (it runs no tasks: num-gpus 0, the driver is on a worker)."
    )
    head_memory: Quantity = Field("4Gi", description="The head's memory.")
    active_deadline_seconds: int = Field(
        14_400, ge=60, le=604_800, description="The RayJob fails (and its cluster goes) after this long."
    )


class PipelineTemplatesConfig(_Model):
    enabled: bool = False
    """Install the shipped ClusterWorkflowTemplates `mlp-train` and `mlp-evaluate-promote` (needs pipelines and
    MLflow)."""
    image: ImageRef | None = Field(
        None,
        description="Image the steps run in: this package (mlplatform) with mlflow and scikit-learn installed. "
        "No pinned image has them; required when templates are enabled, pinned by tag or digest (not `latest`).",
    )
    retrain: dict[Name, RetrainConfig] = Field(default_factory=dict)
    """Scheduled retraining per team (key: a tenant)."""
    ray_job: RayJobTemplateConfig | None = Field(
        None,
        description="Set: also install `mlp-train-rayjob`, the train step as a KubeRay RayJob on a GPU pool (needs "
        "ray.enabled: KubeRay runs it).",
    )


class PipelinesConfig(_Model):
    enabled: bool = False
    """Deploy the pipeline engine (Argo Workflows, pinned chart) in the `argo` namespace and let every team run
    workflows in its own namespace, under its own `workflow` service account (the team's AWS role), with its
    artifacts under `pipelines/<team>/` of the lake's artifacts zone. The server is in-cluster only (ClusterIP,
    `kubectl port-forward`), token auth (`client`: the caller's Kubernetes token); the workflow archive is off."""
    server_replicas: int = Field(1, ge=1, le=5, description="Replicas of the Argo server.")
    templates: PipelineTemplatesConfig = Field(default_factory=lambda: PipelineTemplatesConfig())
    """The shipped ClusterWorkflowTemplates (`mlp-train`, `mlp-evaluate-promote`) and per-team retraining."""


# --- Feature store (Feast) -------------------------------------------------------------------------------------

FeastName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""A Feast project or feature view name (Feast allows letters, digits and underscores; lower case here, as the
DynamoDB tables and IAM resources name them)."""


class FeatureStoreConfig(_Model):
    enabled: bool = False
    """Feast, pinned (the image's lock, images/feast): the registry and the offline store's files in the lake's
    `features` zone, the online store in DynamoDB (one on-demand table per feature view, encrypted with the lake
    key, deletion-protected and point-in-time recoverable in prod), an internal feature server and a scheduled
    materialization, each with its own Pod Identity role. Off unless enabled."""
    project: FeastName = Field("features", description="The Feast project (one registry).")
    feature_views: tuple[FeastName, ...] = Field(
        (),
        description="The project's feature views that are served online: the platform creates one DynamoDB table "
        "for each, and the roles reach exactly those tables (`feast apply` of a view not listed here is refused). "
        "Required when enabled.",
    )
    image: ImageRef | None = Field(
        None,
        description="The Feast image (build images/feast/Dockerfile: feast[aws] and s3fs from its hash-pinned lock). "
        "Required when enabled, pinned by tag or digest (not `latest`).",
    )
    producers: tuple[Name, ...] = Field(
        (),
        description="Teams whose role writes the project's offline files (`feast/<project>/sources/` of the "
        "features zone: their feature pipelines). Every team's role reads them and the registry (training's "
        "point-in-time joins, `get_historical_features`).",
    )
    server_replicas: int = Field(1, ge=1, le=10, description="Feature server replicas (2 or more in prod).")
    materialize_schedule: Cron = Field(
        "0 * * * *", description="When `feast materialize-incremental` runs (cron, 5 fields, UTC)."
    )
    consistent_reads: bool = Field(
        False,
        description="Strongly consistent online reads (twice the read request units of eventually consistent ones).",
    )


# --- KServe and vLLM ------------------------------------------------------------------------------------------


class ResourcesConfig(_Model):
    cpu: Quantity = "1"
    """CPU request and limit."""
    memory: Quantity = "2Gi"
    """Memory request and limit."""
    gpus: int = Field(0, ge=0, le=16)
    """nvidia.com/gpu limit."""


MODEL_URI_PATTERN = r"^models:/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9][A-Za-z0-9_-]*|/[0-9]+)$"
"""A registry URI the resolver (infra.pipelines.steps.resolve) accepts: by alias or by version number."""


class CanaryConfig(_Model):
    storage_path: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")] = Field(
        ..., description="Key prefix of the candidate model in the models zone."
    )
    traffic_percent: int = Field(..., ge=1, le=99, description="Share of requests sent to the candidate.")


class InferenceServiceConfig(_Model):
    model_format: Literal["sklearn", "xgboost", "lightgbm", "pytorch", "tensorflow", "onnx", "huggingface"] | None = (
        None
    )
    """KServe model format (one of model_format or runtime)."""
    runtime: Name | None = None
    """A ServingRuntime name."""
    storage_path: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")] | None = Field(
        None, description="Key prefix inside the models zone of the lake (one of storage_path or model_uri)."
    )
    model_uri: Annotated[str, StringConstraints(pattern=MODEL_URI_PATTERN)] | None = Field(
        None,
        description="A registry URI, `models:/<name>@<alias>` or `models:/<name>/<version>` (one of storage_path or "
        "model_uri): resolved through MLflow when the predictor's pods start (a KServe ClusterStorageContainer runs "
        "the resolver), so moving the alias and restarting the predictor serves another version without `pulumi up`.",
    )
    promoted_by: Name | None = Field(
        None,
        description="With a `models:/<name>@<alias>` model_uri: the team whose `workflow` service account may roll "
        "the predictor out after a promotion (the mlp-evaluate-promote template's `inference-service` parameter).",
    )
    request_log: Name | None = Field(
        None,
        description="Log every request (KServe's logger, mode `request`) into this team's prefix of the lake's "
        "`raw` zone, `teams/<team>/inference-logs/`, where the team's drift job (retrain.<team>.drift_from) reads "
        "them; the predictor's role may only write there. Requests may hold personal data: the team's role reads "
        "them.",
    )
    min_replicas: int = Field(1, ge=0)
    """Replica floor."""
    max_replicas: int = Field(2, ge=1)
    """Replica ceiling."""
    canary: CanaryConfig | None = None
    """A candidate model version that receives a share of the traffic (KServe Standard mode `spec.canary`)."""
    resources: ResourcesConfig = ResourcesConfig()
    """Per-replica resources."""
    gpu_pool: Name | None = None
    """GPU pool whose taint the predictor tolerates."""


class KserveConfig(_Model):
    enabled: bool = True
    """Deploy cert-manager and KServe."""
    inference_services: dict[Name, InferenceServiceConfig] = Field(default_factory=dict)
    """InferenceServices by name."""


class ModelFactsConfig(_Model):
    """Figures of the served model that config validation sizes its server with (infra/serving/fit.py): weights
    (parameters x bytes of `dtype`) plus the KV cache of one `max_model_len` sequence (2 x layers x KV heads x
    head_dim x bytes of `kv_cache_dtype` x tokens) must fit within gpu_memory_utilization x the GPU memory of
    gpus_per_replica GPUs of the pool's smallest-memory node type; vLLM's activation and CUDA-graph memory are not
    counted, so this is a lower bound. `mlp plan` prints how many full-length sequences fit at once. Each figure
    overrides the model catalog (infra/catalog/data/models.json); a model the catalog does not know is sized only
    when all five are given. Read them from the model's config.json on the hub."""

    parameters_b: float | None = Field(None, gt=0, le=10_000, description="Parameters, in billions (e.g. 70.6).")
    num_layers: int | None = Field(None, ge=1, le=1_000, description="config.json num_hidden_layers.")
    num_kv_heads: int | None = Field(
        None, ge=1, le=1_024, description="config.json num_key_value_heads (num_attention_heads without GQA)."
    )
    head_dim: int | None = Field(None, ge=1, le=4_096, description="hidden_size / num_attention_heads.")
    context_length: int | None = Field(
        None, ge=256, le=16_777_216, description="config.json max_position_embeddings: the longest max_model_len."
    )


class VllmModelConfig(_Model):
    model: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$|^models:/\S+$")] = Field(
        ...,
        description="Hub model id (org/name); for source=lake, the key prefix in the models zone; for "
        "source=registry, `models:/<name>@<alias>` (or `/<version>`), resolved through MLflow when a replica starts.",
    )
    source: Literal["lake", "hub", "registry"] = "lake"
    """`lake`: weights from the models zone; `hub`: downloaded from the hub; `registry`: the MLflow version the
    model URI names, downloaded by an init container that runs the same resolver as KServe's storage container."""
    promoted_by: Name | None = Field(
        None,
        description="With source registry and a `models:/<name>@<alias>` model: the team whose `workflow` service "
        "account may roll the server out after a promotion (the mlp-evaluate-promote template's `vllm-server` "
        "parameter); Pulumi then ignores the pod template's model-version annotation.",
    )
    hub_token_secret: SecretName | None = Field(None, description="Secrets Manager secret holding the hub token.")
    served_model_name: Name
    """Name clients pass as `model` (--served-model-name)."""
    pool: Name
    """GPU pool the replicas run on."""
    gpus_per_replica: int = Field(1, ge=1, le=16, description="Becomes --tensor-parallel-size.")
    max_model_len: int = Field(8192, ge=256, le=1_048_576)
    """--max-model-len."""
    gpu_memory_utilization: float = Field(0.9, ge=0.5, le=0.98)
    """--gpu-memory-utilization."""
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto",
        description="--dtype of the weights; `auto` loads float32, float16 and bfloat16 checkpoints in 16 bits.",
    )
    kv_cache_dtype: Literal["auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"] = Field(
        "auto", description="--kv-cache-dtype; `auto` stores the KV cache in the weights' dtype, fp8 halves it."
    )
    model_facts: ModelFactsConfig = ModelFactsConfig()
    """Model figures for the GPU memory check (override the model catalog)."""
    min_replicas: int = Field(1, ge=0)
    """Replica floor (0 scales to zero); 0 or at least 2 in staging and prod, so one serves while a node is replaced."""
    max_replicas: int = Field(2, ge=1)
    """Replica ceiling."""
    max_waiting_requests: int = Field(8, ge=1, description="Scale out above this many queued requests per replica.")
    startup_minutes: int = Field(
        30,
        ge=5,
        le=120,
        description="How long a replica may take to load the model and answer /health (the startup probe); "
        "`pulumi up` waits this plus node provisioning and the image and weights download (30 minutes).",
    )
    cpu: Quantity | None = Field(None, description="CPU request per replica (default: 3 per GPU).")
    memory: Quantity | None = Field(None, description="Memory request and limit per replica (default: 12Gi per GPU).")


class VllmConfig(_Model):
    image: ImageRef | None = Field(None, description="Override the pinned vLLM image.")
    models: dict[Name, VllmModelConfig] = Field(default_factory=dict)
    """Model servers by name."""


# --- observability, tenancy, budget ---------------------------------------------------------------------------


class AlertThresholdsConfig(_Model):
    gpu_idle_utilization_percent: float = Field(10, ge=0, le=100)
    """A GPU below this utilization counts as idle."""
    gpu_idle_minutes: int = Field(30, ge=5)
    """Idle this long fires the GPU idle (cost) alert."""
    gpu_memory_pressure_percent: float = Field(95, ge=50, le=100)
    """Framebuffer use above this fires memory pressure."""
    vllm_p95_latency_seconds: float = Field(5.0, gt=0)
    """p95 end-to-end latency SLO of vLLM."""
    vllm_queue_waiting_requests: int = Field(20, ge=1)
    """Waiting requests that count as queue saturation."""
    pending_gpu_pod_minutes: int = Field(15, ge=1)
    """GPU pods Pending this long fire an alert."""
    feature_server_error_percent: float = Field(5, gt=0, le=100)
    """Failed online feature requests above this share over 10 minutes fire FeatureServerErrors (feature store)."""


AlertSeverity = Literal["critical", "warning", "info"]
AlertDuration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(ms|s|m|h|d|w|y))+$")]
"""A Prometheus duration as Alertmanager reads it: `30s`, `5m`, `4h`, `1h30m`."""
LabelName = Annotated[str, StringConstraints(pattern=r"^([a-zA-Z_][a-zA-Z0-9_]*|\.\.\.)$")]


def _unique_severities(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        raise ValueError("needs at least one severity (critical, warning, info); to send nothing, turn it off")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"lists {', '.join(repeated)} more than once")
    return values


Severities = Annotated[tuple[AlertSeverity, ...], AfterValidator(_unique_severities)]


def _secret_name_not_url(value: Any) -> Any:
    # Runs before the name pattern, whose message would echo the value: a URL here is the secret itself.
    if isinstance(value, str) and "://" in value:
        raise ValueError(
            "looks like the webhook URL itself; store it in AWS Secrets Manager and give the secret's name"
        )
    return value


class SnsAlertsConfig(_Model):
    enabled: bool = False
    """Publish alerts to an SNS topic the platform creates (KMS-encrypted, TLS only); subscribe to it yourself."""
    severities: Severities = ("critical", "warning")
    """Alert severities published to the topic."""
    send_resolved: bool = True
    """Also publish when an alert resolves."""


class WebhookAlertsConfig(_Model):
    secret: Annotated[SecretName, BeforeValidator(_secret_name_not_url)] = Field(
        ...,
        description="Secrets Manager secret whose value is the webhook's https:// URL; Alertmanager's pod reads it "
        "into an in-memory file at start, so the URL is never in the config, the Pulumi state or a Kubernetes object.",
    )
    severities: Severities = ("critical",)
    """Alert severities posted to the webhook."""
    send_resolved: bool = True
    """Also post when an alert resolves."""


class AlertingConfig(_Model):
    sns: SnsAlertsConfig = SnsAlertsConfig()
    """The platform's SNS topic as a receiver."""
    webhook: WebhookAlertsConfig | None = None
    """A webhook (chat, paging or incident tool) as a receiver."""
    group_by: tuple[LabelName, ...] = ("alertname", "namespace")
    """Alerts with equal values of these labels go out as one notification."""
    group_wait: AlertDuration = "30s"
    """Wait this long for more alerts of a new group before the first notification."""
    group_interval: AlertDuration = "5m"
    """Wait this long before notifying about alerts added to a group already notified."""
    repeat_interval: AlertDuration = "4h"
    """Send a notification again this often while its alerts keep firing."""


class ContainerLogsConfig(_Model):
    enabled: bool = Field(
        True,
        description="Ship every pod's logs to CloudWatch Logs (Fluent Bit on every node): one log group for the "
        "platform's namespaces and one per team, encrypted with the platform's logs key. Independent of "
        "`observability.enabled` (the monitoring stack). Ingestion is billed per GB ($0.50/GB in us-east-1), not "
        "estimated by `mlp cost`.",
    )
    retention_days: RetentionDays = 30
    """How long container logs are kept."""


class ObservabilityConfig(_Model):
    enabled: bool = True
    """Deploy the monitoring stack."""
    prometheus_retention: Annotated[str, StringConstraints(pattern=r"^[0-9]+(h|d|w|y)$")] = "15d"
    """Prometheus retention."""
    prometheus_storage_gib: int = Field(50, ge=10, le=16000)
    """Prometheus gp3 volume size."""
    grafana: bool = True
    """Deploy Grafana (never exposed publicly)."""
    alerts: AlertThresholdsConfig = AlertThresholdsConfig()
    """Alert thresholds."""
    alerting: AlertingConfig = AlertingConfig()
    """Where Alertmanager sends alerts, by severity (staging and prod need at least one receiver)."""
    logs: ContainerLogsConfig = ContainerLogsConfig()
    """Container logs to CloudWatch Logs."""


class TenantQuotaConfig(_Model):
    gpus: int = Field(0, ge=0)
    """requests.nvidia.com/gpu."""
    cpu: Quantity = "16"
    """requests.cpu."""
    memory: Quantity = "64Gi"
    """requests.memory."""
    storage: Quantity = "500Gi"
    """requests.storage."""


class TenantConfig(_Model):
    groups: tuple[Annotated[str, StringConstraints(min_length=1, max_length=128)], ...] = Field(
        ..., min_length=1, description="Kubernetes RBAC groups (EKS access entry groups) of the team."
    )
    quota: TenantQuotaConfig = TenantQuotaConfig()
    """ResourceQuota of the team's namespace."""
    principal_arns: tuple[IamPrincipalArn, ...] = Field(
        (), description="IAM roles given an EKS access entry in the team's groups (none: map them yourself)."
    )
    cost_center: str | None = Field(None, description="Defaults to the stack's cost-center tag.")
    internet_egress: tuple[Cidr, ...] = Field(
        (),
        description="Public address blocks the team's pods may open TCP 443 to (through the NAT gateways). "
        "Empty (the default): no internet at all; the team's pods reach its namespace, DNS, the platform's "
        "services, S3 through the gateway endpoint (the lake, within its role), the VPC's interface endpoints and "
        "the Pod Identity agent. Consequences of empty: `pip install`, Hugging Face downloads and git clones fail "
        "from team pods (bake dependencies into images, stage models in the lake). Each block you add is a path "
        "out for the team's data: name package mirrors or proxies, not 0.0.0.0/0 (refused in prod).",
    )


class IngressConfig(_Model):
    internet_facing_namespaces: tuple[Name, ...] = Field(
        (),
        description="Namespaces whose Ingresses (IngressClass `alb-internet-facing`) and LoadBalancer Services may "
        "get an internet-facing load balancer. Everywhere else every load balancer is internal, whatever an "
        "Ingress or Service asks. Not in prod; never a team namespace (teams cannot write Ingresses).",
    )


class BudgetConfig(_Model):
    monthly_usd: float = Field(..., gt=0, description="Monthly budget for the stack at full scale.")
    max_gpus: int = Field(..., ge=0, description="Upper bound for the sum of all pools' max_gpus.")


TagKey = Annotated[str, StringConstraints(min_length=1)]


class PlatformConfig(_Model):
    """The whole platform of one stack."""

    environment: Environment
    """Environment profile; prod enables the strict checks (private API, protection, Multi-AZ)."""
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")]
    """AWS region of the stack (the standard `aws:region` key)."""
    aws_account_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")] | None = Field(
        None, description="Refuse to deploy into any other account (provider allowedAccountIds)."
    )
    tags: dict[TagKey, str]
    """Cost tags on every AWS resource (provider defaultTags and explicitly where those do not reach)."""
    network: NetworkConfig = NetworkConfig()
    """The VPC: created from a CIDR, or adopted."""
    cluster: ClusterConfig = ClusterConfig()
    """The EKS cluster."""
    gpu_pools: dict[Name, GpuPoolConfig] = Field(default_factory=dict)
    """GPU node pools by name."""
    cpu_pool: CpuPoolConfig = CpuPoolConfig()
    """The general CPU node pool (Karpenter)."""
    data_lake: DataLakeConfig = DataLakeConfig()
    """The S3 data lake."""
    mlflow: MlflowConfig = MlflowConfig()
    """MLflow tracking server and model registry."""
    ray: RayConfig = RayConfig()
    """KubeRay operator and Ray clusters."""
    pipelines: PipelinesConfig = PipelinesConfig()
    """The pipeline engine (Argo Workflows); off unless enabled."""
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    """Feast on the lake and DynamoDB; off unless enabled."""
    kserve: KserveConfig = KserveConfig()
    """KServe (RawDeployment mode) and InferenceServices."""
    vllm: VllmConfig = VllmConfig()
    """vLLM OpenAI-compatible model servers."""
    observability: ObservabilityConfig = ObservabilityConfig()
    """kube-prometheus-stack, DCGM exporter, dashboards and alerts."""
    tenants: dict[Name, TenantConfig] = Field(default_factory=dict)
    """Teams: namespace, quota, network policies, RBAC and a lake prefix each."""
    ingress: IngressConfig = IngressConfig()
    """Load balancers made from Ingresses and Services (the AWS Load Balancer Controller)."""
    budget: BudgetConfig
    """Budget guardrails checked by config validation and the budget policy."""
    aws: AwsProviderSettings = AwsProviderSettings()
    """The AWS provider's settings: the standard `aws:*` keys besides `aws:region` (`infra.aws_provider`)."""

    # Not a config key: the stack file's name, set by `validate_config`; names derive from it (`infra.naming`).
    _stack: str | None = PrivateAttr(None)

    @property
    def stack(self) -> str:
        """The stack's name (`stacks/Pulumi.<stack>.yaml`); the environment's name for a config validated without
        one (a bare config map in a test)."""
        return self._stack or self.environment

    @property
    def cluster_name(self) -> str:
        """The stack's name (`infra.naming`): configured, an adopted cluster's explicit name, or `mlp-<stack>` (the
        label of the platform's resources; a cluster adopted from a state must then have that name or set
        cluster.name)."""
        adopt = self.cluster.adopt
        explicit = adopt.cluster_name if adopt is not None else None
        return self.cluster.name or explicit or naming.default_name(self.stack)

    @property
    def mlflow_admin_secret(self) -> str:
        """The MLflow admin secret's name: configured, or one per stack beside the database secret."""
        return self.mlflow.auth.admin_secret or naming.admin_secret_name(self.cluster_name)

    @property
    def adopts_cluster(self) -> bool:
        return self.cluster.adopt is not None

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def serving_keeps_up(self) -> bool:
        """Staging and prod: vLLM servers keep serving through rollouts (surge) and node consolidation (two replicas
        or more when always on, one PodDisruptionBudget); dev replaces in place and may run one replica."""
        return self.environment != "dev"

    @property
    def installs_load_balancer_controller(self) -> bool:
        """The AWS Load Balancer Controller is installed: for MLflow's ingress, or for namespaces allowed
        internet-facing load balancers."""
        return (self.mlflow.enabled and self.mlflow.ingress.enabled) or bool(self.ingress.internet_facing_namespaces)

    @property
    def runs_in_vpc_runner(self) -> bool:
        """The cluster layer is deployed by the in-VPC runner (default for a private endpoint)."""
        enabled = self.cluster.runner.enabled
        return (not self.cluster.endpoint.public) if enabled is None else enabled


SECTIONS: tuple[str, ...] = tuple(PlatformConfig.model_fields)

# --- loading --------------------------------------------------------------------------------------------------


def sections_from_stack_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Split a stack's `config:` map into the platform's raw sections, flagging keys we do not know."""
    raw: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    provider: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == "aws" and name != "region":
            provider[name] = value  # the AWS provider's settings, checked as a whole below
            continue
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            issues.append(
                ConfigIssue(
                    (name,) if namespace == NAMESPACE and name in SECTIONS else (str(key),),
                    "is an encrypted secret; the stack file holds no secrets: store the value in AWS Secrets "
                    "Manager and put the secret's name in the config",
                )
            )
            continue
        if namespace == "aws" and name == "region":
            raw["region"] = value
        elif namespace == NAMESPACE:
            if name not in SECTIONS or name in ("region", "aws"):
                allowed = _allowed(SECTIONS, "region", "aws")
                issues.append(ConfigIssue((str(key),), f"unknown key `{key}`; allowed: {allowed}"))
            else:
                raw[name] = value
    settings, provider_issues = parse_settings(provider)
    issues.extend(provider_issues)
    if settings is not None:
        raw["aws"] = settings
    return raw, issues


def _allowed(names: Iterable[str], *skip: str) -> str:
    return ", ".join(n for n in names if n not in skip)


def validate_config(
    config: Mapping[str, Any],
    source: str,
    line_of: typing.Callable[[Path], int | None] | None = None,
    *,
    stack: str | None = None,
) -> PlatformConfig:
    """Validate a stack's `config:` map and return the platform config, or raise ConfigError with every issue.

    `stack` names the stack (its physical names derive from it); default: read from `source` when that is a stack
    file (`.../Pulumi.<stack>.yaml`)."""
    raw, issues = sections_from_stack_config(config)
    result: PlatformConfig | None = None
    try:
        result = PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        issues.extend(_issues_from_pydantic(exc))
    if result is not None:
        result._stack = stack or stack_of_source(source)
    if result is not None and not issues:
        issues.extend(_semantic_checks(result))
    if issues:
        if line_of is not None:
            issues = [ConfigIssue(i.path, i.message, line_of(i.path)) for i in issues]
        raise ConfigError(source, issues)
    assert result is not None
    return result


def stack_of_source(source: str) -> str | None:
    """The stack a stack file is for (`stacks/Pulumi.dev.yaml` -> `dev`), or None for another source."""
    match = re.search(r"(?:^|/)Pulumi\.([^/]+)\.yaml$", source)
    return match.group(1) if match else None


def _issues_from_pydantic(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        raw_loc = tuple(err["loc"])
        is_map_key = "[key]" in raw_loc
        # pydantic reports union members, map keys and function validators as path parts; drop them
        loc: Path = tuple(p for p in raw_loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        kind = err["type"]
        msg = str(err["msg"])
        if kind == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            msg = f"unknown key `{loc[-1]}`; allowed: {', '.join(allowed)}" if allowed else "unknown key"
        elif kind == "missing":
            msg = "is required" + _describe(loc)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif kind == "string_pattern_mismatch":
            hint = (
                "must be a lowercase DNS label (a-z, 0-9, -), at most 40 characters"
                if is_map_key
                else (_pattern_hint(loc))
            )
            msg = f"{_show(err.get('input'))} is not valid: {hint}"
        elif kind == "string_too_long" and is_map_key:
            msg = "must be a lowercase DNS label (a-z, 0-9, -), at most 40 characters"
        elif isinstance(err.get("input"), (str, int, float, bool)):
            msg = f"{msg} (got {_show(err['input'])})"
        issues.append(ConfigIssue(loc, msg))
    return issues


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


_PATTERN_HINTS: dict[str, str] = {
    "region": "an AWS region such as us-east-1",
    "aws_account_id": "12 digits",
    "principal_arn": "an IAM role or user ARN (arn:aws:iam::123456789012:role/name)",
    "consolidate_after": "a duration such as 30s, 10m or 1h30m, or Never",
    "expire_after": "a duration such as 720h, or Never",
    "ami_version": "an AMI release such as v20260724 (Bottlerocket: 1.64.0; `latest` is refused in prod)",
    "release_version": "an EKS AMI release such as 1.35.3-20260724",
    "image": "an image with an explicit tag or digest",
    "docker-hub": "a Secrets Manager secret ARN named ecr-pullthroughcache/... "
    "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:ecr-pullthroughcache/NAME)",
    "ghcr": "a Secrets Manager secret ARN named ecr-pullthroughcache/... "
    "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:ecr-pullthroughcache/NAME)",
    "prefix": "an ECR repository prefix: lowercase letters and digits, with single . _ - between them",
    "id": "a capacity reservation id such as cr-0123456789abcdef0",
    "availability_zone": "an availability zone name such as us-east-1a",
    "vpc_id": "a VPC id such as vpc-0123456789abcdef0",
    "name": naming.NAME_RULE,
    "prometheus_retention": "a Prometheus duration such as 15d",
    "hostname": "a DNS name such as mlflow.ml.example.com",
    "certificate_arn": "an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/UUID)",
    "break_glass_role_arns": "an IAM role ARN (arn:aws:iam::123456789012:role/name)",
    "s3_external_read_buckets": "an S3 bucket name (3 to 63 characters: a-z, 0-9, . and -)",
    "s3_gateway_endpoint_id": "a VPC endpoint id such as vpce-0123456789abcdef0",
    "internet_facing_namespaces": "a lowercase DNS label (a-z, 0-9, -), at most 40 characters",
}


def _pattern_hint(loc: Path) -> str:
    for part in reversed(loc):
        if isinstance(part, str) and part in _PATTERN_HINTS:
            return f"must be {_PATTERN_HINTS[part]}"
    parent = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if parent in {"cpu", "memory", "storage"}:
        return "must be a Kubernetes quantity such as 500m, 4 or 16Gi"
    if parent in {"served_model_name", "pool", "gpu_pool", "runtime", "namespaces"}:
        return "must be a lowercase DNS label (a-z, 0-9, -), at most 40 characters"
    if parent == "labels":
        return "must be a valid Kubernetes label value (63 characters: letters, digits, - _ .)"
    if parent in {"admin_secret", "hub_token_secret", "secret"}:
        return "must be a Secrets Manager secret name or ARN"
    return "has characters or a format that is not allowed here"


def _describe(loc: Path) -> str:
    model = _model_at(loc[:-1])
    if model is None or not isinstance(loc[-1], str):
        return ""
    info = model.model_fields.get(loc[-1])
    return f" ({info.description})" if info and info.description else ""


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            tp = members[0] if len(members) == 1 else tp
            if len(members) != 1:
                return tp
        else:
            return tp


def _model_at(loc: Path) -> type[BaseModel] | None:
    """The model class found at a key path, walking through dicts and tuples."""
    tp: Any = PlatformConfig
    hints_cache: dict[type, dict[str, Any]] = {}
    i = 0
    while i < len(loc):
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            hints = hints_cache.setdefault(tp, typing.get_type_hints(tp, include_extras=True))
            if loc[i] not in hints:
                return None
            tp = hints[str(loc[i])]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is tuple:
            tp = get_args(tp)[0]
        else:
            return None
        i += 1
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _allowed_keys(loc: Path) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model else []


# --- rules that span fields -----------------------------------------------------------------------------------


def _semantic_checks(cfg: PlatformConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []

    def add(path: Path, message: str) -> None:
        issues.append(ConfigIssue(path, message))

    _check_tags(cfg, add)
    _check_network(cfg, add)
    _check_cluster(cfg, add)
    _check_gpu_pools(cfg, add)
    _check_services(cfg, add)
    _check_ray_teams(cfg, add)
    _check_pipelines(cfg, add)
    _check_pipeline_templates(cfg, add)
    _check_feature_store(cfg, add)
    _check_alerting(cfg, add)
    _check_perimeter(cfg, add)
    _check_image_cache(cfg, add)
    _check_vllm_fit(cfg, add)
    _check_name(cfg, add)
    issues.extend(
        stack_issues(cfg.aws, aws_account_id=cfg.aws_account_id, platform_tags=(*cfg.tags, *PLATFORM_TAG_KEYS))
    )
    if not cfg.data_lake.protect and cfg.is_prod:
        add(("data_lake", "protect"), "must be true in prod (buckets and the lake key are protected and retained)")
    return issues


Add = typing.Callable[[Path, str], None]


def _check_tags(cfg: PlatformConfig, add: Add) -> None:
    missing = [k for k in REQUIRED_COST_TAGS if not cfg.tags.get(k, "").strip()]
    if missing:
        add(("tags",), f"missing required cost tag(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COST_TAGS)}")
    env_tag = cfg.tags.get("environment")
    if env_tag and env_tag != cfg.environment:
        add(("tags", "environment"), f"must equal environment ({env_tag!r} != {cfg.environment!r})")
    for key, value in cfg.tags.items():
        for problem in tag_problems(key, value):
            add(("tags", key), problem)
        if key in PLATFORM_TAG_KEYS:
            add(("tags", key), f"is set by the platform itself; remove it (reserved: {', '.join(PLATFORM_TAG_KEYS)})")
    # the platform adds its own tags, and GPU pools add one more; all must fit in AWS's 50
    budget = MAX_AWS_TAGS - len(PLATFORM_TAG_KEYS) - 1
    if len(cfg.tags) > budget:
        add(
            ("tags",),
            f"has {len(cfg.tags)} tags; at most {budget} (AWS allows {MAX_AWS_TAGS} per resource and the "
            f"platform adds {len(PLATFORM_TAG_KEYS) + 1})",
        )


def _duration_seconds(value: str) -> float:
    """A Prometheus duration (already checked by its pattern) in seconds."""
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * unit[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", value))


def _check_alerting(cfg: PlatformConfig, add: Add) -> None:
    obs = cfg.observability
    alerting = obs.alerting
    at: Path = ("observability", "alerting")
    receivers = [key for key, on in (("sns", alerting.sns.enabled), ("webhook", alerting.webhook is not None)) if on]
    if not obs.enabled:
        for key in receivers:
            add((*at, key), "needs observability.enabled (Alertmanager, in the monitoring stack, sends the alerts)")
        return
    if not receivers and cfg.environment != "dev":
        add(
            at,
            f"{cfg.environment} needs at least one alert receiver, or its alerts reach nobody: set sns.enabled: true "
            "(an SNS topic the platform creates; subscribe to it) and/or webhook.secret (a Secrets Manager secret "
            "holding a webhook URL)",
        )
    if _duration_seconds(alerting.repeat_interval) < _duration_seconds(alerting.group_interval):
        add(
            (*at, "repeat_interval"),
            f"must be at least group_interval ({alerting.repeat_interval} < {alerting.group_interval})",
        )


_NOT_INTERNET = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8")
"""RFC 1918, shared address space (VPC secondary ranges), link-local (IMDS, the Pod Identity agent), loopback."""


def _check_perimeter(cfg: PlatformConfig, add: Add) -> None:
    """The lake's perimeter needs an S3 gateway endpoint (a created VPC's, or any of an adopted VPC's); prod keeps
    it on. Team internet egress and internet-facing load balancers: public blocks, never wide open in prod."""
    perimeter = cfg.data_lake.perimeter
    if not perimeter.enabled and cfg.is_prod:
        add(("data_lake", "perimeter", "enabled"), "must be true in prod (lake objects only from inside the VPC)")
    if perimeter.enabled and cfg.network.adopt is None and not cfg.network.s3_gateway_endpoint:
        add(
            ("data_lake", "perimeter", "enabled"),
            "needs network.s3_gateway_endpoint: true (object requests must come through the VPC's S3 gateway "
            "endpoint); or set data_lake.perimeter.enabled: false (not in prod)",
        )
    for team, tenant in cfg.tenants.items():
        for i, block in enumerate(tenant.internet_egress):
            net = ipaddress.ip_network(block)
            if net.prefixlen and any(net.overlaps(ipaddress.ip_network(r)) for r in _NOT_INTERNET):
                add(
                    ("tenants", team, "internet_egress", i),
                    f"{block} is not a public block; team pods never reach private or link-local addresses this way "
                    "(the VPC, IMDS and the platform's services have their own rules)",
                )
            elif net.prefixlen == 0 and cfg.is_prod:
                add(
                    ("tenants", team, "internet_egress", i),
                    "0.0.0.0/0 is refused in prod: name the destinations (package mirrors, an egress proxy)",
                )
    if cfg.ingress.internet_facing_namespaces:
        at: Path = ("ingress", "internet_facing_namespaces")
        if cfg.is_prod:
            add(at, "must be empty in prod: no public endpoints")
        teams = {f"team-{t}" for t in cfg.tenants}
        for i, ns in enumerate(cfg.ingress.internet_facing_namespaces):
            if ns in teams:
                add((*at, i), f"{ns} is a team namespace; teams cannot write Ingresses or LoadBalancer Services")
        if (
            cfg.network.adopt is not None
            and not cfg.network.adopt.public_subnet_ids
            and (cfg.network.adopt.terraform_state is None)
        ):
            add(at, "needs network.adopt.public_subnet_ids (internet-facing load balancers live in public subnets)")


def _check_network(cfg: PlatformConfig, add: Add) -> None:
    from mlplatform.infra.network.cidr import (  # pure; imported late to keep this module light
        SubnetPlanError,
        plan_subnets,
    )

    net = cfg.network
    if net.adopt is not None:
        adopt = net.adopt
        explicit = adopt.vpc_id is not None or adopt.private_subnet_ids or adopt.public_subnet_ids
        if explicit and adopt.terraform_state is not None:
            add(("network", "adopt"), "give either vpc_id and subnet ids, or terraform_state, not both")
        elif not explicit and adopt.terraform_state is None:
            add(("network", "adopt"), "give vpc_id with private_subnet_ids, or terraform_state")
        elif explicit:
            if adopt.vpc_id is None:
                add(("network", "adopt", "vpc_id"), "is required when subnet ids are given")
            if len(adopt.private_subnet_ids) < 2:
                add(("network", "adopt", "private_subnet_ids"), "needs at least 2 subnets in different AZs (EKS)")
        if adopt.terraform_state is not None:
            state = adopt.terraform_state
            if sum(x is not None for x in (state.path, state.s3, state.remote)) != 1:
                add(("network", "adopt", "terraform_state"), "give exactly one of path, s3 or remote")
        for i, block in enumerate(adopt.interface_endpoint_cidrs):
            if ipaddress.ip_network(block).prefixlen < 24:
                add(
                    ("network", "adopt", "interface_endpoint_cidrs", i),
                    f"{block} is wider than /24; team pods may reach it on 443, so give the endpoints' addresses "
                    "(/32 each) or a subnet that holds only endpoints",
                )
        return
    network = ipaddress.ip_network(net.cidr)
    assert isinstance(network, ipaddress.IPv4Network)
    if not (network.is_private and not network.is_loopback and not network.is_link_local):
        add(("network", "cidr"), f"{net.cidr} is not a private range; use RFC 1918 space such as 10.0.0.0/16")
    if network.prefixlen < 16 or network.prefixlen > 22:
        add(("network", "cidr"), f"prefix /{network.prefixlen} is not allowed; a VPC CIDR here is /16 to /22")
    else:
        try:
            plan_subnets(network, net.az_count)
        except SubnetPlanError as exc:
            add(("network", "cidr"), str(exc))


def image_cache_prefix(cfg: PlatformConfig) -> str:
    """The stack's cache prefix: configured, or the cluster name in lower case."""
    return cfg.cluster.image_cache.prefix or cfg.cluster_name.lower()


def _check_name(cfg: PlatformConfig, add: Add) -> None:
    """The stack's name must fit every physical name made from it (`infra.naming`)."""
    name = cfg.cluster_name
    problem = naming.name_problem(name, cfg.data_lake.zones)
    if problem is None:
        return
    adopt = cfg.cluster.adopt
    if cfg.cluster.name:
        add(("cluster", "name"), f"{name!r} {problem}")
    elif adopt is not None and adopt.cluster_name:
        add(
            ("cluster", "adopt", "cluster_name"),
            f"{name!r} prefixes the physical names of the platform's own resources too, so it {problem}",
        )
    else:
        add(
            ("cluster", "name"),
            f"the default {name!r} ({naming.DEFAULT_PREFIX!r} and the stack name {cfg.stack!r}) {problem}; set "
            "cluster.name, or name the stack with lowercase letters, digits and hyphens",
        )


def _check_image_cache(cfg: PlatformConfig, add: Add) -> None:
    cache = cfg.cluster.image_cache
    at: Path = ("cluster", "image_cache")
    if not cache.is_enabled(cfg.environment):
        return
    prefix = image_cache_prefix(cfg)
    longest = max(len(f"{prefix}/{u}") for u in ("ecr-public", "docker-hub"))
    if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", prefix) or longest > 30:
        add(
            (*at, "prefix"),
            f"{prefix!r} ({'configured' if cache.prefix else 'from the cluster name'}) cannot prefix the cache "
            "rules: ECR allows 30 characters for `<prefix>/docker-hub`, so at most 19 of a-z, 0-9 and . _ - "
            "between them; set cluster.image_cache.prefix",
        )
    for upstream, arn in cache.credentials.items():
        parts = arn.split(":")
        if parts[3] != cfg.region:
            add(
                (*at, "credentials", upstream),
                f"must be a secret in the stack's region {cfg.region} (ECR reads it from the rule's region), "
                f"not {parts[3]}",
            )
        if cfg.aws_account_id and parts[4] != cfg.aws_account_id:
            add((*at, "credentials", upstream), f"must be a secret of account {cfg.aws_account_id}, not {parts[4]}")


def _check_cluster(cfg: PlatformConfig, add: Add) -> None:
    cluster = cfg.cluster
    eks = version_catalog.eks()
    if cluster.version not in eks.versions:
        add(
            ("cluster", "version"),
            f"{cluster.version!r} is not a version this blueprint pins add-ons for; "
            f"allowed: {', '.join(sorted(eks.versions))}",
        )
    if cfg.is_prod and not cluster.deletion_protection:
        add(("cluster", "deletion_protection"), "must be true in prod")
    ep = cluster.endpoint
    if ep.public and cfg.is_prod:
        add(
            ("cluster", "endpoint", "public"),
            "must be false in prod: the API endpoint is private (reach it over VPN, Direct Connect or a bastion)",
        )
    if ep.public and not ep.public_cidrs:
        add(("cluster", "endpoint", "public_cidrs"), "a public endpoint needs the CIDRs allowed to reach it")
    if not ep.public and ep.public_cidrs:
        add(("cluster", "endpoint", "public_cidrs"), "only applies when endpoint.public is true")
    for i, cidr in enumerate(ep.public_cidrs):
        if cidr == "0.0.0.0/0" and cfg.environment != "dev":
            add(
                ("cluster", "endpoint", "public_cidrs", i),
                "0.0.0.0/0 opens the API to the internet; allowed only in dev",
            )
    seen: set[str] = set()
    for i, admin in enumerate(cluster.admins):
        if admin.principal_arn in seen:
            add(("cluster", "admins", i, "principal_arn"), "is listed twice (one access entry per principal)")
        seen.add(admin.principal_arn)
    for i, arn in enumerate(cluster.deployers):
        if arn in seen:
            add(
                ("cluster", "deployers", i),
                "is also in cluster.admins or listed twice (one access entry per principal)",
            )
        if ":assumed-role/" in arn:
            add(("cluster", "deployers", i), "must be the role's ARN (arn:aws:iam::ACCOUNT:role/NAME), not a session")
        seen.add(arn)
    _check_runner(cfg, add)
    if cluster.adopt is not None:
        _check_adopted_cluster(cfg, add)
        return
    ng = cluster.system_node_group
    if not ng.min_size <= ng.desired_size <= ng.max_size:
        add(
            ("cluster", "system_node_group"),
            f"needs min_size <= desired_size <= max_size ({ng.min_size} <= {ng.desired_size} <= {ng.max_size})",
        )
    arm = ng.ami_type.startswith(("AL2023_ARM", "BOTTLEROCKET_ARM"))
    for i, itype in enumerate(ng.instance_types):
        graviton = bool(re.match(r"^[a-z]+[0-9]+[a-z]*g[a-z]*\.", itype))
        if graviton != arm:
            add(
                ("cluster", "system_node_group", "instance_types", i),
                f"{itype} does not match ami_type {ng.ami_type} ({'arm64' if graviton else 'x86_64'} instance)",
            )


# What an adopted cluster's owner decides, not this program: setting it is an error, not silently ignored.
_OWNER_DECIDES = {
    "system_node_group": "its node groups are its owner's (name their labels in cluster.adopt.system_node_labels)",
    "support_type": "its upgrade policy is its owner's",
    "log_retention_days": "its control-plane log group is its owner's",
}


def _check_adopted_cluster(cfg: PlatformConfig, add: Add) -> None:
    cluster = cfg.cluster
    adopt = cluster.adopt
    assert adopt is not None
    at: Path = ("cluster", "adopt")
    explicit_keys = ("cluster_name", "endpoint", "certificate_authority_data", "cluster_security_group_id")
    explicit = [k for k in (*explicit_keys, "node_security_group_id", "oidc_provider_arn") if getattr(adopt, k)]
    state = adopt.terraform_state
    if explicit and state is not None:
        add(at, f"give either explicit values ({', '.join(explicit)}) or terraform_state, not both")
    elif not explicit and state is None:
        add(
            at,
            "give the cluster's cluster_name, endpoint, certificate_authority_data, cluster_security_group_id "
            "and node_security_group_id, or a terraform_state to read them from",
        )
    elif explicit:
        for key in (*explicit_keys, "node_security_group_id"):
            if getattr(adopt, key) is None:
                add((*at, key), "is required with explicit values (or read the cluster from a terraform_state)")
    if state is not None:
        given = [k for k in ("path", "s3", "remote") if getattr(state, k) is not None]
        if len(given) != 1:
            add((*at, "terraform_state"), "give exactly one of path, s3 or remote")
    if cfg.network.adopt is None:
        add(
            at,
            "needs network.adopt: an adopted cluster lives in a VPC this program did not create (give the "
            "cluster's VPC and subnets, e.g. from the same Terraform state)",
        )
    if adopt.authentication_mode == "CONFIG_MAP":
        add(
            (*at, "authentication_mode"),
            "CONFIG_MAP has no access entries, and the platform grants its roles access with them: switch the "
            "cluster to API_AND_CONFIG_MAP (terraform-aws-eks input `authentication_mode`; the aws-auth ConfigMap "
            "keeps working) and declare it here",
        )
    if cluster.name and adopt.cluster_name and cluster.name != adopt.cluster_name:
        add(
            ("cluster", "name"),
            f"is {cluster.name!r} but cluster.adopt.cluster_name is {adopt.cluster_name!r}; give one of them",
        )
    for key, why in _OWNER_DECIDES.items():
        if key in cluster.model_fields_set:
            add(("cluster", key), f"does not apply to an adopted cluster: {why}; remove it")
    for addon in cluster.addon_versions:
        if addon != "eks-pod-identity-agent":
            add(
                ("cluster", "addon_versions", addon),
                "an adopted cluster's add-ons are its owner's; only "
                "eks-pod-identity-agent (installed when cluster.adopt.install_pod_identity_agent) may be pinned",
            )
    for name, pool in cfg.gpu_pools.items():
        if pool.provisioner == "node_group":
            add(
                ("gpu_pools", name, "provisioner"),
                "node_group creates a managed node group, and an adopted "
                "cluster's node groups are its owner's: use karpenter (a reservation works there too), or add the "
                "node group in Terraform",
            )
    if cluster.image_cache.is_enabled(cfg.environment) and not adopt.node_role_names:
        add(
            (*at, "node_role_names"),
            "cluster.image_cache is on: name the IAM roles of the cluster's node groups (they pull the platform's "
            "images through the cache and need the import permission), or set cluster.image_cache.enabled: false",
        )


def _check_runner(cfg: PlatformConfig, add: Add) -> None:
    cluster = cfg.cluster
    runner = cluster.runner
    at = ("cluster", "runner")
    if not cfg.runs_in_vpc_runner:
        if not cluster.endpoint.public and not cluster.deployers:
            add(
                ("cluster", "deployers"),
                "with a private endpoint and no in-VPC runner, name the roles that run the cluster layer from a "
                "network that reaches the VPC (or leave cluster.runner.enabled unset)",
            )
        elif cluster.endpoint.public and not cluster.deployers:
            add(
                ("cluster", "deployers"),
                "name the IAM roles that run the cluster layer's `pulumi up` (each gets a cluster-admin access "
                "entry; the cluster creator gets none)",
            )
        return
    if runner.backend_url is None:
        add(
            (*at, "backend_url"),
            "the in-VPC runner needs the Pulumi state backend (s3://BUCKET?region=... or https://api.pulumi.com)",
        )
    elif runner.backend_url.startswith("s3://") and runner.secrets_provider is None:
        add(
            (*at, "secrets_provider"),
            "an s3:// backend needs the stacks' secrets provider (awskms://alias/NAME?region=...)",
        )
    elif runner.backend_url.startswith("https://") and runner.access_token_secret is None:
        add(
            (*at, "access_token_secret"),
            "an https:// backend needs the Secrets Manager secret holding the access token",
        )
    if "artifacts" not in cfg.data_lake.zones:
        add((*at, "enabled"), "the runner reads its source bundles from the lake's artifacts zone; keep that zone")


def _reservation_issues(pool: GpuPoolConfig, reservation: CapacityReservationConfig) -> list[tuple[Path, str]]:
    """What the cost floor needs to price a reservation (it bills whether used or not), checked against the pool."""
    issues: list[tuple[Path, str]] = []
    itype = reservation.instance_type
    if itype is None:
        issues.append(
            (
                ("instance_type",),
                "required: the reservation's instance type (aws ec2 describe-capacity-reservations), "
                "to price it in the cost floor",
            )
        )
    elif itype not in pool.instance_types:
        allowed = ", ".join(pool.instance_types) or "none"
        issues.append((("instance_type",), f"{itype} is not one of the pool's instance_types ({allowed})"))
    if reservation.instance_count is None:
        issues.append(
            (
                ("instance_count",),
                "required: the instances the reservation holds (it bills for all of them whether they run or not)",
            )
        )
    else:
        spec = gpu_catalog.gpu_instance(itype) if itype else None
        if spec is not None and spec.gpu_count and reservation.instance_count * spec.gpu_count > pool.max_gpus:
            issues.append(
                (
                    ("instance_count",),
                    f"{reservation.instance_count} x {itype} hold {reservation.instance_count * spec.gpu_count} GPUs, "
                    f"more than the pool's max_gpus {pool.max_gpus}: raise max_gpus or the extra instances are paid "
                    "for and never used",
                )
            )
    block_fields = ("price_usd", "start_date", "end_date")
    if reservation.kind == "capacity_block":
        for key in block_fields:
            if getattr(reservation, key) is None:
                what = "the upfront price paid (USD)" if key == "price_usd" else "a date such as 2026-12-01"
                issues.append(((key,), f"required for a capacity_block: {what}, to price the block in the cost floor"))
        start, end = reservation.start_date, reservation.end_date
        if start is not None and end is not None and end < start:
            issues.append((("end_date",), f"must be on or after start_date ({end} < {start})"))
    else:
        for key in block_fields:
            if getattr(reservation, key) is not None:
                issues.append(
                    ((key,), "applies to kind: capacity_block; an ODCR is priced at the on-demand rate of its count")
                )
    return issues


def _check_gpu_pools(cfg: PlatformConfig, add: Add) -> None:
    known_types = gpu_catalog.nvidia_instance_types()
    known_families = gpu_catalog.nvidia_families()
    total_max = 0
    for name, pool in cfg.gpu_pools.items():
        at: Path = ("gpu_pools", name)
        total_max += pool.max_gpus
        if pool.min_gpus > pool.max_gpus:
            add(at + ("max_gpus",), f"must be >= min_gpus ({pool.max_gpus} < {pool.min_gpus})")
        for i, itype in enumerate(pool.instance_types):
            spec = gpu_catalog.gpu_instance(itype)
            if spec is None:
                near = gpu_catalog.closest(itype, known_types)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                add(at + ("instance_types", i), f"{itype!r} is not an NVIDIA GPU instance type in the catalog{hint}")
            elif not spec.is_nvidia:
                add(
                    at + ("instance_types", i),
                    f"{itype} has {spec.gpu_model} accelerators, not NVIDIA GPUs "
                    "(Neuron needs its own device plugin, which this platform does not "
                    "install)",
                )
            elif spec.arch != pool.architecture:
                add(at + ("instance_types", i), f"{itype} is {spec.arch}, the pool is {pool.architecture}")
        for i, fam in enumerate(pool.instance_families):
            if fam not in known_families:
                near = gpu_catalog.closest(fam, known_families)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                add(
                    at + ("instance_families", i),
                    f"{fam!r} is not an NVIDIA GPU family in the catalog{hint}; allowed: {', '.join(known_families)}",
                )
        reservation = pool.capacity_reservation
        if pool.provisioner == "karpenter":
            if not pool.instance_families and not pool.instance_types:
                add(at, "a karpenter pool needs instance_families or instance_types")
            if reservation is not None:
                # A reservation holds one instance type; Karpenter uses it only for that type.
                if pool.instance_families:
                    add(
                        at + ("instance_families",),
                        "a pool on a capacity reservation takes the reservation's instance type in instance_types, "
                        "not families",
                    )
                elif len(pool.instance_types) != 1:
                    add(at + ("instance_types",), "a pool on a capacity reservation has exactly one instance type")
                if pool.capacity_types != ("on-demand",):
                    add(
                        at + ("capacity_types",),
                        "a pool on a capacity reservation launches `reserved` capacity first; allow on-demand "
                        "after it with capacity_reservation.on_demand_fallback instead of capacity_types",
                    )
        else:
            if pool.instance_families:
                add(at + ("instance_families",), "node_group pools take instance_types, not families")
            if len(pool.instance_types) != 1:
                add(at + ("instance_types",), "a node_group pool needs exactly one instance type")
            if pool.capacity_types != ("on-demand",) and reservation is not None:
                add(at + ("capacity_types",), "capacity reservations are on-demand capacity")
            if len(pool.capacity_types) != 1:
                add(at + ("capacity_types",), "a node_group pool has one capacity type")
            if reservation is not None and reservation.availability_zone is None:
                add(
                    at + ("capacity_reservation", "availability_zone"),
                    "a node group on a capacity reservation needs the reservation's AZ (aws ec2 "
                    "describe-capacity-reservations): the group is placed in that AZ's subnet only, since a "
                    "reservation lives in one AZ",
                )
            if reservation is not None and reservation.on_demand_fallback:
                add(
                    at + ("capacity_reservation", "on_demand_fallback"),
                    "a node group launches into its reservation only; use provisioner: karpenter for on-demand "
                    "fallback",
                )
        if (pool.provisioner == "node_group" or reservation is not None) and len(pool.instance_types) == 1:
            spec = gpu_catalog.gpu_instance(pool.instance_types[0])
            if spec is not None and spec.gpu_count:
                for key in ("min_gpus", "max_gpus"):
                    value = getattr(pool, key)
                    if value % spec.gpu_count:
                        add(at + (key,), f"must be a multiple of {spec.gpu_count} (GPUs per {spec.instance_type} node)")
        if reservation is not None:
            for issue_at, message in _reservation_issues(pool, reservation):
                add(at + ("capacity_reservation", *issue_at), message)
        if pool.availability_zone and not re.fullmatch(rf"{re.escape(cfg.region)}[a-z]", pool.availability_zone):
            add(
                at + ("availability_zone",),
                f"{pool.availability_zone} is not an AZ of the stack's region {cfg.region} (e.g. {cfg.region}a)",
            )
        zone = reservation.availability_zone if reservation is not None else None
        if zone is not None and not re.fullmatch(rf"{re.escape(cfg.region)}[a-z]", zone):
            add(
                at + ("capacity_reservation", "availability_zone"),
                f"{zone} is not an AZ of the stack's region {cfg.region}; a reservation is used only in its own "
                f"region (e.g. {cfg.region}a)",
            )
        if pool.provisioner == "node_group" and pool.ami_version is not None:
            add(at + ("ami_version",), "applies to karpenter pools; node_group pools take release_version")
        if pool.provisioner == "karpenter" and pool.release_version is not None:
            add(at + ("release_version",), "applies to node_group pools; karpenter pools take ami_version")
        if cfg.is_prod and pool.ami_version == "latest":
            add(
                at + ("ami_version",),
                "`latest` is refused in prod: pin an AMI release (nodes must not change on their own)",
            )
        if pool.time_slicing_replicas is not None and cfg.is_prod:
            add(at + ("time_slicing_replicas",), "GPU time-slicing shares GPUs without isolation; dev/staging only")
        _check_efa(at, pool, add)
        if pool.termination_grace_period is not None and pool.provisioner != "karpenter":
            add(at + ("termination_grace_period",), "applies to karpenter pools (a NodePool setting)")
        if pool.termination_grace_period == "Never":
            add(at + ("termination_grace_period",), "a duration such as 2m (leave it out to wait without limit)")
        version = pool.ami_version or ""
        if pool.ami_family == "al2023" and version and version != "latest" and not re.match(r"^v?[0-9]{8}", version):
            add(at + ("ami_version",), "AL2023 releases look like v20260724")
        if pool.ami_family == "bottlerocket" and version and version != "latest" and re.match(r"^v?[0-9]{8}", version):
            add(at + ("ami_version",), "Bottlerocket releases look like 1.64.0")
    cpu = cfg.cpu_pool
    for i, fam in enumerate(cpu.instance_families):
        if fam in gpu_catalog.nvidia_families() or any(s.family == fam for s in gpu_catalog.instances_of_family(fam)):
            add(
                ("cpu_pool", "instance_families", i),
                f"{fam} is an accelerated family; GPU capacity belongs in gpu_pools",
            )
        graviton = bool(re.match(r"^[a-z]+[0-9]+[a-z]*g[a-z]*$", fam))
        if graviton != (cpu.architecture == "arm64"):
            add(
                ("cpu_pool", "instance_families", i),
                f"{fam} is {'arm64' if graviton else 'amd64'}, the pool is {cpu.architecture}",
            )
    if total_max > cfg.budget.max_gpus:
        add(
            ("budget", "max_gpus"),
            f"the pools allow {total_max} GPUs in all (sum of max_gpus), more than "
            f"budget.max_gpus = {cfg.budget.max_gpus}",
        )


def _check_efa(at: Path, pool: GpuPoolConfig, add: Add) -> None:
    """`efa` only on types that take EFA, with one EFA-per-GPU ratio (a worker's interfaces follow its GPUs);
    `placement_group` only with efa, and never on a Capacity Block."""
    reservation = pool.capacity_reservation
    if pool.placement_group is not None:
        if not pool.efa:
            add(at + ("placement_group",), "applies to efa pools (set efa: true)")
        elif reservation is not None and reservation.kind == "capacity_block":
            add(
                at + ("placement_group",),
                "a Capacity Block's instances are already placed together in an EC2 UltraCluster; remove "
                "placement_group",
            )
    if pool.availability_zone is not None and reservation is not None:
        add(
            at + ("availability_zone",),
            "applies to pools without a reservation (a reservation's AZ is capacity_reservation.availability_zone)",
        )
    if not pool.efa:
        return
    if reservation is None and pool.availability_zone is None:
        add(
            at + ("availability_zone",),
            "is required for an efa pool without a reservation: its cluster placement group lives in one AZ, and "
            "nodes launched into another would fail; name one of the stack's AZs (`mlp preflight` checks it offers "
            "the pool's types with EFA)",
        )
    if pool.time_slicing_replicas is not None:
        add(at + ("efa",), "EFA is for multi-node training; a time-sliced pool shares GPUs and takes no EFA")
    if pool.min_gpus > 0 and pool.provisioner == "karpenter":
        add(
            at + ("min_gpus",),
            "must be 0 on an efa pool: the warm-capacity placeholders request no EFA, so Karpenter would launch "
            "their nodes without EFA interfaces, and Ray workers, which request them, could not use those nodes",
        )
    candidates = [s for s in pool.candidate_types() if s.is_nvidia]
    without = [s.instance_type for s in candidates if not s.efa_interfaces]
    if without:
        where = at + (("instance_types",) if pool.instance_types else ("instance_families",))
        capable = sorted(s.instance_type for s in candidates if s.efa_interfaces)
        add(
            where,
            f"efa: {', '.join(sorted(without))} take no EFA interface"
            + (f"; list only EFA types in instance_types (here: {', '.join(capable)})" if capable else ""),
        )
        return
    ratios = {s.instance_type: Fraction(s.efa_interfaces, s.gpu_count) for s in candidates if s.gpu_count}
    if len(set(ratios.values())) > 1:
        shown = ", ".join(f"{s.instance_type} ({s.efa_interfaces} EFA / {s.gpu_count} GPUs)" for s in candidates)
        add(
            at + ("instance_types",),
            f"efa: the types give different EFA interfaces per GPU ({shown}); a worker requests the interfaces of its "
            "GPUs, so list types with one ratio",
        )


def efa_per_gpu(pool: GpuPoolConfig) -> Fraction | None:
    """EFA interfaces per GPU of an efa pool's types (config refuses pools where the types differ), else None."""
    if not pool.efa:
        return None
    ratios = [Fraction(s.efa_interfaces, s.gpu_count) for s in pool.candidate_types() if s.is_nvidia and s.gpu_count]
    return ratios[0] if ratios else None


def _pool_gpus_per_node(cfg: PlatformConfig, pool_name: str) -> int | None:
    """The smallest GPU count of a node the pool can launch (None when unknown)."""
    pool = cfg.gpu_pools[pool_name]
    counts = [s.gpu_count for t in pool.instance_types if (s := gpu_catalog.gpu_instance(t))]
    for fam in pool.instance_families:
        counts += [s.gpu_count for s in gpu_catalog.instances_of_family(fam)]
    return max(counts) if counts else None


_GIB_PER_VCPU = {"m": 4, "c": 2, "r": 8, "t": 2, "x": 16, "z": 8}
_SIZE_VCPUS = {"medium": 2, "large": 2, "xlarge": 4}


def _system_node_capacity(instance_type: str) -> tuple[float, float] | None:
    """(vCPUs, GiB) of a general-purpose instance type from its name, or None when the name does not say."""
    family, _, size = instance_type.partition(".")
    vcpus = _SIZE_VCPUS.get(size) or (int(size[:-6]) * 4 if size.endswith("xlarge") and size[:-6].isdigit() else 0)
    per_vcpu = _GIB_PER_VCPU.get(family[:1])
    if not vcpus or per_vcpu is None:
        return None
    if family.startswith("t") and size == "medium":
        return 2, 4
    return vcpus, vcpus * per_vcpu


def _quantity(value: str, memory: bool) -> float:
    """A Kubernetes quantity as cores or GiB."""
    match = re.match(r"^([0-9.]+)([a-zA-Z]*)$", value)
    assert match is not None  # the config type already checked the format
    number, unit = float(match.group(1)), match.group(2)
    if not memory:
        return number / 1000 if unit == "m" else number
    factor = {
        "": 1 / 2**30,
        "k": 1e3 / 2**30,
        "Ki": 1 / 2**20,
        "M": 1e6 / 2**30,
        "Mi": 1 / 2**10,
        "G": 1e9 / 2**30,
        "Gi": 1,
        "T": 1e12 / 2**30,
        "Ti": 2**10,
        "P": 1e15 / 2**30,
        "Pi": 2**20,
        "E": 1e18 / 2**30,
        "Ei": 2**30,
        "m": 1e-3 / 2**30,
    }
    return number * factor[unit]


def _fit_on_system_nodes(cfg: PlatformConfig, cpu: str, memory: str) -> str | None:
    """Why a pod of this size cannot run on the smallest system node (about 85% of a node is allocatable)."""
    sizes = [(t, c) for t in cfg.cluster.system_node_group.instance_types if (c := _system_node_capacity(t))]
    if not sizes:
        return None
    itype, (vcpus, gib) = min(sizes, key=lambda item: item[1])
    want_cpu, want_gib = _quantity(cpu, memory=False), _quantity(memory, memory=True)
    if want_cpu > vcpus * 0.85 or want_gib > gib * 0.85:
        return (
            f"a {cpu} CPU / {memory} head does not fit a system node ({itype}: {vcpus:g} vCPUs, {gib:g} GiB, about "
            "85% allocatable)"
        )
    return None


def _ray_cluster_peak(cluster: RayClusterConfig) -> tuple[float, float, int, list[str]]:
    """CPU cores, GiB and GPUs a Ray cluster requests at max_replicas, as a ResourceQuota counts them (a pod's
    requests are the larger of its containers' sum and its largest init container), and the terms of the sum."""
    from mlplatform.infra.mlops.documents import RAY_AUTOSCALER_CPU, RAY_AUTOSCALER_MEMORY

    head = cluster.head
    cpu = _quantity(head.cpu, memory=False) + _quantity(RAY_AUTOSCALER_CPU, memory=False)
    gib = _quantity(head.memory, memory=True) + _quantity(RAY_AUTOSCALER_MEMORY, memory=True)
    terms = [f"head {head.cpu} CPU / {head.memory} + its autoscaler {RAY_AUTOSCALER_CPU} / {RAY_AUTOSCALER_MEMORY}"]
    groups: list[tuple[str, int, str, str, int]] = [
        ("cpu", cluster.cpu_workers.max_replicas, cluster.cpu_workers.cpu, cluster.cpu_workers.memory, 0)
    ]
    groups += [(n, g.max_replicas, g.cpu, g.memory, g.gpus_per_worker) for n, g in cluster.gpu_workers.items()]
    wcpu, wgib, gpus, wterms = _ray_workers_requests(groups)
    return cpu + wcpu, gib + wgib, gpus, terms + wterms


def _ray_workers_requests(groups: list[tuple[str, int, str, str, int]]) -> tuple[float, float, int, list[str]]:
    """CPU cores, GiB and GPUs that (name, replicas, cpu, memory, gpus) worker groups request, as a ResourceQuota
    counts a KubeRay worker (the larger of its Ray container and its `wait-gcs-ready` init container), and the
    terms of the sum."""
    from mlplatform.infra.mlops.documents import KUBERAY_INIT_CPU, KUBERAY_INIT_MEMORY

    init_cpu, init_gib = _quantity(KUBERAY_INIT_CPU, memory=False), _quantity(KUBERAY_INIT_MEMORY, memory=True)
    cpu = gib = 0.0
    gpus = 0
    terms: list[str] = []
    for name, replicas, wcpu, wmem, wgpus in groups:
        if not replicas:
            continue
        cpu += replicas * max(_quantity(wcpu, memory=False), init_cpu)
        gib += replicas * max(_quantity(wmem, memory=True), init_gib)
        gpus += replicas * wgpus
        terms.append(f"{replicas} x {name} worker ({wcpu} CPU / {wmem}" + (f" / {wgpus} GPU)" if wgpus else ")"))
    return cpu, gib, gpus, terms


def _over_quota(quota: TenantQuotaConfig, cpu: float, gib: float, gpus: int) -> list[tuple[str, float, float, str]]:
    """(quota key, requested, allowed, unit) of each of CPU, memory and GPUs that exceeds the team's quota."""
    wants = (
        ("cpu", cpu, _quantity(quota.cpu, memory=False), " CPU"),
        ("memory", gib, _quantity(quota.memory, memory=True), " GiB"),
        ("gpus", float(gpus), float(quota.gpus), " GPUs"),
    )
    return [(key, want, allowed, unit) for key, want, allowed, unit in wants if want > allowed + 1e-9]


def _check_pipelines(cfg: PlatformConfig, add: Add) -> None:
    """The engine runs teams' workflows and keeps their artifacts in the artifacts zone: it needs both."""
    if not cfg.pipelines.enabled:
        return
    if not cfg.tenants:
        add(("pipelines", "enabled"), "workflows run in team namespaces; configure tenants or turn pipelines off")
    if "artifacts" not in cfg.data_lake.zones:
        add(
            ("pipelines", "enabled"),
            "workflows keep their artifacts under pipelines/<team>/ in the lake's `artifacts` zone; add the zone",
        )


def _check_feature_store(cfg: PlatformConfig, add: Add) -> None:
    """Feast keeps its registry and offline files in the `features` zone and serves the listed views online."""
    store = cfg.feature_store
    if not store.enabled:
        return
    path: Path = ("feature_store",)
    if "features" not in cfg.data_lake.zones:
        add(path + ("enabled",), "the registry and the offline store live in the lake's `features` zone; add the zone")
    if not store.feature_views:
        add(
            path + ("feature_views",),
            "required: the feature views served online (one DynamoDB table each; the roles reach only those)",
        )
    seen: set[str] = set()
    for i, view in enumerate(store.feature_views):
        if view in seen:
            add(path + ("feature_views", i), f"`{view}` is listed twice")
        seen.add(view)
    if store.image is None:
        add(
            path + ("image",),
            "required: the Feast image (build images/feast/Dockerfile, push it), pinned by tag or digest",
        )
    elif store.image.endswith(":latest"):
        add(path + ("image",), "`latest` is refused: pin a tag or a digest")
    known = ", ".join(sorted(cfg.tenants)) or "none"
    for i, team in enumerate(store.producers):
        if team not in cfg.tenants:
            add(path + ("producers", i), f"`{team}` is not a tenant (tenants: {known})")
    if cfg.is_prod and store.server_replicas < 2:
        add(
            path + ("server_replicas",),
            "prod needs 2 or more: models read features online, and a rollout or a node drain must not stop them",
        )


def _check_registry_serving(cfg: PlatformConfig, path: tuple[str, ...], svc: InferenceServiceConfig, add: Add) -> None:
    """A `models:/` URI is resolved at pod start by the resolver step, in the steps' image, against the in-cluster
    MLflow (with MLflow's auth on, as the reader whose credentials the `mlflow-registry-reader` Secret holds)."""
    uri = path + ("model_uri",)
    if svc.canary is not None:
        add(path + ("canary",), "a canary reads a lake prefix; with model_uri, promote by moving the alias instead")
    if not cfg.mlflow.enabled:
        add(uri, "the registry is MLflow's; enable mlflow")
    if cfg.pipelines.templates.image is None:
        add(uri, "the resolver runs in the steps' image; set pipelines.templates.image")
    if svc.promoted_by is not None:
        _check_promoted_by(cfg, path + ("promoted_by",), svc.promoted_by, svc.model_uri, add)


def _check_promoted_by(cfg: PlatformConfig, path: tuple[str, ...], team: str, uri: str | None, add: Add) -> None:
    """A rollout after a promotion: the server resolves an alias (a version never moves), the team is configured,
    and the promote template that rolls it out is installed."""
    if "@" not in (uri or ""):
        add(path, "a version number never moves; name an alias (models:/<name>@<alias>)")
    if team not in cfg.tenants:
        add(path, f"unknown team {team!r}; tenants: {', '.join(sorted(cfg.tenants)) or 'none'}")
    if not cfg.pipelines.templates.enabled:
        add(path, "the rollout is a step of the shipped templates; set templates.enabled")


def _check_drift_source(cfg: PlatformConfig, team: str, name: str, add: Add) -> None:
    """The drift job reads the InferenceService's requests from the team's lake prefix and pushes to the
    monitoring stack's Pushgateway."""
    path = ("pipelines", "templates", "retrain", team, "drift_from")
    if not cfg.observability.enabled:
        add(path, "the drift gauges go to Prometheus (through the Pushgateway); enable observability")
    svc = cfg.kserve.inference_services.get(name)
    if svc is None:
        known = ", ".join(sorted(cfg.kserve.inference_services)) or "none"
        add(path, f"unknown InferenceService {name!r}; kserve.inference_services: {known}")
    elif svc.request_log != team:
        add(
            path,
            f"InferenceService {name!r} must log its requests into this team's prefix: set its request_log to "
            f"{team!r} (now {svc.request_log or 'unset'})",
        )


def _check_pipeline_templates(cfg: PlatformConfig, add: Add) -> None:
    """The templates run the steps in a team's namespace against the in-cluster MLflow, in an image config names."""
    templates = cfg.pipelines.templates
    if not templates.enabled:
        if templates.retrain:
            add(("pipelines", "templates", "retrain"), "retraining runs the shipped templates; set templates.enabled")
        return
    if not cfg.pipelines.enabled:
        add(("pipelines", "templates", "enabled"), "the templates need the engine; set pipelines.enabled")
    if not cfg.mlflow.enabled:
        add(("pipelines", "templates", "enabled"), "the steps track and register models in MLflow; enable mlflow")
    if templates.image is None:
        add(
            ("pipelines", "templates", "image"),
            "required: an image with this package, mlflow and scikit-learn, pinned by tag or digest "
            "(no pinned image has them; see the pipelines documentation for how to build it)",
        )
    elif templates.image.endswith(":latest"):
        add(("pipelines", "templates", "image"), "`latest` is refused: pin a tag or a digest")
    if templates.ray_job is not None:
        _check_ray_job(cfg, templates.ray_job, add)
    known = ", ".join(sorted(cfg.tenants)) or "none"
    for team, retrain in templates.retrain.items():
        if team not in cfg.tenants:
            add(("pipelines", "templates", "retrain", team), f"unknown team {team!r}; tenants: {known}")
        if retrain.drift_from is not None:
            _check_drift_source(cfg, team, retrain.drift_from, add)
        if retrain.inference_service is not None:
            path = ("pipelines", "templates", "retrain", team, "inference_service")
            svc = cfg.kserve.inference_services.get(retrain.inference_service)
            wanted = f"models:/{retrain.model}@champion"
            if svc is None:
                known_isvcs = ", ".join(sorted(cfg.kserve.inference_services)) or "none"
                add(
                    path,
                    f"unknown InferenceService {retrain.inference_service!r}; kserve.inference_services: {known_isvcs}",
                )
            elif svc.model_uri != wanted or svc.promoted_by != team:
                add(
                    path,
                    f"the rollout needs that InferenceService's model_uri to be {wanted} and its promoted_by {team!r} "
                    f"(now {svc.model_uri or 'no model_uri'}, promoted_by {svc.promoted_by or 'none'})",
                )


def _check_ray_job(cfg: PlatformConfig, job: RayJobTemplateConfig, add: Add) -> None:
    """KubeRay runs the RayJob; its workers fit a node of the pool, and the whole cluster fits every team's quota
    (any team may submit the template: a cluster the quota refuses would wait until its deadline)."""
    path = ("pipelines", "templates", "ray_job")
    if not cfg.ray.enabled:
        add(path, "KubeRay runs RayJobs; set ray.enabled")
    _check_gpu_pool(cfg, path + ("pool",), path + ("gpus_per_worker",), job.pool, job.gpus_per_worker, "worker", add)
    _check_efa_worker(cfg, path + ("gpus_per_worker",), job.pool, job.gpus_per_worker, add)
    workers = [("gpu", job.workers, job.cpu, job.memory, job.gpus_per_worker)]
    wcpu, wgib, gpus, _ = _ray_workers_requests(workers)
    cpu = _quantity(job.head_cpu, memory=False) + wcpu
    gib = _quantity(job.head_memory, memory=True) + wgib
    for team, tenant in sorted(cfg.tenants.items()):
        for key, want, allowed, unit in _over_quota(tenant.quota, cpu, gib, gpus):
            add(
                ("tenants", team, "quota", key),
                f"mlp-train-rayjob's cluster requests {want:g}{unit} (head + {job.workers} workers), more than "
                f"team {team}'s quota of {allowed:g}{unit}: raise the quota or shrink pipelines.templates.ray_job",
            )


def _check_ray_teams(cfg: PlatformConfig, add: Add) -> None:
    """A team cluster names a configured team and fits its quota at max_replicas (the autoscaler would otherwise
    ask for workers the quota refuses, and the scale-up would stall with no error in Ray); a platform cluster
    needs the artifacts zone it writes to."""
    by_team: dict[str, list[str]] = {}
    for cname, cluster in cfg.ray.clusters.items():
        if cluster.team is None:
            if "artifacts" not in cfg.data_lake.zones:
                add(
                    ("ray", "clusters", cname),
                    "a platform cluster (no `team`) writes under ray/ in the lake's `artifacts` zone; add the zone "
                    "to data_lake.zones or give the cluster a team",
                )
        elif cluster.team not in cfg.tenants:
            known = _allowed(cfg.tenants) or "none configured"
            add(("ray", "clusters", cname, "team"), f"unknown team {cluster.team!r}; tenants: {known}")
        else:
            by_team.setdefault(cluster.team, []).append(cname)
    for team, names in by_team.items():
        peaks = [_ray_cluster_peak(cfg.ray.clusters[n]) for n in names]
        clusters = ", ".join(names)
        detail = "; ".join(f"{n}: {' + '.join(p[3])}" for n, p in zip(names, peaks, strict=True))
        totals = (sum(p[0] for p in peaks), sum(p[1] for p in peaks), sum(p[2] for p in peaks))
        for key, want, allowed, unit in _over_quota(cfg.tenants[team].quota, *totals):
            add(
                ("tenants", team, "quota", key),
                f"team {team}'s Ray cluster(s) {clusters} request up to {want:g}{unit} at max_replicas ({detail}), "
                f"more than the quota's {allowed:g}{unit}: raise the quota or lower the workers' max_replicas",
            )


def _check_vllm_fit(cfg: PlatformConfig, add: Add) -> None:
    """Each vLLM server's weights and one full-length sequence's KV cache fit its GPUs at gpu_memory_utilization,
    and max_model_len is within the model's context length (infra/serving/fit.py; a lower bound on memory)."""
    from mlplatform.infra.serving.fit import serving_fit

    for report in serving_fit(cfg):
        for key, message in report.problems:
            add(("vllm", "models", report.name, key), message)


def _check_vllm_keeps_serving(cfg: PlatformConfig, add: Add) -> None:
    """Staging and prod: a vLLM server keeps serving through node consolidation (two replicas, one evicted at a
    time) and through a rollout (one replica surged per server, all servers at once when the image changes)."""
    surges: dict[str, list[str]] = {}
    needed: dict[str, int] = {}
    for mname, model in cfg.vllm.models.items():
        if model.min_replicas == 1:
            add(
                ("vllm", "models", mname, "min_replicas"),
                f"must be 0 (parked) or at least 2 in {cfg.environment}: with one replica, Karpenter consolidating, "
                "replacing or draining its node stops the model until a new replica has loaded it",
            )
        if model.pool in cfg.gpu_pools:
            gpus = model.gpus_per_replica
            surges.setdefault(model.pool, []).append(
                f"(vllm.models.{mname}.min_replicas {model.min_replicas} + 1) x {gpus} GPU{'s' if gpus > 1 else ''}"
            )
            needed[model.pool] = needed.get(model.pool, 0) + (model.min_replicas + 1) * gpus
    for pname, terms in surges.items():
        max_gpus = cfg.gpu_pools[pname].max_gpus
        if needed[pname] > max_gpus:
            add(
                ("gpu_pools", pname, "max_gpus"),
                f"{max_gpus} GPUs cannot hold a vLLM rollout, which starts one more replica of each server on the "
                f"pool before an old one stops: {' + '.join(terms)} = {needed[pname]} GPUs; raise max_gpus or "
                "lower min_replicas",
            )


def _check_gpu_pool(
    cfg: PlatformConfig, pool_path: Path, gpus_path: Path, pool: str, gpus: int, per: str, add: Add
) -> None:
    """`pool` is a configured GPU pool, and `gpus` (per `per`: replica, worker) fit on one of its nodes."""
    if pool not in cfg.gpu_pools:
        add(pool_path, f"unknown GPU pool {pool!r}; defined pools: {', '.join(cfg.gpu_pools) or '(none)'}")
        return
    biggest = _pool_gpus_per_node(cfg, pool)
    if biggest is not None and gpus > biggest:
        add(gpus_path, f"{gpus} GPUs per {per} do not fit on any node of pool {pool!r} (at most {biggest})")


def _check_efa_worker(cfg: PlatformConfig, gpus_path: Path, pool: str, gpus: int, add: Add) -> None:
    """A Ray worker on an efa pool requests the EFA interfaces of its GPUs: a whole number of them."""
    config = cfg.gpu_pools.get(pool)
    per_gpu = efa_per_gpu(config) if config is not None else None
    if per_gpu is None:
        return
    wanted = per_gpu * gpus
    if wanted.denominator != 1 or wanted < 1:
        add(
            gpus_path,
            f"pool {pool!r} has EFA: its nodes have {per_gpu} EFA interfaces per GPU, so {gpus} GPUs per worker would "
            f"need {wanted} interfaces; use a multiple of {per_gpu.denominator} GPUs per worker",
        )


def _check_services(cfg: PlatformConfig, add: Add) -> None:
    def check_pool(path: Path, pool: str | None, gpus: int) -> None:
        if pool is None:
            if gpus:
                add(path, "GPU workloads need gpu_pool (the pool whose taint they tolerate)")
            return
        _check_gpu_pool(cfg, path, path, pool, gpus, "replica", add)
        if pool in cfg.gpu_pools and cfg.gpu_pools[pool].efa:
            add(
                path,
                f"pool {pool!r} has efa, for multi-node training: a model server requests no EFA, so Karpenter would "
                "launch nodes without EFA there that training workers cannot use; serve from a pool without efa",
            )

    if not cfg.mlflow.auth.enabled and cfg.environment != "dev":
        add(("mlflow", "auth", "enabled"), "must be true outside dev: MLflow would accept anonymous writes")
    zones = cfg.data_lake.zones
    if cfg.mlflow.enabled and "artifacts" not in zones:
        add(("mlflow", "enabled"), "MLflow stores artifacts in the lake's `artifacts` zone; add it to data_lake.zones")
    ingress = cfg.mlflow.ingress
    if not ingress.internal:
        add(("mlflow", "ingress", "internal"), "must be true: MLflow is never exposed to the internet")
    if ingress.enabled and ingress.hostname is None:
        add(("mlflow", "ingress", "hostname"), "is required when the ingress is enabled")
    if ingress.enabled and cfg.is_prod and ingress.certificate_arn is None:
        add(("mlflow", "ingress", "certificate_arn"), "is required in prod (the ALB listens on HTTPS only)")
    db = cfg.mlflow.database
    if db.max_allocated_storage_gib < db.allocated_storage_gib:
        add(("mlflow", "database", "max_allocated_storage_gib"), "must be >= allocated_storage_gib")
    if cfg.is_prod:
        if not db.deletion_protection:
            add(("mlflow", "database", "deletion_protection"), "must be true in prod")
        if not db.multi_az:
            add(("mlflow", "database", "multi_az"), "must be true in prod")

    for cname, cluster in cfg.ray.clusters.items():
        head = cluster.head
        head_path: Path = ("ray", "clusters", cname, "head")
        if head.placement == "general" and not cfg.cpu_pool.enabled:
            add(head_path + ("placement",), "`general` needs cpu_pool.enabled (the Karpenter CPU pool)")
        elif head.placement == "system":
            problem = _fit_on_system_nodes(cfg, head.cpu, head.memory)
            if problem:
                add(head_path, f"{problem}; use smaller head values or head.placement: general")
        workers = cluster.cpu_workers
        if workers.min_replicas > workers.max_replicas:
            add(("ray", "clusters", cname, "cpu_workers", "max_replicas"), "must be >= min_replicas")
        for gname, group in cluster.gpu_workers.items():
            path: Path = ("ray", "clusters", cname, "gpu_workers", gname)
            if group.min_replicas > group.max_replicas:
                add(path + ("max_replicas",), "must be >= min_replicas")
            _check_gpu_pool(cfg, path + ("pool",), path + ("pool",), group.pool, group.gpus_per_worker, "worker", add)
            _check_efa_worker(cfg, path + ("gpus_per_worker",), group.pool, group.gpus_per_worker, add)

    for sname, svc in cfg.kserve.inference_services.items():
        path = ("kserve", "inference_services", sname)
        if (svc.model_format is None) == (svc.runtime is None):
            add(path, "give exactly one of model_format or runtime")
        if svc.runtime is not None and svc.runtime not in SERVING_RUNTIMES:
            add(path + ("runtime",), f"unknown runtime {svc.runtime!r}; allowed: {', '.join(SERVING_RUNTIMES)}")
        if (svc.storage_path is None) == (svc.model_uri is None):
            add(path, "give exactly one of storage_path (the lake's models zone) or model_uri (the model registry)")
        if svc.storage_path is not None and "models" not in zones:
            add(path + ("storage_path",), "models are read from the lake's `models` zone; add it to data_lake.zones")
        if svc.model_uri is not None:
            _check_registry_serving(cfg, path, svc, add)
        elif svc.promoted_by is not None:
            add(path + ("promoted_by",), "only a model_uri naming an alias is rolled out after a promotion")
        if svc.request_log is not None:
            if svc.request_log not in cfg.tenants:
                known = ", ".join(sorted(cfg.tenants)) or "none"
                add(path + ("request_log",), f"unknown team {svc.request_log!r}; tenants: {known}")
            if "raw" not in zones:
                add(
                    path + ("request_log",), "requests are logged into the lake's `raw` zone; add it to data_lake.zones"
                )
        if not cfg.kserve.enabled:
            add(path, "kserve.enabled is false; remove the service or enable KServe")
        if svc.min_replicas > svc.max_replicas:
            add(path + ("max_replicas",), "must be >= min_replicas")
        if svc.canary is not None and svc.min_replicas < 1:
            # The route sends the canary its share whatever runs; KServe v0.20's webhook refuses a canary with
            # more replicas than the stable floor, so with a floor of 0 the share would reach no pod.
            add(path + ("min_replicas",), "must be >= 1 with a canary (the canary runs at least one replica)")
        check_pool(path + ("gpu_pool",), svc.gpu_pool, svc.resources.gpus)

    served: dict[str, str] = {}
    for mname, model in cfg.vllm.models.items():
        path = ("vllm", "models", mname)
        if model.min_replicas > model.max_replicas:
            add(path + ("max_replicas",), "must be >= min_replicas")
        check_pool(path + ("pool",), model.pool, model.gpus_per_replica)
        if model.hub_token_secret and model.hub_token_secret.startswith("hf_"):
            add(
                path + ("hub_token_secret",),
                "looks like a token value; give the name of the Secrets Manager secret that holds it",
            )
        if model.source != "hub" and model.hub_token_secret:
            add(path + ("hub_token_secret",), "only applies to source: hub")
        if (model.source == "registry") != model.model.startswith("models:/"):
            add(path + ("model",), "a models:/ URI goes with source: registry, and source: registry takes one")
        elif model.source == "registry":
            if re.fullmatch(MODEL_URI_PATTERN, model.model) is None:
                add(path + ("model",), "expected models:/<name>@<alias> or models:/<name>/<version>")
            if not cfg.mlflow.enabled:
                add(path + ("model",), "the registry is MLflow's; enable mlflow")
            if cfg.pipelines.templates.image is None:
                add(path + ("model",), "the resolver runs in the steps' image; set pipelines.templates.image")
        if model.promoted_by is not None and model.source != "registry":
            add(path + ("promoted_by",), "a rollout resolves the registry alias again: only with source: registry")
        elif model.promoted_by is not None:
            _check_promoted_by(cfg, path + ("promoted_by",), model.promoted_by, model.model, add)
        if model.source == "lake" and "models" not in zones:
            add(path + ("source",), "weights are read from the lake's `models` zone; add it to data_lake.zones")
        if model.min_replicas != model.max_replicas and not cfg.observability.enabled:
            add(
                path + ("max_replicas",),
                "autoscaling reads vLLM's queue from Prometheus: enable observability or set "
                "min_replicas = max_replicas",
            )
        if model.served_model_name in served:
            add(path + ("served_model_name",), f"is also served by vllm.models.{served[model.served_model_name]}")
        served[model.served_model_name] = mname
    if cfg.serving_keeps_up:
        _check_vllm_keeps_serving(cfg, add)

    admins = {a.principal_arn for a in cfg.cluster.admins}
    seen_principals: dict[str, str] = {}
    for tname, tenant in cfg.tenants.items():
        for i, arn in enumerate(tenant.principal_arns):
            at: Path = ("tenants", tname, "principal_arns", i)
            if arn in admins:
                add(at, "is also in cluster.admins; an IAM principal has one access entry per cluster")
            elif arn in seen_principals:
                add(at, f"is also in tenants.{seen_principals[arn]} (one access entry per principal)")
            seen_principals[arn] = tname
        if tenant.quota.gpus > cfg.budget.max_gpus:
            add(("tenants", tname, "quota", "gpus"), f"exceeds budget.max_gpus ({cfg.budget.max_gpus})")
