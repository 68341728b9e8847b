"""MLflow's AWS side (cloud layer): the RDS PostgreSQL backend (private, encrypted, TLS only), its credentials
and the basic-auth administrator in Secrets Manager, and the server's Pod Identity role (its artifacts prefix in
the lake and its two secrets). The server itself is `infra.mlops.mlflow.Mlflow`, in the cluster layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.catalog import versions
from infra.iam_documents import S3Grant, s3_access_policy
from infra.k8s_resources import pod_identity_role
from infra.mlops import documents
from infra.mlops.documents import (
    ARTIFACTS_PREFIX,
    MLFLOW_NAMESPACE,
    MLFLOW_SERVICE_ACCOUNT,
    RAY_NAMESPACE,
    RAY_PREFIX,
    RAY_SERVICE_ACCOUNT,
)

COMPONENT_TYPE = "mlplatform:mlops:MlflowCloud"
RAY_COMPONENT_TYPE = "mlplatform:mlops:RayCloud"
DB_NAME = "mlflow"
DB_USER = "mlflow"
# RDS refuses / @ " and space in master passwords; keep the rest of the printable set.
DB_PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"


@dataclass(frozen=True, kw_only=True)
class DatabaseSpec:
    instance_class: str = "db.t4g.small"
    allocated_storage_gib: int = 20
    max_allocated_storage_gib: int = 100
    multi_az: bool = False
    backup_retention_days: int = 7
    deletion_protection: bool = True


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
    admin_secret_name: str = "ml-platform/mlflow-admin"
    database: DatabaseSpec = DatabaseSpec()
    protect: bool = False
    """protect/retainOnDelete on the database (prod)."""
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
        # No egress rule: the database starts no connections.
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
        self._db_password = random.RandomPassword(
            f"{name}-db-password",
            length=40,
            special=True,
            override_special=DB_PASSWORD_SPECIALS,
            min_lower=2,
            min_upper=2,
            min_numeric=2,
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
            password=self._db_password.result,
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
            opts=self._child,
        )

    def _create_secrets(self) -> None:
        name, args = self._name, self._args
        self.db_secret = self._secret(
            f"{name}-db-secret",
            f"{args.label}/mlflow/database",
            "MLflow backend store: PostgreSQL connection (JSON: engine, host, port, dbname, username, password)",
        )

        def db_secret(v: list[Any]) -> str:
            return documents.db_secret_value(username=DB_USER, password=v[0], host=v[1], port=int(v[2]), dbname=DB_NAME)

        db_value: pulumi.Output[str] = pulumi.Output.all(
            self._db_password.result, self.database.address, self.database.port
        ).apply(db_secret)
        aws.secretsmanager.SecretVersion(
            f"{name}-db-secret-value",
            secret_id=self.db_secret.id,
            secret_string=_secret_str(db_value),
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
        secret_arns = [self.db_secret.arn] + ([self.admin_secret.arn] if args.auth_enabled else [])
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


def _secret_str(value: pulumi.Output[str]) -> pulumi.Output[str]:
    """Mark a value secret: Pulumi encrypts it in the state and never prints it."""
    marked: pulumi.Output[str] = pulumi.Output.secret(value)
    return marked


@dataclass(frozen=True, kw_only=True)
class LakeAccess:
    """Buckets a workload reads (whole) and the bucket it writes under its own prefix."""

    read_bucket_arns: Sequence[pulumi.Input[str]] = ()
    write_bucket_arn: pulumi.Input[str] | None = None
    key_arn: pulumi.Input[str] = ""


@dataclass(frozen=True, kw_only=True)
class RayCloudArgs:
    cluster_name: pulumi.Input[str]
    label: str
    lake: LakeAccess
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class RayCloud(pulumi.ComponentResource):
    """The Ray pods' Pod Identity role (cloud layer): read the lake's datasets, write under its own prefix."""

    def __init__(self, name: str, args: RayCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(RAY_COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.pod_identity = self._create_identity()
        self.register_outputs({})

    def _create_identity(self) -> aws.eks.PodIdentityAssociation:
        name, args = self._name, self._args
        lake = args.lake
        read = list(lake.read_bucket_arns)
        write = [lake.write_bucket_arn] if lake.write_bucket_arn is not None else []

        def policy(values: list[str]) -> str:
            key, *arns = values
            reads, writes = arns[: len(read)], arns[len(read) :]
            grants = [S3Grant(arn) for arn in reads] + [S3Grant(arn, RAY_PREFIX, write=True) for arn in writes]
            return s3_access_policy(grants, key_arn=key)

        return pod_identity_role(
            name,
            cluster_name=args.cluster_name,
            namespace=RAY_NAMESPACE,
            service_account=RAY_SERVICE_ACCOUNT,
            description=f"{args.label}: Ray pods (Pod Identity): read the lake, write under {RAY_PREFIX}",
            policy=pulumi.Output.all(lake.key_arn, *read, *write).apply(policy),
            tags=args.cost_tags,
            opts=self._child,
        )
