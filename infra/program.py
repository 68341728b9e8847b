"""The composition roots of the two Pulumi projects: read the stack's config, validate it, build the layer, export.

`__main__.py` (the cloud layer, project `ml-platform`) and `cluster/__main__.py` (the cluster layer, project
`ml-platform-cluster`) each call one function here. These are the only places that read Pulumi config, ask for
the stack and export; `pulumi up` runs them, and so does the offline planner (`mlp plan`), unchanged.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from mlplatform.infra.aws_provider import AwsProviderSettings, parse_settings, stack_issues
from mlplatform.infra.config import PlatformConfig, validate_config
from mlplatform.infra.config_errors import ConfigError


def _stack_config() -> dict[str, Any]:
    """Every config key of the stack with its value decoded as the stack file holds it."""
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    config: dict[str, Any] = {}
    for key in sorted(keys):
        if runtime_config.is_config_secret(key):
            config[key] = {"secure": "<encrypted>"}
            continue
        value = runtime_config.get_config(key)
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        config[key] = value
    return config


def _load() -> tuple[PlatformConfig, str]:
    stack = pulumi.get_stack()
    source = f"stacks/Pulumi.{stack}.yaml"
    try:
        return validate_config(_stack_config(), source, stack=stack), stack
    except ConfigError as error:
        # RunError prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(error)) from None


def aws_provider_settings(owned_tags: Iterable[str] = ()) -> AwsProviderSettings:
    """The stack's `aws:*` provider settings, checked as the platform checks them, for a program outside the
    platform's schema (the examples); `owned_tags` are the tags the program sets itself."""
    source = f"stacks/Pulumi.{pulumi.get_stack()}.yaml"
    values = {k[len("aws:") :]: v for k, v in _stack_config().items() if k.startswith("aws:") and k != "aws:region"}
    settings, issues = parse_settings(values)
    if settings is not None:
        issues = stack_issues(settings, aws_account_id=None, platform_tags=owned_tags)
    if settings is None or issues:
        raise pulumi.RunError(str(ConfigError(source, issues)))
    return settings


def run_cloud_layer() -> None:
    """Everything AWS (VPC, EKS, IAM, KMS, lake, RDS, queues, the in-VPC runner); exports what the cluster layer
    reads (`infra.layer_outputs.CloudOutputs`)."""
    from mlplatform.infra.platform import CloudLayer

    cfg, stack = _load()
    CloudLayer(cfg, stack).outputs().export()


def run_cluster_layer() -> None:
    """Every Kubernetes object and Helm release, through a provider built from the cloud layer's outputs."""
    from mlplatform.infra.cluster_layer import ClusterLayer

    cfg, stack = _load()
    layer = ClusterLayer(cfg, stack)
    for name, value in layer.exports().items():
        pulumi.export(name, value)
