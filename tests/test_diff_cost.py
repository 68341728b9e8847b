"""Cost in `mlp diff A B`: per component, the monthly floor, expected figure and ceiling before and after, and the
change, from the same estimate as `mlp cost`; the region from each plan's AWS provider, and no cost (with the
reason) for a plan that records none."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from mlplatform.infra.catalog.prices import ec2_on_demand_price
from mlplatform.infra.cost.estimate import service_price
from mlplatform.mlp import diff_cost
from mlplatform.mlp.cost import estimate_plan
from mlplatform.mlp.planner import Plan

H = 730
TODAY = dt.date(2026, 12, 5)


def _resource(type_: str, name: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": type_, "name": name, "inputs": inputs, "options": {}, "references": {}, **extra}


def _plan(gpu_limit: str = "4", region: str | None = "us-east-1") -> dict[str, Any]:
    """A small saved plan: an AWS provider, an EKS cluster, a system node group and a GPU NodePool."""
    resources = [
        _resource("aws:eks/cluster:Cluster", "cluster-eks", {"version": "1.35"}, provider="aws"),
        _resource(
            "aws:eks/nodeGroup:NodeGroup",
            "cluster-system",
            {"instanceTypes": ["t3.medium"], "scalingConfig": {"minSize": 2, "desiredSize": 2, "maxSize": 3}},
            provider="aws",
        ),
        _resource(
            "kubernetes:karpenter.sh/v1:NodePool",
            "nodepools-gpu",
            {
                "metadata": {"name": "gpu"},
                "spec": {
                    "limits": {"nvidia.com/gpu": gpu_limit},
                    "template": {
                        "spec": {
                            "requirements": [
                                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6e.xlarge"]}
                            ]
                        }
                    },
                },
            },
            provider="k8s",
        ),
    ]
    if region is not None:
        resources.insert(0, _resource("pulumi:providers:aws", "aws", {"region": region}))
    return {"project": "p", "stack": "s", "resources": resources}


def _run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", "diff", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_the_region_is_the_plans_aws_provider() -> None:
    assert diff_cost.plan_region(_plan()) == ("us-east-1", "the plan's AWS provider")
    region, why = diff_cost.plan_region(_plan(region=None))
    assert region is None and "no AWS provider with a region" in why
    two = _plan()
    two["resources"].append(_resource("pulumi:providers:aws", "aws-west", {"region": "us-west-2"}))
    assert diff_cost.plan_region(two) == (
        None,
        "the plan's AWS providers are in several regions (us-east-1, us-west-2)",
    )


def test_a_raised_gpu_limit_shows_as_the_hand_calculated_change() -> None:
    assert ec2_on_demand_price("g6e.xlarge", "us-east-1") == 1.861
    assert service_price("us-east-1", "eks_cluster_hour", "STANDARD") == 0.10
    cost = diff_cost.cost_diff(_plan("4"), _plan("8"), "a", "b", TODAY)
    assert cost.not_computed is None and (cost.left_region, cost.right_region) == ("us-east-1", "us-east-1")
    (pools,) = cost.changed_components
    per_gpu = H * 1.861  # g6e.xlarge: one GPU, no node class disk
    assert pools.component == "nodepools"
    assert (pools.before["ceiling"], pools.after["ceiling"]) == (round(4 * per_gpu, 2), round(8 * per_gpu, 2))
    assert pools.delta("ceiling") == round(8 * per_gpu - 4 * per_gpu, 2)
    assert pools.delta("floor") == 0
    assert pools.delta("expected") == round(0.25 * 4 * per_gpu, 2)  # floor + 25% of the added headroom
    assert cost.total_delta("ceiling") == pools.delta("ceiling")
    unchanged = {c.component for c in cost.components} - {"nodepools"}
    assert unchanged == {"cluster"}


def test_json_markdown_and_text_carry_the_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_plan("4")))
    (tmp_path / "b.json").write_text(json.dumps(_plan("8")))
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    assert _run(monkeypatch, a, b, "-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    cost = body["cost"]
    assert cost["computed"] and cost["regions"] == {"before": "us-east-1", "after": "us-east-1"}
    pools = next(c for c in cost["components"] if c["component"] == "nodepools")
    assert pools["delta"]["ceiling"] == round(4 * H * 1.861, 2)
    assert cost["totals"]["delta"]["ceiling"] == pools["delta"]["ceiling"]
    assert _run(monkeypatch, a, b, "-f", "markdown") == 0
    markdown = capsys.readouterr().out
    assert f"| nodepools | $0.00 → $0.00 | ${0.25 * 4 * H * 1.861:,.2f} → ${0.25 * 8 * H * 1.861:,.2f} |" in markdown
    assert f"+${4 * H * 1.861:,.2f} |" in markdown
    assert _run(monkeypatch, a, b) == 0
    text = capsys.readouterr().out
    assert "monthly cost, before -> after" in text and "nodepools" in text
    assert _run(monkeypatch, a, b, "-f", "json", "--no-cost") == 0
    assert "cost" not in json.loads(capsys.readouterr().out)


def test_a_plan_without_a_region_is_not_priced_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_plan(region=None)))
    (tmp_path / "b.json").write_text(json.dumps(_plan("8")))
    assert _run(monkeypatch, str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-f", "json") == 0
    cost = json.loads(capsys.readouterr().out)["cost"]
    assert cost == {
        "computed": False,
        "reason": f"cost not computed: {tmp_path / 'a.json'}: the plan has no AWS provider with a region (a program "
        "on the default provider records none)",
    }
    assert _run(monkeypatch, str(tmp_path / "a.json"), str(tmp_path / "b.json")) == 0
    assert "cost not computed" in capsys.readouterr().out


def test_the_stacks_figures_are_mlp_costs(plans: dict[str, Plan]) -> None:
    """Diffing dev against prod gives, per side, the totals `mlp cost` gives each stack (one computation)."""
    dev, prod = plans["dev"].to_dict(), plans["prod"].to_dict()
    cost = diff_cost.cost_diff(dev, copy.deepcopy(prod), "dev", "prod", TODAY)
    for side, plan in (("before", plans["dev"]), ("after", plans["prod"])):
        expected = estimate_plan(plan, "us-east-1", TODAY)
        assert {m: cost.total(side, m) for m in diff_cost.MEASURES} == {
            m: expected.total(m) for m in diff_cost.MEASURES
        }
    assert cost.total_delta("ceiling") == round(cost.total("after", "ceiling") - cost.total("before", "ceiling"), 2)


def test_lines_without_price_data_are_named_not_summed_silently() -> None:
    cost = diff_cost.cost_diff(_plan("4", region="zz-nowhere-1"), _plan("8", region="zz-nowhere-1"), "a", "b", TODAY)
    assert cost.not_computed is None
    assert any(line.startswith("after: cluster-eks:") for line in cost.unpriced)
    assert diff_cost.to_json(cost)["not_priced"] == cost.unpriced
    assert "Not priced (left out of the totals):" in diff_cost.render_markdown(cost)
