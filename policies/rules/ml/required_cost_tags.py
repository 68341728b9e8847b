"""Every taggable AWS resource carries the cost tags, counting the provider's default tags."""

from collections.abc import Iterator, Sequence

from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, stack_rule
from mlplatform.policies.sources.taggable import takes_tags


@stack_rule(
    id="mlp-required-cost-tags",
    severity="high",
    types=["aws:*"],
    description="Every AWS resource whose type takes tags has the required cost tags in its effective tags (the "
    "provider's default tags merged under its own).",
    remediation="Set the tags in the stack's `ml-platform:tags` (they become the provider's defaultTags), or on the "
    "resource.",
    references=["AWS Tagging Best Practices: cost allocation tags", "AWSGuard required-tags"],
    params={"requiredTags": list(REQUIRED_COST_TAGS)},
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    required = [str(t) for t in ctx.params["requiredTags"]]
    for r in resources:
        if not r.type.startswith("aws:") or not takes_tags(r.type) or contains_unknown(r.inputs.get("tags")):
            continue
        missing = [t for t in required if not str(r.tags.get(t, "")).strip()]
        if missing:
            yield r, f"missing cost tag(s) {', '.join(missing)}"


RULE = check
