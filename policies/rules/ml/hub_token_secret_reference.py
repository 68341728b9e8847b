"""Model hub tokens reach containers only by secret reference, never as literal values (which land in state)."""

import re
from collections.abc import Iterator, Mapping

from policies.helpers import WORKLOAD_TYPES, as_list, containers, pod_specs
from policies.model import Resource, RuleContext, resource_rule

TOKEN_NAMES = re.compile(r"(^HF_TOKEN$|HUGGING_?FACE|_TOKEN$|API_KEY$|SECRET|PASSWORD)", re.I)
TOKEN_VALUES = re.compile(r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,})$")


@resource_rule(
    id="mlp-hub-token-secret-reference",
    severity="critical",
    types=list(WORKLOAD_TYPES),
    description="Tokens (Hugging Face, API keys, passwords) come from secretKeyRef / a mounted secret, never a "
    "literal env value: a literal would be stored in the Pulumi state and visible to anyone who can read the pod.",
    remediation="Store the token in AWS Secrets Manager, sync it to a Kubernetes Secret, and use "
    "valueFrom.secretKeyRef.",
    references=["checkov CKV_K8S_35", "CIS Amazon EKS Benchmark 4.4.1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for where, pod in pod_specs(r):
        for name, container in containers(pod):
            for env in as_list(container.get("env")):
                if not isinstance(env, Mapping) or "value" not in env:
                    continue
                value = str(env.get("value") or "")
                if TOKEN_VALUES.match(value) or (TOKEN_NAMES.search(str(env.get("name"))) and value):
                    yield f"{where}.{name} sets {env.get('name')} as a literal value; use valueFrom.secretKeyRef"


RULE = check
