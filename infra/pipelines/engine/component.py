"""The pipeline engine's component (cluster layer): the `argo` namespace and its network policies, the pinned
argo-workflows release, and per team the service account, RBAC, artifact repository and network policy of
`documents`. The team's namespace and AWS role come from `infra.tenancy`; the `workflow` service account's Pod
Identity association from the cloud layer (`infra.tenancy.cloud.TenantAccess.also_service_accounts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra.config import RetrainConfig
from mlplatform.infra.k8s_documents import pod_security_labels
from mlplatform.infra.k8s_resources import custom_resource, helm_release
from mlplatform.infra.mlops.documents import RayJobShape
from mlplatform.infra.pipelines import templates
from mlplatform.infra.pipelines.engine import documents
from mlplatform.infra.pipelines.engine.documents import ARGO_NAMESPACE, RELEASE_NAME, WORKFLOW_SERVICE_ACCOUNT
from mlplatform.infra.registry.documents import ImageCache
from mlplatform.infra.serving.documents import request_log_objects, rollout_role, vllm_rollout_role

COMPONENT_TYPE = "mlplatform:pipelines:PipelineEngine"


@dataclass(frozen=True, kw_only=True)
class TeamPipelines:
    team: str
    namespace: str
    groups: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: Sequence[pulumi.Resource] = ()
    """What must exist first: the team's Namespace (from `infra.tenancy`)."""
    retrain: RetrainConfig | None = None
    """The team's scheduled retraining (needs `PipelineEngineArgs.templates_image`)."""
    rollouts: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Registry-served InferenceServices (name -> what must exist first: the serving namespace, the
    InferenceService) the team's `workflow` account may roll out after a promotion (config's `promoted_by`)."""
    vllm_rollouts: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Registry-served vLLM servers (config name -> what must exist first: the serving namespace, the Deployment)
    the team's `workflow` account may roll out after a promotion (config's `promoted_by`)."""


@dataclass(frozen=True, kw_only=True)
class DriftJobs:
    logs_bucket: pulumi.Input[str]
    """The lake's raw bucket, where the InferenceServices' requests are logged."""
    pushgateway: str
    """The Pushgateway's URL (the template's default)."""


@dataclass(frozen=True, kw_only=True)
class PipelineEngineArgs:
    teams: Sequence[TeamPipelines]
    artifacts_bucket: pulumi.Input[str]
    """The lake's artifacts bucket, an Output of the cloud layer."""
    region: str
    server_replicas: int = 1
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    image_cache: ImageCache | None = None
    templates_image: str | None = None
    """The steps' image; set, the shipped ClusterWorkflowTemplates are installed (`infra.pipelines.templates`)."""
    drift: DriftJobs | None = None
    """Set: the `mlp-drift` template is installed, and each team whose retraining has `drift_from` runs it."""
    event_sender: tuple[str, str] | None = None
    """(namespace, service account) of what posts drift alerts to the server's event endpoint (Alertmanager); set,
    each team whose retraining has `on_drift` gets a WorkflowEventBinding and that account may trigger it."""
    mlflow_auth: bool = False
    """MLflow's basic auth is on: the train and promote steps sign in with their namespace's `mlflow-credentials`
    (`infra.mlops.MlflowAccounts.credentials_secret`, in the team's `ready`)."""
    ray_job: RayJobShape | None = None
    """Set (with `templates_image`): `mlp-train-rayjob` is installed and the `workflow` accounts may create RayJobs."""
    registry_reader: str = ""
    """The MLflow account registry-served pods sign in as: the promote step gives it READ on each champion."""


class PipelineEngine(pulumi.ComponentResource):
    """Argo Workflows and the teams' right to run workflows. Needs the `kubernetes` provider in `opts.providers`."""

    def __init__(self, name: str, args: PipelineEngineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        self.namespace = self._create_namespace()
        self.release = self._create_release()
        self.templates = self._create_templates()
        for team in args.teams:
            self._create_team(team)
        self.server_address = f"{RELEASE_NAME}-server.{ARGO_NAMESPACE}.svc:{documents.SERVER_PORT}"
        """The server's in-cluster address (ClusterIP; `kubectl -n argo port-forward` from a workstation)."""
        self.register_outputs({"server_address": self.server_address})

    def _create_namespace(self) -> k8s.core.v1.Namespace:
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-namespace",
            metadata={"name": ARGO_NAMESPACE, "labels": {**self._labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        for policy in documents.argo_namespace_policies(self._labels, event_senders=self._drift_teams() != []):
            k8s.networking.v1.NetworkPolicy(
                f"{self._name}-{policy['metadata']['name']}",
                metadata=policy["metadata"],
                spec=policy["spec"],
                opts=inside,
            )
        return namespace

    def _create_drift_trigger(
        self, key: str, team: TeamPipelines, r: RetrainConfig, sender: tuple[str, str], labels: Mapping[str, str]
    ) -> None:
        """The team's WorkflowEventBinding (a drift alert about its model submits `mlp-retrain`), and the sender's
        right to trigger it: list the bindings and create workflows in this namespace, read the templates."""
        binding = templates.retrain_event_binding(
            namespace=team.namespace,
            model=r.model,
            dataset=r.dataset,
            label=r.label,
            metric=r.metric,
            greater_is_better=r.greater_is_better,
            min_improvement=r.min_improvement,
            inference_service=r.inference_service,
            labels=labels,
        )
        # The CRD comes with the chart; the template it submits exists first.
        custom_resource(
            f"{key}-retrain-on-drift",
            binding,
            pulumi.ResourceOptions(parent=self, depends_on=[*team.ready, self.release, *self.templates]),
        )
        role, role_binding = documents.retrain_trigger_rbac(team.namespace, sender, labels)
        created = k8s.rbac.v1.Role(
            f"{key}-retrain-trigger-role",
            metadata=role["metadata"],
            rules=role["rules"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(team.ready)),
        )
        k8s.rbac.v1.RoleBinding(
            f"{key}-retrain-trigger-role-binding",
            metadata=role_binding["metadata"],
            role_ref=role_binding["roleRef"],
            subjects=role_binding["subjects"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*team.ready, created]),
        )

    def _create_drift_job(
        self,
        key: str,
        team: TeamPipelines,
        r: RetrainConfig,
        isvc: str,
        drift: DriftJobs,
        workflow: pulumi.Resource,
    ) -> None:
        """The team's `mlp-drift` CronWorkflow over its InferenceService's logged requests (the raw bucket is known
        at deploy time: the spec is an Output, the object is not)."""
        labels = dict(team.labels)

        def cron(bucket: str) -> dict[str, Any]:
            return templates.drift_cron_workflow(
                namespace=team.namespace,
                schedule=r.drift_schedule,
                model=r.model,
                inference_service=isvc,
                reference=r.dataset,
                label=r.label,
                logs=f"s3://{bucket}/{request_log_objects(team.team, isvc)}",
                suspend=r.suspend,
                labels=labels,
            )

        manifest = cron("")
        k8s.apiextensions.CustomResource(
            f"{key}-drift",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=pulumi.Output.from_input(drift.logs_bucket).apply(lambda b: cron(b)["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*team.ready, self.release, *self.templates, workflow]),
        )

    def _drift_teams(self) -> list[TeamPipelines]:
        """Teams whose retraining a drift alert starts."""
        args = self._args
        if args.event_sender is None or args.templates_image is None:
            return []
        return [t for t in args.teams if t.retrain is not None and t.retrain.retrains_on_drift]

    def _create_release(self) -> k8s.helm.v3.Release:
        args = self._args
        return helm_release(
            f"{self._name}-argo-workflows",
            "argo-workflows",
            ARGO_NAMESPACE,
            documents.argo_workflows_values(
                team_namespaces=[t.namespace for t in args.teams],
                node_selector=args.system_node_selector,
                labels=self._labels,
                server_replicas=args.server_replicas,
            ),
            # The team namespaces are the controller's workflow namespaces: they exist first.
            pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *[r for t in args.teams for r in t.ready]]),
            release_name=RELEASE_NAME,
            image_cache=args.image_cache,
        )

    def _create_templates(self) -> list[pulumi.Resource]:
        """The shipped ClusterWorkflowTemplates, and the right of every team's groups to read them (they are
        cluster-scoped: `argo submit --from clusterworkflowtemplate/...` reads them with the member's token)."""
        args = self._args
        if args.templates_image is None:
            return []
        # The chart installs the CRDs the templates are instances of.
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        created: list[pulumi.Resource] = [
            custom_resource(f"{self._name}-{manifest['metadata']['name']}", manifest, after_crds)
            for manifest in (
                templates.train_template(args.templates_image, self._labels, mlflow_auth=args.mlflow_auth),
                templates.evaluate_promote_template(
                    args.templates_image,
                    self._labels,
                    mlflow_auth=args.mlflow_auth,
                    registry_reader=args.registry_reader,
                ),
                templates.retrain_template(self._labels),
                *(
                    [
                        templates.train_rayjob_template(
                            args.templates_image, self._labels, args.ray_job, mlflow_auth=args.mlflow_auth
                        ),
                        # Its `checkpoints-bucket` parameter defaults to the lake's artifacts bucket.
                        templates.train_distributed_template(
                            args.templates_image,
                            self._labels,
                            args.ray_job,
                            args.artifacts_bucket,
                            mlflow_auth=args.mlflow_auth,
                        ),
                    ]
                    if args.ray_job is not None
                    else []
                ),
                *(
                    [templates.drift_template(args.templates_image, args.drift.pushgateway, self._labels)]
                    if args.drift is not None
                    else []
                ),
            )
        ]
        role = documents.cluster_templates_reader(self._labels)
        reader = k8s.rbac.v1.ClusterRole(
            f"{self._name}-cluster-templates-reader", metadata=role["metadata"], rules=role["rules"], opts=self._child
        )
        binding = documents.cluster_templates_reader_binding(
            sorted({g for t in args.teams for g in t.groups}), self._labels
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{self._name}-cluster-templates-reader-binding",
            metadata=binding["metadata"],
            role_ref=binding["roleRef"],
            subjects=binding["subjects"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[reader]),
        )
        if args.event_sender is not None and self._drift_teams():
            sender = documents.retrain_trigger_templates_binding(args.event_sender, self._labels)
            k8s.rbac.v1.ClusterRoleBinding(
                f"{self._name}-retrain-trigger-templates-reader",
                metadata=sender["metadata"],
                role_ref=sender["roleRef"],
                subjects=sender["subjects"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[reader]),
            )
        return created

    def _create_team(self, team: TeamPipelines) -> None:
        key = f"{self._name}-{team.team}"
        ns, labels = team.namespace, {**team.labels}
        inside = pulumi.ResourceOptions(parent=self, depends_on=list(team.ready))
        account = documents.workflow_service_account(ns, labels)
        workflow = k8s.core.v1.ServiceAccount(
            f"{key}-workflow-service-account", metadata=account["metadata"], opts=inside
        )
        for suffix, role, binding, subjects in (
            (
                "executor",
                documents.executor_role(ns, labels, ray_jobs=self._args.ray_job is not None and bool(self.templates)),
                documents.executor_role_binding(ns, labels),
                [workflow],
            ),
            ("members", documents.team_role(ns, labels), documents.team_role_binding(ns, team.groups, labels), []),
        ):
            created = k8s.rbac.v1.Role(
                f"{key}-{suffix}-role", metadata=role["metadata"], rules=role["rules"], opts=inside
            )
            k8s.rbac.v1.RoleBinding(
                f"{key}-{suffix}-role-binding",
                metadata=binding["metadata"],
                role_ref=binding["roleRef"],
                subjects=binding["subjects"],
                # The subjects are named by string: the service account they name exists first.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*team.ready, created, *subjects]),
            )
        if team in self._drift_teams() and team.retrain is not None and self._args.event_sender is not None:
            self._create_drift_trigger(key, team, team.retrain, self._args.event_sender, labels)
        grants = [
            (
                isvc,
                ready,
                rollout_role(isvc=isvc, team=team.team, service_account=WORKFLOW_SERVICE_ACCOUNT, labels=labels),
            )
            for isvc, ready in team.rollouts.items()
        ] + [
            (
                f"vllm-{server}",
                ready,
                vllm_rollout_role(
                    server=server, team=team.team, service_account=WORKFLOW_SERVICE_ACCOUNT, labels=labels
                ),
            )
            for server, ready in team.vllm_rollouts.items()
        ]
        for target, ready, (role, binding) in grants:
            # A Role in the shared serving namespace that reads and patches this one object, no other.
            grant = k8s.rbac.v1.Role(
                f"{key}-rollout-{target}",
                metadata=role["metadata"],
                rules=role["rules"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(ready)),
            )
            k8s.rbac.v1.RoleBinding(
                f"{key}-rollout-{target}-binding",
                metadata=binding["metadata"],
                role_ref=binding["roleRef"],
                subjects=binding["subjects"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[grant, workflow]),
            )
        repositories: pulumi.Output[Any] = pulumi.Output.from_input(self._args.artifacts_bucket).apply(
            lambda bucket: documents.artifact_repositories(team.team, ns, bucket, self._args.region, labels)
        )
        k8s.core.v1.ConfigMap(
            f"{key}-artifact-repositories",
            metadata=documents.artifact_repositories(team.team, ns, "", self._args.region, labels)["metadata"],
            data=repositories.apply(lambda cm: cm["data"]),
            opts=inside,
        )
        policy = documents.executor_api_policy(ns, labels)
        k8s.networking.v1.NetworkPolicy(
            f"{key}-{policy['metadata']['name']}", metadata=policy["metadata"], spec=policy["spec"], opts=inside
        )
        if team.retrain is not None and self.templates:
            r = team.retrain
            cron = templates.retrain_cron_workflow(
                namespace=ns,
                schedule=r.schedule,
                model=r.model,
                dataset=r.dataset,
                label=r.label,
                metric=r.metric,
                greater_is_better=r.greater_is_better,
                min_improvement=r.min_improvement,
                suspend=r.suspend,
                labels=labels,
                inference_service=r.inference_service,
            )
            # The CRD comes with the chart; the templates and the service account it names exist first (else its
            # first run fails).
            custom_resource(
                f"{key}-retrain",
                cron,
                pulumi.ResourceOptions(parent=self, depends_on=[*team.ready, self.release, *self.templates, workflow]),
            )
            if r.drift_from is not None and self._args.drift is not None:
                self._create_drift_job(key, team, r, r.drift_from, self._args.drift, workflow)
