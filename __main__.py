"""Composition root: read the stack's config, validate it, build the platform, export its outputs.

This is the only module that reads Pulumi config, asks for the stack name or exports. `pulumi up` runs it, and so
does the offline planner (`mlp plan`), unchanged.
"""

import contextlib
import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from infra.config import ConfigError, validate_config
from infra.platform import Platform


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


stack = pulumi.get_stack()
source = f"stacks/Pulumi.{stack}.yaml"
try:
    platform_config = validate_config(_stack_config(), source)
except ConfigError as error:
    # RunError prints the message alone, without a Python traceback.
    raise pulumi.RunError(str(error)) from None

platform = Platform(platform_config, stack)
outputs = platform.outputs()
pulumi.export("vpc_id", outputs.vpc_id)
pulumi.export("private_subnet_ids", outputs.private_subnet_ids)
pulumi.export("cluster_name", outputs.cluster_name)
pulumi.export("cluster_endpoint", outputs.cluster_endpoint)
pulumi.export("kubeconfig", outputs.kubeconfig)
pulumi.export("lake_buckets", outputs.lake_buckets)
pulumi.export("lake_key_arn", outputs.lake_key_arn)
pulumi.export(
    "update_kubeconfig_command",
    pulumi.Output.concat(
        "aws eks update-kubeconfig --region ", platform_config.region, " --name ", outputs.cluster_name
    ),
)
