"""Karpenter nodes use a pinned AMI release, never `@latest` (mandatory in prod)."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import NODECLASS, as_list
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule


@resource_rule(
    id="mlp-no-latest-ami",
    severity="high",
    types=[NODECLASS],
    description="EC2NodeClass amiSelectorTerms pin an AMI release (`al2023@v20260724`), not `@latest`, so nodes do "
    "not change when AWS publishes an AMI.",
    remediation="Pin the alias version and bump it deliberately.",
    references=["Karpenter docs: amiSelectorTerms (pin AMIs in production)"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    terms = r.get("spec.amiSelectorTerms")
    if contains_unknown(terms):
        return
    for term in as_list(terms):
        alias = term.get("alias") if isinstance(term, Mapping) else None
        if isinstance(alias, str) and alias.endswith("@latest"):
            yield f"the node class follows {alias}: nodes change whenever AWS publishes an AMI"


RULE = check
