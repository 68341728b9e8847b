"""MLflow's AWS side (cloud layer): the RDS PostgreSQL backend (private, encrypted, TLS only) whose master
password RDS manages and rotates in Secrets Manager, the connection secret (where and as whom to connect; it names
the managed secret) and the basic-auth administrator in Secrets Manager, and the server's Pod Identity role (its
artifacts prefix in the lake and its three secrets). The server itself is `infra.mlops.mlflow.Mlflow`, in the
cluster layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from mlplatform.infra.catalog import versions
from mlplatform.infra.iam_documents import S3Grant, s3_access_policy
from mlplatform.infra.k8s_resources import pod_identity_role
from mlplatform.infra.mlops import documents
from mlplatform.infra.mlops.documents import (
    ACCOUNTS_SERVICE_ACCOUNT,
    ARTIFACTS_PREFIX,
    MLFLOW_NAMESPACE,
    MLFLOW_SERVICE_ACCOUNT,
    RAY_HEAD_SERVICE_ACCOUNT,
    RAY_NAMESPACE,
    RAY_PREFIX,
    RAY_SERVICE_ACCOUNT,
)

COMPONENT_TYPE = "mlplatform:mlops:MlflowCloud"
RAY_COMPONENT_TYPE = "mlplatform:mlops:RayCloud"
DB_NAME = "mlflow"
DB_USER = "mlflow"


@dataclass(frozen=True, kw_only=True)
class DatabaseSpec:
    instance_class: str = "db.t4g.small"
    allocated_storage_gib: int = 20
    max_allocated_storage_gib: int = 100
    multi_az: bool = False
    backup_retention_days: int = 7
    deletion_protection: bool = True
    password_rotation_days: int = 7
    """RDS rotates the master password it manages every 7 days unless told otherwise (RDS User Guide, "Password
    management with Amazon RDS and AWS Secrets Manager"); the platform sets the schedule explicitly."""


@dataclass(frozen=True, kw_only=True)
class MlflowCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, an Output of the cluster (the Pod Identity association names it)."""
    label: str
    """The cluster's configured name: a prefix for the database, secret and group names, and descriptions."""
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    cluster_security_group_id: pulumi.Input[str]
    """Security group of the nodes (EKS cluster security group): the only source allowed to reach the database."""
    key_arn: pulumi.Input[str]
    """The lake's KMS key: database storage, Performance Insights, the secrets and the artifacts."""
    artifacts_bucket_arn: pulumi.Input[str]
    auth_enabled: bool = True
    accounts_job: bool = False
    """The cluster layer runs the `mlflow-accounts` Job (`infra.mlops.MlflowAccounts`): its own Pod Identity role,
    which reads the admin secret and nothing else."""
    admin_secret_name: str
    """The admin secret the component creates (one per stack: `PlatformConfig.mlflow_admin_secret`)."""
    database: DatabaseSpec = DatabaseSpec()
    protect: bool = False
    """protect/retainOnDelete on the database and the two secrets the platform writes (prod)."""
    secret_recovery_days: int = 7
    """Secrets Manager recovery window (0 deletes at once, for disposable stacks)."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class MlflowCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    db_secret_arn: pulumi.Output[str]
    admin_secret_arn: pulumi.Output[str] | None
    db_endpoint: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._create_database()
        self._create_secrets()
        self._create_identity()
        self.register_outputs(
            {
                "db_secret_arn": self.db_secret_arn,
                "db_endpoint": self.db_endpoint,
                "admin_secret_arn": self.admin_secret_arn,
            }
        )

    # -- database ------------------------------------------------------------------------------------------------

    def _create_database(self) -> None:
        name, args = self._name, self._args
        db = args.database
        tags = dict(args.cost_tags)
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-db-subnets",
            name_prefix=f"{args.label}-mlflow-",
            description=f"{args.label} MLflow database: private subnets only",
            subnet_ids=args.private_subnet_ids,
            tags=tags,
            opts=self._child,
        )
        self.db_security_group = aws.ec2.SecurityGroup(
            f"{name}-db-sg",
            name_prefix=f"{args.label}-mlflow-db-",
            description=f"{args.label} MLflow database: PostgreSQL from the cluster's nodes only",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": f"{args.label}-mlflow-db"},
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )
        # No egress rule: the database starts no connections. The cluster security group is every pod's: in the
        # cluster, an Admin-tier ClusterNetworkPolicy keeps every namespace but MLflow's off 5432 (security groups
        # for pods were weighed and not used: `infra.platform_policies.database_guard`).
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-from-cluster",
            security_group_id=self.db_security_group.id,
            referenced_security_group_id=args.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            description="PostgreSQL from EKS nodes and pods",
            tags=tags,
            opts=self._child,
        )
        engine = versions.database("postgres")
        parameters = aws.rds.ParameterGroup(
            f"{name}-db-params",
            name_prefix=f"{args.label}-mlflow-",
            family=engine.parameter_group_family,
            description=f"{args.label} MLflow: TLS required, slow statements logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name=k, value=v, apply_method="pending-reboot")
                for k, v in documents.postgres_parameters().items()
            ],
            tags=tags,
            opts=self._child,
        )
        self.database = aws.rds.Instance(
            f"{name}-db",
            identifier_prefix=f"{args.label}-mlflow-",
            engine="postgres",
            engine_version=engine.engine_version,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            instance_class=db.instance_class,
            allocated_storage=db.allocated_storage_gib,
            max_allocated_storage=db.max_allocated_storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.key_arn,
            db_name=DB_NAME,
            username=DB_USER,
            # RDS generates the master password, keeps it in a Secrets Manager secret of its own (encrypted with
            # the platform key) and rotates it; it never passes through Pulumi or its state.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.key_arn,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.db_security_group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=db.multi_az,
            backup_retention_period=db.backup_retention_days,
            backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            delete_automated_backups=not args.protect,
            deletion_protection=db.deletion_protection,
            skip_final_snapshot=not args.protect,
            final_snapshot_identifier=f"{args.label}-mlflow-final" if args.protect else None,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.key_arn,
            performance_insights_retention_period=7,  # the free tier
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            iam_database_authentication_enabled=False,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                retain_on_delete=args.protect,
                custom_timeouts=pulumi.CustomTimeouts(**database_timeouts(db, final_snapshot=args.protect)),
            ),
        )
        self.db_endpoint = self.database.address
        self.master_secret_arn: pulumi.Output[str] = self.database.master_user_secrets.apply(_managed_secret_arn)
        # The managed secret belongs to RDS, which deletes it with the instance: Pulumi only sets its schedule, and
        # forgets the schedule on destroy rather than cancelling the rotation of a secret it does not own.
        aws.secretsmanager.SecretRotation(
            f"{name}-db-password-rotation",
            secret_id=self.master_secret_arn,
            rotation_rules={"automatically_after_days": db.password_rotation_days},
            rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

    # -- secrets -------------------------------------------------------------------------------------------------

    def _secret(self, resource_name: str, secret_name: str, description: str) -> aws.secretsmanager.Secret:
        args = self._args
        return aws.secretsmanager.Secret(
            resource_name,
            name=secret_name,
            description=description,
            kms_key_id=args.key_arn,
            recovery_window_in_days=args.secret_recovery_days,
            tags=dict(args.cost_tags),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )

    def _create_secrets(self) -> None:
        name, args = self._name, self._args
        self.db_secret = self._secret(
            f"{name}-db-secret",
            f"{args.label}/mlflow/database",
            "MLflow backend store: PostgreSQL connection (JSON: engine, host, port, dbname, username, sslmode, "
            "password_secret_id: the RDS-managed secret with the password)",
        )

        db_value: pulumi.Output[str] = pulumi.Output.all(
            self.master_secret_arn, self.database.address, self.database.port
        ).apply(lambda v: connection_secret(master_secret_arn=v[0], host=v[1], port=int(v[2])))
        aws.secretsmanager.SecretVersion(
            f"{name}-db-secret-value",
            secret_id=self.db_secret.id,
            secret_string=_secret_str(db_value),  # no password in it, but the SDK marks every secret string
            opts=self._child,
        )
        self.db_secret_arn = self.db_secret.arn
        self.admin_secret_arn = None
        self._secret_versions: list[pulumi.Resource] = []
        if not args.auth_enabled:
            return
        admin_password = random.RandomPassword(
            f"{name}-admin-password",
            length=32,
            special=False,  # typed into the UI's login box and into MLFLOW_TRACKING_PASSWORD
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            opts=self._child,
        )
        flask_key = random.RandomPassword(f"{name}-flask-secret-key", length=64, special=False, opts=self._child)

        def admin_secret(v: list[Any]) -> str:
            return documents.admin_secret_value(
                username=documents.MLFLOW_ADMIN_USER, password=v[0], flask_secret_key=v[1]
            )

        admin_value: pulumi.Output[str] = pulumi.Output.all(admin_password.result, flask_key.result).apply(admin_secret)
        self.admin_secret = self._secret(
            f"{name}-admin-secret",
            args.admin_secret_name,
            "MLflow basic-auth administrator (JSON: username, password, flask_secret_key)",
        )
        self._secret_versions.append(
            aws.secretsmanager.SecretVersion(
                f"{name}-admin-secret-value",
                secret_id=self.admin_secret.id,
                secret_string=_secret_str(admin_value),
                # Rotating the password in Secrets Manager must not be undone by the next `pulumi up`.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]),
            )
        )
        self.admin_secret_arn = self.admin_secret.arn

    # -- identity ------------------------------------------------------------------------------------------------

    def _create_identity(self) -> None:
        name, args = self._name, self._args
        # The managed secret is encrypted with the same key (master_user_secret_kms_key_id): one kms:Decrypt grant.
        secret_arns = [self.db_secret.arn, self.master_secret_arn] + (
            [self.admin_secret.arn] if args.auth_enabled else []
        )
        self.pod_identity = pod_identity_role(
            name,
            cluster_name=args.cluster_name,
            namespace=MLFLOW_NAMESPACE,
            service_account=MLFLOW_SERVICE_ACCOUNT,
            description=f"{args.label}: MLflow server (Pod Identity): its artifacts prefix and its secrets",
            policy=pulumi.Output.all(args.artifacts_bucket_arn, args.key_arn, *secret_arns).apply(
                lambda v: s3_access_policy(
                    [S3Grant(v[0], ARTIFACTS_PREFIX, write=True)], key_arn=v[1], secret_arns=v[2:]
                )
            ),
            tags=args.cost_tags,
            opts=self._child,
        )
        if args.auth_enabled and args.accounts_job:  # the accounts are basic-auth users
            pod_identity_role(
                f"{name}-accounts",
                cluster_name=args.cluster_name,
                namespace=MLFLOW_NAMESPACE,
                service_account=ACCOUNTS_SERVICE_ACCOUNT,
                description=f"{args.label}: MLflow accounts Job (Pod Identity): reads the admin secret, nothing else",
                policy=pulumi.Output.all(args.key_arn, self.admin_secret.arn).apply(
                    lambda v: s3_access_policy([], key_arn=v[0], secret_arns=[v[1]])
                ),
                tags=args.cost_tags,
                opts=self._child,
            )


def database_timeouts(db: DatabaseSpec, *, final_snapshot: bool) -> dict[str, str]:
    """How long `pulumi up`/`destroy` wait for the database, from its config.

    The provider's defaults (40 minutes to create, 80 to update, 60 to delete) fit a small single-AZ instance,
    which typically takes 5-10 minutes. A Multi-AZ instance also builds and syncs its standby (typically 15-25
    minutes), and storage is initialized and snapshotted in proportion to its size, so both get more room.
    """
    per_tib = 10 * max(1, -(-db.allocated_storage_gib // 1024))  # 10 minutes per started TiB
    create = (60 if db.multi_az else 40) + per_tib
    delete = 60 + (per_tib if final_snapshot else 0)
    return {"create": f"{create}m", "update": f"{80 + per_tib}m", "delete": f"{delete}m"}


def connection_secret(*, master_secret_arn: str, host: str, port: int) -> str:
    """The connection secret MLflow's launcher reads: the database's address, name and user, verify-full, and the
    RDS-managed secret that holds the password (no password)."""
    return documents.db_secret_value(
        username=DB_USER, host=host, port=port, dbname=DB_NAME, password_secret_id=master_secret_arn
    )


def _managed_secret_arn(secrets: Sequence[Any] | None) -> str:
    """The ARN of the secret RDS manages the master password in (one per instance with manage_master_user_password)."""
    if not secrets or not secrets[0].secret_arn:
        raise ValueError(
            "RDS reports no managed master user secret for the MLflow database yet (turning on "
            "manage_master_user_password for an existing instance may wait for its maintenance window): run "
            "`pulumi up` again once `aws rds describe-db-instances` shows MasterUserSecret, or apply it now with "
            "`aws rds modify-db-instance --db-instance-identifier <id> --manage-master-user-password "
            "--apply-immediately`"
        )
    return str(secrets[0].secret_arn)


def _secret_str(value: pulumi.Output[str]) -> pulumi.Output[str]:
    """Mark a value secret: Pulumi encrypts it in the state and never prints it."""
    marked: pulumi.Output[str] = pulumi.Output.secret(value)
    return marked


@dataclass(frozen=True, kw_only=True)
class RayCloudArgs:
    cluster_name: pulumi.Input[str]
    label: str
    artifacts_bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class RayCloud(pulumi.ComponentResource):
    """The Pod Identity role of the platform's Ray clusters (those configured without a team, in the `ray`
    namespace; cloud layer): read and write under `ray/` in the artifacts zone, nothing else of the lake, no team's
    prefix. Its workers (`ray`) and heads (`ray-head`) carry it. A team's clusters carry the team's role instead
    (`infra.tenancy.cloud.TenantsCloud`)."""

    def __init__(self, name: str, args: RayCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(RAY_COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.pod_identity = self._create_identity()
        self.register_outputs({})

    def _create_identity(self) -> aws.eks.PodIdentityAssociation:
        name, args = self._name, self._args
        return pod_identity_role(
            name,
            cluster_name=args.cluster_name,
            namespace=RAY_NAMESPACE,
            service_account=RAY_SERVICE_ACCOUNT,
            also_service_accounts=[RAY_HEAD_SERVICE_ACCOUNT],
            description=f"{args.label}: platform Ray clusters (Pod Identity): {RAY_PREFIX} in the artifacts zone",
            policy=pulumi.Output.all(args.artifacts_bucket_arn, args.key_arn).apply(
                lambda v: s3_access_policy([S3Grant(v[0], RAY_PREFIX, write=True)], key_arn=v[1])
            ),
            tags=args.cost_tags,
            opts=self._child,
        )
