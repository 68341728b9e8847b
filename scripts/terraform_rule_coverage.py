"""How many rules can fire on a Terraform plan: with the `aws_*` mapping alone, and with Kubernetes and Helm.

A rule can fire when a Terraform plan can produce a resource of a type it reads (`aws:*` and `kubernetes:*` match
every token of the provider; `kubernetes_manifest` and `kubectl_manifest` can produce any Kubernetes object) and it
does not depend on what plan JSON lacks (`NOT_ON_TERRAFORM`).

Run from the repository root: `.venv/bin/python scripts/terraform_rule_coverage.py`.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlplatform.policies.model import Rule
from mlplatform.policies.registry import all_rules
from mlplatform.policies.sources.terraform import TYPES
from mlplatform.policies.sources.terraform_kubernetes import HELM_RELEASE, NOT_ON_TERRAFORM, TYPED, type_token


def can_fire(rule: Rule, tokens: set[str], any_kubernetes: bool) -> bool:
    if rule.id in NOT_ON_TERRAFORM:
        return False
    for wanted in rule.resource_types:
        if wanted.startswith("kubernetes:") and any_kubernetes:
            return True
        if any(fnmatch.fnmatchcase(token, wanted) for token in tokens):
            return True
    return False


def main() -> None:
    rules = all_rules()
    aws = {m.token for m in TYPES.values()}
    kubernetes = {type_token(k.api_version, k.kind) for k in TYPED.values()} | {HELM_RELEASE}
    before = [r.id for r in rules if can_fire(r, aws, any_kubernetes=False)]
    after = [r.id for r in rules if can_fire(r, aws | kubernetes, any_kubernetes=True)]
    print(f"rules: {len(rules)}")
    print(f"can fire on Terraform plans, aws_* mapping only: {len(before)}")
    print(f"can fire on Terraform plans, with Kubernetes and Helm: {len(after)}")
    print("newly reachable: " + ", ".join(sorted(set(after) - set(before))))
    for rule in rules:
        if rule.id not in after:
            print(f"cannot fire: {rule.id}: {NOT_ON_TERRAFORM.get(rule.id, 'no mapped type it reads')}")


if __name__ == "__main__":
    main()
