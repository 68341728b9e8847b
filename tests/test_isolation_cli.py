"""`mlp isolation STACK`: a team member's RBAC verbs and the team's reachability matrix, printed from the offline
plan (dev: one team, `research`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT


def _mlp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplatform.mlp.entry", *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )


def _columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_the_table_for_dev() -> None:
    result = _mlp("isolation", "dev")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "== team research (dev) =="
    assert lines[1].startswith(
        "Kubernetes RBAC of a member of team research (groups: ml-research, system:authenticated)"
    )
    rbac = {_columns(line)[0]: _columns(line)[1:] for line in lines[3:48]}
    assert rbac["pods"] == ["all", "-", "-"]
    assert rbac["pods/exec"] == ["all", "-", "-"]
    assert rbac["secrets"] == ["all", "-", "-"]
    assert rbac["rayclusters.ray.io"] == ["all", "-", "-"]
    assert rbac["inferenceservices.serving.kserve.io"] == ["all", "-", "-"]
    assert rbac["networkpolicies.networking.k8s.io"] == ["read", "-", "-"]
    assert rbac["ingresses.networking.k8s.io"] == ["read", "-", "-"]
    assert rbac["rolebindings.rbac.authorization.k8s.io"] == ["read", "-", "-"]
    assert rbac["namespaces"] == ["get watch", "-", "-"]
    assert rbac["serviceaccounts/token"] == ["-", "-", "-"]
    assert rbac["daemonsets.apps"] == ["-", "-", "-"]
    assert rbac["gateways.gateway.networking.k8s.io"] == ["-", "-", "-"]
    assert rbac["clusternetworkpolicies.networking.k8s.aws"] == ["n/a", "n/a", "-"]
    assert rbac["nodes"] == ["n/a", "n/a", "-"]
    start = lines.index(
        "Reachability from pods of team-research (Admin-tier ClusterNetworkPolicies, then NetworkPolicies, then "
        "the destination's ingress)"
    )
    assert _columns(lines[start + 1])[:5] == ["destination", "port", "pod", "ray head", "decided by (pod)"]
    matrix = {_columns(line)[0]: _columns(line)[1:4] for line in lines[start + 2 : start + 13]}
    assert matrix == {
        "own namespace": ["8080/TCP", "allowed", "allowed"],
        "another team": ["8080/TCP", "denied", "denied"],
        "DNS": ["53/UDP", "allowed", "allowed"],
        "MLflow": ["5000/TCP", "allowed", "allowed"],
        "model server": ["8000/TCP", "allowed", "allowed"],
        "MLflow database": ["5432/TCP", "denied", "denied"],
        "API server": ["443/TCP", "denied", "allowed"],
        "instance metadata": ["80/TCP", "denied", "denied"],
        "Pod Identity agent": ["80/TCP", "allowed", "allowed"],
        "S3": ["443/TCP", "allowed", "allowed"],
        "internet": ["443/TCP", "denied", "denied"],
    }
    guard = {_columns(line)[0]: _columns(line)[4] for line in lines[start + 2 : start + 13]}
    assert guard["another team"] == "egress: admin mlplatform-tenant-research/other-teams: Deny"
    assert guard["instance metadata"] == "egress: admin mlplatform-tenant-research/instance-metadata: Deny"


def test_json_for_dev() -> None:
    result = _mlp("isolation", "dev", "--format", "json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["stack"] == "dev"
    [team] = body["teams"]
    assert (team["team"], team["namespace"], team["groups"]) == ("research", "team-research", ["ml-research"])
    assert team["rbac"]["networkpolicies.networking.k8s.io"] == {
        "own_namespace": ["get", "list", "watch"],
        "other_namespaces": [],
        "cluster": [],
    }
    assert team["rbac"]["pods/exec"]["own_namespace"] == ["create", "get"]
    cells = {(c["source"], c["target"]): (c["port"], c["allowed"]) for c in team["reachability"]}
    assert len(cells) == 22
    assert cells[("pod", "internet")] == ("443/TCP", False)
    assert cells[("pod", "S3")] == ("443/TCP", True)
    assert cells[("ray head", "API server")] == ("443/TCP", True)
    assert team["targets"]["S3"] == "192.0.2.10: in the (stand-in) S3 prefix list"


def test_an_unknown_stack_is_bad_input() -> None:
    result = _mlp("isolation", "nosuch")
    assert result.returncode == 2
    assert "no such stack file" in result.stderr
    assert "Traceback" not in result.stderr
