"""Tags meet AWS's limits (AWS rejects the resource otherwise)."""

from collections.abc import Iterator, Sequence

from mlplatform.infra.tagging.rules import MAX_AWS_TAGS, tag_problems
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, stack_rule
from mlplatform.policies.sources.taggable import takes_tags


@stack_rule(
    id="mlp-tag-format",
    severity="medium",
    types=["aws:*"],
    description="Effective tags fit AWS's rules: keys 1-128 and values up to 256 characters, allowed characters, "
    f"no `aws:` prefix, at most {MAX_AWS_TAGS} tags.",
    remediation="Shorten or rename the tag; keep the stack's tags under the limit.",
    references=["AWS Tagging Best Practices: tag naming limits"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    for r in resources:
        if not r.type.startswith("aws:") or not takes_tags(r.type) or contains_unknown(r.inputs.get("tags")):
            continue
        if len(r.tags) > MAX_AWS_TAGS:
            yield r, f"has {len(r.tags)} tags; AWS allows {MAX_AWS_TAGS}"
        for key, value in r.tags.items():
            for problem in tag_problems(str(key), str(value)):
                yield r, f"tag {key!r}: {problem}"


RULE = check
