"""What a team can do, from the offline plan: its members' Kubernetes RBAC (`mlp.rbac`) and where its pods can
open connections (`mlp.network_policy`: the Admin tier of the planned ClusterNetworkPolicies, then the planned
NetworkPolicies, then the destination's ingress for a pod). `mlp isolation STACK` prints both.

The reachability matrix asks, for a pod of the team's namespace (a workload pod, and a Ray head pod: the team's
RayClusters get an API-server policy), whether it can open a connection to each destination. Addresses that the
plan does not know are stand-ins, named in each column's `note`: the MLflow database is an address inside the
VPC's first private subnet (RDS sits there; security groups are a further gate the matrix does not evaluate), S3
is an address of the planner's stand-in for the region's S3 prefix list (`mlp.mocks.PLANNED_S3_CIDRS`), the
internet is 198.51.100.7 (TEST-NET-2, RFC 5737: outside every block the platform names). A stack with one team
gets a stand-in second team namespace (labelled as a team's) for the `another team` column.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlplatform.infra.k8s_documents import KUBERNETES_API_SERVICE_IPS, POD_IDENTITY_AGENT
from mlplatform.mlp import rbac
from mlplatform.mlp.mocks import PLANNED_S3_CIDRS
from mlplatform.mlp.network_policy import Decision, Destination, Pod, connection_decision
from mlplatform.mlp.planner import Plan

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CLUSTER_NETWORK_POLICY = "kubernetes:networking.k8s.aws/v1alpha1:ClusterNetworkPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SUBNET = "aws:ec2/subnet:Subnet"
IMDS = "169.254.169.254"
INTERNET = "198.51.100.7"
INTERFACE_ENDPOINTS_POLICY = "allow-interface-endpoints"
STAND_IN_TEAM = "team-other"


@dataclass(frozen=True)
class Source:
    label: str
    pod: Pod


@dataclass(frozen=True)
class Target:
    label: str
    """`own namespace`, `another team`, `MLflow`, ... (stable: tests and JSON use it)."""
    dest: Destination
    note: str = ""

    @property
    def port(self) -> str:
        return f"{self.dest.port}/{self.dest.protocol}"


@dataclass(frozen=True)
class Cell:
    source: str
    target: str
    egress: Decision
    ingress: Decision | None

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and (self.ingress is None or self.ingress.allowed)

    @property
    def by(self) -> str:
        """What decided: the first gate that refused, else the egress gate (and the ingress one)."""
        if not self.egress.allowed:
            return f"egress: {self.egress.by}"
        if self.ingress is not None and not self.ingress.allowed:
            return f"ingress: {self.ingress.by}"
        return f"egress: {self.egress.by}" + (f"; ingress: {self.ingress.by}" if self.ingress else "")


@dataclass(frozen=True)
class Matrix:
    team: str
    namespace: str
    sources: tuple[Source, ...]
    targets: tuple[Target, ...]
    cells: tuple[Cell, ...]

    def cell(self, source: str, target: str) -> Cell:
        for c in self.cells:
            if c.source == source and c.target == target:
                return c
        raise KeyError((source, target))

    def allowed(self, target: str, source: str = "pod") -> bool:
        return self.cell(source, target).allowed

    def row(self, source: str = "pod") -> dict[str, bool]:
        """Target label -> allowed, for one source."""
        return {c.target: c.allowed for c in self.cells if c.source == source}


def _metadata(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = inputs.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def network_policies(plan: Plan) -> list[dict[str, Any]]:
    """The plan's NetworkPolicy objects (each with its namespace)."""
    return [dict(r.inputs) for r in plan.of_type(NETWORK_POLICY) if _metadata(r.inputs).get("namespace")]


def cluster_network_policies(plan: Plan) -> list[dict[str, Any]]:
    return [dict(r.inputs) for r in plan.of_type(CLUSTER_NETWORK_POLICY)]


def _pod_of(plan: Plan, namespaces: Mapping[str, Mapping[str, str]], name_label: str) -> Pod | None:
    """A pod of the plan's first Deployment whose pod template says `app.kubernetes.io/name: <name_label>`."""
    for resource in plan.of_type(DEPLOYMENT):
        namespace = _metadata(resource.inputs).get("namespace")
        template = ((resource.inputs.get("spec") or {}).get("template") or {}).get("metadata") or {}
        labels = dict(template.get("labels") or {})
        if labels.get("app.kubernetes.io/name") == name_label and isinstance(namespace, str):
            return Pod(namespace, labels, dict(namespaces.get(namespace, {})))
    return None


def vpc_private_address(plan: Plan) -> str:
    subnets = sorted(
        (r for r in plan.of_type(SUBNET) if "private" in r.name and r.inputs.get("cidrBlock")), key=lambda r: r.name
    )
    if subnets:
        return str(ipaddress.ip_network(str(subnets[0].inputs["cidrBlock"])).network_address + 10)
    return "10.0.0.10"


def _interface_endpoint_address(policies: Sequence[Mapping[str, Any]], namespace: str) -> str | None:
    for policy in policies:
        meta = policy["metadata"]
        if meta.get("namespace") == namespace and meta.get("name") == INTERFACE_ENDPOINTS_POLICY:
            for rule in policy["spec"].get("egress") or []:
                for peer in rule.get("to") or []:
                    if "ipBlock" in peer:
                        return str(ipaddress.ip_network(peer["ipBlock"]["cidr"]).network_address)
    return None


def _first_host(cidr: str, offset: int = 10) -> str:
    return str(ipaddress.ip_network(cidr).network_address + offset)


def reachability(plan: Plan, team: str) -> Matrix:
    """Where the pods of `team`'s namespace can open connections, evaluated over the plan's policies."""
    namespaces = rbac.namespaces(plan)
    own = rbac.tenant_namespace(plan, team)
    own_labels = dict(namespaces[own])
    policies = network_policies(plan)
    cluster = cluster_network_policies(plan)
    sources = (
        Source("pod", Pod(own, {"app": "trainer"}, own_labels)),
        Source("ray head", Pod(own, {"ray.io/node-type": "head", "ray.io/cluster": "batch"}, own_labels)),
    )
    others = sorted(n for n, labels in namespaces.items() if rbac.TENANT_LABEL in labels and n != own)
    if others:
        other = Pod(others[0], {"app": "trainer"}, dict(namespaces[others[0]]))
        other_note = f"a pod of {others[0]}"
    else:
        other = Pod(STAND_IN_TEAM, {"app": "trainer"}, {rbac.TENANT_LABEL: "other"})
        other_note = f"no other team in this stack: a stand-in namespace {STAND_IN_TEAM} labelled as a team's"
    targets: list[Target] = [
        Target("own namespace", Destination(8080, pod=Pod(own, {"app": "notebook"}, own_labels)), f"a pod of {own}"),
        Target("another team", Destination(8080, pod=other), other_note),
        Target(
            "DNS",
            Destination(
                53,
                "UDP",
                pod=Pod("kube-system", {"k8s-app": "kube-dns"}, dict(namespaces.get("kube-system", {}))),
            ),
            "CoreDNS in kube-system",
        ),
    ]
    mlflow = _pod_of(plan, namespaces, "mlflow")
    if mlflow is not None:
        targets.append(Target("MLflow", Destination(5000, pod=mlflow), f"the MLflow server in {mlflow.namespace}"))
    vllm = _pod_of(plan, namespaces, "vllm")
    if vllm is not None:
        targets.append(Target("model server", Destination(8000, pod=vllm), f"a vLLM server in {vllm.namespace}"))
    database = vpc_private_address(plan)
    endpoint = _interface_endpoint_address(policies, own)
    targets += [
        Target("MLflow database", Destination(5432, address=database), f"{database}: a VPC private address"),
        Target(
            "API server",
            Destination(443, address=str(ipaddress.ip_network(KUBERNETES_API_SERVICE_IPS[0]).network_address)),
            "the `kubernetes` Service's ClusterIP",
        ),
        Target("instance metadata", Destination(80, address=IMDS), "IMDS: the node role's credentials"),
        Target(
            "Pod Identity agent",
            Destination(80, address=str(ipaddress.ip_network(POD_IDENTITY_AGENT).network_address)),
            "the team role's credentials",
        ),
    ]
    if endpoint is not None:
        targets.append(
            Target("interface endpoint", Destination(443, address=endpoint), f"{endpoint}: an endpoint's interface")
        )
    s3 = _first_host(sorted(PLANNED_S3_CIDRS)[0])
    targets += [
        Target("S3", Destination(443, address=s3), f"{s3}: in the (stand-in) S3 prefix list"),
        Target("internet", Destination(443, address=INTERNET), f"{INTERNET}: a public address"),
    ]
    cells = []
    for source in sources:
        for target in targets:
            egress, ingress = connection_decision(policies, cluster, source.pod, target.dest)
            cells.append(Cell(source.label, target.label, egress, ingress))
    return Matrix(team=team, namespace=own, sources=sources, targets=tuple(targets), cells=tuple(cells))


# --- the report ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamIsolation:
    team: str
    groups: tuple[str, ...]
    verbs: rbac.VerbTable
    matrix: Matrix


def isolation(plan: Plan, teams: Mapping[str, Sequence[str]]) -> list[TeamIsolation]:
    """Per team (name -> the groups its members sign in with): RBAC verbs and the reachability matrix."""
    return [
        TeamIsolation(
            team=team,
            groups=tuple(groups),
            verbs=rbac.tenant_verbs(plan, team, groups),
            matrix=reachability(plan, team),
        )
        for team, groups in sorted(teams.items())
    ]


def _verbs_json(verbs: frozenset[str], possible: Sequence[str]) -> list[str]:
    return [v for v in possible if v in verbs]


def to_json(stack: str, report: Sequence[TeamIsolation]) -> dict[str, Any]:
    return {
        "stack": stack,
        "rbac_source": rbac.builtin_source()["upstream"],
        "teams": [
            {
                "team": t.team,
                "namespace": t.matrix.namespace,
                "groups": list(t.groups),
                "rbac": {
                    row.kind.label: {
                        "own_namespace": _verbs_json(row.own, row.kind.verbs),
                        "other_namespaces": _verbs_json(row.elsewhere, row.kind.verbs),
                        "cluster": _verbs_json(row.cluster, row.kind.verbs),
                    }
                    for row in t.verbs.rows
                },
                "not_in_plan": list(t.verbs.unseen),
                "reachability": [
                    {
                        "source": c.source,
                        "target": c.target,
                        "port": next(x.port for x in t.matrix.targets if x.label == c.target),
                        "allowed": c.allowed,
                        "by": c.by,
                    }
                    for c in t.matrix.cells
                ],
                "targets": {x.label: x.note for x in t.matrix.targets},
            }
            for t in report
        ],
    }


def render_matrix(matrix: Matrix) -> str:
    header = ("destination", "port", *(s.label for s in matrix.sources), "decided by (pod)", "note")
    lines = []
    for target in matrix.targets:
        cells = [matrix.cell(s.label, target.label) for s in matrix.sources]
        lines.append(
            (
                target.label,
                target.port,
                *("allowed" if c.allowed else "denied" for c in cells),
                cells[0].by,
                target.note,
            )
        )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    out = [
        f"Reachability from pods of {matrix.namespace} (Admin-tier ClusterNetworkPolicies, then NetworkPolicies, "
        "then the destination's ingress)",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
    ]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    return "\n".join(out)


def render(stack: str, report: Sequence[TeamIsolation]) -> str:
    if not report:
        return f"{stack}: no teams (`tenants` is empty)\n"
    parts = []
    for t in report:
        parts += [f"== team {t.team} ({stack}) ==", t.verbs.render(), "", render_matrix(t.matrix), ""]
    return "\n".join(parts)
