"""Normalized resources from Terraform plan JSON (`terraform show -json plan.out`).

Each `aws_*` type maps onto the Pulumi type token the rules know, and its snake_case attributes onto the engine's
camelCase names. Terraform writes every nested block as a list; blocks that Pulumi models as a single object are
unwrapped (listed per type below), and a few attributes are renamed where the Pulumi schema differs (`rule` of an
S3 encryption configuration is `rules`). Values `(known after apply)` become UNKNOWN. Effective tags are the plan's
`tags_all` when known, else the provider's `default_tags` merged under `tags`. Resources of unmapped types, data
sources and deletions are returned as skipped, with the reason: nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.model import UNKNOWN, Resource, Skipped


@dataclass(frozen=True)
class TypeMapping:
    token: str
    single_blocks: frozenset[str] = frozenset()
    """Paths (Terraform names, dotted) of nested blocks Pulumi models as one object."""
    renames: Mapping[str, str] = field(default_factory=dict)
    """Terraform attribute path -> Pulumi name where camelCase alone is not it."""


def _m(token: str, single: Iterable[str] = (), renames: Mapping[str, str] | None = None) -> TypeMapping:
    return TypeMapping(token, frozenset(single), dict(renames or {}))


TYPES: dict[str, TypeMapping] = {
    "aws_eks_cluster": _m(
        "aws:eks/cluster:Cluster",
        [
            "vpc_config",
            "encryption_config",
            "encryption_config.provider",
            "access_config",
            "upgrade_policy",
            "kubernetes_network_config",
        ],
    ),
    "aws_eks_node_group": _m(
        "aws:eks/nodeGroup:NodeGroup", ["scaling_config", "launch_template", "remote_access", "update_config"]
    ),
    "aws_launch_template": _m(
        "aws:ec2/launchTemplate:LaunchTemplate",
        ["metadata_options", "block_device_mappings.ebs", "iam_instance_profile", "monitoring"],
        {"block_device_mappings": "blockDeviceMappings"},
    ),
    "aws_instance": _m("aws:ec2/instance:Instance", ["metadata_options", "root_block_device"]),
    "aws_s3_bucket": _m(
        "aws:s3/bucket:Bucket",
        [
            "server_side_encryption_configuration",
            "server_side_encryption_configuration.rule",
            "server_side_encryption_configuration.rule.apply_server_side_encryption_by_default",
            "versioning",
            "logging",
        ],
    ),
    "aws_s3_bucket_server_side_encryption_configuration": _m(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        ["rule.apply_server_side_encryption_by_default"],
        {"rule": "rules"},
    ),
    "aws_s3_bucket_versioning": _m("aws:s3/bucketVersioning:BucketVersioning", ["versioning_configuration"]),
    "aws_s3_bucket_public_access_block": _m("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"),
    "aws_s3_bucket_ownership_controls": _m("aws:s3/bucketOwnershipControls:BucketOwnershipControls", ["rule"]),
    "aws_s3_bucket_policy": _m("aws:s3/bucketPolicy:BucketPolicy"),
    "aws_s3_bucket_acl": _m("aws:s3/bucketAcl:BucketAcl"),
    "aws_s3_bucket_logging": _m("aws:s3/bucketLogging:BucketLogging"),
    "aws_s3_bucket_lifecycle_configuration": _m(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", [], {"rule": "rules"}
    ),
    "aws_iam_role": _m("aws:iam/role:Role", [], {"inline_policy": "inlinePolicies"}),
    "aws_iam_policy": _m("aws:iam/policy:Policy"),
    "aws_iam_role_policy": _m("aws:iam/rolePolicy:RolePolicy"),
    "aws_iam_user": _m("aws:iam/user:User"),
    "aws_iam_user_policy": _m("aws:iam/userPolicy:UserPolicy"),
    "aws_iam_group_policy": _m("aws:iam/groupPolicy:GroupPolicy"),
    "aws_iam_access_key": _m("aws:iam/accessKey:AccessKey"),
    "aws_iam_role_policy_attachment": _m("aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
    "aws_iam_user_policy_attachment": _m("aws:iam/userPolicyAttachment:UserPolicyAttachment"),
    "aws_iam_policy_attachment": _m("aws:iam/policyAttachment:PolicyAttachment"),
    "aws_iam_openid_connect_provider": _m("aws:iam/openIdConnectProvider:OpenIdConnectProvider"),
    "aws_kms_key": _m("aws:kms/key:Key"),
    "aws_db_instance": _m("aws:rds/instance:Instance"),
    "aws_lb": _m("aws:lb/loadBalancer:LoadBalancer", ["access_logs"]),
    "aws_alb": _m("aws:lb/loadBalancer:LoadBalancer", ["access_logs"]),
    "aws_lb_listener": _m(
        "aws:lb/listener:Listener",
        ["default_action.redirect", "default_action.forward"],
        {"default_action": "defaultActions"},
    ),
    "aws_alb_listener": _m(
        "aws:lb/listener:Listener",
        ["default_action.redirect", "default_action.forward"],
        {"default_action": "defaultActions"},
    ),
    "aws_security_group": _m("aws:ec2/securityGroup:SecurityGroup"),
    "aws_default_security_group": _m("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"),
    "aws_security_group_rule": _m("aws:ec2/securityGroupRule:SecurityGroupRule"),
    "aws_vpc_security_group_ingress_rule": _m("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"),
    "aws_vpc": _m("aws:ec2/vpc:Vpc"),
    "aws_subnet": _m("aws:ec2/subnet:Subnet"),
    "aws_flow_log": _m("aws:ec2/flowLog:FlowLog"),
    "aws_ecr_repository": _m(
        "aws:ecr/repository:Repository",
        ["image_scanning_configuration"],
        {"encryption_configuration": "encryptionConfigurations"},
    ),
    "aws_dynamodb_table": _m("aws:dynamodb/table:Table", ["server_side_encryption", "point_in_time_recovery"]),
    "aws_lambda_function": _m("aws:lambda/function:Function", ["environment", "tracing_config", "vpc_config"]),
    "aws_secretsmanager_secret": _m("aws:secretsmanager/secret:Secret"),
    "aws_route53_zone": _m("aws:route53/zone:Zone"),
    "aws_autoscaling_group": _m("aws:autoscaling/group:Group", ["launch_template"]),
    "aws_sqs_queue": _m("aws:sqs/queue:Queue"),
    "aws_cloudwatch_log_group": _m("aws:cloudwatch/logGroup:LogGroup"),
    "aws_nat_gateway": _m("aws:ec2/natGateway:NatGateway"),
    "aws_vpc_endpoint": _m("aws:ec2/vpcEndpoint:VpcEndpoint"),
}

_INDEX = re.compile(r"\[[^\]]*\]$")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _with_unknowns(after: Any, unknown: Any) -> Any:
    if unknown is True:
        return UNKNOWN
    if isinstance(after, dict):
        marks = unknown if isinstance(unknown, dict) else {}
        merged = {k: _with_unknowns(v, marks.get(k)) for k, v in after.items()}
        for k, v in marks.items():
            if k not in merged and v is True:
                merged[k] = UNKNOWN
        return merged
    if isinstance(after, list):
        marks_list = unknown if isinstance(unknown, list) else []
        return [_with_unknowns(v, marks_list[i] if i < len(marks_list) else None) for i, v in enumerate(after)]
    return after


def _convert(value: Any, mapping: TypeMapping, path: str) -> Any:
    """Terraform attributes (snake_case, blocks as lists) -> Pulumi inputs (camelCase, single blocks as objects)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            child = f"{path}.{key}" if path else key
            name = mapping.renames.get(child, _camel(key))
            if child in mapping.single_blocks and isinstance(item, list):
                if not item:
                    continue  # an empty block is an absent block
                item = item[0]
            out[name] = _convert(item, mapping, child)
        return out
    if isinstance(value, list):
        return [_convert(v, mapping, path) for v in value]
    return value


def _provider_default_tags(plan: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Default tags per provider config key (`aws`, `aws.west`) from the plan's configuration."""
    found: dict[str, dict[str, str]] = {}
    for key, provider in (plan.get("configuration", {}).get("provider_config") or {}).items():
        blocks = (provider.get("expressions") or {}).get("default_tags") or []
        tags: dict[str, str] = {}
        for block in blocks if isinstance(blocks, list) else [blocks]:
            constant = ((block or {}).get("tags") or {}).get("constant_value")
            if isinstance(constant, dict):
                tags.update({str(k): str(v) for k, v in constant.items()})
        found[key] = tags
    return found


def _config_index(plan: Mapping[str, Any]) -> dict[str, tuple[dict[str, tuple[str, ...]], str]]:
    """Config address -> (attribute (Pulumi name) -> referenced config addresses, provider config key)."""
    out: dict[str, tuple[dict[str, tuple[str, ...]], str]] = {}

    def walk(module: Mapping[str, Any], prefix: str) -> None:
        for resource in module.get("resources", []) or []:
            address = f"{prefix}{resource.get('address', '')}"
            refs: dict[str, tuple[str, ...]] = {}
            for attr, expr in (resource.get("expressions") or {}).items():
                if isinstance(expr, dict) and expr.get("references"):
                    targets = {f"{prefix}{_strip_attr(r)}" for r in expr["references"] if not r.startswith("var.")}
                    if targets:
                        refs[_camel(attr)] = tuple(sorted(targets))
            provider_key = str(resource.get("provider_config_key", "aws")).rsplit(":", 1)[-1]
            out[address] = (refs, provider_key)
        for name, call in (module.get("module_calls") or {}).items():
            walk(call.get("module") or {}, f"{prefix}module.{name}.")

    walk(plan.get("configuration", {}).get("root_module") or {}, "")
    return out


def _strip_attr(reference: str) -> str:
    """`aws_s3_bucket.b.id` -> `aws_s3_bucket.b`; `module.x.aws_vpc.this[0].id` -> `module.x.aws_vpc.this`."""
    parts = reference.split(".")
    for i in range(len(parts) - 1):
        if parts[i].startswith("aws_") or parts[i].startswith("data"):
            return _INDEX.sub("", ".".join(parts[: i + 2]))
    return _INDEX.sub("", reference)


def config_address(address: str) -> str:
    """A resource instance address without instance keys (`module.m["a"].aws_x.y[0]` -> `module.m.aws_x.y`)."""
    return re.sub(r"\[[^\]]*\]", "", address)


def from_terraform_plan(plan: Mapping[str, Any]) -> tuple[list[Resource], list[Skipped]]:
    defaults = _provider_default_tags(plan)
    index = _config_index(plan)
    resources: list[Resource] = []
    skipped: list[Skipped] = []
    for change in plan.get("resource_changes", []) or []:
        address, tf_type = str(change.get("address")), str(change.get("type"))
        actions = list((change.get("change") or {}).get("actions") or [])
        if change.get("mode") == "data":
            skipped.append(Skipped(address, tf_type, "data source (read, not managed)"))
            continue
        if actions == ["delete"]:
            skipped.append(Skipped(address, tf_type, "deleted by this plan"))
            continue
        if actions == ["no-op"] and not change["change"].get("after"):
            skipped.append(Skipped(address, tf_type, "no change and no planned values"))
            continue
        mapping = TYPES.get(tf_type)
        if mapping is None:
            skipped.append(Skipped(address, tf_type, f"no mapping for {tf_type} (see policies/sources/terraform.py)"))
            continue
        after = _with_unknowns(change["change"].get("after") or {}, change["change"].get("after_unknown"))
        inputs = _convert(after, mapping, "")
        refs, provider_key = index.get(config_address(address), ({}, "aws"))
        tags_all = inputs.pop("tagsAll", None)
        own = inputs.get("tags") if isinstance(inputs.get("tags"), dict) else {}
        if isinstance(tags_all, dict):
            tags = {str(k): str(v) for k, v in tags_all.items()}
        else:
            tags = {**defaults.get(provider_key, {}), **(own or {})}
        resources.append(
            Resource(
                type=mapping.token,
                name=address,
                inputs=inputs,
                tags=tags,
                options={},
                references=refs,
                source="terraform",
            )
        )
    return resources, skipped
