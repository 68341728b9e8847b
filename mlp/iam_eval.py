"""Offline IAM policy evaluation: would AWS allow this request, given the identity policy and the resource's policy?

The IAM contract tests (tests/test_iam_contracts.py) run each workload's real client code against moto, which
does not evaluate the Resource or Condition parts of policies; every AWS call the code makes is then decided here
against the workload's generated identity policy and the lake's bucket and key policies, taken from the plan.

Why our own evaluator (checked 2026-12): no maintained package on PyPI evaluates identity and resource policies
against a request context. PMapper (`principalmapper` 1.1.5, 2022-01, AGPL-3.0) does not import on Python >= 3.10
and, shimmed, decided 54 of 696 generated cases differently from a reference simulator (case-insensitive
Resource matching, `StringNotLike` on an absent key, no policy variables in conditions); iam-ape, policyuniverse,
parliament, policy_sentry and cloudsplaining lint or summarize policies but evaluate no request; moto's own
enforcement knows only `StringEquals` and ignores the rest. The reference simulator, npm
`@cloud-copilot/iam-simulate` (AGPL-3.0, Node), is correct but neither Python nor a licence this project ships;
this module agreed with it on all 696 generated cases of that comparison (run once, 2026-12; the cases are not
shipped). The tests (tests/test_iam_eval.py) pin the semantics with hand-computed cases citing the IAM User Guide.

Scope: one AWS account; the principal is an IAM role (a Pod Identity session of it); the request is decided by
the role's identity policies and at most one resource policy (bucket policy, key policy). Implemented as in the
IAM User Guide (reference_policies_evaluation-logic, reference_policies_elements_condition_operators):
- Action/NotAction (case-insensitive wildcards), Resource/NotResource (ARNs compared segment by segment, `*` and
  `?` within a segment; the resource part is case-sensitive), Principal/NotPrincipal of resource policies;
- an explicit Deny in any policy wins; otherwise the request is allowed when an identity policy or a resource
  policy statement naming the role (or `*`) allows it; a resource policy naming the account (`:root`) delegates to
  the identity policies. A KMS key policy must allow, directly or by delegating to the account: without that no
  identity policy helps;
- condition operators String*, Arn*, Bool, Null, Numeric*, each with `IfExists` and the `ForAnyValue:` and
  `ForAllValues:` qualifiers; an absent key makes a positive operator false and a negated one true, `IfExists`
  makes it true; several keys in one operator and several operators in one block all must hold; several values of
  one key: any (for negated operators: none) must match;
- policy variables (`${aws:username}`, `${*}`, `${?}`, `${$}`, `${key, 'default'}`) in resources and in string and
  ARN condition values (policy version 2012-10-17 only).
Not evaluated: service control, resource control and session policies, permission boundaries, VPC endpoint
policies, cross-account requests, Date*, Binary and IpAddress operators. A policy using something unsupported
raises `UnsupportedPolicyError` naming it, rather than being guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

ContextValue = str | tuple[str, ...]
"""A request context value: one string, or a tuple of them for a multivalued key."""

Outcome = Literal["allowed", "explicit_deny", "implicit_deny"]

POLICY_VERSION = "2012-10-17"
RESOURCE_POLICY_REQUIRED = frozenset({"kms"})
"""Services whose resource policy must allow (KMS key policies); elsewhere an identity policy suffices."""


class PolicyError(ValueError):
    """A policy document that is not a valid IAM policy."""


class UnsupportedPolicyError(PolicyError):
    """A valid policy that uses something this evaluator does not implement."""


# -- policies ---------------------------------------------------------------------------------------------------

_STRING_OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
    }
)
_ARN_OPERATORS = frozenset({"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"})
_NUMERIC_OPERATORS = frozenset(
    {
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
    }
)
SUPPORTED_OPERATORS = _STRING_OPERATORS | _ARN_OPERATORS | _NUMERIC_OPERATORS | {"Bool", "Null"}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}
_QUALIFIERS = ("ForAnyValue", "ForAllValues")


@dataclass(frozen=True)
class Condition:
    """One key under one operator, e.g. `"StringLike": {"s3:prefix": ["a/*"]}`."""

    operator: str
    """As written, e.g. `ForAnyValue:StringNotLikeIfExists`."""
    base: str
    """The positive operator, e.g. `StringLike`."""
    negated: bool
    if_exists: bool
    qualifier: str | None
    key: str
    values: tuple[str, ...]


def parse_operator(operator: str) -> tuple[str | None, str, bool, bool]:
    """(qualifier, positive base operator, negated, IfExists) of a condition operator; raises for unknown ones."""
    qualifier: str | None = None
    name = operator
    if ":" in name:
        qualifier, name = name.split(":", 1)
        if qualifier not in _QUALIFIERS:
            raise PolicyError(f"unknown condition qualifier {qualifier!r} in {operator!r}")
    if_exists = name.endswith("IfExists")
    if if_exists:
        name = name[: -len("IfExists")]
    if name not in SUPPORTED_OPERATORS:
        raise UnsupportedPolicyError(
            f"condition operator {operator!r} is not supported by this evaluator "
            f"(supported: {', '.join(sorted(SUPPORTED_OPERATORS))}, with IfExists and ForAnyValue/ForAllValues)"
        )
    if name == "Null" and (if_exists or qualifier):
        raise PolicyError(f"{operator!r}: Null takes neither IfExists nor a set qualifier")
    return qualifier, _NEGATED.get(name, name), name in _NEGATED, if_exists


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyError(f"{where}: expected a string, number or boolean, got {type(value).__name__}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PolicyError(f"{where}: empty list")
    return tuple(_scalar(v, where) for v in items)


@dataclass(frozen=True)
class PrincipalSpec:
    """The Principal (or NotPrincipal) element: `*` or per-kind lists (AWS, Service, Federated, CanonicalUser)."""

    everyone: bool = False
    by_kind: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _parse_principal(value: Any, where: str) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(everyone=True)
    if not isinstance(value, dict) or not value:
        raise PolicyError(f'{where}: Principal must be "*" or a map of principal kinds')
    by_kind = {str(kind): _strings(v, f"{where}.{kind}") for kind, v in value.items()}
    return PrincipalSpec(everyone=by_kind.get("AWS") == ("*",), by_kind=by_kind)


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]
    principal: PrincipalSpec | None
    not_principal: bool


def _one_of(raw: Mapping[str, Any], names: tuple[str, str], where: str, required: bool) -> tuple[Any, bool] | None:
    present = [n for n in names if n in raw]
    if len(present) > 1:
        raise PolicyError(f"{where}: has both {names[0]} and {names[1]}")
    if not present:
        if required:
            raise PolicyError(f"{where}: needs {names[0]} or {names[1]}")
        return None
    return raw[present[0]], present[0] == names[1]


def _parse_conditions(raw: Any, where: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}.Condition: must be a map of operators")
    out: list[Condition] = []
    for operator, block in raw.items():
        qualifier, base, negated, if_exists = parse_operator(str(operator))
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}.Condition.{operator}: must be a map of condition keys to values")
        for key, values in block.items():
            parsed = _strings(values, f"{where}.Condition.{operator}.{key}")
            if base == "Null" and any(v.lower() not in ("true", "false") for v in parsed):
                raise PolicyError(f"{where}.Condition.{operator}.{key}: Null takes true or false")
            if base in _NUMERIC_OPERATORS:
                for v in parsed:
                    try:
                        float(v)
                    except ValueError:
                        raise PolicyError(f"{where}.Condition.{operator}.{key}: {v!r} is not a number") from None
            out.append(Condition(str(operator), base, negated, if_exists, qualifier, str(key), parsed))
    return tuple(out)


@dataclass(frozen=True)
class Policy:
    """A parsed policy document; `name` says where it came from in explanations (e.g. `mlflow-policy`)."""

    name: str
    statements: tuple[Statement, ...]
    resource_policy: bool
    variables: bool
    """Policy variables are substituted (Version 2012-10-17); in older documents `${...}` is literal text."""

    @classmethod
    def parse(cls, name: str, document: str | Mapping[str, Any], *, resource_policy: bool = False) -> Policy:
        """Parse a policy; `resource_policy` for bucket, key and queue policies (their statements name principals).

        Raises `PolicyError` for an invalid document and `UnsupportedPolicyError` for an operator not implemented.
        """
        raw: Any = json.loads(document) if isinstance(document, str) else document
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{name}: a policy document is a JSON object")
        version = raw.get("Version")
        if version not in (None, POLICY_VERSION, "2008-10-17"):
            raise PolicyError(f"{name}: unknown policy Version {version!r}")
        items = raw.get("Statement")
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or not items:
            raise PolicyError(f"{name}: Statement must be a statement or a non-empty list of them")
        statements = tuple(
            cls._statement(item, f"{name}: Statement[{i}]", resource_policy) for i, item in enumerate(items)
        )
        return cls(name, statements, resource_policy, variables=version == POLICY_VERSION)

    @staticmethod
    def _statement(raw: Any, where: str, resource_policy: bool) -> Statement:
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: a statement is a JSON object")
        sid = str(raw.get("Sid", ""))
        if sid:
            where = f"{where} ({sid})"
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be Allow or Deny, not {effect!r}")
        action = _one_of(raw, ("Action", "NotAction"), where, required=True)
        assert action is not None
        # a role's trust policy (a resource policy of the role) names no Resource: it is the role itself
        resource = _one_of(raw, ("Resource", "NotResource"), where, required=not resource_policy) or ("*", False)
        principal = _one_of(raw, ("Principal", "NotPrincipal"), where, required=resource_policy)
        if principal is not None and not resource_policy:
            raise PolicyError(f"{where}: an identity policy names no Principal")
        for a in _strings(action[0], f"{where}.Action"):
            if a != "*" and ":" not in a:
                raise PolicyError(f"{where}: action {a!r} is not service:action")
        return Statement(
            sid=sid,
            effect=effect,
            actions=_strings(action[0], f"{where}.Action"),
            not_action=action[1],
            resources=_strings(resource[0], f"{where}.Resource"),
            not_resource=resource[1],
            conditions=_parse_conditions(raw.get("Condition"), where),
            principal=_parse_principal(principal[0], f"{where}.Principal") if principal else None,
            not_principal=principal[1] if principal else False,
        )


# -- matching ---------------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")


class Context:
    """The request context: key names are case-insensitive, as in IAM."""

    def __init__(self, values: Mapping[str, ContextValue]) -> None:
        self._values = {k.lower(): v for k, v in values.items()}

    def get(self, key: str) -> ContextValue | None:
        value = self._values.get(key.lower())
        if value is None or value == ():
            return None
        return value


def _segments(pattern: str, ctx: Context | None) -> tuple[tuple[bool, str], ...] | None:
    """(literal, text) pieces of a pattern with its policy variables resolved; None if one cannot be resolved.

    Resolved text is literal: a `*` in a user name does not become a wildcard."""
    if ctx is None or "${" not in pattern:
        return ((False, pattern),)
    pieces: list[tuple[bool, str]] = []
    pos = 0
    for match in _VARIABLE.finditer(pattern):
        pieces.append((False, pattern[pos : match.start()]))
        name = match.group(1)
        if name in _SPECIAL:
            pieces.append((True, _SPECIAL[name]))
        else:
            default = _DEFAULT.match(name)
            key, fallback = (default.group(1), default.group(2)) if default else (name.strip(), None)
            value = ctx.get(key)
            if isinstance(value, tuple):
                return None  # a multivalued key is no variable
            if value is None:
                if fallback is None:
                    return None
                value = fallback
            pieces.append((True, value))
        pos = match.end()
    pieces.append((False, pattern[pos:]))
    return tuple(pieces)


@cache
def _compile(pieces: tuple[tuple[bool, str], ...], wildcards: bool, ignore_case: bool) -> re.Pattern[str]:
    out: list[str] = []
    for literal, text in pieces:
        if literal or not wildcards:
            out.append(re.escape(text))
        else:
            out.extend(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matches(
    pattern: str, value: str, *, ctx: Context | None, wildcards: bool = True, ignore_case: bool = False
) -> bool:
    pieces = _segments(pattern, ctx)
    if pieces is None:
        return False
    return _compile(pieces, wildcards, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """`s3:Get*` matches `s3:GetObject`; action names compare case-insensitively."""
    return _matches(pattern, action, ctx=None, ignore_case=True)


def arn_matches(pattern: str, arn: str, ctx: Context | None = None, *, resource_policy: bool = False) -> bool:
    """ARN matching as in Resource and ArnLike: the six colon-separated parts compare one by one (wildcards stay
    within their part; the resource part keeps its colons). An identity policy's ARN with fewer parts is padded
    with `*` parts when it has a wildcard; a resource policy's is never padded without one."""
    if pattern == "*":
        return True
    parts = pattern.split(":", 5)
    if len(parts) < 6:
        if "*" not in pattern or (resource_policy and not parts[-1].endswith("*")):
            return False
        parts += ["*"] * (6 - len(parts))
    values = arn.split(":", 5)
    if len(values) < 6:
        return False
    # partition, service, region and account are case-insensitive; the resource part is not
    return all(_matches(p, v, ctx=ctx, ignore_case=i < 5) for i, (p, v) in enumerate(zip(parts, values, strict=True)))


def _value_matches(base: str, policy_value: str, value: str, ctx: Context | None) -> bool:
    if base == "StringEquals":
        return _matches(policy_value, value, ctx=ctx, wildcards=False)
    if base == "StringEqualsIgnoreCase":
        return _matches(policy_value, value, ctx=ctx, wildcards=False, ignore_case=True)
    if base == "StringLike":
        return _matches(policy_value, value, ctx=ctx)
    if base in ("ArnEquals", "ArnLike"):
        return arn_matches(policy_value, value, ctx)
    if base == "Bool":
        return policy_value.lower() == value.lower()
    try:
        number = float(value)
    except ValueError:
        return False  # a request value that is no number matches no numeric condition
    wanted = float(policy_value)
    return {
        "NumericEquals": number == wanted,
        "NumericLessThan": number < wanted,
        "NumericLessThanEquals": number <= wanted,
        "NumericGreaterThan": number > wanted,
        "NumericGreaterThanEquals": number >= wanted,
    }[base]


def condition_holds(condition: Condition, ctx: Context, *, variables: bool = True) -> bool:
    value = ctx.get(condition.key)
    if condition.base == "Null":
        return any((value is None) == (v.lower() == "true") for v in condition.values)
    if value is None:
        if condition.if_exists or condition.qualifier == "ForAllValues":
            return True
        if condition.qualifier == "ForAnyValue":
            return False
        return condition.negated
    var_ctx = ctx if variables else None

    def one(v: str) -> bool:
        hit = any(_value_matches(condition.base, pv, v, var_ctx) for pv in condition.values)
        return not hit if condition.negated else hit

    if condition.qualifier is None:
        if isinstance(value, tuple):
            if len(value) != 1:
                raise UnsupportedPolicyError(
                    f"condition {condition.operator} on {condition.key}: the request has several values for it; "
                    "a multivalued key needs ForAnyValue: or ForAllValues:"
                )
            value = value[0]
        return one(value)
    values = value if isinstance(value, tuple) else (value,)
    if condition.qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    return all(one(v) for v in values)


# -- principals and requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolePrincipal:
    """An IAM role and, optionally, the session name of the assumed-role session making the request."""

    role_arn: str
    session_name: str = "session"

    def __post_init__(self) -> None:
        parts = self.role_arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
            raise ValueError(f"not an IAM role ARN: {self.role_arn!r}")

    @property
    def partition(self) -> str:
        return self.role_arn.split(":")[1]

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]

    @property
    def role_name(self) -> str:
        return self.role_arn.split(":", 5)[5].rsplit("/", 1)[-1]

    @property
    def session_arn(self) -> str:
        return f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.role_name}/{self.session_name}"

    def context(self) -> dict[str, ContextValue]:
        """The global keys AWS sets for every request of this principal."""
        return {
            "aws:PrincipalArn": self.role_arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalType": "AssumedRole",
        }


@dataclass(frozen=True, kw_only=True)
class Request:
    """One authorization: the IAM action, the resource ARN and the request context its conditions read."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def describe(self) -> str:
        keys = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()) if not k.startswith("aws:Principal"))
        return f"{self.action} on {self.resource}" + (f" ({keys})" if keys else "")


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"


def _principal_match(spec: PrincipalSpec, principal: RolePrincipal) -> Literal["direct", "account", "none"]:
    if spec.everyone:
        return "direct"
    aws = spec.by_kind.get("AWS", ())
    if principal.role_arn in aws or principal.session_arn in aws:
        return "direct"
    if principal.account in aws or f"arn:{principal.partition}:iam::{principal.account}:root" in aws:
        return "account"
    return "none"


def _statement_applies(st: Statement, request: Request, ctx: Context, variables: bool, resource_policy: bool) -> bool:
    action_hit = any(action_matches(a, request.action) for a in st.actions)
    if action_hit == st.not_action:
        return False
    var_ctx = ctx if variables else None
    resource_hit = any(arn_matches(r, request.resource, var_ctx, resource_policy=resource_policy) for r in st.resources)
    if resource_hit == st.not_resource:
        return False
    return all(condition_holds(c, ctx, variables=variables) for c in st.conditions)


def _label(policy: Policy, st: Statement) -> str:
    return f"{policy.name}:{st.sid}" if st.sid else policy.name


def evaluate(
    request: Request,
    principal: RolePrincipal,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None = None,
) -> Decision:
    """Decide a same-account request of `principal` as IAM does (see the module docstring for the scope)."""
    ctx = Context({**principal.context(), **request.context})
    allows: list[str] = []
    direct: list[str] = []
    delegated: list[str] = []
    for policy in identity_policies:
        if policy.resource_policy:
            raise ValueError(f"{policy.name} is a resource policy, given as an identity policy")
        for st in policy.statements:
            if _statement_applies(st, request, ctx, policy.variables, resource_policy=False):
                if st.effect == "Deny":
                    return Decision("explicit_deny", f"denied by {_label(policy, st)}")
                allows.append(_label(policy, st))
    if resource_policy is not None:
        if not resource_policy.resource_policy:
            raise ValueError(f"{resource_policy.name} is an identity policy, given as the resource policy")
        for st in resource_policy.statements:
            assert st.principal is not None
            match = _principal_match(st.principal, principal)
            if st.not_principal:
                match = "direct" if match == "none" else "none"
            if match == "none" or not _statement_applies(st, request, ctx, resource_policy.variables, True):
                continue
            if st.effect == "Deny":
                return Decision("explicit_deny", f"denied by {_label(resource_policy, st)}")
            (direct if match == "direct" else delegated).append(_label(resource_policy, st))
    service = request.action.split(":", 1)[0].lower()
    if service in RESOURCE_POLICY_REQUIRED:
        if resource_policy is None:
            return Decision("implicit_deny", f"{service} needs the resource's policy, none given")
        if direct:
            return Decision("allowed", f"allowed by {direct[0]}")
        if delegated and allows:
            return Decision("allowed", f"allowed by {allows[0]} (delegated by {delegated[0]})")
        if delegated:
            return Decision("implicit_deny", f"{delegated[0]} delegates to IAM, and no identity policy allows")
        return Decision("implicit_deny", f"{resource_policy.name} does not allow the role or its account")
    if direct:
        return Decision("allowed", f"allowed by {direct[0]}")
    if allows:
        return Decision("allowed", f"allowed by {allows[0]}")
    names = ", ".join(p.name for p in [*identity_policies, *([resource_policy] if resource_policy else [])])
    return Decision("implicit_deny", f"no statement allows it (policies: {names or 'none'})")


def policy_actions(document: str | Mapping[str, Any]) -> list[str]:
    """Every action name or pattern a policy document lists (Action and NotAction), in order, without checking."""
    raw: Any = json.loads(document) if isinstance(document, str) else document
    items = raw.get("Statement", []) if isinstance(raw, Mapping) else []
    out: list[str] = []
    for st in [items] if isinstance(items, dict) else items:
        for key in ("Action", "NotAction"):
            value = st.get(key) if isinstance(st, dict) else None
            if value is not None:
                out.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return out


def policy_operators(document: str | Mapping[str, Any]) -> set[str]:
    """The condition operators a policy document uses, as written."""
    raw: Any = json.loads(document) if isinstance(document, str) else document
    items = raw.get("Statement", []) if isinstance(raw, Mapping) else []
    return {
        str(op)
        for st in ([items] if isinstance(items, dict) else items)
        if isinstance(st, dict)
        for op in (st.get("Condition") or {})
    }


def unknown_actions(patterns: Iterable[str], catalogue: Mapping[str, frozenset[str]]) -> list[str]:
    """The action names (or wildcard patterns) that name no action of `catalogue` (service prefix -> lowercase
    action names): a misspelled action, an unknown service, a wildcard that matches nothing."""
    out: list[str] = []
    for pattern in patterns:
        if pattern == "*":
            continue
        service, _, name = pattern.partition(":")
        actions = catalogue.get(service.lower())
        if actions is None or not name:
            out.append(pattern)
        elif "*" in name or "?" in name:
            if not any(action_matches(name, a) for a in actions):
                out.append(pattern)
        elif name.lower() not in actions:
            out.append(pattern)
    return out
