"""`mlp cost --terraform-plan FILE`: the monthly cost of what a Terraform plan declares (`terraform show -json`).

The plan is read by the policy engine's Terraform reader (`policies.run.resources_from_terraform`: Pulumi type
tokens, camelCase inputs, UNKNOWN for `(known after apply)`, Karpenter objects from `kubernetes_manifest` and
`kubectl_manifest`, `helm_release` values) and priced by the same estimate as a stack (`infra.cost.estimate_cost`):
floor, expected, ceiling and spot scenario per line, each saying how it was computed.

This module only prepares the resources for the estimate and says what it could not price:

- a value the estimate reads that is unknown until apply (a node group's scaling or instance types, a NodePool's
  limits or requirements, a database's class or storage) takes the resource out of the estimate, with the path;
  a guessed figure would look like a price;
- a node group without `instance_types` takes its launch template's `instance_type`, else the EKS default
  (t3.medium); its disk comes from the launch template's block device mappings (the template is found through the
  configuration's references of `launch_template.id`/`name`, or by name), else from `disk_size`, else the EKS
  default of 20 GiB, priced as gp3 (stated as an assumption);
- a NodePool is priced from its `limits` (`nvidia.com/gpu`, else `cpu`) over the families or types its
  requirements select with `In`; one without such limits has no ceiling and is listed, not priced;
- an EBS volume is priced where the price data has its volume type (gp3);
- S3 buckets, Lambda functions, DynamoDB tables and the like are usage-based: listed as not estimated;
- types that cost nothing of their own (IAM, security groups, subnets, Kubernetes objects that run on the nodes)
  are counted, not listed; everything else the estimate does not know is listed with its type.

Lines are grouped by module (`module.<name>`), root-module resources under `root`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplatform.infra.config_errors import ConfigError, ConfigIssue
from mlplatform.infra.cost import CostEstimate, CostLine, estimate_cost
from mlplatform.infra.cost.budget import BudgetVerdict, MissingPricesError
from mlplatform.infra.cost.estimate import assumption, service_price
from mlplatform.policies.model import Resource, Skipped, contains_unknown

if TYPE_CHECKING:
    from rich.console import Console

    from mlplatform.policies.run import TerraformPlanRead

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RDS = "aws:rds/instance:Instance"
BUCKET = "aws:s3/bucket:Bucket"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
VOLUME = "aws:ebs/volume:Volume"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"

EKS_DEFAULT_INSTANCE_TYPE = "t3.medium"
"""What EKS launches for a managed node group with no instance type anywhere (CreateNodegroup, `instanceTypes`)."""
EKS_DEFAULT_DISK_GIB = 20
"""The root volume of a managed node group without a launch template and without `disk_size` (Linux)."""

# Inputs the estimate reads to price a resource: an unknown value among them leaves the resource unpriced.
PRICED_INPUTS: Mapping[str, tuple[str, ...]] = {
    NODE_GROUP: ("scalingConfig", "instanceTypes", "capacityType", "diskSize"),
    NODEPOOL: ("spec.limits", "spec.template.spec.requirements"),
    NODECLASS: ("spec.blockDeviceMappings",),
    LAUNCH_TEMPLATE: ("blockDeviceMappings", "instanceType"),
    RDS: ("instanceClass", "allocatedStorage", "multiAz", "engine"),
    LOAD_BALANCER: ("loadBalancerType",),
    ENDPOINT: ("vpcEndpointType", "subnetIds"),
    VOLUME: ("size", "type"),
}

# Types the estimate prices (the handlers of `infra.cost.estimate`); a Kubernetes Ingress and a Helm release are
# priced only for what they make (an ALB, Prometheus' volumes), else cost nothing of their own.
PRICED_TYPES = frozenset(
    {
        CLUSTER,
        NODE_GROUP,
        NODEPOOL,
        RDS,
        BUCKET,
        LOAD_BALANCER,
        ENDPOINT,
        VOLUME,
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:kms/key:Key",
        "aws:secretsmanager/secret:Secret",
    }
)
USAGE_BASED: Mapping[str, str] = {
    BUCKET: "S3 storage and requests are usage-based: not estimated (no `mlplatform.io/expected-size-gb` tag)",
    "aws:lambda/function:Function": "Lambda is billed per request and GB-second: usage-based, not estimated",
    "aws:dynamodb/table:Table": "DynamoDB on-demand capacity and storage are usage-based: not estimated",
    "aws:sqs/queue:Queue": "SQS is billed per request: usage-based, not estimated",
    "aws:cloudwatch/logGroup:LogGroup": "CloudWatch Logs ingestion and storage are usage-based: not estimated",
    "aws:ecr/repository:Repository": "ECR storage is usage-based: not estimated",
    "aws:ec2/flowLog:FlowLog": "flow log delivery is usage-based: not estimated",
}
# Workloads whose minimum replicas the estimate counts in the floor of the pool their node selector names.
FLOOR_WORKLOADS = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:ray.io/v1:RayCluster",
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
    }
)
# Types with no charge of their own (the nodes they run on, or the traffic through them, are what is billed).
FREE_PREFIXES = ("aws:iam/", "kubernetes:")
FREE_TYPES = frozenset(
    {
        LAUNCH_TEMPLATE,
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:lb/listener:Listener",
        "aws:autoscaling/group:Group",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketAcl:BucketAcl",
        "aws:s3/bucketLogging:BucketLogging",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    }
)


NotPriced = Skipped
"""A resource the estimate could not price, and why: the policy engine's (resource, type, reason) record."""


@dataclass(frozen=True)
class TerraformCost:
    source: str
    region: str
    region_from: str
    estimate: CostEstimate
    not_priced: tuple[NotPriced, ...]
    no_charge: int
    """Resources that cost nothing of their own (IAM, security groups, Kubernetes objects ...)."""
    not_counted: tuple[NotPriced, ...] = ()
    """Changes the reader skipped that are not costs of the new state (data sources, deletions)."""
    missing_prices: tuple[CostLine, ...] = ()
    """Lines the region's price data cannot price (the budget fails closed on them; `mlp prices refresh`)."""

    def budget_verdict(self, budget: float) -> BudgetVerdict:
        """The budget verdict on this plan's ceiling, the figure `mlp cost --terraform-plan` shows; raises
        MissingPricesError when the region has no price for a line (unknown-until-apply values are listed in
        not_priced, not guessed)."""
        if self.missing_prices:
            raise MissingPricesError(dataclasses.replace(self.estimate, lines=self.missing_prices))
        return BudgetVerdict(budget, self.estimate)

    def to_json(self) -> dict[str, Any]:
        return {
            "terraform_plan": self.source,
            "region_from": self.region_from,
            **self.estimate.to_json(),
            "not_priced": [n.to_json() for n in self.not_priced],
            "no_charge_resources": self.no_charge,
            "not_counted": [n.to_json() for n in self.not_counted],
        }


@dataclass(frozen=True)
class _View:
    """A resource as handed to the estimate, with the inputs and references this module fills in."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    tags: Mapping[str, str]
    references: Mapping[str, tuple[str, ...]]


def _view(r: Resource, inputs: Mapping[str, Any] | None = None, **references: tuple[str, ...]) -> _View:
    return _View(r.type, r.name, r.inputs if inputs is None else inputs, r.tags, {**r.references, **references})


# --- region -----------------------------------------------------------------------------------------------------


def plan_region(plan: Mapping[str, Any]) -> str | None:
    """The default AWS provider's region: `configuration.provider_config.aws.expressions.region`, a constant or a
    variable the plan gives a value."""
    provider = ((plan.get("configuration") or {}).get("provider_config") or {}).get("aws") or {}
    expr = (provider.get("expressions") or {}).get("region") if isinstance(provider, Mapping) else None
    if not isinstance(expr, Mapping):
        return None
    if isinstance(expr.get("constant_value"), str) and expr["constant_value"]:
        return str(expr["constant_value"])
    refs = [str(r) for r in expr.get("references") or []]
    if len(refs) == 1 and refs[0].startswith("var."):
        value = ((plan.get("variables") or {}).get(refs[0][4:]) or {}).get("value")
        return value if isinstance(value, str) and value else None
    return None


def resolve_region(plan: Mapping[str, Any], source: str, region: str | None) -> tuple[str, str]:
    """(region, where it came from): `--region`, else the plan's AWS provider; a ConfigError (exit 2) otherwise."""
    if region:
        return region, "--region"
    found = plan_region(plan)
    if found:
        return found, "the plan's AWS provider configuration"
    issue = ConfigIssue(
        ("configuration", "provider_config", "aws", "expressions", "region"),
        "the plan names no AWS region (no constant or variable value for the aws provider's `region`): "
        "give it with --region",
    )
    raise ConfigError(source, [issue])


# --- preparing the resources ------------------------------------------------------------------------------------


def _component(address: str) -> str:
    return address.split(".")[1].split("[")[0] if address.startswith("module.") else "root"


def _unknown_paths(r: Resource) -> list[str]:
    return [path for path in PRICED_INPUTS.get(r.type, ()) if contains_unknown(r.get(path))]


def _plain(value: Any) -> Any:
    """A value without the reader's tracking wrappers (plain dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _config_expressions(plan: Mapping[str, Any]) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    """Each configured resource's expressions, by (module names, type, name)."""
    from mlplatform.policies.sources.terraform_address import AddressError, parse_address

    found: dict[tuple[Any, ...], Mapping[str, Any]] = {}

    def walk(module: Mapping[str, Any], names: tuple[str, ...]) -> None:
        for resource in module.get("resources") or []:
            try:
                local = parse_address(str(resource.get("address", "")))
            except AddressError:
                continue
            found[(names, local.type, local.name)] = resource.get("expressions") or {}
        for name, call in (module.get("module_calls") or {}).items():
            walk(call.get("module") or {}, (*names, name))

    config = plan.get("configuration")
    if isinstance(config, Mapping) and isinstance(config.get("root_module"), Mapping):
        walk(config["root_module"], ())
    return found


class _Preparer:
    def __init__(self, plan: Mapping[str, Any], resources: Sequence[Resource]) -> None:
        from mlplatform.policies.sources.terraform_address import AddressError, parse_address

        self.resources = resources
        self.expressions = _config_expressions(plan)
        self.parsed = {}
        for r in resources:
            try:
                self.parsed[r.name] = parse_address(r.name)
            except AddressError:
                continue
        self.not_priced: list[NotPriced] = []
        self.assumptions: list[str] = []
        self.views: list[_View] = []
        self.no_charge = 0
        self.spot: set[str] = set()
        """Resources whose spot figure rests on the assumed spot fraction (flagged on their lines)."""

    def skip(self, r: Resource, reason: str) -> None:
        self.not_priced.append(NotPriced(r.name, r.type, reason))

    def prepare(self) -> None:
        for r in self.resources:
            unknown = _unknown_paths(r)
            if r.type in (LAUNCH_TEMPLATE, NODECLASS):
                self.no_charge += 1
                if unknown and r.type == NODECLASS:
                    self.skip(r, f"disks unknown until apply ({', '.join(unknown)}): its pools are priced without them")
                elif r.type == NODECLASS and not _volume_sizes_in_gib(r):
                    self.skip(r, "a disk size not in whole Gi (e.g. `100Gi`): its pools are priced without disks")
                elif r.type == NODECLASS:
                    self.views.append(_view(r))
                continue
            if r.type not in PRICED_TYPES:
                self._unpriced_type(r)
                continue
            if unknown:
                self.skip(r, f"unknown until apply: {', '.join(unknown)}")
                continue
            handler = {
                CLUSTER: self.cluster,
                NODE_GROUP: self.node_group,
                NODEPOOL: self.nodepool,
                RDS: self.rds,
                BUCKET: self.bucket,
                LOAD_BALANCER: self.load_balancer,
            }.get(r.type)
            if handler is None:
                self.views.append(_view(r))
            else:
                handler(r)

    def _unpriced_type(self, r: Resource) -> None:
        if r.type == HELM_RELEASE:
            self.helm_release(r)
        elif r.type in USAGE_BASED:
            self.skip(r, USAGE_BASED[r.type])
        elif r.type in FREE_TYPES or r.type.startswith(FREE_PREFIXES):
            self.no_charge += 1
            if r.type in FLOOR_WORKLOADS and contains_unknown(r.inputs.get("spec")):
                self.assumptions.append(f"{r.name}: its spec is partly unknown until apply: not counted in a floor")
            elif r.type.startswith("kubernetes:"):
                # an `alb` Ingress makes a load balancer; workloads pinned to a pool hold its floor
                self.views.append(_view(r))
        elif r.type == "aws:ec2/instance:Instance":
            self.skip(r, "stand-alone EC2 instances are not in the estimate (node groups and NodePools are)")
        else:
            self.skip(r, f"no price data or estimate for {r.type}")

    # -- node groups ---------------------------------------------------------------------------------------------

    def _expr_refs(self, r: Resource, block: str) -> list[str]:
        parsed = self.parsed.get(r.name)
        if parsed is None:
            return []
        exprs = self.expressions.get((parsed.module_names, parsed.type, parsed.name)) or {}
        found: list[str] = []
        for item in exprs.get(block) or []:
            if isinstance(item, Mapping):
                for attr in ("id", "name"):
                    found += [str(x) for x in (item.get(attr) or {}).get("references") or []]
        return found

    def _launch_template(self, r: Resource) -> Resource | None:
        """The launch template a node group names: by the configuration's reference, else by its `name`."""
        templates = [t for t in self.resources if t.type == LAUNCH_TEMPLATE]
        mine = self.parsed.get(r.name)
        for ref in self._expr_refs(r, "launch_template"):
            parts = ref.split(".")
            if len(parts) < 2 or not parts[0].startswith("aws_launch_template"):
                continue
            tf_type, name = parts[0], parts[1].split("[")[0]
            matches = [
                t
                for t in templates
                if (p := self.parsed.get(t.name)) is not None
                and mine is not None
                and p.module_names == mine.module_names
                and (p.type, p.name) == (tf_type, name)
            ]
            if len(matches) > 1 and mine is not None:
                matches = [t for t in matches if self.parsed[t.name].key == mine.key] or matches[:0]
            if len(matches) == 1:
                return matches[0]
        wanted = (r.inputs.get("launchTemplate") or {}).get("name")
        if isinstance(wanted, str):
            named = [t for t in templates if t.inputs.get("name") == wanted]
            if len(named) == 1:
                return named[0]
        return None

    def cluster(self, r: Resource) -> None:
        if contains_unknown(r.get("version")):
            self.assumptions.append(f"{r.name}: Kubernetes version unknown until apply: standard support assumed")
        self.views.append(_view(r))

    def node_group(self, r: Resource) -> None:
        inputs = _plain(r.inputs)
        scaling = inputs.get("scalingConfig") or {}
        if not all(isinstance(scaling.get(k), int) for k in ("minSize", "desiredSize", "maxSize")):
            self.skip(r, "scaling_config has no whole min_size, desired_size and max_size")
            return
        types = [t for t in inputs.get("instanceTypes") or [] if isinstance(t, str)]
        uses_template = bool(r.inputs.get("launchTemplate"))
        template = self._launch_template(r) if uses_template else None
        if uses_template and template is None:
            self.assumptions.append(f"{r.name}: its launch template is not in the plan: node disks not counted")
        if template is not None and _unknown_paths(template):
            self.skip(r, f"its launch template {template.name} has {', '.join(_unknown_paths(template))} unknown")
            return
        if not types:
            from_template = template.inputs.get("instanceType") if template is not None else None
            if isinstance(from_template, str) and from_template:
                types = [from_template]
            else:
                types = [EKS_DEFAULT_INSTANCE_TYPE]
                self.assumptions.append(f"{r.name}: no instance type given: the EKS default {types[0]} assumed")
        inputs["instanceTypes"] = types
        if str(inputs.get("capacityType") or "ON_DEMAND") == "SPOT":
            self.spot_assumed(r)
        if template is not None:
            self.views.append(_view(template))
            self.views.append(_view(r, inputs, launchTemplate=(template.name,)))
            return
        # No launch template: EKS gives the nodes `disk_size` GiB (default 20); priced through a stand-in template.
        disk = inputs.get("diskSize") or EKS_DEFAULT_DISK_GIB
        stand_in = f"{r.name}#disk"
        self.views.append(
            _View(LAUNCH_TEMPLATE, stand_in, {"blockDeviceMappings": [{"ebs": {"volumeSize": int(disk)}}]}, {}, {})
        )
        self.views.append(_view(r, inputs, launchTemplate=(stand_in,)))
        self.assumptions.append(
            f"{r.name}: node root volumes of {int(disk)} GiB "
            f"({'disk_size' if inputs.get('diskSize') else 'the EKS default'}), priced as gp3"
        )

    def spot_assumed(self, r: Resource) -> None:
        self.spot.add(r.name)
        self.assumptions.append(
            f"{r.name}: spot capacity: floor, expected and ceiling at on-demand rates; the spot scenario assumes "
            f"{assumption('spot_fraction_of_on_demand'):.0%} of on-demand (an assumption: no spot price data is kept)"
        )

    # -- Karpenter -----------------------------------------------------------------------------------------------

    def nodepool(self, r: Resource) -> None:
        spec = r.inputs.get("spec") or {}
        limits = spec.get("limits") or {}
        requirements = ((spec.get("template") or {}).get("spec") or {}).get("requirements") or []
        selecting = {
            q.get("key"): q
            for q in requirements
            if isinstance(q, Mapping)
            and q.get("key") in ("karpenter.k8s.aws/instance-family", "node.kubernetes.io/instance-type")
        }
        for key, q in selecting.items():
            if q.get("operator") != "In":
                self.skip(r, f"requirement {key} uses operator {q.get('operator')}: only `In` lists are priced")
                return
        if not selecting:
            self.skip(
                r,
                "its requirements select no instance family or type (karpenter.k8s.aws/instance-family or "
                "node.kubernetes.io/instance-type with `In`): nothing to price",
            )
            return
        for key in ("nvidia.com/gpu", "cpu"):
            if key in limits and not str(limits[key]).isdigit():
                self.skip(r, f"limit {key}: {limits[key]!r} is not a whole number")
                return
        if not str(limits.get("nvidia.com/gpu", "0")).strip("0") and not limits.get("cpu"):
            self.skip(r, "no `nvidia.com/gpu` or `cpu` limit: its ceiling is unbounded, so it is not priced")
            return
        capacity = next(
            (q for q in requirements if isinstance(q, Mapping) and q.get("key") == "karpenter.sh/capacity-type"), {}
        )
        if "spot" in (capacity.get("values") or []):
            self.spot_assumed(r)
        self.views.append(_view(r))

    def helm_release(self, r: Resource) -> None:
        values = r.inputs.get("values") or {}
        if _declares_nodepools(values):
            self.skip(
                r,
                f"chart {r.inputs.get('chart')!r} renders NodePools from its values; charts are not rendered here, "
                "so they are not priced (declare them with kubernetes_manifest to price them)",
            )
        self.no_charge += 1
        self.views.append(_view(r))  # kube-prometheus-stack volumes are priced from its values

    # -- others --------------------------------------------------------------------------------------------------

    def rds(self, r: Resource) -> None:
        engine = str(r.inputs.get("engine") or "")
        if engine != "postgres":
            self.skip(r, f"engine {engine or '(unset)'}: the price data holds RDS for PostgreSQL only")
            return
        self.views.append(_view(r))

    def bucket(self, r: Resource) -> None:
        if "mlplatform.io/expected-size-gb" in r.tags:
            self.views.append(_view(r))
        else:
            self.skip(r, USAGE_BASED[BUCKET])

    def load_balancer(self, r: Resource) -> None:
        kind = str(r.inputs.get("loadBalancerType") or "application")
        if kind not in ("application", "network"):
            self.skip(r, f"load_balancer_type {kind}: no price data")
            return
        self.views.append(_view(r))


def _volume_sizes_in_gib(r: Resource) -> bool:
    """Whether every disk of an EC2NodeClass is sized in whole GiB (`100Gi`), the form the estimate reads."""
    mappings = (r.inputs.get("spec") or {}).get("blockDeviceMappings") or []
    sizes = [str(((m.get("ebs") or {}) if isinstance(m, Mapping) else {}).get("volumeSize", "0")) for m in mappings]
    return all(size.removesuffix("Gi").isdigit() for size in sizes)


def _declares_nodepools(values: Any) -> bool:
    if isinstance(values, Mapping):
        if values.get("kind") == "NodePool":
            return True
        return any(str(k).lower() in ("nodepools", "nodepool") or _declares_nodepools(v) for k, v in values.items())
    if isinstance(values, list):
        return any(_declares_nodepools(v) for v in values)
    return False


# --- estimate -----------------------------------------------------------------------------------------------------


def _volume_lines(views: Iterable[_View], region: str) -> tuple[list[CostLine], list[NotPriced]]:
    """EBS volumes (`aws_ebs_volume`), which the stack estimate has no handler for: size x the gp3 price."""
    lines, unpriced = [], []
    for v in views:
        if v.type != VOLUME:
            continue
        kind = str(v.inputs.get("type") or "gp2")  # the provider's default volume type
        size = v.inputs.get("size")
        price = service_price(region, f"ebs_{kind}_gb_month")
        if not isinstance(size, int | float) or not size:
            unpriced.append(NotPriced(v.name, v.type, "no `size` (a volume from a snapshot takes the snapshot's)"))
        elif price is None:
            unpriced.append(NotPriced(v.name, v.type, f"no price data: EBS {kind} volumes in {region}"))
        else:
            monthly = float(size) * price
            how = f"{size:g} GiB x ${price}/GiB-month"
            lines.append(CostLine(_component(v.name), v.name, f"EBS {kind} volume", monthly, monthly, monthly, how))
    return lines, unpriced


def terraform_cost(
    path: Path,
    region: str | None = None,
    today: dt.date | None = None,
    *,
    utilization: float | None = None,
    price_region: str | None = None,
    read: TerraformPlanRead | None = None,
) -> TerraformCost:
    """Price a Terraform plan file (or what `read_terraform_plan` already read of it); TerraformPlanError or
    ConfigError (exit 2) when it is malformed or no region is known."""
    from mlplatform.policies.run import read_terraform_plan

    plan, resources, skipped = read if read is not None else read_terraform_plan(path)
    found_region, region_from = resolve_region(plan, str(path), region)
    prep = _Preparer(plan, resources)
    prep.prepare()
    estimate = estimate_cost(
        prep.views, found_region, today=today, utilization=utilization, price_region=price_region or None
    )
    volume_lines, volume_unpriced = _volume_lines(prep.views, price_region or found_region)
    not_priced = list(prep.not_priced) + volume_unpriced
    lines: list[CostLine] = []
    missing = list(estimate.unpriced)  # the estimator marks a line unpriced only where a price is missing
    missing += [
        CostLine(_component(n.resource), n.resource, "EBS volume", 0.0, 0.0, 0.0, n.reason, priced=False)
        for n in volume_unpriced
        if n.reason.startswith("no price data")
    ]
    for line in [*estimate.lines, *volume_lines]:
        if not line.priced:
            kind = next((v.type for v in prep.views if v.name == line.resource), "")
            not_priced.append(NotPriced(line.resource, kind, f"{line.item}: {line.how}"))
            continue
        flags = (*line.flags, "spot assumed") if line.resource in prep.spot else line.flags
        lines.append(dataclasses.replace(line, component=_component(line.resource), flags=flags))
    not_counted = []
    for s in skipped:
        reason = s.reason
        if reason.startswith("no mapping for "):
            not_priced.append(NotPriced(s.resource, s.type, f"not read by the Terraform reader ({reason})"))
        else:
            not_counted.append(NotPriced(s.resource, s.type, reason))
    notes = [*estimate.notes, *prep.assumptions]
    return TerraformCost(
        source=str(path),
        region=found_region,
        region_from=region_from,
        estimate=dataclasses.replace(estimate, lines=tuple(lines), notes=tuple(notes)),
        not_priced=tuple(not_priced),
        no_charge=prep.no_charge,
        not_counted=tuple(not_counted),
        missing_prices=tuple(missing),
    )


# --- rendering ----------------------------------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _title(cost: TerraformCost) -> str:
    return f"{cost.source}: monthly cost (USD, 730 h/month, {cost.region} from {cost.region_from})"


def render_table(cost: TerraformCost, console: Console) -> None:
    from rich.table import Table

    estimate = cost.estimate
    table = Table(title=_title(cost), title_justify="left")
    for column in ("component", "resource", "item", "floor", "expected", "ceiling", "spot", "how"):
        table.add_column(column, justify="right" if column in ("floor", "expected", "ceiling", "spot") else "left")
    for line in sorted(estimate.lines, key=lambda x: (x.component, -x.ceiling, x.resource)):
        marks = f" [{', '.join(line.flags)}]" if line.flags else ""
        table.add_row(
            line.component,
            line.resource,
            line.item + marks,
            *(_money(getattr(line, k)) for k in ("floor", "expected", "ceiling", "spot")),
            line.how,
        )
    table.add_row(
        "[b]total[/b]",
        "",
        "",
        *(f"[b]{_money(estimate.total(k))}[/b]" for k in ("floor", "expected", "ceiling")),
        f"[b]{_money(estimate.spot_total)}[/b]",
    )
    console.print(table)
    if cost.not_priced:
        unpriced = Table(title=f"not priced ({len(cost.not_priced)})", title_justify="left")
        for column in ("resource", "type", "why"):
            unpriced.add_column(column)
        for n in cost.not_priced:
            unpriced.add_row(n.resource, n.type, n.reason)
        console.print(unpriced)
    console.print(
        f"{cost.no_charge} resource(s) with no charge of their own (IAM, security groups, Kubernetes objects ...); "
        f"{len(cost.not_counted)} change(s) not counted (data sources, deletions)",
        highlight=False,
    )
    for note in estimate.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


def render_markdown(cost: TerraformCost) -> str:
    e = cost.estimate
    out = [
        f"### Monthly cost: Terraform plan `{cost.source}` ({cost.region}, 730 h/month)",
        "",
        "| | floor | expected | ceiling | spot scenario |",
        "|---|---:|---:|---:|---:|",
        f"| **total** | {_money(e.total('floor'))} | {_money(e.total('expected'))} | {_money(e.total('ceiling'))} | "
        f"{_money(e.spot_total)} |",
    ]
    for component, t in sorted(e.by_component().items()):
        out.append(f"| {component} | {_money(t['floor'])} | {_money(t['expected'])} | {_money(t['ceiling'])} | |")
    if e.lines:
        out += ["", "| resource | item | floor | ceiling | how |", "|---|---|---:|---:|---|"]
    for line in sorted(e.lines, key=lambda x: (x.component, -x.ceiling, x.resource)):
        out.append(
            f"| `{line.resource}` | {line.item} | {_money(line.floor)} | {_money(line.ceiling)} | "
            f"{line.how.replace('|', '/')} |"
        )
    if cost.not_priced:
        out += ["", f"**Not priced ({len(cost.not_priced)})**", "", "| resource | type | why |", "|---|---|---|"]
        out += [f"| `{n.resource}` | `{n.type}` | {n.reason.replace('|', '/')} |" for n in cost.not_priced]
    out += ["", *(f"_{note}_" for note in e.notes), ""]
    return "\n".join(out)
