"""`mlp diff` (two stacks or two saved plans) and `mlp graph` (components and their dependencies)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from mlplatform.mlp import diff as diffs
from mlplatform.mlp import graph as graphs
from mlplatform.mlp.planner import Plan


def _run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_a_plan_equals_itself(plans: dict[str, Plan]) -> None:
    plan = plans["dev"].to_dict()
    result = diffs.diff_plans(plan, copy.deepcopy(plan), "a", "b")
    assert result.identical and result.unchanged == len(plan["resources"])


def test_saved_plans_diff_by_path(
    plans: dict[str, Plan], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = plans["dev"].to_dict()
    after = copy.deepcopy(before)
    pool = next(r for r in after["resources"] if r["name"] == "nodepools-shared-nodepool")
    pool["inputs"]["spec"]["limits"]["nvidia.com/gpu"] = "8"
    after["resources"] = [r for r in after["resources"] if r["name"] != "mlflow-pdb"]
    after["resources"].append({"name": "extra-bucket", "type": "aws:s3/bucket:Bucket", "inputs": {}, "options": {}})
    (tmp_path / "a.json").write_text(json.dumps(before))
    (tmp_path / "b.json").write_text(json.dumps(after))
    assert _run(monkeypatch, "diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["added"] == [{"name": "extra-bucket", "type": "aws:s3/bucket:Bucket"}]
    assert body["removed"] == [{"name": "mlflow-pdb", "type": "kubernetes:policy/v1:PodDisruptionBudget"}]
    (changed,) = body["changed"]
    assert changed["name"] == "nodepools-shared-nodepool"
    assert changed["changes"] == [{"path": "inputs.spec.limits.nvidia.com/gpu", "before": "4", "after": "8"}]
    assert _run(monkeypatch, "diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-f", "markdown") == 0
    markdown = capsys.readouterr().out
    assert "| + | `extra-bucket` | `aws:s3/bucket:Bucket` |" in markdown
    assert "| `inputs.spec.limits.nvidia.com/gpu` | `4` | `8` |" in markdown


def test_two_stacks_diff(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(monkeypatch, "diff", "dev", "prod", "-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    added = {r["name"] for r in body["added"]}
    assert {"lb-controller-release", "nodepools-training-nodepool", "mlflow-ingress"} <= added
    eks = next(r for r in body["changed"] if r["name"] == "cluster-eks")
    assert {"path": "inputs.vpcConfig.endpointPublicAccess", "before": True, "after": False} in eks["changes"]


def test_a_bad_plan_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.json").write_text('{"resources": [{"type": "t"}]}')
    assert _run(monkeypatch, "diff", str(tmp_path / "x.json"), "dev") == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'x.json'}: resources[0] has no name or type"


def test_graph_shows_components_and_their_dependencies(plans: dict[str, Plan]) -> None:
    components, edges = graphs.component_edges(plans["prod"].to_dict())
    # A domain with an AWS side and a Kubernetes side has a component in each layer, told apart by the layer.
    # Ray has no cloud side in prod: its only cluster belongs to a team and runs under the team's role.
    split = {"container-logs", "features", "lb-controller", "mlflow", "nodepools", "serving", "tenants"}
    assert set(components) == {
        "alerting",
        "image-cache",
        "ray",
        "cluster",
        "lake",
        "monitoring",
        "network",
        "platform",
        "runner",
        *(f"cloud/{d}" for d in split),
        *(f"cluster/{d}" for d in split),
    }
    assert components["cloud/mlflow"] == ("mlplatform:mlops:MlflowCloud", 15)
    # namespace, service account, deployment, disruption budget, service, ingress, the RDS CA ConfigMap, default
    # deny and four allowlist NetworkPolicies, and the database guard (Admin tier)
    assert components["cluster/mlflow"] == ("mlplatform:mlops:Mlflow", 13)
    # Every resource inside a component is counted once (the stacks' own providers are in none).
    assert sum(count for _, count in components.values()) == len(
        [r for r in plans["prod"].resources if not r.type.startswith("mlplatform:") and r.parent is not None]
    )
    must = {
        ("cloud/mlflow", "lake"),  # artifacts bucket and key
        ("cloud/mlflow", "cluster"),  # security group, cluster name
        ("cluster/mlflow", "cluster/lb-controller"),  # the ingress waits for the controller
        ("cluster/serving", "cluster/nodepools"),  # model servers wait for their pools
        ("cluster", "network"),
        ("monitoring", "cluster/serving"),
        ("runner", "lake"),  # source bundles in the artifacts zone
        ("cloud/container-logs", "cluster"),  # log groups named from the cluster's name, its Pod Identity
        ("cloud/container-logs", "platform"),  # the logs key
    }
    assert must <= edges
    assert ("lake", "cloud/mlflow") not in edges  # nothing flows the other way


def test_graph_command_prints_mermaid(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(monkeypatch, "graph", "dev") == 0
    text = capsys.readouterr().out
    assert text.startswith("flowchart LR\n")
    assert '    n_cluster_mlflow["cluster/mlflow<br/>Mlflow<br/>' in text
    assert "    n_cloud_mlflow --> n_lake\n" in text
    assert _run(monkeypatch, "graph", "dev", "-f", "dot") == 2
