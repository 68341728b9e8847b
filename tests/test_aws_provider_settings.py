"""The stack's `aws:*` provider settings reach the explicit AWS provider and the kubeconfigs' `aws eks get-token`;
what the platform cannot honour is refused with the key and what to do (issue 16)."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlplatform.infra.aws_provider import CREDENTIAL_KEYS, KNOWN_KEYS
from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.mlp.mocks import PlanContext
from mlplatform.mlp.planner import Plan, last_exports, plan_stack, run_program
from mlplatform.mlp.stackfile import Project, load_stack
from tests.conftest import ROOT

SOURCE = "stacks/Pulumi.dev.yaml"
ROLE = "arn:aws:iam::111122223333:role/deployer"

# Every setting but those that exclude another (assumeRole, assumeRoleWithWebIdentity, forbiddenAccountIds).
SETTINGS: dict[str, Any] = {
    "aws:profile": "ml-dev",
    "aws:sharedConfigFiles": ["~/.aws/ml-config"],
    "aws:sharedCredentialsFiles": ["~/.aws/ml-credentials"],
    "aws:assumeRoles": [
        {"roleArn": ROLE, "sessionName": "mlp", "duration": "1h", "policyArns": ["arn:aws:iam::aws:policy/ReadOnly"]}
    ],
    "aws:allowedAccountIds": ["111122223333"],
    "aws:defaultTags": {"tags": {"data-classification": "internal"}},
    "aws:ignoreTags": {"keys": ["LastScanned"], "keyPrefixes": ["scanner:"]},
    "aws:endpoints": [{"sts": "https://sts.example", "lambda": "https://lambda.example"}],
    "aws:maxRetries": 7,
    "aws:retryMode": "adaptive",
    "aws:stsRegion": "us-west-2",
    "aws:skipCredentialsValidation": True,
    "aws:skipMetadataApiCheck": True,
    "aws:skipRegionValidation": False,
    "aws:skipRequestingAccountId": True,
    "aws:customCaBundle": "/etc/ssl/corp.pem",
    "aws:ec2MetadataServiceEndpoint": "http://169.254.169.254",
    "aws:ec2MetadataServiceEndpointMode": "IPv4",
    "aws:httpProxy": "http://proxy:3128",
    "aws:httpsProxy": "http://proxy:3129",
    "aws:noProxy": "169.254.169.254",
    "aws:insecure": True,
    "aws:s3UsEast1RegionalEndpoint": "regional",
    "aws:s3UsePathStyle": True,
    "aws:tagPolicyCompliance": "warning",
    "aws:tokenBucketRateLimiterCapacity": 1000,
    "aws:useDualstackEndpoint": True,
    "aws:useFipsEndpoint": True,
    "aws:userAgents": ["acme-platform/1.0"],
}
# The older single role, a web identity, and forbidden accounts.
OTHER_SETTINGS: dict[str, Any] = {
    "aws:assumeRole": {"roleArn": "arn:aws:iam::111122223333:role/legacy", "sessionName": "old"},
    "aws:assumeRoleWithWebIdentity": {
        "roleArn": "arn:aws:iam::111122223333:role/ci",
        "webIdentityTokenFile": "/var/run/oidc/token",
        "sessionName": "ci-run",
        "duration": "30m",
    },
    "aws:forbiddenAccountIds": ["999988887777"],
}

# The provider's planned input for each key (scalars travel as strings; objects with the provider's camelCase keys).
PROVIDER_INPUTS: list[tuple[str, str, Any]] = [
    ("aws:profile", "profile", "ml-dev"),
    ("aws:sharedConfigFiles", "sharedConfigFiles", ["~/.aws/ml-config"]),
    ("aws:sharedCredentialsFiles", "sharedCredentialsFiles", ["~/.aws/ml-credentials"]),
    (
        "aws:assumeRoles",
        "assumeRoles",
        [{"roleArn": ROLE, "sessionName": "mlp", "duration": "1h", "policyArns": ["arn:aws:iam::aws:policy/ReadOnly"]}],
    ),
    ("aws:allowedAccountIds", "allowedAccountIds", ["111122223333"]),
    ("aws:ignoreTags", "ignoreTags", {"keys": ["LastScanned"], "keyPrefixes": ["scanner:"]}),
    ("aws:endpoints", "endpoints", [{"sts": "https://sts.example", "lambda": "https://lambda.example"}]),
    ("aws:maxRetries", "maxRetries", "7"),
    ("aws:retryMode", "retryMode", "adaptive"),
    ("aws:stsRegion", "stsRegion", "us-west-2"),
    ("aws:skipCredentialsValidation", "skipCredentialsValidation", "true"),
    ("aws:skipMetadataApiCheck", "skipMetadataApiCheck", "true"),
    ("aws:skipRegionValidation", "skipRegionValidation", "false"),
    ("aws:skipRequestingAccountId", "skipRequestingAccountId", "true"),
    ("aws:customCaBundle", "customCaBundle", "/etc/ssl/corp.pem"),
    ("aws:ec2MetadataServiceEndpoint", "ec2MetadataServiceEndpoint", "http://169.254.169.254"),
    ("aws:ec2MetadataServiceEndpointMode", "ec2MetadataServiceEndpointMode", "IPv4"),
    ("aws:httpProxy", "httpProxy", "http://proxy:3128"),
    ("aws:httpsProxy", "httpsProxy", "http://proxy:3129"),
    ("aws:noProxy", "noProxy", "169.254.169.254"),
    ("aws:insecure", "insecure", "true"),
    ("aws:s3UsEast1RegionalEndpoint", "s3UsEast1RegionalEndpoint", "regional"),
    ("aws:s3UsePathStyle", "s3UsePathStyle", "true"),
    ("aws:tagPolicyCompliance", "tagPolicyCompliance", "warning"),
    ("aws:tokenBucketRateLimiterCapacity", "tokenBucketRateLimiterCapacity", "1000"),
    ("aws:useDualstackEndpoint", "useDualstackEndpoint", "true"),
    ("aws:useFipsEndpoint", "useFipsEndpoint", "true"),
    ("aws:userAgents", "userAgents", ["acme-platform/1.0"]),
]
OTHER_PROVIDER_INPUTS: list[tuple[str, str, Any]] = [
    ("aws:assumeRole", "assumeRoles", [{"roleArn": "arn:aws:iam::111122223333:role/legacy", "sessionName": "old"}]),
    (
        "aws:assumeRoleWithWebIdentity",
        "assumeRoleWithWebIdentity",
        {
            "roleArn": "arn:aws:iam::111122223333:role/ci",
            "webIdentityTokenFile": "/var/run/oidc/token",
            "sessionName": "ci-run",
            "duration": "30m",
        },
    ),
    ("aws:forbiddenAccountIds", "forbiddenAccountIds", ["999988887777"]),
]

# What each setting that decides who calls AWS becomes in the kubeconfig's exec (env name -> value).
EXEC_ENV: list[tuple[str, str, str]] = [
    ("aws:profile", "AWS_PROFILE", "ml-dev"),
    ("aws:sharedConfigFiles", "AWS_CONFIG_FILE", "~/.aws/ml-config"),
    ("aws:sharedCredentialsFiles", "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/ml-credentials"),
    ("aws:customCaBundle", "AWS_CA_BUNDLE", "/etc/ssl/corp.pem"),
    ("aws:httpProxy", "HTTP_PROXY", "http://proxy:3128"),
    ("aws:httpsProxy", "HTTPS_PROXY", "http://proxy:3129"),
    ("aws:noProxy", "NO_PROXY", "169.254.169.254"),
    ("aws:skipMetadataApiCheck", "AWS_EC2_METADATA_DISABLED", "true"),
    ("aws:ec2MetadataServiceEndpoint", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254"),
    ("aws:ec2MetadataServiceEndpointMode", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv4"),
]
OTHER_EXEC_ENV: list[tuple[str, str, str]] = [
    ("aws:assumeRoleWithWebIdentity", "AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/ci"),
    ("aws:assumeRoleWithWebIdentity", "AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/oidc/token"),
    ("aws:assumeRoleWithWebIdentity", "AWS_ROLE_SESSION_NAME", "ci-run"),
]


def _config(project: Project, stack: str, settings: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(load_stack(project, stack).config)
    config.update(copy.deepcopy(settings))
    return config


def _plan(project: Project, stack: str, settings: dict[str, Any]) -> Plan:
    return plan_stack(dataclasses.replace(load_stack(project, stack), config=_config(project, stack, settings)))


def _provider(plan: Plan) -> dict[str, Any]:
    (provider,) = plan.of_type("pulumi:providers:aws")
    return dict(provider.inputs)


def _exec(kubeconfig: str) -> dict[str, Any]:
    (user,) = json.loads(kubeconfig)["users"]
    exec_: dict[str, Any] = user["user"]["exec"]
    return exec_


def _k8s_exec(plan: Plan) -> dict[str, Any]:
    value = plan.get("k8s").outputs["kubeconfig"]  # the mocks answer it unredacted: it holds no credential
    assert isinstance(value, str)
    return _exec(value)


def _env(exec_: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in exec_.get("env", [])}


@pytest.fixture(scope="module")
def planned(project: Project) -> Plan:
    return _plan(project, "dev", SETTINGS)


@pytest.fixture(scope="module")
def other_planned(project: Project) -> Plan:
    return _plan(project, "dev", OTHER_SETTINGS)


@pytest.fixture(scope="module")
def cloud_exports(project: Project) -> dict[str, Any]:
    """The cloud layer's stack outputs with every setting (the people's kubeconfig and update command)."""
    run_program(project.main, project.name, "dev", _config(project, "dev", SETTINGS), PlanContext(region="us-east-1"))
    return dict(last_exports().values)


# --- the provider -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "input_name", "expected"), PROVIDER_INPUTS, ids=[c[0] for c in PROVIDER_INPUTS])
def test_each_setting_reaches_the_cloud_layers_provider(
    planned: Plan, plans: dict[str, Plan], key: str, input_name: str, expected: Any
) -> None:
    assert _provider(planned)[input_name] == expected
    assert _provider(plans["dev"]).get(input_name) != expected  # the shipped dev stack sets none of them


@pytest.mark.parametrize(
    ("key", "input_name", "expected"), OTHER_PROVIDER_INPUTS, ids=[c[0] for c in OTHER_PROVIDER_INPUTS]
)
def test_the_older_role_key_web_identity_and_forbidden_accounts_reach_the_provider(
    other_planned: Plan, key: str, input_name: str, expected: Any
) -> None:
    assert _provider(other_planned)[input_name] == expected


def test_default_tags_are_merged_with_the_platforms(planned: Plan, plans: dict[str, Plan]) -> None:
    tags = _provider(planned)["defaultTags"]["tags"]
    assert tags == {**_provider(plans["dev"])["defaultTags"]["tags"], "data-classification": "internal"}


def test_allowed_accounts_equal_to_the_stacks_account_pass(project: Project) -> None:
    config = _config(project, "prod", {"aws:allowedAccountIds": ["444455556666"]})
    assert validate_config(config, SOURCE).aws.allowed_account_ids == ("444455556666",)
    assert _provider(plan_stack(load_stack(project, "prod")))["allowedAccountIds"] == ["444455556666"]


def test_scalars_as_the_pulumi_cli_hands_them_are_read(project: Project) -> None:
    """A program gets every config value as a string; `"5"` and `"true"` mean what the stack file says."""
    config = _config(project, "dev", {"aws:maxRetries": "5", "aws:skipCredentialsValidation": "true"})
    settings = validate_config(config, SOURCE).aws
    assert settings.max_retries == 5 and settings.skip_credentials_validation is True


def test_every_provider_config_key_of_pulumi_aws_is_known_or_refused() -> None:
    """Nothing a Pulumi user sets under `aws:` is silently dropped, and nothing we accept is invented."""
    import pulumi_aws

    source = (Path(pulumi_aws.__file__).parent / "config" / "vars.py").read_text()  # its provider config keys
    keys = set(re.findall(r"__config__\.get(?:_bool|_int|_float|_object)?\('(\w+)'\)", source))
    assert len(keys) > 30
    assert keys == (set(KNOWN_KEYS) - {"assumeRole"}) | set(CREDENTIAL_KEYS)


# --- the kubeconfigs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "name", "value"), EXEC_ENV, ids=[c[1] for c in EXEC_ENV])
def test_each_identity_setting_reaches_the_cluster_layers_kubeconfig(
    planned: Plan, plans: dict[str, Plan], key: str, name: str, value: str
) -> None:
    assert _env(_k8s_exec(planned))[name] == value
    assert name not in _env(_k8s_exec(plans["dev"]))


@pytest.mark.parametrize(("key", "name", "value"), OTHER_EXEC_ENV, ids=[c[1] for c in OTHER_EXEC_ENV])
def test_a_web_identity_reaches_the_kubeconfig(other_planned: Plan, key: str, name: str, value: str) -> None:
    assert _env(_k8s_exec(other_planned))[name] == value


def test_the_role_region_and_tls_setting_reach_the_get_token_args(planned: Plan, other_planned: Plan) -> None:
    assert _k8s_exec(planned)["args"] == [
        "--no-verify-ssl",
        "--region",
        "us-east-1",
        "eks",
        "get-token",
        "--role-arn",
        ROLE,
        "--cluster-name",
        "mlp-dev",
        "--output",
        "json",
    ]
    args = _k8s_exec(other_planned)["args"]
    assert args[args.index("--role-arn") + 1] == "arn:aws:iam::111122223333:role/legacy"  # the older key


def test_the_peoples_kubeconfig_and_update_command_carry_the_same_identity(
    cloud_exports: dict[str, Any], planned: Plan
) -> None:
    assert _exec(cloud_exports["kubeconfig"]) == _k8s_exec(planned)
    assert cloud_exports["update_kubeconfig_command"] == (
        f"aws eks update-kubeconfig --region us-east-1 --name mlp-dev --profile ml-dev --role-arn {ROLE}"
    )


def test_the_in_vpc_runner_deploys_the_cluster_layer_as_its_own_role(project: Project) -> None:
    """A deployer's profile and role do not exist in the runner's build; its own role has the access entry."""
    role = "arn:aws:iam::444455556666:role/deployer"
    plan = _plan(project, "prod", {"aws:profile": "ml-prod", "aws:assumeRoles": [{"roleArn": role}]})
    assert _provider(plan)["profile"] == "ml-prod"
    exec_ = _k8s_exec(plan)
    assert "env" not in exec_ and "--role-arn" not in exec_["args"]


def test_the_example_program_passes_the_settings_on(project: Project) -> None:
    from mlplatform.mlp.stackfile import load_project

    example = load_project(ROOT / "examples" / "gpu-pools-only")
    stack = load_stack(example, "example")
    config = {**stack.config, "aws:profile": "research", "aws:assumeRoles": [{"roleArn": ROLE}]}
    plan = plan_stack(dataclasses.replace(stack, config=config))
    provider = _provider(plan)
    assert provider["profile"] == "research" and provider["assumeRoles"] == [{"roleArn": ROLE}]
    exec_ = _k8s_exec(plan)
    assert _env(exec_) == {"AWS_PROFILE": "research"} and exec_["args"][4:6] == ["--role-arn", ROLE]


def test_mlp_account_commands_use_the_stacks_profile(stack_config: Callable[[str], dict[str, Any]]) -> None:
    from mlplatform.mlp.cli import _aws_context

    cfg = validate_config({**stack_config("dev"), "aws:profile": "ml-dev"}, SOURCE)
    assert _aws_context(None, None, cfg).profile == "ml-dev"
    assert _aws_context(None, "other", cfg).profile == "other"  # --profile wins
    assert _aws_context(None, None, validate_config(stack_config("dev"), SOURCE)).profile is None


# --- refusals -----------------------------------------------------------------------------------------------------

CREDENTIALS = (
    "static credentials do not belong in a stack file: use aws:profile or aws:assumeRoles, or the credentials of the "
    "shell that runs pulumi (AWS_PROFILE, SSO, an instance or CI role)"
)
VIA_PROFILE = "put the role in a profile of ~/.aws/config (role_arn, source_profile, ...) and set aws:profile"
KNOWN = (
    "region, profile, sharedConfigFiles, sharedCredentialsFiles, assumeRoles, assumeRole, assumeRoleWithWebIdentity, "
    "allowedAccountIds, forbiddenAccountIds, defaultTags, ignoreTags, endpoints, maxRetries, retryMode, stsRegion, "
    "skipCredentialsValidation, skipMetadataApiCheck, skipRegionValidation, skipRequestingAccountId, customCaBundle, "
    "ec2MetadataServiceEndpoint, ec2MetadataServiceEndpointMode, httpProxy, httpsProxy, noProxy, insecure, "
    "s3UsEast1RegionalEndpoint, s3UsePathStyle, tagPolicyCompliance, tokenBucketRateLimiterCapacity, "
    "useDualstackEndpoint, useFipsEndpoint, userAgents"
)
OTHER_ROLE = "arn:aws:iam::999988887777:role/deployer"

# (stack, settings, expected (key path, message) list)
REFUSED: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("dev", {"aws:accessKey": "AKIAIOSFODNN7EXAMPLE"}, [("aws:accessKey", CREDENTIALS)]),
    ("dev", {"aws:secretKey": {"secure": "v1:abc"}}, [("aws:secretKey", CREDENTIALS)]),
    ("dev", {"aws:token": "FwoGZX"}, [("aws:token", CREDENTIALS)]),
    ("dev", {"aws:profle": "ml-dev"}, [("aws:profle", f"unknown key `aws:profle`; allowed: {KNOWN}")]),
    (
        "dev",
        {"aws:profile": {"secure": "v1:abc"}},
        [("aws:profile", "is an encrypted secret; provider settings are plain values, not secrets")],
    ),
    (
        "prod",
        {"aws:allowedAccountIds": ["111122223333"]},
        [
            (
                "aws:allowedAccountIds",
                'must be ["444455556666"], the stack\'s account (ml-platform:aws_account_id), or be left out '
                '(got ["111122223333"])',
            )
        ],
    ),
    (
        "prod",
        {"aws:allowedAccountIds": ["444455556666", "111122223333"]},
        [
            (
                "aws:allowedAccountIds",
                'must be ["444455556666"], the stack\'s account (ml-platform:aws_account_id), or be left out '
                '(got ["444455556666", "111122223333"])',
            )
        ],
    ),
    (
        "prod",
        {"aws:forbiddenAccountIds": ["444455556666"]},
        [("aws:forbiddenAccountIds", "forbids 444455556666, the stack's account (ml-platform:aws_account_id)")],
    ),
    (
        "dev",
        {"aws:allowedAccountIds": ["111122223333"], "aws:forbiddenAccountIds": ["999988887777"]},
        [("aws:forbiddenAccountIds", "set aws:allowedAccountIds or aws:forbiddenAccountIds, not both")],
    ),
    (
        "dev",
        {"aws:allowedAccountIds": [111122223333]},
        [("aws:allowedAccountIds[0]", "Input should be a valid string (got 111122223333)")],
    ),
    (
        "prod",
        {"aws:assumeRoles": [{"roleArn": OTHER_ROLE}]},
        [
            (
                "aws:assumeRoles",
                "assumes a role of account 999988887777, but the stack deploys into 444455556666 "
                "(ml-platform:aws_account_id)",
            )
        ],
    ),
    (
        "dev",
        {"aws:assumeRoles": [{"roleArn": ROLE}, {"roleArn": OTHER_ROLE}]},
        [
            (
                "aws:assumeRoles",
                f"at most one role: the kubeconfig's `aws eks get-token --role-arn` assumes one; for a chain, "
                f"{VIA_PROFILE}",
            )
        ],
    ),
    (
        "dev",
        {"aws:assumeRoles": [{"roleArn": ROLE, "externalId": "x-42"}]},
        [
            (
                "aws:assumeRoles[0].externalId",
                f"`aws eks get-token` (the kubeconfig) cannot pass externalId when it assumes the role; {VIA_PROFILE}, "
                "or leave it out",
            )
        ],
    ),
    (
        "dev",
        {"aws:assumeRole": {"roleArn": ROLE, "tags": {"team": "ml"}}},
        [
            (
                "aws:assumeRole.tags",
                f"`aws eks get-token` (the kubeconfig) cannot pass tags when it assumes the role; {VIA_PROFILE}, "
                "or leave it out",
            )
        ],
    ),
    (
        "dev",
        {"aws:assumeRoles": [{"roleArn": ROLE}], "aws:assumeRole": {"roleArn": ROLE}},
        [("aws:assumeRole", "set aws:assumeRoles or the older aws:assumeRole, not both")],
    ),
    (
        "dev",
        {"aws:assumeRoles": [{"roleArn": "deployer"}]},
        [
            (
                "aws:assumeRoles[0].roleArn",
                "'deployer' is not valid: must be an IAM role ARN (arn:aws:iam::123456789012:role/name)",
            )
        ],
    ),
    (
        "dev",
        {"aws:assumeRole": {"roleArn": ROLE, "sesionName": "x"}},
        [
            (
                "aws:assumeRole.sesionName",
                "unknown key `sesionName`; allowed: roleArn, sessionName, duration, policy, policyArns, externalId, "
                "sourceIdentity, tags, transitiveTagKeys",
            )
        ],
    ),
    (
        "dev",
        {"aws:assumeRoleWithWebIdentity": {"roleArn": ROLE, "webIdentityToken": "eyJhbGci"}},
        [
            (
                "aws:assumeRoleWithWebIdentity.webIdentityToken",
                "a token does not belong in a stack file: name the file that holds it (webIdentityTokenFile)",
            )
        ],
    ),
    (
        "dev",
        {"aws:assumeRoleWithWebIdentity": {"roleArn": ROLE}},
        [
            (
                "aws:assumeRoleWithWebIdentity.webIdentityTokenFile",
                "is required: the file the OIDC token is read from (the kubeconfig reads the same file)",
            )
        ],
    ),
    (
        "dev",
        {"aws:profile": "ml-dev", "aws:assumeRoleWithWebIdentity": {"roleArn": ROLE, "webIdentityTokenFile": "/t"}},
        [("aws:assumeRoleWithWebIdentity", "set aws:profile or aws:assumeRoleWithWebIdentity, not both")],
    ),
    (
        "dev",
        {"aws:sharedConfigFiles": ["~/.aws/a", "~/.aws/b"]},
        [
            (
                "aws:sharedConfigFiles",
                "exactly one file: the kubeconfig's `aws eks get-token` reads one (AWS_CONFIG_FILE)",
            )
        ],
    ),
    (
        "dev",
        {"aws:sharedCredentialsFiles": []},
        [
            (
                "aws:sharedCredentialsFiles",
                "exactly one file: the kubeconfig's `aws eks get-token` reads one (AWS_SHARED_CREDENTIALS_FILE)",
            )
        ],
    ),
    (
        "dev",
        {"aws:defaultTags": {"tags": {"team": "other", "pulumi-stack": "x"}}},
        [
            (
                f"aws:defaultTags.tags.{tag}",
                "the platform sets this tag (ml-platform:tags, or managed-by and pulumi-stack): set it in "
                "ml-platform:tags only",
            )
            for tag in ("team", "pulumi-stack")
        ],
    ),
    (
        "dev",
        {"aws:ignoreTags": {"keys": ["owner"], "keyPrefixes": ["pulumi-"]}},
        [
            ("aws:ignoreTags.keys[0]", "would stop the platform managing its tag `owner`"),
            ("aws:ignoreTags.keyPrefixes[0]", "would stop the platform managing its tag(s) pulumi-stack"),
        ],
    ),
    (
        "dev",
        {"aws:endpoints": [{"s4": "http://localhost:4566"}]},
        [("aws:endpoints[0].s4", "unknown service `s4` (pulumi-aws endpoint names)")],
    ),
    (
        "dev",
        {"aws:retryMode": "eager"},
        [("aws:retryMode", "Input should be 'standard' or 'adaptive' (got 'eager')")],
    ),
    (
        "dev",
        {"aws:stsRegion": "global"},
        [("aws:stsRegion", "'global' is not valid: must be an AWS region such as us-east-1")],
    ),
]


@pytest.mark.parametrize(("stack", "settings", "expected"), REFUSED, ids=[next(iter(c[1])) for c in REFUSED])
def test_what_the_platform_cannot_honour_is_refused(
    stack_config: Callable[[str], dict[str, Any]], stack: str, settings: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    config = {**stack_config(stack), **settings}
    with pytest.raises(ConfigError) as info:
        validate_config(config, SOURCE)
    assert [(i.key_path(), i.message) for i in info.value.issues] == expected


def test_the_settings_are_not_a_platform_section(stack_config: Callable[[str], dict[str, Any]]) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({**stack_config("dev"), "ml-platform:aws": {"profile": "ml-dev"}}, SOURCE)
    ((path, message),) = [(i.key_path(), i.message) for i in info.value.issues]
    head, _, allowed = message.partition("; allowed: ")
    assert (path, head) == ("ml-platform:aws", "unknown key `ml-platform:aws`")
    assert "environment" in allowed.split(", ") and "aws" not in allowed.split(", ")


def test_a_refused_key_exits_2_naming_the_stack_file_and_line(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    shutil.copy(ROOT / "__main__.py", tmp_path)
    (tmp_path / "stacks").mkdir()
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    text = text.replace("  aws:region: us-east-1\n", "  aws:region: us-east-1\n  aws:accessKey: AKIAIOSFODNN7EXAMPLE\n")
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(text)
    line = text.splitlines().index("  aws:accessKey: AKIAIOSFODNN7EXAMPLE") + 1
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform.mlp.entry", "validate", "dev"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert f"stacks/Pulumi.dev.yaml:{line}: aws:accessKey: {CREDENTIALS}" in result.stderr
