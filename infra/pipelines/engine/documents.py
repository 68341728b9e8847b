"""Pure builders for the pipeline engine (Argo Workflows, chart `argo-workflows`): the chart's values, the `argo`
namespace's network policies, and per team the objects that let it run workflows in its own namespace. No
resources, no I/O.

Per team (namespace `team-<name>`):
- the `workflow` service account, which carries the team's AWS role (Pod Identity, `infra.tenancy.cloud`): the
  controller's `workflowDefaults` make it every workflow's default, so workflow pods reach the lake with the team's
  role and nothing else;
- the executor's Role and RoleBinding (`workflowtaskresults` create and patch: what the `wait` container of a
  workflow pod needs since Argo Workflows 3.4, as the chart's own `workflow-role.yaml`);
- the team members' Role and RoleBinding on Argo's kinds (workflows, templates, cron workflows);
- the `artifact-repositories` ConfigMap: the namespace's default artifact repository, `pipelines/<team>/` of the
  lake's artifacts zone, with the SDK's credentials (the pod's Pod Identity role), no static keys;
- a NetworkPolicy letting workflow pods (and only pods Argo labels as such) reach the API server, which the `wait`
  container calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mlplatform.infra import platform_policies
from mlplatform.infra.k8s_documents import api_server_egress, pod_security, restricted_container_security

ARGO_NAMESPACE = "argo"
RELEASE_NAME = "argo-workflows"
SERVER_PORT = 2746
WORKFLOW_SERVICE_ACCOUNT = "workflow"
"""Service account of a team's namespace that runs its workflows' pods; carries the team's AWS role."""
ARTIFACT_REPOSITORIES = "artifact-repositories"
"""The ConfigMap Argo reads a namespace's artifact repositories from (its documented default name)."""
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
ARTIFACT_REPOSITORY_KEY = "default-v1-s3-artifact-repository"
EXECUTOR_ROLE = "argo-workflow-executor"
TEAM_ROLE = "argo-workflows-team"
WORKFLOW_POD_LABEL = "workflows.argoproj.io/workflow"
"""The label the controller puts on every pod of a workflow."""
EXECUTOR_API_POLICY = "allow-argo-executor-api-server"
CLUSTER_TEMPLATES_READER = "argo-cluster-workflow-templates-reader"
WORKFLOW_UID = 8737
"""argoexec's user; the default user of workflow pods (any non-root uid satisfies Pod Security `restricted`)."""
READ = ("get", "list", "watch")
MANAGE = (*READ, "create", "update", "patch", "delete", "deletecollection")


def pipelines_prefix(team: str) -> str:
    """A team's prefix in the lake's artifacts zone: its workflows' artifacts and logs."""
    return f"pipelines/{team}/"


def _pod_security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict[str, Any]:
    """`k8s_documents.restricted_container_security` with the RuntimeDefault seccomp profile: what Pod Security
    `restricted` admits for a container (controller, server, executor, and the templates' step containers)."""
    return {**restricted_container_security(), "seccompProfile": {"type": "RuntimeDefault"}}


def _group_subjects(groups: Sequence[str]) -> list[dict[str, Any]]:
    return [{"kind": "Group", "name": g, "apiGroup": "rbac.authorization.k8s.io"} for g in groups]


def _role_binding(
    kind: str, name: str, namespace: str | None, subjects: list[dict[str, Any]], labels: Mapping[str, str]
) -> dict[str, Any]:
    """A RoleBinding (`kind` Role, in `namespace`) or ClusterRoleBinding (`kind` ClusterRole, no namespace) named
    as the role it grants."""
    metadata = {"name": name, **({"namespace": namespace} if namespace is not None else {}), "labels": dict(labels)}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if kind == "Role" else "ClusterRoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        "subjects": subjects,
    }


def workflow_defaults() -> dict[str, Any]:
    """What every workflow gets unless it says otherwise (controller config `workflowDefaults`, a Workflow whose
    spec is merged under each submitted one): the team's `workflow` service account and a pod security context
    that Pod Security `restricted` admits. Checked against the Workflow CRD by the tests."""
    return {
        "metadata": {"labels": {"app.kubernetes.io/part-of": "ml-platform"}},
        "spec": {
            "serviceAccountName": WORKFLOW_SERVICE_ACCOUNT,
            "securityContext": pod_security(WORKFLOW_UID),
            # Finished workflows (and their pods) go after a day: the archive is off, the lake keeps the logs.
            "ttlStrategy": {"secondsAfterCompletion": 86400},
            "podGC": {"strategy": "OnWorkflowSuccess"},
        },
    }


def argo_workflows_values(
    *,
    team_namespaces: Sequence[str],
    node_selector: Mapping[str, str],
    labels: Mapping[str, str],
    server_replicas: int = 1,
) -> dict[str, Any]:
    """Values of the argo-workflows chart (keys as in its values.yaml at 1.0.18, which has no values.schema.json;
    the tests check every key set here exists there).

    - CRDs: the chart's minimal CRDs, as templates (`crds.full: false`). The full ones are applied by a hook Job
      that downloads them from GitHub at install time (`templates/crds-install-job.yaml`), which the `argo`
      namespace's policies (no internet) forbid. What the platform submits is checked against the full CRD offline.
    - No aggregated ClusterRoles (`createAggregateRoles: false`): Argo's kinds reach the built-in admin/edit/view
      roles otherwise; teams get them from `team_role`, in their own namespace only.
    - The workflow service account and its Role come per team from this module, not from the chart.
    - The server: a ClusterIP Service, no Ingress, no HTTPRoute; `client` auth (each request carries the caller's
      Kubernetes token, so a member sees only what the team's RBAC allows). No SSO.
    - No `persistence`: the workflow archive is off, and no database is configured at all.
    - Controller, server, executor (init/wait containers) and main containers run with `restricted` security
      contexts; workflow pods default to `workflow_defaults`.
    """
    common = {"nodeSelector": dict(node_selector)}
    return {
        "crds": {"install": True, "keep": True, "full": False},
        "createAggregateRoles": False,
        "singleNamespace": False,
        "commonLabels": dict(labels),
        "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
        "controller": {
            **common,
            "workflowNamespaces": list(team_namespaces),
            "rbac": {"create": True, "accessAllSecrets": False, "writeConfigMaps": False},
            "podSecurityContext": _pod_security_context(),
            "securityContext": container_security_context(),
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "workflowDefaults": workflow_defaults(),
        },
        "mainContainer": {"securityContext": container_security_context()},
        "executor": {"securityContext": container_security_context()},
        "server": {
            **common,
            "enabled": True,
            "replicas": server_replicas,
            "serviceType": "ClusterIP",
            "authModes": ["client"],
            "ingress": {"enabled": False},
            "podSecurityContext": _pod_security_context(),
            "securityContext": {**container_security_context(), "readOnlyRootFilesystem": False},
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        },
        "useStaticCredentials": False,
    }


SERVER_SELECTOR = {"app.kubernetes.io/name": f"{RELEASE_NAME}-server", "app.kubernetes.io/instance": RELEASE_NAME}
"""The server's pods (argo-helm 1.0.18 `argo-workflows.selectorLabels` with name `server`)."""
RETRAIN_TRIGGER_ROLE = "mlp-retrain-trigger"


def argo_event_url(namespace: str, discriminator: str) -> str:
    """The Argo server's event endpoint for `namespace` (plain HTTP inside the cluster: the chart's `secure: false`)."""
    return f"http://{RELEASE_NAME}-server.{ARGO_NAMESPACE}.svc:{SERVER_PORT}/api/v1/events/{namespace}/{discriminator}"


def argo_namespace_policies(labels: Mapping[str, str], *, event_senders: bool = False) -> list[dict[str, Any]]:
    """The `argo` namespace: default deny, DNS, and the API server for the controller and the server (neither
    calls AWS: workflow pods reach the lake with their team's role). Members use `kubectl port-forward` (through
    the API server, with their own RBAC); with `event_senders`, Alertmanager's pods reach the server's port (its
    event endpoint, for drift alerts), and nothing else does."""
    ns = ARGO_NAMESPACE
    policies = [
        platform_policies.default_deny(ns, labels),
        platform_policies.dns(ns, labels),
        platform_policies.api_server(ns, labels),
    ]
    if event_senders:
        alertmanager = platform_policies.alertmanager_pods()
        policies.append(
            platform_policies.ingress(
                ns,
                "server-events-from-alertmanager",
                labels,
                {"matchLabels": dict(SERVER_SELECTOR)},
                [([alertmanager], [SERVER_PORT])],
            )
        )
    return policies


def retrain_trigger_rbac(
    namespace: str, service_account: tuple[str, str], labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the sender of drift events needs in a team's namespace to have the server submit a workflow for it
    (Argo's events docs and its example role `submit-workflow-template-role.yaml`, v4.1.2): list the bindings,
    create the workflow. Its ClusterWorkflowTemplate comes through `cluster_templates_reader`."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": RETRAIN_TRIGGER_ROLE, "namespace": namespace, "labels": dict(labels)},
        "rules": [
            {"apiGroups": ["argoproj.io"], "resources": ["workfloweventbindings"], "verbs": ["list"]},
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
        ],
    }
    sa_namespace, sa_name = service_account
    subject = {"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}
    return role, _role_binding("Role", RETRAIN_TRIGGER_ROLE, namespace, [subject], labels)


def retrain_trigger_templates_binding(service_account: tuple[str, str], labels: Mapping[str, str]) -> dict[str, Any]:
    sa_namespace, sa_name = service_account
    binding = _role_binding(
        "ClusterRole",
        CLUSTER_TEMPLATES_READER,
        None,
        [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}],
        labels,
    )
    binding["metadata"]["name"] = f"{CLUSTER_TEMPLATES_READER}-{RETRAIN_TRIGGER_ROLE}"
    return binding


def workflow_service_account(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": WORKFLOW_SERVICE_ACCOUNT, "namespace": namespace, "labels": dict(labels)},
    }


def executor_role(namespace: str, labels: Mapping[str, str], *, ray_jobs: bool = False) -> dict[str, Any]:
    """What a workflow pod's `wait` container needs (argo-helm templates/controller/workflow-role.yaml); with
    `ray_jobs`, what `mlp-train-rayjob`'s resource step needs: create a RayJob and read it until KubeRay's verdict
    (nothing of the cluster KubeRay makes from it: the operator makes the pods)."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]
    if ray_jobs:
        rules.append({"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list", "watch"]})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": EXECUTOR_ROLE, "namespace": namespace, "labels": dict(labels)},
        "rules": rules,
    }


def executor_role_binding(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    account = {"kind": "ServiceAccount", "name": WORKFLOW_SERVICE_ACCOUNT, "namespace": namespace}
    return _role_binding("Role", EXECUTOR_ROLE, namespace, [account], labels)


def team_role(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The team's members on Argo's kinds in their namespace: submit, watch, stop and delete workflows, write
    templates and cron workflows; read task results. No ClusterWorkflowTemplates (cluster-wide) and no event
    bindings (the server's event endpoint is not offered)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": TEAM_ROLE, "namespace": namespace, "labels": dict(labels)},
        "rules": [
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["workflows", "workflowtemplates", "cronworkflows"],
                "verbs": list(MANAGE),
            },
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["workflowtaskresults", "workflowtasksets", "workflowartifactgctasks"],
                "verbs": list(READ),
            },
        ],
    }


def team_role_binding(namespace: str, groups: Sequence[str], labels: Mapping[str, str]) -> dict[str, Any]:
    return _role_binding("Role", TEAM_ROLE, namespace, _group_subjects(groups), labels)


def artifact_repository(team: str, bucket: str, region: str) -> dict[str, Any]:
    """The team's S3 artifact repository (Argo's `ArtifactRepository`; its `s3` fields as in the Workflow CRD's
    `status.artifactRepositoryRef.artifactRepository`): the lake's artifacts bucket, keys under
    `pipelines/<team>/`, credentials from the SDK chain (the pod's Pod Identity role). No encryption options: the
    bucket's default (SSE-KMS with the lake key) applies, and its policy refuses any other key."""
    return {
        "archiveLogs": True,
        "s3": {
            "bucket": bucket,
            "endpoint": f"s3.{region}.amazonaws.com",
            "region": region,
            "insecure": False,
            "useSDKCreds": True,
            "keyFormat": pipelines_prefix(team)
            + "{{workflow.creationTimestamp.Y}}/{{workflow.creationTimestamp.m}}/{{workflow.creationTimestamp.d}}"
            "/{{workflow.name}}/{{pod.name}}",
        },
    }


def artifact_repositories(
    team: str, namespace: str, bucket: str, region: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """The namespace's `artifact-repositories` ConfigMap, its one repository the default (annotation)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ARTIFACT_REPOSITORIES,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {DEFAULT_REPOSITORY_ANNOTATION: ARTIFACT_REPOSITORY_KEY},
        },
        "data": {ARTIFACT_REPOSITORY_KEY: json.dumps(artifact_repository(team, bucket, region), sort_keys=True)},
    }


def executor_api_policy(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Workflow pods (the label the controller sets) may reach the API server (the `wait` container writes task
    results). A member could put that label on another pod; it would reach the API server with its own service
    account's rights, which are none beyond the executor's Role."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": EXECUTOR_API_POLICY, "namespace": namespace, "labels": dict(labels)},
        "spec": api_server_egress({"matchExpressions": [{"key": WORKFLOW_POD_LABEL, "operator": "Exists"}]}),
    }


def cluster_templates_reader(labels: Mapping[str, str]) -> dict[str, Any]:
    """Read the shipped ClusterWorkflowTemplates (cluster-scoped, so no Role can grant it): what a member needs to
    submit a workflow from one (`argo submit --from clusterworkflowtemplate/mlp-train`) with their own token.
    Read only; writing them stays with the platform."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_TEMPLATES_READER, "labels": dict(labels)},
        "rules": [{"apiGroups": ["argoproj.io"], "resources": ["clusterworkflowtemplates"], "verbs": list(READ)}],
    }


def cluster_templates_reader_binding(groups: Sequence[str], labels: Mapping[str, str]) -> dict[str, Any]:
    return _role_binding("ClusterRole", CLUSTER_TEMPLATES_READER, None, _group_subjects(groups), labels)
