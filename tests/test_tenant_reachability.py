"""Where a team's pods can open connections, evaluated over each planned stack's policies cell by cell: the Admin
tier of the EKS ClusterNetworkPolicies first (the team guard: other teams and instance metadata denied whatever the
namespace's policies say), then the namespace's NetworkPolicies, then the destination pod's ingress.

Intended: a team pod reaches its own namespace, DNS, the platform's services (MLflow, the model servers), S3 only
at the region's S3 prefix list (the planner's stand-in, `PLANNED_S3_CIDRS`), the VPC's interface endpoints (where
the stack has them) and the Pod Identity agent; never another team, the MLflow database, instance metadata or
the internet (unless `tenants.<team>.internet_egress` names blocks); the API server only from the team's Ray head
pods (the autoscaler). Other teams cannot reach a team's pods even when the team writes an allow-all policy."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from mlplatform.mlp import isolation
from mlplatform.mlp.mocks import PLANNED_S3_CIDRS
from mlplatform.mlp.planner import Plan, PlannedResource, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.network_policy import (
    Destination,
    Pod,
    connection_allowed,
    egress_decision,
    ingress_decision,
    tier_decision,
)

TEAMS = [
    ("dev", "research"),
    ("staging", "research"),
    ("staging", "applied"),
    ("prod", "research"),
    ("prod", "applied"),
]
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
WITH_ENDPOINTS = {"staging", "prod"}
RAY_CLUSTERS = {("dev", "research"), ("staging", "research"), ("prod", "research")}
"""Teams with a RayCluster in their namespace (`ray.clusters.<c>.team`): their head pods reach the API server."""


def _expected(stack: str, team: str, source: str) -> dict[str, bool]:
    row = {
        "own namespace": True,
        "another team": False,
        "DNS": True,
        "MLflow": True,
        "model server": True,
        "MLflow database": False,
        "API server": source == "ray head" and (stack, team) in RAY_CLUSTERS,
        "instance metadata": False,
        "Pod Identity agent": True,
    }
    if stack in WITH_ENDPOINTS:
        row["interface endpoint"] = True
    return {**row, "S3": True, "internet": False}


@pytest.mark.parametrize(("stack", "team"), TEAMS)
@pytest.mark.parametrize("source", ["pod", "ray head"])
def test_the_reachability_matrix_cell_by_cell(plans: dict[str, Plan], stack: str, team: str, source: str) -> None:
    matrix = isolation.reachability(plans[stack], team)
    assert matrix.namespace == f"team-{team}"
    assert matrix.row(source) == _expected(stack, team, source)


@pytest.mark.parametrize(("stack", "team"), TEAMS)
def test_what_decides_each_refusal(plans: dict[str, Plan], stack: str, team: str) -> None:
    matrix = isolation.reachability(plans[stack], team)
    guard = f"mlplatform-tenant-{team}"
    by = {c.target: c.by for c in matrix.cells if c.source == "pod"}
    # Cluster-scoped guards a namespace cannot change ...
    assert by["another team"] == f"egress: admin {guard}/other-teams: Deny"
    assert by["instance metadata"] == f"egress: admin {guard}/instance-metadata: Deny"
    assert by["MLflow database"] == "egress: admin mlplatform-database-guard/mlflow-database: Deny"
    # ... and the namespace's NetworkPolicies, which members may read but not change (tests/test_tenant_rbac.py).
    for target in ("API server", "internet"):
        assert by[target] == "egress: network policies", target
    assert by["own namespace"] == "egress: network policies; ingress: network policies"


def test_another_team_is_a_real_team_where_the_stack_has_two(plans: dict[str, Plan]) -> None:
    notes = {x.label: x.note for x in isolation.reachability(plans["staging"], "applied").targets}
    assert notes["another team"] == "a pod of team-research"
    notes = {x.label: x.note for x in isolation.reachability(plans["dev"], "research").targets}
    assert notes["another team"].startswith("no other team in this stack")


# --- the edges of the open cells ---------------------------------------------------------------------------------


def _team_pod(plan: Plan, team: str, labels: Mapping[str, str] | None = None) -> Pod:
    matrix = isolation.reachability(plan, team)
    own = matrix.sources[0].pod
    return Pod(own.namespace, dict(labels or {"app": "trainer"}), own.namespace_labels)


def _allowed(plan: Plan, pod: Pod, dest: Destination) -> bool:
    return connection_allowed(isolation.network_policies(plan), isolation.cluster_network_policies(plan), pod, dest)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_open_cells_are_open_on_their_port_only(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    pod = _team_pod(plan, "research")
    for cidr in PLANNED_S3_CIDRS:
        for offset in (0, 10, 255):
            address = str(ipaddress.ip_network(cidr).network_address + offset)
            assert _allowed(plan, pod, Destination(443, address=address)), address
            assert not _allowed(plan, pod, Destination(80, address=address)), address
    # Just outside the stand-in prefix list: the internet.
    assert not _allowed(plan, pod, Destination(443, address="203.0.114.1"))
    assert not _allowed(plan, pod, Destination(443, address="52.216.8.1"))  # a real S3 address, not the stand-in
    assert not _allowed(plan, pod, Destination(80, address="169.254.170.24"))
    assert not _allowed(plan, pod, Destination(443, address="169.254.170.23"))
    database = isolation.vpc_private_address(plan)
    assert not _allowed(plan, pod, Destination(443, address=database))
    mlflow = next(x.dest.pod for x in isolation.reachability(plan, "research").targets if x.label == "MLflow")
    assert mlflow is not None and mlflow.namespace == "mlflow"
    assert not _allowed(plan, pod, Destination(5001, pod=mlflow))
    assert not _allowed(plan, pod, Destination(5000, "UDP", pod=mlflow))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_interface_endpoints_on_443_only(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    pod = _team_pod(plan, "research")
    endpoint = next(
        x.dest.address for x in isolation.reachability(plan, "research").targets if x.label == "interface endpoint"
    )
    assert endpoint is not None
    assert _allowed(plan, pod, Destination(443, address=endpoint))
    assert not _allowed(plan, pod, Destination(80, address=endpoint))


def test_a_team_config_key_opens_named_blocks_only(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config("dev")
    config["ml-platform:tenants"]["research"]["internet_egress"] = ["198.51.100.0/24"]
    plan = plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))
    matrix = isolation.reachability(plan, "research")
    assert matrix.row("pod") == {**_expected("dev", "research", "pod"), "internet": True}
    pod = _team_pod(plan, "research")
    assert not _allowed(plan, pod, Destination(80, address=isolation.INTERNET))
    assert not _allowed(plan, pod, Destination(443, address="198.51.101.7"))


# --- a team cannot undo the guards --------------------------------------------------------------------------------


def _allow_all(namespace: str) -> PlannedResource:
    """What a member with `edit` could write: every pod open both ways."""
    return PlannedResource(
        type=NETWORK_POLICY,
        name=f"{namespace}-allow-all",
        parent=None,
        provider=None,
        inputs={
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
        },
        options={},
        custom=True,
    )


def _with(plan: Plan, *extra: PlannedResource, without: str | None = None) -> Plan:
    kept = tuple(r for r in plan.resources if without is None or r.type != without)
    return dataclasses.replace(plan, resources=(*kept, *extra))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_another_team_cannot_reach_a_team_that_opens_everything(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    research, applied = _team_pod(plan, "research"), _team_pod(plan, "applied")
    both_open = _with(plan, _allow_all("team-research"), _allow_all("team-applied"))
    policies = isolation.network_policies(both_open)
    cluster = isolation.cluster_network_policies(both_open)
    for source, dest in ((applied, research), (research, applied)):
        ingress = ingress_decision(policies, cluster, source, dest, 8080)
        assert not ingress.allowed
        assert ingress.by == f"admin mlplatform-tenant-{dest.namespace.removeprefix('team-')}/other-teams: Deny"
        egress = egress_decision(policies, cluster, source, Destination(8080, pod=dest))
        assert not egress.allowed
        assert not _allowed(both_open, source, Destination(8080, pod=dest))
    # Inside the team, its own allow-all decides (Pass hands its own namespace to its policies).
    assert ingress_decision(
        policies, cluster, Pod("team-research", {"a": "b"}, research.namespace_labels), research, 9999
    ).allowed
    # Instance metadata stays closed; the internet opens (the namespace's policies were the only gate there,
    # which is why members may not write them).
    assert not _allowed(both_open, research, Destination(80, address="169.254.169.254"))
    assert not _allowed(both_open, research, Destination(5432, address=isolation.vpc_private_address(plan)))
    assert _allowed(both_open, research, Destination(443, address=isolation.INTERNET))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_without_the_guard_an_allow_all_policy_would_open_the_team(plans: dict[str, Plan], stack: str) -> None:
    """The evaluator can fail: drop the ClusterNetworkPolicies and the same allow-all admits the other team."""
    plan = _with(plans[stack], _allow_all("team-research"), without=isolation.CLUSTER_NETWORK_POLICY)
    research, applied = _team_pod(plans[stack], "research"), _team_pod(plans[stack], "applied")
    policies = isolation.network_policies(plan)
    assert ingress_decision(policies, [], applied, research, 8080).allowed
    # Without it, the applied team's own default-deny still blocks its egress: both ends must agree.
    assert not _allowed(plan, applied, Destination(8080, pod=research))
    assert _allowed(_with(plan, _allow_all("team-applied")), applied, Destination(8080, pod=research))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_who_reaches_a_team_pod(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    research = _team_pod(plan, "research")
    policies = isolation.network_policies(plan)
    cluster = isolation.cluster_network_policies(plan)
    monitoring = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    assert ingress_decision(policies, cluster, monitoring, research, 9090).allowed
    mlflow = Pod("mlflow", {"app.kubernetes.io/name": "mlflow"})
    assert not ingress_decision(policies, cluster, mlflow, research, 8080).allowed
    operator = Pod("kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"})
    head = _team_pod(plan, "research", {"ray.io/node-type": "head"})
    assert ingress_decision(policies, cluster, operator, head, 8265).allowed
    assert not ingress_decision(policies, cluster, operator, head, 10001).allowed
    assert not ingress_decision(policies, cluster, operator, research, 8265).allowed


# --- the Admin tier's semantics ------------------------------------------------------------------------------------


def _cnp(name: str, priority: int, egress: list[dict[str, Any]], tier: str = "Admin") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"tier": tier, "priority": priority, "subject": {"namespaces": {}}, "egress": egress},
    }


POD = Pod("team-a", {"app": "x"}, {"mlplatform.io/tenant": "a"})
DENY_NET = {"name": "deny-net", "action": "Deny", "to": [{"networks": ["203.0.113.0/24"]}]}
ACCEPT_NET = {"name": "accept-net", "action": "Accept", "to": [{"networks": ["203.0.113.0/24"]}]}
PASS_NET = {"name": "pass-net", "action": "Pass", "to": [{"networks": ["203.0.113.0/24"]}]}
DENY_ALL_NP = {"metadata": {"namespace": "team-a"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}
ALLOW_ALL_NP = {
    "metadata": {"namespace": "team-a"},
    "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
}
DEST = Destination(443, address="203.0.113.9")


def test_the_lower_priority_number_decides_first() -> None:
    cluster = [_cnp("b", 20, [ACCEPT_NET]), _cnp("a", 10, [DENY_NET])]
    decided = tier_decision(cluster, "Admin", "Egress", POD, port=443, peer_address="203.0.113.9")
    assert decided is not None and (decided.policy, decided.rule, decided.action) == ("a", "deny-net", "Deny")
    assert not egress_decision([ALLOW_ALL_NP], cluster, POD, DEST).allowed


def test_within_a_policy_the_first_matching_rule_wins() -> None:
    assert egress_decision([DENY_ALL_NP], [_cnp("a", 1, [ACCEPT_NET, DENY_NET])], POD, DEST).allowed
    assert not egress_decision([ALLOW_ALL_NP], [_cnp("a", 1, [DENY_NET, ACCEPT_NET])], POD, DEST).allowed


def test_pass_hands_the_decision_to_network_policies() -> None:
    cluster = [_cnp("a", 1, [PASS_NET]), _cnp("b", 2, [DENY_NET])]
    assert egress_decision([ALLOW_ALL_NP], cluster, POD, DEST).allowed  # b's Deny is never reached
    assert not egress_decision([DENY_ALL_NP], cluster, POD, DEST).allowed
    decision = egress_decision([ALLOW_ALL_NP], cluster, POD, DEST)
    assert decision.by == "network policies"


def test_rules_match_on_port_and_peer() -> None:
    rule = {**DENY_NET, "ports": [{"portNumber": {"port": 443, "protocol": "TCP"}}]}
    cluster = [_cnp("a", 1, [rule])]
    assert not egress_decision([], cluster, POD, DEST).allowed
    assert egress_decision([], cluster, POD, Destination(80, address="203.0.113.9")).allowed
    assert egress_decision([], cluster, POD, Destination(443, address="198.51.100.1")).allowed
    ranged = {**DENY_NET, "ports": [{"portRange": {"start": 8000, "end": 8100, "protocol": "TCP"}}]}
    assert not egress_decision([], [_cnp("a", 1, [ranged])], POD, Destination(8080, address="203.0.113.1")).allowed
    assert egress_decision([], [_cnp("a", 1, [ranged])], POD, Destination(8080, "UDP", address="203.0.113.1")).allowed


def test_the_baseline_tier_applies_only_where_no_network_policy_isolates() -> None:
    cluster = [_cnp("base", 1, [DENY_NET], tier="Baseline")]
    assert not egress_decision([], cluster, POD, DEST).allowed
    assert egress_decision([ALLOW_ALL_NP], cluster, POD, DEST).allowed


def test_the_planned_guard_selects_only_its_own_namespace(plans: dict[str, Plan]) -> None:
    [guard] = [
        g
        for g in isolation.cluster_network_policies(plans["staging"])
        if g["metadata"]["name"] == "mlplatform-tenant-research"
    ]
    other = Pod("team-applied", {}, {"mlplatform.io/tenant": "applied"})
    platform = Pod("mlflow", {"app.kubernetes.io/name": "mlflow"})
    assert tier_decision([guard], "Admin", "Egress", other, port=8080, peer_pod=Pod("team-research")) is None
    assert tier_decision([guard], "Admin", "Egress", platform, port=80, peer_address="169.254.169.254") is None


def test_the_matrix_json_is_what_the_command_prints(plans: dict[str, Plan]) -> None:
    report = isolation.isolation(plans["dev"], {"research": ("ml-research",)})
    body = json.loads(json.dumps(isolation.to_json("dev", report)))
    [team] = body["teams"]
    cells = {(c["source"], c["target"]): (c["port"], c["allowed"]) for c in team["reachability"]}
    assert cells[("pod", "S3")] == ("443/TCP", True)
    assert cells[("pod", "internet")] == ("443/TCP", False)
    assert cells[("ray head", "API server")] == ("443/TCP", True)
