"""Support for the IAM contract tests: the policies of a planned stack, a workload's identity, client-side call
recording (botocore hooks), and deciding every recorded call with `mlp.iam_eval`.

The calls come from the server side (`tests.aws_server.recording_moto`): every request, from any process and SDK.
For code running in the test process (and its forked workers) botocore hooks record the operations the client
issued as well, and the two lists must agree: nothing went around the recorder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplatform.mlp.iam_calls import ApiCall, BucketEncryption, Caller, HttpExchange, api_call, authorizations
from mlplatform.mlp.iam_eval import Decision, Policy, Request, RolePrincipal, evaluate
from mlplatform.mlp.planner import Plan
from tests.aws_server import Recorded

MOTO_ACCOUNT = "123456789012"
"""The account moto puts in the ARNs it makes; rewritten to the plan's account before evaluating."""


# -- what the plan says -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedSecret:
    arn: str
    key_arn: str | None


@dataclass(frozen=True)
class Lake:
    """The resource side of a planned stack: bucket and key policies, default encryption, platform secrets."""

    account: str
    region: str
    buckets: dict[str, str]
    """Zone (raw, curated, features, models, artifacts, access-logs) -> planned bucket name."""
    bucket_policies: dict[str, Policy]
    key_policies: dict[str, Policy]
    encryption: dict[str, BucketEncryption]
    secrets: dict[str, PlannedSecret]
    """By secret name."""
    s3_endpoint: str | None = None
    """The VPC's S3 gateway endpoint id: a pod's S3 requests go through it (`aws:SourceVpce`)."""
    vpc: str | None = None

    @classmethod
    def of(cls, plan: Plan) -> Lake:
        buckets = {
            r.name.removeprefix("lake-"): str(r.outputs["bucket"])
            for r in plan.of_type("aws:s3/bucket:Bucket")
            if r.name.startswith("lake-")
        }
        policies = {
            str(r.inputs["bucket"]): Policy.parse(r.name, r.inputs["policy"], resource_policy=True)
            for r in plan.of_type("aws:s3/bucketPolicy:BucketPolicy")
        }
        keys = {
            str(r.outputs["arn"]): Policy.parse(f"{r.name} key policy", r.inputs["policy"], resource_policy=True)
            for r in plan.of_type("aws:kms/key:Key")
        }
        encryption: dict[str, BucketEncryption] = {}
        for r in plan.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
            rule = r.inputs["rules"][0]
            default = rule["applyServerSideEncryptionByDefault"]
            key = default.get("kmsMasterKeyId") if default["sseAlgorithm"].startswith("aws:kms") else None
            encryption[str(r.inputs["bucket"])] = BucketEncryption(
                key_arn=key, bucket_key=bool(rule.get("bucketKeyEnabled"))
            )
        secrets = {
            str(r.inputs["name"]): PlannedSecret(str(r.outputs["arn"]), r.inputs.get("kmsKeyId"))
            for r in plan.of_type("aws:secretsmanager/secret:Secret")
        }
        roles = plan.of_type("aws:iam/role:Role")
        account = str(roles[0].outputs["arn"]).split(":")[4]
        region = next(iter(keys)).split(":")[3]
        gateway = [
            r for r in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.inputs.get("vpcEndpointType") == "Gateway"
        ]
        endpoint = str(gateway[0].outputs["id"]) if gateway else None
        vpc = str(gateway[0].inputs["vpcId"]) if gateway else None
        return cls(account, region, buckets, policies, keys, encryption, secrets, endpoint, vpc)

    @classmethod
    def created(cls, plan: Plan) -> Lake:
        """The planned lake, with every planned bucket created (by its planned name) where boto3 points: the
        moto server of the test."""
        import boto3

        lake = cls.of(plan)
        s3 = boto3.client("s3")
        for bucket in lake.buckets.values():
            s3.create_bucket(Bucket=bucket)
        return lake

    def in_vpc(self, request: Request) -> Request:
        """`request` as S3 sees it from a pod: through the VPC's gateway endpoint (other services' requests, and
        the KMS requests S3 makes on the caller's behalf, carry no S3 endpoint)."""
        if not request.action.startswith("s3:") or self.s3_endpoint is None:
            return request
        extra = {"aws:SourceVpce": self.s3_endpoint, "aws:SourceVpc": self.vpc or ""}
        return dataclasses.replace(request, context={**request.context, **extra})


@dataclass(frozen=True)
class Workload:
    """A service account's role (by its Pod Identity association) and the role's inline policies, from the plan."""

    namespace: str
    service_account: str
    principal: RolePrincipal
    policies: tuple[Policy, ...]

    @classmethod
    def of(cls, plan: Plan, namespace: str, service_account: str) -> Workload:
        associations = [
            r
            for r in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
            if (r.inputs["namespace"], r.inputs["serviceAccount"]) == (namespace, service_account)
        ]
        assert len(associations) == 1, f"{namespace}/{service_account}: {len(associations)} Pod Identity associations"
        role_arn = str(associations[0].inputs["roleArn"])
        role_name = role_arn.rsplit("/", 1)[-1]
        attached = [
            r
            for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if r.inputs["role"] == role_name
        ]
        # Managed policies cannot be read offline; the workload roles have none (their policies are inline).
        assert not attached, f"{role_name} has managed policies attached: {[r.inputs['policyArn'] for r in attached]}"
        inline = tuple(
            Policy.parse(r.name, r.inputs["policy"])
            for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
            if r.inputs["role"] == role_name
        )
        assert inline, f"{role_name} has no inline policy in the plan"
        return cls(namespace, service_account, RolePrincipal(role_arn, service_account), inline)


# -- deciding recorded calls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    call: ApiCall
    user_agent: str
    request: Request
    decision: Decision

    def line(self) -> str:
        return f"{self.call.operation}: {self.request.describe()} -> {self.decision.outcome} ({self.decision.reason})"


@dataclass
class Judged:
    """Every recorded call of one run and the decision on each authorization it needs."""

    calls: list[ApiCall] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def operations(self) -> Counter[str]:
        return Counter(c.operation for c in self.calls)

    @property
    def denied(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.decision.allowed]

    def calls_allowed(self) -> int:
        """Calls whose every authorization is allowed."""
        denied_calls = {id(v.call) for v in self.denied}
        return sum(1 for c in self.calls if id(c) not in denied_calls)

    def explain_denials(self) -> str:
        return "\n".join(v.line() for v in self.denied)


_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def _secret(recorded: Recorded, lake: Lake) -> PlannedSecret:
    """The planned secret a Secrets Manager response names (moto makes its own ARN suffix and account)."""
    arn = json.loads(recorded.response)["ARN"]
    name = _SUFFIX.sub("", arn.split(":secret:", 1)[1])
    if name in lake.secrets:
        return lake.secrets[name]
    # A secret the platform does not create (a hub token): its ARN in the plan's account, the AWS managed key.
    return PlannedSecret(arn.replace(f":{MOTO_ACCOUNT}:", f":{lake.account}:"), None)


def enforcer(workload: Workload, lake: Lake) -> Callable[[HttpExchange], bool]:
    """For `RequestLog.enforce`: a request is allowed when every authorization it needs is, as `judge` decides."""

    def allowed(exchange: HttpExchange) -> bool:
        entry = Recorded(exchange, "", lake.region, b"", "authorization" not in exchange.headers)
        return not judge([entry], workload, lake).denied

    return allowed


def judge(recorded: Sequence[Recorded], workload: Workload, lake: Lake) -> Judged:
    """Decide every authorization of every recorded call against the workload's identity policies and the
    resource's policy (the bucket's, the key's)."""
    caller = Caller(account=lake.account, region=lake.region)
    out = Judged()
    for entry in recorded:
        call = api_call(entry.exchange)
        out.calls.append(call)
        kwargs: dict[str, Any] = {"bucket_encryption": lake.encryption}
        if call.service == "secretsmanager":
            secret = _secret(entry, lake)
            kwargs = {"secret_arn": secret.arn, "secret_key_arn": secret.key_arn}
        for planned in authorizations(call, caller, **kwargs):
            request = lake.in_vpc(planned)
            resource_policy = None
            if request.action.startswith("s3:") and request.resource != "*":
                resource_policy = lake.bucket_policies.get(request.resource.split(":::", 1)[1].split("/", 1)[0])
            elif request.action.startswith("kms:"):
                resource_policy = lake.key_policies.get(request.resource)
            decision = evaluate(request, workload.principal, workload.policies, resource_policy)
            out.verdicts.append(Verdict(call, entry.user_agent, request, decision))
    return out


# -- client-side recording --------------------------------------------------------------------------------------

_SINK: list[Path] = []


def _record_operation(model: Any, **_: Any) -> None:
    """botocore `before-call.*.*`: once per API call (retries happen below it), in any process forked from here."""
    if _SINK:
        with _SINK[0].open("a") as f:
            f.write(json.dumps({"service": model.service_model.signing_name, "operation": model.name}) + "\n")


@contextlib.contextmanager
def client_operations(path: Path) -> Iterator[list[tuple[str, str]]]:
    """Record the (service, operation) of every botocore call made in the block, by this process and processes it
    forks (KServe downloads in a multiprocessing pool). The hook goes into botocore's built-in handlers, which every
    new session installs; the default boto3 session is dropped so that it is made again with the hook."""
    import boto3
    import botocore.handlers

    entry = ("before-call.*.*", _record_operation)
    botocore.handlers.BUILTIN_HANDLERS.append(entry)
    boto3.DEFAULT_SESSION = None
    path.write_text("")
    _SINK[:] = [path]
    seen: list[tuple[str, str]] = []
    try:
        yield seen
    finally:
        _SINK.clear()
        botocore.handlers.BUILTIN_HANDLERS.remove(entry)
        boto3.DEFAULT_SESSION = None
        for line in path.read_text().splitlines():
            record = json.loads(line)
            seen.append((record["service"], record["operation"]))


def server_operations(recorded: Sequence[Recorded]) -> Counter[tuple[str, str]]:
    return Counter((r.exchange.service, api_call(r.exchange).operation) for r in recorded)


# -- the table --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    workload: str
    client: str
    judged: Judged
    negative: str
    negative_judged: Judged

    def cells(self) -> list[str]:
        j = self.judged
        ops = ", ".join(f"{op} {n}" for op, n in sorted(j.operations.items()))
        denied = self.negative_judged.denied
        negative = (
            f"{self.negative}: **denied** ({denied[0].request.action})" if denied else f"{self.negative}: allowed"
        )
        return [
            self.workload,
            self.client,
            f"{len(j.calls)} ({ops})",
            f"{j.calls_allowed()} of {len(j.calls)}; {sum(v.decision.allowed for v in j.verdicts)} of "
            f"{len(j.verdicts)} authorizations",
            negative,
        ]


def markdown_table(rows: Sequence[Row]) -> str:
    head = ["workload", "client code", "calls recorded", "allowed", "negative control"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)
