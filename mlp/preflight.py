"""`mlp preflight STACK`: before `pulumi up`, check that the AWS account can run what the stack's config allows.

Each check reads the account (read-only calls) and reports findings that say what will fail and how to fix it:

- quotas: EC2 vCPU service quotas against the stack's worst-case vCPUs per quota bucket (`vcpu_demand`);
- offerings: every configured instance type (for family-based Karpenter pools, every catalog type of the family,
  and the system node types) is offered in the availability zones the stack uses;
- reservations: capacity reservations referenced by pools (Karpenter or node group) exist, are active, match the
  pool's type, kind and configured AZ, sit in one of the stack's AZs and hold enough instances;
- ips: the private subnets have enough free addresses for the nodes and pods at full scale (adopted subnets from
  DescribeSubnets, created ones from the subnet plan);
- network and account: the adopted subnets exist in the adopted VPC, the region has `az_count` AZs, and the
  credentials belong to the stack's `aws_account_id`;
- cluster access (checked first; an error stops preflight at once): which path deploys the cluster layer, and
  whether the caller will get through it. With the in-VPC runner (a private endpoint): the runner's role is a
  cluster admin by construction, and the caller must be allowed to start it (IAM's own policy simulator,
  SimulatePrincipalPolicy, evaluates the caller's policies). Directly (a public endpoint, or a private one
  reached over VPN): the caller must be one of `cluster.deployers` (or a cluster-wide `cluster-admin` admin),
  since the cluster's creator gets no admin rights.

Quota codes: botocore's model carries no quota codes, and none could be looked up from here; the six codes in
`QUOTA_BUCKETS` are the well-known EC2 vCPU quota codes (Service Quotas, service code `ec2`) as AWS documents
them. Tests: moto serves EC2 (AZs, offerings, subnets) and STS; moto implements neither Service Quotas for EC2
nor DescribeCapacityReservations, so those are tested with botocore's Stubber.

Credentials that are rejected raise `AccountError`. A call the caller may not make (AccessDenied) does not stop
the other checks: it becomes a `warning` finding that says what was not checked and which permission is missing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.catalog.gpu import GpuInstance
from mlplatform.infra.config import GpuPoolConfig, PlatformConfig
from mlplatform.infra.network.cidr import AWS_RESERVED_PER_SUBNET, SubnetPlanError, plan_subnets
from mlplatform.mlp.aws import ACCESS_DENIED, AwsContext, StepCallback, aws_exceptions, describe_aws_error, paginate
from mlplatform.mlp.errors import AccountError

if TYPE_CHECKING:
    from rich.console import Console

Severity = Literal["ok", "warning", "error"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "ok": 2}

IPS_PER_NODE = 30
"""IP budget per node. The VPC CNI gives every pod a VPC address and keeps a warm ENI's worth of spare addresses
per node (WARM_ENI_TARGET=1): a 2-vCPU node (3 ENIs x 10 addresses) holds 30; bigger nodes hold more but run
fewer of them per vCPU. 30 is an assumption for a budget, not a limit AWS enforces."""

CPU_POOL_VCPUS_PER_NODE = 2
"""Worst case for the CPU pool's node count: Karpenter fills max_vcpus with the smallest (2-vCPU) nodes."""

_SUBNET_MISSING = ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed")
_RESERVATION_MISSING = ("InvalidCapacityReservationId.NotFound", "InvalidCapacityReservationId.Malformed")
_GROUP_MISSING = ("InvalidPlacementGroup.Unknown", "InvalidGroup.NotFound")
_NO_SUCH_QUOTA = ("NoSuchResourceException",)

IP_WARNING_RATIO = 0.8
"""Above this share of the free addresses the ips check warns."""


@dataclass(frozen=True)
class QuotaBucket:
    code: str
    name: str
    label: str  # how a message names the capacity it counts, e.g. "on-demand P instances"


QUOTA_BUCKETS: tuple[QuotaBucket, ...] = (
    QuotaBucket(
        "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", "on-demand Standard instances"
    ),
    QuotaBucket(
        "L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", "spot Standard instances"
    ),
    QuotaBucket("L-DB2E81BA", "Running On-Demand G and VT instances", "on-demand G and VT instances"),
    QuotaBucket("L-3819A6DF", "All G and VT Spot Instance Requests", "spot G and VT instances"),
    QuotaBucket("L-417A185B", "Running On-Demand P instances", "on-demand P instances"),
    QuotaBucket("L-7212CCBC", "All P Spot Instance Requests", "spot P instances"),
)
_BUCKETS = {b.code: b for b in QUOTA_BUCKETS}
_CODES: dict[tuple[str, str], str] = {
    ("standard", "on-demand"): "L-1216C47A",
    ("standard", "spot"): "L-34B43A08",
    ("g", "on-demand"): "L-DB2E81BA",
    ("g", "spot"): "L-3819A6DF",
    ("p", "on-demand"): "L-417A185B",
    ("p", "spot"): "L-7212CCBC",
}
# Leading letters of a family name -> vCPU quota class (im4gn and is4gen are I instances, gr6 is a G instance).
_CLASS_OF_PREFIX = {
    **dict.fromkeys(("a", "c", "d", "h", "i", "im", "is", "m", "r", "t", "z"), "standard"),
    **dict.fromkeys(("g", "gr", "vt"), "g"),
    "p": "p",
}


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One result of a check: `message` says what will fail, `fix` how to fix it (empty for `ok`)."""

    check: str
    severity: Severity
    subject: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class PreflightReport:
    region: str
    account: str
    findings: tuple[Finding, ...]
    stopped_early: bool = False
    """The cluster-access check failed: nothing else was checked (the first `up` could not finish anyway)."""

    @property
    def ok(self) -> bool:
        """No error: `pulumi up` is not expected to fail on what preflight can see."""
        return not any(f.severity == "error" for f in self.findings)

    def counts(self) -> dict[str, int]:
        counts = Counter(f.severity for f in self.findings)
        return {s: counts.get(s, 0) for s in ("error", "warning", "ok")}

    def by_check(self, check: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.check == check)


@dataclass(frozen=True)
class DemandItem:
    """vCPUs one part of the stack may run at most in one quota bucket. quota_code None: no bucket preflight checks
    (or vCPUs unknown); `how` is then the whole sentence a warning shows."""

    quota_code: str | None
    source: str  # config path: gpu_pools.<name>, cpu_pool, cluster.system_node_group
    label: str  # how a message names the source: pool `training`, the CPU pool, system nodes
    vcpus: int
    how: str


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    availability_zone: str
    free_ips: int
    vpc_id: str


@dataclass(frozen=True)
class StackNetwork:
    """The AZs the stack uses and, for an adopted network, its private subnets."""

    zones: tuple[str, ...]
    adopted: bool
    subnets: tuple[Subnet, ...] = ()
    zones_known: bool = True  # False: subnets come from a Terraform state preflight did not read
    findings: tuple[Finding, ...] = field(default=())


# --- pure helpers: instance sizes and vCPU demand -------------------------------------------------------------


def vcpus_of(instance_type: str) -> int | None:
    """vCPUs of an instance type: the GPU catalog's figure, else read from the size name (t3.medium = 2,
    m7i.large = 2, m7i.xlarge = 4, m7i.12xlarge = 48, m7i.metal-24xl = 96); None when the name does not say
    (plain `metal`). Burstable sizes below medium may have 1 vCPU; counting 2 errs on the safe side."""
    spec = gpu_catalog.gpu_instance(instance_type)
    if spec is not None:
        return spec.vcpus
    _, _, size = instance_type.partition(".")
    if size in ("nano", "micro", "small", "medium", "large"):
        return 2
    if size == "xlarge":
        return 4
    match = re.fullmatch(r"([0-9]+)xlarge|metal-([0-9]+)xl", size)
    return int(match.group(1) or match.group(2)) * 4 if match else None


def quota_class(family: str) -> str | None:
    """`standard`, `g` or `p` for a family name such as m7i, g6e, gr6, p6-b200; None for other classes."""
    match = re.match(r"[a-z]+", family)
    return _CLASS_OF_PREFIX.get(match.group(0)) if match else None


def quota_code(family: str, capacity_type: str) -> str | None:
    cls = quota_class(family)
    return _CODES.get((cls, capacity_type)) if cls else None


def pool_candidates(pool: GpuPoolConfig) -> tuple[GpuInstance, ...]:
    """Every catalog type the pool may launch: its instance types and every type of its families."""
    return pool.candidate_types()


def worst_case_nodes(types: Sequence[GpuInstance], max_gpus: int) -> tuple[int, dict[str, int]]:
    """The most vCPUs a set of nodes can have while their GPUs stay within max_gpus, and that set.

    Karpenter launches no node that would take the pool over its nvidia.com/gpu limit, but it may pick any mix of
    the candidate types. The largest type is not always the worst case: a 1-GPU type with many vCPUs
    (g6e.16xlarge: 64 vCPUs per GPU) beats g6e.48xlarge (24 per GPU). So this is an exact unbounded knapsack over
    GPUs (max_gpus is at most 4096)."""
    usable = sorted((t for t in types if t.gpu_count > 0), key=lambda t: (-t.gpu_count, -t.vcpus, t.instance_type))
    best = [0] * (max_gpus + 1)
    pick: list[GpuInstance | None] = [None] * (max_gpus + 1)
    for gpus in range(1, max_gpus + 1):
        best[gpus] = best[gpus - 1]
        for spec in usable:
            if spec.gpu_count <= gpus and best[gpus - spec.gpu_count] + spec.vcpus > best[gpus]:
                best[gpus] = best[gpus - spec.gpu_count] + spec.vcpus
                pick[gpus] = spec
    chosen: Counter[str] = Counter()
    gpus = max_gpus
    while gpus > 0:
        picked = pick[gpus]
        if picked is None:
            gpus -= 1
        else:
            chosen[picked.instance_type] += 1
            gpus -= picked.gpu_count
    return best[max_gpus], dict(chosen)


def _describe_nodes(chosen: dict[str, int]) -> str:
    parts = []
    for itype, count in sorted(chosen.items(), key=lambda item: (-item[1], item[0])):
        spec = gpu_catalog.gpu_instance(itype)
        assert spec is not None  # chosen only from catalog types
        gpus = f"{spec.gpu_count} GPU{'s' if spec.gpu_count > 1 else ''}"
        parts.append(f"{count} x {itype} with {gpus} and {spec.vcpus} vCPUs each")
    return " + ".join(parts)


def _gpu_pool_demand(name: str, pool: GpuPoolConfig) -> list[DemandItem]:
    candidates = pool_candidates(pool)
    label = f"pool `{name}`"
    items: list[DemandItem] = []
    by_class: dict[str | None, list[GpuInstance]] = {}
    for spec in candidates:
        by_class.setdefault(quota_class(spec.family), []).append(spec)
    for cls, types in sorted(by_class.items(), key=lambda item: str(item[0])):
        # One instance type (a node group's, or a reservation's): max_gpus in whole nodes of it, against the
        # on-demand quota of its class (an ODCR larger than that quota cannot even be created: EC2 API reference,
        # CreateCapacityReservation).
        if pool.provisioner == "node_group" or pool.capacity_reservation is not None:
            spec = types[0]
            nodes = max(1, pool.max_gpus // spec.gpu_count)
            vcpus, how = (
                nodes * spec.vcpus,
                f"{_describe_nodes({spec.instance_type: nodes})}, at max_gpus {pool.max_gpus}",
            )
        else:
            vcpus, chosen = worst_case_nodes(types, pool.max_gpus)
            if not vcpus:
                continue
            which = "picks this type" if len(chosen) == 1 else "picks these types"
            how = f"{_describe_nodes(chosen)}, the worst case if Karpenter {which} within max_gpus {pool.max_gpus}"
        if cls is None:
            families = ", ".join(sorted({t.family for t in types}))
            note = f"{label} may run {vcpus} vCPUs of {families} ({how}); preflight checks no quota for {families}"
            items.append(DemandItem(None, f"gpu_pools.{name}", label, vcpus, note))
            continue
        for capacity in pool.capacity_types:
            items.append(DemandItem(_CODES[cls, capacity], f"gpu_pools.{name}", label, vcpus, how))
    return items


def demand_items(cfg: PlatformConfig) -> tuple[DemandItem, ...]:
    """Each part of the stack's worst-case vCPUs per quota bucket (GPU pools, the CPU pool, system nodes)."""
    items: list[DemandItem] = []
    for name, pool in cfg.gpu_pools.items():
        items += _gpu_pool_demand(name, pool)
    cpu = cfg.cpu_pool
    if cpu.enabled:
        classes: dict[str | None, list[str]] = {}
        for family in cpu.instance_families:
            classes.setdefault(quota_class(family), []).append(family)
        how = f"its NodePool cpu limit max_vcpus {cpu.max_vcpus}"
        for cls, families in sorted(classes.items(), key=lambda item: str(item[0])):
            if cls is None:
                names = ", ".join(families)
                note = (
                    f"the CPU pool may run {cpu.max_vcpus} vCPUs of {names} ({how}); preflight checks no quota for "
                    f"{names}"
                )
                items.append(DemandItem(None, "cpu_pool", "the CPU pool", cpu.max_vcpus, note))
                continue
            for capacity in cpu.capacity_types:
                items.append(DemandItem(_CODES[cls, capacity], "cpu_pool", "the CPU pool", cpu.max_vcpus, how))
    if cfg.adopts_cluster:  # an adopted cluster's nodes are its owner's, and already running
        return tuple(items)
    ng = cfg.cluster.system_node_group
    capacity = "spot" if ng.capacity_type == "SPOT" else "on-demand"
    by_code: dict[str | None, tuple[int, str]] = {}
    for itype in ng.instance_types:
        vcpus = vcpus_of(itype)
        if vcpus is None:
            note = f"the vCPUs of system node type {itype} are not in its name; its quota is not checked"
            items.append(DemandItem(None, "cluster.system_node_group", "system nodes", 0, note))
            continue
        code = quota_code(itype.partition(".")[0], capacity)
        if code not in by_code or vcpus > by_code[code][0]:
            by_code[code] = (vcpus, itype)
    for code, (vcpus, itype) in sorted(by_code.items(), key=lambda item: str(item[0])):
        how = f"max_size {ng.max_size} x {itype} with {vcpus} vCPUs"
        items.append(DemandItem(code, "cluster.system_node_group", "system nodes", ng.max_size * vcpus, how))
    return tuple(items)


def vcpu_demand(cfg: PlatformConfig) -> dict[str, tuple[int, str]]:
    """Quota code -> (worst-case vCPUs the stack may run in that bucket, how that number comes about)."""
    out: dict[str, tuple[int, str]] = {}
    for bucket in QUOTA_BUCKETS:
        items = [i for i in demand_items(cfg) if i.quota_code == bucket.code]
        if items:
            out[bucket.code] = (
                sum(i.vcpus for i in items),
                "; ".join(f"{i.label}: {i.vcpus} = {i.how}" for i in items),
            )
    return out


def max_nodes(cfg: PlatformConfig) -> tuple[int, str]:
    """The most nodes the stack may run at once (smallest GPU nodes, 2-vCPU CPU nodes, system max_size), and how."""
    parts: list[tuple[str, int]] = []
    for name, pool in cfg.gpu_pools.items():
        counts = [s.gpu_count for s in pool_candidates(pool) if s.gpu_count > 0]
        if counts:
            parts.append((f"pool `{name}`", max(1, pool.max_gpus // min(counts))))
    if cfg.cpu_pool.enabled:
        parts.append(("the CPU pool", cfg.cpu_pool.max_vcpus // CPU_POOL_VCPUS_PER_NODE))
    if not cfg.adopts_cluster:  # an adopted cluster's own nodes already hold their addresses
        parts.append(("system nodes", cfg.cluster.system_node_group.max_size))
    return sum(n for _, n in parts), ", ".join(f"{label} {n}" for label, n in parts)


# --- AWS helpers ---------------------------------------------------------------------------------------------


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class _RefusedError(Exception):
    """An AWS error the check reports itself (AccessDenied, or a code it expects such as NotFound)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error
        self.code = _error_code(error)
        self.denied = self.code in ACCESS_DENIED


def _call(action: str, fn: Any, /, passthrough: Iterable[str] = (), **kwargs: Any) -> Any:
    """Call AWS; an AccessDenied or one of the `passthrough` codes becomes `_RefusedError` for the check to report,
    anything else (rejected credentials, throttling, no endpoint) an AccountError."""
    from botocore.exceptions import ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        code = _error_code(exc)
        if code in ACCESS_DENIED or code in set(passthrough):
            raise _RefusedError(exc) from None
        raise AccountError(describe_aws_error(exc, action)) from None
    except aws_exceptions() as exc:
        raise AccountError(describe_aws_error(exc, action)) from None


def _why(exc: BaseException) -> str:
    """describe_aws_error's explanation without its leading action."""
    return describe_aws_error(exc, "-").removeprefix("-: ")


def _not_checked(check: str, subject: str, exc: BaseException, what: str, permission: str) -> Finding:
    return Finding(
        check,
        "warning",
        subject,
        f"{what} not checked: {_why(exc)}",
        f"allow {permission} for the caller (read-only), then run preflight again",
    )


def _zones_text(zones: Iterable[str]) -> str:
    return "/".join(zones) or "no AZ"


# --- network: the stack's AZs and subnets --------------------------------------------------------------------


def _region_zones(ec2: Any) -> tuple[str, ...]:
    # The same filter the network component passes to get_availability_zones: standard AZs, no opt-in zones.
    response = _call(
        "reading the availability zones",
        ec2.describe_availability_zones,
        Filters=[
            {"Name": "state", "Values": ["available"]},
            {"Name": "opt-in-status", "Values": ["opt-in-not-required"]},
        ],
    )
    return tuple(
        str(z["ZoneName"])
        for z in response.get("AvailabilityZones", [])
        if z.get("ZoneType", "availability-zone") == "availability-zone"
    )


def resolve_network(cfg: PlatformConfig, ec2: Any, adopted_subnet_ids: Sequence[str] | None = None) -> StackNetwork:
    """The AZs the stack will use: the first az_count available AZs for a created network, the adopted private
    subnets' AZs otherwise (explicit ids, or `adopted_subnet_ids` resolved from a Terraform state by the caller)."""
    net = cfg.network
    adopt = net.adopt
    if adopt is None:
        zones = _region_zones(ec2)
        findings: list[Finding] = []
        if len(zones) < net.az_count:
            findings.append(
                Finding(
                    "network",
                    "error",
                    "network.az_count",
                    f"the VPC cannot be created as planned: network.az_count is {net.az_count} but {cfg.region} has "
                    f"{len(zones)} available AZs without opt-in ({_zones_text(zones)})",
                    f"set network.az_count to at most {len(zones)}",
                )
            )
        return StackNetwork(zones=zones[: net.az_count], adopted=False, findings=tuple(findings))

    ids = tuple(adopt.private_subnet_ids) or tuple(adopted_subnet_ids or ())
    if not ids:
        zones = _region_zones(ec2)
        note = Finding(
            "network",
            "warning",
            "network.adopt.terraform_state",
            "the adopted private subnets come from a Terraform state, which preflight does not read: instance "
            f"offerings are checked against every AZ of {cfg.region} ({_zones_text(zones)}) and free IPs are not "
            "checked",
            "pass the private subnet ids to preflight, or list them in network.adopt.private_subnet_ids",
        )
        return StackNetwork(zones=zones, adopted=True, zones_known=False, findings=(note,))

    subnets: list[Subnet] = []
    findings = []
    for subnet_id in ids:
        try:
            found = _call(
                "reading the adopted subnets",
                lambda **kw: list(paginate(ec2, "describe_subnets", "Subnets", **kw)),
                passthrough=_SUBNET_MISSING,
                SubnetIds=[subnet_id],
            )
        except _RefusedError as exc:
            if not exc.denied:
                found = []  # one of _SUBNET_MISSING
            else:
                findings.append(
                    _not_checked(
                        "network", "network.adopt", exc.error, "the adopted subnets were", "ec2:DescribeSubnets"
                    )
                )
                zones = _region_zones(ec2)
                return StackNetwork(zones=zones, adopted=True, zones_known=False, findings=tuple(findings))
        if not found:
            findings.append(
                Finding(
                    "network",
                    "error",
                    f"network.adopt.private_subnet_ids: {subnet_id}",
                    f"nodes cannot be placed: subnet {subnet_id} does not exist in account/region {cfg.region}",
                    "correct network.adopt.private_subnet_ids (or the credentials' account and the region)",
                )
            )
            continue
        raw = found[0]
        subnet = Subnet(
            subnet_id=str(raw["SubnetId"]),
            availability_zone=str(raw["AvailabilityZone"]),
            free_ips=int(raw.get("AvailableIpAddressCount", 0)),
            vpc_id=str(raw.get("VpcId", "")),
        )
        if adopt.vpc_id is not None and subnet.vpc_id != adopt.vpc_id:
            findings.append(
                Finding(
                    "network",
                    "error",
                    f"network.adopt.private_subnet_ids: {subnet_id}",
                    f"the cluster cannot use subnet {subnet_id}: it is in {subnet.vpc_id}, not in the adopted VPC "
                    f"{adopt.vpc_id}",
                    "list only private subnets of network.adopt.vpc_id",
                )
            )
        subnets.append(subnet)
    zones = tuple(dict.fromkeys(s.availability_zone for s in subnets))
    return StackNetwork(zones=zones, adopted=True, subnets=tuple(subnets), findings=tuple(findings))


# --- check 1: vCPU quotas -------------------------------------------------------------------------------------


def _quota_value(sq: Any, code: str) -> float | None:
    """The applied quota, else AWS's default; None when neither is known."""
    for action, fn in (
        (f"reading quota {code}", sq.get_service_quota),
        (f"reading the default of quota {code}", sq.get_aws_default_service_quota),
    ):
        try:
            response = _call(action, fn, passthrough=_NO_SUCH_QUOTA, ServiceCode="ec2", QuotaCode=code)
        except _RefusedError as exc:
            if exc.denied:
                raise
            continue  # NoSuchResourceException: try AWS's default, then give up
        return float(response["Quota"]["Value"])
    return None


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _consequence(items: Sequence[DemandItem]) -> str:
    phrases = []
    if any(i.source == "cluster.system_node_group" for i in items):
        phrases.append("system nodes will fail to launch")
    pending = [
        kind
        for kind, src in (("GPU", "gpu_pools."), ("CPU", "cpu_pool"))
        if any(i.source.startswith(src) for i in items)
    ]
    if pending:
        phrases.append(f"{' and '.join(pending)} pods will stay Pending")
    return " and ".join(phrases)


def _knob(source: str) -> str:
    if source.startswith("gpu_pools."):
        return f"{source}.max_gpus"
    if source == "cpu_pool":
        return "cpu_pool.max_vcpus"
    return f"{source}.max_size"


def check_quotas(cfg: PlatformConfig, sq: Any) -> list[Finding]:
    """EC2 vCPU quotas (Service Quotas, service code ec2) against `vcpu_demand`."""
    items = demand_items(cfg)
    findings: list[Finding] = []
    for item in items:
        if item.quota_code is None:
            findings.append(
                Finding(
                    "quotas",
                    "warning",
                    item.source,
                    item.how,
                    "compare the stack's figure with that family's EC2 vCPU quota in Service Quotas yourself",
                )
            )
    needed = [(b, [i for i in items if i.quota_code == b.code]) for b in QUOTA_BUCKETS]
    needed = [(b, its) for b, its in needed if its]
    for bucket, its in needed:
        total = sum(i.vcpus for i in its)
        subject = f"{bucket.code} {bucket.name}"
        try:
            value = _quota_value(sq, bucket.code)
        except _RefusedError as refused:  # AccessDenied: _call turned every other failure into an AccountError
            cause = refused.error
            wanted = ", ".join(f"{b.code} >= {sum(i.vcpus for i in x)}" for b, x in needed)
            findings.append(
                Finding(
                    "quotas",
                    "warning",
                    "service-quotas",
                    f"the EC2 vCPU quotas were not checked: {_why(cause)}; the stack needs {wanted}",
                    "allow servicequotas:GetServiceQuota and servicequotas:GetAWSDefaultServiceQuota for the caller "
                    "(read-only), or compare those figures with Service Quotas yourself",
                )
            )
            break
        if value is None:
            findings.append(
                Finding(
                    "quotas",
                    "warning",
                    subject,
                    f"quota {bucket.code} is unknown to Service Quotas in {cfg.region}; the stack needs up to {total} "
                    f"vCPUs of {bucket.label}",
                    f"check the EC2 limits of {cfg.region} for {bucket.name}",
                )
            )
            continue
        if len(its) == 1:
            needs = f"{its[0].label} needs {total} ({its[0].how})"
        else:
            needs = f"the stack needs {total} ({'; '.join(f'{i.label} {i.vcpus}: {i.how}' for i in its)})"
        if total > value:
            knobs = ", ".join(dict.fromkeys(_knob(i.source) for i in its))
            findings.append(
                Finding(
                    "quotas",
                    "error",
                    subject,
                    f"{_consequence(its)} because the account may run {_number(value)} vCPUs of {bucket.label} and "
                    f"{needs}",
                    f"request an increase of quota {bucket.code} ({bucket.name}) to at least {total} in Service "
                    f"Quotas (aws service-quotas request-service-quota-increase --service-code ec2 --quota-code "
                    f"{bucket.code} --desired-value {total} --region {cfg.region}), or lower {knobs}",
                )
            )
        else:
            findings.append(
                Finding(
                    "quotas",
                    "ok",
                    subject,
                    f"the account may run {_number(value)} vCPUs of {bucket.label} and {needs}; other instances in "
                    "the account share this quota",
                )
            )
    return findings


# --- check 2: instance type offerings ------------------------------------------------------------------------


def _offerings(ec2: Any, types: Sequence[str]) -> dict[str, set[str]]:
    """Instance type -> every AZ of the region that offers it."""
    offered: dict[str, set[str]] = {t: set() for t in types}
    # DescribeInstanceTypeOfferings takes a bounded number of filter values; ask in chunks.
    for start in range(0, len(types), 100):
        chunk = list(types[start : start + 100])
        found = _call(
            "reading instance type offerings",
            lambda **kw: list(paginate(ec2, "describe_instance_type_offerings", "InstanceTypeOfferings", **kw)),
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": chunk}],
        )
        for offering in found:
            offered.setdefault(str(offering["InstanceType"]), set()).add(str(offering["Location"]))
    return offered


@dataclass(frozen=True)
class _Group:
    """Instance types one part of the stack launches from."""

    subject: str
    consequence: str  # what fails when none of the types can launch
    where: str  # who launches, for partial messages: "Karpenter", "the node group"
    types: tuple[str, ...]  # explicit types: one finding each
    families: tuple[tuple[str, tuple[str, ...]], ...]  # family -> its catalog types: one finding per family
    config_key: str


def _offering_groups(cfg: PlatformConfig) -> list[_Group]:
    groups = []
    for name, pool in cfg.gpu_pools.items():
        families = tuple(
            (fam, tuple(s.instance_type for s in pool_candidates(pool) if s.family == fam))
            for fam in pool.instance_families
        )
        if pool.provisioner == "node_group":
            consequence, where = f"the node group of pool `{name}` cannot launch nodes", "the node group"
        else:
            consequence, where = f"GPU pods of pool `{name}` will stay Pending", "Karpenter"
        groups.append(
            _Group(f"gpu_pools.{name}", consequence, where, tuple(pool.instance_types), families, f"gpu_pools.{name}")
        )
    if cfg.adopts_cluster:
        return groups
    groups.append(
        _Group(
            "cluster.system_node_group",
            "the system node group cannot launch nodes (the platform's controllers have nowhere to run)",
            "the system node group",
            tuple(cfg.cluster.system_node_group.instance_types),
            (),
            "cluster.system_node_group",
        )
    )
    return groups


def check_offerings(cfg: PlatformConfig, ec2: Any, network: StackNetwork) -> list[Finding]:
    """Every instance type the stack may launch is offered in the stack's AZs."""
    groups = _offering_groups(cfg)
    all_types = sorted({t for g in groups for t in g.types} | {t for g in groups for _, ts in g.families for t in ts})
    try:
        offered = _offerings(ec2, all_types)
    except _RefusedError as exc:  # AccessDenied
        permission = "ec2:DescribeInstanceTypeOfferings"
        return [_not_checked("offerings", "instance types", exc.error, "instance type offerings were", permission)]
    zones = network.zones
    zone_set = set(zones)
    azs = f"the stack's AZs ({_zones_text(zones)})"

    def inside(itype: str) -> list[str]:
        return [z for z in zones if z in offered.get(itype, set())]

    def elsewhere(itype: str) -> str:
        other = sorted(offered.get(itype, set()) - zone_set)
        return f"offered in {', '.join(other)}" if other else f"not offered in any AZ of {cfg.region}"

    findings: list[Finding] = []
    for group in groups:
        candidates = list(dict.fromkeys([*group.types, *(t for _, ts in group.families for t in ts)]))
        if not candidates:
            continue
        if not any(inside(t) for t in candidates):
            listed = ", ".join(f"{t} ({elsewhere(t)})" for t in candidates)
            findings.append(
                Finding(
                    "offerings",
                    "error",
                    group.subject,
                    f"{group.consequence}: none of its instance types is offered in {azs}: {listed}",
                    f"choose instance types offered in {_zones_text(zones)} for {group.config_key}"
                    + ("" if network.adopted else ", or a region whose first AZs offer them"),
                )
            )
            continue
        problems: list[Finding] = []
        for itype in group.types:
            where = inside(itype)
            if not where:
                problems.append(
                    Finding(
                        "offerings",
                        "warning",
                        f"{group.subject}: {itype}",
                        f"{group.where} will never launch {itype}: it is not offered in {azs}; {elsewhere(itype)}",
                        f"remove {itype} from {group.config_key}.instance_types or use AZs that offer it",
                    )
                )
            elif len(where) < len(zones):
                missing = [z for z in zones if z not in where]
                problems.append(
                    Finding(
                        "offerings",
                        "warning",
                        f"{group.subject}: {itype}",
                        f"{group.where} will only launch {itype} in {_zones_text(where)}; it is not offered in "
                        f"{_zones_text(missing)}",
                        "nothing to do if capacity in those AZs is enough; otherwise add types offered in every AZ",
                    )
                )
        for family, types in group.families:
            some = [f"{t} in {_zones_text(inside(t))}" for t in types if 0 < len(inside(t)) < len(zones)]
            never = [t for t in types if not inside(t)]
            if some or never:
                detail = " and ".join(
                    part
                    for part in (
                        f"only launch {'; '.join(some)}" if some else "",
                        f"never launch {', '.join(never)}" if never else "",
                    )
                    if part
                )
                problems.append(
                    Finding(
                        "offerings",
                        "warning",
                        f"{group.subject}: family {family}",
                        f"{group.where} will {detail} (family {family}; the stack uses {_zones_text(zones)})",
                        "nothing to do if the other sizes of the family are enough; otherwise use AZs that offer them",
                    )
                )
        if problems:
            findings += problems
        else:
            findings.append(
                Finding(
                    "offerings",
                    "ok",
                    group.subject,
                    f"all {len(candidates)} instance types are offered in every one of {azs}",
                )
            )
    return findings


# --- check 3: capacity reservations --------------------------------------------------------------------------


def _reservation_consequence(name: str, pool: GpuPoolConfig) -> str:
    """What a reservation that cannot serve the pool means for it."""
    if pool.provisioner == "node_group":
        return f"the node group of pool `{name}` cannot launch nodes"
    ref = pool.capacity_reservation
    if ref is not None and ref.on_demand_fallback:
        return f"Karpenter will not use the reservation and pool `{name}` runs on demand only, at on-demand prices"
    return f"Karpenter will not use the reservation and GPU pods of pool `{name}` will stay Pending"


def check_reservations(cfg: PlatformConfig, ec2: Any, network: StackNetwork) -> list[Finding]:
    """Each pool's capacity reservation (a Karpenter pool's or a node group's) exists, is active, holds the pool's
    instance type, is of the configured kind, sits in the configured AZ and one of the stack's AZs, and holds the
    pool's nodes. Karpenter does not fail on a reservation it cannot use: it falls back to on-demand (if allowed)
    or leaves the pods Pending, so these are found here or not at all."""
    findings: list[Finding] = []
    for name, pool in cfg.gpu_pools.items():
        ref = pool.capacity_reservation
        if ref is None:
            continue
        karpenter = pool.provisioner == "karpenter"
        consequence = _reservation_consequence(name, pool)
        subject = f"gpu_pools.{name}: {ref.id}"
        key = f"gpu_pools.{name}.capacity_reservation"
        try:
            response = _call(
                "reading capacity reservations",
                ec2.describe_capacity_reservations,
                passthrough=_RESERVATION_MISSING,
                CapacityReservationIds=[ref.id],
            )
            found = response.get("CapacityReservations", [])
        except _RefusedError as exc:
            if not exc.denied:
                found = []  # one of _RESERVATION_MISSING
            else:
                permission = "ec2:DescribeCapacityReservations"
                findings.append(
                    _not_checked("reservations", subject, exc.error, "the capacity reservation was", permission)
                )
                continue
        if not found:
            findings.append(
                Finding(
                    "reservations",
                    "error",
                    subject,
                    f"{consequence}: capacity reservation {ref.id} does not exist in account/region {cfg.region}",
                    f"set {key}.id to a reservation of this account and region (aws ec2 "
                    "describe-capacity-reservations)",
                )
            )
            continue
        res = found[0]
        state = str(res.get("State", ""))
        itype = pool.instance_types[0]
        zone = str(res.get("AvailabilityZone", ""))
        total = int(res.get("TotalInstanceCount", 0))
        available = int(res.get("AvailableInstanceCount", 0))
        rtype = str(res.get("ReservationType", "default"))
        spec = gpu_catalog.gpu_instance(itype)
        nodes = max(1, pool.max_gpus // spec.gpu_count) if spec and spec.gpu_count else 1
        launcher = "Karpenter launches" if karpenter else f"the node group of pool `{name}` launches"
        errors: list[tuple[str, str]] = []
        if state != "active":
            if state == "scheduled" and ref.kind == "capacity_block":
                meanwhile = (
                    "until then its GPU pods run on demand"
                    if karpenter and ref.on_demand_fallback
                    else "until then its GPU pods stay Pending"
                    if karpenter
                    else "deploy the pool with min_gpus 0 until the block starts"
                )
                findings.append(
                    Finding(
                        "reservations",
                        "warning",
                        subject,
                        f"capacity block {ref.id} has not started (state scheduled, starts "
                        f"{res.get('StartDate', '?')}): {launcher} nodes into it only from then",
                        meanwhile,
                    )
                )
            else:
                errors.append(
                    (
                        f"capacity reservation {ref.id} is {state or 'in an unknown state'}, not active",
                        f"use an active reservation (or create a new one) and update {key}.id",
                    )
                )
        if str(res.get("InstanceType", "")) != itype:
            errors.append(
                (
                    f"capacity reservation {ref.id} holds {res.get('InstanceType')}, the pool launches {itype}",
                    f"set gpu_pools.{name}.instance_types to [{res.get('InstanceType')}] or use a reservation "
                    f"for {itype}",
                )
            )
        if network.zones_known and zone not in network.zones:
            errors.append(
                (
                    f"capacity reservation {ref.id} is in {zone}, outside the stack's AZs "
                    f"({_zones_text(network.zones)})",
                    "use a reservation in one of the stack's AZs, or subnets in its AZ",
                )
            )
        if ref.availability_zone is not None and zone != ref.availability_zone:
            where = (
                "the NodePool keeps the pool's nodes there"
                if karpenter
                else "the node group is placed in that AZ's subnet"
            )
            errors.append(
                (
                    f"capacity reservation {ref.id} is in {zone}, but {key}.availability_zone is "
                    f"{ref.availability_zone} ({where})",
                    f"set {key}.availability_zone to {zone}",
                )
            )
        kind = "capacity_block" if rtype == "capacity-block" else "odcr"
        described = "a Capacity Block" if kind == "capacity_block" else "an ODCR"
        if kind != ref.kind and not karpenter:
            errors.append(
                (
                    f"capacity reservation {ref.id} is {described} but {key}.kind is {ref.kind} (the launch "
                    "template targets it the wrong way)",
                    f"set {key}.kind to {kind}",
                )
            )
        elif kind != ref.kind:
            # Karpenter reads the type from EC2 and launches accordingly; only the config is wrong.
            findings.append(
                Finding(
                    "reservations",
                    "warning",
                    subject,
                    f"capacity reservation {ref.id} is {described} but {key}.kind is {ref.kind}: Karpenter reads the "
                    "type from EC2, but the config (and the cost estimate) describe it wrongly",
                    f"set {key}.kind to {kind}",
                )
            )
        for message, fix in errors:
            findings.append(Finding("reservations", "error", subject, f"{consequence}: {message}", fix))
        if errors:
            continue
        if total < nodes:
            beyond = (
                f"the nodes beyond {total} will fail to launch into it"
                if not karpenter
                else f"the nodes beyond {total} launch on demand, at on-demand prices"
                if ref.on_demand_fallback
                else f"Karpenter launches no node beyond {total} and GPU pods that need one stay Pending"
            )
            findings.append(
                Finding(
                    "reservations",
                    "warning",
                    subject,
                    f"capacity reservation {ref.id} holds {total} x {itype} ({available} unused) and pool `{name}` may "
                    f"run {nodes} (max_gpus {pool.max_gpus}): {beyond}",
                    f"extend the reservation to {nodes} instances, or lower gpu_pools.{name}.max_gpus to "
                    f"{total * (spec.gpu_count if spec else 1)}",
                )
            )
        elif state == "active":
            findings.append(
                Finding(
                    "reservations",
                    "ok",
                    subject,
                    f"capacity reservation {ref.id} is active in {zone} with {total} x {itype} ({available} unused); "
                    f"pool `{name}` needs {nodes}",
                )
            )
    return findings


# --- check: EFA ------------------------------------------------------------------------------------------------


def _efa_interfaces(ec2: Any, types: Sequence[str]) -> dict[str, int]:
    """Instance type -> the EFA interfaces EC2 says it takes (0: no EFA)."""
    out = dict.fromkeys(types, 0)
    try:
        found = _call(
            "reading instance types",
            ec2.describe_instance_types,
            passthrough=("InvalidInstanceType",),
            InstanceTypes=list(types),
        )
    except _RefusedError as exc:
        if exc.denied:
            raise
        if len(types) == 1:
            return out  # the region has no such type: it takes no EFA here
        # One type unknown to the region fails the whole call: ask for each.
        for itype in types:
            out.update(_efa_interfaces(ec2, [itype]))
        return out
    for item in found.get("InstanceTypes", []):
        network = item.get("NetworkInfo", {})
        if network.get("EfaSupported"):
            out[str(item["InstanceType"])] = int(network.get("EfaInfo", {}).get("MaximumEfaInterfaces", 0))
    return out


def _placement_group(ec2: Any, name: str) -> dict[str, Any] | None:
    found = _call(
        "reading placement groups", ec2.describe_placement_groups, passthrough=_GROUP_MISSING, GroupNames=[name]
    )
    groups = found.get("PlacementGroups", [])
    return dict(groups[0]) if groups else None


def _reservation_group(ec2: Any, reservation_id: str) -> str | None:
    """The name of the placement group an ODCR was created in (None: in none), from its PlacementGroupArn."""
    found = _call(
        "reading capacity reservations",
        ec2.describe_capacity_reservations,
        passthrough=_RESERVATION_MISSING,
        CapacityReservationIds=[reservation_id],
    )
    reservations = found.get("CapacityReservations", [])
    arn = str(reservations[0].get("PlacementGroupArn", "")) if reservations else ""
    return arn.rpartition("placement-group/")[2] or None


def check_efa(cfg: PlatformConfig, ec2: Any, network: StackNetwork) -> list[Finding]:
    """Each efa pool: EC2 says its types take EFA (and as many interfaces as the catalog, from which the pods'
    requests are computed); a type is offered with EFA in the AZ its nodes go to (the reservation's, else one of
    the stack's AZs, where the cluster placement group lands); a placement group named in config exists, is a
    `cluster` group and, on an ODCR, is the group the reservation was created in."""
    findings: list[Finding] = []
    pools = {name: pool for name, pool in cfg.gpu_pools.items() if pool.efa}
    if not pools:
        return findings
    candidates = {name: [s.instance_type for s in pool_candidates(pool)] for name, pool in pools.items()}
    types = sorted({t for ts in candidates.values() for t in ts})
    try:
        efa = _efa_interfaces(ec2, types)
        offered = _offerings(ec2, types)
    except _RefusedError as exc:
        permission = "ec2:DescribeInstanceTypes and ec2:DescribeInstanceTypeOfferings"
        return [_not_checked("efa", "EFA pools", exc.error, "EFA support was", permission)]
    for name, pool in pools.items():
        subject = f"gpu_pools.{name}"
        consequence = f"GPU pods of pool `{name}` that request EFA will stay Pending"
        reservation = pool.capacity_reservation
        # Where the nodes go: the reservation's AZ, or the pool's own (its cluster placement group's), else any.
        zone = reservation.availability_zone if reservation else pool.availability_zone
        zones = [zone] if zone else list(network.zones)
        for itype in candidates[name]:
            spec = gpu_catalog.gpu_instance(itype)
            expected = spec.efa_interfaces if spec else 0
            if efa[itype] == 0:
                findings.append(
                    Finding(
                        "efa",
                        "error",
                        f"{subject}: {itype}",
                        f"{consequence}: EC2 says {itype} does not support EFA",
                        f"remove {itype} from {subject}.instance_types or set {subject}.efa: false",
                    )
                )
            elif efa[itype] != expected:
                findings.append(
                    Finding(
                        "efa",
                        "warning",
                        f"{subject}: {itype}",
                        f"EC2 says {itype} takes {efa[itype]} EFA interfaces, the catalog {expected}: pods request "
                        "the catalog's count per GPU, so they use only part of the node's EFA, or cannot fit",
                        "update infra/catalog/data/gpu_instances.json from EC2 DescribeInstanceTypes",
                    )
                )
        usable = [t for t in candidates[name] if efa[t] and any(z in offered.get(t, set()) for z in zones)]
        if not usable:
            findings.append(
                Finding(
                    "efa",
                    "error",
                    subject,
                    f"{consequence}: no EFA type of the pool is offered in {_zones_text(zones)}",
                    f"choose EFA instance types offered in {_zones_text(zones)} for {subject}",
                )
            )
        else:
            where = sorted({z for t in usable for z in zones if z in offered.get(t, set())})
            findings.append(
                Finding(
                    "efa",
                    "ok",
                    subject,
                    f"{', '.join(f'{t} ({efa[t]} EFA interfaces)' for t in usable)} offered with EFA in "
                    f"{_zones_text(where)}",
                )
            )
        if pool.placement_group is not None:
            findings += _check_named_group(ec2, name, pool)
    return findings


def _check_named_group(ec2: Any, name: str, pool: GpuPoolConfig) -> list[Finding]:
    group_name = str(pool.placement_group)
    subject = f"gpu_pools.{name}: placement group {group_name}"
    key = f"gpu_pools.{name}.placement_group"
    consequence = f"Karpenter cannot launch nodes for pool `{name}` (its EC2NodeClass is not ready)"
    try:
        group = _placement_group(ec2, group_name)
    except _RefusedError as exc:
        if exc.denied:
            return [_not_checked("efa", subject, exc.error, "the placement group was", "ec2:DescribePlacementGroups")]
        group = None
    if group is None:
        return [
            Finding(
                "efa",
                "error",
                subject,
                f"{consequence}: placement group {group_name} does not exist",
                f"create it (aws ec2 create-placement-group --strategy cluster --group-name {group_name}) or remove "
                f"{key}",
            )
        ]
    findings: list[Finding] = []
    if group.get("Strategy") != "cluster" or group.get("State") != "available":
        findings.append(
            Finding(
                "efa",
                "error",
                subject,
                f"placement group {group_name} is a {group.get('Strategy')} group in state {group.get('State')}; "
                "EFA nodes need an available `cluster` group",
                f"name an available cluster placement group in {key}",
            )
        )
    reservation = pool.capacity_reservation
    if reservation is not None and reservation.kind == "odcr":
        try:
            held_in = _reservation_group(ec2, reservation.id)
        except _RefusedError as exc:
            if exc.denied:
                permission = "ec2:DescribeCapacityReservations"
                findings.append(_not_checked("efa", subject, exc.error, "the reservation's group was", permission))
            return findings  # a missing reservation is the reservations check's error
        if held_in != group_name:
            findings.append(
                Finding(
                    "efa",
                    "error",
                    subject,
                    f"capacity reservation {reservation.id} was created "
                    + (f"in placement group {held_in}" if held_in else "in no placement group")
                    + f", not in {group_name}: its instances are not placed where the pool launches",
                    f"set {key} to the reservation's group"
                    + (f" ({held_in})" if held_in else ", or remove it")
                    + " (aws ec2 describe-capacity-reservations shows PlacementGroupArn)",
                )
            )
    return findings


# --- check 4: free IP addresses ------------------------------------------------------------------------------


def efa_addresses(cfg: PlatformConfig) -> tuple[int, str]:
    """The addresses efa pools' nodes take beyond IPS_PER_NODE: every EFA interface after the first is an `efa`
    interface with an address of its own (Karpenter makes one per EFA card), at the pool's most nodes."""
    total, parts = 0, []
    for name, pool in cfg.gpu_pools.items():
        if not pool.efa:
            continue
        extra = max(
            (-(-pool.max_gpus // s.gpu_count) * (s.efa_interfaces - 1) for s in pool_candidates(pool) if s.gpu_count),
            default=0,
        )
        if extra:
            total += extra
            parts.append(f"pool `{name}`: {extra}")
    text = f"{total} for EFA interfaces after each node's first ({', '.join(parts)})" if total else ""
    return total, text


def check_ips(cfg: PlatformConfig, network: StackNetwork) -> list[Finding]:
    """Free addresses in the private subnets against the nodes at full scale times IPS_PER_NODE."""
    nodes, breakdown = max_nodes(cfg)
    efa, efa_text = efa_addresses(cfg)
    demand = nodes * IPS_PER_NODE + efa
    if network.adopted:
        if not network.subnets:
            return []
        supply = sum(s.free_ips for s in network.subnets)
        source = (
            "free in the adopted private subnets ("
            + ", ".join(f"{s.subnet_id} in {s.availability_zone}: {s.free_ips}" for s in network.subnets)
            + ")"
        )
        fix_more = "adopt larger private subnets (or add a secondary CIDR with VPC CNI custom networking)"
    else:
        try:
            plan = plan_subnets(cfg.network.cidr, cfg.network.az_count)
        except SubnetPlanError as exc:
            return [
                Finding(
                    "ips", "error", "network.cidr", f"the VPC cannot be created: {exc}", "choose a larger network.cidr"
                )
            ]
        supply = plan.private_usable_ips
        sizes = ", ".join(str(n) for n in plan.private)
        source = (
            f"usable in the planned private subnets ({sizes}; AWS reserves {AWS_RESERVED_PER_SUBNET} addresses in each)"
        )
        fix_more = "choose a larger network.cidr"
    per_node = f"at {IPS_PER_NODE} per node (the VPC CNI gives every pod an address)"
    addresses = (
        f"about {demand} addresses: {nodes * IPS_PER_NODE} {per_node} and {efa_text}"
        if efa
        else f"about {demand} addresses {per_node}"
    )
    need = f"the stack may run {nodes} nodes ({breakdown}), {addresses}, and {supply} are {source}"
    fix = f"{fix_more}, or lower gpu_pools.*.max_gpus, cpu_pool.max_vcpus or cluster.system_node_group.max_size"
    if demand > supply:
        return [
            Finding("ips", "error", "network", f"nodes and pods will fail to get addresses at full scale: {need}", fix)
        ]
    if demand > IP_WARNING_RATIO * supply:
        share = round(100 * demand / supply)
        return [
            Finding(
                "ips",
                "warning",
                "network",
                f"the subnets will be {share}% full at full scale, leaving little room for load balancers, "
                f"endpoints and other workloads: {need}",
                fix,
            )
        ]
    return [Finding("ips", "ok", "network", need)]


# --- account ----------------------------------------------------------------------------------------------------


def check_account(cfg: PlatformConfig, account: str) -> list[Finding]:
    if cfg.aws_account_id is None or cfg.aws_account_id == account:
        return []
    return [
        Finding(
            "account",
            "error",
            "aws_account_id",
            f"`pulumi up` will refuse to run: the stack allows only account {cfg.aws_account_id} and the credentials "
            f"are for {account}",
            "use credentials of the stack's account (AWS_PROFILE), or correct aws_account_id",
        )
    ]


# --- cluster access -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """An IAM principal as EKS access entries and IAM's simulator name it."""

    account: str
    kind: str  # "role" or "user"
    name: str
    arn: str
    """The IAM ARN (a session's role, without its path: STS does not say it)."""


def principal_of(arn: str) -> Principal | None:
    """The IAM role or user behind a caller or config ARN (`sts::A:assumed-role/R/session` is role R)."""
    match = re.match(r"^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(assumed-role|role|user)/(.+)$", arn)
    if match is None:
        return None
    partition, _service, account, kind, rest = match.groups()
    parts = rest.split("/")
    name = parts[0] if kind == "assumed-role" else parts[-1]
    kind = "role" if kind == "assumed-role" else kind
    iam_arn = f"arn:{partition}:iam::{account}:{kind}/{name}" if _service == "sts" else arn
    return Principal(account=account, kind=kind, name=name, arn=iam_arn)


def _same_principal(a: Principal, b: Principal) -> bool:
    # Access entries hold the role's ARN; a session's ARN does not carry the role's path: compare by name.
    return (a.account, a.kind, a.name) == (b.account, b.kind, b.name)


def _cluster_admins(cfg: PlatformConfig) -> list[str]:
    """The principals the cloud layer gives cluster-wide admin access entries, other than the runner."""
    admins = [a.principal_arn for a in cfg.cluster.admins if a.access_policy == "cluster-admin" and not a.namespaces]
    return [*cfg.cluster.deployers, *admins]


def check_cluster_access(cfg: PlatformConfig, stack: str, caller_arn: str, iam: Any, source: str = "") -> list[Finding]:
    """Which path deploys the cluster layer, and whether the caller will get through it."""
    caller = principal_of(caller_arn)
    where = source or f"stacks/Pulumi.{stack}.yaml"
    if cfg.runs_in_vpc_runner:
        return _runner_access(cfg, stack, caller_arn, caller, iam)
    admins = _cluster_admins(cfg)
    configured = [p for a in admins if (p := principal_of(a)) is not None]
    network = (
        "the API endpoint is public (from cluster.endpoint.public_cidrs)"
        if cfg.cluster.endpoint.public
        else "the API endpoint is private and the runner is off: your network must reach the VPC (VPN, Direct "
        "Connect); preflight cannot check routes"
    )
    if caller is not None and any(_same_principal(caller, p) for p in configured):
        return [
            Finding(
                "cluster-access",
                "ok",
                "cluster.deployers",
                f"you ({caller.arn}) get a cluster-admin access entry: run the cluster layer yourself "
                f"(`pulumi -C cluster up -s {stack}`); {network}",
            )
        ]
    suggestion = caller.arn if caller is not None else "the role you deploy as"
    return [
        Finding(
            "cluster-access",
            "error",
            "cluster.deployers",
            f"you ({caller_arn}) will get no access to the cluster: every Kubernetes call of the cluster layer's "
            "`pulumi up` would be Unauthorized (the cluster's creator gets no admin rights)",
            f"add {suggestion} to cluster.deployers in {where} and run `pulumi up -s {stack}` (the cloud layer), "
            f"or deploy as one of: {', '.join(admins) or '(none configured)'}",
        )
    ]


def _runner_access(
    cfg: PlatformConfig, stack: str, caller_arn: str, caller: Principal | None, iam: Any
) -> list[Finding]:
    from mlplatform.infra.runner.documents import project_name

    project = project_name(cfg.cluster_name)
    path = Finding(
        "cluster-access",
        "ok",
        "cluster.runner",
        f"the API endpoint is private: the cluster layer runs in the in-VPC runner (CodeBuild project {project}, "
        f"whose role has a cluster-admin access entry), started with `mlp runner {stack} up`",
    )

    def not_checked(why: str, fix: str = "") -> list[Finding]:
        return [path, Finding("cluster-access", "warning", "runner permissions", why, fix)]

    if caller is None:
        return not_checked(
            f"not checked: {caller_arn} is not an IAM role or user, so IAM's simulator cannot evaluate it"
        )
    partition = caller.arn.split(":")[1]
    project_arn = f"arn:{partition}:codebuild:{cfg.region}:{caller.account}:project/{project}"
    try:
        source_arn = caller.arn
        if caller.kind == "role":  # the simulator needs the role's ARN with its path
            source_arn = str(iam.get_role(RoleName=caller.name)["Role"]["Arn"])
        results = iam.simulate_principal_policy(
            PolicySourceArn=source_arn,
            ActionNames=list(RUNNER_ACTIONS),
            ResourceArns=[project_arn],
        )["EvaluationResults"]
    except Exception as exc:  # noqa: BLE001 - any failure means "not checked", said with the reason
        return not_checked(
            f"not checked whether you may start the runner ({_why(exc)})",
            "allow iam:GetRole and iam:SimulatePrincipalPolicy on yourself to let preflight check it",
        )
    denied = sorted(r["EvalActionName"] for r in results if r.get("EvalDecision") != "allowed")
    if denied:
        return [
            Finding(
                "cluster-access",
                "error",
                "runner permissions",
                f"you ({caller.arn}) may not start the in-VPC runner: {', '.join(denied)} denied on {project_arn}",
                f"grant {', '.join(RUNNER_ACTIONS)} on {project_arn} (whoever may start it is a cluster admin) and "
                "s3:PutObject on the artifacts bucket's deploy/cluster-layer/ prefix",
            )
        ]
    return [
        path,
        Finding("cluster-access", "ok", "runner permissions", f"you ({caller.arn}) may start and follow the runner"),
    ]


RUNNER_ACTIONS = ("codebuild:StartBuild", "codebuild:BatchGetBuilds")
"""What `mlp runner` calls on the project (besides uploading the source and reading the build's log)."""


# --- entry point ---------------------------------------------------------------------------------------------


def _sorted(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.check, f.subject)))


def run_preflight(
    cfg: PlatformConfig,
    ctx: AwsContext,
    progress: StepCallback | None = None,
    *,
    adopted_subnet_ids: Sequence[str] | None = None,
    adopted_cluster_name: str | None = None,
    stack: str = "",
    source: str = "",
) -> PreflightReport:
    """Run every check against the account of `ctx` (read-only). `adopted_subnet_ids`: the private subnets of an
    adopted network whose ids live in a Terraform state (the caller resolves them); `adopted_cluster_name`: the
    name of a cluster adopted from a Terraform state (default: `cfg.cluster_name`); `stack` and `source` (its stack
    file) appear in the fixes."""
    if ctx.region != cfg.region:
        raise ValueError(f"the stack deploys to {cfg.region} but the AWS context is for {ctx.region}; use {cfg.region}")
    step = progress or (lambda _text: None)
    step("checking the AWS credentials")
    account, caller = ctx.identity()
    findings: list[Finding] = check_account(cfg, account)
    step("checking your access to the cluster")
    access = check_cluster_access(cfg, stack or cfg.environment, caller, ctx.client("iam"), source)
    if any(f.severity == "error" for f in access):
        # Fail early: without cluster access the first `up` cannot finish, whatever the quotas say.
        return PreflightReport(cfg.region, account, _sorted([*findings, *access]), stopped_early=True)
    findings += access
    ec2 = ctx.client("ec2")
    if cfg.adopts_cluster:
        from mlplatform.mlp.preflight_cluster import check_adopted_cluster

        step("reading the adopted cluster")
        name = adopted_cluster_name or cfg.cluster_name
        findings += check_adopted_cluster(cfg, ctx.client("eks"), ec2, name, source)
    step("reading the stack's availability zones")
    network = resolve_network(cfg, ec2, adopted_subnet_ids)
    findings += network.findings
    step("reading the EC2 vCPU quotas")
    findings += check_quotas(cfg, ctx.client("service-quotas"))
    step("reading instance type offerings")
    findings += check_offerings(cfg, ec2, network)
    step("reading capacity reservations")
    findings += check_reservations(cfg, ec2, network)
    step("checking EFA")
    findings += check_efa(cfg, ec2, network)
    step("counting free IP addresses")
    findings += check_ips(cfg, network)
    return PreflightReport(region=cfg.region, account=account, findings=_sorted(findings))


# --- output --------------------------------------------------------------------------------------------------


def to_json(report: PreflightReport) -> dict[str, Any]:
    return {
        "region": report.region,
        "account": report.account,
        "ok": report.ok,
        "counts": report.counts(),
        "findings": [asdict(f) for f in report.findings],
    }


_STYLE = {"error": "bold red", "warning": "yellow", "ok": "green"}


def render_table(report: PreflightReport, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"preflight: account {report.account}, {report.region}", title_justify="left")
    for column in ("severity", "check", "subject", "what", "fix"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        table.add_row(f"[{_STYLE[f.severity]}]{f.severity}[/]", f.check, f.subject, f.message, f.fix)
    console.print(table)
    counts = report.counts()
    verdict = "[green]ready[/]" if report.ok else "[bold red]not ready[/]"
    console.print(f"{verdict}: {counts['error']} errors, {counts['warning']} warnings, {counts['ok']} ok")
