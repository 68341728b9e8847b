"""The stack's monthly cost at full scale stays within its budget."""

from collections.abc import Iterator, Sequence

from mlplatform.infra.cost import MissingPricesError, budget_verdict
from mlplatform.policies.helpers import NODECLASS, NODEPOOL
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, stack_rule

# What the full-scale estimate reads from Karpenter objects: a pool's ceiling is its GPU or CPU limit over the
# instance types its requirements allow, plus its node class's disks.
CEILING_INPUTS = {
    NODEPOOL: ("spec.limits", "spec.template.spec.requirements"),
    NODECLASS: ("spec.blockDeviceMappings",),
}


def unknown_ceiling(resources: Sequence[Resource]) -> bool:
    """Whether a pool's limit, requirements or disks are known only after apply (a Terraform `(known after
    apply)`, a preview's unknown output): the ceiling cannot be told then, and is not guessed."""
    return any(contains_unknown(r.get(path)) for r in resources for path in CEILING_INPUTS.get(r.type, ()))


@stack_rule(
    id="mlp-budget",
    severity="high",
    types=["aws:*", "kubernetes:*"],
    description="The estimated monthly cost at full scale (every pool at its limit, node groups at max size, "
    "capacity reservations for their whole size) is within the budget: the same computation `mlp cost`, `mlp "
    "validate` and `mlp plan` use. Missing prices for the region fail closed (a violation naming the region and "
    "`mlp prices refresh`) unless priceRegion names a labelled fallback. A budget of 0 turns the rule off.",
    remediation="Lower pool limits or node group sizes, or raise budget.monthly_usd / monthlyBudgetUsd; for "
    "missing prices run `mlp prices refresh --regions REGION` or set priceRegion (fallback rates, labelled).",
    references=["ML platform guardrail: budget at full scale"],
    params={"monthlyBudgetUsd": 0.0, "region": "us-east-1", "priceRegion": ""},
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    budget = float(ctx.params["monthlyBudgetUsd"])
    if budget <= 0 or not resources or unknown_ceiling(resources):
        return
    try:
        verdict = budget_verdict(
            resources,
            str(ctx.params["region"]),
            budget,
            price_region=str(ctx.params.get("priceRegion") or "") or None,
            today=ctx.today,
        )
    except MissingPricesError as missing:
        yield resources[0], str(missing)
        return
    if verdict.over:
        biggest = max(verdict.estimate.lines, key=lambda line: line.ceiling)
        anchor = next((r for r in resources if r.name == biggest.resource), resources[0])
        yield anchor, verdict.message


RULE = check
