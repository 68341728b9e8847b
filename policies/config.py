"""Policy configuration: enforcement level and parameters per rule, per environment.

The file format is CrossGuard's `--policy-pack-config` format, so one file serves `pulumi preview --policy-pack
policies --policy-pack-config policies/config.prod.json`, `mlp policy prod` and `mlp policy --terraform-plan`:

    {"all": "advisory",
     "aws-eks-cluster-disallow-public-endpoint": "mandatory",
     "mlp-gpu-families-allowed": {"enforcementLevel": "mandatory", "allowedFamilies": ["g6e", "p5"]}}

`all` sets the default level; an entry per rule id sets its level and/or its parameters. Unknown rule ids,
levels and parameters are errors naming the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from mlplatform.infra.config_errors import ConfigError, ConfigIssue
from mlplatform.policies.model import LEVELS, Level, Rule

CONFIG_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PolicyConfig:
    default_level: Level = "advisory"
    levels: Mapping[str, Level] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "(defaults)"

    def level(self, rule: Rule) -> Level:
        return self.levels.get(rule.id, self.default_level)

    def params_for(self, rule: Rule) -> dict[str, Any]:
        return {**rule.params, **self.params.get(rule.id, {})}


def config_path(environment: str) -> Path:
    return CONFIG_DIR / f"config.{environment}.json"


def load_policy_config(path: Path, rules: tuple[Rule, ...]) -> PolicyConfig:
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, [ConfigIssue((), "policy config file not found")])
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(source, [ConfigIssue((), f"is not valid JSON: {exc}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, [ConfigIssue((), "must be a JSON object of rule ids")])
    return parse_policy_config(raw, rules, source)


def parse_policy_config(raw: Mapping[str, Any], rules: tuple[Rule, ...], source: str) -> PolicyConfig:
    by_id = {r.id: r for r in rules}
    issues: list[ConfigIssue] = []
    default: Level = "advisory"
    levels: dict[str, Level] = {}
    params: dict[str, dict[str, Any]] = {}
    allowed_levels = ", ".join(LEVELS)
    for key, value in raw.items():
        if key == "all":
            if value not in LEVELS:
                issues.append(ConfigIssue(("all",), f"must be one of {allowed_levels} (got {value!r})"))
            else:
                default = cast(Level, value)
            continue
        rule = by_id.get(key)
        if rule is None:
            issues.append(ConfigIssue((key,), "is not a rule of this pack; see `mlp policy --list-rules`"))
            continue
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, Mapping):
            issues.append(ConfigIssue((key,), "must be a level or an object with enforcementLevel and parameters"))
            continue
        for param, setting in value.items():
            if param == "enforcementLevel":
                if setting not in LEVELS:
                    issues.append(ConfigIssue((key, param), f"must be one of {allowed_levels} (got {setting!r})"))
                else:
                    levels[key] = cast(Level, setting)
            elif param not in rule.params:
                allowed = ", ".join(["enforcementLevel", *rule.params]) or "enforcementLevel"
                issues.append(ConfigIssue((key, param), f"is not a parameter of this rule; allowed: {allowed}"))
            elif not isinstance(setting, type(rule.params[param])) and not (
                isinstance(setting, int | float) and isinstance(rule.params[param], int | float)
            ):
                expected = type(rule.params[param]).__name__
                issues.append(ConfigIssue((key, param), f"must be a {expected} (got {type(setting).__name__})"))
            else:
                params.setdefault(key, {})[param] = setting
    if issues:
        raise ConfigError(source, issues)
    return PolicyConfig(default_level=default, levels=levels, params=params, source=source)
