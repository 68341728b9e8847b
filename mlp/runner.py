"""`mlp runner STACK [COMMAND]`: run the cluster layer's `pulumi COMMAND` in the stack's in-VPC runner.

A stack with a private API endpoint cannot have its cluster layer deployed from a workstation; its cloud layer
creates a CodeBuild project in the private subnets whose role has a cluster-admin access entry
(`infra/runner`). This module drives it:

1. refuse what the runner cannot or must not do: a stack without a runner, a command other than
   `preview`, `up`, `destroy`, `refresh`, an unconfirmed `destroy`, a working tree with uncommitted changes
   (unless allowed: they are then left out, and said to be);
2. bundle the committed tree, `git archive --format=zip HEAD` (the exact reviewed commit, reproducible), and check
   it holds the cluster layer's project file and the stack file;
3. find the project (`<cluster>-cluster-layer`) and its source bucket (the lake's artifacts zone);
4. upload the bundle to `deploy/cluster-layer/<stack>/<commit>.zip` (the bucket's default SSE-KMS applies); the
   same commit is the same key, and an object already there with the same sha256 (object metadata) is reused;
5. start a build with that object as its source and `PULUMI_COMMAND` set; a refusal because a build is already
   running (the project allows one at a time) names the running build;
6. follow it: poll its status, stream its CloudWatch log lines, end with its status and duration.

Every AWS failure is a one-line `RunnerError` (an `AccountError`: the CLI prints it and exits 4). moto answers
every call here in tests/test_runner.py; what it cannot do (a failed build, a refused start) is stubbed there.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplatform.infra.runner.documents import COMMANDS, SOURCE_PREFIX, project_name
from mlplatform.mlp.aws import AwsContext, describe_aws_error
from mlplatform.mlp.errors import AccountError

if TYPE_CHECKING:
    from mlplatform.infra.config import PlatformConfig

Emit = Callable[[str], None]

SUCCEEDED = "SUCCEEDED"
IN_PROGRESS = "IN_PROGRESS"
BUNDLE_CONTENT_TYPE = "application/zip"
LIMIT_EXCEEDED = "AccountLimitExceededException"
# What the buildspec reads from the bundle: the cluster layer's project, the stack file, and what `dev.py setup`
# installs the environment from. `{stack}` is the stack's name.
REQUIRED_FILES = ("cluster/Pulumi.yaml", "stacks/Pulumi.{stack}.yaml", "dev.py", "requirements.txt")
_SHOWN_PATHS = 5


class RunnerError(AccountError):
    """`mlp runner` cannot do what was asked; the message says why and what to do (one line, no traceback)."""


@dataclass(frozen=True)
class Bundle:
    """The committed tree as the zip CodeBuild unpacks into its source directory."""

    commit: str
    data: bytes = field(repr=False)
    sha256: str
    files: tuple[str, ...] = field(repr=False)
    left_out: tuple[str, ...] = ()
    """`git status --porcelain` lines of the uncommitted changes that are not in the bundle."""


@dataclass(frozen=True)
class BuildOutcome:
    """How a build ended (or, for a build not followed, where it stands)."""

    build_id: str
    status: str
    """SUCCEEDED, FAILED, FAULT, STOPPED, TIMED_OUT, or IN_PROGRESS while it runs."""
    phase: str | None = None
    """The first phase that did not succeed (None when the build succeeded or still runs)."""
    reason: str | None = None
    """That phase's status code and message, as CodeBuild gives them."""
    seconds: float | None = None

    @property
    def complete(self) -> bool:
        return self.status != IN_PROGRESS


@dataclass(frozen=True)
class RunnerResult:
    stack: str
    command: str
    project: str
    build_id: str
    bucket: str
    bundle_key: str
    commit: str
    uploaded: bool
    """False when the same bundle (key and sha256) was already there."""
    outcome: BuildOutcome
    followed: bool

    @property
    def status(self) -> str:
        return self.outcome.status

    @property
    def succeeded(self) -> bool | None:
        """True or False once the build has ended (followed); None when it was only started."""
        if not self.followed:
            return None
        return self.outcome.status == SUCCEEDED


# --- checks that need no AWS ------------------------------------------------------------------------------------


def check_request(cfg: PlatformConfig, stack: str, command: str, *, confirmed: bool) -> None:
    """Refuse what the runner cannot or must not run; call it before asking to confirm a `destroy`."""
    if not cfg.runs_in_vpc_runner:
        shown = command if command in COMMANDS else "up"
        raise RunnerError(
            f"stack {stack} has no in-VPC runner (its API endpoint is public, or cluster.runner.enabled is false): "
            f"run the cluster layer directly, `pulumi -C cluster {shown} -s {stack}`"
        )
    if command not in COMMANDS:
        raise RunnerError(f"unknown command {command!r}: the runner runs one of {', '.join(COMMANDS)}")
    if command == "destroy" and not confirmed:
        raise RunnerError(
            f"`destroy` deletes every Kubernetes object of stack {stack}'s cluster layer and is not confirmed: "
            "confirm it (answer the prompt, or pass --yes)"
        )


def bundle_key(stack: str, commit: str) -> str:
    """Where a commit's bundle lives in the artifacts bucket (the runner's role reads only SOURCE_PREFIX)."""
    return f"{SOURCE_PREFIX}{stack}/{commit}.zip"


def make_bundle(repo_root: Path, stack: str, *, allow_dirty: bool = False) -> Bundle:
    """The committed tree at HEAD as a zip (`git archive`: the same commit gives the same bytes); refuses a tree
    with uncommitted changes unless `allow_dirty`, and a bundle without the files the build reads."""
    _git_checkout(repo_root)
    changes = tuple(line for line in _git(repo_root, "status", "--porcelain", "--", ".").decode().splitlines() if line)
    commit = _git(repo_root, "rev-parse", "--verify", "HEAD^{commit}").decode().strip()
    if changes and not allow_dirty:
        raise RunnerError(
            f"{repo_root} has uncommitted changes ({_paths_text(changes)}): the runner deploys the committed tree; "
            f"commit them, or pass --allow-dirty to deploy commit {commit[:12]} without them"
        )
    data = _git(repo_root, "archive", "--format=zip", "HEAD")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = tuple(name for name in archive.namelist() if not name.endswith("/"))
    missing = [path.format(stack=stack) for path in REQUIRED_FILES if path.format(stack=stack) not in files]
    if missing:
        raise RunnerError(
            f"commit {commit[:12]} of {repo_root} has no {', '.join(missing)}: the runner needs the cluster layer "
            f"and the stack file committed (is {repo_root} the project's root, and stack {stack} committed?)"
        )
    return Bundle(commit=commit, data=data, sha256=hashlib.sha256(data).hexdigest(), files=files, left_out=changes)


def _git_checkout(repo_root: Path) -> None:
    if not repo_root.is_dir():
        raise RunnerError(f"{repo_root} is not a directory")
    probe = _run_git(repo_root, "rev-parse", "--is-inside-work-tree")
    said = [line for line in probe.stderr.decode(errors="replace").splitlines() if line.startswith("fatal:")]
    if probe.returncode != 0 and said and "not a git repository" not in said[0]:
        # e.g. "detected dubious ownership": a checkout git refuses to read, not a missing one
        raise RunnerError(f"git cannot read {repo_root} ({said[0]}): run `git status` there to see why")
    if probe.returncode != 0 or probe.stdout.strip() != b"true":
        raise RunnerError(
            f"{repo_root} is not a git checkout: the runner deploys a commit (`git archive HEAD`); "
            "run it from a clone of the repository"
        )
    if _run_git(repo_root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").returncode != 0:
        raise RunnerError(f"{repo_root} has no commit yet: the runner deploys a commit; commit the tree first")


def _run_git(repo_root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo_root), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise RunnerError("git is not installed: the runner bundles the committed tree with `git archive`") from None


def _git(repo_root: Path, *args: str) -> bytes:
    done = _run_git(repo_root, *args)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {done.returncode}"]
        raise RunnerError(f"`git {' '.join(args)}` failed in {repo_root}: {lines[-1]}")
    return done.stdout


def _paths_text(changes: Sequence[str]) -> str:
    shown = ", ".join(line.strip() for line in changes[:_SHOWN_PATHS])
    more = f" and {len(changes) - _SHOWN_PATHS} more" if len(changes) > _SHOWN_PATHS else ""
    return f"{shown}{more}"


# --- AWS --------------------------------------------------------------------------------------------------------


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _aws_failures() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def find_project(ctx: AwsContext, cfg: PlatformConfig, stack: str, account: str) -> dict[str, Any]:
    """The runner's CodeBuild project, as BatchGetProjects describes it."""
    name = project_name(cfg.cluster_name)
    try:
        projects = ctx.client("codebuild").batch_get_projects(names=[name]).get("projects") or []
    except _aws_failures() as exc:
        raise RunnerError(describe_aws_error(exc, f"looking up the runner project {name}")) from None
    if not projects:
        raise RunnerError(
            f"the runner project {name} does not exist in {account}/{ctx.region}: "
            f"run `pulumi up -s {stack}` for the cloud layer first"
        )
    project: dict[str, Any] = projects[0]
    return project


def source_bucket(project: Mapping[str, Any], stack: str) -> str:
    """The bucket of the project's S3 source (`BUCKET/deploy/cluster-layer/latest.zip`): the artifacts zone."""
    source = project.get("source") or {}
    location = str(source.get("location") or "")
    bucket, _, path = location.partition("/")
    if source.get("type") != "S3" or not bucket or not path.startswith(SOURCE_PREFIX):
        raise RunnerError(
            f"the runner project {project.get('name')} takes its source from {source.get('type')} {location!r}, "
            f"not from BUCKET/{SOURCE_PREFIX}: update the cloud layer (`pulumi up -s {stack}`)"
        )
    return bucket


def upload_bundle(ctx: AwsContext, bucket: str, key: str, bundle: Bundle, stack: str) -> tuple[bool, str | None]:
    """Put the bundle at `key` unless an object with the same sha256 is there; (uploaded, its version id)."""
    s3 = ctx.client("s3")
    where = f"s3://{bucket}/{key}"
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except _aws_failures() as exc:
        # 404: not there. 403: S3 says that too for a missing key when the caller may not list the bucket.
        if _code(exc) not in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"):
            raise RunnerError(describe_aws_error(exc, f"looking for the bundle {where}")) from None
        head = None
    if head is not None and (head.get("Metadata") or {}).get("sha256") == bundle.sha256:
        version = head.get("VersionId")
        return False, version if version and version != "null" else None
    try:
        put = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=bundle.data,
            ContentType=BUNDLE_CONTENT_TYPE,
            Metadata={"sha256": bundle.sha256, "commit": bundle.commit, "stack": stack},
        )
    except _aws_failures() as exc:
        raise RunnerError(describe_aws_error(exc, f"uploading the bundle to {where}")) from None
    version = put.get("VersionId")
    return True, version if version and version != "null" else None


def start_build(
    ctx: AwsContext, project: str, bucket: str, key: str, command: str, version: str | None = None
) -> dict[str, Any]:
    """Start a build of the bundle at `bucket/key` (pinned to its object version when the bucket has versions)."""
    codebuild = ctx.client("codebuild")
    request: dict[str, Any] = {
        "projectName": project,
        "sourceTypeOverride": "S3",
        "sourceLocationOverride": f"{bucket}/{key}",
        "environmentVariablesOverride": [{"name": "PULUMI_COMMAND", "value": command, "type": "PLAINTEXT"}],
    }
    if version:
        request["sourceVersion"] = version
    try:
        build: dict[str, Any] = codebuild.start_build(**request)["build"]
    except _aws_failures() as exc:
        if _code(exc) == LIMIT_EXCEEDED:
            running = running_builds(ctx, project)
            if running:
                raise RunnerError(
                    f"another run of the cluster layer is in progress (build ID {running[0]}): wait for it "
                    f"(`aws codebuild batch-get-builds --ids {running[0]} --region {ctx.region}`)"
                ) from None
            raise RunnerError(
                f"CodeBuild refused to start a build of {project} ({LIMIT_EXCEEDED}: "
                f"{_message(exc)}): too many builds are running in the account; wait for some to finish"
            ) from None
        raise RunnerError(describe_aws_error(exc, f"starting a build of {project}")) from None
    return build


def _message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")).strip()


def running_builds(ctx: AwsContext, project: str) -> list[str]:
    """The ids of the project's builds still running, newest first (empty when they cannot be read)."""
    codebuild = ctx.client("codebuild")
    try:
        ids = codebuild.list_builds_for_project(projectName=project, sortOrder="DESCENDING").get("ids") or []
        if not ids:
            return []
        builds = codebuild.batch_get_builds(ids=ids[:100]).get("builds") or []
    except _aws_failures():
        return []
    order = {build_id: i for i, build_id in enumerate(ids)}
    running = [b for b in builds if not _is_complete(b)]
    return [b["id"] for b in sorted(running, key=lambda b: order.get(b["id"], len(order)))]


# --- following a build ------------------------------------------------------------------------------------------


def _is_complete(build: Mapping[str, Any]) -> bool:
    return bool(build.get("buildComplete")) or build.get("buildStatus", IN_PROGRESS) != IN_PROGRESS


def _default_log_group(project: Mapping[str, Any] | None, project_name_: str) -> str | None:
    """The project's CloudWatch Logs group (None when its CloudWatch logs are off)."""
    cloudwatch = ((project or {}).get("logsConfig") or {}).get("cloudWatchLogs") or {}
    if cloudwatch.get("status") == "DISABLED":
        return None
    return str(cloudwatch.get("groupName") or f"/aws/codebuild/{project_name_}")


def log_location(build: Mapping[str, Any], project: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
    """The build's log group and stream: as the build names them once its stream exists, else as CodeBuild names
    them (the project's group, the build id's part after ':', after the project's stream prefix if any)."""
    logs = build.get("logs") or {}
    if (logs.get("cloudWatchLogs") or {}).get("status") == "DISABLED":
        return None
    build_id = str(build["id"])
    name = build_id.split(":", 1)[0]
    group = logs.get("groupName") or _default_log_group(project, name)
    if group is None:
        return None
    stream = logs.get("streamName")
    if not stream:
        prefix = (((project or {}).get("logsConfig") or {}).get("cloudWatchLogs") or {}).get("streamName")
        stream = build_id.split(":", 1)[-1]
        stream = f"{prefix}/{stream}" if prefix else stream
    return str(group), str(stream)


class _LogReader:
    """Reads a log stream forward from where it stopped; a stream not created yet has no lines yet."""

    def __init__(self, ctx: AwsContext, emit: Emit) -> None:
        self._logs = ctx.client("logs")
        self._emit = emit
        self._token: str | None = None
        self._broken = False

    def drain(self, group: str, stream: str) -> None:
        if self._broken:
            return
        while True:
            request: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if self._token:
                request["nextToken"] = self._token
            try:
                page = self._logs.get_log_events(**request)
            except _aws_failures() as exc:
                if _code(exc) == "ResourceNotFoundException":
                    return
                self._broken = True
                self._emit(f"{describe_aws_error(exc, f'reading the build log {group}')}; following the status only")
                return
            for event in page.get("events") or []:
                self._emit(str(event.get("message", "")).rstrip("\r\n"))
            token = page.get("nextForwardToken")
            if not token or token == self._token:  # the same token again: the end of the stream, for now
                return
            self._token = token


def follow_build(
    ctx: AwsContext,
    build_id: str,
    *,
    emit: Emit,
    project: Mapping[str, Any] | None = None,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BuildOutcome:
    """Poll the build every `poll_seconds` until it ends, emitting its log lines as they arrive, then a last
    line with its status and duration (and, when it did not succeed, the phase that failed and why)."""
    codebuild = ctx.client("codebuild")
    reader = _LogReader(ctx, emit)
    started = clock()
    try:
        while True:
            try:
                builds = codebuild.batch_get_builds(ids=[build_id]).get("builds") or []
            except _aws_failures() as exc:
                raise RunnerError(describe_aws_error(exc, f"reading the status of build {build_id}")) from None
            if not builds:
                raise RunnerError(f"build {build_id} does not exist in {ctx.region}")
            build = builds[0]
            where = log_location(build, project)
            if where is not None:
                reader.drain(*where)
            if _is_complete(build):
                break
            sleep(poll_seconds)
    except KeyboardInterrupt:
        emit(
            f"stopped following build {build_id}; it goes on in CodeBuild "
            f"(stop it with `aws codebuild stop-build --id {build_id} --region {ctx.region}`)"
        )
        raise
    outcome = _outcome(build, clock() - started)
    emit(outcome_line(outcome))
    return outcome


def _outcome(build: Mapping[str, Any], waited: float) -> BuildOutcome:
    status = str(build.get("buildStatus") or IN_PROGRESS)
    start, end = build.get("startTime"), build.get("endTime")
    seconds = (end - start).total_seconds() if isinstance(start, datetime) and isinstance(end, datetime) else waited
    if status == SUCCEEDED:
        return BuildOutcome(build_id=str(build["id"]), status=status, seconds=seconds)
    phases = build.get("phases") or []
    failed = [p for p in phases if p.get("phaseStatus") not in (None, SUCCEEDED)]
    phase = failed[0] if failed else None
    reason = None
    if phase is not None:
        contexts = [c for c in phase.get("contexts") or [] if c.get("statusCode") or c.get("message")]
        reason = "; ".join(": ".join(str(c[k]) for k in ("statusCode", "message") if c.get(k)) for c in contexts)
    return BuildOutcome(
        build_id=str(build["id"]),
        status=status,
        phase=str(phase["phaseType"]) if phase else build.get("currentPhase"),
        reason=reason or None,
        seconds=seconds,
    )


def duration_text(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def outcome_line(outcome: BuildOutcome) -> str:
    took = duration_text(outcome.seconds) if outcome.seconds is not None else "?"
    if outcome.status == SUCCEEDED:
        return f"build {outcome.build_id}: {SUCCEEDED} in {took}"
    line = f"build {outcome.build_id}: {outcome.status} in phase {outcome.phase} after {took}"
    return f"{line} ({outcome.reason})" if outcome.reason else line


# --- the command ------------------------------------------------------------------------------------------------


def run_runner(
    cfg: PlatformConfig,
    stack: str,
    command: str,
    ctx: AwsContext,
    repo_root: Path,
    *,
    emit: Emit,
    confirmed: bool = False,
    follow: bool = True,
    allow_dirty: bool = False,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunnerResult:
    """`mlp runner STACK COMMAND`: bundle HEAD, upload it, start the runner's build, follow it (see the module
    docstring). Raises RunnerError (an AccountError) for every refusal and AWS failure; a build that ran and
    failed is not an error: `result.succeeded` is False."""
    check_request(cfg, stack, command, confirmed=confirmed)
    if ctx.region != cfg.region:
        raise RunnerError(
            f"the AWS session's region {ctx.region} differs from stack {stack}'s region {cfg.region}: "
            "the runner lives in the stack's region"
        )
    bundle = make_bundle(repo_root, stack, allow_dirty=allow_dirty)
    if bundle.left_out:
        emit(
            f"uncommitted changes are NOT included ({_paths_text(bundle.left_out)}): "
            f"deploying commit {bundle.commit[:12]} as committed"
        )
    account = ctx.account_id()
    if cfg.aws_account_id and account != cfg.aws_account_id:
        raise RunnerError(
            f"the AWS credentials are for account {account}, but stack {stack} deploys into account "
            f"{cfg.aws_account_id} (aws_account_id): use credentials for that account"
        )
    project = find_project(ctx, cfg, stack, account)
    name = str(project.get("name") or project_name(cfg.cluster_name))
    bucket = source_bucket(project, stack)
    key = bundle_key(stack, bundle.commit)
    uploaded, version = upload_bundle(ctx, bucket, key, bundle, stack)
    size = f"{len(bundle.data) / 1024:.0f} KiB"
    state = "uploaded" if uploaded else "already uploaded"
    emit(f"bundle s3://{bucket}/{key} (commit {bundle.commit[:12]}, {size}): {state}")
    build = start_build(ctx, name, bucket, key, command, version)
    build_id = str(build["id"])
    emit(f"started build {build_id}: pulumi {command} of stack {stack}'s cluster layer")
    where = log_location(build, project)
    if follow:
        if where is not None:
            emit(f"following its log {where[0]} {where[1]} (Ctrl-C stops following, not the build)")
        outcome = follow_build(
            ctx, build_id, emit=emit, project=project, poll_seconds=poll_seconds, sleep=sleep, clock=clock
        )
    else:
        outcome = BuildOutcome(build_id=build_id, status=str(build.get("buildStatus") or IN_PROGRESS))
        emit(f"its status: `aws codebuild batch-get-builds --ids {build_id} --region {ctx.region}`")
        if where is not None:
            emit(f"its log: `aws logs tail {where[0]} --log-stream-names {where[1]} --follow --region {ctx.region}`")
    return RunnerResult(
        stack=stack,
        command=command,
        project=name,
        build_id=build_id,
        bucket=bucket,
        bundle_key=key,
        commit=bundle.commit,
        uploaded=uploaded,
        outcome=outcome,
        followed=follow,
    )


def to_json(result: RunnerResult) -> dict[str, Any]:
    outcome = result.outcome
    return {
        "stack": result.stack,
        "command": result.command,
        "project": result.project,
        "build_id": result.build_id,
        "bundle": f"s3://{result.bucket}/{result.bundle_key}",
        "commit": result.commit,
        "uploaded": result.uploaded,
        "status": outcome.status,
        "succeeded": result.succeeded,
        "failed_phase": outcome.phase,
        "reason": outcome.reason,
        "seconds": outcome.seconds,
    }
