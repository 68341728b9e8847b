"""The AWS provider's settings: the standard `aws:*` keys of a stack file besides `aws:region`.

Pulumi hands `aws:*` stack config to the *default* AWS provider only; the platform uses an explicit one, so each
key is read here, checked, and passed on (`provider_args`). The same identity then reaches the kubeconfigs'
`aws eks get-token` (`get_token_options`): a stack never deploys AWS resources as one principal and Kubernetes
objects as another. A key the platform cannot honour in both places is refused with what to do instead, never
dropped: static credentials (a stack file holds no secrets), a role chain or role options `aws eks get-token` has
no flag for (a profile in `~/.aws/config` can carry them), unknown keys.

Key names and types follow pulumi-aws's provider schema (`pulumi_aws/config/vars.py`): camelCase, objects and
lists as YAML structures (the Pulumi CLI hands them to the program as JSON), scalars possibly as strings.

Everything here is pure except `explicit_provider`, which imports the SDK when called (validating config needs
no SDK; `aws:endpoints`, when set, is checked against the installed pulumi-aws's service names).
"""

from __future__ import annotations

import json
import keyword
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel, to_snake

from mlplatform.infra.config_errors import ConfigIssue

if TYPE_CHECKING:
    import pulumi_aws

AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
RoleArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")]
Text = Annotated[str, StringConstraints(min_length=1)]

CREDENTIAL_KEYS = ("accessKey", "secretKey", "token")
"""Static credentials: refused (a stack file holds no secrets; the shell, a profile or a role provides them)."""

UNSUPPORTED_ROLE_KEYS = ("externalId", "sourceIdentity", "tags", "transitiveTagKeys")
"""Role options `aws eks get-token --role-arn` cannot pass: the kubeconfig's role session would lack them (and an
external id is what a trust policy usually demands), so the two identities could differ."""


class _Settings(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, use_attribute_docstrings=True
    )


Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")]


class AssumeRole(_Settings):
    """A role the provider assumes (`aws:assumeRoles[]`, or the older single `aws:assumeRole`)."""

    role_arn: RoleArn
    """The role; the kubeconfigs' `aws eks get-token --role-arn` assumes it too."""
    session_name: Text | None = None
    duration: Duration | None = None
    """Session length, 15m to 12h."""
    policy: Text | None = None
    """A session policy (JSON) that narrows the provider's session."""
    policy_arns: tuple[Text, ...] | None = None
    """Managed policies that narrow the provider's session."""
    external_id: Text | None = None
    """Refused: `aws eks get-token` cannot pass it (use a profile with `external_id`)."""
    source_identity: Text | None = None
    """Refused: `aws eks get-token` cannot pass it."""
    tags: dict[str, str] | None = None
    """Refused: `aws eks get-token` cannot pass session tags."""
    transitive_tag_keys: tuple[Text, ...] | None = None
    """Refused: `aws eks get-token` cannot pass session tags."""


class WebIdentityRole(_Settings):
    """`aws:assumeRoleWithWebIdentity`: a role assumed with an OIDC token read from a file."""

    role_arn: RoleArn
    """The role (`AWS_ROLE_ARN` for the kubeconfigs' `aws eks get-token`)."""
    web_identity_token_file: Text | None = None
    """The token's file, required (`AWS_WEB_IDENTITY_TOKEN_FILE`)."""
    web_identity_token: Text | None = None
    """Refused: a token does not belong in a stack file."""
    session_name: Text | None = None
    """`AWS_ROLE_SESSION_NAME`."""
    duration: Duration | None = None
    policy: Text | None = None
    policy_arns: tuple[Text, ...] | None = None


class DefaultTags(_Settings):
    """`aws:defaultTags`: tags besides the platform's own (a tag `ml-platform:tags` sets is refused here)."""

    tags: dict[Text, str] = Field(default_factory=dict)


class IgnoreTags(_Settings):
    """`aws:ignoreTags`: tags the provider leaves alone (never one the platform sets)."""

    keys: tuple[Text, ...] | None = None
    key_prefixes: tuple[Text, ...] | None = None


class AwsProviderSettings(_Settings):
    """The stack's `aws:*` provider settings besides `aws:region`. Keys are Pulumi's (`aws:profile`,
    `aws:assumeRoles`, ...); each reaches the cloud layer's AWS provider, and those that decide who calls AWS also
    reach the kubeconfigs' `aws eks get-token`. Static credentials (`aws:accessKey`, `aws:secretKey`, `aws:token`)
    are refused."""

    profile: Text | None = None
    """Shared-config profile. Reaches the kubeconfigs (`AWS_PROFILE`) and `mlp`'s AWS commands."""
    shared_config_files: tuple[Text, ...] | None = None
    """One file (`AWS_CONFIG_FILE` in the kubeconfigs)."""
    shared_credentials_files: tuple[Text, ...] | None = None
    """One file (`AWS_SHARED_CREDENTIALS_FILE` in the kubeconfigs)."""
    assume_roles: tuple[AssumeRole, ...] | None = None
    """At most one role (`aws eks get-token --role-arn` assumes one; a chain belongs in a profile)."""
    assume_role: AssumeRole | None = None
    """The older single-role key; not with `assumeRoles`."""
    assume_role_with_web_identity: WebIdentityRole | None = None
    """Not with `profile`."""
    allowed_account_ids: tuple[AccountId, ...] | None = None
    """With `ml-platform:aws_account_id`, exactly that account."""
    forbidden_account_ids: tuple[AccountId, ...] | None = None
    """Never the stack's account; not with `allowedAccountIds`."""
    default_tags: DefaultTags | None = None
    """Merged with the platform's tags (which also reach launch templates, volumes and Karpenter's nodes)."""
    ignore_tags: IgnoreTags | None = None
    endpoints: tuple[dict[Text, Text], ...] | None = None
    """Service endpoint overrides, `[{s3: URL}, ...]` (pulumi-aws's service names); the provider only."""
    max_retries: Annotated[int, Field(ge=0)] | None = None
    retry_mode: Literal["standard", "adaptive"] | None = None
    sts_region: Region | None = None
    """The provider's STS calls; the kubeconfigs' tokens are signed for `aws:region`."""
    skip_credentials_validation: bool | None = None
    skip_metadata_api_check: bool | None = None
    """`AWS_EC2_METADATA_DISABLED` in the kubeconfigs."""
    skip_region_validation: bool | None = None
    skip_requesting_account_id: bool | None = None
    custom_ca_bundle: Text | None = None
    """`AWS_CA_BUNDLE` in the kubeconfigs."""
    ec2_metadata_service_endpoint: Text | None = None
    """`AWS_EC2_METADATA_SERVICE_ENDPOINT` in the kubeconfigs."""
    ec2_metadata_service_endpoint_mode: Literal["IPv4", "IPv6"] | None = None
    """`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` in the kubeconfigs."""
    http_proxy: Text | None = None
    """`HTTP_PROXY` in the kubeconfigs."""
    https_proxy: Text | None = None
    """`HTTPS_PROXY` in the kubeconfigs."""
    no_proxy: Text | None = None
    """`NO_PROXY` in the kubeconfigs."""
    insecure: bool | None = None
    """`--no-verify-ssl` in the kubeconfigs."""
    s3_us_east1_regional_endpoint: Literal["legacy", "regional"] | None = None
    s3_use_path_style: bool | None = None
    tag_policy_compliance: Literal["error", "warning", "disabled"] | None = None
    token_bucket_rate_limiter_capacity: Annotated[int, Field(ge=0)] | None = None
    use_dualstack_endpoint: bool | None = None
    use_fips_endpoint: bool | None = None
    user_agents: tuple[Text, ...] | None = None

    @property
    def roles(self) -> tuple[AssumeRole, ...]:
        """The roles assumed, from either key (validation allows one of them)."""
        if self.assume_roles:
            return self.assume_roles
        return (self.assume_role,) if self.assume_role is not None else ()


def _keys(model: type[BaseModel]) -> list[str]:
    """A model's keys as a stack file spells them."""
    return [info.alias or name for name, info in model.model_fields.items()]


KNOWN_KEYS: tuple[str, ...] = ("region", *_keys(AwsProviderSettings))
"""Every `aws:` key a stack file may set."""


# --- reading and checking -------------------------------------------------------------------------------------


def parse_settings(values: Mapping[str, Any]) -> tuple[AwsProviderSettings | None, list[ConfigIssue]]:
    """The provider settings from a stack's `aws:*` values (names without the `aws:` prefix, `region` excluded),
    or None with every problem, each at its `aws:<key>` path."""
    issues: list[ConfigIssue] = []
    accepted: dict[str, Any] = {}
    for name, value in values.items():
        if name in CREDENTIAL_KEYS:
            issues.append(
                ConfigIssue(
                    (f"aws:{name}",),
                    "static credentials do not belong in a stack file: use aws:profile or aws:assumeRoles, or the "
                    "credentials of the shell that runs pulumi (AWS_PROFILE, SSO, an instance or CI role)",
                )
            )
        elif name not in KNOWN_KEYS:
            issues.append(ConfigIssue((f"aws:{name}",), f"unknown key `aws:{name}`; allowed: {', '.join(KNOWN_KEYS)}"))
        elif isinstance(value, Mapping) and set(value) == {"secure"}:
            issues.append(
                ConfigIssue((f"aws:{name}",), "is an encrypted secret; provider settings are plain values, not secrets")
            )
        else:
            accepted[name] = value
    settings: AwsProviderSettings | None = None
    try:
        settings = AwsProviderSettings.model_validate(accepted)
    except ValidationError as exc:
        issues.extend(_issues_from_pydantic(exc))
    if settings is not None:
        issues.extend(_own_issues(settings))
    return (settings if not issues else None), issues


def _issues_from_pydantic(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        # pydantic names union members and constrained types as path parts (`tuple[...]`, `function-after[...]`)
        loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        head, *rest = loc or ["?"]
        path: tuple[str | int, ...] = (f"aws:{head}", *rest)
        msg = str(err["msg"])
        if err["type"] == "extra_forbidden":
            model = _NESTED.get(str(head))
            allowed = f"; allowed: {', '.join(_keys(model))}" if model else ""
            msg = f"unknown key `{loc[-1]}`{allowed}"
        elif err["type"] == "string_pattern_mismatch":
            msg = f"{err['input']!r} is not valid: must be {_hint(loc)}"
        elif isinstance(err.get("input"), (str, int, float, bool)):
            msg = f"{msg} (got {err['input']!r})"
        issues.append(ConfigIssue(path, msg))
    return issues


_NESTED: dict[str, type[BaseModel]] = {
    "assumeRoles": AssumeRole,
    "assumeRole": AssumeRole,
    "assumeRoleWithWebIdentity": WebIdentityRole,
    "defaultTags": DefaultTags,
    "ignoreTags": IgnoreTags,
}


def _hint(loc: list[str | int]) -> str:
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    return {
        "roleArn": "an IAM role ARN (arn:aws:iam::123456789012:role/name)",
        "allowedAccountIds": "12 digits, quoted",
        "forbiddenAccountIds": "12 digits, quoted",
        "stsRegion": "an AWS region such as us-east-1",
        "duration": "a duration such as 15m or 1h",
    }.get(last, "a value of the documented format")


def _own_issues(settings: AwsProviderSettings) -> list[ConfigIssue]:
    """What the provider would accept but the platform cannot honour everywhere (the kubeconfigs too)."""
    issues: list[ConfigIssue] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        issues.append(ConfigIssue(path, message))

    via_profile = "put the role in a profile of ~/.aws/config (role_arn, source_profile, ...) and set aws:profile"
    if settings.assume_roles is not None and settings.assume_role is not None:
        add(("aws:assumeRole",), "set aws:assumeRoles or the older aws:assumeRole, not both")
    if settings.assume_roles is not None and len(settings.assume_roles) > 1:
        add(
            ("aws:assumeRoles",),
            "at most one role: the kubeconfig's `aws eks get-token --role-arn` assumes one; "
            f"for a chain, {via_profile}",
        )
    for key, roles in (("aws:assumeRoles", settings.assume_roles or ()), ("aws:assumeRole", (settings.assume_role,))):
        for i, role in enumerate(roles):
            if role is None:
                continue
            at: tuple[str | int, ...] = (key, i) if key == "aws:assumeRoles" else (key,)
            for name in UNSUPPORTED_ROLE_KEYS:
                if getattr(role, to_snake(name)) is not None:
                    add(
                        (*at, name),
                        f"`aws eks get-token` (the kubeconfig) cannot pass {name} when it assumes the role; "
                        f"{via_profile}, or leave it out",
                    )
    web = settings.assume_role_with_web_identity
    if web is not None:
        if web.web_identity_token is not None:
            add(
                ("aws:assumeRoleWithWebIdentity", "webIdentityToken"),
                "a token does not belong in a stack file: name the file that holds it (webIdentityTokenFile)",
            )
        elif web.web_identity_token_file is None:
            add(
                ("aws:assumeRoleWithWebIdentity", "webIdentityTokenFile"),
                "is required: the file the OIDC token is read from (the kubeconfig reads the same file)",
            )
        if settings.profile is not None:
            add(("aws:assumeRoleWithWebIdentity",), "set aws:profile or aws:assumeRoleWithWebIdentity, not both")
    for key, files in (
        ("aws:sharedConfigFiles", settings.shared_config_files),
        ("aws:sharedCredentialsFiles", settings.shared_credentials_files),
    ):
        if files is not None and len(files) != 1:
            variable = "AWS_CONFIG_FILE" if key == "aws:sharedConfigFiles" else "AWS_SHARED_CREDENTIALS_FILE"
            add((key,), f"exactly one file: the kubeconfig's `aws eks get-token` reads one ({variable})")
    if settings.allowed_account_ids is not None and settings.forbidden_account_ids is not None:
        add(("aws:forbiddenAccountIds",), "set aws:allowedAccountIds or aws:forbiddenAccountIds, not both")
    if settings.endpoints is not None:
        known = endpoint_services()
        for i, entry in enumerate(settings.endpoints):
            for service in entry:
                if service not in known:
                    add(("aws:endpoints", i, service), f"unknown service `{service}` (pulumi-aws endpoint names)")
    return issues


@cache
def endpoint_services() -> frozenset[str]:
    """The service names `aws:endpoints` entries may use: the installed pulumi-aws's (read only when set)."""
    import inspect

    from pulumi_aws._inputs import ProviderEndpointArgs

    names = set(inspect.signature(ProviderEndpointArgs.__init__).parameters) - {"self", "__self__"}
    return frozenset(name.removesuffix("_") if keyword.iskeyword(name.removesuffix("_")) else name for name in names)


def stack_issues(
    settings: AwsProviderSettings, *, aws_account_id: str | None, platform_tags: Iterable[str]
) -> list[ConfigIssue]:
    """Where the provider settings and the rest of the stack's config disagree."""
    issues: list[ConfigIssue] = []
    owned = sorted(platform_tags)
    if aws_account_id is not None:
        allowed = settings.allowed_account_ids
        if allowed is not None and list(allowed) != [aws_account_id]:
            issues.append(
                ConfigIssue(
                    ("aws:allowedAccountIds",),
                    f'must be ["{aws_account_id}"], the stack\'s account (ml-platform:aws_account_id), or be left '
                    f"out (got {json.dumps(list(allowed))})",
                )
            )
        if aws_account_id in (settings.forbidden_account_ids or ()):
            issues.append(
                ConfigIssue(
                    ("aws:forbiddenAccountIds",),
                    f"forbids {aws_account_id}, the stack's account (ml-platform:aws_account_id)",
                )
            )
        role_arn = _last_role_arn(settings)
        if role_arn is not None and role_arn.split(":")[4] != aws_account_id:
            key = "aws:assumeRoleWithWebIdentity" if not settings.roles else _role_key(settings)
            issues.append(
                ConfigIssue(
                    (key,),
                    f"assumes a role of account {role_arn.split(':')[4]}, but the stack deploys into "
                    f"{aws_account_id} (ml-platform:aws_account_id)",
                )
            )
    if settings.default_tags is not None:
        for tag in settings.default_tags.tags:
            if tag in owned:
                issues.append(
                    ConfigIssue(
                        ("aws:defaultTags", "tags", tag),
                        "the platform sets this tag (ml-platform:tags, or managed-by and pulumi-stack): set it "
                        "in ml-platform:tags only",
                    )
                )
    ignore = settings.ignore_tags
    if ignore is not None:
        for i, key in enumerate(ignore.keys or ()):
            if key in owned:
                issues.append(
                    ConfigIssue(("aws:ignoreTags", "keys", i), f"would stop the platform managing its tag `{key}`")
                )
        for i, prefix in enumerate(ignore.key_prefixes or ()):
            hit = [t for t in owned if t.startswith(prefix)]
            if hit:
                issues.append(
                    ConfigIssue(
                        ("aws:ignoreTags", "keyPrefixes", i),
                        f"would stop the platform managing its tag(s) {', '.join(hit)}",
                    )
                )
    return issues


def _last_role_arn(settings: AwsProviderSettings) -> str | None:
    if settings.roles:
        return settings.roles[-1].role_arn
    web = settings.assume_role_with_web_identity
    return web.role_arn if web is not None else None


def _role_key(settings: AwsProviderSettings) -> str:
    return "aws:assumeRoles" if settings.assume_roles else "aws:assumeRole"


# --- builders -------------------------------------------------------------------------------------------------


def provider_args(
    settings: AwsProviderSettings, *, region: str, default_tags: Mapping[str, str], aws_account_id: str | None
) -> dict[str, Any]:
    """Keyword arguments of `aws.Provider`: the region, the platform's default tags (plus `aws:defaultTags`, which
    validation keeps apart from them), the stack's account, and every other `aws:*` setting given."""
    dumped = settings.model_dump(exclude_none=True, exclude={"assume_role", "assume_roles", "default_tags"})
    args: dict[str, Any] = {
        "region": region,
        "default_tags": {"tags": {**(settings.default_tags.tags if settings.default_tags else {}), **default_tags}},
        **dumped,
    }
    if settings.roles:
        args["assume_roles"] = [role.model_dump(exclude_none=True) for role in settings.roles]
    if aws_account_id is not None:
        args["allowed_account_ids"] = [aws_account_id]
    return args


def explicit_provider(
    resource_name: str,
    settings: AwsProviderSettings,
    *,
    region: str,
    default_tags: Mapping[str, str],
    aws_account_id: str | None,
) -> pulumi_aws.Provider:
    """An `aws.Provider` with every setting of `provider_args`. Nested settings go in as the SDK's input classes:
    a plain dict would reach the provider with Python's snake_case keys (`role_arn`), which it does not read."""
    import pulumi_aws as aws

    args = provider_args(settings, region=region, default_tags=default_tags, aws_account_id=aws_account_id)
    typed: dict[str, Any] = {
        "default_tags": lambda v: aws.ProviderDefaultTagsArgs(**v),
        "ignore_tags": lambda v: aws.ProviderIgnoreTagsArgs(**v),
        "assume_roles": lambda v: [aws.ProviderAssumeRoleArgs(**role) for role in v],
        "assume_role_with_web_identity": lambda v: aws.ProviderAssumeRoleWithWebIdentityArgs(**v),
        "endpoints": lambda v: [
            aws.ProviderEndpointArgs(**{f"{k}_" if keyword.iskeyword(k) else k: url for k, url in entry.items()})
            for entry in v
        ],
    }
    return aws.Provider(resource_name, **{k: typed[k](v) if k in typed else v for k, v in args.items()})


@dataclass(frozen=True)
class GetTokenOptions:
    """What the kubeconfig's `aws eks get-token` needs to act as the provider's principal."""

    global_args: tuple[str, ...] = ()
    """Options before the command (`--no-verify-ssl`)."""
    role_arn: str | None = None
    """`--role-arn`: the role the provider assumes."""
    env: tuple[tuple[str, str], ...] = ()
    """Environment of the exec (`AWS_PROFILE`, ...), in a stable order."""


def get_token_options(settings: AwsProviderSettings) -> GetTokenOptions:
    """The provider settings that decide who calls AWS, and how it is reached, as `aws eks get-token` takes them.
    Retries, endpoints, STS region, FIPS/dual-stack and the skip flags concern the provider's own API calls only."""
    roles = settings.roles
    web = settings.assume_role_with_web_identity
    env = {
        "AWS_PROFILE": settings.profile,
        "AWS_CONFIG_FILE": settings.shared_config_files[0] if settings.shared_config_files else None,
        "AWS_SHARED_CREDENTIALS_FILE": settings.shared_credentials_files[0]
        if settings.shared_credentials_files
        else None,
        "AWS_ROLE_ARN": web.role_arn if web else None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": web.web_identity_token_file if web else None,
        "AWS_ROLE_SESSION_NAME": web.session_name if web else None,
        "AWS_CA_BUNDLE": settings.custom_ca_bundle,
        "HTTP_PROXY": settings.http_proxy,
        "HTTPS_PROXY": settings.https_proxy,
        "NO_PROXY": settings.no_proxy,
        "AWS_EC2_METADATA_DISABLED": "true" if settings.skip_metadata_api_check else None,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": settings.ec2_metadata_service_endpoint,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": settings.ec2_metadata_service_endpoint_mode,
    }
    return GetTokenOptions(
        global_args=("--no-verify-ssl",) if settings.insecure else (),
        role_arn=roles[0].role_arn if roles else None,
        env=tuple((k, v) for k, v in env.items() if v is not None),
    )


def update_kubeconfig_flags(settings: AwsProviderSettings) -> str:
    """What `aws eks update-kubeconfig` needs to write the same identity (`""` when the shell's is the one)."""
    options = get_token_options(settings)
    flags = f" --profile {shlex.quote(settings.profile)}" if settings.profile else ""
    return flags + (f" --role-arn {shlex.quote(options.role_arn)}" if options.role_arn else "")
