"""Accuracy on real Terraform plans against adjudicated labels (tests/data/terraform-labels/), ours live, checkov
from its recorded verdicts. The figures and the per-rule misses: `.venv/bin/python bench/terraform_accuracy.py`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from bench.terraform_accuracy import (
    LABELS,
    PLANS,
    Key,
    Label,
    Pair,
    alike_rules,
    checkov_recorded,
    load_labels,
    load_pairs,
    our_flags,
    plan_names,
    score,
    unlabelled,
)

TRUTHS = {"violation", "compliant", "undeterminable"}

# Before the Terraform reader rewrite (b06b276) our recall was 32/45 = 0.711 on all pairs and 17/29 = 0.586 on the
# alike pairs (checkov 3.2.533: 33/45 = 0.733 and 23/29 = 0.793); precision 1.000. With the rewrite, the default-VPC
# public IP and the trust-policy takeover: 45/45 and 29/29, precision 1.000. The floors are those figures: a miss
# or a false positive on these plans is a regression.
OUR_RECALL_FLOOR = 1.0
OUR_ALIKE_RECALL_FLOOR = 1.0
OUR_PRECISION_FLOOR = 1.0  # the goal of issue 14 is 0.98


@cache
def pairs() -> dict[str, Pair]:
    return load_pairs()


@cache
def labels() -> tuple[Label, ...]:
    return tuple(load_labels())


@cache
def ours() -> frozenset[Key]:
    return frozenset(our_flags(pairs()))


@cache
def checkov() -> tuple[frozenset[Key], frozenset[Key]]:
    flagged, judged = checkov_recorded(pairs())
    return frozenset(flagged), frozenset(judged)


@cache
def plan(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PLANS / name).read_text(encoding="utf-8"))
    return data


def changes(name: str) -> Iterator[dict[str, Any]]:
    yield from plan(name).get("resource_changes", [])


def addresses(name: str) -> set[str]:
    return {rc["address"] for rc in changes(name)}


def test_labels_are_well_formed() -> None:
    seen: set[Key] = set()
    for label in labels():
        assert label.truth in TRUTHS, label
        assert label.reason.strip(), label
        assert label.rule in pairs(), f"{label.rule} is not in pairs.json"
        assert label.checkov == pairs()[label.rule].checkov, label
        assert label.key not in seen, f"labelled twice: {label.key}"
        seen.add(label.key)


def test_every_label_names_a_plan_and_an_address_that_exist() -> None:
    names = set(plan_names())
    for label in labels():
        assert label.plan in names, label
        assert label.address in addresses(label.plan), f"{label.plan} has no resource {label.address}"


def test_recorded_checkov_verdicts_name_existing_addresses() -> None:
    for name in plan_names():
        recorded = json.loads((LABELS / "checkov" / name).read_text(encoding="utf-8"))
        for verdict in recorded["verdicts"]:
            assert verdict["address"] in addresses(name), (name, verdict)
            assert verdict["result"] in ("PASSED", "FAILED"), (name, verdict)


def test_every_judgement_and_every_covered_resource_has_a_label() -> None:
    """Labels cover what either tool judges and every managed resource of a pair's Terraform types."""
    flagged, judged = checkov()
    assert unlabelled(labels(), set(ours()), set(flagged), set(judged)) == set()
    keys = {label.key for label in labels()}
    for name in plan_names():
        for rc in changes(name):
            if rc.get("mode", "managed") != "managed" or rc["change"]["actions"] == ["delete"]:
                continue
            for rule, pair in pairs().items():
                if rc["type"] in pair.types:
                    assert (name, rc["address"], rule) in keys, f"unlabelled: {name} {rc['address']} {rule}"


def test_undeterminable_labels_are_left_out_of_the_figures() -> None:
    undeterminable = [x for x in labels() if x.truth == "undeterminable"]
    s = score(labels(), set(ours()))
    assert s.undeterminable == len(undeterminable)
    assert s.tp + s.fp + s.fn + s.tn + s.undeterminable == len(labels())


def test_our_precision_on_all_pairs() -> None:
    s = score(labels(), set(ours()))
    assert s.precision is not None
    assert s.precision >= OUR_PRECISION_FLOOR, f"precision {s.precision:.3f} ({s.fp} false positives)"


def test_our_recall_floors() -> None:
    everything = score(labels(), set(ours()))
    alike = score(labels(), set(ours()), alike_rules(pairs()))
    assert everything.recall is not None
    assert alike.recall is not None
    assert everything.recall >= OUR_RECALL_FLOOR, f"recall {everything.recall:.3f}"
    assert alike.recall >= OUR_ALIKE_RECALL_FLOOR, f"recall on alike pairs {alike.recall:.3f}"


def test_our_recall_is_at_least_checkovs_on_alike_pairs() -> None:
    rules = alike_rules(pairs())
    mine = score(labels(), set(ours()), rules).recall
    theirs = score(labels(), set(checkov()[0]), rules).recall
    assert mine is not None
    assert theirs is not None
    assert mine >= theirs, f"ours {mine:.3f} < checkov {theirs:.3f} on the alike pairs"


def test_checkov_figures_from_the_recorded_verdicts() -> None:
    """The comparison baseline is fixed by the recorded verdicts: a change here means the labels changed."""
    flagged, _ = checkov()
    everything = score(labels(), set(flagged))
    alike = score(labels(), set(flagged), alike_rules(pairs()))
    assert (everything.tp, everything.fp, everything.fn) == (33, 0, 12)
    assert (alike.tp, alike.fp, alike.fn) == (23, 0, 6)
