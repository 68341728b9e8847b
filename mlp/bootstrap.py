"""`mlp bootstrap-backend`: the Pulumi state backend of an account, an S3 bucket and a KMS key for secrets.

The bucket NAME: versioning on, SSE-KMS with the key below and an S3 bucket key, all four public-access-block flags,
BucketOwnerEnforced object ownership (no ACLs), a bucket policy statement denying any request not made over TLS,
and a lifecycle rule expiring noncurrent versions after N days (90 by default) and aborting incomplete multipart
uploads after 7. The key: a symmetric encryption key with yearly rotation, a description and tags, named by the
alias `alias/<NAME>-secrets` (dots become hyphens: KMS aliases cannot hold dots) and used by
`pulumi stack init --secrets-provider awskms://...`.

`plan_bootstrap` reads the account and says, setting by setting, what exists and what would be created or changed;
`apply_bootstrap` converges the account to it. Both are safe to repeat: a second run finds everything in place and
changes nothing. Nothing is ever deleted or emptied: an existing bucket keeps its objects, other statements of its
policy, other lifecycle rules and other tags; an existing key keeps its description, policy and other tags. A
bucket name held by another account, a bucket in another region, or a key that is disabled or scheduled for
deletion is an AccountError saying what to do.

Both carry the platform's required cost tags (`infra.tagging.rules.REQUIRED_COST_TAGS`, values given by the
caller: `--tag KEY=VALUE` or a stack's `tags`), so `mlp audit-tags` finds nothing to flag, and
`managed-by: mlp/bootstrap-backend`, not the platform's `managed-by: pulumi/ml-platform`: `mlp residue` never lists
the state backend. A required tag without a value is refused before any AWS call. On an existing bucket or key,
tags that are absent or empty are added and every other tag is kept as it is.

Every call here runs against moto in tests/test_bootstrap.py; AccessDenied, a 403 from HeadBucket and rejected
credentials are simulated with botocore's Stubber (moto accepts any credentials and answers HeadBucket for another
account's bucket with 200).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlplatform.infra.tagging.rules import MAX_AWS_TAGS, REQUIRED_COST_TAGS, tag_problems
from mlplatform.mlp.audit_tags import missing_keys
from mlplatform.mlp.aws import AwsContext, aws_errors, paginate
from mlplatform.mlp.errors import AccountError

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_NONCURRENT_DAYS = 90
ABORT_MULTIPART_DAYS = 7
LIFECYCLE_RULE_ID = "mlp-state-noncurrent-versions"
POLICY_SID = "DenyInsecureTransport"
BACKEND_TAGS: Mapping[str, str] = {"managed-by": "mlp/bootstrap-backend", "purpose": "pulumi-state"}

# Every setting, in the order `apply_bootstrap` converges them (the key before the bucket encrypts with it).
TARGETS: tuple[str, ...] = (
    "kms-key",
    "kms-alias",
    "kms-key-rotation",
    "kms-key-tags",
    "bucket",
    "bucket-ownership",
    "bucket-public-access-block",
    "bucket-versioning",
    "bucket-encryption",
    "bucket-policy",
    "bucket-lifecycle",
    "bucket-tags",
)

_PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
_BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@dataclass(frozen=True)
class BootstrapStep:
    target: str  # one of TARGETS
    action: str  # plan: "create" | "update" | "none"; result: "created" | "updated" | "unchanged"
    detail: str


@dataclass(frozen=True)
class BootstrapPlan:
    name: str
    region: str
    account: str
    alias: str
    key_arn: str | None  # None when the key does not exist yet
    noncurrent_days: int
    tags: Mapping[str, str]  # what the bucket and the key carry: the cost tags and BACKEND_TAGS
    steps: tuple[BootstrapStep, ...]
    # What apply sends for the settings that merge with what exists (policy, lifecycle, tags), by target.
    requests: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def changes(self) -> tuple[BootstrapStep, ...]:
        return tuple(step for step in self.steps if step.action != "none")

    @property
    def up_to_date(self) -> bool:
        return not self.changes


@dataclass(frozen=True)
class BootstrapResult:
    name: str
    region: str
    account: str
    alias: str
    key_arn: str
    tags: Mapping[str, str]
    steps: tuple[BootstrapStep, ...]
    login: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return any(step.action != "unchanged" for step in self.steps)


# --- names ------------------------------------------------------------------------------------------------------


def validate_bucket_name(name: str) -> None:
    """S3's rules for general purpose bucket names; a ValueError naming the rule broken."""
    allowed = "S3 bucket names are 3 to 63 characters of lowercase letters, digits, hyphens and dots"
    if not 3 <= len(name) <= 63:
        raise ValueError(f"bucket name {name!r} is {len(name)} characters long: {allowed}")
    if not _BUCKET_CHARS.match(name):
        bad = "".join(sorted({c for c in name if not re.match(r"[a-z0-9.-]", c)}))
        raise ValueError(f"bucket name {name!r} contains {bad!r}: {allowed}")
    if not (name[0].isalnum() and name[-1].isalnum()):
        raise ValueError(f"bucket name {name!r} must begin and end with a lowercase letter or a digit")
    if ".." in name:
        raise ValueError(f"bucket name {name!r} must not contain two adjacent dots")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise ValueError(f"bucket name {name!r} must not be formatted as an IP address")
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            raise ValueError(f"bucket name {name!r} must not begin with {prefix!r} (reserved by S3)")
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            raise ValueError(f"bucket name {name!r} must not end with {suffix!r} (reserved by S3)")


def alias_for(name: str) -> str:
    """The KMS alias of the backend's secrets key (KMS aliases allow no dots)."""
    return f"alias/{name.replace('.', '-')}-secrets"


def backend_tags(cost_tags: Mapping[str, str]) -> dict[str, str]:
    """The tags of the bucket and the key: the caller's cost tags (every required one with a value) and
    BACKEND_TAGS. A ValueError naming what is missing or wrong, before any AWS call."""
    missing = missing_keys(cost_tags, REQUIRED_COST_TAGS)
    if missing:
        raise ValueError(
            "the state bucket and its KMS key must carry the platform's required cost tags; no value for "
            f"{', '.join(missing)} (pass --tag KEY=VALUE for each, or --stack STACK to use that stack's tags)"
        )
    problems = [f"tag {key}: {problem}" for key, value in cost_tags.items() for problem in tag_problems(key, value)]
    reserved = sorted(set(cost_tags) & set(BACKEND_TAGS))
    problems += [f"tag {key}: is set by bootstrap-backend itself ({key}={BACKEND_TAGS[key]})" for key in reserved]
    tags = {**cost_tags, **BACKEND_TAGS}
    if len(tags) > MAX_AWS_TAGS:
        problems.append(f"{len(tags)} tags (with {_tag_text(BACKEND_TAGS)}): AWS allows {MAX_AWS_TAGS}")
    if problems:
        raise ValueError("; ".join(problems))
    return dict(sorted(tags.items()))


def _tags_to_add(tags: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """The wanted tags a resource lacks (absent, or empty as `audit-tags` counts it); its other values stay."""
    return {key: tags[key] for key in missing_keys(current, tuple(tags))}


def login_lines(name: str, region: str, alias: str) -> list[str]:
    """The commands that point Pulumi at the backend and create a stack whose secrets use the key."""
    return [
        f"pulumi login 's3://{name}?region={region}&awssdk=v2'",
        f"pulumi stack init <stack> --secrets-provider 'awskms://{alias}?region={region}'",
    ]


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def key_description(name: str) -> str:
    return f"Pulumi secrets of the state backend s3://{name} (mlp bootstrap-backend)"


def key_policy(account: str, region: str) -> dict[str, Any]:
    """AWS's default key policy, written out: the account (its IAM policies) governs the key."""
    return {
        "Version": "2012-10-17",
        "Id": "pulumi-secrets",
        "Statement": [
            {
                "Sid": "EnableIAMPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{_partition(region)}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def tls_statement(name: str, region: str) -> dict[str, Any]:
    arn = f"arn:{_partition(region)}:s3:::{name}"
    return {
        "Sid": POLICY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def lifecycle_rule(noncurrent_days: int) -> dict[str, Any]:
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_DAYS},
    }


# --- planning ---------------------------------------------------------------------------------------------------


def plan_bootstrap(
    ctx: AwsContext,
    name: str,
    region: str,
    noncurrent_days: int = DEFAULT_NONCURRENT_DAYS,
    *,
    cost_tags: Mapping[str, str],
) -> BootstrapPlan:
    """What exists and what `apply_bootstrap` would create or change, read from the account (changes nothing).
    `cost_tags` holds a value for every required cost tag (`backend_tags`)."""
    validate_bucket_name(name)
    tags = backend_tags(cost_tags)
    if region != ctx.region:
        raise ValueError(f"region {region!r} differs from the AWS session's region {ctx.region!r}")
    if not 1 <= noncurrent_days <= 36500:
        raise ValueError(f"noncurrent version retention of {noncurrent_days} days: use 1 to 36500 days")
    account = ctx.account_id()
    alias = alias_for(name)
    steps: list[BootstrapStep] = []
    requests: dict[str, Any] = {}
    key_arn = _plan_key(ctx, name, alias, tags, steps, requests)
    _plan_bucket(ctx, name, region, account, key_arn, noncurrent_days, tags, steps, requests)
    order = {target: i for i, target in enumerate(TARGETS)}
    return BootstrapPlan(
        name=name,
        region=region,
        account=account,
        alias=alias,
        key_arn=key_arn,
        noncurrent_days=noncurrent_days,
        tags=tags,
        steps=tuple(sorted(steps, key=lambda step: order[step.target])),
        requests=requests,
    )


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    cls: type[Exception] = ClientError
    return cls


def _read(call: Callable[[], Any], action: str, missing: Sequence[str]) -> Any:
    """The answer of a read call, None when AWS says the thing is not there, an AccountError otherwise."""
    with aws_errors(action):
        try:
            return call()
        except _client_error() as exc:
            if _code(exc) in missing:
                return None
            raise


def _plan_key(
    ctx: AwsContext,
    name: str,
    alias: str,
    tags: Mapping[str, str],
    steps: list[BootstrapStep],
    requests: dict[str, Any],
) -> str | None:
    kms = ctx.client("kms")
    metadata = _read(
        lambda: kms.describe_key(KeyId=alias)["KeyMetadata"], f"reading KMS alias {alias}", ["NotFoundException"]
    )
    if metadata is None:
        steps += [
            BootstrapStep("kms-key", "create", "a symmetric encryption key for Pulumi secrets"),
            BootstrapStep("kms-alias", "create", f"{alias} -> the new key"),
            BootstrapStep("kms-key-rotation", "create", "automatic yearly rotation"),
            BootstrapStep("kms-key-tags", "create", _tag_text(tags)),
        ]
        return None
    key_id, key_arn, state = metadata["KeyId"], str(metadata["Arn"]), metadata.get("KeyState")
    if state == "PendingDeletion":
        raise AccountError(
            f"the KMS key {key_id} behind {alias} is scheduled for deletion: cancel it "
            f"(`aws kms cancel-key-deletion --key-id {key_id}`, then `aws kms enable-key --key-id {key_id}`) "
            "or choose another backend name"
        )
    if state != "Enabled":
        raise AccountError(
            f"the KMS key {key_id} behind {alias} is {state}: enable it (`aws kms enable-key --key-id {key_id}`) "
            "or choose another backend name"
        )
    # Absent means KMS's defaults, a symmetric encryption key.
    spec = metadata.get("KeySpec") or "SYMMETRIC_DEFAULT"
    usage = metadata.get("KeyUsage") or "ENCRYPT_DECRYPT"
    if (spec, usage) != ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"):
        raise AccountError(
            f"the KMS key {key_id} behind {alias} is a {spec} {usage} key: "
            "Pulumi secrets need a symmetric encryption key; point the alias elsewhere or choose another name"
        )
    steps.append(BootstrapStep("kms-key", "none", key_arn))
    steps.append(BootstrapStep("kms-alias", "none", f"{alias} -> {key_id}"))
    rotation = _read(lambda: kms.get_key_rotation_status(KeyId=key_id), f"reading the rotation of KMS key {key_id}", [])
    if rotation.get("KeyRotationEnabled"):
        steps.append(BootstrapStep("kms-key-rotation", "none", "automatic rotation on"))
    else:
        steps.append(BootstrapStep("kms-key-rotation", "update", "turn on automatic yearly rotation"))
    response = _read(lambda: kms.list_resource_tags(KeyId=key_id), f"reading the tags of KMS key {key_id}", [])
    current = {str(t["TagKey"]): str(t.get("TagValue") or "") for t in response.get("Tags", [])}
    missing = _tags_to_add(tags, current)
    if missing:
        steps.append(BootstrapStep("kms-key-tags", "update", f"add {_tag_text(missing)}"))
        requests["kms-key-tags"] = missing  # TagResource adds and overwrites the keys given, and keeps the others
    else:
        steps.append(BootstrapStep("kms-key-tags", "none", _tag_text({k: current[k] for k in tags})))
    return key_arn


def _tag_text(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _bucket_state(ctx: AwsContext, name: str, region: str) -> bool:
    """Whether the caller owns the bucket (False: the name is free); an AccountError when it is not theirs."""
    s3 = ctx.client("s3")
    with aws_errors("listing the account's S3 buckets"):
        owned = {bucket["Name"] for bucket in paginate(s3, "list_buckets", "Buckets")}
    if name not in owned:
        if not _name_taken(s3, name):
            return False
        raise AccountError(
            f"the S3 bucket {name} exists and is not owned by this account: bucket names are global; "
            "choose another name"
        )
    location = _read(lambda: s3.get_bucket_location(Bucket=name), f"reading the region of S3 bucket {name}", [])
    actual = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(
        location.get("LocationConstraint"), str(location.get("LocationConstraint"))
    )
    if actual != region:
        raise AccountError(f"the S3 bucket {name} is in region {actual}, not {region}: use --region {actual}")
    return True


def _name_taken(s3: Any, name: str) -> bool:
    """Whether a bucket not in the caller's list exists: HeadBucket answers 404 for a free name, and 403 (or 200,
    or a redirect to another region) for another account's bucket."""
    with aws_errors(f"checking the S3 bucket name {name}"):
        try:
            s3.head_bucket(Bucket=name)
        except _client_error() as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            if code in ("403", "AccessDenied", "301", "PermanentRedirect"):
                return True
            raise
    return True


def _plan_bucket(
    ctx: AwsContext,
    name: str,
    region: str,
    account: str,
    key_arn: str | None,
    noncurrent_days: int,
    tags: Mapping[str, str],
    steps: list[BootstrapStep],
    requests: dict[str, Any],
) -> None:
    s3 = ctx.client("s3")
    statement = tls_statement(name, region)
    rule = lifecycle_rule(noncurrent_days)
    key_text = key_arn or "the new key"
    if not _bucket_state(ctx, name, region):
        steps += [
            BootstrapStep("bucket", "create", f"s3://{name} in {region}"),
            BootstrapStep("bucket-ownership", "create", "BucketOwnerEnforced (ACLs off)"),
            BootstrapStep("bucket-public-access-block", "create", "all four flags on"),
            BootstrapStep("bucket-versioning", "create", "Enabled"),
            BootstrapStep("bucket-encryption", "create", f"aws:kms with {key_text}, bucket key on"),
            BootstrapStep("bucket-policy", "create", f"{POLICY_SID}: deny requests without TLS"),
            BootstrapStep("bucket-lifecycle", "create", _rule_text(noncurrent_days)),
            BootstrapStep("bucket-tags", "create", _tag_text(tags)),
        ]
        requests["bucket-policy"] = {"Version": "2012-10-17", "Statement": [statement]}
        requests["bucket-lifecycle"] = {"Rules": [rule]}
        requests["bucket-tags"] = dict(tags)
        return
    steps.append(BootstrapStep("bucket", "none", f"s3://{name} in {region}, owned by {account}"))

    def read(call: Callable[[], Any], what: str, missing: Sequence[str]) -> Any:
        return _read(call, f"reading the {what} of S3 bucket {name}", missing)

    ownership = read(
        lambda: s3.get_bucket_ownership_controls(Bucket=name), "ownership controls", ["OwnershipControlsNotFoundError"]
    )
    rules = (ownership or {}).get("OwnershipControls", {}).get("Rules", [])
    current = rules[0].get("ObjectOwnership") if rules else None
    if current == "BucketOwnerEnforced":
        steps.append(BootstrapStep("bucket-ownership", "none", "BucketOwnerEnforced"))
    else:
        steps.append(BootstrapStep("bucket-ownership", "update", f"{current or 'not set'} -> BucketOwnerEnforced"))

    block = read(
        lambda: s3.get_public_access_block(Bucket=name),
        "public access block",
        ["NoSuchPublicAccessBlockConfiguration"],
    )
    flags = (block or {}).get("PublicAccessBlockConfiguration", {})
    off = sorted(flag for flag in _PUBLIC_ACCESS_BLOCK if not flags.get(flag))
    if off:
        steps.append(BootstrapStep("bucket-public-access-block", "update", f"turn on {', '.join(off)}"))
    else:
        steps.append(BootstrapStep("bucket-public-access-block", "none", "all four flags on"))

    versioning = read(lambda: s3.get_bucket_versioning(Bucket=name), "versioning", [])
    status = versioning.get("Status")
    if status == "Enabled":
        steps.append(BootstrapStep("bucket-versioning", "none", "Enabled"))
    else:
        steps.append(BootstrapStep("bucket-versioning", "update", f"{status or 'never enabled'} -> Enabled"))

    encryption = read(
        lambda: s3.get_bucket_encryption(Bucket=name), "encryption", ["ServerSideEncryptionConfigurationNotFoundError"]
    )
    enc_rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    default = enc_rules[0].get("ApplyServerSideEncryptionByDefault", {}) if enc_rules else {}
    described = f"{default.get('SSEAlgorithm', 'none')} {default.get('KMSMasterKeyID', '')}".strip()
    if (
        key_arn is not None
        and default.get("SSEAlgorithm") == "aws:kms"
        and default.get("KMSMasterKeyID") in _key_references(key_arn, region, account, name)
        and enc_rules[0].get("BucketKeyEnabled")
    ):
        steps.append(BootstrapStep("bucket-encryption", "none", f"aws:kms with {key_arn}, bucket key on"))
    else:
        # Objects written before keep their encryption and stay readable; new ones use the key.
        steps.append(
            BootstrapStep("bucket-encryption", "update", f"{described} -> aws:kms with {key_text}, bucket key on")
        )

    policy_text = read(lambda: s3.get_bucket_policy(Bucket=name)["Policy"], "policy", ["NoSuchBucketPolicy"])
    policy: dict[str, Any] = json.loads(policy_text) if policy_text else {"Version": "2012-10-17", "Statement": []}
    listed = policy.get("Statement", [])
    statements: list[dict[str, Any]] = [listed] if isinstance(listed, dict) else list(listed)
    ours = [s for s in statements if s.get("Sid") == POLICY_SID]
    if len(ours) == 1 and _canonical(ours[0]) == _canonical(statement):
        steps.append(BootstrapStep("bucket-policy", "none", f"{POLICY_SID}: deny requests without TLS"))
    else:
        others = [s for s in statements if s.get("Sid") != POLICY_SID]
        kept = f" (its {len(others)} other statement(s) kept)" if others else ""
        action = "update" if policy_text else "create"
        steps.append(BootstrapStep("bucket-policy", action, f"{POLICY_SID}: deny requests without TLS{kept}"))
        requests["bucket-policy"] = {**policy, "Statement": [*others, statement]}

    lifecycle = read(
        lambda: s3.get_bucket_lifecycle_configuration(Bucket=name), "lifecycle", ["NoSuchLifecycleConfiguration"]
    )
    existing_rules = list((lifecycle or {}).get("Rules", []))
    mine = [r for r in existing_rules if r.get("ID") == LIFECYCLE_RULE_ID]
    if len(mine) == 1 and _rule_in_place(mine[0], noncurrent_days):
        steps.append(BootstrapStep("bucket-lifecycle", "none", _rule_text(noncurrent_days)))
    else:
        others = [r for r in existing_rules if r.get("ID") != LIFECYCLE_RULE_ID]
        kept = f" (its {len(others)} other rule(s) kept)" if others else ""
        action = "update" if lifecycle else "create"
        steps.append(BootstrapStep("bucket-lifecycle", action, _rule_text(noncurrent_days) + kept))
        request: dict[str, Any] = {"Rules": [*others, rule]}
        if lifecycle and lifecycle.get("TransitionDefaultMinimumObjectSize"):
            request["TransitionDefaultMinimumObjectSize"] = lifecycle["TransitionDefaultMinimumObjectSize"]
        requests["bucket-lifecycle"] = request

    tagging = read(lambda: s3.get_bucket_tagging(Bucket=name), "tags", ["NoSuchTagSet"])
    # S3 leaves out `Value` when it is empty.
    current = {str(t["Key"]): str(t.get("Value") or "") for t in (tagging or {}).get("TagSet", [])}
    missing = _tags_to_add(tags, current)
    if missing:
        kept_keys = sorted(set(current) - set(missing))
        also = f" (its {len(kept_keys)} other tag(s) kept)" if kept_keys else ""
        action = "update" if tagging else "create"
        steps.append(BootstrapStep("bucket-tags", action, f"add {_tag_text(missing)}{also}"))
        if len({**current, **missing}) > MAX_AWS_TAGS:
            raise AccountError(
                f"the S3 bucket {name} has {len(current)} tags: adding {', '.join(sorted(missing))} would pass "
                f"AWS's {MAX_AWS_TAGS}; remove some of its tags first"
            )
        requests["bucket-tags"] = {**current, **missing}  # PutBucketTagging replaces the whole set
    else:
        steps.append(BootstrapStep("bucket-tags", "none", _tag_text({k: current[k] for k in tags})))


def _key_references(key_arn: str, region: str, account: str, name: str) -> set[str]:
    """The ways a bucket's encryption may name our key: its ARN, its id, the alias, the alias ARN."""
    key_id = key_arn.rsplit("/", 1)[-1]
    alias = alias_for(name)
    alias_arn = f"arn:{_partition(region)}:kms:{region}:{account}:{alias}"
    return {key_arn, key_id, alias, alias_arn}


def _rule_text(days: int) -> str:
    return (
        f"{LIFECYCLE_RULE_ID}: expire noncurrent versions after {days} days, "
        f"abort incomplete multipart uploads after {ABORT_MULTIPART_DAYS}"
    )


def _rule_in_place(rule: Mapping[str, Any], days: int) -> bool:
    whole_bucket = rule.get("Filter", {}).get("Prefix", "") == "" and set(rule.get("Filter", {})) <= {"Prefix"}
    return (
        rule.get("Status") == "Enabled"
        and whole_bucket
        and rule.get("Prefix", "") == ""
        and rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == days
        and rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == ABORT_MULTIPART_DAYS
    )


def _canonical(value: Any) -> Any:
    """Policy JSON compared as IAM reads it: a one-element list is its element, and list order does not matter."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return value


# --- applying ---------------------------------------------------------------------------------------------------


def apply_bootstrap(ctx: AwsContext, plan: BootstrapPlan) -> BootstrapResult:
    """Converge the account to the plan's backend. The account is read again first, so what changed since the plan
    was shown is taken into account, and a second run changes nothing."""
    current = plan_bootstrap(ctx, plan.name, plan.region, plan.noncurrent_days, cost_tags=_cost_tags(plan.tags))
    actions = {step.target: step.action for step in current.steps}
    done: list[BootstrapStep] = []
    key_arn = current.key_arn
    past = {"create": "created", "update": "updated", "none": "unchanged"}
    try:
        for step in current.steps:
            if step.action == "none":
                done.append(replace(step, action="unchanged"))
                continue
            key_arn = _apply_step(ctx, current, step.target, actions, key_arn)
            detail = step.detail.replace("the new key", key_arn) if key_arn else step.detail
            if step.target == "kms-key" and key_arn:
                detail = f"{key_arn} ({key_description(current.name)})"
            done.append(replace(step, action=past[step.action], detail=detail))
    except AccountError as exc:
        applied = ", ".join(s.target for s in done if s.action != "unchanged") or "none"
        raise AccountError(f"{exc} (applied before it: {applied}; run again once fixed)") from None
    if key_arn is None:  # unreachable: the first step creates the key when there is none
        raise AccountError(f"no KMS key behind {current.alias} after bootstrap")
    return BootstrapResult(
        name=current.name,
        region=current.region,
        account=current.account,
        alias=current.alias,
        key_arn=key_arn,
        tags=current.tags,
        steps=tuple(done),
        login=tuple(login_lines(current.name, current.region, current.alias)),
    )


def _cost_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in tags.items() if key not in BACKEND_TAGS}


def _apply_step(
    ctx: AwsContext, plan: BootstrapPlan, target: str, actions: Mapping[str, str], key_arn: str | None
) -> str | None:
    """Make one setting so; returns the key ARN (known once the key exists)."""
    kms, s3, name = ctx.client("kms"), ctx.client("s3"), plan.name
    if target == "kms-key":
        with aws_errors(f"creating the KMS key for {plan.alias}"):
            metadata = kms.create_key(
                Description=key_description(name),
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                Policy=json.dumps(key_policy(plan.account, plan.region)),
                Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(plan.tags.items())],
            )["KeyMetadata"]
        return str(metadata["Arn"])
    if key_arn is None:
        raise AccountError(f"no KMS key for {plan.alias} before {target}")  # unreachable: the key step runs first
    if target == "kms-alias":
        with aws_errors(f"creating the KMS alias {plan.alias}"):
            kms.create_alias(AliasName=plan.alias, TargetKeyId=key_arn)
    elif target == "kms-key-rotation":
        with aws_errors(f"turning on rotation of KMS key {key_arn}"):
            kms.enable_key_rotation(KeyId=key_arn)
    elif target == "kms-key-tags":
        if actions["kms-key"] != "create":  # a new key got its tags when it was made
            tags = plan.requests["kms-key-tags"]
            with aws_errors(f"tagging KMS key {key_arn}"):
                kms.tag_resource(KeyId=key_arn, Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())])
    elif target == "bucket":
        _create_bucket(s3, name, plan.region)
    elif target == "bucket-ownership":
        with aws_errors(f"setting the object ownership of S3 bucket {name}"):
            s3.put_bucket_ownership_controls(
                Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
            )
    elif target == "bucket-public-access-block":
        with aws_errors(f"blocking public access to S3 bucket {name}"):
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict(_PUBLIC_ACCESS_BLOCK))
    elif target == "bucket-versioning":
        with aws_errors(f"turning on versioning of S3 bucket {name}"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    elif target == "bucket-encryption":
        with aws_errors(f"setting the default encryption of S3 bucket {name}"):
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
    elif target == "bucket-policy":
        with aws_errors(f"setting the policy of S3 bucket {name}"):
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(plan.requests["bucket-policy"]))
    elif target == "bucket-lifecycle":
        request = dict(plan.requests["bucket-lifecycle"])
        extra = {}
        if "TransitionDefaultMinimumObjectSize" in request:
            extra["TransitionDefaultMinimumObjectSize"] = request.pop("TransitionDefaultMinimumObjectSize")
        with aws_errors(f"setting the lifecycle rules of S3 bucket {name}"):
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration=request, **extra)
    elif target == "bucket-tags":
        tags = plan.requests["bucket-tags"]
        with aws_errors(f"tagging S3 bucket {name}"):
            s3.put_bucket_tagging(
                Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
            )
    return key_arn


def _create_bucket(s3: Any, name: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": name, "ObjectOwnership": "BucketOwnerEnforced"}
    if region != "us-east-1":  # us-east-1 refuses a location constraint naming itself
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with aws_errors(f"creating S3 bucket {name}"):
        try:
            s3.create_bucket(**kwargs)
        except _client_error() as exc:
            if _code(exc) == "BucketAlreadyOwnedByYou":
                return
            if _code(exc) == "BucketAlreadyExists":
                raise AccountError(
                    f"the S3 bucket {name} exists and is not owned by this account: bucket names are global; "
                    "choose another name"
                ) from None
            raise


# --- rendering --------------------------------------------------------------------------------------------------


def to_json(result: BootstrapPlan | BootstrapResult) -> dict[str, Any]:
    steps = [{"target": s.target, "action": s.action, "detail": s.detail} for s in result.steps]
    body: dict[str, Any] = {
        "bucket": result.name,
        "region": result.region,
        "account": result.account,
        "alias": result.alias,
        "key_arn": result.key_arn,
        "tags": dict(result.tags),
    }
    if isinstance(result, BootstrapPlan):
        return {
            **body,
            "noncurrent_days": result.noncurrent_days,
            "up_to_date": result.up_to_date,
            "steps": steps,
        }
    return {**body, "changed": result.changed, "steps": steps, "login": list(result.login)}


def render_table(result: BootstrapPlan | BootstrapResult, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    is_plan = isinstance(result, BootstrapPlan)
    title = f"state backend s3://{result.name} ({result.region}, account {result.account})"
    table = Table(title=("plan: " if is_plan else "") + title, title_justify="left")
    for column in ("setting", "action", "detail"):
        table.add_column(column, overflow="fold")
    styles = {"create": "green", "created": "green", "update": "yellow", "updated": "yellow"}
    for step in result.steps:
        style = styles.get(step.action, "dim")
        table.add_row(step.target, f"[{style}]{step.action}[/{style}]", escape(step.detail))
    console.print(table)
    if isinstance(result, BootstrapPlan):
        count = len(result.changes)
        console.print("everything is in place" if count == 0 else f"{count} setting(s) to create or change")
        return
    console.print("changed the account" if result.changed else "everything was already in place; nothing changed")
    for line in result.login:
        console.print(escape(line), highlight=False, soft_wrap=True)
