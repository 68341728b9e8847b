"""The EKS cluster from `pulumi_aws.eks` primitives: control plane, access entries, add-ons, system nodes.

Order matters and is explicit: the VPC CNI, kube-proxy and the Pod Identity agent are installed before the system
node group (nodes cannot become Ready without them); CoreDNS and the EBS CSI driver after it (their pods need
nodes to become ACTIVE). Everything that names the cluster takes `cluster.name` (an Output), never the configured
string, so that the engine creates it after the control plane exists.

This component is all AWS: the Kubernetes provider is built by the cluster layer from the stack outputs
(`infra.cluster.provider`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.aws_provider import GetTokenOptions
from mlplatform.infra.cluster import documents
from mlplatform.infra.iam_documents import account_only_key_policy, managed_policy_arn, pod_identity_trust_policy
from mlplatform.infra.node_launch import node_launch_template

COMPONENT_TYPE = "mlplatform:cluster:Cluster"


@dataclass(frozen=True, kw_only=True)
class AdminAccess:
    principal_arn: pulumi.Input[str]
    access_policy: str  # key of documents.ACCESS_POLICIES
    namespaces: Sequence[str] = ()
    key: str | None = None
    """Stable resource-name key; derived from a literal ARN when omitted (required for an Output ARN)."""

    def resource_key(self) -> str:
        if self.key is not None:
            return self.key
        if not isinstance(self.principal_arn, str):
            raise ValueError("AdminAccess with an Output principal_arn needs an explicit key")
        return _principal_key(self.principal_arn)


@dataclass(frozen=True, kw_only=True)
class SystemNodeGroupArgs:
    instance_types: Sequence[str]
    capacity_type: str
    ami_type: str
    min_size: int
    desired_size: int
    max_size: int
    disk_size_gib: int
    labels: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    """Node labels; platform controllers select the system nodes by them."""


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster_name: str
    kubernetes_version: str
    support_type: str
    private_subnet_ids: pulumi.Input[Sequence[str]]
    endpoint_public: bool
    public_access_cidrs: Sequence[str]
    admins: Sequence[AdminAccess]
    addon_versions: Mapping[str, str]
    system_node_group: SystemNodeGroupArgs
    log_retention_days: int
    logs_kms_key_arn: pulumi.Input[str] | None
    deletion_protection: bool
    region: str
    tags: Mapping[str, str] = field(default_factory=dict)
    get_token: GetTokenOptions = field(default_factory=GetTokenOptions)
    """Who the kubeconfig's `aws eks get-token` acts as: the stack's AWS provider settings (`aws:profile`, ...)."""


class Cluster(pulumi.ComponentResource):
    """An EKS cluster in API authentication mode, with Pod Identity and a small system node group."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    """The security group EKS creates for the control plane and managed nodes."""
    node_security_group_id: pulumi.Output[str]
    """The group the nodes and their pods carry: here the cluster security group."""
    node_role_arn: pulumi.Output[str]
    arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Secret: a kubeconfig that calls `aws eks get-token` (holds no credential, kept secret anyway)."""
    access_ready: list[pulumi.Resource]
    """The access entries and policy associations: whoever calls the Kubernetes API waits for these."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        account = aws_account(self)
        self._partition, self._account_id = account.partition, account.account_id

        self._create_secrets_key()
        self._create_iam()
        self._create_control_plane()
        self.access_ready: list[pulumi.Resource] = []
        for admin in args.admins:
            self.grant_access(admin)
        early_addons = self._create_addons(documents.ADDONS_BEFORE_NODES, depends_on=[])
        self._create_system_node_group(early_addons)
        self.late_addons = self._create_addons(documents.ADDONS_AFTER_NODES, depends_on=[self.system_node_group])
        self._create_kubeconfig()

        self.cluster_name = self.cluster.name
        self.arn = self.cluster.arn
        self.endpoint = self.cluster.endpoint
        self.certificate_authority = self.cluster.certificate_authority.data
        self.cluster_security_group_id = self.cluster.vpc_config.cluster_security_group_id
        self.node_role_arn = self.node_role.arn
        # Managed nodes carry the cluster security group: it is the nodes' (and their pods') group too.
        self.node_security_group_id = self.cluster_security_group_id
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "endpoint": self.endpoint,
                "cluster_security_group_id": self.cluster_security_group_id,
                "node_role_arn": self.node_role_arn,
            }
        )

    def _tags(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self._args.tags, **(extra or {})}

    def _policy_arn(self, name: str) -> pulumi.Output[str]:
        return self._partition.apply(lambda p: managed_policy_arn(p, name))

    def _create_secrets_key(self) -> None:
        name, args = self._name, self._args
        self.secrets_key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"{args.cluster_name}: envelope encryption of Kubernetes secrets",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(self._partition, self._account_id).apply(
                lambda v: account_only_key_policy(v[0], v[1])
            ),
            tags=self._tags(),
            # Losing this key makes every Kubernetes secret unreadable: protected with the cluster.
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.deletion_protection, retain_on_delete=args.deletion_protection
            ),
        )
        aws.kms.Alias(
            f"{name}-secrets-alias",
            name=f"alias/{args.cluster_name}-eks-secrets",
            target_key_id=self.secrets_key.key_id,
            opts=self._child,
        )

    def _create_iam(self) -> None:
        name = self._name
        self.cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            description="EKS control plane",
            assume_role_policy=documents.cluster_assume_role_policy(),
            tags=self._tags(),
            opts=self._child,
        )
        self._cluster_role_attachments: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-{policy}",
                role=self.cluster_role.name,
                policy_arn=self._policy_arn(policy),
                opts=self._child,
            )
            for policy in documents.CLUSTER_ROLE_POLICIES
        ]
        self._cluster_role_attachments.append(
            aws.iam.RolePolicy(
                f"{name}-cluster-secrets-key",
                role=self.cluster_role.id,
                policy=self.secrets_key.arn.apply(documents.secrets_key_usage_policy),
                opts=self._child,
            )
        )
        self.node_role = aws.iam.Role(
            f"{name}-node-role",
            description="EKS system nodes",
            assume_role_policy=documents.node_assume_role_policy(),
            tags=self._tags(),
            opts=self._child,
        )
        self._node_role_attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=self.node_role.name,
                policy_arn=self._policy_arn(policy),
                opts=self._child,
            )
            for policy in documents.NODE_ROLE_POLICIES
        ]

    def _create_control_plane(self) -> None:
        name, args = self._name, self._args
        # EKS would create this group itself with no retention and no key; creating it first sets both.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_kms_key_arn,
            tags=self._tags(),
            # The audit log: kept (and never deleted by Pulumi) where the cluster is protected.
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.deletion_protection, retain_on_delete=args.deletion_protection
            ),
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=self.cluster_role.arn,
            vpc_config={
                "subnet_ids": args.private_subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": args.endpoint_public,
                # An empty list would mean "0.0.0.0/0" to EKS; with the public endpoint off it is ignored.
                "public_access_cidrs": list(args.public_access_cidrs) if args.endpoint_public else None,
            },
            encryption_config={"provider": {"key_arn": self.secrets_key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(documents.CONTROL_PLANE_LOG_TYPES),
            access_config={
                "authentication_mode": "API",
                # Admins are explicit access entries below; the deploying identity gets no hidden admin rights.
                "bootstrap_cluster_creator_admin_permissions": False,
            },
            # Add-ons are managed below at pinned versions instead of the unmanaged defaults.
            bootstrap_self_managed_addons=False,
            upgrade_policy={"support_type": args.support_type},
            deletion_protection=args.deletion_protection,
            kubernetes_network_config={"ip_family": "ipv4"},
            tags=self._tags(),
            opts=pulumi.ResourceOptions(
                parent=self,
                # the role's permissions and the log group must exist before the control plane starts
                depends_on=[*self._cluster_role_attachments, self.log_group],
            ),
        )

    def grant_access(self, admin: AdminAccess, opts: pulumi.ResourceOptions | None = None) -> pulumi.Resource:
        """An access entry and its access policy for one IAM principal (also used for the in-VPC runner's role)."""
        entry, association = create_access(
            self._name,
            admin,
            cluster_name=self.cluster.name,
            partition=self._partition,
            tags=self._tags(),
            opts=pulumi.ResourceOptions.merge(self._child, opts),
        )
        self.access_ready.extend([entry, association])
        return association

    def _create_addons(self, addons: Sequence[str], depends_on: list[pulumi.Resource]) -> list[aws.eks.Addon]:
        name, args = self._name, self._args
        created = []
        for addon in addons:
            pod_identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None
            if addon in documents.ADDON_POD_IDENTITY:
                service_account, policy = documents.ADDON_POD_IDENTITY[addon]
                role = aws.iam.Role(
                    f"{name}-{addon}-role",
                    description=f"EKS add-on {addon} (Pod Identity)",
                    assume_role_policy=self.cluster.name.apply(
                        functools.partial(_addon_trust_policy, service_account=service_account)
                    ),
                    tags=self._tags(),
                    opts=self._child,
                )
                aws.iam.RolePolicyAttachment(
                    f"{name}-{addon}-{policy}", role=role.name, policy_arn=self._policy_arn(policy), opts=self._child
                )
                pod_identity = [
                    aws.eks.AddonPodIdentityAssociationArgs(service_account=service_account, role_arn=role.arn)
                ]
            created.append(
                aws.eks.Addon(
                    f"{name}-addon-{addon}",
                    cluster_name=self.cluster.name,
                    addon_name=addon,
                    addon_version=args.addon_versions[addon],
                    configuration_values=documents.addon_configuration(addon, args.tags),
                    pod_identity_associations=pod_identity,
                    resolve_conflicts_on_create="OVERWRITE",
                    resolve_conflicts_on_update="OVERWRITE",
                    tags=self._tags(),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
                )
            )
        return created

    def _create_system_node_group(self, early_addons: list[aws.eks.Addon]) -> None:
        name, args = self._name, self._args
        ng = args.system_node_group
        launch_template = node_launch_template(
            f"{name}-system-lt",
            description=f"{args.cluster_name} system nodes",
            ami_type=ng.ami_type,
            disk_size_gib=ng.disk_size_gib,
            instance_tags={**args.tags, "Name": f"{args.cluster_name}-system"},
            tags=self._tags(),
            opts=self._child,
        )
        self.system_node_group = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=self.cluster.name,
            version=self.cluster.version,
            node_role_arn=self.node_role.arn,
            subnet_ids=args.private_subnet_ids,
            instance_types=list(ng.instance_types),
            capacity_type=ng.capacity_type,
            ami_type=ng.ami_type,
            scaling_config={"min_size": ng.min_size, "desired_size": ng.desired_size, "max_size": ng.max_size},
            update_config={"max_unavailable": 1},
            launch_template={"id": launch_template.id, "version": launch_template.latest_version.apply(str)},
            labels=dict(ng.labels),
            tags=self._tags(),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self._node_role_attachments, *early_addons],
                # Scaling changes desired_size at run time; re-applying the config would undo it.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

    def _create_kubeconfig(self) -> None:
        args = self._args
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data).apply(
                lambda v: json.dumps(
                    documents.kubeconfig(v[0], v[1], v[2], args.region, args.get_token), sort_keys=True
                )
            )
        )


def create_access(
    name: str,
    admin: AdminAccess,
    *,
    cluster_name: pulumi.Input[str],
    partition: pulumi.Output[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.eks.AccessEntry, aws.eks.AccessPolicyAssociation]:
    """An access entry (`{name}-access-{key}`) and its access policy association for one IAM principal, on a
    cluster created here or adopted."""
    key = admin.resource_key()
    entry = aws.eks.AccessEntry(
        f"{name}-access-{key}",
        cluster_name=cluster_name,
        principal_arn=admin.principal_arn,
        type="STANDARD",
        tags=dict(tags),
        opts=opts,
    )
    scope = (
        aws.eks.AccessPolicyAssociationAccessScopeArgs(type="namespace", namespaces=list(admin.namespaces))
        if admin.namespaces
        else aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster")
    )
    association = aws.eks.AccessPolicyAssociation(
        f"{name}-access-{key}-policy",
        cluster_name=cluster_name,
        principal_arn=entry.principal_arn,
        policy_arn=partition.apply(lambda p: documents.access_policy_arn(p, admin.access_policy)),
        access_scope=scope,
        opts=opts,
    )
    return entry, association


def _addon_trust_policy(cluster_name: str, service_account: str) -> str:
    return pod_identity_trust_policy(cluster_name, "kube-system", service_account)


def _principal_key(arn: str) -> str:
    """A stable, unique resource-name key for an IAM principal: its account and last path segment."""
    account = arn.split(":")[4]
    tail = arn.rsplit("/", 1)[-1].lower()
    return account + "-" + "".join(c if c.isalnum() or c == "-" else "-" for c in tail)
