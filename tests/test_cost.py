"""`mlp cost` and the budget check: the estimate of the shipped stacks equals a hand calculation from the dated
price data, to the cent; the dev idle floor stays under $250; a ceiling over budget is an error in prod and a
warning elsewhere."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.infra.catalog.prices import ec2_on_demand_price
from mlplatform.infra.cost.estimate import service_price
from mlplatform.infra.cost.reservation import TAG as RESERVATION_TAG
from mlplatform.mlp.cost import estimate_plan
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack

H = 730  # hours per month
TODAY = dt.date(2026, 11, 23)


def _prices_are(expected: dict[str, float]) -> None:
    """The literal prices the hand calculation uses are the ones in the price data."""
    for key, value in expected.items():
        if "." in key:
            actual = ec2_on_demand_price(key, "us-east-1")
        else:
            name, _, field = key.partition(":")
            actual = service_price("us-east-1", name, field or "price")
        assert actual == value, f"{key}: price data has {actual}, the hand calculation uses {value}"


def _totals(plan: Plan) -> dict[str, float]:
    estimate = estimate_plan(plan, "us-east-1", TODAY)
    return {k: estimate.total(k) for k in ("floor", "ceiling")}


def test_dev_cost_equals_the_hand_calculation(plans: dict[str, Plan]) -> None:
    _prices_are(
        {
            "eks_cluster_hour:STANDARD": 0.10,
            "t3.medium": 0.0416,
            "ebs_gp3_gb_month": 0.08,
            "s3_standard_gb_month": 0.023,
            "nat_gateway_hour": 0.045,
            "public_ipv4_hour": 0.005,
            "kms_key_month": 1.0,
            "secretsmanager_secret_month": 0.4,
            "g5.2xlarge": 1.212,
            "m7i.xlarge": 0.2016,
        }
    )
    system_node = H * 0.0416 + 30 * 0.08  # t3.medium + its 30 GiB gp3 disk
    fixed = (
        H * 0.10  # EKS control plane, standard support
        + 3 * 1.0  # KMS keys: cluster secrets, lake, logs
        + (200 + 50 + 20 + 100 + 50) * 0.023  # lake zones at their expected sizes
        + (H * 0.016 + 20 * 0.115)  # MLflow: db.t4g.micro single-AZ + 20 GB gp3
        + 2 * 0.4  # MLflow secrets: database, admin
        + 20 * 0.08  # Prometheus volume
        + H * 0.045  # one NAT gateway
        + H * 0.005  # its public IPv4 address
    )
    floor = fixed + 3 * system_node  # GPU and CPU pools at zero
    gpu_ceiling = 4 * (H * 1.212 + 150 * 0.08)  # 4 GPUs at g5.2xlarge (dearest per GPU) with a 150 GiB disk
    cpu_ceiling = 16 * (H * 0.2016 / 4) + math.ceil(16 / 4) * 100 * 0.08  # 16 vCPUs of m7i.xlarge + 100 GiB disks
    ceiling = fixed + 4 * system_node + gpu_ceiling + cpu_ceiling
    assert _totals(plans["dev"]) == {"floor": round(floor, 2), "ceiling": round(ceiling, 2)}
    assert round(floor, 2) == 236.84


def test_dev_idle_floor_is_at_most_250_dollars(plans: dict[str, Plan]) -> None:
    """GPU pools at zero; MLflow, Ray, KServe and monitoring running (they run on the system nodes)."""
    assert _totals(plans["dev"])["floor"] <= 250


def test_prod_cost_equals_the_hand_calculation(plans: dict[str, Plan]) -> None:
    _prices_are(
        {
            "m7i.xlarge": 0.2016,
            "c7i.12xlarge": 2.142,
            "g6e.xlarge": 1.861,
            "g6e.12xlarge": 10.49264,
            "g6e.48xlarge": 30.13118,
            "p5.48xlarge": 55.04,
            "alb_hour": 0.0225,
            "interface_endpoint_az_hour": 0.01,
        }
    )
    system_node = H * 0.2016 + 100 * 0.08
    gpu_node = {t: H * p + 300 * 0.08 for t, p in {"g6e.xlarge": 1.861, "g6e.12xlarge": 10.49264}.items()}
    fixed = (
        H * 0.10
        + 5 * 1.0  # KMS keys: cluster secrets, lake, logs, alert topic, cached images
        + (20000 + 5000 + 2000 + 3000 + 2000) * 0.023
        + (H * 2 * 0.168 + 100 * 0.23)  # db.m7g.large Multi-AZ (2 x Single-AZ) + 100 GB Multi-AZ gp3
        + 2 * 0.4
        + H * 0.0225  # the internal ALB the MLflow Ingress gets
        + 200 * 0.08
        + 4 * 3 * H * 0.01  # 4 interface endpoints in 3 AZs
        + 3 * (H * 0.045 + H * 0.005)  # NAT gateway and address per AZ
    )
    cpu_floor = 4 * (H * 2.142 / 48) + 1 * 100 * 0.08  # the Ray head (4 vCPUs) on the general pool
    # Two replicas each of the vLLM assistant (4 GPUs) and embedder (1): one serves while Karpenter moves the other.
    # The pool's 2 warm GPUs (min_gpus) are placeholders on GPUs of their own (a replica preempts one, and
    # Karpenter adds a node for it): added, at the cheapest per GPU (g6e.xlarge, 1 GPU).
    inference_floor = 2 * gpu_node["g6e.12xlarge"] + 2 * gpu_node["g6e.xlarge"] + 2 * gpu_node["g6e.xlarge"]
    # The ODCR: 2 x p5.48xlarge at the on-demand rate for the whole month, whether instances run in it or not.
    odcr = 2 * 55.04 * H
    floor = fixed + 3 * system_node + cpu_floor + inference_floor + odcr
    inference_ceiling = 16 * (H * 30.13118 + 300 * 0.08) / 8  # 16 GPUs at g6e.48xlarge's per-GPU cost
    # The ODCR pool: its NodePool limit of 16 GPUs = the reservation's 2 nodes, billed by the ODCR line above;
    # the pool's own line holds their 1000 GiB disks (no on-demand fallback, so nothing beyond the reservation).
    training_ceiling = odcr + 2 * 1000 * 0.08
    cpu_ceiling = 128 * (H * 0.2016 / 4) + (128 // 4) * 100 * 0.08
    ceiling = fixed + 6 * system_node + cpu_ceiling + inference_ceiling + training_ceiling
    assert _totals(plans["prod"]) == {"floor": round(floor, 2), "ceiling": round(ceiling, 2)}
    # Before the reservation and the warm GPUs were counted the floor was $20,048.73; the ceiling is unchanged.
    assert (round(floor, 2), round(ceiling, 2)) == (103172.19, 131766.91)
    assert round(odcr, 2) == 80358.40 and round(2 * gpu_node["g6e.xlarge"], 2) == 2765.06


def test_every_line_says_how_it_was_computed(plans: dict[str, Plan]) -> None:
    estimate = estimate_plan(plans["prod"], "us-east-1", TODAY)
    assert all(line.how and line.priced for line in estimate.lines)
    pool = next(line for line in estimate.lines if line.resource == "nodepools-inference-nodepool")
    assert "ceiling 16 GPUs (NodePool limit)" in pool.how and "serving-vllm-assistant-deployment" in pool.how


def test_an_odcr_is_in_the_floor_whether_used_or_not(plans: dict[str, Plan]) -> None:
    estimate = estimate_plan(plans["prod"], "us-east-1", TODAY)
    odcr, pool = [line for line in estimate.lines if line.resource == "nodepools-training-nodepool"]
    assert odcr.item == "ODCR cr-0a1b2c3d4e5f60718 (2 x p5.48xlarge)" and odcr.flags == ("odcr",)
    assert (odcr.floor, odcr.expected, odcr.ceiling, odcr.spot) == (80358.4, 80358.4, 80358.4, None)
    assert odcr.how == "2 x p5.48xlarge x $55.04/h x 730 h = $80,358.40 (ODCR, billed whether used or not)"
    # The pool's nodes run in the reservation: their instance hours are the ODCR's, their disks the pool's.
    assert pool.item == "GPU pool training (Karpenter, reserved)" and pool.flags == ("capacity-reservation",)
    assert (round(pool.floor, 2), round(pool.ceiling, 2), pool.spot) == (0.0, 160.0, None)


def test_a_node_group_on_an_odcr_is_priced_as_the_reservation(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    # The same reservation behind a managed node group: the facts travel as a tag of the node group (tag values
    # allow no JSON), and the floor counts the whole ODCR whether the group's nodes run or not.
    config = stack_config("prod")
    pool = config["ml-platform:gpu_pools"]["training"]
    for key in ("consolidation_policy", "consolidate_after", "expire_after", "termination_grace_period"):
        pool.pop(key, None)
    pool.update(provisioner="node_group", min_gpus=8, release_version="1.33.5-20260724")
    pool.pop("ami_version", None)
    pool["capacity_reservation"].pop("on_demand_fallback", None)
    plan = plan_stack(dataclasses.replace(load_stack(project, "prod"), config=config))
    group = next(r for r in plan.resources if r.type == "aws:eks/nodeGroup:NodeGroup" and "training" in r.name)
    assert group.inputs["tags"][RESERVATION_TAG] == (
        "id=cr-0a1b2c3d4e5f60718 kind=odcr type=p5.48xlarge count=2 az=us-east-1a"
    )
    lines = [line for line in estimate_plan(plan, "us-east-1", TODAY).lines if line.resource == group.name]
    odcr, nodes = lines
    assert odcr.item == "ODCR cr-0a1b2c3d4e5f60718 (2 x p5.48xlarge)"
    assert (odcr.floor, odcr.ceiling) == (80358.4, 80358.4)
    # min_gpus 8 is one node, max 16 two: they run in the reservation and pay their 1000 GiB disks here.
    assert (round(nodes.floor, 2), round(nodes.ceiling, 2)) == (80.0, 160.0)
    assert nodes.flags == ("capacity-reservation",)


def test_reservation_facts_survive_the_tag_round_trip() -> None:
    from mlplatform.infra.cost.reservation import ReservationFacts, from_tags

    block = ReservationFacts(
        id="cr-0123456789abcdef0",
        kind="capacity_block",
        instance_type="p5.48xlarge",
        instance_count=4,
        availability_zone="us-east-1b",
        price_usd=123456.5,
        start_date=dt.date(2026, 12, 1),
        end_date=dt.date(2026, 12, 14),
    )
    tag = block.to_tag()
    assert len(tag) <= 256 and not set(tag) - set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-=._:/@"
    )  # what AWS allows in a tag value
    assert from_tags({RESERVATION_TAG: tag}) == block
    assert from_tags({RESERVATION_TAG: "id=cr-1 kind=odcr"}) is None  # unreadable: not a reservation


def _with_reservation(plan: Plan, **changes: object) -> list[Any]:
    """The prod plan's resources with the training pool's reservation facts changed."""
    from dataclasses import replace

    from mlplatform.infra.cost.reservation import ANNOTATION, from_metadata
    from mlplatform.mlp.cost import plan_resources

    out = []
    for r in plan_resources(plan):
        if r.name == "nodepools-training-nodepool":
            facts = from_metadata(r.inputs["metadata"])
            assert facts is not None
            metadata = {**r.inputs["metadata"], "annotations": {ANNOTATION: replace(facts, **changes).to_annotation()}}
            r = replace(r, inputs={**r.inputs, "metadata": metadata})
        out.append(r)
    return out


def test_a_capacity_block_is_its_price_spread_over_its_term(plans: dict[str, Plan]) -> None:
    from mlplatform.infra.cost import estimate_cost

    block = {
        "kind": "capacity_block",
        "price_usd": 91_250.0,
        "start_date": dt.date(2026, 11, 1),
        "end_date": dt.date(2027, 1, 29),  # 90 days
    }
    estimate = estimate_cost(_with_reservation(plans["prod"], **block), "us-east-1", today=TODAY)
    line = next(line for line in estimate.lines if line.item.startswith("Capacity Block"))
    assert round(line.floor, 2) == round(91_250 / 90 * (H / 24), 2) == 30839.12
    assert line.how.startswith("$91,250.00 paid upfront / 90 days x 30.4167 days a month = $30,839.12 per month")
    # Outside its dates the block costs nothing this month, and the estimate says why.
    later = estimate_cost(_with_reservation(plans["prod"], **block), "us-east-1", today=dt.date(2027, 3, 1))
    line = next(line for line in later.lines if line.item.startswith("Capacity Block"))
    assert line.floor == 0.0 and "outside the block's term 2026-11-01 to 2027-01-29" in line.how
    assert any("counted $0 on 2027-03-01" in note for note in later.notes)


def test_spot_is_labelled_an_assumption(plans: dict[str, Plan]) -> None:
    estimate = estimate_plan(plans["dev"], "us-east-1", TODAY)
    assert any(
        note.startswith("spot scenario: an assumption, not a price: 35% of on-demand") for note in estimate.notes
    )


def test_the_cost_table_fits_100_columns_one_line_per_row(plans: dict[str, Plan]) -> None:
    import io

    from rich.console import Console

    from mlplatform.mlp.cost import StackCost, explain_lines, render_table

    estimate = estimate_plan(plans["prod"], "us-east-1", TODAY)
    cost = StackCost("prod", "stacks/Pulumi.prod.yaml", "prod", "us-east-1", 150000, estimate)
    buffer = io.StringIO()
    render_table(cost, Console(file=buffer, width=100, color_system=None))
    text = buffer.getvalue().splitlines()
    assert max(len(line) for line in text) <= 100
    # No row wraps: each cost line is one printed line holding its four money columns.
    rows = [line for line in text if line.lstrip().startswith("nodepools: ")]
    assert len(rows) == 4 and all(line.count("$") == 3 for line in rows)
    assert any("stack total" in line and "$103,172.19" in line and "$131,766.91" in line for line in text)
    assert "  2 x p5.48xlarge x $55.04/h x 730 h = $80,358.40 (ODCR, billed whether used or not)" in explain_lines(cost)


def _run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def _with_budget(tmp_path: Any, stack: str, budget: float) -> str:
    """A copy of the project whose stack has another budget; returns the project dir."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    project = tmp_path / "project"
    shutil.copytree(root, project, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "__pycache__", "bench"))
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    start = text.index("  ml-platform:budget:")
    line = next(i for i, line in enumerate(text[start:].splitlines()) if "monthly_usd" in line)
    lines = text.splitlines()
    offset = text[:start].count("\n")
    lines[offset + line] = f"    monthly_usd: {budget}"
    path.write_text("\n".join(lines) + "\n")
    return str(project)


def test_over_budget_is_an_error_in_prod(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _with_budget(tmp_path, "prod", 100000)
    assert _run(monkeypatch, "validate", "prod", "-C", project) == 2
    err = capsys.readouterr().err
    assert "stacks/Pulumi.prod.yaml" in err and "budget.monthly_usd:" in err
    assert "the estimated monthly cost at full scale is $131,766.91, over the budget of $100,000.00" in err
    # The largest lines are named. The training pool is a Karpenter NodePool on its ODCR (it was a node group):
    # the same 2 x p5.48xlarge at its 16-GPU limit, so the same ceiling under the NodePool's name.
    assert "nodepools-training-nodepool $80,358" in err  # the ODCR line (its nodes' disks are a line of their own)


def test_over_budget_is_a_warning_elsewhere(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _with_budget(tmp_path, "dev", 1000)
    assert _run(monkeypatch, "validate", "dev", "-C", project) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: stacks/Pulumi.dev.yaml: budget.monthly_usd: the estimated monthly cost")
    assert "ok stack dev" in captured.out
    # `mlp cost` says so too, and exits 1 so a CI step can fail on it.
    assert _run(monkeypatch, "cost", "dev", "-C", project, "-f", "json") == 1
    body = json.loads(capsys.readouterr().out)
    assert body["over_budget"] is True and body["budget_usd"] == 1000


def test_cost_json_markdown_and_compare(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(monkeypatch, "cost", "dev", "-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["totals"]["floor"] == 236.84 and body["hours_per_month"] == 730
    assert {"floor", "expected", "ceiling"} <= set(body["components"]["mlflow"])
    assert _run(monkeypatch, "cost", "dev", "--compare", "prod", "-f", "markdown") == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("### Monthly cost: `dev`")
    assert "| **total** | $236.84 | $103,172.19 | $4,477.32 | $131,766.91 | +$127,289.59 |" in markdown
    assert "<details><summary>Every line and how it was computed</summary>" in markdown
    assert _run(monkeypatch, "cost", "dev", "--compare", "prod", "-f", "json") == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["delta"]["ceiling"] == round(131766.91 - 4477.32, 2)
