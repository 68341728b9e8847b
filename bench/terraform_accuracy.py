#!/usr/bin/env python3
"""Recall and precision of our rules and of checkov on the real Terraform plans, against adjudicated labels.

  .venv/bin/python bench/terraform_accuracy.py [--checkov /path/to/checkov]

The labels (tests/data/terraform-labels/labels.json) were decided by reading each plan's `after`, `after_unknown`
and `configuration`; pairs.json says which checkov check ids each of our rules is compared with and whether the two
define the control alike. Ours runs live on each plan with every rule mandatory, so the figures are those of the
reader and rules as they are now. checkov's verdicts come from tests/data/terraform-labels/checkov/<plan>.json
(recorded with the version named there), or live with --checkov.

A tool flags (plan, address, pair) when ours reports a violation of the pair's rule on the address, or when checkov
FAILs any of the pair's check ids on it. Labels `undeterminable` are left out of both tools' figures and counted
apart. Prints figures; asserts nothing (tests/test_terraform_accuracy.py holds the floors).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PLANS = ROOT / "tests" / "data" / "terraform-plans"
LABELS = ROOT / "tests" / "data" / "terraform-labels"

Key = tuple[str, str, str]
"""(plan file name, resource address, our rule id): one judgement of one pair on one resource."""


@dataclass(frozen=True)
class Pair:
    rule: str
    checkov: tuple[str, ...]
    types: tuple[str, ...]
    alike: bool
    note: str


@dataclass(frozen=True)
class Label:
    plan: str
    address: str
    rule: str
    checkov: tuple[str, ...]
    truth: str
    reason: str

    @property
    def key(self) -> Key:
        return (self.plan, self.address, self.rule)


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int
    tn: int
    undeterminable: int

    @property
    def precision(self) -> float | None:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        violations = self.tp + self.fn
        return self.tp / violations if violations else None


def plan_names() -> list[str]:
    return sorted(p.name for p in PLANS.glob("*.json"))


def load_pairs() -> dict[str, Pair]:
    raw = json.loads((LABELS / "pairs.json").read_text(encoding="utf-8"))
    return {
        p["rule"]: Pair(p["rule"], tuple(p["checkov"]), tuple(p["types"]), bool(p["alike"]), p["note"])
        for p in raw["pairs"]
    }


def load_labels() -> list[Label]:
    raw = json.loads((LABELS / "labels.json").read_text(encoding="utf-8"))
    return [
        Label(x["plan"], x["address"], x["pair"]["rule"], tuple(x["pair"]["checkov"]), x["truth"], x["reason"])
        for x in raw
    ]


def our_flags(pairs: Mapping[str, Pair], plans: Iterable[str] | None = None) -> set[Key]:
    """Our violations of paired rules, every rule mandatory, on each plan as the reader reads it now."""
    from mlplatform.policies.config import PolicyConfig
    from mlplatform.policies.run import check, resources_from_terraform

    config = PolicyConfig(default_level="mandatory")
    flags: set[Key] = set()
    for name in plans if plans is not None else plan_names():
        resources, skipped = resources_from_terraform(PLANS / name)
        report = check(resources, config, skipped=skipped)
        flags |= {(name, v.resource, v.rule) for v in report.violations if v.rule in pairs}
    return flags


def _checkov_keys(
    plan: str, verdicts: Iterable[Mapping[str, str]], pairs: Mapping[str, Pair]
) -> tuple[set[Key], set[Key]]:
    """(flagged, judged): a pair is judged when checkov gave any of its ids a verdict, flagged when one FAILED."""
    by_id: dict[str, list[str]] = {}
    for pair in pairs.values():
        for check_id in pair.checkov:
            by_id.setdefault(check_id, []).append(pair.rule)
    flagged: set[Key] = set()
    judged: set[Key] = set()
    for v in verdicts:
        for rule in by_id.get(v["check_id"], []):
            judged.add((plan, v["address"], rule))
            if v["result"] == "FAILED":
                flagged.add((plan, v["address"], rule))
    return flagged, judged


def checkov_recorded(pairs: Mapping[str, Pair]) -> tuple[set[Key], set[Key]]:
    flagged: set[Key] = set()
    judged: set[Key] = set()
    for name in plan_names():
        recorded = json.loads((LABELS / "checkov" / name).read_text(encoding="utf-8"))
        f, j = _checkov_keys(name, recorded["verdicts"], pairs)
        flagged |= f
        judged |= j
    return flagged, judged


def checkov_live(executable: str, pairs: Mapping[str, Pair]) -> tuple[set[Key], set[Key]]:
    flagged: set[Key] = set()
    judged: set[Key] = set()
    for name in plan_names():
        done = subprocess.run(
            [executable, "-f", str(PLANS / name), "--framework", "terraform_plan", "-o", "json", "--compact"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode not in (0, 1):
            raise SystemExit(f"checkov failed on {name}: {done.stderr.strip()[-500:]}")
        output: Any = json.loads(done.stdout)
        reports = output if isinstance(output, list) else [output]
        verdicts: list[dict[str, str]] = []
        for report in reports:
            results = report.get("results", {})
            for result, checks in (
                ("PASSED", results.get("passed_checks", [])),
                ("FAILED", results.get("failed_checks", [])),
            ):
                verdicts += [{"address": c["resource"], "check_id": c["check_id"], "result": result} for c in checks]
        f, j = _checkov_keys(name, verdicts, pairs)
        flagged |= f
        judged |= j
    return flagged, judged


def score(labels: Sequence[Label], flagged: set[Key], rules: set[str] | None = None) -> Score:
    tp = fp = fn = tn = undeterminable = 0
    for label in labels:
        if rules is not None and label.rule not in rules:
            continue
        if label.truth == "undeterminable":
            undeterminable += 1
            continue
        hit = label.key in flagged
        if label.truth == "violation":
            tp += hit
            fn += not hit
        else:
            fp += hit
            tn += not hit
    return Score(tp, fp, fn, tn, undeterminable)


def alike_rules(pairs: Mapping[str, Pair]) -> set[str]:
    return {rule for rule, pair in pairs.items() if pair.alike}


def unlabelled(labels: Sequence[Label], *verdicts: set[Key]) -> set[Key]:
    """Judgements of either tool that no label covers (the labels must cover all of them)."""
    keys = {label.key for label in labels}
    return {k for v in verdicts for k in v} - keys


def misses(labels: Sequence[Label], flagged: set[Key]) -> list[Label]:
    return [x for x in labels if x.truth == "violation" and x.key not in flagged]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkov", help="run this checkov executable instead of reading the recorded verdicts")
    args = parser.parse_args(argv)

    pairs = load_pairs()
    labels = load_labels()
    ours = our_flags(pairs)
    if args.checkov:
        theirs, theirs_judged = checkov_live(args.checkov, pairs)
        source = f"live ({args.checkov})"
    else:
        theirs, theirs_judged = checkov_recorded(pairs)
        source = "recorded verdicts, checkov " + json.loads((LABELS / "pairs.json").read_text())["checkov_version"]

    counts = {t: sum(x.truth == t for x in labels) for t in ("violation", "compliant", "undeterminable")}
    print(
        f"{len(labels)} labels on {len(plan_names())} plans, {len(pairs)} rule pairs ({len(alike_rules(pairs))} alike)"
    )
    print(
        "  " + ", ".join(f"{n} {t}" for t, n in counts.items()) + " (undeterminable: left out of both tools' figures)"
    )
    print(f"checkov: {source}\n")
    print(f"{'tool':8} {'pairs':6} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>10} {'recall':>8}")
    for tool, flagged in (("ours", ours), ("checkov", theirs)):
        for scope, rules in (("all", None), ("alike", alike_rules(pairs))):
            s = score(labels, flagged, rules)
            print(f"{tool:8} {scope:6} {s.tp:4} {s.fp:4} {s.fn:4} {_fmt(s.precision):>10} {_fmt(s.recall):>8}")

    print("\nper rule pair (TP/FN ours, TP/FN checkov):")
    for rule, pair in sorted(pairs.items()):
        a, b = score(labels, ours, {rule}), score(labels, theirs, {rule})
        if a.tp + a.fn + a.fp + b.fp == 0:
            continue
        fps = f"  FP ours {a.fp} checkov {b.fp}" if a.fp or b.fp else ""
        mark = "alike" if pair.alike else "     "
        print(f"  {rule:45} {'+'.join(pair.checkov):24} {mark}  {a.tp}/{a.fn}  {b.tp}/{b.fn}{fps}")

    print("\nour misses (false negatives):")
    for label in misses(labels, ours):
        print(f"  {label.rule} {label.plan} {label.address}: {label.reason}")
    print("\nour false positives:")
    for label in labels:
        if label.truth == "compliant" and label.key in ours:
            print(f"  {label.rule} {label.plan} {label.address}: {label.reason}")

    missing = unlabelled(labels, ours, theirs, theirs_judged)
    if missing:
        print("\nUNLABELLED judgements (add labels):")
        for plan, address, rule in sorted(missing):
            print(f"  {plan} {address} {rule}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
