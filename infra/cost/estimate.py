"""Monthly cost of a plan, from its resources and the dated price data (730 hours a month).

Every line gives a floor (what runs at minimum scale), an expected figure, a ceiling (everything the stack allows
scaled up: NodePool limits, node group max sizes) and, where spot is configured, a spot scenario; and says how it
was computed. The same function serves `mlp cost`, the budget policy and the config's budget check. Usage-based
charges (data processed by NAT gateways and endpoints, requests, log ingestion, data transfer) are not estimated;
the estimate says so.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.catalog import prices as price_data
from mlplatform.infra.catalog import versions
from mlplatform.infra.catalog.prices import HOURS_PER_MONTH, SERVICES_FILE, _shipped, ec2_on_demand_price
from mlplatform.infra.catalog.prices import service_price as service_price  # re-exported: cache first, then snapshot
from mlplatform.infra.cost.reservation import ReservationFacts, from_metadata, from_tags

UNPRICED_USAGE = (
    "Not estimated (usage-based): NAT gateway and endpoint data processing, data transfer, S3 requests, "
    "CloudWatch Logs ingestion (container logs from every pod, flow and control-plane logs: $0.50/GB in us-east-1), "
    "load balancer capacity units, KMS requests, ECR storage of cached images (the pinned images, tens of GB), "
    "DynamoDB requests and storage of the feature store's on-demand tables."
)


class CostedResource(Protocol):
    """What the estimator reads of a resource (the normalized resource of a plan satisfies it)."""

    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    @property
    def references(self) -> Mapping[str, tuple[str, ...]]: ...


@dataclass(frozen=True)
class CostLine:
    component: str
    resource: str
    item: str
    floor: float
    expected: float
    ceiling: float
    how: str
    spot: float | None = None
    priced: bool = True
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "resource": self.resource,
            "item": self.item,
            "floor": round(self.floor, 2),
            "expected": round(self.expected, 2),
            "ceiling": round(self.ceiling, 2),
            "spot": None if self.spot is None else round(self.spot, 2),
            "how": self.how,
            "priced": self.priced,
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class CostEstimate:
    region: str
    lines: tuple[CostLine, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    price_region: str = ""
    """Whose prices were used: the stack's region, or a fallback the user asked for (`--price-region`)."""

    @property
    def fallback(self) -> bool:
        return bool(self.price_region) and self.price_region != self.region

    @property
    def unpriced(self) -> tuple[CostLine, ...]:
        """Lines without a price: the estimate is incomplete, and the budget fails closed on it."""
        return tuple(line for line in self.lines if not line.priced)

    def total(self, which: str) -> float:
        return round(sum(float(getattr(line, which)) for line in self.lines), 2)

    @property
    def spot_total(self) -> float:
        return round(sum(line.spot if line.spot is not None else line.ceiling for line in self.lines), 2)

    def by_component(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for line in self.lines:
            bucket = out.setdefault(line.component, {"floor": 0.0, "expected": 0.0, "ceiling": 0.0})
            for key in bucket:
                bucket[key] = round(bucket[key] + getattr(line, key), 2)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "price_region": self.price_region or self.region,
            "price_fallback": self.fallback,
            "hours_per_month": HOURS_PER_MONTH,
            "totals": {
                "floor": self.total("floor"),
                "expected": self.total("expected"),
                "ceiling": self.total("ceiling"),
                "spot_scenario": self.spot_total,
            },
            "components": self.by_component(),
            "lines": [line.to_json() for line in self.lines],
            "notes": list(self.notes),
        }


def assumption(key: str) -> float:
    """A figure of the shipped snapshot's `assumptions` (e.g. `spot_fraction_of_on_demand`)."""
    return float(_shipped(SERVICES_FILE)["assumptions"][key])


def rds_price(region: str, instance_class: str, multi_az: bool) -> tuple[float | None, str]:
    entry = (price_data.service_entry(region, "rds_postgres_hour") or {}).get(instance_class)
    if not entry:
        return None, "no price data"
    if multi_az and "multi_az" in entry:
        return float(entry["multi_az"]), f"${entry['multi_az']}/h Multi-AZ ({entry['status']})"
    single = float(entry["single_az"])
    if multi_az:
        factor = assumption("multi_az_factor")
        return single * factor, f"{factor:g} x ${single}/h Single-AZ ({entry['status']})"
    return single, f"${single}/h ({entry['status']})"


def _component(name: str) -> str:
    """Children are named `<component>-<key>`; Terraform addresses by module."""
    if name.startswith("module."):
        return name.split(".")[1].split("[")[0]
    return name.split("-", 1)[0]


SPOT_ASSUMPTION = (
    "spot scenario: an assumption, not a price: {pct:g}% of on-demand (no dated spot price snapshot is kept; spot "
    "prices move by AZ and hour)"
)


def _money(value: float) -> str:
    return f"${value:,.2f}"


class _Estimator:
    def __init__(
        self,
        resources: Sequence[CostedResource],
        region: str,
        today: dt.date,
        utilization: float,
        price_region: str | None = None,
    ) -> None:
        self.resources = resources
        self.by_name = {r.name: r for r in resources}
        # Prices are looked up in `region` (the price region when a labelled fallback is asked); `stack_region`
        # is where the resources are (endpoint service names carry it).
        self.stack_region = region
        self.region = price_region or region
        self.today = today
        self.utilization = utilization
        self.lines: list[CostLine] = []
        self.notes: list[str] = [UNPRICED_USAGE]

    def add(
        self,
        r: CostedResource,
        item: str,
        floor: float,
        ceiling: float,
        how: str,
        *,
        expected: float | None = None,
        spot: float | None = None,
        priced: bool = True,
        flags: Iterable[str] = (),
    ) -> None:
        if expected is None:
            expected = floor + (ceiling - floor) * self.utilization
        self.lines.append(
            CostLine(_component(r.name), r.name, item, floor, expected, ceiling, how, spot, priced, tuple(flags))
        )

    def unpriced(self, r: CostedResource, item: str, what: str) -> None:
        self.add(r, item, 0.0, 0.0, f"no price data: {what}", priced=False)

    def fixed(self, r: CostedResource, item: str, key: str, quantity: float = 1.0, unit: str = "") -> None:
        hourly = service_price(self.region, key)
        if hourly is None:
            self.unpriced(r, item, f"{key} in {self.region}")
            return
        monthly = hourly * HOURS_PER_MONTH * quantity
        qty = f"{quantity:g} {unit} x " if unit else ""
        self.add(r, item, monthly, monthly, f"{qty}{HOURS_PER_MONTH} h x ${hourly}/h")

    # -- per type -------------------------------------------------------------------------------------------

    def eks_cluster(self, r: CostedResource) -> None:
        version = str(r.inputs.get("version") or "")
        support = str((r.inputs.get("upgradePolicy") or {}).get("supportType") or "EXTENDED")
        known = versions.eks().versions.get(version)
        status = known.support_on(self.today) if known else "standard"
        # With STANDARD, EKS upgrades the cluster when standard support ends instead of billing extended support.
        billed = "EXTENDED" if status != "standard" and support == "EXTENDED" else "STANDARD"
        hourly = service_price(self.region, "eks_cluster_hour", billed)
        if hourly is None:
            self.unpriced(r, "EKS control plane", f"EKS in {self.region}")
            return
        flags = ["extended-support"] if billed == "EXTENDED" else []
        note = f" (Kubernetes {version} is past standard support)" if billed == "EXTENDED" else ""
        monthly = hourly * HOURS_PER_MONTH
        self.add(
            r,
            f"EKS control plane, {billed.lower()} support{note}",
            monthly,
            monthly,
            f"{HOURS_PER_MONTH} h x ${hourly}/h",
            flags=flags,
        )

    def node_group(self, r: CostedResource) -> None:
        scaling = r.inputs.get("scalingConfig") or {}
        types = [str(t) for t in r.inputs.get("instanceTypes") or []]
        prices = [(t, ec2_on_demand_price(t, self.region)) for t in types]
        priced = [(t, p) for t, p in prices if p is not None]
        if not priced:
            self.unpriced(r, f"node group {', '.join(types)}", f"EC2 prices of {', '.join(types)} in {self.region}")
            return
        itype, hourly = max(priced, key=lambda x: x[1])  # the dearest type bounds the cost
        low, want, high = (int(scaling.get(k, 0)) for k in ("minSize", "desiredSize", "maxSize"))
        month = hourly * HOURS_PER_MONTH
        disk = self._node_disk_gib(r)
        disk_month = disk * (service_price(self.region, "ebs_gp3_gb_month") or 0.0)
        per_node = month + disk_month
        capacity = str(r.inputs.get("capacityType") or "ON_DEMAND")
        facts = from_tags(r.tags)
        if facts is not None:
            self._reserved_node_group(r, facts, capacity, (low, want, high), disk_month)
            return
        spot = high * per_node * assumption("spot_fraction_of_on_demand") if capacity == "SPOT" else None
        reserved = capacity == "CAPACITY_BLOCK"
        how = (
            f"nodes x ({HOURS_PER_MONTH} h x ${hourly}/h {itype} on demand + {disk:g} GiB gp3 x "
            f"${service_price(self.region, 'ebs_gp3_gb_month')}/GiB-month); floor {low}, expected {want}, "
            f"ceiling {high} nodes"
        )
        if reserved:
            how += "; Capacity Block pricing differs (paid upfront per reservation)"
        self.add(
            r,
            f"node group {itype} ({capacity.lower()})",
            low * per_node,
            high * per_node,
            how,
            expected=want * per_node,
            spot=spot,
            flags=["capacity-block"] if reserved else [],
        )

    def _reserved_node_group(
        self,
        r: CostedResource,
        facts: ReservationFacts,
        capacity: str,
        sizes: tuple[int, int, int],
        disk_month: float,
    ) -> None:
        """A node group on a reservation (its launch template targets it): the reservation is billed on its own
        line (an ODCR for its whole count whether nodes run or not; a Capacity Block at its upfront price), and the
        nodes, which can only launch into it, pay their disks here."""
        hourly = ec2_on_demand_price(facts.instance_type, self.region)
        if hourly is None and facts.kind == "odcr":
            self.unpriced(r, f"capacity reservation {facts.id}", f"EC2 price of {facts.instance_type} in {self.region}")
            return
        self._reservation_line(r, facts, hourly or 0.0)
        low, want, high = (min(n, facts.instance_count) for n in sizes)
        how = (
            f"nodes in the reservation pay only their disks here ({_money(disk_month)}/node-month gp3); floor {low}, "
            f"expected {want}, ceiling {high} node(s) (the group's sizes, at most the reservation's "
            f"{facts.instance_count}: its launch template targets the reservation only)"
        )
        self.add(
            r,
            f"node group {facts.instance_type} ({capacity.lower()})",
            low * disk_month,
            high * disk_month,
            how,
            expected=want * disk_month,
            flags=["capacity-block" if facts.kind == "capacity_block" else "capacity-reservation"],
        )

    def _node_disk_gib(self, r: CostedResource) -> float:
        template = next((self.by_name[n] for n in r.references.get("launchTemplate", ()) if n in self.by_name), None)
        mappings = (template.inputs.get("blockDeviceMappings") or []) if template else []
        return float(sum(int((m.get("ebs") or {}).get("volumeSize") or 0) for m in mappings))

    def karpenter_pool(self, r: CostedResource) -> None:
        spec = r.inputs.get("spec") or {}
        limits = spec.get("limits") or {}
        reqs = {q.get("key"): q for q in (spec.get("template") or {}).get("spec", {}).get("requirements", [])}
        families = list((reqs.get("karpenter.k8s.aws/instance-family") or {}).get("values") or [])
        types = list((reqs.get("node.kubernetes.io/instance-type") or {}).get("values") or [])
        capacity = list((reqs.get("karpenter.sh/capacity-type") or {}).get("values") or ["on-demand"])
        gpu_limit = int(str(limits.get("nvidia.com/gpu", "0")) or 0)
        name = (r.inputs.get("metadata") or {}).get("name", r.name)
        disk = self._nodeclass_disk_gib(str(name))
        ebs = service_price(self.region, "ebs_gp3_gb_month") or 0.0
        if gpu_limit:
            self._gpu_pool(r, str(name), families, types, capacity, gpu_limit, disk * ebs)
        elif limits.get("cpu"):
            self._cpu_pool(r, str(name), families, capacity, int(str(limits["cpu"])), disk * ebs)

    def _nodeclass_disk_gib(self, class_name: str) -> float:
        for r in self.resources:
            if (
                r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
                and (r.inputs.get("metadata") or {}).get("name") == class_name
            ):
                mappings = (r.inputs.get("spec") or {}).get("blockDeviceMappings") or []
                return float(sum(int(str((m.get("ebs") or {}).get("volumeSize", "0")).rstrip("Gi")) for m in mappings))
        return 0.0

    def _gpu_pool(
        self,
        r: CostedResource,
        pool: str,
        families: list[str],
        types: list[str],
        capacity: list[str],
        gpu_limit: int,
        disk_month: float,
    ) -> None:
        candidates = [i for t in types if (i := gpu_catalog.gpu_instance(t))]
        for fam in families:
            candidates += list(gpu_catalog.instances_of_family(fam))
        priced = [
            (i, p) for i in candidates if i.gpu_count and (p := ec2_on_demand_price(i.instance_type, self.region))
        ]
        if not priced:
            self.unpriced(r, f"GPU pool {pool}", f"EC2 prices of {', '.join(families + types)} in {self.region}")
            return
        reservation = from_metadata(r.inputs.get("metadata")) if "reserved" in capacity else None
        if reservation is not None:
            self._reserved_gpu_pool(r, pool, reservation, capacity, gpu_limit, disk_month, dict(priced))
            return
        per_gpu = [((p * HOURS_PER_MONTH + disk_month) / i.gpu_count, i) for i, p in priced]
        cheap, cheap_type = min(per_gpu, key=lambda x: x[0])
        dear, dear_type = max(per_gpu, key=lambda x: x[0])
        warm = self._warm_gpus(pool)
        warm_cost = warm * cheap
        demand_cost, who, _ = self._min_gpu_demand_cost(
            pool, [(i, p * HOURS_PER_MONTH + disk_month) for i, p in priced]
        )
        ceiling = gpu_limit * dear
        # Warm placeholders and minimum replicas hold separate GPUs: a replica preempts a placeholder, and
        # Karpenter adds a node for the displaced placeholder, so both are counted (up to the pool's limit).
        floor = min(warm_cost + demand_cost, ceiling)
        spot_pct = assumption("spot_fraction_of_on_demand")
        spot = ceiling * spot_pct if "spot" in capacity else None
        missing = sorted({i.instance_type for i in candidates} - {i.instance_type for i, _ in priced})
        parts = []
        if warm:
            parts.append(f"{warm} warm GPU(s) x {_money(cheap)}/GPU-month ({cheap_type.instance_type}, the cheapest)")
        if who:
            parts.append(f"minimum replicas hold nodes ({'; '.join(who)})")
        floor_how = "floor: " + (" + ".join(parts) if parts else "0 (scales to zero)")
        if parts and floor == ceiling and warm_cost + demand_cost > ceiling:
            floor_how += ", capped at the NodePool limit"
        how = (
            f"ceiling {gpu_limit} GPUs (NodePool limit) x {_money(dear)}/GPU-month ({dear_type.instance_type}, the "
            f"dearest per GPU, with its gp3 disk); {floor_how}"
        )
        if spot is not None:
            how += f"; spot: assumed {spot_pct:.0%} of on-demand"
        if missing:
            how += f"; unpriced candidates ignored: {', '.join(missing[:6])}{'...' if len(missing) > 6 else ''}"
        flags = ["capacity-reservation"] if "reserved" in capacity else []
        if flags:
            how += "; reserved nodes priced as on-demand (the reservation's billing facts are not in the plan)"
        self.add(r, f"GPU pool {pool} (Karpenter, {'/'.join(capacity)})", floor, ceiling, how, spot=spot, flags=flags)

    def _reserved_gpu_pool(
        self,
        r: CostedResource,
        pool: str,
        facts: ReservationFacts,
        capacity: list[str],
        gpu_limit: int,
        disk_month: float,
        hourly_of: Mapping[gpu_catalog.GpuInstance, float],
    ) -> None:
        """A pool on a reservation: the reservation is billed on its own line (an ODCR for its whole count whether
        instances run or not; a Capacity Block at its upfront price over its term); the pool's line holds the node
        disks and, with on-demand fallback, the nodes beyond the reservation at on-demand rates."""
        spec = next((i for i in hourly_of if i.instance_type == facts.instance_type), None)
        if spec is None:
            self.unpriced(r, f"capacity reservation {facts.id}", f"EC2 price of {facts.instance_type} in {self.region}")
            return
        hourly = hourly_of[spec]
        per_node = spec.gpu_count
        self._reservation_line(r, facts, hourly)
        limit_nodes = math.ceil(gpu_limit / per_node)
        reserved_nodes = min(facts.instance_count, limit_nodes)
        od_nodes = limit_nodes - reserved_nodes if "on-demand" in capacity else 0
        node_month = hourly * HOURS_PER_MONTH
        warm = self._warm_gpus(pool)
        _, who, demand_gpus = self._min_gpu_demand_cost(pool, [(spec, node_month + disk_month)])
        floor_nodes = min(math.ceil((warm + demand_gpus) / per_node), reserved_nodes + od_nodes)
        floor_od = max(0, floor_nodes - reserved_nodes)
        floor = floor_nodes * disk_month + floor_od * node_month
        ceiling = (reserved_nodes + od_nodes) * disk_month + od_nodes * node_month
        held = f"{warm} warm GPU(s)" + (f" + minimum replicas ({'; '.join(who)})" if who else "")
        how = (
            f"nodes in the reservation pay only their disks here ({_money(disk_month)}/node-month gp3): ceiling "
            f"{reserved_nodes} reserved node(s)"
            + (f" + {od_nodes} on-demand fallback node(s) x {_money(node_month)}" if od_nodes else "")
            + f"; floor {floor_nodes} node(s) for {held}"
        )
        self.add(
            r,
            f"GPU pool {pool} (Karpenter, {'/'.join(capacity)})",
            floor,
            ceiling,
            how,
            flags=["capacity-reservation"],
        )

    def _reservation_line(self, r: CostedResource, facts: ReservationFacts, hourly: float) -> None:
        if facts.kind == "capacity_block":
            self._capacity_block_line(r, facts)
            return
        monthly = facts.instance_count * hourly * HOURS_PER_MONTH
        how = (
            f"{facts.instance_count} x {facts.instance_type} x ${hourly:,.2f}/h x {HOURS_PER_MONTH} h = "
            f"{_money(monthly)} (ODCR, billed whether used or not)"
        )
        self.add(
            r,
            f"ODCR {facts.id} ({facts.instance_count} x {facts.instance_type})",
            monthly,
            monthly,
            how,
            flags=["odcr"],
        )

    def _capacity_block_line(self, r: CostedResource, facts: ReservationFacts) -> None:
        item = f"Capacity Block {facts.id} ({facts.instance_count} x {facts.instance_type})"
        if facts.price_usd is None or facts.start_date is None or facts.end_date is None:
            self.unpriced(r, item, f"the price paid and dates of Capacity Block {facts.id} (config)")
            return
        days_per_month = HOURS_PER_MONTH / 24
        if not facts.start_date <= self.today <= facts.end_date:
            self.add(
                r,
                item,
                0.0,
                0.0,
                f"$0: {self.today} is outside the block's term {facts.start_date} to {facts.end_date}",
                flags=["capacity-block"],
            )
            self.notes.append(
                f"Capacity Block {facts.id} runs {facts.start_date} to {facts.end_date}: counted $0 on {self.today}."
            )
            return
        # A block shorter than a month counts its whole price in the month it runs.
        monthly = facts.price_usd * min(1.0, days_per_month / facts.term_days)
        how = (
            f"${facts.price_usd:,.2f} paid upfront / {facts.term_days} days x {days_per_month:g} days a month "
            f"= {_money(monthly)} per month while the block runs ({facts.start_date} to {facts.end_date})"
        )
        if facts.term_days <= days_per_month:
            how = (
                f"${facts.price_usd:,.2f} paid upfront for {facts.term_days} days ({facts.start_date} to "
                f"{facts.end_date}), within one month: counted whole"
            )
        self.add(r, item, monthly, monthly, how, flags=["capacity-block"])

    def _warm_gpus(self, pool: str) -> int:
        warm = 0
        for r in self.resources:
            if r.type != "kubernetes:apps/v1:Deployment":
                continue
            pod = ((r.inputs.get("spec") or {}).get("template") or {}).get("spec") or {}
            if (pod.get("nodeSelector") or {}).get("mlplatform.io/gpu-pool") == pool and pod.get(
                "priorityClassName"
            ) == "gpu-warm-capacity":
                warm += int((r.inputs.get("spec") or {}).get("replicas") or 0)
        return warm

    def _pod_specs_on(self, selector_value: str) -> list[tuple[str, int, dict[str, Any]]]:
        """(owner, minimum replicas, pod spec) of every workload pinned to a pool by its node selector, warm
        placeholders excepted: Deployments, RayCluster heads and worker groups, InferenceService predictors."""
        found: list[tuple[str, int, dict[str, Any]]] = []
        for r in self.resources:
            spec = r.inputs.get("spec") or {}
            if r.type == "kubernetes:apps/v1:Deployment":
                pod = (spec.get("template") or {}).get("spec") or {}
                if pod.get("priorityClassName") == "gpu-warm-capacity":
                    continue
                found.append((r.name, int(spec.get("replicas") or 0), pod))
            elif r.type == "kubernetes:ray.io/v1:RayCluster":
                head = ((spec.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}
                found.append((f"{r.name} head", 1, head))
                for group in spec.get("workerGroupSpecs") or []:
                    pod = (group.get("template") or {}).get("spec") or {}
                    found.append((f"{r.name} {group.get('groupName')}", int(group.get("minReplicas") or 0), pod))
            elif r.type == "kubernetes:serving.kserve.io/v1beta1:InferenceService":
                predictor = spec.get("predictor") or {}
                model = predictor.get("model") or {}
                pod = {"nodeSelector": predictor.get("nodeSelector") or {}, "containers": [model]}
                found.append((r.name, int(predictor.get("minReplicas") or 0), pod))
        return [
            (owner, n, pod)
            for owner, n, pod in found
            if n and (pod.get("nodeSelector") or {}).get("mlplatform.io/gpu-pool") == selector_value
        ]

    @staticmethod
    def _requests(pod: Mapping[str, Any], resource: str) -> float:
        total = 0.0
        for container in pod.get("containers") or []:
            value = str(((container.get("resources") or {}).get("requests") or {}).get(resource, "0"))
            total += float(value[:-1]) / 1000 if value.endswith("m") else float(value or 0)
        return total

    def _min_gpu_demand_cost(
        self, pool: str, node_months: Sequence[tuple[gpu_catalog.GpuInstance, float]]
    ) -> tuple[float, list[str], int]:
        """What workloads on the pool cost at their minimum replicas: each replica on the cheapest node that has
        enough GPUs for it (a 4-GPU replica needs a 4-GPU node). Also the GPUs those nodes hold."""
        total, who, gpus_held = 0.0, [], 0
        for owner, replicas, pod in self._pod_specs_on(pool):
            gpus = int(self._requests(pod, "nvidia.com/gpu"))
            fitting = [(month, i) for i, month in node_months if i.gpu_count >= gpus]
            if not gpus or not fitting:
                continue
            month, itype = min(fitting, key=lambda x: x[0])
            total += replicas * month
            gpus_held += replicas * gpus
            who.append(f"{owner}: {replicas} x {gpus} GPU(s) on {itype.instance_type} {_money(month)}")
        return total, who, gpus_held

    def _cpu_pool(
        self, r: CostedResource, pool: str, families: list[str], capacity: list[str], vcpus: int, disk_month: float
    ) -> None:
        from mlplatform.infra.catalog.prices import instance_types_of_family

        priced = []
        for fam in families:
            for itype, hourly in instance_types_of_family(fam, self.region):
                cpu = _vcpus(itype)
                if cpu:
                    priced.append(((hourly * HOURS_PER_MONTH) / cpu, itype, cpu))
        if not priced:
            self.unpriced(r, f"CPU pool {pool}", f"EC2 prices of {', '.join(families)} in {self.region}")
            return
        dear, dear_type, cpu = max(priced)
        cheap, cheap_type, cheap_cpu = min(priced)
        ceiling = vcpus * dear + math.ceil(vcpus / cpu) * disk_month
        held = [(owner, n * self._requests(pod, "cpu")) for owner, n, pod in self._pod_specs_on(pool)]
        held_vcpus = min(sum(v for _, v in held), float(vcpus))
        floor = held_vcpus * cheap + (math.ceil(held_vcpus / cheap_cpu) * disk_month if held_vcpus else 0.0)
        spot = ceiling * assumption("spot_fraction_of_on_demand") if "spot" in capacity else None
        floor_how = (
            f"floor {held_vcpus:g} vCPUs held by minimum replicas ({', '.join(f'{o} {v:g}' for o, v in held)}) x "
            f"{_money(cheap)}/vCPU-month ({cheap_type}, the cheapest) plus gp3 disks"
            if held_vcpus
            else "floor 0 (scales to zero)"
        )
        self.add(
            r,
            f"CPU pool {pool} (Karpenter, {'/'.join(capacity)})",
            floor,
            ceiling,
            f"ceiling {vcpus} vCPUs (NodePool limit) x {_money(dear)}/vCPU-month ({dear_type}, the dearest per "
            f"vCPU of the priced families) plus gp3 disks; {floor_how}",
            spot=spot,
        )

    def rds(self, r: CostedResource) -> None:
        klass = str(r.inputs.get("instanceClass") or "")
        multi = bool(r.inputs.get("multiAz"))
        hourly, how = rds_price(self.region, klass, multi)
        storage = float(r.inputs.get("allocatedStorage") or 0)
        gb = service_price(self.region, "rds_gp3_gb_month", "multi_az" if multi else "single_az")
        if hourly is None or gb is None:
            self.unpriced(r, f"RDS PostgreSQL {klass}", f"{klass} in {self.region}")
            return
        monthly = hourly * HOURS_PER_MONTH + storage * gb
        self.add(
            r,
            f"RDS PostgreSQL {klass}{' Multi-AZ' if multi else ''}",
            monthly,
            monthly,
            f"{HOURS_PER_MONTH} h x {how} + {storage:g} GB gp3 x ${gb}/GB-month",
        )

    def bucket(self, r: CostedResource) -> None:
        size = r.tags.get("mlplatform.io/expected-size-gb")
        if size is None:
            return
        gb = float(size)
        price = service_price(self.region, "s3_standard_gb_month")
        if price is None:
            self.unpriced(r, "S3 storage", f"S3 in {self.region}")
            return
        monthly = gb * price
        self.add(
            r,
            f"S3 Standard storage, {gb:g} GB expected",
            monthly,
            monthly,
            f"{gb:g} GB x ${price}/GB-month (tiering to cheaper classes not counted)",
        )

    def endpoint(self, r: CostedResource) -> None:
        if r.inputs.get("vpcEndpointType") != "Interface":
            return  # gateway endpoints are free
        azs = len(r.inputs.get("subnetIds") or []) or 1
        self.fixed(
            r,
            f"interface endpoint {str(r.inputs.get('serviceName', '')).split(f'{self.stack_region}.', 1)[-1]}",
            "interface_endpoint_az_hour",
            azs,
            "AZ(s)",
        )

    def dynamodb_table(self, r: CostedResource) -> None:
        """The feature store's online tables: on demand, nothing billed idle; reads, writes and storage are usage."""
        if r.inputs.get("billingMode") != "PAY_PER_REQUEST":
            self.unpriced(r, f"DynamoDB table {r.inputs.get('name')}", "provisioned DynamoDB capacity")
            return
        self.add(
            r,
            f"DynamoDB table {r.inputs.get('name')} (on demand)",
            0.0,
            0.0,
            "nothing billed idle; requests and GB stored are usage (not estimated)",
        )

    def ingress(self, r: CostedResource) -> None:
        """The AWS Load Balancer Controller creates one ALB per Ingress (no ingress group is used)."""
        if (r.inputs.get("spec") or {}).get("ingressClassName") != "alb":
            return
        self.fixed(r, "application load balancer (made by the AWS Load Balancer Controller)", "alb_hour")

    def helm_release(self, r: CostedResource) -> None:
        """Volumes that a chart's pods claim: Prometheus' PersistentVolumeClaims in kube-prometheus-stack."""
        if r.inputs.get("chart") != "kube-prometheus-stack":
            return
        spec = ((r.inputs.get("values") or {}).get("prometheus") or {}).get("prometheusSpec") or {}
        claim = ((spec.get("storageSpec") or {}).get("volumeClaimTemplate") or {}).get("spec") or {}
        size = str(((claim.get("resources") or {}).get("requests") or {}).get("storage") or "")
        if not size.endswith("Gi"):
            return
        gib, replicas = float(size[:-2]), int(spec.get("replicas") or 1)
        price = service_price(self.region, "ebs_gp3_gb_month")
        if price is None:
            self.unpriced(r, "Prometheus volume", f"EBS gp3 in {self.region}")
            return
        monthly = replicas * gib * price
        self.add(
            r,
            f"Prometheus volume{'s' if replicas > 1 else ''} (gp3, {gib:g} GiB)",
            monthly,
            monthly,
            f"{replicas} x {gib:g} GiB x ${price}/GiB-month",
        )

    def estimate(self) -> CostEstimate:
        handlers: dict[str, Callable[[CostedResource], None]] = {
            "aws:eks/cluster:Cluster": self.eks_cluster,
            "aws:eks/nodeGroup:NodeGroup": self.node_group,
            "kubernetes:karpenter.sh/v1:NodePool": self.karpenter_pool,
            "aws:rds/instance:Instance": self.rds,
            "aws:s3/bucket:Bucket": self.bucket,
            "aws:ec2/vpcEndpoint:VpcEndpoint": self.endpoint,
            "aws:ec2/natGateway:NatGateway": lambda r: self.fixed(r, "NAT gateway", "nat_gateway_hour"),
            "aws:ec2/eip:Eip": lambda r: self.fixed(r, "public IPv4 address", "public_ipv4_hour"),
            "aws:lb/loadBalancer:LoadBalancer": lambda r: self.fixed(
                r, "load balancer", "nlb_hour" if r.inputs.get("loadBalancerType") == "network" else "alb_hour"
            ),
            "aws:kms/key:Key": lambda r: self._monthly(r, "KMS key", "kms_key_month"),
            "aws:secretsmanager/secret:Secret": lambda r: self._monthly(
                r, "Secrets Manager secret", "secretsmanager_secret_month"
            ),
            "aws:dynamodb/table:Table": self.dynamodb_table,
            "kubernetes:networking.k8s.io/v1:Ingress": self.ingress,
            "kubernetes:helm.sh/v3:Release": self.helm_release,
        }
        if service_price(self.region, "eks_cluster_hour", "STANDARD") is None:
            self.notes.append(
                f"The price data has no {self.region} figures (`mlp prices refresh --regions {self.region}` fetches "
                "them); lines are marked unpriced."
            )
        for r in self.resources:
            handler = handlers.get(r.type)
            if handler is not None:
                handler(r)
        if any(line.spot is not None for line in self.lines):
            self.notes.append(SPOT_ASSUMPTION.format(pct=assumption("spot_fraction_of_on_demand") * 100))
        if self.region != self.stack_region:
            self.notes.append(
                f"FALLBACK PRICES: {self.stack_region} is priced at {self.region} rates (--price-region "
                f"{self.region}); real {self.stack_region} prices differ."
            )
        return CostEstimate(self.stack_region, tuple(self.lines), tuple(self.notes), self.region)

    def _monthly(self, r: CostedResource, item: str, key: str) -> None:
        price = service_price(self.region, key)
        if price is None:
            self.unpriced(r, item, f"{key} in {self.region}")
            return
        self.add(r, item, price, price, f"${price}/month")


def _vcpus(instance_type: str) -> int:
    """vCPUs of a general-purpose instance type from its size name (large = 2, xlarge = 4, 2xlarge = 8...)."""
    size = instance_type.split(".", 1)[1]
    named = {"nano": 2, "micro": 2, "small": 2, "medium": 2, "large": 2, "xlarge": 4}
    if size in named:
        return 1 if size == "medium" and instance_type.startswith(("m7g", "c7g", "r7g")) else named[size]
    if size.endswith("xlarge") and size[:-6].isdigit():
        return int(size[:-6]) * 4
    return 0  # metal sizes: not used by the estimate


def estimate_cost(
    resources: Sequence[CostedResource],
    region: str,
    *,
    today: dt.date | None = None,
    utilization: float | None = None,
    price_region: str | None = None,
) -> CostEstimate:
    """The estimate of `resources` in `region`; `price_region` prices them at another region's rates (a labelled
    fallback: the estimate's notes and `price_region` say so)."""
    return _Estimator(
        resources,
        region,
        today or dt.date.today(),
        assumption("expected_utilization") if utilization is None else utilization,
        price_region,
    ).estimate()
