"""Model hub tokens reach containers only by secret reference, never as literal values (which land in state)."""

import re
from collections.abc import Iterator, Mapping

from policies.helpers import WORKLOAD_TYPES, as_list, containers, pod_specs
from policies.model import Resource, RuleContext, resource_rule

TOKEN_NAMES = re.compile(r"(^HF_TOKEN$|HUGGING_?FACE|_TOKEN$|API_KEY$|SECRET|PASSWORD)", re.I)
# Names that point at a secret (an id, ARN, name or file path) rather than hold one.
REFERENCE_NAMES = re.compile(r"(_SECRET_(ID|ARN|NAME)|_(PATH|FILE|DIR))$", re.I)
TOKEN_VALUES = re.compile(r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,})$")


@resource_rule(
    id="mlp-hub-token-secret-reference",
    severity="critical",
    types=list(WORKLOAD_TYPES),
    description="Tokens (Hugging Face, API keys, passwords) come from secretKeyRef / a mounted secret, never a "
    "literal env value: a literal would be stored in the Pulumi state and visible to anyone who can read the pod. "
    "Variables that name a secret (`*_SECRET_ID`, `*_SECRET_ARN`, `*_SECRET_NAME`) or a file (`*_PATH`, `*_FILE`) "
    "are references and pass, unless their value itself looks like a token.",
    remediation="Store the token in AWS Secrets Manager and read it inside the pod with the pod's own role (an init "
    "container writing to an in-memory file), or sync it to a Kubernetes Secret and use valueFrom.secretKeyRef.",
    references=["checkov CKV_K8S_35", "CIS Amazon EKS Benchmark 4.4.1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for where, pod in pod_specs(r):
        for name, container in containers(pod):
            for env in as_list(container.get("env")):
                if not isinstance(env, Mapping) or "value" not in env:
                    continue
                value = str(env.get("value") or "")
                name_ = str(env.get("name"))
                named_like_a_token = TOKEN_NAMES.search(name_) and not REFERENCE_NAMES.search(name_)
                if TOKEN_VALUES.match(value) or (named_like_a_token and value):
                    yield f"{where}.{name} sets {env.get('name')} as a literal value; use valueFrom.secretKeyRef"


RULE = check
