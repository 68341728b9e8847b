"""Model hub tokens reach containers only by secret reference, never as literal values (which land in state)."""

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlplatform.policies.helpers import WORKLOAD_TYPES, as_list, containers, pod_specs
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule

RELEASE = "kubernetes:helm.sh/v3:Release"
TOKEN_NAMES = re.compile(r"(^HF_TOKEN$|HUGGING_?FACE|_TOKEN$|API_KEY$|SECRET|PASSWORD)", re.I)
# Names that point at a secret (an id, ARN, name or file path) rather than hold one.
REFERENCE_NAMES = re.compile(r"(_SECRET_(ID|ARN|NAME)|_(PATH|FILE|DIR))$", re.I)
TOKEN_VALUES = re.compile(r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,})$")
# Chart values keys written like environment variables (`HF_TOKEN: ...` under a chart's `env` map); camelCase chart
# settings (`adminPassword`) are the chart's business and are not read as tokens.
ENV_STYLE_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


def is_literal_token(name: str, value: Any) -> bool:
    """A literal value that is a token, or that sits under a token's name and names no secret."""
    if is_unknown(value) or value is None or str(value) == "":
        return False
    named_like_a_token = TOKEN_NAMES.search(name) and not REFERENCE_NAMES.search(name)
    return bool(TOKEN_VALUES.match(str(value)) or named_like_a_token)


def _literal_under(key: str, value: Any) -> bool:
    if not isinstance(value, str) or is_unknown(value):
        return False
    return bool(TOKEN_VALUES.match(value) or (ENV_STYLE_KEY.match(key) and is_literal_token(key, value)))


def chart_literals(values: Any, path: str = "") -> Iterator[str]:
    """Where a chart's values hold a token literally: an env entry `{name, value}`, an env-style key, or any value
    shaped like a token. Unknown values (a `set_sensitive`, a value known after apply) are not read."""
    if isinstance(values, Mapping):
        if "name" in values and "value" in values:
            if is_literal_token(str(values.get("name")), values.get("value")):
                yield f"{path or 'values'} sets {values.get('name')} as a literal value"
            return
        for key in values:
            value = values.get(key)  # read through get: an unknown value is noted as unjudged
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, Mapping | list):
                yield from chart_literals(value, where)
            elif _literal_under(str(key), value):
                yield f"{where} is a literal token"
    elif isinstance(values, list):
        for i, item in enumerate(values):
            yield from chart_literals(item, f"{path}[{i}]")


@resource_rule(
    id="mlp-hub-token-secret-reference",
    severity="critical",
    types=[*WORKLOAD_TYPES, RELEASE],
    description="Tokens (Hugging Face, API keys, passwords) come from secretKeyRef / a mounted secret, never a "
    "literal env value: a literal would be stored in the Pulumi state and visible to anyone who can read the pod. "
    "Variables that name a secret (`*_SECRET_ID`, `*_SECRET_ARN`, `*_SECRET_NAME`) or a file (`*_PATH`, `*_FILE`) "
    "are references and pass, unless their value itself looks like a token. Helm chart values are read the same "
    "way (env entries, env-style keys, values shaped like a token); a value set with set_sensitive is unknown.",
    remediation="Store the token in AWS Secrets Manager and read it inside the pod with the pod's own role (an init "
    "container writing to an in-memory file), or sync it to a Kubernetes Secret and use valueFrom.secretKeyRef "
    "(for a chart, its existingSecret-style value).",
    references=["checkov CKV_K8S_35", "CIS Amazon EKS Benchmark 4.4.1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.type == RELEASE:
        for where in chart_literals(r.inputs.get("values")):
            yield f"chart values: {where}; reference a Secret instead"
        return
    for where, pod in pod_specs(r):
        for name, container in containers(pod):
            for env in as_list(container.get("env")):
                if not isinstance(env, Mapping) or "value" not in env:
                    continue
                if is_literal_token(str(env.get("name")), env.get("value")):
                    yield f"{where}.{name} sets {env.get('name')} as a literal value; use valueFrom.secretKeyRef"


RULE = check
