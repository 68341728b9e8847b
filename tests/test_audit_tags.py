"""`mlp audit-tags`: the audit, the mapping file, the fix plan and its application.

Against a real moto server over HTTP (fixture `moto_endpoint`): EC2 DescribeInstances/DescribeVolumes/
DescribeNetworkInterfaces/CreateTags, S3 ListBuckets/GetBucketLocation/GetBucketTagging/PutBucketTagging, RDS
DescribeDBInstances/DescribeDBClusters/AddTagsToResource, EKS ListClusters/DescribeCluster/ListNodegroups/
DescribeNodegroup/TagResource (clusters), ELBv2 DescribeLoadBalancers/DescribeTags/AddTags.

With botocore's Stubber, because moto cannot do it: EKS TagResource on a managed node group (moto 5.2.5 tags
clusters only and answers ResourceNotFoundException for a node group ARN, although it lists and describes node
groups with their tags), a requester-managed network interface (moto cannot create one), an AccessDenied from one
service and rejected credentials.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from mlplatform.mlp.audit_tags import (
    AuditReport,
    Finding,
    MappingError,
    TagChange,
    TagMapping,
    apply_fix,
    audit,
    load_mapping,
    plan_fix,
    render_table,
    to_json,
)
from mlplatform.mlp.aws import AwsContext
from mlplatform.mlp.errors import AccountError

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
REQUIRED = ("cost-center", "team", "environment", "project", "owner")
ALL = REQUIRED
FULL = {"cost-center": "ml-1234", "team": "research", "environment": "prod", "project": "mlp", "owner": "ana"}
AMI = "ami-12c6146b"  # one of moto's bundled images


def minus(*keys: str) -> dict[str, str]:
    return {key: value for key, value in FULL.items() if key not in keys}


@dataclass(frozen=True)
class Seed:
    kind: str  # as the audit names it
    name: str
    tags: dict[str, str]
    lacks: tuple[str, ...] = ()  # what the audit must report missing (empty: the resource must not be reported)
    on: str = ""  # a root volume or primary network interface: the instance that created it


# fmt: off
# The account the tests audit: 50 resources in us-east-1, of which 17 lack required tags.
SEED: list[Seed] = [
    #    kind                     name               tags                                      lacks
    Seed("ec2:instance",          "train-1",         FULL),
    Seed("ec2:instance",          "train-2",         minus("team"),                            ("team",)),
    Seed("ec2:instance",          "infer-1",         minus("cost-center") | {"Cost-Center": "x"}, ("cost-center",)),
    Seed("ec2:volume",            "train-1-root",    FULL,                                     on="train-1"),
    Seed("ec2:volume",            "train-2-root",    {},                                       ALL, on="train-2"),
    Seed("ec2:volume",            "infer-1-root",    FULL,                                     on="infer-1"),
    Seed("ec2:volume",            "scratch-1",       FULL),
    Seed("ec2:volume",            "scratch-2",       FULL | {"project": ""},                   ("project",)),
    Seed("ec2:volume",            "scratch-3",       FULL),
    Seed("ec2:network-interface", "train-1-eni",     FULL,                                     on="train-1"),
    Seed("ec2:network-interface", "train-2-eni",     FULL,                                     on="train-2"),
    Seed("ec2:network-interface", "infer-1-eni",     {},                                       ALL, on="infer-1"),
    Seed("ec2:network-interface", "extra-eni-1",     minus("environment"),                     ("environment",)),
    Seed("ec2:network-interface", "extra-eni-2",     minus("cost-center", "team"),             ("cost-center", "team")),
    Seed("s3:bucket",             "mlp-data-lake",   FULL),
    Seed("s3:bucket",             "mlp-artifacts",   FULL),
    Seed("s3:bucket",             "mlp-logs",        FULL),
    Seed("s3:bucket",             "mlp-scratch",     {},                                       ALL),  # no tag set
    Seed("s3:bucket",             "mlp-models",      FULL | {"owner": ""},                     ("owner",)),
    Seed("s3:bucket",             "mlp-features",    minus("team") | {"Team": "ml"},           ("team",)),
    Seed("rds:db",                "mlflow",          FULL),
    Seed("rds:db",                "feature-store",   FULL),
    Seed("rds:db",                "label-db",        minus("cost-center"),                     ("cost-center",)),
    Seed("rds:cluster",           "analytics",       minus("project", "owner"),                ("project", "owner")),
    Seed("eks:cluster",           "ml-prod",         FULL),
    Seed("eks:cluster",           "ml-dev",          FULL | {"environment": ""},               ("environment",)),
    # Fully tagged: moto cannot tag node groups, so one lacking tags could not be fixed here (see the stub test).
    Seed("eks:nodegroup",         "ml-prod/system",  FULL),
    Seed("eks:nodegroup",         "ml-prod/gpu",     FULL),
    Seed("eks:nodegroup",         "ml-dev/system",   FULL),
    Seed("elbv2:loadbalancer",    "lb-02",           minus("team"),                            ("team",)),
    Seed("elbv2:loadbalancer",    "lb-09",           minus("owner") | {"OWNER": "ana"},        ("owner",)),
    Seed("elbv2:loadbalancer",    "lb-20",           {},                                       ALL),
    # lb-21 is listed last, alone in the second DescribeTags batch (20 ARNs per call).
    Seed("elbv2:loadbalancer",    "lb-21",           FULL | {"environment": ""},               ("environment",)),
    *[Seed("elbv2:loadbalancer", f"lb-{n:02}", FULL) for n in range(1, 22) if n not in (2, 9, 20, 21)],
]
# fmt: on
# Also seeded, and neither scanned nor reported: a bucket in another region and a terminated instance, untagged.
OTHER_REGION_BUCKET = "mlp-eu-replica"


def test_the_seed_table_is_what_the_tests_claim() -> None:
    assert len(SEED) == 50
    assert sum(1 for seed in SEED if seed.lacks) == 17
    assert len({seed.name for seed in SEED}) == 50


# --- seeding ------------------------------------------------------------------------------------------------------


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def seed_account(seeds: list[Seed]) -> dict[str, str]:
    """Create the seeded resources in moto; returns each seed's name -> the id the audit reports."""
    ec2, s3, rds, eks, elbv2 = (boto3.client(s, region_name=REGION) for s in ("ec2", "s3", "rds", "eks", "elbv2"))
    subnets = [subnet["SubnetId"] for subnet in ec2.describe_subnets()["Subnets"]][:2]
    role = f"arn:aws:iam::{ACCOUNT}:role/eks"
    ids: dict[str, str] = {}
    # Instances first: their root volumes and primary network interfaces are tagged afterwards, as their rows say.
    for seed in (s for s in seeds if s.kind == "ec2:instance"):
        spec = [{"ResourceType": "instance", "Tags": tag_list({"Name": seed.name, **seed.tags})}]
        instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=spec)["Instances"][0]
        ids[seed.name] = instance["InstanceId"]
    for seed in seeds:
        ec2_tags = tag_list({"Name": seed.name, **seed.tags})
        if seed.kind == "ec2:volume" and seed.on:
            attached = [{"Name": "attachment.instance-id", "Values": [ids[seed.on]]}]
            ids[seed.name] = ec2.describe_volumes(Filters=attached)["Volumes"][0]["VolumeId"]
            ec2.create_tags(Resources=[ids[seed.name]], Tags=ec2_tags)
        elif seed.kind == "ec2:volume":
            spec = [{"ResourceType": "volume", "Tags": ec2_tags}]
            ids[seed.name] = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, TagSpecifications=spec)[
                "VolumeId"
            ]
        elif seed.kind == "ec2:network-interface" and seed.on:
            attached = [{"Name": "attachment.instance-id", "Values": [ids[seed.on]]}]
            enis = ec2.describe_network_interfaces(Filters=attached)["NetworkInterfaces"]
            ids[seed.name] = enis[0]["NetworkInterfaceId"]
            ec2.create_tags(Resources=[ids[seed.name]], Tags=ec2_tags)
        elif seed.kind == "ec2:network-interface":
            spec = [{"ResourceType": "network-interface", "Tags": ec2_tags}]
            eni = ec2.create_network_interface(SubnetId=subnets[0], TagSpecifications=spec)["NetworkInterface"]
            ids[seed.name] = eni["NetworkInterfaceId"]
        elif seed.kind == "s3:bucket":
            s3.create_bucket(Bucket=seed.name)
            if seed.tags:
                s3.put_bucket_tagging(Bucket=seed.name, Tagging={"TagSet": tag_list(seed.tags)})
            ids[seed.name] = seed.name
        elif seed.kind == "rds:db":
            ids[seed.name] = rds.create_db_instance(
                DBInstanceIdentifier=seed.name,
                DBInstanceClass="db.t3.micro",
                Engine="postgres",
                MasterUsername="admin",
                MasterUserPassword="not-a-secret-1",
                AllocatedStorage=20,
                Tags=tag_list(seed.tags),
            )["DBInstance"]["DBInstanceArn"]
        elif seed.kind == "rds:cluster":
            ids[seed.name] = rds.create_db_cluster(
                DBClusterIdentifier=seed.name,
                Engine="aurora-postgresql",
                MasterUsername="admin",
                MasterUserPassword="not-a-secret-1",
                Tags=tag_list(seed.tags),
            )["DBCluster"]["DBClusterArn"]
        elif seed.kind == "eks:cluster":
            ids[seed.name] = eks.create_cluster(
                name=seed.name, roleArn=role, resourcesVpcConfig={"subnetIds": subnets}, tags=seed.tags
            )["cluster"]["arn"]
    for seed in (s for s in seeds if s.kind == "eks:nodegroup"):
        cluster, group = seed.name.split("/")
        ids[seed.name] = eks.create_nodegroup(
            clusterName=cluster, nodegroupName=group, subnets=subnets, nodeRole=role, tags=seed.tags
        )["nodegroup"]["nodegroupArn"]
    # In name order: moto lists load balancers in creation order, so lb-21 ends up alone in the second batch.
    for seed in sorted((s for s in seeds if s.kind == "elbv2:loadbalancer"), key=lambda s: s.name):
        kind = "network" if int(seed.name[-2:]) % 2 else "application"
        tags = {"Tags": tag_list(seed.tags)} if seed.tags else {}  # the API takes no empty list
        created = elbv2.create_load_balancer(Name=seed.name, Subnets=subnets, Type=kind, **tags)
        ids[seed.name] = created["LoadBalancers"][0]["LoadBalancerArn"]
    assert len(ids) == len(seeds)
    return ids


def seed_out_of_scope() -> None:
    """An untagged bucket in another region and an untagged terminated instance: the audit must not see them."""
    s3, ec2 = boto3.client("s3", region_name=REGION), boto3.client("ec2", region_name=REGION)
    s3.create_bucket(Bucket=OTHER_REGION_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[instance])
    # AWS deletes a terminated instance's primary interface; moto keeps it, so delete it as AWS would.
    attached = [{"Name": "attachment.instance-id", "Values": [instance]}]
    for eni in ec2.describe_network_interfaces(Filters=attached)["NetworkInterfaces"]:
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])


@pytest.fixture
def seeded(moto_endpoint: str) -> dict[str, str]:
    ids = seed_account(SEED)
    seed_out_of_scope()
    return ids


def describe_tags_batches(ctx: AwsContext) -> list[int]:
    """Records how many ARNs each ELBv2 DescribeTags call asks for (moto does not enforce AWS's limit of 20)."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["ResourceArns"]))

    client = ctx.client("elbv2")
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"provide-client-params.{service}.DescribeTags", record)
    return sizes


# --- audit --------------------------------------------------------------------------------------------------------


def test_audit_finds_exactly_the_17_resources_that_lack_required_tags(seeded: dict[str, str]) -> None:
    ctx = AwsContext(REGION)
    batches = describe_tags_batches(ctx)
    steps: list[str] = []

    report = audit(ctx, REQUIRED, steps.append)

    assert (report.account, report.region, report.required, report.errors) == (ACCOUNT, REGION, REQUIRED, {})
    assert report.complete
    assert report.scanned == dict(Counter(seed.kind for seed in SEED))  # neither the EU bucket nor the terminated VM
    assert sum(report.scanned.values()) == 50
    assert batches == [20, 1]
    flagged = {seeded[seed.name]: seed for seed in SEED if seed.lacks}
    assert {finding.id for finding in report.findings} == set(flagged)
    for finding in report.findings:
        seed = flagged[finding.id]
        assert (finding.kind, finding.name, finding.missing) == (seed.kind, seed.name, seed.lacks)
    by_name = {finding.name: finding for finding in report.findings}
    assert by_name["infer-1"].tags == {"Name": "infer-1", **minus("cost-center"), "Cost-Center": "x"}
    assert by_name["mlp-models"].tags == FULL | {"owner": ""}  # moto leaves out an empty Value: read as ""
    assert by_name["mlp-scratch"].tags == {}  # NoSuchTagSet
    assert by_name["analytics"].id == f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:analytics"
    # Deterministic order: by kind (in KINDS order), then name.
    assert [(f.kind, f.name) for f in report.findings][:4] == [
        ("ec2:instance", "infer-1"),
        ("ec2:instance", "train-2"),
        ("ec2:volume", "scratch-2"),
        ("ec2:volume", "train-2-root"),
    ]
    assert [f.name for f in report.findings][-4:] == ["lb-02", "lb-09", "lb-20", "lb-21"]
    assert steps[0] == "checking the AWS credentials"
    assert steps[1:] == [
        "scanning EC2 instances",
        "scanning EBS volumes",
        "scanning EC2 network interfaces",
        "scanning S3 buckets",
        "scanning RDS DB instances",
        "scanning RDS DB clusters",
        "scanning EKS clusters",
        "scanning EKS managed node groups",
        "scanning ELBv2 load balancers",
    ]


MAPPING_YAML = """\
defaults:
  cost-center: ml-1234
  team: research
  environment: prod
  project: mlp
  owner: platform-team
resources:
  mlp-models:
    owner: data-team
  arn:aws:rds:us-east-1:123456789012:cluster:analytics:
    project: analytics
"""


def test_fix_fills_every_missing_key_and_a_second_run_changes_nothing(seeded: dict[str, str], tmp_path: Path) -> None:
    ctx = AwsContext(REGION)
    mapping_file = tmp_path / "tags.yaml"
    mapping_file.write_text(MAPPING_YAML, encoding="utf-8")
    mapping = load_mapping(mapping_file)
    report = audit(ctx, REQUIRED)

    plan = plan_fix(report, mapping)

    overrides = {"mlp-models": {"owner": "data-team"}, "analytics": {"project": "analytics"}}
    defaults = FULL | {"owner": "platform-team"}
    expected = {
        seeded[seed.name]: {key: overrides.get(seed.name, {}).get(key, defaults[key]) for key in seed.lacks}
        for seed in SEED
        if seed.lacks
    }
    assert {change.id: change.add for change in plan} == expected
    assert {change.status for change in plan} == {"planned"}
    assert all(change.unfixable == () for change in plan)

    applied = apply_fix(ctx, plan)

    assert [(change.id, change.status, change.error) for change in applied] == [
        (change.id, "applied", None) for change in plan
    ]
    again = audit(ctx, REQUIRED)
    assert again.findings == ()
    assert again.scanned == report.scanned
    assert plan_fix(again, mapping) == []
    assert apply_fix(ctx, plan_fix(again, mapping)) == []
    # Existing tags were kept, wrong-case keys included; the empty value was filled.
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.describe_instances(InstanceIds=[seeded["infer-1"]])["Reservations"][0]["Instances"][0]
    assert {t["Key"]: t["Value"] for t in instance["Tags"]} == {"Name": "infer-1", **FULL, "Cost-Center": "x"}
    bucket_tags = boto3.client("s3", region_name=REGION).get_bucket_tagging(Bucket="mlp-features")["TagSet"]
    assert {t["Key"]: t["Value"] for t in bucket_tags} == FULL | {"Team": "ml"}
    elbv2 = boto3.client("elbv2", region_name=REGION)
    lb_tags = elbv2.describe_tags(ResourceArns=[seeded["lb-21"]])["TagDescriptions"][0]["Tags"]
    assert {t["Key"]: t["Value"] for t in lb_tags} == FULL


def test_keys_the_mapping_cannot_fill_are_unfixable_and_stay_reported(moto_endpoint: str) -> None:
    seeds = [Seed("s3:bucket", "mlp-raw", minus("team", "owner"), ("team", "owner")), Seed("rds:db", "db2", {}, ALL)]
    ids = seed_account(seeds)
    ctx = AwsContext(REGION)
    mapping = TagMapping(defaults={"team": "ml"}, resources={ids["db2"]: {"project": "mlp", "environment": "dev"}})

    plan = plan_fix(audit(ctx, REQUIRED), mapping)

    assert [(c.name, c.add, c.unfixable, c.status) for c in plan] == [
        ("mlp-raw", {"team": "ml"}, ("owner",), "planned"),
        ("db2", {"team": "ml", "environment": "dev", "project": "mlp"}, ("cost-center", "owner"), "planned"),
    ]
    assert [c.status for c in apply_fix(ctx, plan)] == ["applied", "applied"]
    after = audit(ctx, REQUIRED)
    assert {(f.name, f.missing) for f in after.findings} == {("mlp-raw", ("owner",)), ("db2", ("cost-center", "owner"))}
    # Only unfixable keys left: the plan has nothing to add and applying it calls nothing.
    second = plan_fix(after, mapping)
    assert {(c.name, c.status) for c in second} == {("mlp-raw", "unfixable"), ("db2", "unfixable")}
    with no_calls(ctx, "s3", "rds"):
        assert apply_fix(ctx, second) == second


@contextlib.contextmanager
def no_calls(ctx: AwsContext, *services: str) -> Iterator[None]:
    """Replace the context's clients with stubs that have no responses: any AWS call fails the test."""
    stubs = []
    for service in services:
        client = boto3.client(service, region_name=REGION)
        ctx._clients[service] = client
        stubs.append(Stubber(client))
    with contextlib.ExitStack() as stack:
        for stub in stubs:
            stack.enter_context(stub)
        yield
    for service in services:
        del ctx._clients[service]


def stubbed(ctx: AwsContext, service: str) -> Stubber:
    """Give the context a stubbed client for one service (the others still go to moto)."""
    client = boto3.client(service, region_name=REGION)
    ctx._clients[service] = client
    return Stubber(client)


# --- fix: S3 merge, failures, node groups ----------------------------------------------------------------------


def test_s3_fix_merges_into_the_buckets_current_tags(moto_endpoint: str) -> None:
    ids = seed_account([Seed("s3:bucket", "mlp-merge", {"team": "ml", "data-class": "pii", "owner": ""})])
    ctx = AwsContext(REGION)
    s3 = boto3.client("s3", region_name=REGION)
    plan = plan_fix(audit(ctx, REQUIRED), TagMapping(defaults=FULL))
    assert [(c.id, c.add) for c in plan] == [
        (ids["mlp-merge"], {"cost-center": "ml-1234", "environment": "prod", "project": "mlp", "owner": "ana"})
    ]
    # A tag added between the audit and the fix survives too: the merge reads the bucket's tags just before writing.
    current = [
        {"Key": t["Key"], "Value": t.get("Value", "")} for t in s3.get_bucket_tagging(Bucket="mlp-merge")["TagSet"]
    ]
    s3.put_bucket_tagging(Bucket="mlp-merge", Tagging={"TagSet": [*current, {"Key": "retention", "Value": "90d"}]})

    assert [c.status for c in apply_fix(ctx, plan)] == ["applied"]

    tags = {t["Key"]: t.get("Value", "") for t in s3.get_bucket_tagging(Bucket="mlp-merge")["TagSet"]}
    assert tags == {"data-class": "pii", "retention": "90d", **FULL, "team": "ml"}


def test_one_failed_change_does_not_stop_the_others(moto_endpoint: str) -> None:
    seeds = [Seed("ec2:volume", "vol-a", minus("team")), Seed("ec2:volume", "vol-b", minus("team"))]
    seeds += [Seed("rds:db", "db-c", minus("team"))]
    ids = seed_account(seeds)
    ctx = AwsContext(REGION)
    plan = plan_fix(audit(ctx, REQUIRED), TagMapping(defaults={"team": "ml"}))
    assert len(plan) == 3
    boto3.client("ec2", region_name=REGION).delete_volume(VolumeId=ids["vol-a"])  # gone since the audit
    steps: list[str] = []

    result = {c.name: c for c in apply_fix(ctx, plan, steps.append)}

    assert (result["vol-b"].status, result["db-c"].status) == ("applied", "applied")
    assert result["vol-a"].status == "failed"
    assert result["vol-a"].error == (
        f"tagging ec2:volume {ids['vol-a']}: CreateTags failed "
        f"(InvalidVolume.NotFound: The volume '{ids['vol-a']}' does not exist.)"
    )
    assert sorted(steps) == ["tagging ec2:volume vol-a", "tagging ec2:volume vol-b", "tagging rds:db db-c"]
    assert audit(ctx, REQUIRED).findings == ()


def test_node_group_is_audited_on_moto_and_tagged_with_eks_tag_resource(moto_endpoint: str) -> None:
    ids = seed_account([Seed("eks:cluster", "ml", FULL), Seed("eks:nodegroup", "ml/gpu", minus("owner", "team"))])
    ctx = AwsContext(REGION)
    report = audit(ctx, REQUIRED)
    assert [(f.kind, f.id, f.name, f.missing) for f in report.findings] == [
        ("eks:nodegroup", ids["ml/gpu"], "ml/gpu", ("team", "owner"))
    ]
    assert ids["ml/gpu"].startswith(f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/ml/gpu/")
    plan = plan_fix(report, TagMapping(defaults={"team": "ml", "owner": "ana"}))
    # moto tags EKS clusters only, so the node group's TagResource call is checked with a stub.
    with stubbed(ctx, "eks") as eks:
        eks.add_response("tag_resource", {}, {"resourceArn": ids["ml/gpu"], "tags": {"team": "ml", "owner": "ana"}})
        assert [c.status for c in apply_fix(ctx, plan)] == ["applied"]
        eks.assert_no_pending_responses()


# --- audit: what is skipped, and failures -------------------------------------------------------------------------


def test_requester_managed_network_interfaces_are_not_audited(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    with stubbed(ctx, "ec2") as ec2:
        ec2.add_response("describe_instances", {"Reservations": []})
        ec2.add_response("describe_volumes", {"Volumes": []})
        enis = [
            {"NetworkInterfaceId": "eni-0alb", "RequesterManaged": True, "TagSet": []},
            {"NetworkInterfaceId": "eni-0mine", "RequesterManaged": False, "TagSet": [{"Key": "team", "Value": "ml"}]},
        ]
        ec2.add_response("describe_network_interfaces", {"NetworkInterfaces": enis})
        report = audit(ctx, REQUIRED)
        ec2.assert_no_pending_responses()
    assert report.scanned["ec2:network-interface"] == 1
    assert [(f.id, f.missing) for f in report.findings] == [
        ("eni-0mine", ("cost-center", "environment", "project", "owner"))
    ]


def test_access_denied_on_one_service_is_reported_for_its_kinds_and_the_rest_is_scanned(moto_endpoint: str) -> None:
    ids = seed_account([Seed("s3:bucket", "mlp-plain", {}), Seed("rds:db", "hidden-db", {})])
    ctx = AwsContext(REGION)
    with stubbed(ctx, "rds") as rds:
        for operation in ("describe_db_instances", "describe_db_clusters"):
            rds.add_client_error(operation, "AccessDenied", "User is not authorized", http_status_code=403)
        report = audit(ctx, REQUIRED)

    assert report.errors == {
        "rds:db": "scanning RDS DB instances: permission denied for DescribeDBInstances (AccessDenied); "
        "the caller needs that action allowed",
        "rds:cluster": "scanning RDS DB clusters: permission denied for DescribeDBClusters (AccessDenied); "
        "the caller needs that action allowed",
    }
    assert not report.complete
    assert "rds:db" not in report.scanned
    assert report.scanned["s3:bucket"] == 1
    assert [f.id for f in report.findings] == [ids["mlp-plain"]]
    assert to_json(report)["complete"] is False


def test_access_denied_on_one_bucket_names_the_bucket(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    with stubbed(ctx, "s3") as s3:
        s3.add_response("list_buckets", {"Buckets": [{"Name": "locked-bucket"}]})
        s3.add_response("get_bucket_location", {}, {"Bucket": "locked-bucket"})  # no constraint: us-east-1
        s3.add_client_error("get_bucket_tagging", "AccessDenied", "Access Denied", http_status_code=403)
        report = audit(ctx, REQUIRED)
    assert report.errors == {
        "s3:bucket": "reading S3 bucket locked-bucket: permission denied for GetBucketTagging (AccessDenied); "
        "the caller needs that action allowed"
    }


def test_rejected_credentials_stop_the_audit_with_a_plain_message(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    with stubbed(ctx, "sts") as sts:
        sts.add_client_error(
            "get_caller_identity",
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
            http_status_code=403,
        )
        with pytest.raises(AccountError) as raised:
            audit(ctx, REQUIRED)
    assert str(raised.value) == (
        "checking the AWS credentials: the AWS credentials were rejected (InvalidClientTokenId: The security token "
        "included in the request is invalid.); refresh or replace them"
    )


@pytest.mark.parametrize(
    ("required", "message"),
    [
        ((), "no required tag keys given; name at least one, e.g. cost-center"),
        (("team", "owner", "team"), "required tag keys are listed twice: team"),
        ("team", "required tag keys must be a list of keys, not the string 'team'"),
        (("aws:team",), "required tag key 'aws:team': tag keys starting with `aws:` are reserved for AWS"),
    ],
)
def test_bad_required_keys_are_refused_before_any_call(required: Any, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        audit(AwsContext(REGION), required)
    assert str(raised.value) == message


# --- mapping file -------------------------------------------------------------------------------------------------


def test_mapping_file_in_yaml_or_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "tags.yaml"
    yaml_file.write_text(MAPPING_YAML, encoding="utf-8")
    json_file = tmp_path / "tags.json"
    json_file.write_text('{"defaults": {"team": "ml"}, "resources": {"vol-1": {"team": "data"}}}', encoding="utf-8")

    from_yaml, from_json = load_mapping(yaml_file), load_mapping(json_file)

    assert from_yaml.values_for("mlp-models") == FULL | {"owner": "data-team"}
    assert from_yaml.values_for("vol-9") == FULL | {"owner": "platform-team"}
    assert (from_json.values_for("vol-1"), from_json.values_for("vol-2")) == ({"team": "data"}, {"team": "ml"})
    assert from_json.source == str(json_file)


SHAPE = "expected {defaults: {KEY: VALUE}, resources: {ID_OR_ARN: {KEY: VALUE}}}"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("- team: ml\n", ["the document is a list, not a mapping"]),
        ("", ["the document is nothing, not a mapping"]),
        ("defaults: {}\n", ["sets no tag values; give `defaults` and/or `resources`"]),
        (
            "default:\n  team: ml\nresources:\n  my.bucket: [team, ml]\n",
            [
                "default: unknown key; allowed: defaults, resources",
                'resources["my.bucket"]: must be a mapping of tag keys to values, not a list',
            ],
        ),
        (
            "defaults:\n  cost-center: 1234\n  owner:\n  team: ' '\n  'aws:x': y\n",
            [
                "defaults.cost-center: must be a string, not int (quote it: '1234')",
                "defaults.owner: has no value",
                "defaults.team: is empty; an empty tag value does not satisfy the audit",
                "defaults.aws:x: tag keys starting with `aws:` are reserved for AWS",
            ],
        ),
        ("resources: [vol-1]\n", ["resources: must be a mapping of resource ids to tags, not a list"]),
    ],
)
def test_a_bad_mapping_file_names_the_file_and_each_bad_key(tmp_path: Path, text: str, problems: list[str]) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_mapping(path)
    assert str(raised.value) == "\n".join(
        [f"{path}: invalid tag mapping, {len(problems)} problem(s) ({SHAPE}):", *(f"  {path}: {p}" for p in problems)]
    )


def test_an_unreadable_mapping_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MappingError) as raised:
        load_mapping(missing)
    assert str(raised.value).splitlines()[1] == f"  {missing}: no such file"
    broken = tmp_path / "broken.json"
    broken.write_text('{"defaults": {"team": "ml"}\n', encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_mapping(broken)
    assert (
        str(raised.value).splitlines()[1]
        == f"  {broken}:2: not valid YAML or JSON: expected ',' or '}}', but got '<stream end>'"
    )


# --- output -------------------------------------------------------------------------------------------------------

REPORT = AuditReport(
    region=REGION,
    account=ACCOUNT,
    required=("team", "owner"),
    scanned={"ec2:volume": 3, "s3:bucket": 2},
    findings=(
        Finding("ec2:volume", "vol-1", "scratch", {"Name": "scratch", "team": ""}, ("team", "owner")),
        Finding("s3:bucket", "logs", "logs", {"Team": "ml"}, ("team",)),
    ),
    errors={"rds:db": "scanning RDS DB instances: permission denied"},
)


def test_report_json() -> None:
    assert to_json(REPORT) == {
        "account": ACCOUNT,
        "region": REGION,
        "required": ["team", "owner"],
        "complete": False,
        "scanned": {"ec2:volume": 3, "s3:bucket": 2},
        "scanned_total": 5,
        "errors": {"rds:db": "scanning RDS DB instances: permission denied"},
        "findings": [
            {
                "kind": "ec2:volume",
                "id": "vol-1",
                "name": "scratch",
                "missing": ["team", "owner"],
                "tags": {"Name": "scratch", "team": ""},
            },
            {"kind": "s3:bucket", "id": "logs", "name": "logs", "missing": ["team"], "tags": {"Team": "ml"}},
        ],
    }


def test_changes_json_and_tables() -> None:
    changes = [
        TagChange("ec2:volume", "vol-1", "scratch", {"team": "ml"}, ("owner",), applied=True),
        TagChange("s3:bucket", "logs", "logs", {"team": "ml"}, (), error="tagging s3:bucket logs: denied"),
        TagChange("rds:db", "arn:db", "db", {}, ("owner",)),
    ]
    assert to_json(changes) == {
        "changes": [
            {
                "kind": "ec2:volume",
                "id": "vol-1",
                "name": "scratch",
                "status": "applied",
                "add": {"team": "ml"},
                "unfixable": ["owner"],
                "error": None,
            },
            {
                "kind": "s3:bucket",
                "id": "logs",
                "name": "logs",
                "status": "failed",
                "add": {"team": "ml"},
                "unfixable": [],
                "error": "tagging s3:bucket logs: denied",
            },
            {
                "kind": "rds:db",
                "id": "arn:db",
                "name": "db",
                "status": "unfixable",
                "add": {},
                "unfixable": ["owner"],
                "error": None,
            },
        ],
        "summary": {"planned": 0, "applied": 1, "failed": 1, "unfixable": 1, "with_unfixable_keys": 2},
    }
    console = Console(record=True, width=200)
    render_table(REPORT, console)
    render_table(changes, console)
    render_table([], console)
    text = console.export_text()
    assert f"account {ACCOUNT}, region {REGION}: 5 resources scanned, 2 lack required tags (team, owner)" in text
    assert "Name=scratch, team=''" in text
    assert "not scanned: RDS DB instances: scanning RDS DB instances: permission denied" in text
    assert "failed: tagging s3:bucket logs: denied" in text
    assert "1 applied, 1 failed, 1 unfixable, 2 with unfixable keys" in text
    assert text.rstrip().endswith("nothing to tag")


def test_a_change_of_an_unknown_kind_is_refused_before_anything_is_tagged() -> None:
    changes = [
        TagChange("ec2:volume", "vol-1", "scratch", {"team": "ml"}),
        TagChange("iam:role", "arn:aws:iam::1:role/x", "x", {"team": "ml"}),
    ]
    ctx = AwsContext(REGION)
    with no_calls(ctx, "ec2"), pytest.raises(ValueError) as raised:
        apply_fix(ctx, changes)
    assert str(raised.value) == (
        "unknown resource kind(s) iam:role; known: ec2:instance, ec2:volume, ec2:network-interface, s3:bucket, "
        "rds:db, rds:cluster, eks:cluster, eks:nodegroup, elbv2:loadbalancer"
    )
