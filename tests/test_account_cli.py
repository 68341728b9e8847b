"""The account commands end to end through `mlp` against a moto server over HTTP: exit codes, JSON output, dry
run by default, and a clear message (never a traceback) for bad credentials."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS

FULL = {"cost-center": "cc", "team": "ml", "environment": "dev", "project": "p", "owner": "o@example.com"}


def _run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def _volume(ec2: object, tags: dict[str, str]) -> str:
    spec = [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    return str(ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, TagSpecifications=spec)["VolumeId"])  # type: ignore[attr-defined]


def test_audit_tags_dry_run_then_apply(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    good = _volume(ec2, FULL)
    bad = _volume(ec2, {k: v for k, v in FULL.items() if k != "owner"})
    mapping = tmp_path / "tags.yaml"
    mapping.write_text("defaults:\n  owner: platform@example.com\n")

    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "-f", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in report["findings"]] == [bad]
    assert report["findings"][0]["missing"] == ["owner"] and tuple(report["required"]) == REQUIRED_COST_TAGS

    # --fix alone is a dry run: it shows the change, writes nothing, and still exits 1.
    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "--fix", str(mapping)) == 1
    out = capsys.readouterr().out
    assert "dry run: nothing was tagged" in out
    tags = {t["Key"]: t["Value"] for t in ec2.describe_volumes(VolumeIds=[bad])["Volumes"][0].get("Tags", [])}
    assert "owner" not in tags

    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "--fix", str(mapping), "--apply", "-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["fix"]["applied"] is True
    tags = {t["Key"]: t["Value"] for t in ec2.describe_volumes(VolumeIds=[bad])["Volumes"][0]["Tags"]}
    assert tags["owner"] == "platform@example.com"
    # Idempotent: nothing left, exit 0, the good volume untouched.
    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "-f", "json") == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
    assert {t["Key"] for t in ec2.describe_volumes(VolumeIds=[good])["Volumes"][0]["Tags"]} == set(FULL)


def test_audit_tags_needs_a_region_and_a_fix_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert _run(monkeypatch, "audit-tags") == 2
    assert "no AWS region" in capsys.readouterr().err
    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "--apply") == 2
    assert "--apply needs --fix FILE or --fix-from-stack" in capsys.readouterr().err


def test_rejected_credentials_are_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No moto here: real STS rejects made-up keys... but no network either, so point at a dead local endpoint."""
    from tests.aws_server import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1") == 4
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


class _Quotas:
    """A Service Quotas client that answers get_service_quota from a table (moto does not implement EC2 quotas)."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def get_service_quota(self, ServiceCode: str, QuotaCode: str) -> dict[str, object]:  # noqa: N803 - boto3 names
        assert ServiceCode == "ec2"
        return {"Quota": {"QuotaCode": QuotaCode, "Value": self.values.get(QuotaCode, 10000.0)}}

    get_aws_default_service_quota = get_service_quota


def test_preflight_exit_codes(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplatform.mlp.aws import AwsContext

    quotas = _Quotas({})
    original = AwsContext.client

    def client(self: AwsContext, service: str) -> object:
        return quotas if service == "service-quotas" else original(self, service)

    monkeypatch.setattr(AwsContext, "client", client)
    # The caller is dev's deployer (a session of the role in cluster.deployers): preflight goes past the access check.
    deployer = "arn:aws:sts::111122223333:assumed-role/PlatformDeployer/ci"
    monkeypatch.setattr(AwsContext, "identity", lambda self: ("123456789012", deployer))
    assert _run(monkeypatch, "preflight", "dev", "-f", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["region"] == "us-east-1"
    assert {f["check"] for f in report["findings"]} >= {"quotas", "offerings", "ips"}

    quotas.values["L-DB2E81BA"] = 8  # on-demand G and VT vCPUs: dev's shared pool may need 32
    assert _run(monkeypatch, "preflight", "dev", "-f", "json") == 1
    report = json.loads(capsys.readouterr().out)
    (error,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert error["check"] == "quotas" and "L-DB2E81BA" in error["fix"] and "8" in error["message"]


def test_residue_dry_run_then_delete(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    stack_tags = {"pulumi-stack": "dev", "managed-by": "pulumi/ml-platform"}
    leftover = _volume(ec2, stack_tags)
    other = _volume(ec2, {"pulumi-stack": "prod", "managed-by": "pulumi/ml-platform"})

    assert _run(monkeypatch, "residue", "dev", "-f", "json") == 1  # the region comes from stacks/Pulumi.dev.yaml
    report = json.loads(capsys.readouterr().out)
    assert [i["id"] for i in report["items"]] == [leftover]
    assert _run(monkeypatch, "residue", "dev") == 1
    assert "dry run: nothing deleted" in capsys.readouterr().out
    assert ec2.describe_volumes(VolumeIds=[leftover])["Volumes"]  # still there

    # Without a terminal --delete needs --yes.
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert _run(monkeypatch, "residue", "dev", "--delete") == 2
    assert "--delete without a terminal needs --yes" in capsys.readouterr().err

    assert _run(monkeypatch, "residue", "dev", "--delete", "--yes", "-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    assert [(d["id"], d["outcome"]) for d in body["deletions"]["results"]] == [(leftover, "deleted")]
    remaining = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert leftover not in remaining and other in remaining
    assert _run(monkeypatch, "residue", "dev") == 0  # idempotent: nothing left to delete


BACKEND = "acme-pulumi-state"
TAG_ARGS = [arg for key, value in FULL.items() for arg in ("--tag", f"{key}={value}")]
LOGIN = (
    "pulumi login 's3://acme-pulumi-state?region=us-east-1&awssdk=v2'\n",
    "pulumi stack init <stack> --secrets-provider 'awskms://alias/acme-pulumi-state-secrets?region=us-east-1'\n",
)


def test_bootstrap_backend_is_idempotent(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(monkeypatch, "bootstrap-backend", BACKEND, "--region", "us-east-1", *TAG_ARGS, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.endswith("dry run: nothing was created or changed\n" + "".join(LOGIN))
    s3 = boto3.client("s3", region_name="us-east-1")
    assert BACKEND not in {b["Name"] for b in s3.list_buckets()["Buckets"]}

    assert _run(monkeypatch, "bootstrap-backend", BACKEND, "--region", "us-east-1", *TAG_ARGS) == 0
    out = capsys.readouterr().out
    assert [out.count(line) for line in LOGIN] == [1, 1]  # printed once, after the table
    assert out.endswith("changed the account\n" + "".join(LOGIN))
    assert s3.get_bucket_versioning(Bucket=BACKEND)["Status"] == "Enabled"

    args = ("bootstrap-backend", BACKEND, "--region", "us-east-1", *TAG_ARGS)
    assert _run(monkeypatch, *args, "-f", "json") == 0
    second = json.loads(capsys.readouterr().out)
    assert second["changed"] is False
    assert len(boto3.client("kms", region_name="us-east-1").list_aliases()["Aliases"]) >= 1
    assert _run(monkeypatch, "bootstrap-backend", "Bad_Name", "--region", "us-east-1", *TAG_ARGS) == 2


def test_bootstrap_backend_refuses_to_make_an_untagged_backend(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without_owner = TAG_ARGS[:-2]
    assert without_owner[-1].startswith("project=")
    assert _run(monkeypatch, "bootstrap-backend", BACKEND, "--region", "us-east-1", *without_owner) == 2
    err = " ".join(capsys.readouterr().err.split())  # the usage error box wraps long lines
    assert (
        "the state bucket and its KMS key must carry the platform's required cost tags; no value for owner (pass "
        "--tag KEY=VALUE for each, or --stack STACK to use that stack's tags)"
    ) in err
    assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []
    assert boto3.client("kms", region_name="us-east-1").list_keys()["Keys"] == []
    assert _run(monkeypatch, "bootstrap-backend", BACKEND, "--region", "us-east-1", "--tag", "owner") == 2
    assert "--tag 'owner': expected KEY=VALUE" in capsys.readouterr().err


def test_bootstrap_backend_tags_pass_audit_tags(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The stack's cost tags (the region comes from stacks/Pulumi.dev.yaml too), one overridden by --tag.
    assert _run(monkeypatch, "bootstrap-backend", BACKEND, "--stack", "dev", "--tag", "environment=shared") == 0
    out = capsys.readouterr().out
    assert [out.count(line) for line in LOGIN] == [1, 1]
    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "-f", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scanned"]["s3:bucket"] == 1 and report["findings"] == []
    s3 = boto3.client("s3", region_name="us-east-1")
    assert {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BACKEND)["TagSet"]} == {
        "cost-center": "ml-research",
        "team": "ml-platform",
        "environment": "shared",
        "project": "ml-platform",
        "owner": "ml-platform@example.com",
        "managed-by": "mlp/bootstrap-backend",
        "purpose": "pulumi-state",
    }


def test_bootstrap_backend_tags_an_existing_untagged_bucket(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BACKEND)
    s3.put_bucket_tagging(Bucket=BACKEND, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "-f", "json") == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["id"] == BACKEND and finding["missing"] == ["cost-center", "environment", "project", "owner"]

    assert _run(monkeypatch, "bootstrap-backend", BACKEND, "--region", "us-east-1", *TAG_ARGS, "-f", "json") == 0
    steps = {step["target"]: step for step in json.loads(capsys.readouterr().out)["steps"]}
    assert steps["bucket-tags"] == {
        "target": "bucket-tags",
        "action": "updated",
        "detail": "add cost-center=cc, environment=dev, managed-by=mlp/bootstrap-backend, owner=o@example.com, "
        "project=p, purpose=pulumi-state (its 1 other tag(s) kept)",
    }
    assert {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BACKEND)["TagSet"]}["team"] == "data"
    assert _run(monkeypatch, "audit-tags", "--region", "us-east-1", "-f", "json") == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


@pytest.mark.parametrize(
    "argv",
    [
        ("bootstrap-backend", BACKEND, "--region", "us-east-1", *TAG_ARGS),
        ("audit-tags", "--region", "us-east-1"),
        ("residue", "dev"),
    ],
)
def test_an_html_error_page_is_one_clean_line(
    error_page_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """A proxy answering 502 with its HTML page: exit 4 and one line naming the page's title, no HTML."""
    assert _run(monkeypatch, *argv) == 4
    assert capsys.readouterr().err == (
        "error: checking the AWS credentials: the endpoint answered with something that is not an AWS response "
        "(502 Bad Gateway); a proxy or the endpoint (AWS_ENDPOINT_URL, HTTPS_PROXY) is failing: check it and retry\n"
    )


def test_an_html_error_page_behind_json_and_query_apis_is_summarized(error_page_endpoint: str) -> None:
    """KMS (JSON) reports the page as an error with status 502; EC2 (query) cannot parse it at all. Both become
    one line through `aws_errors`, the page's title in place of its HTML."""
    from mlplatform.mlp.aws import AwsContext, aws_errors
    from mlplatform.mlp.errors import AccountError

    ctx = AwsContext("us-east-1")
    with pytest.raises(AccountError) as raised, aws_errors("reading KMS alias alias/x"):
        ctx.client("kms").describe_key(KeyId="alias/x")
    assert str(raised.value) == "reading KMS alias alias/x: DescribeKey failed (HTTP 502: Bad Gateway)"
    with pytest.raises(AccountError) as raised, aws_errors("scanning EBS volumes"):
        ctx.client("ec2").describe_volumes()
    assert str(raised.value) == (
        "scanning EBS volumes: the endpoint answered with something that is not an AWS response (502 Bad Gateway); "
        "a proxy or the endpoint (AWS_ENDPOINT_URL, HTTPS_PROXY) is failing: check it and retry"
    )


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        (
            "The security token included in the request is invalid.",
            "The security token included in the request is invalid.",
        ),
        ("line one\n  line two\t", "line one line two"),
        ("<html><body><p>upstream &amp; proxy down</p></body></html>", "upstream & proxy down"),
        (
            "<html><head><title> 503 Service\nUnavailable </title></head><body>...</body></html>",
            "503 Service Unavailable",
        ),
        ("x" * 200, "x" * 159 + "…"),
        ("a < b and c > d", "a < b and c > d"),
    ],
)
def test_summarize(text: str, summary: str) -> None:
    from mlplatform.mlp.aws import summarize

    assert summarize(text) == summary
