"""A team member's effective Kubernetes RBAC on each planned stack: what they may and may not do in their own
namespace, in every other namespace and cluster-wide, evaluated from the planned ClusterRoles, Roles and bindings
and the built-in roles of Kubernetes (`mlp/data/k8s-rbac/bootstrap-roles.json`); then the same evaluator on a plan
that binds the team to the built-in `edit`, which must let the team delete its NetworkPolicies."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mlplatform.infra.tenancy.documents import TENANT_BINDING, TENANT_ROLE
from mlplatform.mlp import rbac
from mlplatform.mlp.planner import Plan, PlannedResource
from mlplatform.mlp.stackfile import Project, load_project, load_stack
from tests.conftest import ROOT, STACKS

WRITE = ("create", "update", "patch", "delete", "deletecollection")
MANAGE = ("get", "list", "watch", *WRITE)

# (API group, resource) a member may never change anywhere: the guardrails and what would escape them.
FORBIDDEN_WRITES = [
    ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "ingresses"),
    ("extensions", "networkpolicies"),
    ("extensions", "ingresses"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("", "resourcequotas"),
    ("", "limitranges"),
    ("apps", "daemonsets"),
    ("policy", "poddisruptionbudgets"),
    ("gateway.networking.k8s.io", "gateways"),
    ("gateway.networking.k8s.io", "httproutes"),
    ("gateway.networking.k8s.io", "grpcroutes"),
    ("gateway.networking.k8s.io", "referencegrants"),
    ("elbv2.k8s.aws", "targetgroupbindings"),
    ("", "replicationcontrollers"),
    ("", "events"),
]

# (API group, resource, verbs) a member needs in the team's namespace.
ALLOWED = [
    ("", "pods", MANAGE),
    ("", "pods/exec", ("create", "get")),
    ("", "pods/portforward", ("create", "get")),
    ("", "pods/log", ("get",)),
    ("", "pods/eviction", ("create",)),
    ("", "secrets", MANAGE),
    ("", "configmaps", MANAGE),
    ("", "services", MANAGE),
    ("", "persistentvolumeclaims", MANAGE),
    ("", "serviceaccounts", MANAGE),
    ("apps", "deployments", MANAGE),
    ("apps", "statefulsets", MANAGE),
    ("apps", "deployments/scale", ("get", "update", "patch")),
    ("batch", "jobs", MANAGE),
    ("batch", "cronjobs", MANAGE),
    ("ray.io", "rayclusters", MANAGE),
    ("ray.io", "rayjobs", MANAGE),
    ("serving.kserve.io", "inferenceservices", MANAGE),
    # read-only: to see why a connection fails or a pod is refused
    ("networking.k8s.io", "networkpolicies", ("get", "list", "watch")),
    ("", "resourcequotas", ("get", "list", "watch")),
    ("rbac.authorization.k8s.io", "rolebindings", ("get", "list", "watch")),
]


def _teams(project: Project, stack: str) -> dict[str, tuple[str, ...]]:
    cfg = load_stack(project, stack).validate()
    return {team: tuple(t.groups) for team, t in cfg.tenants.items()}


def _cases() -> list[tuple[str, str]]:
    project = load_project(ROOT)
    return [(stack, team) for stack in STACKS for team in _teams(project, stack)]


CASES = _cases()


def test_every_stack_has_teams_to_play() -> None:
    assert CASES == [
        ("dev", "research"),
        ("staging", "research"),
        ("staging", "applied"),
        ("prod", "research"),
        ("prod", "applied"),
    ]


@pytest.mark.parametrize(("stack", "team"), CASES)
def test_a_member_cannot_change_the_guardrails_of_their_namespace(
    plans: dict[str, Plan], project: Project, stack: str, team: str
) -> None:
    plan = plans[stack]
    model = rbac.rbac_model(plan)
    user = rbac.team_member(_teams(project, stack)[team])
    own = rbac.tenant_namespace(plan, team)
    assert own == f"team-{team}"
    for group, resource in FORBIDDEN_WRITES:
        for verb in WRITE:
            assert not model.allowed(user, verb, group, resource, own), (verb, group, resource)
    # A team's `workload` service account carries its AWS role: no token for use outside the cluster, and no
    # impersonating it.
    assert not model.allowed(user, "create", "", "serviceaccounts/token", own, name="workload")
    assert not model.allowed(user, "impersonate", "", "serviceaccounts", own, name="workload")
    # The Namespace object (its labels select the team's policies, Pod Security level and guards): read only, and
    # only by name: listing Namespaces is a cluster-scoped request no RoleBinding grants.
    assert model.verbs(user, "", "namespaces", own, name=own) == {"get", "watch"}
    assert not model.allowed(user, "list", "", "namespaces")
    for verb in ("update", "patch", "delete"):
        assert not model.allowed(user, verb, "", "namespaces", name=own)
    assert not model.allowed(user, "create", "", "namespaces")
    # No proxying or attaching (exec and port-forward are enough to debug).
    for sub in ("pods/proxy", "pods/attach", "services/proxy"):
        assert model.verbs(user, "", sub, own, verbs=("create", "get")) == frozenset(), sub


@pytest.mark.parametrize(("stack", "team"), CASES)
def test_a_member_runs_workloads_in_their_namespace(
    plans: dict[str, Plan], project: Project, stack: str, team: str
) -> None:
    plan = plans[stack]
    model = rbac.rbac_model(plan)
    user = rbac.team_member(_teams(project, stack)[team])
    own = f"team-{team}"
    for group, resource, verbs in ALLOWED:
        assert model.verbs(user, group, resource, own, verbs=verbs) == set(verbs), (group, resource)
    # Granted by the platform's own role, through the team's RoleBinding, and by nothing else.
    grants = model.grants(user, "create", "", "pods/exec", own)
    assert [(b.kind, b.namespace, b.name, b.role_kind, b.role_name) for b in grants] == [
        ("RoleBinding", own, TENANT_BINDING, "ClusterRole", TENANT_ROLE)
    ]


@pytest.mark.parametrize(("stack", "team"), CASES)
def test_a_member_can_do_nothing_in_other_namespaces_or_cluster_wide(
    plans: dict[str, Plan], project: Project, stack: str, team: str
) -> None:
    plan = plans[stack]
    table = rbac.tenant_verbs(plan, team, _teams(project, stack)[team])
    assert table.namespace == f"team-{team}"
    assert {"default", "kube-system", "mlflow", "monitoring", "ray", "serving"} <= set(table.others)
    assert table.namespace not in table.others
    for row in table.rows:
        assert row.elsewhere == frozenset(), row.kind.label
        assert row.cluster == frozenset(), row.kind.label
    # Every other team's namespace of the stack is among them.
    assert {f"team-{t}" for t in _teams(project, stack) if t != team} <= set(table.others)


def test_the_dev_table_a_member_reads(plans: dict[str, Plan], project: Project) -> None:
    table = rbac.tenant_verbs(plans["dev"], "research", _teams(project, "dev")["research"])
    summary = {
        row.kind.label: rbac.describe_verbs(row.own, row.kind.verbs) for row in table.rows if row.kind.namespaced
    }
    assert summary == {
        "pods": "all",
        "pods/exec": "all",
        "pods/portforward": "all",
        "pods/attach": "-",
        "pods/proxy": "-",
        "pods/log": "get",
        "services": "all",
        "services/proxy": "-",
        "endpoints": "read",
        "configmaps": "all",
        "secrets": "all",
        "persistentvolumeclaims": "all",
        "serviceaccounts": "all",
        "serviceaccounts/token": "-",
        "events": "read",
        "resourcequotas": "read",
        "limitranges": "read",
        "namespaces": "get watch",
        "deployments.apps": "all",
        "statefulsets.apps": "all",
        "replicasets.apps": "all",
        "daemonsets.apps": "-",
        "jobs.batch": "all",
        "cronjobs.batch": "all",
        "horizontalpodautoscalers.autoscaling": "all",
        "poddisruptionbudgets.policy": "read",
        "leases.coordination.k8s.io": "all",
        "rayclusters.ray.io": "all",
        "rayjobs.ray.io": "all",
        "inferenceservices.serving.kserve.io": "all",
        "networkpolicies.networking.k8s.io": "read",
        "ingresses.networking.k8s.io": "read",
        "gateways.gateway.networking.k8s.io": "-",
        "httproutes.gateway.networking.k8s.io": "-",
        "referencegrants.gateway.networking.k8s.io": "-",
        "targetgroupbindings.elbv2.k8s.aws": "-",
        "roles.rbac.authorization.k8s.io": "read",
        "rolebindings.rbac.authorization.k8s.io": "read",
    }


def test_no_planned_binding_gives_a_group_a_user_facing_built_in_role(plans: dict[str, Plan]) -> None:
    for stack, plan in plans.items():
        for binding in rbac.rbac_model(plan).bindings:
            if binding.source == "built-in":
                continue
            if any(s.kind == "Group" for s in binding.subjects):
                assert binding.role_name not in {"edit", "admin", "cluster-admin"}, (stack, binding.name)


# --- the evaluator can fail -----------------------------------------------------------------------------------


def _bound_to(plan: Plan, role: str) -> Plan:
    """The plan with every team's RoleBinding pointing at ClusterRole `role` (as before this change: `edit`)."""
    resources = []
    for r in plan.resources:
        if r.type == f"{rbac.RBAC}:RoleBinding" and r.inputs["metadata"]["name"] == TENANT_BINDING:
            inputs = json.loads(json.dumps(r.inputs))
            inputs["roleRef"]["name"] = role
            r = dataclasses.replace(r, inputs=inputs)
        resources.append(r)
    return dataclasses.replace(plan, resources=tuple(resources))


def test_a_team_bound_to_edit_could_delete_its_network_policies(plans: dict[str, Plan], project: Project) -> None:
    user = rbac.team_member(_teams(project, "dev")["research"])
    model = rbac.rbac_model(_bound_to(plans["dev"], "edit"))
    own = "team-research"
    for verb in ("create", "update", "patch", "delete", "deletecollection"):
        assert model.allowed(user, verb, "networking.k8s.io", "networkpolicies", own)
        assert model.allowed(user, verb, "networking.k8s.io", "ingresses", own)
        assert model.allowed(user, verb, "policy", "poddisruptionbudgets", own)
        assert model.allowed(user, verb, "apps", "daemonsets", own)
    assert model.allowed(user, "create", "", "serviceaccounts/token", own, name="workload")
    assert model.allowed(user, "impersonate", "", "serviceaccounts", own, name="workload")
    # `edit` aggregates `view` (namespaces read) but never RBAC or quota writes: those are `admin`'s.
    assert model.verbs(user, "", "namespaces", own, name=own) == {"get", "watch"}
    assert not model.allowed(user, "create", "rbac.authorization.k8s.io", "rolebindings", own)
    assert not model.allowed(user, "delete", "", "resourcequotas", own)
    # Still nothing elsewhere: a RoleBinding grants in its namespace only.
    assert not model.allowed(user, "delete", "networking.k8s.io", "networkpolicies", "mlflow")
    [grant] = model.grants(user, "delete", "networking.k8s.io", "networkpolicies", own)
    assert (grant.name, grant.role_name) == (TENANT_BINDING, "edit")


def test_a_team_bound_to_admin_could_bind_itself_anything_in_its_namespace(
    plans: dict[str, Plan], project: Project
) -> None:
    user = rbac.team_member(_teams(project, "dev")["research"])
    model = rbac.rbac_model(_bound_to(plans["dev"], "admin"))
    assert model.allowed(user, "create", "rbac.authorization.k8s.io", "rolebindings", "team-research")
    assert model.allowed(user, "delete", "networking.k8s.io", "networkpolicies", "team-research")
    assert not model.allowed(user, "create", "rbac.authorization.k8s.io", "clusterrolebindings")
    assert not model.allowed(user, "patch", "", "namespaces", name="team-research")


def test_a_planned_cluster_role_binding_to_a_team_group_reaches_every_namespace(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    extra = PlannedResource(
        type=f"{rbac.RBAC}:ClusterRoleBinding",
        name="oops",
        parent=None,
        provider=None,
        inputs={
            "metadata": {"name": "oops"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "Group", "name": "ml-research", "apiGroup": "rbac.authorization.k8s.io"}],
        },
        options={},
        custom=True,
    )
    model = rbac.rbac_model(dataclasses.replace(plan, resources=(*plan.resources, extra)))
    user = rbac.team_member(["ml-research"])
    assert model.allowed(user, "list", "", "pods", "kube-system")
    assert model.allowed(user, "list", "", "pods")  # across all namespaces
    assert not model.allowed(user, "get", "", "secrets", "kube-system")  # `view` reads no Secrets
    assert not model.allowed(user, "list", "", "nodes")  # `view` has no cluster-scoped resources


# --- the built-in roles -----------------------------------------------------------------------------------------


def test_the_built_in_roles_come_from_the_kubernetes_golden_file() -> None:
    source = rbac.builtin_source()
    assert "plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/cluster-roles.yaml" in source["upstream"]
    assert "025f2834a128798cef30018a5e6a6ae82b5ad885" in source["upstream"]
    roles, bindings = rbac.builtin()
    assert {r.name for r in roles} == {
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
    }
    assert {(b.name, b.role_name) for b in bindings} == {
        ("cluster-admin", "cluster-admin"),
        ("system:basic-user", "system:basic-user"),
        ("system:discovery", "system:discovery"),
        ("system:public-info-viewer", "system:public-info-viewer"),
    }


def test_aggregation_gives_edit_the_rules_of_view_and_admin_those_of_edit() -> None:
    roles, bindings = rbac.builtin()
    model = rbac.Rbac(roles={(r.kind, r.namespace, r.name): r for r in roles}, bindings=bindings)
    edit = model.rules_of("ClusterRole", None, "edit")
    admin = model.rules_of("ClusterRole", None, "admin")
    view = model.rules_of("ClusterRole", None, "view")

    def grants(rules: tuple[rbac.Rule, ...], verb: str, group: str, resource: str) -> bool:
        return any(r.allows(verb, group, resource) for r in rules)

    # Rules as the golden file states them (system:aggregate-to-edit / -view / -admin).
    assert grants(edit, "delete", "networking.k8s.io", "networkpolicies")
    assert grants(edit, "get", "", "pods")  # from view
    assert grants(edit, "get", "", "secrets") and not grants(view, "get", "", "secrets")
    assert not grants(edit, "create", "rbac.authorization.k8s.io", "rolebindings")
    assert grants(admin, "create", "rbac.authorization.k8s.io", "rolebindings")
    assert grants(admin, "delete", "networking.k8s.io", "networkpolicies")  # from edit
    assert grants(admin, "get", "", "namespaces")  # from view through edit
    assert not grants(admin, "update", "", "resourcequotas")
    assert not grants(view, "create", "", "pods")
    assert grants(view, "get", "", "pods/log") and not grants(view, "create", "", "pods/exec")
