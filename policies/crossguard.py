"""CrossGuard policies built from the rules (importable without starting a policy pack server).

Each rule becomes a ResourceValidationPolicy or StackValidationPolicy whose validate function converts CrossGuard's
arguments to normalized resources and calls the very same rule function `mlp policy` uses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlplatform.policies.model import Rule, RuleContext
from mlplatform.policies.registry import all_rules
from mlplatform.policies.sources.crossguard import to_resource


def _context(rule: Rule, config: Any) -> RuleContext:
    return RuleContext(params={**rule.params, **dict(config or {})}, today=dt.date.today())


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.params:
        return None
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return PolicyConfigSchema(
        properties={k: {"type": kinds.get(type(v), "string"), "default": v} for k, v in rule.params.items()}
    )


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    types = set(rule.resource_types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in types:
            return
        resource = to_resource(args.resource_type, args.name, args.props, args.opts, args.provider)
        for message in rule.check(resource, _context(rule, args.get_config())):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.id,
        description=rule.description,
        validate=validate,
        config_schema=_schema(rule),
        severity=Severity(rule.severity),
        remediation_steps=rule.remediation,
        tags=list(rule.references),
    )


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            to_resource(r.resource_type, r.name, r.props, r.opts, r.provider, r.property_dependencies)
            for r in args.resources
        ]
        urns = {r.name: r.urn for r in args.resources}
        for resource, message in rule.check(resources, _context(rule, args.get_config())):
            report_violation(message, urns.get(resource.name))

    return StackValidationPolicy(
        name=rule.id,
        description=rule.description,
        validate=validate,
        config_schema=_schema(rule),
        severity=Severity(rule.severity),
        remediation_steps=rule.remediation,
        tags=list(rule.references),
    )


def policies() -> list[Policy]:
    return [resource_policy(r) if r.kind == "resource" else stack_policy(r) for r in all_rules()]
