"""`mlp audit-tags [--fix]`: find the resources of one account and region that lack the required cost tags, and tag
them from a mapping file.

What this module owns:

- `audit`: reads every resource of the kinds in `KINDS` through its own service's API (EC2, S3, RDS, EKS, ELBv2)
  and reports those where a required key is absent or has an empty value. Keys are compared exactly, so
  `Cost-Center` does not satisfy `cost-center`. The Resource Groups Tagging API is not used: it lists only
  resources that are or were tagged (a never-tagged resource is invisible to it) and it misses EKS node groups.
  A kind that cannot be read (permission denied, say) is reported in `AuditReport.errors`; the others are still
  scanned, and the report says it is incomplete.
- `load_mapping` / `parse_mapping`: the mapping file (YAML or JSON) that says which values to fill in:

      defaults:                      # used for every resource
        cost-center: ml-platform
        team: ml
      resources:                     # per resource (the report's `id`: an ARN, an EC2 id or a bucket name);
        arn:aws:rds:us-east-1:123456789012:db:mlflow:   # its values override the defaults
          team: data

- `plan_fix`: per flagged resource, the missing required keys the mapping can fill (an existing non-empty tag is
  never changed) and the keys it cannot (`unfixable`).
- `apply_fix`: applies a plan through each service's own tagging call; one failure does not stop the rest, and
  each change records whether it was applied or why not. S3 replaces a bucket's whole tag set, so the new keys
  are merged into the bucket's current tags, read just before writing.

Which resources are read: EC2 instances that are not terminated or shutting down; EBS volumes; network interfaces
except requester-managed ones (created and replaced by ELB, RDS, NAT gateways, VPC endpoints or the EKS control
plane, which are audited themselves); S3 buckets whose location is the context's region; RDS DB instances and DB
clusters; EKS clusters and their managed node groups; ELBv2 (application, network, gateway) load balancers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplatform.infra.config_errors import ConfigError, ConfigIssue
from mlplatform.infra.tagging.rules import tag_problems
from mlplatform.mlp.aws import AwsContext, StepCallback, aws_errors, paginate
from mlplatform.mlp.errors import AccountError

if TYPE_CHECKING:
    from rich.console import Console

# Every kind the audit reads, in report order, with the words used in progress lines and messages.
KINDS: dict[str, str] = {
    "ec2:instance": "EC2 instances",
    "ec2:volume": "EBS volumes",
    "ec2:network-interface": "EC2 network interfaces",
    "s3:bucket": "S3 buckets",
    "rds:db": "RDS DB instances",
    "rds:cluster": "RDS DB clusters",
    "eks:cluster": "EKS clusters",
    "eks:nodegroup": "EKS managed node groups",
    "elbv2:loadbalancer": "ELBv2 load balancers",
}
# Instances in these states still exist (and cost money or hold volumes); terminated ones are gone.
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
ELBV2_TAG_BATCH = 20  # DescribeTags takes at most 20 ARNs
MAPPING_SHAPE = "expected {defaults: {KEY: VALUE}, resources: {ID_OR_ARN: {KEY: VALUE}}}"


# --- results ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A resource that lacks at least one required tag (absent, or present with an empty value)."""

    kind: str
    id: str  # the ARN where the service has one (RDS, EKS, ELBv2), else the EC2 id or the bucket name
    name: str  # the Name tag, else the resource's own name (or its id)
    tags: dict[str, str]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class AuditReport:
    region: str
    account: str
    required: tuple[str, ...]
    scanned: dict[str, int]  # resources read per kind (kinds that failed are absent)
    findings: tuple[Finding, ...]
    errors: dict[str, str] = field(default_factory=dict)  # kind -> why it could not be read

    @property
    def complete(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class TagMapping:
    """Tag values to fill in: defaults for every resource, overridden per resource id."""

    defaults: dict[str, str] = field(default_factory=dict)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = ""

    def values_for(self, resource_id: str) -> dict[str, str]:
        return {**self.defaults, **self.resources.get(resource_id, {})}


@dataclass(frozen=True)
class TagChange:
    """The tags to add to one resource, and after `apply_fix`, whether that worked."""

    kind: str
    id: str
    name: str
    add: dict[str, str]  # missing required keys the mapping fills
    unfixable: tuple[str, ...] = ()  # missing required keys the mapping has no value for
    applied: bool = False
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        if self.applied:
            return "applied"
        return "planned" if self.add else "unfixable"


class MappingError(ConfigError):
    """A tag mapping file that cannot be used, with every problem and its key (a ConfigError: bad input)."""

    def __str__(self) -> str:
        lines = [f"{self.source}: invalid tag mapping, {len(self.issues)} problem(s) ({MAPPING_SHAPE}):"]
        for issue in self.issues:
            where = f"{self.source}:{issue.line}" if issue.line else self.source
            key = _key_path(issue.path)
            lines.append(f"  {where}: {key}: {issue.message}" if key else f"  {where}: {issue.message}")
        return "\n".join(lines)


def _key_path(path: Sequence[str | int]) -> str:
    # Resource ids may contain dots (bucket names), so they are quoted.
    text = ""
    for depth, part in enumerate(path):
        if depth == 1 and path[0] == "resources":
            text += f'["{part}"]'
        else:
            text += f".{part}" if text else str(part)
    return text


# --- audit --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resource:
    kind: str
    id: str
    name: str
    tags: dict[str, str]


def _tag_dict(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    # S3 (and moto) leave out `Value` when it is empty.
    return {str(item["Key"]): str(item.get("Value") or "") for item in items or []}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _ec2_instances(ctx: AwsContext) -> Iterator[_Resource]:
    filters = [{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
    for reservation in paginate(ctx.client("ec2"), "describe_instances", "Reservations", Filters=filters):
        for instance in reservation.get("Instances", []):
            tags = _tag_dict(instance.get("Tags"))
            yield _Resource("ec2:instance", instance["InstanceId"], tags.get("Name") or instance["InstanceId"], tags)


def _ebs_volumes(ctx: AwsContext) -> Iterator[_Resource]:
    for volume in paginate(ctx.client("ec2"), "describe_volumes", "Volumes"):
        tags = _tag_dict(volume.get("Tags"))
        yield _Resource("ec2:volume", volume["VolumeId"], tags.get("Name") or volume["VolumeId"], tags)


def _network_interfaces(ctx: AwsContext) -> Iterator[_Resource]:
    for eni in paginate(ctx.client("ec2"), "describe_network_interfaces", "NetworkInterfaces"):
        if eni.get("RequesterManaged"):
            continue  # its service replaces it at will; the owning resource is audited instead
        tags = _tag_dict(eni.get("TagSet"))
        eni_id = eni["NetworkInterfaceId"]
        yield _Resource("ec2:network-interface", eni_id, tags.get("Name") or eni_id, tags)


def _bucket_region(location: Mapping[str, Any]) -> str:
    constraint = location.get("LocationConstraint") or "us-east-1"
    return "eu-west-1" if constraint == "EU" else str(constraint)


def _bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    from botocore.exceptions import ClientError

    try:
        return _tag_dict(s3.get_bucket_tagging(Bucket=bucket).get("TagSet"))
    except ClientError as exc:
        if _error_code(exc) == "NoSuchTagSet":
            return {}
        raise


def _s3_buckets(ctx: AwsContext) -> Iterator[_Resource]:
    from botocore.exceptions import ClientError

    s3 = ctx.client("s3")
    for bucket in paginate(s3, "list_buckets", "Buckets"):
        name = bucket["Name"]
        with aws_errors(f"reading S3 bucket {name}"):
            try:
                if _bucket_region(s3.get_bucket_location(Bucket=name)) != ctx.region:
                    continue
                tags = _bucket_tags(s3, name)
            except ClientError as exc:
                if _error_code(exc) == "NoSuchBucket":
                    continue  # deleted since it was listed
                raise
        yield _Resource("s3:bucket", name, tags.get("Name") or name, tags)


def _rds_instances(ctx: AwsContext) -> Iterator[_Resource]:
    for db in paginate(ctx.client("rds"), "describe_db_instances", "DBInstances"):
        tags = _tag_dict(db.get("TagList"))
        yield _Resource("rds:db", db["DBInstanceArn"], tags.get("Name") or db["DBInstanceIdentifier"], tags)


def _rds_clusters(ctx: AwsContext) -> Iterator[_Resource]:
    for cluster in paginate(ctx.client("rds"), "describe_db_clusters", "DBClusters"):
        tags = _tag_dict(cluster.get("TagList"))
        name = tags.get("Name") or cluster["DBClusterIdentifier"]
        yield _Resource("rds:cluster", cluster["DBClusterArn"], name, tags)


def _eks_clusters(ctx: AwsContext) -> Iterator[_Resource]:
    eks = ctx.client("eks")
    for name in paginate(eks, "list_clusters", "clusters"):
        cluster = eks.describe_cluster(name=name)["cluster"]
        tags = {str(k): str(v or "") for k, v in (cluster.get("tags") or {}).items()}
        yield _Resource("eks:cluster", cluster["arn"], tags.get("Name") or name, tags)


def _eks_nodegroups(ctx: AwsContext) -> Iterator[_Resource]:
    eks = ctx.client("eks")
    for cluster in paginate(eks, "list_clusters", "clusters"):
        for group in paginate(eks, "list_nodegroups", "nodegroups", clusterName=cluster):
            nodegroup = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group)["nodegroup"]
            tags = {str(k): str(v or "") for k, v in (nodegroup.get("tags") or {}).items()}
            name = tags.get("Name") or f"{cluster}/{group}"
            yield _Resource("eks:nodegroup", nodegroup["nodegroupArn"], name, tags)


def _load_balancers(ctx: AwsContext) -> Iterator[_Resource]:
    elbv2 = ctx.client("elbv2")
    balancers = list(paginate(elbv2, "describe_load_balancers", "LoadBalancers"))
    for start in range(0, len(balancers), ELBV2_TAG_BATCH):
        batch = balancers[start : start + ELBV2_TAG_BATCH]
        described = elbv2.describe_tags(ResourceArns=[lb["LoadBalancerArn"] for lb in batch])["TagDescriptions"]
        tags_by_arn = {d["ResourceArn"]: _tag_dict(d.get("Tags")) for d in described}
        for lb in batch:
            tags = tags_by_arn.get(lb["LoadBalancerArn"], {})
            name = tags.get("Name") or lb["LoadBalancerName"]
            yield _Resource("elbv2:loadbalancer", lb["LoadBalancerArn"], name, tags)


_COLLECTORS: dict[str, Callable[[AwsContext], Iterator[_Resource]]] = {
    "ec2:instance": _ec2_instances,
    "ec2:volume": _ebs_volumes,
    "ec2:network-interface": _network_interfaces,
    "s3:bucket": _s3_buckets,
    "rds:db": _rds_instances,
    "rds:cluster": _rds_clusters,
    "eks:cluster": _eks_clusters,
    "eks:nodegroup": _eks_nodegroups,
    "elbv2:loadbalancer": _load_balancers,
}


def missing_keys(tags: Mapping[str, str], required: Sequence[str]) -> tuple[str, ...]:
    """The required keys that are absent or have an empty (or blank) value; keys are compared exactly."""
    return tuple(key for key in required if not tags.get(key, "").strip())


def _check_required(required: Sequence[str]) -> tuple[str, ...]:
    if isinstance(required, str):
        raise ValueError(f"required tag keys must be a list of keys, not the string {required!r}")
    keys = tuple(required)
    if not keys:
        raise ValueError("no required tag keys given; name at least one, e.g. cost-center")
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"required tag keys are listed twice: {', '.join(duplicates)}")
    for key in keys:
        problems = tag_problems(key, "")
        if problems:
            raise ValueError(f"required tag key {key!r}: {'; '.join(problems)}")
    return keys


def _sort_key(kind: str, name: str, resource_id: str) -> tuple[int, str, str]:
    return (list(KINDS).index(kind), name, resource_id)


def audit(ctx: AwsContext, required: Sequence[str], progress: StepCallback | None = None) -> AuditReport:
    """Every resource of the context's account and region that lacks one of the `required` tag keys.

    Raises AccountError when the credentials do not work; a kind that cannot be read is reported in `errors`.
    """
    keys = _check_required(required)
    step = progress or (lambda _text: None)
    step("checking the AWS credentials")
    account = ctx.account_id()
    scanned: dict[str, int] = {}
    errors: dict[str, str] = {}
    findings: list[Finding] = []
    for kind, label in KINDS.items():
        step(f"scanning {label}")
        try:
            with aws_errors(f"scanning {label}"):
                resources = list(_COLLECTORS[kind](ctx))
        except AccountError as error:
            errors[kind] = str(error)
            continue
        scanned[kind] = len(resources)
        for resource in resources:
            missing = missing_keys(resource.tags, keys)
            if missing:
                findings.append(Finding(resource.kind, resource.id, resource.name, dict(resource.tags), missing))
    findings.sort(key=lambda f: _sort_key(f.kind, f.name, f.id))
    return AuditReport(ctx.region, account, keys, scanned, tuple(findings), errors)


# --- mapping ------------------------------------------------------------------------------------------------------


def _tag_values(data: object, path: tuple[str, ...], issues: list[ConfigIssue]) -> dict[str, str]:
    if not isinstance(data, dict):
        issues.append(ConfigIssue(path, f"must be a mapping of tag keys to values, not {_type_name(data)}"))
        return {}
    values: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            issues.append(ConfigIssue((*path, str(key)), f"tag key must be a string, not {_type_name(key)}"))
            continue
        where = (*path, key)
        if value is None:
            issues.append(ConfigIssue(where, "has no value"))
        elif not isinstance(value, str):
            issues.append(ConfigIssue(where, f"must be a string, not {_type_name(value)} (quote it: '{value}')"))
        elif not value.strip():
            issues.append(ConfigIssue(where, "is empty; an empty tag value does not satisfy the audit"))
        else:
            problems = tag_problems(key, value)
            if problems:
                issues.append(ConfigIssue(where, "; ".join(problems)))
            else:
                values[key] = value
    return values


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), type(value).__name__)


def parse_mapping(data: object, source: str) -> TagMapping:
    """Check a loaded mapping document; raises MappingError naming `source` and every bad key."""
    issues: list[ConfigIssue] = []
    if not isinstance(data, dict):
        raise MappingError(source, [ConfigIssue((), f"the document is {_type_name(data)}, not a mapping")])
    for key in data:
        if key not in ("defaults", "resources"):
            issues.append(ConfigIssue((str(key),), "unknown key; allowed: defaults, resources"))
    defaults = _tag_values(data["defaults"], ("defaults",), issues) if "defaults" in data else {}
    resources: dict[str, dict[str, str]] = {}
    raw_resources = data.get("resources", {})
    if not isinstance(raw_resources, dict):
        issues.append(
            ConfigIssue(("resources",), f"must be a mapping of resource ids to tags, not {_type_name(raw_resources)}")
        )
    else:
        for resource_id, values in raw_resources.items():
            if not isinstance(resource_id, str) or not resource_id.strip():
                issues.append(ConfigIssue(("resources", str(resource_id)), "resource id must be a non-empty string"))
                continue
            resources[resource_id] = _tag_values(values, ("resources", resource_id), issues)
    if not issues and not defaults and not any(resources.values()):
        issues.append(ConfigIssue((), "sets no tag values; give `defaults` and/or `resources`"))
    if issues:
        raise MappingError(source, issues)
    return TagMapping(defaults, resources, source)


def load_mapping(path: str | Path) -> TagMapping:
    """Read a tag mapping file (YAML or JSON); raises MappingError naming the file and each bad key."""
    import yaml

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(source, [ConfigIssue((), "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(source, [ConfigIssue((), f"cannot read it: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise MappingError(source, [ConfigIssue((), f"not valid YAML or JSON: {problem}", line)]) from None
    return parse_mapping(data, source)


# --- fix ----------------------------------------------------------------------------------------------------------


def plan_fix(report: AuditReport, mapping: TagMapping) -> list[TagChange]:
    """Per flagged resource, the missing required keys the mapping fills and those it cannot (existing non-empty
    tags are never in a plan)."""
    changes = []
    for finding in report.findings:
        values = mapping.values_for(finding.id)
        add = {key: values[key] for key in finding.missing if key in values}
        unfixable = tuple(key for key in finding.missing if key not in values)
        changes.append(TagChange(finding.kind, finding.id, finding.name, add, unfixable))
    return changes


def _tag_ec2(ctx: AwsContext, change: TagChange) -> None:
    ctx.client("ec2").create_tags(Resources=[change.id], Tags=_tag_list(change.add))


def _tag_s3(ctx: AwsContext, change: TagChange) -> None:
    # PutBucketTagging replaces the whole set: merge into the tags as they are now, not as the audit saw them.
    s3 = ctx.client("s3")
    merged = {**_bucket_tags(s3, change.id), **change.add}
    s3.put_bucket_tagging(Bucket=change.id, Tagging={"TagSet": _tag_list(merged)})


def _tag_rds(ctx: AwsContext, change: TagChange) -> None:
    ctx.client("rds").add_tags_to_resource(ResourceName=change.id, Tags=_tag_list(change.add))


def _tag_eks(ctx: AwsContext, change: TagChange) -> None:
    ctx.client("eks").tag_resource(resourceArn=change.id, tags=dict(change.add))


def _tag_elbv2(ctx: AwsContext, change: TagChange) -> None:
    ctx.client("elbv2").add_tags(ResourceArns=[change.id], Tags=_tag_list(change.add))


_TAGGERS: dict[str, Callable[[AwsContext, TagChange], None]] = {
    "ec2": _tag_ec2,
    "s3": _tag_s3,
    "rds": _tag_rds,
    "eks": _tag_eks,
    "elbv2": _tag_elbv2,
}


def apply_fix(ctx: AwsContext, changes: Sequence[TagChange], progress: StepCallback | None = None) -> list[TagChange]:
    """Apply each change with its service's tagging call; returns every change with its outcome (applied, or the
    error). Changes with nothing to add, or already applied, are returned as they are, without an AWS call."""
    unknown = sorted({change.kind for change in changes if change.kind not in KINDS})
    if unknown:
        raise ValueError(f"unknown resource kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    step = progress or (lambda _text: None)
    results = []
    for change in changes:
        if not change.add or change.applied:
            results.append(change)
            continue
        step(f"tagging {change.kind} {change.name}")
        try:
            with aws_errors(f"tagging {change.kind} {change.id}"):
                _TAGGERS[change.kind.split(":")[0]](ctx, change)
        except AccountError as error:
            results.append(replace(change, error=str(error)))
        else:
            results.append(replace(change, applied=True, error=None))
    return results


# --- output -------------------------------------------------------------------------------------------------------


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind,
        "id": finding.id,
        "name": finding.name,
        "missing": list(finding.missing),
        "tags": dict(sorted(finding.tags.items())),
    }


def _change_json(change: TagChange) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "id": change.id,
        "name": change.name,
        "status": change.status,
        "add": dict(change.add),
        "unfixable": list(change.unfixable),
        "error": change.error,
    }


def to_json(result: AuditReport | Sequence[TagChange]) -> dict[str, Any]:
    """A JSON-serializable form of an audit report or of a list of tag changes (planned or applied)."""
    if isinstance(result, AuditReport):
        return {
            "account": result.account,
            "region": result.region,
            "required": list(result.required),
            "complete": result.complete,
            "scanned": {kind: result.scanned[kind] for kind in KINDS if kind in result.scanned},
            "scanned_total": sum(result.scanned.values()),
            "errors": {kind: result.errors[kind] for kind in KINDS if kind in result.errors},
            "findings": [_finding_json(f) for f in result.findings],
        }
    statuses = [change.status for change in result]
    return {
        "changes": [_change_json(change) for change in result],
        "summary": {status: statuses.count(status) for status in ("planned", "applied", "failed", "unfixable")}
        | {"with_unfixable_keys": sum(1 for change in result if change.unfixable)},
    }


def _tags_text(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value!r}" if not value else f"{key}={value}" for key, value in sorted(tags.items()))


def render_table(result: AuditReport | Sequence[TagChange], console: Console) -> None:
    """A readable table of an audit report, or of a list of tag changes."""
    from rich.markup import escape
    from rich.table import Table

    if isinstance(result, AuditReport):
        total = sum(result.scanned.values())
        console.print(
            f"account [bold]{result.account}[/bold], region [bold]{result.region}[/bold]: {total} resources "
            f"scanned, {len(result.findings)} lack required tags ({', '.join(result.required)})"
        )
        if result.findings:
            table = Table(title_justify="left")
            for column in ("kind", "name", "id", "missing", "tags now"):
                table.add_column(column)
            for f in result.findings:
                table.add_row(f.kind, escape(f.name), escape(f.id), ", ".join(f.missing), escape(_tags_text(f.tags)))
            console.print(table)
        counts = ", ".join(f"{KINDS[k]} {result.scanned[k]}" for k in KINDS if k in result.scanned)
        console.print(f"[dim]scanned: {counts or 'nothing'}[/dim]")
        for kind in (k for k in KINDS if k in result.errors):
            console.print(f"[red]not scanned: {KINDS[kind]}: {escape(result.errors[kind])}[/red]")
        return
    if not result:
        console.print("nothing to tag")
        return
    table = Table(title_justify="left")
    for column in ("kind", "name", "id", "add", "unfixable", "status"):
        table.add_column(column)
    for change in result:
        status = change.status if change.error is None else f"failed: {change.error}"
        table.add_row(
            change.kind,
            escape(change.name),
            escape(change.id),
            escape(_tags_text(change.add)),
            ", ".join(change.unfixable),
            escape(status),
        )
    console.print(table)
    summary = to_json(result)["summary"]
    console.print(", ".join(f"{count} {status.replace('_', ' ')}" for status, count in summary.items() if count))
