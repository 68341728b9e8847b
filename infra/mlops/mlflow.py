"""MLflow tracking server and model registry, the Kubernetes side (cluster layer): namespace, service account,
the database's CA roots (ConfigMap), the server Deployment (basic auth on; it reads its database and admin secrets
from Secrets Manager at start, and the database password for each new connection), Service, PodDisruptionBudget
and, optionally, an internal ALB Ingress.

The database, the secrets and the Pod Identity role are `infra.mlops.cloud.MlflowCloud`, in the cloud layer. The
server's command and environment come from `documents.mlflow_command` / `documents.mlflow_env`, the same
functions the contract test runs a real MLflow server with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra import platform_policies
from mlplatform.infra import platform_policy_resources as policy_resources
from mlplatform.infra.catalog import versions
from mlplatform.infra.k8s_documents import pod_disruption_budget, pod_security_labels, service
from mlplatform.infra.mlops import documents
from mlplatform.infra.mlops.documents import (
    ARTIFACTS_PREFIX,
    MLFLOW_NAMESPACE,
    MLFLOW_PORT,
    MLFLOW_SERVICE_ACCOUNT,
    MlflowServer,
)

if TYPE_CHECKING:
    from mlplatform.infra.platform_policies import ClusterAddresses

COMPONENT_TYPE = "mlplatform:mlops:Mlflow"


@dataclass(frozen=True, kw_only=True)
class MlflowArgs:
    region: str
    db_secret_arn: pulumi.Input[str]
    """The database connection secret (JSON) the launcher reads at start."""
    admin_secret_arn: pulumi.Input[str] | None
    """The basic-auth administrator secret; None when authentication is off."""
    artifacts_bucket_name: pulumi.Input[str]
    image: pulumi.Input[str] = field(default_factory=lambda: versions.image("mlflow"))
    """The server image (the cluster layer passes it through the image cache when that serves its registry)."""
    replicas: int = 1
    workers: int = 2
    ingress_enabled: bool = False
    ingress_hostname: str | None = None
    ingress_certificate_arn: str | None = None
    registry_clients: bool = False
    """Admit the serving namespace's registry-served predictors (their init container resolves `models:/`)."""
    accounts_job: bool = False
    """The `mlflow-accounts` Job runs in the namespace (`MlflowAccounts`): admit it to the server and to Secrets
    Manager."""
    ingress_depends_on: Sequence[pulumi.Resource] = ()
    """The load balancer controller: its webhook validates Ingresses, and it must outlive the Ingress (finalizer)."""
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    depends_on: Sequence[pulumi.Resource] = ()
    """The server's AWS side when it is created in the same program (database, secrets, Pod Identity)."""
    addresses: pulumi.Input[ClusterAddresses] = field(default_factory=lambda: platform_policies.ClusterAddresses())
    """What the namespace's NetworkPolicies and the database guard name (the private subnets the database lives
    in, the interface endpoints)."""


class Mlflow(pulumi.ComponentResource):
    """MLflow for one cluster. Needs the `kubernetes` provider in `opts.providers`."""

    service_url: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._create_kubernetes_objects()
        self.service_url = pulumi.Output.from_input(documents.MLFLOW_IN_CLUSTER_URL)
        self.register_outputs({"service_url": self.service_url})

    # -- Kubernetes ----------------------------------------------------------------------------------------------

    def _create_kubernetes_objects(self) -> None:
        name, args = self._name, self._args
        labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": MLFLOW_NAMESPACE, "labels": {**labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        after_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        load_balancer = bool(args.ingress_enabled and args.ingress_hostname)
        policy_resources.network_policies(
            f"{name}-{MLFLOW_NAMESPACE}",
            lambda a: platform_policies.mlflow_policies(
                a,
                labels,
                load_balancer=load_balancer,
                registry_clients=args.registry_clients,
                accounts_job=args.accounts_job,
            ),
            args.addresses,
            namespace,
            self,
        )
        # No pod of another namespace reaches the database, whatever that namespace's policies say.
        policy_resources.database_guard_resource(f"{name}-database-guard", args.addresses, labels, self._child)
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={"name": MLFLOW_SERVICE_ACCOUNT, "namespace": MLFLOW_NAMESPACE, "labels": labels},
            automount_service_account_token=False,  # the server never calls the Kubernetes API
            opts=after_namespace,
        )
        # The server verifies the database's certificate (verify-full) against the region's RDS roots.
        ca = documents.database_ca_configmap(args.region, labels)
        database_ca = k8s.core.v1.ConfigMap(
            f"{name}-database-ca", metadata=ca["metadata"], data=ca["data"], opts=after_namespace
        )
        extra_hosts = [args.ingress_hostname] if args.ingress_enabled and args.ingress_hostname else []
        admin_arn = args.admin_secret_arn if args.admin_secret_arn is not None else ""
        manifest = pulumi.Output.all(args.db_secret_arn, admin_arn, args.artifacts_bucket_name).apply(
            lambda v: documents.mlflow_deployment(
                server=MlflowServer(
                    db_secret_id=v[0],
                    admin_secret_id=v[1] or None,
                    artifacts_destination=f"s3://{v[2]}/{ARTIFACTS_PREFIX.rstrip('/')}",
                    region=args.region,
                    workers=args.workers,
                    allowed_hosts=documents.mlflow_allowed_hosts(
                        documents.MLFLOW_SERVICE, MLFLOW_NAMESPACE, extra_hosts
                    ),
                ),
                image=args.image,
                replicas=args.replicas,
                labels=labels,
                node_selector=args.system_node_selector,
            )
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            # The launcher reads both secrets and needs the pod's AWS identity at start (from the cloud layer, or
            # `depends_on` when both sides are in one program).
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[namespace, service_account, database_ca, *args.depends_on]
            ),
        )
        selector = documents.MLFLOW_SELECTOR
        svc = service(documents.MLFLOW_SERVICE, MLFLOW_NAMESPACE, selector, MLFLOW_PORT, labels)
        service_resource = k8s.core.v1.Service(
            f"{name}-service", metadata=svc["metadata"], spec=svc["spec"], opts=after_namespace
        )
        pdb = pod_disruption_budget("mlflow", MLFLOW_NAMESPACE, selector, labels, args.replicas)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=after_namespace
        )
        if args.ingress_enabled and args.ingress_hostname:
            ingress = documents.internal_alb_ingress(
                name="mlflow",
                namespace=MLFLOW_NAMESPACE,
                service_name=documents.MLFLOW_SERVICE,
                port=MLFLOW_PORT,
                hostname=args.ingress_hostname,
                certificate_arn=args.ingress_certificate_arn,
                labels=labels,
            )
            k8s.networking.v1.Ingress(
                f"{name}-ingress",
                metadata=ingress["metadata"],
                spec=ingress["spec"],
                # The controller's webhook validates the Ingress, and it must outlive the Ingress (its finalizer
                # removes the ALB); the backend Service must exist for the target group.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[namespace, service_resource, *args.ingress_depends_on]
                ),
            )


ACCOUNTS_COMPONENT_TYPE = "mlplatform:mlops:MlflowAccounts"


@dataclass(frozen=True, kw_only=True)
class MlflowAccountsArgs:
    usernames: Sequence[str]
    """The accounts to keep: the registry reader, one per team that runs the workflow templates."""
    admin_secret_arn: pulumi.Input[str]
    region: str
    image: pulumi.Input[str] = field(default_factory=lambda: versions.image("mlflow"))
    """The MLflow server's image (the Job runs `infra/mlops/accounts.py` in it)."""
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    server: Sequence[pulumi.Resource] = ()
    """The `Mlflow` component: its namespace holds the Secret, and the Job signs in to its server."""
    generation: int = 0
    """The passwords' generation (config `mlflow.auth.accounts_generation`): a new one regenerates every password
    (the RandomPasswords' keepers) and replaces the Job that sets them."""


class MlflowAccounts(pulumi.ComponentResource):
    """MLflow basic-auth accounts the platform's own workloads sign in with: a generated password each, kept in the
    Secret `mlflow-accounts` (mlflow namespace) that the `mlflow-accounts` Job reads to create the accounts or set
    their passwords. `credentials_secret` gives a namespace whose pods sign in as an account its own Secret."""

    def __init__(self, name: str, args: MlflowAccountsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        import pulumi_random as random

        super().__init__(ACCOUNTS_COMPONENT_TYPE, name, None, opts)
        labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        self._passwords: dict[str, pulumi.Output[str]] = {}
        for user in sorted(args.usernames):
            generated = random.RandomPassword(
                f"{name}-{user}-password",
                length=32,
                special=False,  # sent in a Basic auth header; no quoting anywhere
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                keepers={"generation": str(args.generation)},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self._passwords[user] = pulumi.Output.secret(generated.result)
        value: pulumi.Output[str] = pulumi.Output.all(*self._passwords.values()).apply(
            lambda v: documents.accounts_secret_value(dict(zip(self._passwords, v, strict=True)))
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": documents.ACCOUNTS_SECRET, "namespace": MLFLOW_NAMESPACE, "labels": labels},
            type="Opaque",
            string_data={documents.ACCOUNTS_FILE: value},  # secret: the passwords are
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.server)),
        )

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={"name": documents.ACCOUNTS_SERVICE_ACCOUNT, "namespace": MLFLOW_NAMESPACE, "labels": labels},
            automount_service_account_token=False,  # the Job never calls the Kubernetes API
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.server)),
        )

        def job(image: str = "", admin_secret_id: str = "") -> dict[str, Any]:
            return documents.accounts_job(
                image=image,
                admin_secret_id=admin_secret_id,
                region=args.region,
                usernames=list(self._passwords),
                labels=labels,
                node_selector=args.system_node_selector,
                generation=args.generation,
            )

        spec = pulumi.Output.all(args.image, args.admin_secret_arn).apply(lambda v: job(v[0], v[1])["spec"])
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=job()["metadata"],
            spec=spec,
            # The server must answer (the Deployment is ready) and the Secret exist; the Job's name is fixed, so a
            # changed template deletes the old Job before creating the new one.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[secret, service_account, *args.server],
                delete_before_replace=True,
            ),
        )
        """Done: every account exists with its Secret's password (the Secrets that use them wait for it)."""
        self.register_outputs({})

    def credentials_secret(
        self,
        resource_name: str,
        *,
        user: str,
        namespace: str,
        secret_name: str,
        labels: Mapping[str, str],
        depends_on: Sequence[pulumi.Resource],
    ) -> k8s.core.v1.Secret:
        """The Secret (keys `username`, `password`) in `namespace` that the pods signing in as `user` name;
        `depends_on`: that namespace. It is made once the Job has set the account, so a pod that reads it signs in
        at its first try."""
        secret = documents.credentials_secret(
            name=secret_name, namespace=namespace, username=user, password=self._passwords[user], labels=labels
        )
        return k8s.core.v1.Secret(
            resource_name,
            metadata=secret["metadata"],
            type=secret["type"],
            string_data=secret["stringData"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, self.job]),
        )
