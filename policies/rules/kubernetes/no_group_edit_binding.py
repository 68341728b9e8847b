"""No group is bound to the built-in `edit`, `admin` or `cluster-admin` roles."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import as_list, metadata_name, metadata_namespace
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule

ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"


@resource_rule(
    id="kubernetes-rbac-no-group-edit-admin",
    severity="critical",
    types=[ROLE_BINDING, CLUSTER_ROLE_BINDING],
    description="No RoleBinding or ClusterRoleBinding gives a group the built-in edit, admin or cluster-admin "
    "ClusterRole: edit can create, change and delete NetworkPolicies and Ingresses (a member deletes default-deny "
    "or publishes a pod through a load balancer), admin adds Roles and RoleBindings, cluster-admin everything. "
    "Teams get the platform's own role (mlplatform:tenant), which leaves the guardrails read-only.",
    remediation="Bind the group to a ClusterRole of your own that grants the workloads it needs (see "
    "infra/tenancy/documents.py tenant_role_rules), or list the binding in allowedBindings (namespace/name) "
    "with the reason.",
    references=[
        "Kubernetes RBAC good practices: least privilege, avoid the default user-facing roles for tenants",
        "CIS Amazon EKS Benchmark 4.1.1 (cluster-admin only where required)",
        "kubernetes/kubernetes bootstrappolicy cluster-roles.yaml: system:aggregate-to-edit",
    ],
    params={"forbiddenRoles": ["edit", "admin", "cluster-admin"], "allowedBindings": []},
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    ref = r.inputs.get("roleRef")
    if not isinstance(ref, Mapping) or is_unknown(ref.get("name")) or ref.get("kind") != "ClusterRole":
        return
    role = str(ref.get("name"))
    if role not in ctx.params["forbiddenRoles"]:
        return
    where = metadata_name(r) if r.type == CLUSTER_ROLE_BINDING else f"{metadata_namespace(r)}/{metadata_name(r)}"
    if where in ctx.params["allowedBindings"]:
        return
    groups = [
        str(s.get("name"))
        for s in as_list(r.inputs.get("subjects"))
        if isinstance(s, Mapping) and s.get("kind") == "Group" and not is_unknown(s.get("name"))
    ]
    if groups:
        scope = "every namespace" if r.type == CLUSTER_ROLE_BINDING else f"namespace {metadata_namespace(r)}"
        yield f"group(s) {', '.join(groups)} get the built-in {role} role in {scope}"


RULE = check
