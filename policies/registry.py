"""Every shipped rule, found by walking `policies/rules` (one rule per module, grouped by service)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from mlplatform.policies.model import Rule


@cache
def all_rules() -> tuple[Rule, ...]:
    import mlplatform.policies.rules as package

    found: dict[str, Rule] = {}
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        if info.ispkg:
            continue
        module = importlib.import_module(info.name)
        rule = getattr(module, "RULE", None)
        if not isinstance(rule, Rule):
            raise RuntimeError(f"{info.name} defines no RULE")
        if rule.id in found:
            raise RuntimeError(f"rule id {rule.id} is defined twice")
        found[rule.id] = rule
    return tuple(sorted(found.values(), key=lambda r: r.id))


def rule_by_id(rule_id: str) -> Rule:
    for rule in all_rules():
        if rule.id == rule_id:
            return rule
    raise KeyError(rule_id)
