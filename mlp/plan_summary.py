"""The summary `mlp plan` opens with: components, resources by layer, GPUs (min and max), the monthly cost floor and
ceiling, and the policy verdict, each from the computation the dedicated command runs (`mlp cost`'s estimate,
`mlp policy`'s engine with the stack's environment config and budget), so the figures agree.

The stack's environment, region and budget come from the plan itself (`Plan.stack_config`), so a saved plan
summarizes the same way. Missing prices never fail the summary: its cost says "no price data for REGION" (the
command then fails closed on the budget, as `mlp cost` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplatform.infra.gpu_pools.documents import POOL_LABEL
from mlplatform.mlp.key_settings import DEPLOYMENT, GPU, NODE_GROUP, NODEPOOL, WARM_PRIORITY, node_group_gpus

if TYPE_CHECKING:
    from mlplatform.infra.cost import CostEstimate
    from mlplatform.mlp.planner import Plan, PlannedResource
    from mlplatform.policies.model import Report, Resource


@dataclass(frozen=True)
class GpuPool:
    name: str
    resource: str
    min_gpus: int
    max_gpus: int


@dataclass(frozen=True)
class CostRange:
    region: str
    price_region: str
    floor: float | None
    ceiling: float | None
    budget: float
    missing: str | None = None
    """`no price data for REGION`: the estimate has unpriced lines, so it gives no figures."""

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "price_region": self.price_region,
            "floor": self.floor,
            "ceiling": self.ceiling,
            "budget": self.budget,
            "missing_prices": self.missing,
        }

    def text(self) -> str:
        if self.missing:
            return self.missing
        where = self.region if self.price_region == self.region else f"{self.region} at {self.price_region} rates"
        budget = f", budget ${self.budget:,.0f}" if self.budget else ""
        return f"floor ${self.floor:,.2f}, ceiling ${self.ceiling:,.2f} a month ({where}{budget})"


@dataclass(frozen=True)
class PolicyVerdict:
    environment: str
    config: str
    mandatory: int
    advisory: int
    checked: int
    rules: int
    missing_prices: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "config": self.config,
            "mandatory": self.mandatory,
            "advisory": self.advisory,
            "checked": self.checked,
            "rules": self.rules,
            "passed": self.mandatory == 0 and not self.missing_prices,
        }

    def text(self) -> str:
        verdict = "FAIL" if self.mandatory or self.missing_prices else "pass"
        return (
            f"{verdict}: {self.mandatory} mandatory, {self.advisory} advisory violation(s) ({self.environment} "
            f"policy config, {self.rules} rules; `mlp policy` lists them)"
        )


@dataclass(frozen=True)
class PlanSummary:
    resources: int
    by_layer: Mapping[str, int]
    components: int
    components_by_layer: Mapping[str, int]
    gpu_pools: tuple[GpuPool, ...]
    cost: CostRange | None = None
    policy: PolicyVerdict | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def gpus(self) -> tuple[int, int]:
        return sum(p.min_gpus for p in self.gpu_pools), sum(p.max_gpus for p in self.gpu_pools)

    def to_json(self) -> dict[str, Any]:
        low, high = self.gpus
        return {
            "components": self.components,
            "components_by_layer": dict(self.components_by_layer),
            "gpus": {
                "min": low,
                "max": high,
                "pools": {
                    p.name: {"min": p.min_gpus, "max": p.max_gpus, "resource": p.resource} for p in self.gpu_pools
                },
            },
            "cost": self.cost.to_json() if self.cost else None,
            "policy": self.policy.to_json() if self.policy else None,
        }

    def rows(self) -> list[tuple[str, str]]:
        """(label, text) pairs: the lines of the table and the Markdown."""

        def per_layer(counts: Mapping[str, int]) -> str:
            inner = ", ".join(f"{layer} {n}" for layer, n in counts.items() if layer)
            return f" ({inner})" if inner else ""

        low, high = self.gpus
        pools = ", ".join(f"{p.name} {p.min_gpus}..{p.max_gpus}" for p in self.gpu_pools)
        rows = [
            ("components", f"{self.components}{per_layer(self.components_by_layer)}"),
            ("resources", f"{self.resources}{per_layer(self.by_layer)}"),
            ("GPUs", f"min {low}, max {high}" + (f" ({pools})" if pools else " (no GPU pool)")),
        ]
        if self.cost is not None:
            rows.append(("monthly cost", self.cost.text()))
        if self.policy is not None:
            rows.append(("policy", self.policy.text()))
        rows += [("note", note) for note in self.notes]
        return rows


def gpu_pools(resources: Sequence[PlannedResource]) -> tuple[GpuPool, ...]:
    """GPU pools: a Karpenter NodePool with a GPU limit (max: the limit; min: its warm-capacity placeholders, which
    keep min_gpus running) and a managed node group of GPU instances (min and max nodes x GPUs per node)."""
    warm: dict[str, int] = {}
    for r in resources:
        if r.type != DEPLOYMENT:
            continue
        spec = r.inputs.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        if pod.get("priorityClassName") == WARM_PRIORITY:
            pool = str((pod.get("nodeSelector") or {}).get(POOL_LABEL))
            per_pod = sum(
                int(str(((c.get("resources") or {}).get("requests") or {}).get(GPU, 0)))
                for c in pod.get("containers") or []
            )
            warm[pool] = warm.get(pool, 0) + int(spec.get("replicas") or 0) * per_pod
    pools: list[GpuPool] = []
    for r in resources:
        if r.type == NODEPOOL:
            limit = int(str(((r.inputs.get("spec") or {}).get("limits") or {}).get(GPU, 0)) or 0)
            name = str((r.inputs.get("metadata") or {}).get("name") or r.name)
            if limit:
                pools.append(GpuPool(name, r.name, min(warm.get(name, 0), limit), limit))
        elif r.type == NODE_GROUP and (gpus := node_group_gpus(r.inputs)) is not None:
            name = str((r.inputs.get("labels") or {}).get(POOL_LABEL) or r.name)
            pools.append(GpuPool(name, r.name, gpus[1], gpus[2]))
    return tuple(pools)


def _components(plan: Plan) -> dict[str, int]:
    """Top-level components (no parent, not a provider or a stack reference) per layer."""
    counts: dict[str, int] = {}
    for r in plan.resources:
        if not r.custom and r.parent is None and not r.type.startswith("pulumi:"):
            counts[r.layer] = counts.get(r.layer, 0) + 1
    return counts


def cost_range(estimate: CostEstimate, budget: float) -> CostRange:
    """The floor and ceiling of an estimate, or "no price data for REGION" when a line has no price."""
    price_region = estimate.price_region or estimate.region
    if estimate.unpriced:
        from mlplatform.infra.cost.budget import MISSING_PRICES

        return CostRange(estimate.region, price_region, None, None, budget, f"{MISSING_PRICES} {price_region}")
    return CostRange(estimate.region, price_region, estimate.total("floor"), estimate.total("ceiling"), budget, None)


def policy_verdict(
    resources: Sequence[Resource], environment: str, budget: float, region: str, price_region: str | None = None
) -> tuple[PolicyVerdict, Report]:
    """`mlp policy STACK`'s verdict: the engine with the environment's config and the stack's budget."""
    from mlplatform.policies import run as engine
    from mlplatform.policies.config import CONFIG_DIR
    from mlplatform.policies.registry import all_rules

    rules = all_rules()
    settings = engine.with_stack_budget(engine.policy_config(environment, None, rules), budget, region, price_region)
    report = engine.check(resources, settings, rules=rules)
    source = Path(settings.source)
    verdict = PolicyVerdict(
        environment=environment,
        # relative to the repository (policies/config.<env>.json): the plan's JSON names no local path
        config=str(source.relative_to(CONFIG_DIR.parent)) if source.is_relative_to(CONFIG_DIR.parent) else source.name,
        mandatory=len(report.mandatory),
        advisory=sum(1 for v in report.violations if v.level == "advisory"),
        checked=report.checked,
        rules=report.rules,
        missing_prices=engine.missing_prices(report) is not None,
    )
    return verdict, report


def summarize(
    plan: Plan, *, price_region: str | None = None, estimate: CostEstimate | None = None, with_checks: bool = True
) -> PlanSummary:
    """The plan's summary. Cost and policy need the stack's settings (`plan.stack_config`, recorded for this
    platform's stacks); `estimate` reuses one already computed for the budget check."""
    components = _components(plan)
    by_layer = {layer: len(plan.in_layer(layer)) for layer in plan.layers}
    summary = PlanSummary(
        resources=len(plan.resources),
        by_layer=by_layer,
        components=sum(components.values()),
        components_by_layer=components,
        gpu_pools=gpu_pools(plan.resources),
    )
    stack = plan.stack_config
    if not with_checks or not stack:
        return summary
    from dataclasses import replace

    from mlplatform.infra.config_errors import ConfigError
    from mlplatform.infra.cost import estimate_cost
    from mlplatform.mlp.cost import plan_resources

    region, budget = str(stack["region"]), float(stack.get("budget_monthly_usd") or 0.0)
    resources = plan_resources(plan)
    if estimate is None:
        estimate = estimate_cost(resources, region, price_region=price_region or None)
    try:
        verdict, _ = policy_verdict(resources, str(stack["environment"]), budget, region, price_region)
    except ConfigError as error:
        return replace(summary, cost=cost_range(estimate, budget), notes=(f"policy not checked: {error}",))
    return replace(summary, cost=cost_range(estimate, budget), policy=verdict)
