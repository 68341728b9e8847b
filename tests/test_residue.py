"""`mlp residue` against a moto server: residue of stack `dev` of every kind is found by its tags (and nothing of
another stack, another project, untagged, a default group, a terminated instance or a key pending deletion);
deletion removes exactly the deletable kinds, in an order that works, keeps the kept kinds, leaves everything else
alone, and is a no-op the second time. AccessDenied and rejected credentials are simulated with botocore's Stubber
(moto accepts any credentials)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from mlplatform.mlp.aws import AwsContext
from mlplatform.mlp.errors import AccountError
from mlplatform.mlp.residue import (
    DeletionResult,
    ResidueReport,
    delete_residue,
    find_residue,
    render_table,
    to_json,
)
from tests.aws_server import REJECTED_CREDENTIALS_MESSAGE, rejected_credentials

REGION = "us-east-1"


def _tags(stack: str = "dev", managed_by: str = "pulumi/ml-platform", **extra: str) -> list[dict[str, str]]:
    tags = {"pulumi-stack": stack, "managed-by": managed_by, "team": "ml", **extra}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _spec(resource_type: str, tags: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": tags}]


@dataclass
class Seeded:
    deletable: set[tuple[str, str]] = field(default_factory=set)
    kept: set[tuple[str, str]] = field(default_factory=set)
    others: dict[str, str] = field(default_factory=dict)  # look-alikes that must survive, by role


def _seed(ctx: AwsContext) -> Seeded:
    """Residue of stack dev of every kind moto supports, and look-alikes that are not dev's."""
    seeded = Seeded()
    dev, prod, foreign = _tags(), _tags("prod"), _tags(managed_by="pulumi/other-project")
    ec2, elbv2, logs = ctx.client("ec2"), ctx.client("elbv2"), ctx.client("logs")
    eks, rds, s3, kms = ctx.client("eks"), ctx.client("rds"), ctx.client("s3"), ctx.client("kms")

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def instance(tags: list[dict[str, str]] | None) -> str:
        spec = _spec("instance", tags) if tags else []
        run = ec2.run_instances(
            ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.medium", SubnetId=subnets[0], TagSpecifications=spec
        )
        return str(run["Instances"][0]["InstanceId"])

    seeded.deletable.add(("ec2-instance", instance(_tags(Name="karpenter-node"))))
    terminated = instance(dev)
    ec2.terminate_instances(InstanceIds=[terminated])
    seeded.others["instance-prod"] = instance(prod)
    seeded.others["instance-untagged"] = instance(None)

    def volume(tags: list[dict[str, str]]) -> str:
        made = ec2.create_volume(
            AvailabilityZone=f"{REGION}a", Size=10, VolumeType="gp3", TagSpecifications=_spec("volume", tags)
        )
        return str(made["VolumeId"])

    seeded.deletable.add(("ebs-volume", volume(dev)))
    seeded.others["volume-prod"] = volume(prod)
    seeded.others["volume-foreign"] = volume(foreign)

    def eni(tags: list[dict[str, str]]) -> str:
        made = ec2.create_network_interface(SubnetId=subnets[0], TagSpecifications=_spec("network-interface", tags))
        return str(made["NetworkInterface"]["NetworkInterfaceId"])

    seeded.deletable.add(("network-interface", eni(dev)))
    seeded.others["eni-prod"] = eni(prod)

    def eip(tags: list[dict[str, str]]) -> str:
        return str(ec2.allocate_address(Domain="vpc", TagSpecifications=_spec("elastic-ip", tags))["AllocationId"])

    loose_eip, nat_eip = eip(dev), eip(dev)
    seeded.deletable |= {("elastic-ip", loose_eip), ("elastic-ip", nat_eip)}
    seeded.others["eip-prod"] = eip(prod)
    nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=nat_eip, TagSpecifications=_spec("natgateway", dev))
    seeded.deletable.add(("nat-gateway", nat["NatGateway"]["NatGatewayId"]))

    def group(name: str, tags: list[dict[str, str]]) -> str:
        spec = _spec("security-group", tags)
        return str(
            ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc, TagSpecifications=spec)["GroupId"]
        )

    cluster_sg, node_sg = group("dev-cluster", dev), group("dev-nodes", dev)
    for source, target in ((cluster_sg, node_sg), (node_sg, cluster_sg)):
        permission = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": target}]}
        ec2.authorize_security_group_ingress(GroupId=source, IpPermissions=[permission])
    seeded.deletable |= {("security-group", cluster_sg), ("security-group", node_sg)}
    seeded.others["sg-prod"] = group("prod-nodes", prod)
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    ec2.create_tags(Resources=[default_sg], Tags=dev)  # Pulumi may tag a VPC's default group; it cannot go
    seeded.others["sg-default"] = default_sg

    def balancer(name: str, tags: list[dict[str, str]]) -> str:
        made = elbv2.create_load_balancer(Name=name, Subnets=subnets, Tags=tags, Type="application")
        return str(made["LoadBalancers"][0]["LoadBalancerArn"])

    def target_group(name: str, tags: list[dict[str, str]]) -> str:
        made = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, Tags=tags)
        return str(made["TargetGroups"][0]["TargetGroupArn"])

    dev_lb, dev_tg = balancer("k8s-dev-ingress", dev), target_group("k8s-dev-serving", dev)
    # The listener makes the target group undeletable until the load balancer is gone: the order matters.
    elbv2.create_listener(
        LoadBalancerArn=dev_lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": dev_tg}],
    )
    seeded.deletable |= {("load-balancer", dev_lb), ("target-group", dev_tg)}
    seeded.others["lb-prod"] = balancer("k8s-prod-ingress", prod)
    seeded.others["tg-prod"] = target_group("k8s-prod-serving", prod)

    def log_group(name: str, tags: dict[str, str] | None) -> str:
        if tags is None:
            logs.create_log_group(logGroupName=name)
        else:
            logs.create_log_group(logGroupName=name, tags=tags)
        return name

    dev_map = {t["Key"]: t["Value"] for t in dev}
    prod_map = {t["Key"]: t["Value"] for t in prod}
    seeded.deletable.add(("log-group", log_group("/aws/eks/ml-dev/cluster", dev_map)))
    seeded.others["log-prod"] = log_group("/aws/eks/ml-prod/cluster", prod_map)
    seeded.others["log-untagged"] = log_group("/aws/lambda/something", None)

    eks.create_cluster(
        name="ml-dev",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": subnets},
        tags=dev_map,
    )
    seeded.kept.add(("eks-cluster", "ml-dev"))
    rds.create_db_instance(
        DBInstanceIdentifier="ml-dev-mlflow",
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="mlflow",
        MasterUserPassword="not-a-real-password",
        Tags=dev,
    )
    rds.create_db_snapshot(DBInstanceIdentifier="ml-dev-mlflow", DBSnapshotIdentifier="ml-dev-mlflow-final", Tags=dev)
    seeded.kept |= {("rds-instance", "ml-dev-mlflow"), ("rds-snapshot", "ml-dev-mlflow-final")}

    for bucket, tags in (("ml-dev-lake", dev), ("ml-prod-lake", prod), ("ml-dev-foreign", foreign)):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    s3.create_bucket(Bucket="ml-dev-untagged")
    seeded.kept.add(("s3-bucket", "ml-dev-lake"))

    def key(tags: list[dict[str, str]]) -> str:
        kms_tags = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags]
        return str(kms.create_key(Description="lake", Tags=kms_tags)["KeyMetadata"]["KeyId"])

    dev_key = key(dev)
    kms.create_alias(AliasName="alias/ml-dev-lake", TargetKeyId=dev_key)
    seeded.kept.add(("kms-key", dev_key))
    pending = key(dev)
    kms.schedule_key_deletion(KeyId=pending, PendingWindowInDays=7)
    seeded.others["key-prod"] = key(prod)
    return seeded


def _ids(items: Any) -> set[tuple[str, str]]:
    return {(item.kind, item.id) for item in items}


def _outcomes(results: list[DeletionResult]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(r.kind, r.id): (r.outcome, r.message) for r in results}


def test_finds_exactly_the_stacks_residue_and_splits_deletable_from_kept(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    seeded = _seed(ctx)
    steps: list[str] = []

    report = find_residue(ctx, "dev", steps.append)

    assert _ids(report.items) == seeded.deletable | seeded.kept
    assert _ids(report.deletable) == seeded.deletable
    assert _ids(report.kept) == seeded.kept
    assert len(report.items) == 16
    assert report.account == "123456789012"
    assert report.warnings == (
        "an EKS cluster of the stack still exists: Karpenter on it may replace terminated nodes; "
        "delete the cluster (run `pulumi destroy` again) before deleting the residue",
    )
    assert "finding EC2 instances" in steps and "finding KMS keys" in steps
    # Sorted by kind (deletion order, then kept kinds), then id: the same report every time.
    assert [item.kind for item in report.items] == [
        "ec2-instance",
        "load-balancer",
        "target-group",
        "nat-gateway",
        "elastic-ip",
        "elastic-ip",
        "network-interface",
        "ebs-volume",
        "security-group",
        "security-group",
        "log-group",
        "eks-cluster",
        "rds-instance",
        "rds-snapshot",
        "s3-bucket",
        "kms-key",
    ]
    ids = [item.id for item in report.items]
    assert ids[4:6] == sorted(ids[4:6]) and ids[8:10] == sorted(ids[8:10])
    by_kind = {item.kind: item for item in report.items}
    assert by_kind["ec2-instance"].name == "karpenter-node"
    assert by_kind["ec2-instance"].state == "running (t3.medium)"
    assert by_kind["ec2-instance"].monthly_usd == round(0.0416 * 730, 2)
    assert by_kind["nat-gateway"].monthly_usd == round(0.045 * 730, 2)
    assert by_kind["ebs-volume"].monthly_usd == round(10 * 0.08, 2)
    assert by_kind["eks-cluster"].monthly_usd == round(0.10 * 730, 2)
    assert by_kind["kms-key"].name == "alias/ml-dev-lake"
    assert by_kind["kms-key"].monthly_usd == 1.0
    assert by_kind["s3-bucket"].region == REGION
    assert by_kind["s3-bucket"].note.startswith("kept: holds data; prod buckets are retained on destroy on purpose")
    assert "aws s3 rb s3://ml-dev-lake" in by_kind["s3-bucket"].note
    assert "aws rds delete-db-snapshot --db-snapshot-identifier ml-dev-mlflow-final" in by_kind["rds-snapshot"].note
    assert all(item.note.startswith("kept: ") for item in report.kept)


def test_delete_removes_the_deletable_keeps_the_rest_and_is_idempotent(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    seeded = _seed(ctx)
    report = find_residue(ctx, "dev")

    results = delete_residue(ctx, report)

    outcomes = _outcomes(results)
    assert set(outcomes) == seeded.deletable | seeded.kept
    assert {key for key, (outcome, _) in outcomes.items() if outcome == "deleted"} == seeded.deletable
    assert {key for key, (outcome, _) in outcomes.items() if outcome == "skipped"} == seeded.kept
    assert [r.kind for r in results if r.outcome == "deleted"][:1] == ["ec2-instance"]
    messages = {r.kind: r.message for r in results}
    assert messages["ec2-instance"] == "terminated"
    assert messages["elastic-ip"] == "released"
    assert messages["s3-bucket"] == "kept: never deleted by this tool (see the report's note)"

    again = find_residue(ctx, "dev")
    assert again.deletable == ()
    assert _ids(again.kept) == seeded.kept

    # Twice: nothing left to delete, nothing fails, nothing is deleted (from the new report or the stale one).
    for stale in (again, report):
        repeat = delete_residue(ctx, stale)
        assert [r.outcome for r in repeat if r.outcome != "skipped"] == []
    stale_messages = {r.kind: r.message for r in delete_residue(ctx, report)}
    assert stale_messages["ec2-instance"] == "already terminated"
    assert stale_messages["security-group"] == "already deleted"

    # Everything that was not dev's is untouched.
    ec2 = ctx.client("ec2")
    states = {
        i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    }
    assert states[seeded.others["instance-prod"]] == "running"
    assert states[seeded.others["instance-untagged"]] == "running"
    volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert {seeded.others["volume-prod"], seeded.others["volume-foreign"]} <= volumes
    groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert {seeded.others["sg-prod"], seeded.others["sg-default"]} <= groups
    assert [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]] == [seeded.others["eip-prod"]]
    arns = {lb["LoadBalancerArn"] for lb in ctx.client("elbv2").describe_load_balancers()["LoadBalancers"]}
    assert arns == {seeded.others["lb-prod"]}
    log_names = {g["logGroupName"] for g in ctx.client("logs").describe_log_groups()["logGroups"]}
    assert log_names == {seeded.others["log-prod"], seeded.others["log-untagged"]}
    buckets = {b["Name"] for b in ctx.client("s3").list_buckets()["Buckets"]}
    assert buckets == {"ml-dev-lake", "ml-prod-lake", "ml-dev-foreign", "ml-dev-untagged"}


def test_one_failure_does_not_stop_the_rest_and_attached_items_are_skipped(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    ec2, elbv2 = ctx.client("ec2"), ctx.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    # A dev target group still used by a prod load balancer: AWS refuses to delete it.
    prod_lb = elbv2.create_load_balancer(Name="prod", Subnets=subnets, Tags=_tags("prod"))["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name="dev-tg", Protocol="HTTP", Port=80, VpcId=vpc, Tags=_tags())
    tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=prod_lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )
    # A dev volume attached to a prod instance: in use, so left alone.
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    prod_instance = ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnets[0], TagSpecifications=_spec("instance", _tags("prod"))
    )["Instances"][0]["InstanceId"]
    attached = ec2.create_volume(
        AvailabilityZone=f"{REGION}a", Size=8, VolumeType="gp3", TagSpecifications=_spec("volume", _tags())
    )["VolumeId"]
    ec2.attach_volume(VolumeId=attached, InstanceId=prod_instance, Device="/dev/sdf")
    free = ec2.create_volume(
        AvailabilityZone=f"{REGION}a", Size=8, VolumeType="gp3", TagSpecifications=_spec("volume", _tags())
    )["VolumeId"]
    ctx.client("logs").create_log_group(
        logGroupName="/dev/after-the-failure", tags={"pulumi-stack": "dev", "managed-by": "pulumi/ml-platform"}
    )

    report = find_residue(ctx, "dev")
    assert _ids(report.items) == {
        ("target-group", tg_arn),
        ("ebs-volume", attached),
        ("ebs-volume", free),
        ("log-group", "/dev/after-the-failure"),
    }
    outcomes = _outcomes(delete_residue(ctx, report))

    outcome, message = outcomes[("target-group", tg_arn)]
    assert outcome == "failed"
    assert message.startswith(f"deleting target-group {tg_arn}: DeleteTargetGroup failed (ResourceInUse: ")
    assert message.endswith(
        "something still uses it (AWS releases the network interfaces of deleted load balancers "
        "and NAT gateways a few minutes later): run again shortly"
    )
    assert outcomes[("ebs-volume", attached)] == (
        "skipped",
        f"in-use, attached to {prod_instance}: only available ones go",
    )
    assert outcomes[("ebs-volume", free)] == ("deleted", "deleted")
    assert outcomes[("log-group", "/dev/after-the-failure")] == ("deleted", "deleted")
    assert _ids(find_residue(ctx, "dev").items) == {("target-group", tg_arn), ("ebs-volume", attached)}


def test_access_denied_on_one_listing_is_a_clear_error(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    with Stubber(ctx.client("ec2")) as stub:
        stub.add_client_error(
            "describe_instances",
            service_error_code="UnauthorizedOperation",
            service_message="You are not authorized to perform this operation.",
            http_status_code=403,
        )
        with pytest.raises(AccountError) as raised:
            find_residue(ctx, "dev")
    assert str(raised.value) == (
        "listing EC2 instances: permission denied for DescribeInstances (UnauthorizedOperation); "
        "the caller needs that action allowed"
    )


def test_a_bucket_whose_tags_cannot_be_read_is_a_warning_and_the_scan_goes_on(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    ctx.client("logs").create_log_group(
        logGroupName="/dev/app", tags={"pulumi-stack": "dev", "managed-by": "pulumi/ml-platform"}
    )
    s3 = boto3.client("s3", region_name=REGION)
    ctx._clients["s3"] = s3  # the one client the stub answers for; every other call goes to moto
    with Stubber(s3) as stub:
        stub.add_response("list_buckets", {"Buckets": [{"Name": "locked-bucket"}]})
        stub.add_client_error(
            "get_bucket_tagging",
            service_error_code="AccessDenied",
            service_message="Access Denied",
            http_status_code=403,
        )
        report = find_residue(ctx, "dev")
        stub.assert_no_pending_responses()
    assert _ids(report.items) == {("log-group", "/dev/app")}
    assert report.warnings == (
        "reading the tags of S3 bucket locked-bucket: permission denied for GetBucketTagging (AccessDenied); "
        "the caller needs that action allowed; not checked",
    )


def test_rejected_credentials_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    ctx = AwsContext(REGION)
    with rejected_credentials(ctx), pytest.raises(AccountError) as raised:
        find_residue(ctx, "dev")
    assert str(raised.value) == REJECTED_CREDENTIALS_MESSAGE


@pytest.mark.parametrize("stack", ["", "dev*", "de v", "dev,prod"])
def test_bad_stack_names_are_rejected_before_any_call(stack: str) -> None:
    with pytest.raises(ValueError, match=re.escape("use letters, digits, '-', '_' and '.'")):
        find_residue(AwsContext(REGION), stack)


def test_json_and_table_show_every_item_and_outcome(moto_endpoint: str) -> None:
    ctx = AwsContext(REGION)
    ctx.client("logs").create_log_group(
        logGroupName="/dev/app", tags={"pulumi-stack": "dev", "managed-by": "pulumi/ml-platform"}
    )
    ctx.client("s3").create_bucket(Bucket="ml-dev-lake")
    ctx.client("s3").put_bucket_tagging(Bucket="ml-dev-lake", Tagging={"TagSet": _tags()})
    report = find_residue(ctx, "dev")

    body = to_json(report)
    json.dumps(body)  # serializable
    assert body["counts"] == {"deletable": 1, "kept": 1}
    assert body["match"] == {"pulumi-stack": "dev", "managed-by": "pulumi/ml-platform"}
    assert [(i["kind"], i["id"], i["disposition"]) for i in body["items"]] == [
        ("log-group", "/dev/app", "deletable"),
        ("s3-bucket", "ml-dev-lake", "kept"),
    ]
    assert body["unpriced_items"] == 2

    console = Console(record=True, width=400)
    render_table(report, console)
    text = console.export_text()
    assert "residue of stack dev (account 123456789012, us-east-1)" in text
    assert "1 deletable, 1 kept; about $0.00/month (2 item(s) without a price)" in text

    results = delete_residue(ctx, report)
    assert to_json(results)["counts"] == {"deleted": 1, "skipped": 1, "failed": 0}
    console = Console(record=True, width=400)
    render_table(results, console)
    assert "1 deleted, 1 skipped, 0 failed" in console.export_text()


def test_an_empty_report_says_nothing_found(moto_endpoint: str) -> None:
    report = find_residue(AwsContext(REGION), "dev")
    assert isinstance(report, ResidueReport)
    assert report.items == ()
    assert delete_residue(AwsContext(REGION), report) == []
    console = Console(record=True, width=200)
    render_table(report, console)
    assert console.export_text().strip() == "residue of stack dev (account 123456789012, us-east-1): nothing found"
