"""`mlp residue`: what a destroyed stack left behind that still costs money, and the removal of what holds no data.

`pulumi destroy` removes what Pulumi created, but not what controllers made on the stack's behalf (Karpenter nodes
and their volumes and network interfaces, load balancers and target groups of the AWS Load Balancer Controller),
nor what a stopped destroy left, nor what is retained on purpose. All of it carries the platform's tags
(`infra.tagging.platform_tags`, handed to Karpenter and the controller too), so it is found by them.

An item belongs to stack S when it carries BOTH `pulumi-stack=S` and `managed-by=pulumi/ml-platform`: stack names
like `dev` are common across projects, and a tool that deletes must not act on another project's resources.

Two kinds of item:
- deletable: instances, load balancers, target groups, NAT gateways, Elastic IPs, network interfaces, volumes,
  security groups, log groups. `delete_residue` removes them in dependency order, re-reading each one first, so a
  stale report is safe and a second run finds nothing to do.
- kept: S3 buckets, RDS instances and manual snapshots, KMS keys, EKS clusters. They hold data or long-lived
  state and may be retained on purpose (prod buckets, databases and clusters are retained on destroy); the tool
  never deletes them and the report says how to remove them by hand.

`find_residue` reads the account only; the CLI shows its report (a dry run) and calls `delete_residue` only when
asked to delete. Monthly figures are hints from the dated price data (`infra.cost`), None where it has no price.

Every call here runs against moto in tests/test_residue.py; AccessDenied and rejected credentials are simulated
with botocore's Stubber (moto accepts any credentials).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlplatform.infra.catalog.prices import HOURS_PER_MONTH, ec2_on_demand_price
from mlplatform.infra.constants import PROJECT
from mlplatform.infra.cost.estimate import rds_price, service_price
from mlplatform.mlp.aws import AwsContext, StepCallback, aws_errors, aws_exceptions, describe_aws_error, paginate

if TYPE_CHECKING:
    from rich.console import Console

STACK_TAG = "pulumi-stack"
MANAGED_BY_TAG = "managed-by"
MANAGED_BY = f"pulumi/{PROJECT}"

# Deletion order: what holds a dependency goes first (instances hold ENIs, volumes and security groups; load
# balancers hold target groups, ENIs and security groups; NAT gateways hold Elastic IPs and ENIs).
DELETE_ORDER: tuple[str, ...] = (
    "ec2-instance",
    "load-balancer",
    "target-group",
    "nat-gateway",
    "elastic-ip",
    "network-interface",
    "ebs-volume",
    "security-group",
    "log-group",
)
KEPT_ORDER: tuple[str, ...] = ("eks-cluster", "rds-instance", "rds-snapshot", "s3-bucket", "kms-key")
KIND_ORDER: tuple[str, ...] = DELETE_ORDER + KEPT_ORDER

KEPT_NOTES: Mapping[str, str] = {
    "eks-cluster": (
        "kept: a cluster left after destroy usually means the destroy stopped midway, or deletion protection "
        "retained it (prod); run `pulumi destroy` again, or delete its node groups and then "
        "`aws eks delete-cluster --name {id}`"
    ),
    "rds-instance": (
        "kept: a database (MLflow); deletion protection retains it on destroy in prod; to remove it: "
        "`aws rds modify-db-instance --db-instance-identifier {id} --no-deletion-protection --apply-immediately`, "
        "then `aws rds delete-db-instance --db-instance-identifier {id} --final-db-snapshot-identifier {id}-final`"
    ),
    "rds-snapshot": (
        "kept: a manual snapshot (the final snapshot taken on destroy is one), the database's last backup; to "
        "remove it: `aws rds delete-db-snapshot --db-snapshot-identifier {id}`"
    ),
    "s3-bucket": (
        "kept: holds data; prod buckets are retained on destroy on purpose; to remove it after checking its "
        "contents: delete every object version, then `aws s3 rb s3://{id}`"
    ),
    "kms-key": (
        "kept: may encrypt retained data (buckets, snapshots, state); deleting it makes that data unreadable; to "
        "remove it: `aws kms schedule-key-deletion --key-id {id} --pending-window-in-days 30`"
    ),
}

LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
WAIT_DELAY_S = 5
WAIT_ATTEMPTS = 120  # 10 minutes: instances and NAT gateways usually go in 1-3

_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ResidueItem:
    kind: str  # one of KIND_ORDER
    id: str  # what the delete call takes: instance id, ARN (load balancers, target groups), name (log groups)
    name: str  # a human label: the Name tag, the resource's own name, or a short description
    region: str
    state: str
    deletable: bool
    monthly_usd: float | None  # a hint; None where the price data has no price for it
    note: str  # for kept items: why and how to remove by hand; for others: what may block deletion

    @property
    def kept(self) -> bool:
        return not self.deletable


@dataclass(frozen=True)
class ResidueReport:
    stack: str
    account: str
    region: str
    items: tuple[ResidueItem, ...]
    warnings: tuple[str, ...] = ()  # what could not be checked, and why

    @property
    def deletable(self) -> tuple[ResidueItem, ...]:
        return tuple(item for item in self.items if item.deletable)

    @property
    def kept(self) -> tuple[ResidueItem, ...]:
        return tuple(item for item in self.items if item.kept)

    @property
    def monthly_usd(self) -> float:
        """The sum of the items that have a price (see `unpriced`)."""
        return round(sum(item.monthly_usd or 0.0 for item in self.items), 2)

    @property
    def unpriced(self) -> int:
        return sum(1 for item in self.items if item.monthly_usd is None)


@dataclass(frozen=True)
class DeletionResult:
    kind: str
    id: str
    name: str
    outcome: str  # "deleted" | "skipped" | "failed"
    message: str


# --- finding ----------------------------------------------------------------------------------------------------


def find_residue(ctx: AwsContext, stack: str, progress: StepCallback | None = None) -> ResidueReport:
    """Every billable item in ctx's region (S3 buckets: any region) tagged for `stack` by this platform."""
    if not _STACK_NAME.match(stack):
        raise ValueError(f"stack name {stack!r} is not valid: use letters, digits, '-', '_' and '.'")
    account = ctx.account_id()
    scan = _Scan(ctx, stack, progress or _no_progress)
    items: list[ResidueItem] = []
    # Each listing names itself in its error; this catches what a per-item read lets through (a lost connection).
    with aws_errors(f"finding the residue of stack {stack}"):
        for finder in _FINDERS:
            items.extend(finder(scan))
    items.sort(key=lambda item: (KIND_ORDER.index(item.kind), item.id))
    kinds = {item.kind for item in items}
    if "eks-cluster" in kinds and "ec2-instance" in kinds:
        scan.warnings.append(
            "an EKS cluster of the stack still exists: Karpenter on it may replace terminated nodes; "
            "delete the cluster (run `pulumi destroy` again) before deleting the residue"
        )
    return ResidueReport(
        stack=stack, account=account, region=ctx.region, items=tuple(items), warnings=tuple(scan.warnings)
    )


def _no_progress(_text: str) -> None:
    return None


class _Scan:
    """What every finder needs: the clients, the stack's tag test, and a place for what could not be checked."""

    def __init__(self, ctx: AwsContext, stack: str, step: StepCallback) -> None:
        self.ctx = ctx
        self.stack = stack
        self.region = ctx.region
        self.step = step
        self.warnings: list[str] = []

    def matches(self, tags: Mapping[str, str]) -> bool:
        return tags.get(STACK_TAG) == self.stack and tags.get(MANAGED_BY_TAG) == MANAGED_BY

    def ec2_filters(self) -> list[dict[str, Any]]:
        # Server-side narrowing only; `matches` decides (filters treat * and ? as wildcards).
        return [
            {"Name": f"tag:{STACK_TAG}", "Values": [self.stack]},
            {"Name": f"tag:{MANAGED_BY_TAG}", "Values": [MANAGED_BY]},
        ]

    def item(
        self,
        kind: str,
        item_id: str,
        name: str,
        state: str,
        monthly_usd: float | None,
        note: str = "",
        region: str | None = None,
    ) -> ResidueItem:
        deletable = kind in DELETE_ORDER
        return ResidueItem(
            kind=kind,
            id=item_id,
            name=name,
            region=region or self.region,
            state=state,
            deletable=deletable,
            monthly_usd=None if monthly_usd is None else round(monthly_usd, 2),
            note=note if deletable else KEPT_NOTES[kind].format(id=item_id),
        )

    def unreadable(self, exc: BaseException, what: str) -> None:
        self.warnings.append(describe_aws_error(exc, f"reading the tags of {what}") + "; not checked")


def _tag_map(tags: Iterable[Mapping[str, Any]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {str(tag[key]): str(tag.get(value, "")) for tag in tags or ()}


def _monthly(hourly: float | None) -> float | None:
    return None if hourly is None else hourly * HOURS_PER_MONTH


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    cls: type[Exception] = ClientError
    return cls


def _find_instances(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding EC2 instances")
    ec2 = scan.ctx.client("ec2")
    filters = [*scan.ec2_filters(), {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}]
    with aws_errors("listing EC2 instances"):
        reservations = list(paginate(ec2, "describe_instances", "Reservations", Filters=filters))
    items = []
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            tags = _tag_map(instance.get("Tags"))
            state = instance["State"]["Name"]
            if not scan.matches(tags) or state not in LIVE_INSTANCE_STATES:
                continue
            instance_type = instance.get("InstanceType", "")
            # A stopped instance bills only its volumes, which are items of their own.
            running = state in ("pending", "running")
            monthly = _monthly(ec2_on_demand_price(instance_type, scan.region)) if running else 0.0
            items.append(
                scan.item(
                    "ec2-instance", instance["InstanceId"], tags.get("Name", ""), f"{state} ({instance_type})", monthly
                )
            )
    return items


def _find_volumes(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding EBS volumes")
    ec2 = scan.ctx.client("ec2")
    with aws_errors("listing EBS volumes"):
        volumes = list(paginate(ec2, "describe_volumes", "Volumes", Filters=scan.ec2_filters()))
    items = []
    for volume in volumes:
        tags = _tag_map(volume.get("Tags"))
        if not scan.matches(tags) or volume.get("State") in ("deleting", "deleted"):
            continue
        size = int(volume.get("Size", 0))
        gp3 = service_price(scan.region, "ebs_gp3_gb_month")
        monthly = size * gp3 if volume.get("VolumeType") == "gp3" and gp3 is not None else None
        attached = [a["InstanceId"] for a in volume.get("Attachments", []) if a.get("InstanceId")]
        note = f"attached to {', '.join(attached)}: deleted once available" if attached else ""
        items.append(
            scan.item(
                "ebs-volume",
                volume["VolumeId"],
                tags.get("Name", f"{size} GiB {volume.get('VolumeType', '')}".strip()),
                str(volume.get("State", "")),
                monthly,
                note,
            )
        )
    return items


def _find_network_interfaces(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding network interfaces")
    ec2 = scan.ctx.client("ec2")
    with aws_errors("listing network interfaces"):
        enis = list(paginate(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=scan.ec2_filters()))
    items = []
    for eni in enis:
        tags = _tag_map(eni.get("TagSet"))
        if not scan.matches(tags):
            continue
        note = ""
        if eni.get("RequesterManaged"):
            note = "managed by an AWS service: it goes away with the load balancer or gateway that owns it"
        elif eni.get("Status") != "available":
            note = "in use: deleted once available"
        items.append(
            scan.item(
                "network-interface",
                eni["NetworkInterfaceId"],
                tags.get("Name", eni.get("Description", "")),
                str(eni.get("Status", "")),
                0.0,
                note,
            )
        )
    return items


def _find_addresses(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding Elastic IPs")
    ec2 = scan.ctx.client("ec2")
    with aws_errors("listing Elastic IPs"):
        addresses = ec2.describe_addresses(Filters=scan.ec2_filters()).get("Addresses", [])
    items = []
    for address in addresses:
        tags = _tag_map(address.get("Tags"))
        if not scan.matches(tags):
            continue
        holder = address.get("NetworkInterfaceId") or address.get("InstanceId") or ""
        associated = bool(address.get("AssociationId") or holder)
        items.append(
            scan.item(
                "elastic-ip",
                address["AllocationId"],
                tags.get("Name", address.get("PublicIp", "")),
                "associated" if associated else "unassociated",
                _monthly(service_price(scan.region, "public_ipv4_hour")),
                f"associated with {holder}: released once free" if associated else "",
            )
        )
    return items


def _find_nat_gateways(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding NAT gateways")
    ec2 = scan.ctx.client("ec2")
    filters = [*scan.ec2_filters(), {"Name": "state", "Values": ["pending", "available"]}]
    with aws_errors("listing NAT gateways"):
        gateways = list(paginate(ec2, "describe_nat_gateways", "NatGateways", Filter=filters))
    items = []
    for gateway in gateways:
        tags = _tag_map(gateway.get("Tags"))
        if not scan.matches(tags) or gateway.get("State") not in ("pending", "available"):
            continue
        items.append(
            scan.item(
                "nat-gateway",
                gateway["NatGatewayId"],
                tags.get("Name", gateway.get("SubnetId", "")),
                str(gateway.get("State", "")),
                _monthly(service_price(scan.region, "nat_gateway_hour")),
            )
        )
    return items


def _elbv2_tags(scan: _Scan, arns: Sequence[str], what: str) -> dict[str, dict[str, str]]:
    elbv2 = scan.ctx.client("elbv2")
    tags: dict[str, dict[str, str]] = {}
    with aws_errors(f"reading the tags of {what}"):
        for start in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
            response = elbv2.describe_tags(ResourceArns=list(arns[start : start + 20]))
            for description in response.get("TagDescriptions", []):
                tags[description["ResourceArn"]] = _tag_map(description.get("Tags"))
    return tags


def _find_load_balancers(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding load balancers")
    elbv2 = scan.ctx.client("elbv2")
    with aws_errors("listing load balancers"):
        balancers = list(paginate(elbv2, "describe_load_balancers", "LoadBalancers"))
    tags = _elbv2_tags(scan, [lb["LoadBalancerArn"] for lb in balancers], "load balancers")
    prices = {"application": "alb_hour", "network": "nlb_hour"}
    items = []
    for lb in balancers:
        arn = lb["LoadBalancerArn"]
        if not scan.matches(tags.get(arn, {})):
            continue
        lb_type = str(lb.get("Type", ""))
        price_key = prices.get(lb_type)
        items.append(
            scan.item(
                "load-balancer",
                arn,
                lb["LoadBalancerName"],
                f"{lb.get('State', {}).get('Code', '')} ({lb_type})",
                _monthly(service_price(scan.region, price_key)) if price_key else None,
            )
        )
    return items


def _find_target_groups(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding target groups")
    elbv2 = scan.ctx.client("elbv2")
    with aws_errors("listing target groups"):
        groups = list(paginate(elbv2, "describe_target_groups", "TargetGroups"))
    tags = _elbv2_tags(scan, [tg["TargetGroupArn"] for tg in groups], "target groups")
    items = []
    for tg in groups:
        arn = tg["TargetGroupArn"]
        if not scan.matches(tags.get(arn, {})):
            continue
        users = len(tg.get("LoadBalancerArns", []))
        items.append(
            scan.item(
                "target-group",
                arn,
                tg["TargetGroupName"],
                f"used by {users} load balancer(s)" if users else "unused",
                0.0,
            )
        )
    return items


def _find_security_groups(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding security groups")
    ec2 = scan.ctx.client("ec2")
    with aws_errors("listing security groups"):
        groups = list(paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=scan.ec2_filters()))
    items = []
    for group in groups:
        tags = _tag_map(group.get("Tags"))
        # A VPC's default group cannot be deleted; it goes with its VPC.
        if not scan.matches(tags) or group.get("GroupName") == "default":
            continue
        items.append(
            scan.item(
                "security-group", group["GroupId"], group.get("GroupName", ""), f"in {group.get('VpcId', '')}", 0.0
            )
        )
    return items


def _find_log_groups(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding log groups")
    logs = scan.ctx.client("logs")
    with aws_errors("listing log groups"):
        groups = list(paginate(logs, "describe_log_groups", "logGroups"))
    items = []
    for group in groups:
        name = group["logGroupName"]
        arn = group.get("logGroupArn") or str(group.get("arn", "")).removesuffix(":*")
        try:
            tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        except _client_error() as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                scan.unreadable(exc, f"log group {name}")
            continue
        if not scan.matches(tags):
            continue
        items.append(scan.item("log-group", name, name, f"{_size(int(group.get('storedBytes', 0)))} stored", None))
    return items


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _find_eks_clusters(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding EKS clusters")
    eks = scan.ctx.client("eks")
    with aws_errors("listing EKS clusters"):
        names = list(paginate(eks, "list_clusters", "clusters"))
    items = []
    for name in names:
        try:
            cluster = eks.describe_cluster(name=name)["cluster"]
        except _client_error() as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                scan.unreadable(exc, f"EKS cluster {name}")
            continue
        if not scan.matches(cluster.get("tags", {})):
            continue
        support = str(cluster.get("upgradePolicy", {}).get("supportType", "STANDARD"))
        items.append(
            scan.item(
                "eks-cluster",
                name,
                name,
                str(cluster.get("status", "")),
                _monthly(service_price(scan.region, "eks_cluster_hour", support)),
            )
        )
    return items


def _rds_tags(scan: _Scan, resource: Mapping[str, Any], arn_key: str, what: str) -> dict[str, str] | None:
    if "TagList" in resource:
        return _tag_map(resource["TagList"])
    try:
        response = scan.ctx.client("rds").list_tags_for_resource(ResourceName=resource[arn_key])
    except _client_error() as exc:
        scan.unreadable(exc, what)
        return None
    return _tag_map(response.get("TagList"))


def _find_rds_instances(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding RDS instances")
    rds = scan.ctx.client("rds")
    with aws_errors("listing RDS instances"):
        instances = list(paginate(rds, "describe_db_instances", "DBInstances"))
    items = []
    for db in instances:
        identifier = db["DBInstanceIdentifier"]
        tags = _rds_tags(scan, db, "DBInstanceArn", f"RDS instance {identifier}")
        if tags is None or not scan.matches(tags) or db.get("DBInstanceStatus") == "deleting":
            continue
        db_class = str(db.get("DBInstanceClass", ""))
        multi_az = bool(db.get("MultiAZ"))
        hourly, _how = rds_price(scan.region, db_class, multi_az)
        monthly = _monthly(hourly)
        storage = service_price(scan.region, "rds_gp3_gb_month", "multi_az" if multi_az else "single_az")
        if monthly is not None and db.get("StorageType") == "gp3" and storage is not None:
            monthly += int(db.get("AllocatedStorage", 0)) * storage
        items.append(
            scan.item(
                "rds-instance",
                identifier,
                f"{db.get('Engine', '')} {db_class}".strip(),
                str(db.get("DBInstanceStatus", "")),
                monthly,
            )
        )
    return items


def _find_rds_snapshots(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding RDS snapshots")
    rds = scan.ctx.client("rds")
    with aws_errors("listing RDS snapshots"):
        snapshots = list(paginate(rds, "describe_db_snapshots", "DBSnapshots", SnapshotType="manual"))
    items = []
    for snapshot in snapshots:
        identifier = snapshot["DBSnapshotIdentifier"]
        tags = _rds_tags(scan, snapshot, "DBSnapshotArn", f"RDS snapshot {identifier}")
        if tags is None or not scan.matches(tags) or snapshot.get("Status") == "deleting":
            continue
        source = snapshot.get("DBInstanceIdentifier", "")
        items.append(
            scan.item(
                "rds-snapshot",
                identifier,
                f"of {source}, {snapshot.get('AllocatedStorage', 0)} GiB",
                str(snapshot.get("Status", "")),
                None,
            )
        )
    return items


def _find_buckets(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding S3 buckets")
    s3 = scan.ctx.client("s3")
    with aws_errors("listing S3 buckets"):
        buckets = [bucket["Name"] for bucket in paginate(s3, "list_buckets", "Buckets")]
    items = []
    for name in sorted(buckets):
        try:
            tags = _tag_map(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
        except _client_error() as exc:
            code = _error_code(exc)
            if code not in ("NoSuchTagSet", "NoSuchBucket"):
                scan.unreadable(exc, f"S3 bucket {name}")
            continue
        if not scan.matches(tags):
            continue
        with aws_errors(f"reading the region of S3 bucket {name}"):
            location = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
        # GetBucketLocation answers None for us-east-1 and "EU" for the oldest eu-west-1 buckets.
        region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, str(location))
        items.append(scan.item("s3-bucket", name, name, "", None, region=region))
    return items


def _find_kms_keys(scan: _Scan) -> list[ResidueItem]:
    scan.step("finding KMS keys")
    kms = scan.ctx.client("kms")
    with aws_errors("listing KMS keys"):
        keys = [key["KeyId"] for key in paginate(kms, "list_keys", "Keys")]
        aliases: dict[str, list[str]] = {}
        for alias in paginate(kms, "list_aliases", "Aliases"):
            if alias.get("TargetKeyId"):
                aliases.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    items = []
    for key_id in sorted(keys):
        try:
            tags = _tag_map(kms.list_resource_tags(KeyId=key_id).get("Tags"), "TagKey", "TagValue")
            if not scan.matches(tags):
                continue
            metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except _client_error() as exc:
            if _error_code(exc) != "NotFoundException":
                scan.unreadable(exc, f"KMS key {key_id}")
            continue
        state = str(metadata.get("KeyState", ""))
        if state in ("PendingDeletion", "PendingReplicaDeletion") or metadata.get("KeyManager") == "AWS":
            continue
        name = ", ".join(sorted(aliases.get(key_id, []))) or str(metadata.get("Description", ""))
        items.append(scan.item("kms-key", key_id, name, state, service_price(scan.region, "kms_key_month")))
    return items


_FINDERS: tuple[Callable[[_Scan], list[ResidueItem]], ...] = (
    _find_instances,
    _find_load_balancers,
    _find_target_groups,
    _find_nat_gateways,
    _find_addresses,
    _find_network_interfaces,
    _find_volumes,
    _find_security_groups,
    _find_log_groups,
    _find_eks_clusters,
    _find_rds_instances,
    _find_rds_snapshots,
    _find_buckets,
    _find_kms_keys,
)


# --- deleting ---------------------------------------------------------------------------------------------------


def delete_residue(
    ctx: AwsContext, report: ResidueReport, progress: StepCallback | None = None
) -> list[DeletionResult]:
    """Delete the report's deletable items in dependency order; one result per item of the report.

    Each item is read again first: what is gone is skipped ("already deleted"), what is still attached is skipped
    with the reason, and a failure is recorded and the rest goes on. Kept items are skipped, never touched.
    """
    run = _Run(ctx, progress or _no_progress)
    by_kind: dict[str, list[ResidueItem]] = {}
    for item in report.deletable:
        by_kind.setdefault(item.kind, []).append(item)
    results: list[DeletionResult] = []
    for kind in DELETE_ORDER:
        items = sorted(by_kind.get(kind, []), key=lambda item: item.id)
        if items:
            results.extend(_guarded(run, items, _DELETERS[kind]))
    for item in report.kept:
        results.append(_result(item, "skipped", "kept: never deleted by this tool (see the report's note)"))
    return results


def _result(item: ResidueItem, outcome: str, message: str) -> DeletionResult:
    return DeletionResult(kind=item.kind, id=item.id, name=item.name, outcome=outcome, message=message)


def _failed(item: ResidueItem, exc: BaseException) -> DeletionResult:
    message = describe_aws_error(exc, f"deleting {item.kind} {item.id}")
    if _error_code(exc) in ("DependencyViolation", "ResourceInUse"):
        message += (
            "; something still uses it (AWS releases the network interfaces of deleted load balancers and NAT "
            "gateways a few minutes later): run again shortly"
        )
    return _result(item, "failed", message)


@dataclass
class _Run:
    """One deletion run: what every deleter needs, and what an earlier step learnt for a later one."""

    ctx: AwsContext
    step: StepCallback
    freed_addresses: set[str] = field(default_factory=set)  # Elastic IPs of NAT gateways deleted in this run


_Deleter = Callable[[_Run, Sequence[ResidueItem]], list[DeletionResult]]


def _guarded(run: _Run, items: Sequence[ResidueItem], delete: _Deleter) -> list[DeletionResult]:
    """A failed read (a listing, a waiter) fails this kind's items, and the other kinds go on."""
    try:
        return delete(run, items)
    except aws_exceptions() as exc:
        return [_failed(item, exc) for item in items]


def _delete_each(
    items: Sequence[ResidueItem],
    step: StepCallback,
    lookup: Callable[[ResidueItem], Mapping[str, Any] | None],
    delete: Callable[[ResidueItem], None],
    blocked: Callable[[Mapping[str, Any]], str | None] = lambda _found: None,
    done: str = "deleted",
) -> tuple[list[DeletionResult], list[ResidueItem]]:
    results: list[DeletionResult] = []
    deleted: list[ResidueItem] = []
    for item in items:
        step(f"deleting {item.kind} {item.id}")
        try:
            found = lookup(item)
            if found is None:
                results.append(_result(item, "skipped", "already deleted"))
                continue
            reason = blocked(found)
            if reason:
                results.append(_result(item, "skipped", reason))
                continue
            delete(item)
        except aws_exceptions() as exc:
            results.append(_failed(item, exc))
            continue
        results.append(_result(item, "deleted", done))
        deleted.append(item)
    return results, deleted


def _wait(client: Any, waiter: str, **kwargs: Any) -> bool:
    """Wait up to WAIT_DELAY_S * WAIT_ATTEMPTS seconds; False when that was not enough."""
    from botocore.exceptions import WaiterError

    try:
        client.get_waiter(waiter).wait(WaiterConfig={"Delay": WAIT_DELAY_S, "MaxAttempts": WAIT_ATTEMPTS}, **kwargs)
    except WaiterError:
        return False
    return True


def _one(found: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return found[0] if found else None


def _instance_states(ec2: Any, ids: Sequence[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    filters = [{"Name": "instance-id", "Values": list(ids)}]
    for reservation in paginate(ec2, "describe_instances", "Reservations", Filters=filters):
        for instance in reservation.get("Instances", []):
            states[instance["InstanceId"]] = instance["State"]["Name"]
    return states


def _delete_instances(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    ec2 = run.ctx.client("ec2")
    states = _instance_states(ec2, [item.id for item in items])
    results: list[DeletionResult] = []
    terminating: list[ResidueItem] = []
    for item in items:
        if states.get(item.id, "terminated") == "terminated":
            results.append(_result(item, "skipped", "already terminated"))
            continue
        run.step(f"terminating {item.id}")
        try:
            # One call per instance: termination protection on one must not stop the others.
            ec2.terminate_instances(InstanceIds=[item.id])
        except aws_exceptions() as exc:
            results.append(_failed(item, exc))
            continue
        terminating.append(item)
    if not terminating:
        return results
    run.step(f"waiting for {len(terminating)} instance(s) to terminate")
    ids = [item.id for item in terminating]
    # Volumes and interfaces are freed, and security groups unused, only once the instances are gone.
    _wait(ec2, "instance_terminated", InstanceIds=ids)  # the states read below say which are still going
    after = _instance_states(ec2, ids)
    for item in terminating:
        state = after.get(item.id, "terminated")
        if state == "terminated":
            results.append(_result(item, "deleted", "terminated"))
        else:
            waited = WAIT_DELAY_S * WAIT_ATTEMPTS
            results.append(
                _result(item, "failed", f"termination requested, still {state} after {waited} s: run again to check")
            )
    return results


def _delete_load_balancers(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    elbv2 = run.ctx.client("elbv2")

    def lookup(item: ResidueItem) -> Mapping[str, Any] | None:
        try:
            return _one(elbv2.describe_load_balancers(LoadBalancerArns=[item.id]).get("LoadBalancers", []))
        except _client_error() as exc:
            if _error_code(exc) == "LoadBalancerNotFound":
                return None
            raise

    results, deleted = _delete_each(
        items, run.step, lookup, lambda item: elbv2.delete_load_balancer(LoadBalancerArn=item.id)
    )
    if deleted:
        run.step(f"waiting for {len(deleted)} load balancer(s) to go")
        # Deletion was accepted; if they are slow to go, groups they used fail below and go on a later run.
        _wait(elbv2, "load_balancers_deleted", LoadBalancerArns=[item.id for item in deleted])
    return results


def _delete_target_groups(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    elbv2 = run.ctx.client("elbv2")

    def lookup(item: ResidueItem) -> Mapping[str, Any] | None:
        try:
            return _one(elbv2.describe_target_groups(TargetGroupArns=[item.id]).get("TargetGroups", []))
        except _client_error() as exc:
            if _error_code(exc) == "TargetGroupNotFound":
                return None
            raise

    results, _ = _delete_each(items, run.step, lookup, lambda item: elbv2.delete_target_group(TargetGroupArn=item.id))
    return results


def _delete_nat_gateways(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    ec2 = run.ctx.client("ec2")

    def lookup(item: ResidueItem) -> Mapping[str, Any] | None:
        filters = [{"Name": "nat-gateway-id", "Values": [item.id]}]
        found = _one(list(paginate(ec2, "describe_nat_gateways", "NatGateways", Filter=filters)))
        return None if found is None or found.get("State") in ("deleting", "deleted", "failed") else found

    allocations: dict[str, list[str]] = {}

    def delete(item: ResidueItem) -> None:
        ec2.delete_nat_gateway(NatGatewayId=item.id)

    def remember(item: ResidueItem) -> Mapping[str, Any] | None:
        found = lookup(item)
        if found is not None:
            allocations[item.id] = [
                a["AllocationId"] for a in found.get("NatGatewayAddresses", []) if a.get("AllocationId")
            ]
        return found

    results, deleted = _delete_each(items, run.step, remember, delete)
    if deleted:
        run.step(f"waiting for {len(deleted)} NAT gateway(s) to go")
        # A deleted gateway's Elastic IPs are disassociated (not released), but describe calls may show the old
        # association for a while: the next step releases them without trusting that read.
        if _wait(ec2, "nat_gateway_deleted", NatGatewayIds=[item.id for item in deleted]):
            for item in deleted:
                run.freed_addresses.update(allocations.get(item.id, []))
    return results


def _delete_addresses(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    ec2 = run.ctx.client("ec2")

    def lookup(item: ResidueItem) -> Mapping[str, Any] | None:
        filters = [{"Name": "allocation-id", "Values": [item.id]}]
        return _one(ec2.describe_addresses(Filters=filters).get("Addresses", []))

    def blocked(address: Mapping[str, Any]) -> str | None:
        holder = address.get("NetworkInterfaceId") or address.get("InstanceId")
        if address["AllocationId"] in run.freed_addresses:
            return None
        if address.get("AssociationId") or holder:
            return f"still associated with {holder or address.get('AssociationId')}: not released"
        return None

    results, _ = _delete_each(
        items, run.step, lookup, lambda item: ec2.release_address(AllocationId=item.id), blocked, "released"
    )
    return results


def _delete_network_interfaces(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    ec2 = run.ctx.client("ec2")

    def lookup(item: ResidueItem) -> Mapping[str, Any] | None:
        filters = [{"Name": "network-interface-id", "Values": [item.id]}]
        return _one(list(paginate(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters)))

    def blocked(eni: Mapping[str, Any]) -> str | None:
        if eni.get("RequesterManaged"):
            return "managed by an AWS service: it goes away with the load balancer or gateway that owns it"
        if eni.get("Status") != "available":
            owner = eni.get("Attachment", {}).get("InstanceId") or eni.get("Attachment", {}).get("InstanceOwnerId")
            return f"{eni.get('Status')}" + (f", attached to {owner}" if owner else "") + ": only available ones go"
        return None

    results, _ = _delete_each(
        items, run.step, lookup, lambda item: ec2.delete_network_interface(NetworkInterfaceId=item.id), blocked
    )
    return results


def _delete_volumes(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    ec2 = run.ctx.client("ec2")

    def lookup(item: ResidueItem) -> Mapping[str, Any] | None:
        filters = [{"Name": "volume-id", "Values": [item.id]}]
        found = _one(list(paginate(ec2, "describe_volumes", "Volumes", Filters=filters)))
        return None if found is None or found.get("State") in ("deleting", "deleted") else found

    def blocked(volume: Mapping[str, Any]) -> str | None:
        if volume.get("State") != "available":
            attached = ", ".join(a["InstanceId"] for a in volume.get("Attachments", []) if a.get("InstanceId"))
            return (
                f"{volume.get('State')}"
                + (f", attached to {attached}" if attached else "")
                + ": only available ones go"
            )
        return None

    results, _ = _delete_each(items, run.step, lookup, lambda item: ec2.delete_volume(VolumeId=item.id), blocked)
    return results


def _group_references(permissions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The parts of a group's rules that name other groups (what makes groups depend on each other)."""
    revoke = []
    for permission in permissions:
        pairs = [{"GroupId": pair["GroupId"]} for pair in permission.get("UserIdGroupPairs", []) if pair.get("GroupId")]
        if not pairs:
            continue
        rule: dict[str, Any] = {"IpProtocol": permission["IpProtocol"], "UserIdGroupPairs": pairs}
        for port in ("FromPort", "ToPort"):
            if port in permission:
                rule[port] = permission[port]
        revoke.append(rule)
    return revoke


def _delete_security_groups(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    ec2 = run.ctx.client("ec2")
    filters = [{"Name": "group-id", "Values": [item.id for item in items]}]
    groups = {g["GroupId"]: g for g in paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=filters)}
    results: list[DeletionResult] = []
    present: list[ResidueItem] = []
    for item in items:
        if item.id in groups:
            present.append(item)
        else:
            results.append(_result(item, "skipped", "already deleted"))
    # Groups of a stack reference each other (cluster <-> nodes): no group of a cycle can go while the rules
    # stand, so the references among them are revoked first. The groups are being deleted: nothing is lost.
    deletable: list[ResidueItem] = []
    for item in present:
        run.step(f"revoking rules that reference other groups in {item.id}")
        group = groups[item.id]
        try:
            ingress = _group_references(group.get("IpPermissions", []))
            if ingress:
                ec2.revoke_security_group_ingress(GroupId=item.id, IpPermissions=ingress)
            egress = _group_references(group.get("IpPermissionsEgress", []))
            if egress:
                ec2.revoke_security_group_egress(GroupId=item.id, IpPermissions=egress)
        except aws_exceptions() as exc:
            results.append(_failed(item, exc))
            continue
        deletable.append(item)
    for item in deletable:
        run.step(f"deleting security-group {item.id}")
        try:
            ec2.delete_security_group(GroupId=item.id)
        except aws_exceptions() as exc:
            if _error_code(exc) == "InvalidGroup.NotFound":
                results.append(_result(item, "skipped", "already deleted"))
            else:
                results.append(_failed(item, exc))
            continue
        results.append(_result(item, "deleted", "deleted"))
    return sorted(results, key=lambda result: result.id)


def _delete_log_groups(run: _Run, items: Sequence[ResidueItem]) -> list[DeletionResult]:
    logs = run.ctx.client("logs")

    def lookup(item: ResidueItem) -> Mapping[str, Any] | None:
        found = paginate(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=item.id)
        return next((group for group in found if group["logGroupName"] == item.id), None)

    results, _ = _delete_each(items, run.step, lookup, lambda item: logs.delete_log_group(logGroupName=item.id))
    return results


_DELETERS: Mapping[str, _Deleter] = {
    "ec2-instance": _delete_instances,
    "load-balancer": _delete_load_balancers,
    "target-group": _delete_target_groups,
    "nat-gateway": _delete_nat_gateways,
    "elastic-ip": _delete_addresses,
    "network-interface": _delete_network_interfaces,
    "ebs-volume": _delete_volumes,
    "security-group": _delete_security_groups,
    "log-group": _delete_log_groups,
}


# --- rendering --------------------------------------------------------------------------------------------------


def to_json(result: ResidueReport | Sequence[DeletionResult]) -> dict[str, Any]:
    """The report of `find_residue`, or the results of `delete_residue`, as JSON-ready data."""
    if isinstance(result, ResidueReport):
        return {
            "stack": result.stack,
            "account": result.account,
            "region": result.region,
            "match": {STACK_TAG: result.stack, MANAGED_BY_TAG: MANAGED_BY},
            "monthly_usd_hint": result.monthly_usd,
            "unpriced_items": result.unpriced,
            "counts": {"deletable": len(result.deletable), "kept": len(result.kept)},
            "items": [
                {
                    "kind": item.kind,
                    "id": item.id,
                    "name": item.name,
                    "region": item.region,
                    "state": item.state,
                    "disposition": "deletable" if item.deletable else "kept",
                    "monthly_usd_hint": item.monthly_usd,
                    "note": item.note,
                }
                for item in result.items
            ],
            "warnings": list(result.warnings),
        }
    counts = dict.fromkeys(("deleted", "skipped", "failed"), 0)
    for deletion in result:
        counts[deletion.outcome] = counts.get(deletion.outcome, 0) + 1
    return {
        "counts": counts,
        "results": [
            {"kind": r.kind, "id": r.id, "name": r.name, "outcome": r.outcome, "message": r.message} for r in result
        ],
    }


def render_table(result: ResidueReport | Sequence[DeletionResult], console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    if isinstance(result, ResidueReport):
        title = f"residue of stack {result.stack} (account {result.account}, {result.region})"
        if not result.items:
            console.print(f"{escape(title)}: nothing found")
        else:
            table = Table(title=title, title_justify="left")
            for column in ("kind", "id", "name", "region", "state", "action", "$/month", "note"):
                table.add_column(column, justify="right" if column == "$/month" else "left", overflow="fold")
            for item in result.items:
                table.add_row(
                    item.kind,
                    escape(item.id),
                    escape(item.name),
                    item.region,
                    escape(item.state),
                    "delete" if item.deletable else "[yellow]keep[/yellow]",
                    "?" if item.monthly_usd is None else f"{item.monthly_usd:,.2f}",
                    escape(item.note),
                )
            console.print(table)
            unpriced = f" ({result.unpriced} item(s) without a price)" if result.unpriced else ""
            console.print(
                f"{len(result.deletable)} deletable, {len(result.kept)} kept; "
                f"about ${result.monthly_usd:,.2f}/month{unpriced}"
            )
        for warning in result.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
        return
    table = Table(title="residue deletion", title_justify="left")
    for column in ("kind", "id", "name", "outcome", "message"):
        table.add_column(column, overflow="fold")
    styles = {"deleted": "green", "skipped": "yellow", "failed": "red"}
    for deletion in result:
        style = styles.get(deletion.outcome, "")
        table.add_row(
            deletion.kind,
            escape(deletion.id),
            escape(deletion.name),
            f"[{style}]{deletion.outcome}[/{style}]",
            escape(deletion.message),
        )
    console.print(table)
    counts = to_json(result)["counts"]
    console.print(f"{counts['deleted']} deleted, {counts['skipped']} skipped, {counts['failed']} failed")
