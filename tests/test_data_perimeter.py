"""The lake's data perimeter, evaluated with `mlp.iam_eval` over each planned stack: a team pod's requests through
the S3 gateway endpoint (its prefix: allowed; another team's: denied), the same credentials from outside the VPC
(denied by the bucket policy: no `aws:SourceVpce`), the break-glass role from outside (allowed), and what the
endpoint's policy admits (this account's buckets, the AWS-owned buckets nodes read; not another account's bucket).

A request through the gateway endpoint is decided twice, as S3 does: the endpoint policy must allow it (it grants
nothing: every statement names `Principal: *`, and a request it does not allow is refused whatever the caller's
policies say; Amazon VPC User Guide, "Control access to VPC endpoints using endpoint policies"), and then the
caller's identity policies and the bucket policy decide as usual."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlplatform.infra.data.documents import LakePerimeter, lake_bucket_policy
from mlplatform.infra.network.documents import node_s3_buckets, registry_s3_buckets
from mlplatform.mlp.iam_eval import Decision, Policy, Request, RolePrincipal, evaluate
from mlplatform.mlp.planner import Plan
from tests.iam_harness import Lake, Workload

STACKS = ("dev", "staging", "prod")
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
OTHER_ACCOUNT = "999988887777"
BREAK_GLASS = "arn:aws:iam::444455556666:role/mlp-prod-lake-break-glass"
"""prod's `data_lake.perimeter.break_glass_role_arns`."""


def _gateway(plan: Plan) -> tuple[str, str, Policy]:
    """The S3 gateway endpoint's id, VPC and policy."""
    [endpoint] = [r for r in plan.of_type(ENDPOINT) if r.inputs["vpcEndpointType"] == "Gateway"]
    return (
        str(endpoint.outputs["id"]),
        str(endpoint.inputs["vpcId"]),
        Policy.parse("s3 endpoint policy", endpoint.inputs["policy"], resource_policy=True),
    )


def _context(lake: Lake, *, vpce: str | None, vpc: str | None, owner: str | None = None) -> dict[str, Any]:
    """A signed HTTPS request's context; with `vpce`, one that came through that gateway endpoint."""
    context: dict[str, Any] = {
        "aws:SecureTransport": "true",
        "aws:PrincipalIsAWSService": "false",
        "aws:RequestedRegion": lake.region,
        "aws:ResourceAccount": owner or lake.account,
    }
    if vpce is not None:
        context["aws:SourceVpce"] = vpce
    if vpc is not None:
        context["aws:SourceVpc"] = vpc
    return context


def _object(lake: Lake, zone: str, key: str) -> str:
    return f"arn:aws:s3:::{lake.buckets[zone]}/{key}"


def _through_endpoint(
    plan: Plan, request: Request, principal: RolePrincipal, identity: list[Policy], bucket: Policy | None
) -> Decision:
    _, _, endpoint_policy = _gateway(plan)
    gate = evaluate(request, principal, [], endpoint_policy)
    if not gate.allowed:
        return Decision(gate.outcome, f"endpoint policy: {gate.reason}")
    return evaluate(request, principal, identity, bucket)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_lake_bucket_policy_carries_the_perimeter(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    lake = Lake.of(plan)
    vpce, _, _ = _gateway(plan)
    assert set(lake.bucket_policies) == set(lake.buckets.values())
    for bucket, policy in lake.bucket_policies.items():
        [statement] = [s for s in policy.statements if s.sid == "DenyObjectAccessFromOutsideTheVpc"]
        assert statement.effect == "Deny"
        conditions = {(c.operator, c.key): c.values for c in statement.conditions}
        assert conditions[("StringNotEquals", "aws:SourceVpce")] == (vpce,), bucket
        if stack == "prod":
            assert conditions[("ArnNotEquals", "aws:PrincipalArn")] == (BREAK_GLASS,)
        else:
            assert ("ArnNotEquals", "aws:PrincipalArn") not in conditions


@pytest.mark.parametrize("zone", ["raw", "curated", "features", "models", "artifacts"])
def test_a_team_pod_reads_and_writes_its_prefix_through_the_endpoint(
    plans: dict[str, Plan], stack: str, zone: str
) -> None:
    plan = plans[stack]
    lake = Lake.of(plan)
    vpce, vpc, _ = _gateway(plan)
    team = Workload.of(plan, "team-research", "workload")
    inside = _context(lake, vpce=vpce, vpc=vpc)
    bucket = lake.bucket_policies[lake.buckets[zone]]
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        own = Request(action=action, resource=_object(lake, zone, "teams/research/run-1/data.parquet"), context=inside)
        assert _through_endpoint(plan, own, team.principal, list(team.policies), bucket).allowed, (action, zone)


def test_another_teams_prefix_is_refused_even_inside(plans: dict[str, Plan]) -> None:
    plan = plans["staging"]
    lake = Lake.of(plan)
    vpce, vpc, _ = _gateway(plan)
    team = Workload.of(plan, "team-research", "workload")
    inside = _context(lake, vpce=vpce, vpc=vpc)
    for zone in ("raw", "curated", "features", "models", "artifacts"):
        bucket = lake.bucket_policies[lake.buckets[zone]]
        for key in ("teams/applied/features.parquet", "teams/researchers/x", "shared/x"):
            request = Request(action="s3:GetObject", resource=_object(lake, zone, key), context=inside)
            decision = _through_endpoint(plan, request, team.principal, list(team.policies), bucket)
            assert decision.outcome == "implicit_deny", (zone, key, decision)


def test_the_same_credentials_outside_the_vpc_are_refused(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    lake = Lake.of(plan)
    _, vpc, _ = _gateway(plan)
    team = Workload.of(plan, "team-research", "workload")
    curated = lake.bucket_policies[lake.buckets["curated"]]
    key = _object(lake, "curated", "teams/research/data.parquet")
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        # a laptop, another network: no endpoint in the context
        outside = Request(action=action, resource=key, context=_context(lake, vpce=None, vpc=None))
        decision = evaluate(outside, team.principal, list(team.policies), curated)
        assert decision.outcome == "explicit_deny", (action, decision)
        assert decision.reason.endswith(":DenyObjectAccessFromOutsideTheVpc")
        # another VPC's endpoint
        elsewhere = Request(action=action, resource=key, context=_context(lake, vpce="vpce-0123456789abcdef0", vpc=vpc))
        assert evaluate(elsewhere, team.principal, list(team.policies), curated).outcome == "explicit_deny"
    # Key names stay listable from outside (s3:ListBucket is left out of the perimeter on purpose: HeadBucket is
    # authorized as ListBucket and the deployer calls it from anywhere; `OBJECT_DATA_ACTIONS`), within the prefix
    # the role may list.
    listing = Request(
        action="s3:ListBucket",
        resource=f"arn:aws:s3:::{lake.buckets['curated']}",
        context={**_context(lake, vpce=None, vpc=None), "s3:prefix": "teams/research/"},
    )
    assert evaluate(listing, team.principal, list(team.policies), curated).allowed
    # Without the perimeter the same request would pass: the statement is what refuses it.
    no_perimeter = Policy(
        curated.name,
        tuple(s for s in curated.statements if s.sid != "DenyObjectAccessFromOutsideTheVpc"),
        curated.variables,
        curated.resource_policy,
    )
    outside = Request(action="s3:GetObject", resource=key, context=_context(lake, vpce=None, vpc=None))
    assert evaluate(outside, team.principal, list(team.policies), no_perimeter).allowed


def test_the_break_glass_role_works_from_outside(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    lake = Lake.of(plan)
    curated = lake.bucket_policies[lake.buckets["curated"]]
    # Its own identity policy is the account's to write (not in the plan): a stand-in that reads the lake.
    reads = Policy.parse(
        "break-glass identity",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"}],
        },
    )
    outside = _context(lake, vpce=None, vpc=None)
    key = _object(lake, "curated", "teams/research/data.parquet")
    assert evaluate(
        Request(action="s3:GetObject", resource=key, context=outside), RolePrincipal(BREAK_GLASS), [reads], curated
    ).allowed
    # The same permissions on another role of the account: refused.
    admin = RolePrincipal("arn:aws:iam::444455556666:role/platform-admin")
    decision = evaluate(Request(action="s3:GetObject", resource=key, context=outside), admin, [reads], curated)
    assert decision.outcome == "explicit_deny"
    # The break-glass role still gets no plaintext over HTTP.
    http = {**outside, "aws:SecureTransport": "false"}
    decision = evaluate(
        Request(action="s3:GetObject", resource=key, context=http), RolePrincipal(BREAK_GLASS), [reads], curated
    )
    assert decision.outcome == "explicit_deny"


def test_the_endpoint_refuses_another_accounts_bucket(plans: dict[str, Plan], stack: str) -> None:
    """Credentials brought into a pod (another account's keys) cannot write out through the endpoint."""
    plan = plans[stack]
    lake = Lake.of(plan)
    vpce, vpc, endpoint_policy = _gateway(plan)
    intruder = RolePrincipal(f"arn:aws:iam::{OTHER_ACCOUNT}:role/exfil")
    everything = Policy.parse(
        "intruder", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    )
    for action in ("s3:PutObject", "s3:GetObject"):
        request = Request(
            action=action,
            resource="arn:aws:s3:::exfil-bucket/dump.tar",
            context=_context(lake, vpce=vpce, vpc=vpc, owner=OTHER_ACCOUNT),
        )
        decision = _through_endpoint(plan, request, intruder, [everything], None)
        assert decision.outcome == "implicit_deny" and decision.reason.startswith("endpoint policy:"), decision
    # A bucket of this account passes the endpoint (the bucket policy and the caller's policies decide then).
    own = Request(
        action="s3:PutObject",
        resource=_object(lake, "curated", "x"),
        context=_context(lake, vpce=vpce, vpc=vpc),
    )
    assert evaluate(own, RolePrincipal(f"arn:aws:iam::{lake.account}:role/any"), [], endpoint_policy).allowed


def test_nodes_read_the_aws_owned_buckets_through_the_endpoint(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    lake = Lake.of(plan)
    vpce, vpc, endpoint_policy = _gateway(plan)
    node = RolePrincipal(f"arn:aws:iam::{lake.account}:role/node")
    aws_owned = _context(lake, vpce=vpce, vpc=vpc, owner="000000000000")
    ecr = f"prod-{lake.region}-starport-layer-bucket"
    assert ecr in node_s3_buckets(lake.region)
    for bucket in (*node_s3_buckets(lake.region), *registry_s3_buckets(lake.region)):
        read = Request(action="s3:GetObject", resource=f"arn:aws:s3:::{bucket}/sha256/abc", context=aws_owned)
        assert evaluate(read, node, [], endpoint_policy).allowed, bucket
    # Reads only, and only those buckets.
    write = Request(action="s3:PutObject", resource=f"arn:aws:s3:::{ecr}/x", context=aws_owned)
    assert not evaluate(write, node, [], endpoint_policy).allowed
    other = Request(
        action="s3:GetObject", resource=f"arn:aws:s3:::prod-{lake.region}-starport-layer-bucket-x/y", context=aws_owned
    )
    assert not evaluate(other, node, [], endpoint_policy).allowed


def test_the_vpc_variant_keys_on_the_vpc() -> None:
    """An adopted VPC whose endpoint the config does not name: `aws:SourceVpc` instead of `aws:SourceVpce`."""
    arn = "arn:aws:s3:::lake-curated"
    policy = Policy.parse(
        "curated",
        lake_bucket_policy(arn, "arn:aws:kms:us-east-1:111122223333:key/k", LakePerimeter(source_vpc="vpc-0a1b2c3d")),
        resource_policy=True,
    )
    role = RolePrincipal("arn:aws:iam::111122223333:role/team")
    reads = Policy.parse(
        "reads",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
    )
    base = {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "false"}

    def decide(context: dict[str, Any]) -> str:
        return evaluate(
            Request(action="s3:GetObject", resource=f"{arn}/k", context=context), role, [reads], policy
        ).outcome

    assert decide({**base, "aws:SourceVpc": "vpc-0a1b2c3d", "aws:SourceVpce": "vpce-0123456789abcdef0"}) == "allowed"
    assert decide({**base, "aws:SourceVpc": "vpc-99999999"}) == "explicit_deny"
    assert decide(base) == "explicit_deny"
    assert json.loads(lake_bucket_policy(arn, "k"))["Statement"][0]["Sid"] == "DenyInsecureTransport"
