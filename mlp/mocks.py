"""Deterministic stand-ins for the Pulumi engine and the cloud: fake outputs, answered invokes, a recording monitor.

Every value here is derived from the resource's type, name and inputs, or from the stack config (region,
account), with a hash where an id is needed, so that the same program and config always give the same plan.
Nothing here talks to AWS or Kubernetes.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import hashlib
import inspect
import ipaddress
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import known_types, mocks, rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

DEFAULT_ACCOUNT_ID = "123456789012"


class PlannerError(Exception):
    """The program asked for something the offline planner cannot answer."""


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class StackOutputs:
    """What a StackReference reads: a stack's exported values and the names of the secret ones."""

    values: dict[str, Any]
    secret_names: frozenset[str] = frozenset()


@dataclass
class PlanContext:
    """What invokes and fake outputs are derived from."""

    region: str
    account_id: str = DEFAULT_ACCOUNT_ID
    # Answers for invokes that read external state (e.g. Terraform state outputs), keyed by invoke token.
    invoke_handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    stack_outputs: dict[str, StackOutputs] = field(default_factory=dict)
    """Outputs of other stacks a program reads with a StackReference, by fully qualified stack name."""
    preview: bool = False
    """Answer as a first `pulumi preview` does: inputs known, every computed output (ids, ARNs, endpoints, names
    completed from a prefix) unknown."""

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"


# id prefixes as AWS prints them, by type token
PLANNED_S3_CIDRS = ("203.0.113.0/24", "192.0.2.0/24")
"""The planner's stand-in for the region's S3 prefix list (documentation ranges, RFC 5737), unsorted as AWS may
return them."""

_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
}

# Types whose physical name Pulumi generates from the logical name when none is given: property -> max length.
_AUTONAMED = {
    "aws:iam/role:Role": ("name", 64),
    "aws:iam/policy:Policy": ("name", 128),
    "aws:cloudwatch/logGroup:LogGroup": ("name", 512),
    "aws:ec2/securityGroup:SecurityGroup": ("name", 255),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", 128),
    "aws:eks/nodeGroup:NodeGroup": ("nodeGroupName", 63),
    "aws:s3/bucket:Bucket": ("bucket", 63),
    "aws:sqs/queue:Queue": ("name", 80),
    "aws:cloudwatch/eventRule:EventRule": ("name", 64),
    "aws:rds/instance:Instance": ("identifier", 63),
    "aws:rds/subnetGroup:SubnetGroup": ("name", 255),
    "aws:secretsmanager/secret:Secret": ("name", 512),
    "aws:rds/parameterGroup:ParameterGroup": ("name", 255),
    "aws:codebuild/project:Project": ("name", 150),
}

# `<prop>Prefix` inputs that AWS completes with a unique suffix into `<prop>` (for any type that has them).
_PREFIXED = ("name", "identifier", "bucket")


# Types whose AWS id is their name, as the provider reports it.
_ID_IS_NAME = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:iam/role:Role": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:cloudwatch/eventRule:EventRule": "name",
}


class PlanMocks(mocks.Mocks):
    """Fake resource outputs and invoke answers derived from inputs and the plan context."""

    def __init__(self) -> None:
        self.ctx = PlanContext(region="us-east-1")
        self.generated_secrets: list[str] = []
        """Every value the mocks generated as a secret (passwords): a plan must contain none of them."""
        self._subnets: dict[str, dict[str, Any]] = {}
        """Planned subnets by id (their state), so that a network interface gets an address inside its subnet."""
        self._interface_subnets: dict[str, str] = {}
        """Subnet of each planned interface endpoint's network interface, by interface id."""

    def reset(self, ctx: PlanContext, keep_secrets: bool = False) -> None:
        """A new program run; `keep_secrets` when it is a later layer of the same plan (a plan holds none of the
        secrets generated in any of its layers)."""
        self.ctx = ctx
        self._subnets, self._interface_subnets = {}, {}
        if not keep_secrets:
            self.generated_secrets = []

    # -- resources ------------------------------------------------------------------------------------------

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        if typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(str(args.resource_id or inputs.get("name") or name))
        if args.resource_id:  # a read of an existing resource: echo what the program gave
            return args.resource_id, inputs
        preview = self.ctx.preview
        rid = _ID_PREFIX.get(typ, f"{name}-") + _digest(typ, name)
        state = dict(inputs)
        if typ in _AUTONAMED:
            # Pulumi autonames from the logical name when neither the name nor a prefix is given; it does so in
            # Check, so the name is known in a preview too.
            prop, limit = _AUTONAMED[typ]
            if not state.get(prop) and not state.get(f"{prop}Prefix"):
                state[prop] = f"{name}-{_digest(typ, name, length=7)}"[:limit]
        if typ.startswith("pulumi:providers:"):
            return rid, state
        if typ.startswith("kubernetes:") and preview:
            return "", {**state, **self._computed(typ, name, rid, state)}  # metadata.name: autonamed in Check
        known = dict(state)
        for prop in _PREFIXED:
            # AWS completes a `<prop>Prefix` with a unique suffix (known only after the create).
            prefix = state.get(f"{prop}Prefix")
            if prefix and not state.get(prop):
                limit = _AUTONAMED.get(typ, (prop, 255))[1]
                state[prop] = f"{prefix}{_digest(typ, name, length=7)}"[:limit]
        if typ in _ID_IS_NAME:
            rid = str(state[_ID_IS_NAME[typ]])
        state.update(self._computed(typ, name, rid, state))
        if typ == "aws:ec2/subnet:Subnet":
            self._subnets[rid] = state
        if typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and state.get("networkInterfaceIds"):
            self._interface_subnets.update(zip(state["networkInterfaceIds"], state["subnetIds"], strict=True))
        if preview:
            # A create in a first preview: the provider echoes the inputs; everything it computes (an id, an ARN,
            # a name completed from a prefix, a nested output such as the cluster's security group) is unknown.
            return "", _unknown_where_computed(known, state)
        return rid, state

    def _stack_reference(self, stack_name: str) -> tuple[str, dict[str, Any]]:
        known = self.ctx.stack_outputs.get(stack_name)
        if known is None:
            names = ", ".join(sorted(self.ctx.stack_outputs)) or "none"
            raise PlannerError(
                f"the program reads stack {stack_name!r} with a StackReference; the offline planner knows the "
                f"outputs of: {names}"
            )
        return stack_name, {
            "name": stack_name,
            "outputs": dict(known.values),
            "secretOutputNames": sorted(known.secret_names),
        }

    def _computed(self, typ: str, name: str, rid: str, state: dict[str, Any]) -> dict[str, Any]:
        ctx = self.ctx
        arn_base = f"arn:{ctx.partition}"
        region, account = ctx.region, ctx.account_id
        if typ.startswith("kubernetes:"):
            if not isinstance(state.get("metadata") or {}, dict):
                return {}  # unknown in a preview: so is the name
            meta = dict(state.get("metadata") or {})
            meta.setdefault("name", f"{name}-{_digest(typ, name, length=8)}")
            return {"metadata": meta}
        out: dict[str, Any] = {}
        module = typ.split(":")[1].split("/")[0] if ":" in typ else ""
        if typ == "aws:kms/key:Key":
            key_id = "-".join(
                (
                    _digest(typ, name, length=8),
                    _digest(name, length=4),
                    _digest(typ, length=4),
                    _digest(name, typ, length=4),
                    _digest(name, name, length=12),
                )
            )
            out.update(keyId=key_id, arn=f"{arn_base}:kms:{region}:{account}:key/{key_id}")
        elif typ == "aws:kms/alias:Alias":
            out["arn"] = f"{arn_base}:kms:{region}:{account}:{state.get('name', name)}"
        elif typ == "aws:iam/role:Role":
            out.update(arn=f"{arn_base}:iam::{account}:role/{state['name']}", uniqueId=f"AROA{_digest(name).upper()}")
        elif typ == "aws:iam/policy:Policy":
            out["arn"] = f"{arn_base}:iam::{account}:policy/{state['name']}"
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            out["arn"] = f"{arn_base}:logs:{region}:{account}:log-group:{state['name']}"
        elif typ == "aws:eks/cluster:Cluster":
            cluster = state.get("name") or name
            vpc = dict(state.get("vpcConfig") or {})
            vpc.update(clusterSecurityGroupId="sg-" + _digest(typ, name, "cluster-sg"), vpcId="vpc-planned")
            ca = base64.b64encode(f"offline-plan-ca-{cluster}".encode()).decode()
            oidc = _digest(typ, name, length=32).upper()
            out.update(
                name=cluster,
                arn=f"{arn_base}:eks:{region}:{account}:cluster/{cluster}",
                endpoint=f"https://{oidc}.gr7.{region}.eks.amazonaws.com",
                certificateAuthority={"data": ca},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{oidc}"}]}],
                vpcConfig=vpc,
                status="ACTIVE",
                platformVersion="eks.planned",
            )
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            out.update(
                arn=f"{arn_base}:eks:{region}:{account}:nodegroup/planned/{state['nodeGroupName']}/{rid}",
                status="ACTIVE",
                resources=[{"autoscalingGroups": [{"name": f"eks-{state['nodeGroupName']}"}]}],
            )
        elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
            out.update(
                latestVersion=1, defaultVersion=1, arn=f"{arn_base}:ec2:{region}:{account}:launch-template/{rid}"
            )
        elif typ == "aws:ec2/eip:Eip":
            octet = int(_digest(typ, name, length=2), 16) % 254 + 1
            out.update(allocationId=rid, publicIp=f"198.51.100.{octet}")  # TEST-NET-2, never a real address
        elif typ == "aws:s3/bucket:Bucket":
            out.update(
                arn=f"{arn_base}:s3:::{state['bucket']}",
                bucketDomainName=f"{state['bucket']}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{state['bucket']}.s3.{region}.amazonaws.com",
                region=region,
            )
        elif typ == "aws:sns/topic:Topic":
            out["arn"] = f"{arn_base}:sns:{region}:{account}:{state['name']}"
        elif typ == "aws:dynamodb/table:Table":
            out["arn"] = f"{arn_base}:dynamodb:{region}:{account}:table/{state['name']}"
        elif typ == "aws:sqs/queue:Queue":
            out.update(
                arn=f"{arn_base}:sqs:{region}:{account}:{state['name']}",
                url=f"https://sqs.{region}.amazonaws.com/{account}/{state['name']}",
            )
        elif typ == "aws:rds/instance:Instance":
            host = f"{state['identifier']}.{_digest(typ, length=12)}.{region}.rds.amazonaws.com"
            out.update(
                arn=f"{arn_base}:rds:{region}:{account}:db:{state['identifier']}",
                address=host,
                endpoint=f"{host}:5432",
                port=5432,
            )
            if state.get("manageMasterUserPassword"):
                # RDS names the secret it manages `rds!db-<uuid>`.
                managed = f"rds!db-{_digest(typ, name, length=32)}-{_digest(name, length=6)}"
                out["masterUserSecrets"] = [
                    {
                        "kmsKeyId": state.get("masterUserSecretKmsKeyId"),
                        "secretArn": f"{arn_base}:secretsmanager:{region}:{account}:secret:{managed}",
                        "secretStatus": "active",
                    }
                ]
        elif typ == "aws:secretsmanager/secret:Secret":
            out["arn"] = (
                f"{arn_base}:secretsmanager:{region}:{account}:secret:{state['name']}-{_digest(name, length=6)}"
            )
        elif typ == "random:index/randomPassword:RandomPassword":
            # Unique per resource, so that a leak can be traced; never a usable password. The planner redacts
            # secrets, and tests assert that none of these values appears in any plan.
            result = "mock-pw-" + _digest("random-password", name, length=24)
            bcrypt = "mock-bcrypt-" + _digest("bcrypt", name, length=24)
            self.generated_secrets.extend((result, bcrypt))
            out.update(result=result, bcryptHash=bcrypt)
        elif module in ("ec2", "eks", "iam", "cloudwatch", "s3", "sqs", "rds", "secretsmanager", "kms", "ecr"):
            out["arn"] = f"{arn_base}:{module}:{region}:{account}:{typ.rsplit(':', 1)[-1].lower()}/{rid}"
        if typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and state.get("vpcEndpointType") == "Interface":
            # AWS gives an interface endpoint one network interface per subnet, in the subnets' order here.
            subnets = state.get("subnetIds")
            ids = subnets if isinstance(subnets, list) else []  # a preview may not know the list itself
            out["networkInterfaceIds"] = [f"eni-{_digest(typ, name, str(s))}" for s in ids]
        return out

    # -- invokes --------------------------------------------------------------------------------------------

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        ctx = self.ctx
        token = args.token
        if token in ctx.invoke_handlers:
            return ctx.invoke_handlers[token](dict(args.args)), []
        region = ctx.region
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {
                "id": region,
                "names": [f"{region}{c}" for c in letters],
                "zoneIds": [f"{region[:3]}{region.split('-')[-1]}-az{i + 1}" for i in range(len(letters))],
                "groupNames": [region] * len(letters),
                "state": args.args.get("state"),
                "region": region,
            }, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "id": ctx.account_id,
                "accountId": ctx.account_id,
                "arn": f"arn:{ctx.partition}:iam::{ctx.account_id}:user/offline-planner",
                "userId": "AIDAOFFLINEPLANNER",
            }, []
        if token == "aws:index/getPartition:getPartition":
            suffix = "amazonaws.com.cn" if ctx.partition == "aws-cn" else "amazonaws.com"
            return {
                "id": ctx.partition,
                "partition": ctx.partition,
                "dnsSuffix": suffix,
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        if token == "aws:eks/getCluster:getCluster":
            return self._existing_cluster(str(args.args["name"])), []
        if token == "aws:ec2/getNetworkInterface:getNetworkInterface":
            return self._network_interface(args.args.get("id")), []
        if token == "aws:ec2/getSubnets:getSubnets":
            return self._subnets_matching(args.args.get("filters") or []), []
        if token == "aws:ec2/getPrefixList:getPrefixList":
            return self._managed_prefix_list(args.args), []
        if token == "aws:index/getRegion:getRegion":
            return {
                "id": region,
                "name": region,
                "region": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region,
            }, []
        raise PlannerError(
            f"the program called {token}, which the offline planner does not answer; add a deterministic "
            f"answer in mlp/mocks.py (invokes read live cloud state and cannot be planned otherwise)"
        )

    def _subnets_matching(self, filters: list[Any]) -> dict[str, Any]:
        """aws.ec2.get_subnets by `subnet-id` and `availability-zone` filters. A subnet the plan created has its
        planned AZ; any other id (an adopted subnet) is answered as lying in the region's AZs in the order the ids
        are listed (a, b, c...), as getAvailabilityZones answers them."""
        wanted = {str(f.get("name")): [str(v) for v in f.get("values") or []] for f in filters}
        unknown = sorted(set(wanted) - {"subnet-id", "availability-zone"})
        if unknown or "subnet-id" not in wanted:
            raise PlannerError(
                "the program looked up subnets by filters the offline planner does not answer "
                f"({', '.join(unknown) or 'no subnet-id'}); it answers aws.ec2.get_subnets by subnet-id and "
                "availability-zone"
            )
        ids = wanted["subnet-id"]
        zones = [
            str(self._subnets.get(s, {}).get("availabilityZone") or f"{self.ctx.region}{'abcdef'[i % 6]}")
            for i, s in enumerate(ids)
        ]
        found = [
            s
            for s, z in zip(ids, zones, strict=True)
            if "availability-zone" not in wanted or z in wanted["availability-zone"]
        ]
        return {"id": self.ctx.region, "ids": found, "filters": filters, "region": self.ctx.region}

    def _managed_prefix_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """An AWS-managed prefix list read by name (`com.amazonaws.<region>.s3`). Its entries are stand-ins from
        the documentation ranges (RFC 5737 TEST-NET-1 and TEST-NET-3), never real addresses: a plan reads no cloud,
        and AWS changes the real list (which `pulumi up` reads). Lists of other services are refused."""
        name = str(args.get("name") or "")
        region = self.ctx.region
        if name != f"com.amazonaws.{region}.s3":
            raise PlannerError(
                f"the program read the prefix list {name or args!r}; the offline planner answers "
                f"aws.ec2.get_prefix_list by name for com.amazonaws.{region}.s3 only"
            )
        return {
            "id": f"pl-{_digest('prefix-list', name, length=8)}",
            "prefixListId": f"pl-{_digest('prefix-list', name, length=8)}",
            "name": name,
            "cidrBlocks": list(PLANNED_S3_CIDRS),
            "filters": [],
            "region": region,
        }

    def _network_interface(self, eni: Any) -> dict[str, Any]:
        """A network interface read by id. One that the plan created (an interface endpoint's) gets a private
        address inside its subnet's CIDR, at an offset derived from the interface id, past the four addresses AWS
        keeps at the start of every subnet and before the last; any other id is a stand-in in 10.0.0.0/8. A
        derived address can repeat within a subnet (odds about n^2 / 2 / subnet size), never between subnets."""
        if not eni:
            raise PlannerError(
                "the program looked up a network interface by filters; the offline planner answers "
                "aws.ec2.get_network_interface by id only"
            )
        ctx, eni = self.ctx, str(eni)
        subnet_id = self._interface_subnets.get(eni)
        subnet = self._subnets.get(subnet_id or "", {})
        block = ipaddress.ip_network(str(subnet.get("cidrBlock") or "10.0.0.0/8"))
        offset = 4 + int(_digest("eni", eni, length=12), 16) % (block.num_addresses - 5)
        address = str(block.network_address + offset)
        return {
            "id": eni,
            "arn": f"arn:{ctx.partition}:ec2:{ctx.region}:{ctx.account_id}:network-interface/{eni}",
            "interfaceType": "vpc_endpoint" if subnet_id else "interface",
            "privateIp": address,
            "privateIps": [address],
            "subnetId": subnet_id or f"subnet-{_digest(eni, 'subnet')}",
            "vpcId": subnet.get("vpcId") or f"vpc-{_digest(eni, 'vpc')}",
            "availabilityZone": subnet.get("availabilityZone") or f"{ctx.region}a",
            "ownerId": ctx.account_id,
            "region": ctx.region,
        }

    def _existing_cluster(self, name: str) -> dict[str, Any]:
        """A stand-in for an EKS cluster that exists outside the program (read with aws.eks.get_cluster)."""
        ctx = self.ctx
        token = _digest("existing-cluster", name, length=32).upper()
        subnets = [f"subnet-{_digest(name, 'subnet', str(i))}" for i in range(3)]
        return {
            "id": name,
            "name": name,
            "arn": f"arn:{ctx.partition}:eks:{ctx.region}:{ctx.account_id}:cluster/{name}",
            "endpoint": f"https://{token}.gr7.{ctx.region}.eks.amazonaws.com",
            "certificateAuthorities": [{"data": base64.b64encode(f"offline-plan-ca-{name}".encode()).decode()}],
            "version": "1.35",
            "status": "ACTIVE",
            "roleArn": f"arn:{ctx.partition}:iam::{ctx.account_id}:role/{name}-cluster",
            "vpcConfig": {
                "clusterSecurityGroupId": f"sg-{_digest(name, 'cluster-sg')}",
                "subnetIds": subnets,
                "vpcId": f"vpc-{_digest(name, 'vpc')}",
                "endpointPrivateAccess": True,
                "endpointPublicAccess": False,
                "publicAccessCidrs": [],
                "securityGroupIds": [],
            },
            "accessConfigs": [{"authenticationMode": "API"}],
            "tags": {},
        }


@dataclass
class Recorded:
    """One registration as the engine would see it."""

    urn: str
    type: str
    name: str
    parent_urn: str
    provider_ref: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any]
    dependency_urns: list[str]
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    """The state the mocks answered with (inputs plus fake computed values), secrets redacted."""


SECRET = "[secret]"
UNKNOWN = "[unknown]"
"""How a plan shows a value that is unknown until the resource it comes from exists (a preview)."""


def _redact(value: Any) -> Any:
    """Replace secret values (as the SDK marks them) with a placeholder, recursively.

    Numbers arrive as doubles (protobuf Struct); whole numbers are shown as integers, as providers read them.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if known_types.is_unknown(value) or value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


RUN: ContextVar[int] = ContextVar("mlp_program_run", default=0)
"""Which program run a registration belongs to. A run that failed leaves tasks behind on the shared event loop;
they carry the failed run's context (its `dry_run` among it), and must not register into a later run's plan."""


class StaleRegistrationError(RuntimeError):
    """A registration from an earlier (failed) program run, refused."""


class RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that records every registration (with parent, provider and options) and runs transforms.

    The stock mock monitor does not run resource transforms; the engine does. So that a plan shows what the
    engine would send to providers, transforms run here in the engine's order: the resource's own, then each
    ancestor's, ending with the stack's.
    """

    def __init__(self, mock: PlanMocks) -> None:
        super().__init__(mock)
        self.plan_mocks = mock
        self._lock = threading.Lock()
        self.records: list[Recorded] = []
        self._transforms_by_urn: dict[str, list[Any]] = {}
        self._parent_of: dict[str, str] = {}
        self.run = 0
        # The SDK runs registrations on executor threads, each with an event loop of its own that nobody closes;
        # left to the garbage collector at exit they print "Exception ignored" tracebacks. Close them at exit.
        self._loops: set[asyncio.AbstractEventLoop] = set()
        atexit.register(self._close_loops)

    def _note_loop(self) -> None:
        loop: asyncio.AbstractEventLoop = _ensure_event_loop()  # type: ignore[no-untyped-call]
        with self._lock:
            self._loops.add(loop)

    def _close_loops(self) -> None:
        for loop in list(self._loops):
            if not loop.is_running() and not loop.is_closed():
                loop.close()

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self._refuse_stale()
        self._note_loop()
        return super().Invoke(request)  # type: ignore[no-untyped-call]

    def reset(self) -> int:
        """Start a new program run; returns its number, which the run must set in `RUN` before it starts."""
        with self._lock:
            self.run += 1
            self.records = []
            self.resources = {}
            self._stack_transforms = []
            self._transforms_by_urn = {}
            self._parent_of = {}
            return self.run

    def _refuse_stale(self) -> None:
        if RUN.get() != self.run:
            raise StaleRegistrationError(f"a registration of program run {RUN.get()} arrived during run {self.run}")

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self._refuse_stale()
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        self._note_loop()
        secret_inputs = rpc.deserialize_properties(request.object)  # secrets stay wrapped
        inputs = _redact(secret_inputs)
        own_transforms = mocks._resolve_callbacks(request.transforms)
        options = _options(request)
        with self._lock:
            self._transforms_by_urn[urn] = own_transforms
            self._parent_of[urn] = request.parent
            chain = self._transform_chain(urn)
        plain_inputs = _unwrap_secrets(secret_inputs)
        if chain:
            plain_inputs, options = _apply_transforms(chain, request, plain_inputs, options)
            inputs = _redact_like(plain_inputs, secret_inputs)
        resource_args = mocks.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=plain_inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
        )
        id_, state = self.mocks.new_resource(resource_args)
        state = {k: _to_unknown(v) for k, v in state.items()}
        obj_proto = _sync_await(rpc.serialize_properties(state, {}))
        property_dependencies = {
            prop: sorted(deps.urns) for prop, deps in request.propertyDependencies.items() if list(deps.urns)
        }
        explicit = set(request.dependencies) - {u for urns in property_dependencies.values() for u in urns}
        record = Recorded(
            urn=urn,
            type=request.type,
            name=request.name,
            parent_urn=request.parent,
            provider_ref=request.provider,
            custom=bool(request.custom),
            inputs=inputs,
            options=options,
            dependency_urns=sorted(explicit),
            property_dependencies=property_dependencies,
            outputs=self._redact_generated(_redact({**state, "id": id_} if id_ else state)),
        )
        with self._lock:
            self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_ or "", state)
            self.records.append(record)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_ or "", object=obj_proto)

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self._refuse_stale()
        self._note_loop()
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        state = rpc.deserialize_properties(request.properties)  # secrets stay wrapped
        with self._lock:
            self.records.append(
                Recorded(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent_urn=request.parent,
                    provider_ref=request.provider,
                    custom=True,
                    inputs=_redact(state),
                    options={"read": request.id},
                    dependency_urns=[],
                )
            )
        return response

    def _redact_generated(self, value: Any) -> Any:
        """Generated secrets (passwords) never leave the mocks, even in recorded outputs."""
        secrets = set(self.plan_mocks.generated_secrets)
        if isinstance(value, str):
            return SECRET if value in secrets else value
        if isinstance(value, dict):
            return {k: self._redact_generated(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_generated(v) for v in value]
        return value

    def _transform_chain(self, urn: str) -> list[Any]:
        chain: list[Any] = []
        current = urn
        while current:
            chain.extend(self._transforms_by_urn.get(current, []))
            current = self._parent_of.get(current, "")
        chain.extend(self._stack_transforms)
        return chain


def _options(request: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "protect": bool(request.protect),
        "retainOnDelete": bool(request.retainOnDelete),
        "ignoreChanges": sorted(request.ignoreChanges),
    }
    if request.deleteBeforeReplace:
        opts["deleteBeforeReplace"] = True
    if list(request.replaceOnChanges):
        opts["replaceOnChanges"] = sorted(request.replaceOnChanges)
    if request.importId:
        opts["import"] = request.importId
    if list(request.additionalSecretOutputs):
        opts["additionalSecretOutputs"] = sorted(request.additionalSecretOutputs)
    if request.deletedWith:
        opts["deletedWith"] = request.deletedWith
    timeouts = {k: getattr(request.customTimeouts, k) for k in ("create", "update", "delete")}
    if any(timeouts.values()):
        opts["customTimeouts"] = {k: v for k, v in timeouts.items() if v}
    return opts


def _apply_transforms(
    chain: list[Any], request: Any, props: dict[str, Any], options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    for transform in chain:
        args = pulumi.ResourceTransformArgs(
            custom=bool(request.custom),
            type_=request.type,
            name=request.name,
            props=props,
            opts=pulumi.ResourceOptions(
                protect=options["protect"],
                retain_on_delete=options["retainOnDelete"],
                ignore_changes=list(options["ignoreChanges"]),
            ),
        )
        result = transform(args)
        if inspect.isawaitable(result):
            result = asyncio.new_event_loop().run_until_complete(result)
        if result is None:
            continue
        props = dict(result.props)
        new_opts = result.opts
        if new_opts is not None:
            options = dict(options)
            if new_opts.protect is not None:
                options["protect"] = bool(new_opts.protect)
            if new_opts.retain_on_delete is not None:
                options["retainOnDelete"] = bool(new_opts.retain_on_delete)
            if new_opts.ignore_changes is not None:
                options["ignoreChanges"] = sorted(new_opts.ignore_changes)
    return props, options


def _unknown_where_computed(inputs: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """The inputs, plus every key the full (created) state adds marked unknown, at any depth."""
    out: dict[str, Any] = {}
    for key, value in full.items():
        if key not in inputs:
            out[key] = rpc.UNKNOWN
        elif isinstance(value, dict) and isinstance(inputs[key], dict):
            out[key] = _unknown_where_computed(inputs[key], value)
        else:
            out[key] = inputs[key]
    return out


def _to_unknown(value: Any) -> Any:
    """Unknown values (a preview) as the wire format carries them."""
    if known_types.is_unknown(value):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {k: _to_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_unknown(v) for v in value]
    return value


def _unwrap_secrets(value: Any) -> Any:
    """The plain values (what a provider receives), with the SDK's secret wrappers removed."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def _redact_like(plain: Any, marked: Any) -> Any:
    """Redact, in transformed inputs, the values that were secret before the transforms ran."""
    if isinstance(marked, dict) and marked.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return SECRET
    if isinstance(plain, dict):
        marked_map: Mapping[str, Any] = marked if isinstance(marked, dict) else {}
        return {k: _redact_like(v, marked_map.get(k)) for k, v in plain.items()}
    if isinstance(plain, list):
        marked_list = marked if isinstance(marked, list) else []
        return [_redact_like(v, marked_list[i] if i < len(marked_list) else None) for i, v in enumerate(plain)]
    return _redact(plain)
