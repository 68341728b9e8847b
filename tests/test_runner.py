"""`mlp runner` (mlp/runner.py) and the runner's buildspec.

Against a moto server over HTTP (`moto_endpoint`), holding what the cloud layer's plan of the prod stack creates
for the runner (read from the real plan: the artifacts bucket with default SSE-KMS and versioning, the role, the
log group, the CodeBuild project with the rendered name, source, environment and logs config): the committed tree
is uploaded once per commit and built; log lines are streamed in order across polls; refusals are exact messages.
moto's CodeBuild ignores the start_build overrides (the request is captured with a botocore event hook instead),
flips every build to SUCCEEDED on the first batch_get_builds (an after-call hook keeps it IN_PROGRESS to test
polling) and never returns FAILED, FAULT, STOPPED or TIMED_OUT nor refuses a start: those paths use botocore's
Stubber on the codebuild client (S3, STS and CloudWatch Logs still answer from moto).

The buildspec is run as a shell program: each phase's commands in one bash process, each command's exit status
ending the phase as CodeBuild does, with fake `curl`, `python3.11` and (inside the served tarball) `pulumi`; its
`/opt` and `/tmp` paths are rewritten to temporary directories.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import re
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import ANY, Stubber

from mlplatform.infra.config import PlatformConfig
from mlplatform.infra.runner.documents import buildspec
from mlplatform.mlp.aws import AwsContext
from mlplatform.mlp.planner import plan_stack
from mlplatform.mlp.runner import (
    BuildOutcome,
    RunnerError,
    RunnerResult,
    follow_build,
    outcome_line,
    run_runner,
    to_json,
)
from mlplatform.mlp.stackfile import load_project, load_stack

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "444455556666"  # the prod stack's aws_account_id: moto answers as that account (MOTO_ACCOUNT_ID)
PROJECT = "mlp-prod-cluster-layer"
LOG_GROUP = "/aws/codebuild/mlp-prod-cluster-layer"
PULUMI_VERSION = "3.272.0"
COMMITTED = {
    "cluster/Pulumi.yaml": "name: ml-platform-cluster\nstackConfigDir: ../stacks\n",
    "cluster/__main__.py": "print('cluster layer')\n",
    "stacks/Pulumi.prod.yaml": "config:\n  aws:region: us-east-1\n",
    "dev.py": "print('setup')\n",
    "requirements.txt": "pulumi==3.272.0\n",
    "README.md": "the blueprint\n",
    ".gitignore": ".venv/\n",
}


# --- fixtures ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerPlan:
    """What the prod stack's plan renders for the runner (the planner's fake ids and ARNs, account 444455556666)."""

    project: dict[str, Any]
    role_name: str
    trust_policy: str
    role_policy: str
    log_group: dict[str, Any]
    bucket: str
    encryption: dict[str, Any]


@pytest.fixture(scope="module")
def runner_plan() -> RunnerPlan:
    plan = plan_stack(load_stack(load_project(ROOT), "prod"))
    project = plan.get("runner-project").inputs
    return RunnerPlan(
        project=copy.deepcopy(project),
        role_name=project["serviceRole"].rsplit("/", 1)[-1],
        trust_policy=plan.get("runner-role").inputs["assumeRolePolicy"],
        role_policy=plan.get("runner-policy").inputs["policy"],
        log_group=copy.deepcopy(plan.get("runner-logs").inputs),
        bucket=project["source"]["location"].split("/", 1)[0],
        encryption=copy.deepcopy(plan.get("lake-artifacts-encryption").inputs["rules"][0]),
    )


@pytest.fixture(scope="module")
def prod_cfg() -> PlatformConfig:
    return load_stack(load_project(ROOT), "prod").validate()


@pytest.fixture
def prod_account(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    return moto_endpoint


@dataclass
class Deployed:
    """The runner's resources in moto."""

    ctx: AwsContext
    bucket: str
    lake_key_arn: str
    project: dict[str, Any] = field(default_factory=dict)


def create_runner(ctx: AwsContext, runner: RunnerPlan, *, with_project: bool = True) -> Deployed:
    """Create in moto what the cloud layer creates for the runner, from the plan's inputs (engine names mapped to
    the API's; the planner's fake KMS key ARNs replaced by moto keys)."""
    kms, s3, iam, logs = ctx.client("kms"), ctx.client("s3"), ctx.client("iam"), ctx.client("logs")
    lake_key = kms.create_key(Description="lake")["KeyMetadata"]["Arn"]
    logs_key = kms.create_key(Description="logs")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=runner.bucket)
    s3.put_bucket_versioning(Bucket=runner.bucket, VersioningConfiguration={"Status": "Enabled"})
    default = runner.encryption["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    s3.put_bucket_encryption(
        Bucket=runner.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": lake_key},
                    "BucketKeyEnabled": runner.encryption["bucketKeyEnabled"],
                }
            ]
        },
    )
    iam.create_role(RoleName=runner.role_name, AssumeRolePolicyDocument=runner.trust_policy)
    iam.put_role_policy(RoleName=runner.role_name, PolicyName="runner", PolicyDocument=runner.role_policy)
    logs.create_log_group(logGroupName=runner.log_group["name"], kmsKeyId=logs_key)
    logs.put_retention_policy(
        logGroupName=runner.log_group["name"], retentionInDays=runner.log_group["retentionInDays"]
    )
    deployed = Deployed(ctx=ctx, bucket=runner.bucket, lake_key_arn=lake_key)
    if with_project:
        ctx.client("codebuild").create_project(**project_request(runner.project))
        deployed.project = ctx.client("codebuild").batch_get_projects(names=[PROJECT])["projects"][0]
    return deployed


def project_request(inputs: dict[str, Any]) -> dict[str, Any]:
    """The CreateProject request the provider sends for the component's inputs."""
    env = inputs["environment"]
    logs = inputs["logsConfig"]
    return {
        "name": inputs["name"],
        "description": inputs["description"],
        "source": {k: inputs["source"][k] for k in ("type", "location", "buildspec")},
        "artifacts": {"type": inputs["artifacts"]["type"]},
        "environment": {
            "type": env["type"],
            "image": env["image"],
            "computeType": env["computeType"],
            "imagePullCredentialsType": env["imagePullCredentialsType"],
            "environmentVariables": [{"type": "PLAINTEXT", **v} for v in env["environmentVariables"]],
        },
        "serviceRole": inputs["serviceRole"],
        "timeoutInMinutes": inputs["buildTimeout"],
        "queuedTimeoutInMinutes": inputs["queuedTimeout"],
        "vpcConfig": inputs["vpcConfig"],
        "logsConfig": {"cloudWatchLogs": logs["cloudwatchLogs"], "s3Logs": logs["s3Logs"]},
        "concurrentBuildLimit": inputs["concurrentBuildLimit"],
        "tags": [{"key": k, "value": v} for k, v in sorted(inputs["tags"].items())],
    }


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    identity = ["-c", "user.email=dev@example.com", "-c", "user.name=Dev", "-c", "init.defaultBranch=main"]
    done = subprocess.run(["git", *identity, "-C", str(repo), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, str]) -> str:
    """A git repository holding `files` in one commit; returns the commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "the reviewed tree")
    return git(path, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    make_repo(tmp_path / "repo", COMMITTED)
    ignored = tmp_path / "repo" / ".venv" / "secret.txt"  # ignored: neither dirty nor bundled
    ignored.parent.mkdir()
    ignored.write_text("not for the bundle\n")
    return tmp_path / "repo"


@pytest.fixture
def deployed(prod_account: str, runner_plan: RunnerPlan) -> Deployed:
    return create_runner(AwsContext(REGION), runner_plan)


class Calls:
    """The parameters of every call to one operation, captured before botocore sends it."""

    def __init__(self, client: Any, operation: str) -> None:
        self.params: list[dict[str, Any]] = []
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"provide-client-params.{service}.{operation}", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.params.append(copy.deepcopy(params))


def no_sleep(_: float) -> None:
    raise AssertionError("the follower slept although the build had ended")


def start_request(bucket: str, key: str, command: str, version: Any) -> dict[str, Any]:
    return {
        "projectName": PROJECT,
        "sourceTypeOverride": "S3",
        "sourceLocationOverride": f"{bucket}/{key}",
        "environmentVariablesOverride": [{"name": "PULUMI_COMMAND", "value": command, "type": "PLAINTEXT"}],
        "sourceVersion": version,
    }


# --- up against moto --------------------------------------------------------------------------------------------


def test_up_uploads_the_committed_tree_once_and_each_run_starts_a_build(
    deployed: Deployed, repo: Path, prod_cfg: PlatformConfig, runner_plan: RunnerPlan
) -> None:
    ctx, bucket = deployed.ctx, deployed.bucket
    commit = git(repo, "rev-parse", "HEAD")
    key = f"deploy/cluster-layer/prod/{commit}.zip"
    starts = Calls(ctx.client("codebuild"), "StartBuild")
    puts = Calls(ctx.client("s3"), "PutObject")
    lines: list[str] = []

    result = run_runner(prod_cfg, "prod", "up", ctx, repo, emit=lines.append, sleep=no_sleep)

    s3 = ctx.client("s3")
    obj = s3.get_object(Bucket=bucket, Key=key)
    body = obj["Body"].read()
    digest = hashlib.sha256(body).hexdigest()
    assert obj["ContentType"] == "application/zip"
    assert obj["Metadata"] == {"sha256": digest, "commit": commit, "stack": "prod"}
    assert obj["ServerSideEncryption"] == "aws:kms"  # the bucket's default, with the lake key
    assert obj["SSEKMSKeyId"] == deployed.lake_key_arn
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        files = {n: bundle.read(n).decode() for n in bundle.namelist() if not n.endswith("/")}
    assert files == COMMITTED  # the committed files only: not the ignored .venv/secret.txt

    assert runner_plan.project["source"]["location"] == f"{bucket}/deploy/cluster-layer/latest.zip"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="deploy/")["Versions"]
    assert [(v["Key"], v["IsLatest"]) for v in versions] == [(key, True)]
    assert starts.params == [start_request(bucket, key, "up", versions[0]["VersionId"])]
    assert result.build_id.startswith(f"{PROJECT}:")
    assert result == RunnerResult(
        stack="prod",
        command="up",
        project=PROJECT,
        build_id=result.build_id,
        bucket=bucket,
        bundle_key=key,
        commit=commit,
        uploaded=True,
        outcome=BuildOutcome(build_id=result.build_id, status="SUCCEEDED", seconds=result.outcome.seconds),
        followed=True,
    )
    assert result.succeeded is True
    assert result.outcome.seconds is not None and 60 <= result.outcome.seconds <= 300  # moto: 1 to 5 minutes
    stream = result.build_id.split(":", 1)[1]
    assert lines == [
        f"bundle s3://{bucket}/{key} (commit {commit[:12]}, {len(body) / 1024:.0f} KiB): uploaded",
        f"started build {result.build_id}: pulumi up of stack prod's cluster layer",
        f"following its log {LOG_GROUP} {stream} (Ctrl-C stops following, not the build)",
        outcome_line(result.outcome),
    ]
    assert lines[-1] == f"build {result.build_id}: SUCCEEDED in {_minutes(result.outcome.seconds)}"
    assert to_json(result)["bundle"] == f"s3://{bucket}/{key}"

    lines.clear()
    again = run_runner(prod_cfg, "prod", "up", ctx, repo, emit=lines.append, sleep=no_sleep)

    assert again.uploaded is False
    assert again.bundle_key == key
    assert again.build_id != result.build_id
    assert len(puts.params) == 1  # no second upload
    assert s3.list_object_versions(Bucket=bucket, Prefix="deploy/")["Versions"] == versions
    assert starts.params[1] == start_request(bucket, key, "up", versions[0]["VersionId"])
    assert (
        lines[0] == f"bundle s3://{bucket}/{key} (commit {commit[:12]}, {len(body) / 1024:.0f} KiB): already uploaded"
    )
    ids = ctx.client("codebuild").list_builds_for_project(projectName=PROJECT)["ids"]
    assert ids == [result.build_id, again.build_id]  # moto lists oldest first


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def test_a_bundle_with_another_sha256_at_the_key_is_replaced(
    deployed: Deployed, repo: Path, prod_cfg: PlatformConfig
) -> None:
    ctx, bucket = deployed.ctx, deployed.bucket
    commit = git(repo, "rev-parse", "HEAD")
    key = f"deploy/cluster-layer/prod/{commit}.zip"
    ctx.client("s3").put_object(Bucket=bucket, Key=key, Body=b"truncated", Metadata={"sha256": "0" * 64})

    result = run_runner(prod_cfg, "prod", "preview", ctx, repo, emit=lambda _: None, sleep=no_sleep)

    assert result.uploaded is True
    body = ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None
    assert (
        ctx.client("s3").head_object(Bucket=bucket, Key=key)["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    )


def test_allow_dirty_bundles_head_and_says_the_changes_are_not_included(
    deployed: Deployed, repo: Path, prod_cfg: PlatformConfig
) -> None:
    (repo / "cluster" / "__main__.py").write_text("print('edited, not committed')\n")
    (repo / "notes.txt").write_text("untracked\n")
    lines: list[str] = []

    result = run_runner(
        prod_cfg, "prod", "preview", deployed.ctx, repo, allow_dirty=True, emit=lines.append, sleep=no_sleep
    )

    body = deployed.ctx.client("s3").get_object(Bucket=deployed.bucket, Key=result.bundle_key)["Body"].read()
    bundle = zipfile.ZipFile(io.BytesIO(body))
    assert bundle.read("cluster/__main__.py").decode() == COMMITTED["cluster/__main__.py"]
    assert "notes.txt" not in bundle.namelist()
    assert lines[0] == (
        "uncommitted changes are NOT included (M cluster/__main__.py, ?? notes.txt): "
        f"deploying commit {result.commit[:12]} as committed"
    )


def test_without_follow_it_starts_the_build_and_says_how_to_follow_it(
    deployed: Deployed, repo: Path, prod_cfg: PlatformConfig
) -> None:
    polls = Calls(deployed.ctx.client("codebuild"), "BatchGetBuilds")
    lines: list[str] = []

    result = run_runner(prod_cfg, "prod", "refresh", deployed.ctx, repo, follow=False, emit=lines.append)

    assert polls.params == []
    assert result.followed is False
    assert result.succeeded is None
    assert result.status == "IN_PROGRESS"
    stream = result.build_id.split(":", 1)[1]
    assert lines[1:] == [
        f"started build {result.build_id}: pulumi refresh of stack prod's cluster layer",
        f"its status: `aws codebuild batch-get-builds --ids {result.build_id} --region us-east-1`",
        f"its log: `aws logs tail {LOG_GROUP} --log-stream-names {stream} --follow --region us-east-1`",
    ]


def test_a_confirmed_destroy_starts_a_destroy_build(deployed: Deployed, repo: Path, prod_cfg: PlatformConfig) -> None:
    starts = Calls(deployed.ctx.client("codebuild"), "StartBuild")

    result = run_runner(
        prod_cfg, "prod", "destroy", deployed.ctx, repo, confirmed=True, emit=lambda _: None, sleep=no_sleep
    )

    assert result.succeeded is True
    assert starts.params[0]["environmentVariablesOverride"] == [
        {"name": "PULUMI_COMMAND", "value": "destroy", "type": "PLAINTEXT"}
    ]


# --- following the log ------------------------------------------------------------------------------------------


def test_log_lines_are_streamed_in_order_as_they_arrive(
    deployed: Deployed, repo: Path, prod_cfg: PlatformConfig
) -> None:
    """moto ends every build on the first BatchGetBuilds: an after-call hook reports the first three polls as
    IN_PROGRESS; the fake sleep writes the build's log between polls (the stream appears after the first poll)."""
    ctx = deployed.ctx
    codebuild, logs = ctx.client("codebuild"), ctx.client("logs")
    polls: list[str] = []

    def still_running(parsed: dict[str, Any], **_: Any) -> None:
        polls.append(parsed["builds"][0]["buildStatus"])
        if len(polls) <= 3:
            parsed["builds"][0].update(buildStatus="IN_PROGRESS", buildComplete=False, currentPhase="BUILD")

    codebuild.meta.events.register("after-call.codebuild.BatchGetBuilds", still_running)
    stream: list[str] = []

    def capture(parsed: dict[str, Any], **_: Any) -> None:
        stream.append(parsed["build"]["id"].split(":", 1)[1])

    codebuild.meta.events.register("after-call.codebuild.StartBuild", capture)
    batches = [
        ["[Container] Entering phase INSTALL\n", "line 1\n"],
        ["line 2\n"],
        ["Resources:\n", "    + 3 created\n"],
    ]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream[0])
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": m} for i, m in enumerate(batches[len(slept) - 1])]
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream[0], logEvents=events)

    lines: list[str] = []
    result = run_runner(prod_cfg, "prod", "up", ctx, repo, emit=lines.append, poll_seconds=7.5, sleep=sleep)

    assert slept == [7.5, 7.5, 7.5]
    assert polls == ["SUCCEEDED"] * 4  # what moto said; the first three were reported as IN_PROGRESS
    assert lines[3:] == [
        "[Container] Entering phase INSTALL",
        "line 1",
        "line 2",
        "Resources:",
        "    + 3 created",
        f"build {result.build_id}: SUCCEEDED in {_minutes(result.outcome.seconds or 0)}",
    ]


def _build(build_id: str, status: str, phases: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    start = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
    build: dict[str, Any] = {
        "id": build_id,
        "buildStatus": status,
        "buildComplete": status != "IN_PROGRESS",
        "currentPhase": phases[-1]["phaseType"] if phases else "SUBMITTED",
        "startTime": start,
        "phases": phases,
        "logs": {"groupName": LOG_GROUP, "streamName": "named-by-the-build", "cloudWatchLogs": {"status": "ENABLED"}},
    }
    if status != "IN_PROGRESS":
        build["endTime"] = start + timedelta(minutes=3, seconds=12)
    build.update(extra)
    return build


def _phases(failed_type: str | None, status: str, contexts: list[dict[str, str]]) -> list[dict[str, Any]]:
    order = ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD"]
    phases: list[dict[str, Any]] = []
    for phase in order:
        if phase == failed_type:
            phases.append({"phaseType": phase, "phaseStatus": status, "contexts": contexts})
        else:
            phases.append({"phaseType": phase, "phaseStatus": "SUCCEEDED", "contexts": []})
    phases += [
        {"phaseType": "FINALIZING", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "COMPLETED"},
    ]
    return phases


@pytest.fixture
def stubbed(deployed: Deployed) -> Iterator[Stubber]:
    """The codebuild client stubbed (S3, STS and CloudWatch Logs still answer from moto)."""
    with Stubber(deployed.ctx.client("codebuild")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _put_log(ctx: AwsContext, stream: str, messages: list[str]) -> None:
    logs = ctx.client("logs")
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


BUILD_ID = f"{PROJECT}:6c1f0d9e-0000-4000-8000-000000000001"
COMMAND_FAILED = {
    "statusCode": "COMMAND_EXECUTION_ERROR",
    "message": "Error while executing command: pulumi --cwd cluster up --stack prod. Reason: exit status 255",
}


def test_a_failed_build_is_not_ok_and_names_its_status_and_phase(
    deployed: Deployed, stubbed: Stubber, repo: Path, prod_cfg: PlatformConfig
) -> None:
    ctx, bucket = deployed.ctx, deployed.bucket
    key = f"deploy/cluster-layer/prod/{git(repo, 'rev-parse', 'HEAD')}.zip"
    queued = _phases(None, "SUCCEEDED", [])[:2]
    stubbed.add_response("batch_get_projects", {"projects": [deployed.project]}, {"names": [PROJECT]})
    stubbed.add_response(
        "start_build", {"build": _build(BUILD_ID, "IN_PROGRESS", queued)}, start_request(bucket, key, "up", ANY)
    )
    running = _build(BUILD_ID, "IN_PROGRESS", _phases(None, "SUCCEEDED", [])[:7])
    failed = _build(BUILD_ID, "FAILED", _phases("BUILD", "FAILED", [COMMAND_FAILED]))
    stubbed.add_response("batch_get_builds", {"builds": [running]}, {"ids": [BUILD_ID]})
    stubbed.add_response("batch_get_builds", {"builds": [failed]}, {"ids": [BUILD_ID]})
    _put_log(ctx, "named-by-the-build", ["error: update failed\n"])
    slept: list[float] = []
    lines: list[str] = []

    result = run_runner(prod_cfg, "prod", "up", ctx, repo, emit=lines.append, sleep=slept.append)

    assert slept == [5.0]
    assert result.succeeded is False
    assert result.status == "FAILED"
    assert result.outcome == BuildOutcome(
        build_id=BUILD_ID,
        status="FAILED",
        phase="BUILD",
        reason="COMMAND_EXECUTION_ERROR: Error while executing command: pulumi --cwd cluster up --stack prod. "
        "Reason: exit status 255",
        seconds=192.0,
    )
    assert lines[2:] == [
        f"following its log {LOG_GROUP} named-by-the-build (Ctrl-C stops following, not the build)",
        "error: update failed",
        f"build {BUILD_ID}: FAILED in phase BUILD after 3m12s (COMMAND_EXECUTION_ERROR: Error while executing "
        "command: pulumi --cwd cluster up --stack prod. Reason: exit status 255)",
    ]
    assert to_json(result)["succeeded"] is False


@pytest.mark.parametrize(
    ("status", "phase", "contexts", "line"),
    [
        (
            "FAULT",
            "PROVISIONING",
            [{"statusCode": "CLIENT_ERROR", "message": "VPC_CLIENT_ERROR: no ENI"}],
            "FAULT in phase PROVISIONING after 3m12s (CLIENT_ERROR: VPC_CLIENT_ERROR: no ENI)",
        ),
        ("STOPPED", "BUILD", [], "STOPPED in phase BUILD after 3m12s"),
        (
            "TIMED_OUT",
            "INSTALL",
            [{"statusCode": "BUILD_TIMED_OUT", "message": "Build has timed out."}],
            "TIMED_OUT in phase INSTALL after 3m12s (BUILD_TIMED_OUT: Build has timed out.)",
        ),
    ],
)
def test_every_other_final_status_is_a_failure(
    deployed: Deployed, stubbed: Stubber, status: str, phase: str, contexts: list[dict[str, str]], line: str
) -> None:
    ended = _build(BUILD_ID, status, _phases(phase, status, contexts))
    stubbed.add_response("batch_get_builds", {"builds": [ended]}, {"ids": [BUILD_ID]})
    lines: list[str] = []

    outcome = follow_build(deployed.ctx, BUILD_ID, emit=lines.append, sleep=no_sleep)

    assert (outcome.status, outcome.phase, outcome.complete) == (status, phase, True)
    assert lines == [f"build {BUILD_ID}: {line}"]  # no stream yet: no log lines


def test_ctrl_c_stops_following_and_says_the_build_goes_on(deployed: Deployed, stubbed: Stubber) -> None:
    running = _build(BUILD_ID, "IN_PROGRESS", _phases(None, "SUCCEEDED", [])[:7])
    stubbed.add_response("batch_get_builds", {"builds": [running]}, {"ids": [BUILD_ID]})
    lines: list[str] = []

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow_build(deployed.ctx, BUILD_ID, emit=lines.append, sleep=interrupted)

    assert lines == [
        f"stopped following build {BUILD_ID}; it goes on in CodeBuild "
        f"(stop it with `aws codebuild stop-build --id {BUILD_ID} --region us-east-1`)"
    ]


def test_an_unreadable_log_leaves_the_status_followed(deployed: Deployed, stubbed: Stubber) -> None:
    running = _build(BUILD_ID, "IN_PROGRESS", _phases(None, "SUCCEEDED", [])[:7])
    ended = _build(BUILD_ID, "SUCCEEDED", _phases(None, "SUCCEEDED", []))
    stubbed.add_response("batch_get_builds", {"builds": [running]}, {"ids": [BUILD_ID]})
    stubbed.add_response("batch_get_builds", {"builds": [ended]}, {"ids": [BUILD_ID]})
    lines: list[str] = []

    with Stubber(deployed.ctx.client("logs")) as logs:
        logs.add_client_error(
            "get_log_events", service_error_code="AccessDeniedException", service_message="not allowed"
        )
        outcome = follow_build(deployed.ctx, BUILD_ID, emit=lines.append, sleep=lambda _: None)
        logs.assert_no_pending_responses()  # read once, then no more

    assert outcome == BuildOutcome(build_id=BUILD_ID, status="SUCCEEDED", seconds=192.0)
    assert lines == [
        f"reading the build log {LOG_GROUP}: permission denied for GetLogEvents (AccessDeniedException); the caller "
        "needs that action allowed; following the status only",
        f"build {BUILD_ID}: SUCCEEDED in 3m12s",
    ]


def test_a_second_run_while_one_is_in_progress_is_refused_naming_it(
    deployed: Deployed, stubbed: Stubber, repo: Path, prod_cfg: PlatformConfig
) -> None:
    running_id = f"{PROJECT}:11111111-2222-4333-8444-555555555555"
    earlier_id = f"{PROJECT}:00000000-2222-4333-8444-555555555555"
    stubbed.add_response("batch_get_projects", {"projects": [deployed.project]}, {"names": [PROJECT]})
    stubbed.add_client_error(
        "start_build",
        service_error_code="AccountLimitExceededException",
        service_message="Cannot have more than 1 builds in queue for the project",
        http_status_code=400,
    )
    stubbed.add_response(
        "list_builds_for_project",
        {"ids": [running_id, earlier_id]},
        {"projectName": PROJECT, "sortOrder": "DESCENDING"},
    )
    stubbed.add_response(
        "batch_get_builds",
        {
            "builds": [
                _build(earlier_id, "SUCCEEDED", _phases(None, "SUCCEEDED", [])),
                _build(running_id, "IN_PROGRESS", _phases(None, "SUCCEEDED", [])[:5]),
            ]
        },
        {"ids": [running_id, earlier_id]},
    )

    with pytest.raises(RunnerError) as caught:
        run_runner(prod_cfg, "prod", "up", deployed.ctx, repo, emit=lambda _: None, sleep=no_sleep)

    assert str(caught.value) == (
        f"another run of the cluster layer is in progress (build ID {running_id}): wait for it "
        f"(`aws codebuild batch-get-builds --ids {running_id} --region us-east-1`)"
    )


def test_a_start_refused_by_the_account_quota_says_so(
    deployed: Deployed, stubbed: Stubber, repo: Path, prod_cfg: PlatformConfig
) -> None:
    stubbed.add_response("batch_get_projects", {"projects": [deployed.project]}, {"names": [PROJECT]})
    stubbed.add_client_error(
        "start_build",
        service_error_code="AccountLimitExceededException",
        service_message="Cannot have more than 1 builds in queue for the account",
        http_status_code=400,
    )
    finished = f"{PROJECT}:00000000-2222-4333-8444-555555555555"  # the project's last build ended; none runs
    stubbed.add_response(
        "list_builds_for_project", {"ids": [finished]}, {"projectName": PROJECT, "sortOrder": "DESCENDING"}
    )
    ended = _build(finished, "SUCCEEDED", _phases(None, "SUCCEEDED", []))
    stubbed.add_response("batch_get_builds", {"builds": [ended]}, {"ids": [finished]})

    with pytest.raises(RunnerError) as caught:
        run_runner(prod_cfg, "prod", "up", deployed.ctx, repo, emit=lambda _: None, sleep=no_sleep)

    assert str(caught.value) == (
        f"CodeBuild refused to start a build of {PROJECT} (AccountLimitExceededException: Cannot have more than 1 "
        "builds in queue for the account): too many builds are running in the account; wait for some to finish"
    )


# --- refusals ---------------------------------------------------------------------------------------------------


def _refusal(call: Callable[[], Any]) -> str:
    with pytest.raises(RunnerError) as caught:
        call()
    return str(caught.value)


def test_a_stack_without_a_runner_is_refused_before_anything_else(repo: Path) -> None:
    dev = load_stack(load_project(ROOT), "dev").validate()
    ctx = AwsContext(REGION)

    message = _refusal(lambda: run_runner(dev, "dev", "up", ctx, repo, emit=lambda _: None))

    assert message == (
        "stack dev has no in-VPC runner (its API endpoint is public, or cluster.runner.enabled is false): "
        "run the cluster layer directly, `pulumi -C cluster up -s dev`"
    )
    assert ctx._clients == {}


def test_an_unknown_command_is_refused_listing_the_allowed_ones(repo: Path, prod_cfg: PlatformConfig) -> None:
    ctx = AwsContext(REGION)

    message = _refusal(lambda: run_runner(prod_cfg, "prod", "rm", ctx, repo, emit=lambda _: None))

    assert message == "unknown command 'rm': the runner runs one of preview, up, destroy, refresh"
    assert ctx._clients == {}


def test_an_unconfirmed_destroy_is_refused(repo: Path, prod_cfg: PlatformConfig) -> None:
    message = _refusal(lambda: run_runner(prod_cfg, "prod", "destroy", AwsContext(REGION), repo, emit=print))

    assert message == (
        "`destroy` deletes every Kubernetes object of stack prod's cluster layer and is not confirmed: "
        "confirm it (answer the prompt, or pass --yes)"
    )


def test_a_tree_with_uncommitted_changes_is_refused(repo: Path, prod_cfg: PlatformConfig) -> None:
    (repo / "stacks" / "Pulumi.prod.yaml").write_text("config: {}\n")
    (repo / "new.py").write_text("x = 1\n")
    commit = git(repo, "rev-parse", "HEAD")
    ctx = AwsContext(REGION)

    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", ctx, repo, emit=lambda _: None))

    assert message == (
        f"{repo} has uncommitted changes (M stacks/Pulumi.prod.yaml, ?? new.py): the runner deploys the committed "
        f"tree; commit them, or pass --allow-dirty to deploy commit {commit[:12]} without them"
    )
    assert ctx._clients == {}


def test_a_directory_that_is_not_a_git_checkout_is_refused(tmp_path: Path, prod_cfg: PlatformConfig) -> None:
    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", AwsContext(REGION), tmp_path, emit=print))

    assert message == (
        f"{tmp_path} is not a git checkout: the runner deploys a commit (`git archive HEAD`); "
        "run it from a clone of the repository"
    )


def test_a_repository_without_a_commit_is_refused(tmp_path: Path, prod_cfg: PlatformConfig) -> None:
    git(tmp_path, "init", "-q")

    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", AwsContext(REGION), tmp_path, emit=print))

    assert message == f"{tmp_path} has no commit yet: the runner deploys a commit; commit the tree first"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a checkout owned by another user needs root")
def test_a_checkout_git_refuses_to_read_is_not_called_missing(
    repo: Path, prod_cfg: PlatformConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # no safe.directory exception from the user's config
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    os.chown(repo, 65534, 65534)

    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", AwsContext(REGION), repo, emit=print))

    assert message == (
        f"git cannot read {repo} (fatal: detected dubious ownership in repository at '{repo}'): "
        "run `git status` there to see why"
    )


def test_a_commit_without_the_stack_file_is_refused(tmp_path: Path, prod_cfg: PlatformConfig) -> None:
    files = {k: v for k, v in COMMITTED.items() if k != "stacks/Pulumi.prod.yaml"}
    commit = make_repo(tmp_path / "repo", files)
    repo = tmp_path / "repo"

    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", AwsContext(REGION), repo, emit=print))

    assert message == (
        f"commit {commit[:12]} of {repo} has no stacks/Pulumi.prod.yaml: the runner needs the cluster layer and the "
        f"stack file committed (is {repo} the project's root, and stack prod committed?)"
    )


def test_a_missing_project_says_to_deploy_the_cloud_layer_first(
    prod_account: str, runner_plan: RunnerPlan, repo: Path, prod_cfg: PlatformConfig
) -> None:
    ctx = AwsContext(REGION)
    create_runner(ctx, runner_plan, with_project=False)

    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", ctx, repo, emit=lambda _: None))

    assert message == (
        f"the runner project {PROJECT} does not exist in {ACCOUNT}/us-east-1: "
        "run `pulumi up -s prod` for the cloud layer first"
    )


def test_credentials_for_another_account_are_refused(moto_endpoint: str, repo: Path, prod_cfg: PlatformConfig) -> None:
    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", AwsContext(REGION), repo, emit=lambda _: None))

    assert message == (
        "the AWS credentials are for account 123456789012, but stack prod deploys into account 444455556666 "
        "(aws_account_id): use credentials for that account"
    )


def test_another_region_is_refused(repo: Path, prod_cfg: PlatformConfig) -> None:
    message = _refusal(lambda: run_runner(prod_cfg, "prod", "up", AwsContext("eu-west-1"), repo, emit=print))

    assert message == (
        "the AWS session's region eu-west-1 differs from stack prod's region us-east-1: "
        "the runner lives in the stack's region"
    )


# --- the buildspec as a shell program ---------------------------------------------------------------------------

FAKE_CURL = r"""#!/usr/bin/env bash
printf '%s\x1f' "$@" >> "$RECORD/curl.calls"; printf '\n' >> "$RECORD/curl.calls"
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2;;
    --retry) shift 2;;
    -*) shift;;
    *) url="$1"; shift;;
  esac
done
[ -f "$SERVE/${out##*/}" ] || exit 22
cp "$SERVE/${out##*/}" "$out"
"""
FAKE_TOOL = r"""#!/usr/bin/env bash
printf '%s\x1f' "$@" >> "$RECORD/NAME.calls"; printf '\n' >> "$RECORD/NAME.calls"
echo "$0" >> "$RECORD/NAME.paths"
"""
ARCHIVE = f"pulumi-v{PULUMI_VERSION}-linux-x64.tar.gz"
SUMS = f"pulumi-{PULUMI_VERSION}-checksums.txt"
BACKEND = "s3://acme-pulumi-state-prod?region=us-east-1&awssdk=v2"
SECRETS = "awskms://alias/acme-pulumi-state-prod-secrets?region=us-east-1"


def _tarball(pulumi_script: str) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, text in (("pulumi/pulumi", pulumi_script), ("pulumi/pulumi-language-python", "#!/bin/sh\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text.encode()), 0o755
            tar.addfile(info, io.BytesIO(text.encode()))
    return data.getvalue()


@dataclass(frozen=True)
class Sandbox:
    root: Path
    src: Path
    env: dict[str, str]

    def calls(self, tool: str) -> list[list[str]]:
        path = self.root / "record" / f"{tool}.calls"
        if not path.exists():
            return []
        # The source directory ($CODEBUILD_SRC_DIR) is shown as SRC, so expectations read as the build would.
        return [
            [arg.replace(str(self.src), "SRC") for arg in line.split("\x1f")[:-1]]
            for line in path.read_text().splitlines()
        ]

    def paths(self, tool: str) -> list[str]:
        path = self.root / "record" / f"{tool}.paths"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """Fake tools on PATH, the release files the fake curl serves, and /opt, /tmp and the source dir."""
    for folder in ("bin", "serve", "record", "opt", "tmp", "src"):
        (tmp_path / folder).mkdir()
    (tmp_path / "bin" / "curl").write_text(FAKE_CURL)
    (tmp_path / "bin" / "python3.11").write_text(FAKE_TOOL.replace("NAME", "python"))
    for tool in ("curl", "python3.11"):
        (tmp_path / "bin" / tool).chmod(0o755)
    tarball = _tarball(FAKE_TOOL.replace("NAME", "pulumi"))
    (tmp_path / "serve" / ARCHIVE).write_bytes(tarball)
    digest = hashlib.sha256(tarball).hexdigest()
    other = hashlib.sha256(b"darwin").hexdigest()
    sums = f"{other}  pulumi-v{PULUMI_VERSION}-darwin-arm64.tar.gz\n{digest}  {ARCHIVE}\n"
    (tmp_path / "serve" / SUMS).write_text(sums)
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "RECORD": str(tmp_path / "record"),
        "SERVE": str(tmp_path / "serve"),
        "CODEBUILD_SRC_DIR": str(tmp_path / "src"),
        # the project's environment variables (infra/runner/component.py) for the prod stack
        "PULUMI_BACKEND_URL": BACKEND,
        "PULUMI_SECRETS_PROVIDER": SECRETS,
        "PULUMI_COMMAND": "preview",
    }
    return Sandbox(root=tmp_path, src=tmp_path / "src", env=env)


def _local(command: str, root: Path) -> str:
    """The command with its /opt and /tmp paths moved under `root` (both in one pass)."""
    return re.sub(r"(?<![\w./$-])/(opt|tmp)\b", lambda m: f"{root}/{m.group(1)}", command)


def run_buildspec(sandbox: Sandbox, command: str, spec: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Run the phases in order, each in one bash process, as CodeBuild runs buildspec 0.2: the commands share the
    shell, each command's exit status is checked, a failing command ends the phase, and on-failure ABORT stops the
    build. Returns the phases that ran."""
    document = yaml.safe_load(spec or buildspec(stack="prod", pulumi_version=PULUMI_VERSION, environment="prod"))
    assert document["version"] == 0.2 and document["env"]["shell"] == "bash"
    env = {**sandbox.env, **document["env"]["variables"], "PULUMI_COMMAND": command}
    ran = []
    for phase in ("install", "pre_build", "build", "post_build"):
        if phase not in document["phases"]:
            continue
        commands = [_local(c, sandbox.root) for c in document["phases"][phase]["commands"]]
        checked = [f"{c}\n__status=$?; if [ $__status -ne 0 ]; then exit $__status; fi" for c in commands]
        script = "\n".join(checked) + "\n"
        done = subprocess.run(["bash", "-c", script], cwd=sandbox.src, env=env, capture_output=True, text=True)
        ran.append(done)
        if done.returncode != 0:
            assert document["phases"][phase]["on-failure"] == "ABORT"
            break
    return ran


def test_the_rewritten_commands_keep_no_system_path(sandbox: Sandbox) -> None:
    document = yaml.safe_load(buildspec(stack="prod", pulumi_version=PULUMI_VERSION, environment="prod"))
    commands = [_local(c, sandbox.root) for p in document["phases"].values() for c in p["commands"]]
    left = [c for c in commands if re.search(r"(?<![\w./$-])/(opt|tmp)\b", c.replace(str(sandbox.root), "ROOT"))]
    assert left == []
    assert f"tar -xzf {sandbox.root}/tmp/{ARCHIVE} -C {sandbox.root}/opt" in commands


def _policy(sandbox_src: str = "SRC") -> list[str]:
    return [
        "--policy-pack",
        f"{sandbox_src}/policies",
        "--policy-pack-config",
        f"{sandbox_src}/policies/config.prod.json",
    ]


PREVIEW = ["--cwd", "cluster", "preview", "--stack", "prod", "--diff", "--non-interactive", *_policy()]


@pytest.mark.parametrize(
    ("command", "last"),
    [
        (
            "up",
            ["--cwd", "cluster", "up", "--stack", "prod", "--yes", "--non-interactive", "--skip-preview", *_policy()],
        ),
        ("preview", PREVIEW),
        ("destroy", ["--cwd", "cluster", "destroy", "--stack", "prod", "--yes", "--non-interactive", "--skip-preview"]),
        ("refresh", ["--cwd", "cluster", "refresh", "--stack", "prod", "--yes", "--non-interactive", "--skip-preview"]),
    ],
)
def test_the_build_installs_the_checked_cli_and_runs_the_command(
    sandbox: Sandbox, command: str, last: list[str]
) -> None:
    ran = run_buildspec(sandbox, command)

    assert [p.returncode for p in ran] == [0, 0], [p.stderr for p in ran]
    assert sandbox.calls("pulumi") == [
        ["version"],
        ["login", BACKEND],
        ["--cwd", "cluster", "stack", "select", "prod", "--create", "--secrets-provider", SECRETS],
        last,
    ]
    assert set(sandbox.paths("pulumi")) == {f"{sandbox.root}/opt/pulumi/pulumi"}  # the extracted, checked CLI
    assert sandbox.calls("python") == [["dev.py", "setup"]]
    base = "https://get.pulumi.com/releases/sdk"
    assert sandbox.calls("curl") == [
        ["-fsSL", "--retry", "3", "-o", f"{sandbox.root}/tmp/{ARCHIVE}", f"{base}/{ARCHIVE}"],
        ["-fsSL", "--retry", "3", "-o", f"{sandbox.root}/tmp/{SUMS}", f"{base}/{SUMS}"],
    ]
    assert f"{ARCHIVE}: OK" in ran[0].stdout


def test_without_a_secrets_provider_the_stack_is_selected_without_one(sandbox: Sandbox) -> None:
    env = dict(sandbox.env)
    del env["PULUMI_SECRETS_PROVIDER"]
    env["PULUMI_BACKEND_URL"] = "https://api.pulumi.com"

    ran = run_buildspec(Sandbox(root=sandbox.root, src=sandbox.src, env=env), "preview")

    assert [p.returncode for p in ran] == [0, 0]
    assert sandbox.calls("pulumi")[1:] == [
        ["login", "https://api.pulumi.com"],
        ["--cwd", "cluster", "stack", "select", "prod", "--create"],
        PREVIEW,
    ]


def test_an_unknown_command_fails_before_anything_runs(sandbox: Sandbox) -> None:
    ran = run_buildspec(sandbox, "rm")

    assert [p.returncode for p in ran] == [2]  # the install phase; the build phase never runs
    assert ran[0].stderr == "PULUMI_COMMAND must be one of: preview, up, destroy, refresh\n"
    assert sandbox.calls("curl") == []
    assert sandbox.calls("pulumi") == []


def test_a_tampered_archive_fails_the_install_before_pulumi_runs(sandbox: Sandbox) -> None:
    (sandbox.root / "serve" / ARCHIVE).write_bytes(_tarball("#!/usr/bin/env bash\necho owned\n"))

    ran = run_buildspec(sandbox, "up")

    assert [p.returncode for p in ran] == [1]
    assert f"{ARCHIVE}: FAILED" in ran[0].stdout
    assert "computed checksum did NOT match" in ran[0].stderr
    assert sandbox.calls("pulumi") == []
    assert sandbox.calls("python") == []
    assert list((sandbox.root / "opt").iterdir()) == []  # nothing extracted


def test_an_archive_missing_from_the_checksums_fails_the_install(sandbox: Sandbox) -> None:
    sums = sandbox.root / "serve" / SUMS
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if ARCHIVE not in line))

    ran = run_buildspec(sandbox, "up")

    assert [p.returncode for p in ran] == [1]
    assert "no properly formatted checksum lines found" in ran[0].stderr
    assert sandbox.calls("pulumi") == []


# -- the command line --------------------------------------------------------------------------------------------


def _mlp(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_runner_command_refuses_a_stack_without_a_runner_and_an_unconfirmed_destroy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mlp(monkeypatch, "runner", "dev", "up") == 4
    assert capsys.readouterr().err == (
        "error: stack dev has no in-VPC runner (its API endpoint is public, or cluster.runner.enabled is false): "
        "run the cluster layer directly, `pulumi -C cluster up -s dev`\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nobody to ask
    assert _mlp(monkeypatch, "runner", "prod", "destroy") == 2
    assert "destroy without a terminal needs --yes" in capsys.readouterr().err
    assert _mlp(monkeypatch, "runner", "prod", "rm") == 2
