"""Run rules over normalized resources: the same engine for offline plans, Terraform plans and tests."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from mlplatform.policies.config import PolicyConfig
from mlplatform.policies.model import Report, Resource, Rule, RuleContext, Skipped, Unjudged, Violation, unknown_reads


def evaluate(
    resources: Sequence[Resource],
    rules: Sequence[Rule],
    config: PolicyConfig,
    *,
    today: dt.date | None = None,
    skipped: Sequence[Skipped] = (),
) -> Report:
    day = today or dt.date.today()
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for resource in resources:
        by_type[resource.type].append(resource)
    violations: list[Violation] = []
    unjudged: list[Unjudged] = []
    active = 0
    for rule in rules:
        level = config.level(rule)
        if level == "disabled":
            continue
        active += 1
        ctx = RuleContext(params=config.params_for(rule), today=day)
        flagged: set[str] = set()
        with unknown_reads() as reads:
            if rule.kind == "resource":
                for type_token in rule.resource_types:
                    for resource in by_type.get(type_token, ()):
                        for message in rule.check(resource, ctx):
                            flagged.add(resource.name)
                            violations.append(
                                Violation(rule.id, rule.severity, level, resource.name, resource.type, message)
                            )
            else:
                for resource, message in rule.check(resources, ctx):
                    flagged.add(resource.name)
                    violations.append(Violation(rule.id, rule.severity, level, resource.name, resource.type, message))
        # An unknown value a rule read on a resource it did not flag is a judgement left to apply time.
        unjudged.extend(Unjudged(rule.id, name, attr) for name, attr in reads if name not in flagged)
    order = {"mandatory": 0, "advisory": 1, "disabled": 2}
    violations.sort(key=lambda v: (order[v.level], v.rule, v.resource, v.message))
    unjudged.sort(key=lambda u: (u.rule, u.resource, u.attribute))
    return Report(
        violations=tuple(violations),
        checked=len(resources),
        skipped=tuple(skipped),
        rules=active,
        unjudged=tuple(unjudged),
    )
