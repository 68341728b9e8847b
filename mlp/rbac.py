"""Effective Kubernetes RBAC of a plan: what a user (a team member, a service account) may do, where.

The model holds the plan's ClusterRoles, Roles, ClusterRoleBindings and RoleBindings and the built-in roles of
Kubernetes that bindings may name (`mlp/data/k8s-rbac/bootstrap-roles.json`, with its source). A request is
allowed when one binding that applies to the user grants it, as the API server's RBAC authorizer decides
(`k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go`, `plugin/pkg/auth/authorizer/rbac/rbac.go`):

- a ClusterRoleBinding applies everywhere: to cluster-scoped objects, to every namespace and to requests across
  all namespaces; a RoleBinding only inside its own namespace (a ClusterRole it names is granted there only);
- a rule matches when its `apiGroups`, `resources` and `verbs` hold the request's (each may be `*`), a rule
  resource `*/sub` matches that subresource of any resource, and `resourceNames`, when present, hold the object's
  name (so it never matches create, list or watch, which name no object);
- a request on a Namespace object is a request in that namespace (`RequestInfoFactory`: for the `namespaces`
  resource the namespace is the name), so a RoleBinding can grant reading (or, dangerously, relabelling) the
  namespace it lives in, and nothing about other namespaces; creating, listing and deleting Namespaces name no
  object in the path and are cluster-scoped requests (`kubectl get ns` is refused to a RoleBinding's subjects,
  `kubectl get ns <own>` is not);
- a ClusterRole with an `aggregationRule` has the rules of every ClusterRole whose labels its selectors match
  (the aggregation controller's union, repeated until nothing changes: `edit` takes `view`'s).

What the plan cannot show: RBAC that Helm charts create (their templates are not planned; listed as `unseen`),
RBAC that operators create at run time (KubeRay gives each RayCluster's autoscaler a Role in its namespace), and
EKS's own `eks:*` roles. None of them binds a team's groups: charts and operators bind their own service
accounts. EKS access policies (AmazonEKSEditPolicy, ...) are evaluated by EKS beside RBAC; the platform
associates them only with the admins of `cluster.admins`, never with a team (`infra.tenancy.cloud`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mlplatform.mlp.planner import Plan

BUILTIN_FILE = Path(__file__).parent / "data" / "k8s-rbac" / "bootstrap-roles.json"
RBAC = "kubernetes:rbac.authorization.k8s.io/v1"
ROLE_TYPES = {f"{RBAC}:ClusterRole": "ClusterRole", f"{RBAC}:Role": "Role"}
BINDING_TYPES = {f"{RBAC}:ClusterRoleBinding": "ClusterRoleBinding", f"{RBAC}:RoleBinding": "RoleBinding"}
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
TENANT_LABEL = "mlplatform.io/tenant"

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
VERBS = READ + WRITE
AUTHENTICATED = "system:authenticated"
NO_OBJECT_IN_PATH = ("create", "list", "deletecollection")
"""Verbs whose request path names no object (`RequestInfoFactory`); `watch` of one Namespace still may
(`/api/v1/watch/namespaces/<name>`)."""


# --- the model ------------------------------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True)
class Rule:
    """One PolicyRule."""

    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @staticmethod
    def of(raw: Mapping[str, Any]) -> Rule:
        return Rule(
            api_groups=_strings(raw.get("apiGroups")),
            resources=_strings(raw.get("resources")),
            verbs=_strings(raw.get("verbs")),
            resource_names=_strings(raw.get("resourceNames")),
            non_resource_urls=_strings(raw.get("nonResourceURLs")),
        )

    def allows(self, verb: str, group: str, resource: str, name: str | None = None) -> bool:
        """Whether the rule grants `verb` on `resource` (`pods` or `pods/exec`) of API group `group`."""
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.api_groups and group not in self.api_groups:
            return False
        subresource = resource.partition("/")[2]
        if not any(r in ("*", resource) or (subresource and r == f"*/{subresource}") for r in self.resources):
            return False
        return not self.resource_names or (name is not None and name in self.resource_names)


@dataclass(frozen=True)
class Role:
    kind: str
    """`ClusterRole` or `Role`."""
    name: str
    namespace: str | None
    rules: tuple[Rule, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    aggregation: tuple[Mapping[str, Any], ...] | None = None
    """The `clusterRoleSelectors` of an aggregated ClusterRole, else None."""
    source: str = "plan"
    """`plan` (the planned resource's name) or `built-in`."""


@dataclass(frozen=True)
class Subject:
    kind: str
    """`User`, `Group` or `ServiceAccount`."""
    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class Binding:
    kind: str
    """`ClusterRoleBinding` or `RoleBinding`."""
    name: str
    namespace: str | None
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]
    source: str = "plan"


@dataclass(frozen=True)
class User:
    """Who makes a request: a user name and the groups the authenticator gives it."""

    name: str
    groups: frozenset[str]

    def is_subject(self, subject: Subject) -> bool:
        if subject.kind == "User":
            return subject.name == self.name
        if subject.kind == "Group":
            return subject.name in self.groups
        if subject.kind == "ServiceAccount":
            return self.name == f"system:serviceaccount:{subject.namespace}:{subject.name}"
        return False


def team_member(groups: Iterable[str], name: str = "team-member") -> User:
    """A person signed in through an EKS access entry in the team's groups (every authenticated user is also in
    `system:authenticated`)."""
    return User(name=name, groups=frozenset([*groups, AUTHENTICATED]))


def service_account(namespace: str, name: str) -> User:
    """A pod running as a service account: its user name and the groups the API server gives it."""
    return User(
        name=f"system:serviceaccount:{namespace}:{name}",
        groups=frozenset({"system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED}),
    )


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Rbac:
    roles: Mapping[tuple[str, str | None, str], Role]
    """(kind, namespace, name) -> role; ClusterRoles have no namespace."""
    bindings: tuple[Binding, ...]
    unseen: tuple[str, ...] = ()
    """Helm releases in the plan (`chart in namespace`): the RBAC their charts create is not in the plan."""

    def role(self, binding: Binding) -> Role | None:
        namespace = binding.namespace if binding.role_kind == "Role" else None
        return self.roles.get((binding.role_kind, namespace, binding.role_name))

    def rules_of(self, kind: str, namespace: str | None, name: str) -> tuple[Rule, ...]:
        """A role's effective rules: its own, or for an aggregated ClusterRole the union of the ClusterRoles its
        selectors match (as the aggregation controller writes them into it)."""
        role = self.roles.get((kind, namespace, name))
        if role is None:
            return ()
        if role.aggregation is None:
            return role.rules
        found: list[Rule] = []
        seen = {name}
        frontier = [role]
        while frontier:
            current = frontier.pop()
            for other in self.roles.values():
                if other.kind != "ClusterRole" or other.name in seen:
                    continue
                if any(_selector_matches(s, other.labels) for s in current.aggregation or ()):
                    seen.add(other.name)
                    if other.aggregation is not None:
                        frontier.append(other)
                    else:
                        found.extend(other.rules)
        return tuple(found)

    def applicable(self, user: User, namespace: str | None) -> Iterable[tuple[Binding, tuple[Rule, ...]]]:
        """The bindings naming the user that apply to a request in `namespace` (None: cluster scope)."""
        for binding in self.bindings:
            if binding.kind == "RoleBinding" and binding.namespace != namespace:
                continue
            if not any(user.is_subject(s) for s in binding.subjects):
                continue
            role_namespace = binding.namespace if binding.role_kind == "Role" else None
            yield binding, self.rules_of(binding.role_kind, role_namespace, binding.role_name)

    def allowed(
        self, user: User, verb: str, group: str, resource: str, namespace: str | None = None, name: str | None = None
    ) -> bool:
        """Whether RBAC lets `user` do `verb` on `resource` (`pods`, `pods/exec`) of `group` in `namespace`
        (None: cluster-scoped objects, or across all namespaces). A Namespace object is in its own namespace."""
        return bool(self.grants(user, verb, group, resource, namespace, name))

    def grants(
        self, user: User, verb: str, group: str, resource: str, namespace: str | None = None, name: str | None = None
    ) -> list[Binding]:
        """The bindings that grant the request (empty: denied)."""
        if group == "" and resource.partition("/")[0] == "namespaces" and name is not None:
            if verb in NO_OBJECT_IN_PATH:
                # POST /api/v1/namespaces, GET /api/v1/namespaces (even with a fieldSelector on the name): no
                # namespace in the path, so a cluster-scoped request that no RoleBinding grants.
                namespace = None
                name = name if verb == "list" else None
            else:
                namespace = name
        return [
            binding
            for binding, rules in self.applicable(user, namespace)
            if any(rule.allows(verb, group, resource, name) for rule in rules)
        ]

    def verbs(
        self,
        user: User,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None = None,
        verbs: Sequence[str] = VERBS,
    ) -> frozenset[str]:
        return frozenset(v for v in verbs if self.allowed(user, v, group, resource, namespace, name))


@cache
def builtin() -> tuple[tuple[Role, ...], tuple[Binding, ...]]:
    """The built-in roles and bindings a plan may lean on (see the data file's `source`)."""
    data = json.loads(BUILTIN_FILE.read_text(encoding="utf-8"))
    roles = tuple(_role("ClusterRole", raw, "built-in") for raw in data["clusterRoles"])
    bindings = tuple(_binding("ClusterRoleBinding", raw, "built-in") for raw in data["clusterRoleBindings"])
    return roles, bindings


def builtin_source() -> dict[str, str]:
    source: dict[str, str] = json.loads(BUILTIN_FILE.read_text(encoding="utf-8"))["source"]
    return source


def _metadata(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = raw.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _role(kind: str, raw: Mapping[str, Any], source: str) -> Role:
    meta = _metadata(raw)
    aggregation = raw.get("aggregationRule")
    return Role(
        kind=kind,
        name=str(meta.get("name", "")),
        namespace=meta.get("namespace") if kind == "Role" else None,
        rules=tuple(Rule.of(r) for r in raw.get("rules") or [] if isinstance(r, Mapping)),
        labels=dict(meta.get("labels") or {}),
        aggregation=tuple(aggregation.get("clusterRoleSelectors") or ()) if isinstance(aggregation, Mapping) else None,
        source=source,
    )


def _binding(kind: str, raw: Mapping[str, Any], source: str) -> Binding:
    meta = _metadata(raw)
    namespace = meta.get("namespace") if kind == "RoleBinding" else None
    ref = raw.get("roleRef") or {}
    subjects = tuple(
        Subject(
            kind=str(s.get("kind", "")),
            name=str(s.get("name", "")),
            namespace=s.get("namespace", namespace if s.get("kind") == "ServiceAccount" else None),
        )
        for s in raw.get("subjects") or []
        if isinstance(s, Mapping)
    )
    return Binding(
        kind=kind,
        name=str(meta.get("name", "")),
        namespace=namespace,
        role_kind=str(ref.get("kind", "")),
        role_name=str(ref.get("name", "")),
        subjects=subjects,
        source=source,
    )


def rbac_model(plan: Plan) -> Rbac:
    """The RBAC of a plan: its roles and bindings over the built-in ones (a planned ClusterRole of a built-in's
    name replaces it, as the API server would refuse a second)."""
    builtin_roles, builtin_bindings = builtin()
    roles: dict[tuple[str, str | None, str], Role] = {(r.kind, r.namespace, r.name): r for r in builtin_roles}
    bindings: dict[tuple[str, str | None, str], Binding] = {(b.kind, b.namespace, b.name): b for b in builtin_bindings}
    unseen: list[str] = []
    for resource in plan.resources:
        if resource.type in ROLE_TYPES:
            role = _role(ROLE_TYPES[resource.type], resource.inputs, resource.name)
            roles[(role.kind, role.namespace, role.name)] = role
        elif resource.type in BINDING_TYPES:
            binding = _binding(BINDING_TYPES[resource.type], resource.inputs, resource.name)
            bindings[(binding.kind, binding.namespace, binding.name)] = binding
        elif resource.type == HELM_RELEASE:
            chart = str(resource.inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]
            unseen.append(f"{chart} in {resource.inputs.get('namespace', 'default')}")
    return Rbac(roles=roles, bindings=tuple(bindings.values()), unseen=tuple(sorted(unseen)))


def namespaces(plan: Plan) -> dict[str, dict[str, str]]:
    """The plan's namespaces and their labels (plus the ones every cluster has)."""
    found: dict[str, dict[str, str]] = {n: {} for n in ("default", "kube-system", "kube-public")}
    for resource in plan.of_type(NAMESPACE_TYPE):
        meta = _metadata(resource.inputs)
        if isinstance(meta.get("name"), str):
            found[meta["name"]] = dict(meta.get("labels") or {})
    return found


def tenant_namespace(plan: Plan, team: str) -> str:
    """The namespace the plan labels as the team's (`mlplatform.io/tenant: <team>`)."""
    for name, labels in namespaces(plan).items():
        if labels.get(TENANT_LABEL) == team:
            return name
    teams = sorted(labels[TENANT_LABEL] for labels in namespaces(plan).values() if TENANT_LABEL in labels)
    raise KeyError(f"no namespace of team {team!r} in the plan (teams: {', '.join(teams) or 'none'})")


# --- the table a person reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A resource the table shows: its API group, its (sub)resource name and the verbs that make sense on it."""

    group: str
    resource: str
    namespaced: bool = True
    verbs: tuple[str, ...] = VERBS

    @property
    def label(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


CONNECT = ("create", "get")
"""`kubectl exec`/`port-forward` POST (SPDY) or GET (WebSocket) the subresource."""

KINDS: tuple[Kind, ...] = (
    Kind("", "pods"),
    Kind("", "pods/exec", verbs=CONNECT),
    Kind("", "pods/portforward", verbs=CONNECT),
    Kind("", "pods/attach", verbs=CONNECT),
    Kind("", "pods/proxy", verbs=CONNECT),
    Kind("", "pods/log", verbs=("get",)),
    Kind("", "services"),
    Kind("", "services/proxy", verbs=CONNECT),
    Kind("", "endpoints"),
    Kind("", "configmaps"),
    Kind("", "secrets"),
    Kind("", "persistentvolumeclaims"),
    Kind("", "serviceaccounts"),
    Kind("", "serviceaccounts/token", verbs=("create",)),
    Kind("", "events"),
    Kind("", "resourcequotas"),
    Kind("", "limitranges"),
    Kind("", "namespaces"),
    Kind("apps", "deployments"),
    Kind("apps", "statefulsets"),
    Kind("apps", "replicasets"),
    Kind("apps", "daemonsets"),
    Kind("batch", "jobs"),
    Kind("batch", "cronjobs"),
    Kind("autoscaling", "horizontalpodautoscalers"),
    Kind("policy", "poddisruptionbudgets"),
    Kind("coordination.k8s.io", "leases"),
    Kind("ray.io", "rayclusters"),
    Kind("ray.io", "rayjobs"),
    Kind("serving.kserve.io", "inferenceservices"),
    Kind("networking.k8s.io", "networkpolicies"),
    Kind("networking.k8s.io", "ingresses"),
    Kind("gateway.networking.k8s.io", "gateways"),
    Kind("gateway.networking.k8s.io", "httproutes"),
    Kind("gateway.networking.k8s.io", "referencegrants"),
    Kind("elbv2.k8s.aws", "targetgroupbindings"),
    Kind("rbac.authorization.k8s.io", "roles"),
    Kind("rbac.authorization.k8s.io", "rolebindings"),
    Kind("rbac.authorization.k8s.io", "clusterroles", namespaced=False),
    Kind("rbac.authorization.k8s.io", "clusterrolebindings", namespaced=False),
    Kind("networking.k8s.aws", "clusternetworkpolicies", namespaced=False),
    Kind("admissionregistration.k8s.io", "validatingadmissionpolicies", namespaced=False),
    Kind("networking.k8s.io", "ingressclasses", namespaced=False),
    Kind("elbv2.k8s.aws", "ingressclassparams", namespaced=False),
    Kind("", "nodes", namespaced=False),
)


@dataclass(frozen=True)
class VerbRow:
    kind: Kind
    own: frozenset[str]
    """In the team's namespace (for `namespaces`: on the team's Namespace object)."""
    elsewhere: frozenset[str]
    """In any other namespace of the plan (the union; for `namespaces`: on any other Namespace object)."""
    cluster: frozenset[str]
    """Cluster-scoped, or across all namespaces at once."""


@dataclass(frozen=True)
class VerbTable:
    team: str
    namespace: str
    user: User
    others: tuple[str, ...]
    """The other namespaces the `elsewhere` column covers."""
    rows: tuple[VerbRow, ...]
    unseen: tuple[str, ...]

    def row(self, label: str) -> VerbRow:
        """A row by its label: `pods`, `pods/exec`, `networkpolicies.networking.k8s.io`, ..."""
        for row in self.rows:
            if row.kind.label == label:
                return row
        raise KeyError(label)

    def render(self) -> str:
        return render_verbs(self)


def verb_table(rbac: Rbac, user: User, namespace: str, others: Sequence[str], team: str = "") -> VerbTable:
    """What `user` may do, per resource of `KINDS`: in `namespace`, in any of `others`, and cluster-wide."""
    rows = []
    for kind in KINDS:
        if kind.group == "" and kind.resource == "namespaces":
            own = rbac.verbs(user, "", "namespaces", namespace, name=namespace, verbs=kind.verbs)
            elsewhere = frozenset().union(
                *(rbac.verbs(user, "", "namespaces", o, name=o, verbs=kind.verbs) for o in others)
            )
        elif kind.namespaced:
            own = rbac.verbs(user, kind.group, kind.resource, namespace, verbs=kind.verbs)
            elsewhere = frozenset().union(
                *(rbac.verbs(user, kind.group, kind.resource, o, verbs=kind.verbs) for o in others)
            )
        else:
            own = elsewhere = frozenset()
        cluster = rbac.verbs(user, kind.group, kind.resource, None, verbs=kind.verbs)
        rows.append(VerbRow(kind=kind, own=own, elsewhere=elsewhere, cluster=cluster))
    return VerbTable(
        team=team, namespace=namespace, user=user, others=tuple(others), rows=tuple(rows), unseen=rbac.unseen
    )


def tenant_verbs(plan: Plan, team: str, groups: Iterable[str]) -> VerbTable:
    """A member of `team` (signed in with the team's `groups`, `tenants.<team>.groups` in the stack file): what
    RBAC lets them do in the team's namespace, in every other namespace of the plan, and cluster-wide."""
    own = tenant_namespace(plan, team)
    others = sorted(n for n in namespaces(plan) if n != own)
    return verb_table(rbac_model(plan), team_member(groups), own, others, team=team)


def describe_verbs(verbs: frozenset[str], possible: Sequence[str]) -> str:
    if not verbs:
        return "-"
    if set(possible) <= verbs and len(possible) > 1:
        return "all"
    if verbs == set(READ):
        return "read"
    return " ".join(v for v in possible if v in verbs)


def render_verbs(table: VerbTable) -> str:
    """The table as text: one line per resource, `all`/`read`/the verbs/`-` per scope."""
    header = ("resource", table.namespace, "other namespaces", "cluster-wide")
    lines = [
        (
            row.kind.label,
            describe_verbs(row.own, row.kind.verbs) if row.kind.namespaced else "n/a",
            describe_verbs(row.elsewhere, row.kind.verbs) if row.kind.namespaced else "n/a",
            describe_verbs(row.cluster, row.kind.verbs),
        )
        for row in table.rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
    groups = ", ".join(sorted(table.user.groups))
    out = [
        f"Kubernetes RBAC of a member of team {table.team or '?'} (groups: {groups}), from the plan and the "
        f"built-in roles; `other namespaces`: {len(table.others)} ({', '.join(table.others)})",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
    ]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    if table.unseen:
        out.append(
            "Not in the plan (their charts' RBAC binds the charts' own service accounts): " + ", ".join(table.unseen)
        )
    return "\n".join(out)
