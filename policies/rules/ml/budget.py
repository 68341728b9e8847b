"""The stack's monthly cost at full scale stays within its budget."""

from collections.abc import Iterator, Sequence

from infra.cost import estimate_cost
from policies.helpers import NODECLASS, NODEPOOL
from policies.model import Resource, RuleContext, contains_unknown, stack_rule

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
    description="The estimated monthly cost at full scale (every pool at its limit, node groups at max size) is "
    "within the budget: the same estimate `mlp cost` prints. A budget of 0 turns the rule off.",
    remediation="Lower pool limits or node group sizes, or raise budget.monthly_usd / monthlyBudgetUsd.",
    references=["ML platform guardrail: budget at full scale"],
    params={"monthlyBudgetUsd": 0.0, "region": "us-east-1"},
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    budget = float(ctx.params["monthlyBudgetUsd"])
    if budget <= 0 or not resources or unknown_ceiling(resources):
        return
    estimate = estimate_cost(resources, str(ctx.params["region"]), today=ctx.today)
    ceiling = estimate.total("ceiling")
    if ceiling > budget:
        biggest = sorted(estimate.lines, key=lambda line: line.ceiling, reverse=True)[:3]
        detail = ", ".join(f"{line.resource} ${line.ceiling:,.0f}" for line in biggest)
        anchor = next((r for r in resources if r.name == biggest[0].resource), resources[0])
        yield (
            anchor,
            (
                f"the estimated monthly cost at full scale is ${ceiling:,.2f}, over the budget of "
                f"${budget:,.2f} (largest: {detail})"
            ),
        )


RULE = check
