"""Normalized resources from Terraform plan JSON (`terraform show -json plan.out`, format 1.x).

Mapping. Each `aws_*` type maps onto the Pulumi type token the rules know, and its snake_case attributes onto the
engine's camelCase names. Terraform writes every nested block as a list; blocks that Pulumi models as a single
object are unwrapped (listed per type below), and a few attributes are renamed where the Pulumi schema differs
(`rule` of an S3 encryption configuration is `rules`). Kubernetes and Helm types are handed to
`policies.sources.terraform_kubernetes` when that module is installed.

Unknown values. `(known after apply)` is UNKNOWN only where the resource's configuration has an expression for the
attribute; an attribute nothing configures is unset (the provider fills in the AWS default), and the documented
defaults in `policies.sources.terraform_defaults` are filled in. Without a `configuration` block every unknown stays
UNKNOWN. Rules skip what is UNKNOWN; the report lists those reads as unjudged.

Links. A companion resource (public access block, versioning, policy ...) is linked to the resource *instance* it
configures, never to every instance of a counted resource: a literal key in the reference (`b[1]`, `b["k"]`), the
companion's own key when its expression uses `count.index` / `each.key` (or `each.value` over a `for_each` of
that resource), the planned values (its `bucket` equals the bucket's `id` or `bucket`), and module outputs
(`module.x.bucket_id` -> the resource the output expression references) are followed. Addresses are parsed by a
tokenizer (`policies.sources.terraform_address`), so any for_each key works.

Actions. create, update, no-op (with planned values) and replace (`delete, create` or `create, delete`) are
judged on `after`; delete and forget (Terraform 1.7 `removed { lifecycle { destroy = false } }`) are skipped with
the reason, as are data sources and unmapped types: nothing is dropped silently.

Tags. `tags_all` when the plan knows it, else the provider's `default_tags` (per module provider, `var.x` resolved
from the plan's variables) merged under `tags`. Auto Scaling groups take their `tag` blocks and no default tags
(the provider's `default_tags` do not apply to `aws_autoscaling_group`, per its documentation).

A structurally malformed plan raises TerraformPlanError (exit 2) naming the file and the JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlplatform.infra.config_errors import ConfigError, ConfigIssue
from mlplatform.policies.model import UNKNOWN, Resource, Skipped, track_unknowns
from mlplatform.policies.sources.terraform_address import (
    Address,
    AddressError,
    Key,
    ModulePath,
    parse_address,
    tokenize,
)
from mlplatform.policies.sources.terraform_defaults import DEFAULTS


@dataclass(frozen=True)
class TypeMapping:
    token: str
    single_blocks: frozenset[str] = frozenset()
    """Paths (Terraform names, dotted) of nested blocks Pulumi models as one object."""
    renames: Mapping[str, str] = field(default_factory=dict)
    """Terraform attribute path -> Pulumi name where camelCase alone is not it."""


def _m(token: str, single: Iterable[str] = (), renames: Mapping[str, str] | None = None) -> TypeMapping:
    return TypeMapping(token, frozenset(single), dict(renames or {}))


_LISTENER = _m(
    "aws:lb/listener:Listener",
    ["default_action.redirect", "default_action.forward"],
    {"default_action": "defaultActions"},
)

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
    "aws_ebs_volume": _m("aws:ebs/volume:Volume"),
    "aws_s3_bucket": _m(
        "aws:s3/bucket:Bucket",
        [
            "server_side_encryption_configuration",
            "server_side_encryption_configuration.rule",
            "server_side_encryption_configuration.rule.apply_server_side_encryption_by_default",
            "versioning",
            "logging",
        ],
        {"grant": "grants"},
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
    "aws_s3_bucket_acl": _m(
        "aws:s3/bucketAcl:BucketAcl",
        ["access_control_policy", "access_control_policy.owner", "access_control_policy.grant.grantee"],
        {"access_control_policy.grant": "grants"},
    ),
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
    "aws_iam_group_policy_attachment": _m("aws:iam/groupPolicyAttachment:GroupPolicyAttachment"),
    "aws_iam_policy_attachment": _m("aws:iam/policyAttachment:PolicyAttachment"),
    "aws_iam_openid_connect_provider": _m("aws:iam/openIdConnectProvider:OpenIdConnectProvider"),
    "aws_kms_key": _m("aws:kms/key:Key"),
    "aws_db_instance": _m("aws:rds/instance:Instance"),
    "aws_lb": _m("aws:lb/loadBalancer:LoadBalancer", ["access_logs"]),
    "aws_alb": _m("aws:lb/loadBalancer:LoadBalancer", ["access_logs"]),
    "aws_elb": _m("aws:elb/loadBalancer:LoadBalancer", ["access_logs"], {"listener": "listeners"}),
    "aws_lb_listener": _LISTENER,
    "aws_alb_listener": _LISTENER,
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

# Change actions (`change.actions`) and what the reader does with them.
JUDGED_ACTIONS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("create",),
        ("update",),
        ("no-op",),
        ("delete", "create"),  # replace, destroy first
        ("create", "delete"),  # replace, create_before_destroy
        ("create", "forget"),  # replace of a resource whose old object is forgotten, not destroyed
    }
)
SKIPPED_ACTIONS: Mapping[tuple[str, ...], str] = {
    ("delete",): "deleted by this plan",
    ("forget",): "removed from the Terraform state without being destroyed (forget): no longer managed here",
    ("read",): "read during apply (not a managed change)",
}

# Attributes whose value is an IAM policy document, the ones a `data.aws_iam_policy_document` JSON may fill in.
POLICY_ATTRIBUTES = ("policy", "assume_role_policy")
# Attributes of a resource instance a companion's `bucket`-like value may equal (planned values, when known).
IDENTITY_ATTRIBUTES = ("id", "bucket", "arn", "name")
_NON_RESOURCE_ROOTS = frozenset({"var", "local", "each", "count", "path", "terraform", "self"})


# --- malformed plans ------------------------------------------------------------------------------------------


class TerraformPlanError(ConfigError):
    """A file that is not a well-formed Terraform plan, with the JSON path of each problem (exit 2)."""

    def __str__(self) -> str:
        lines = [f"{self.source}: not a usable Terraform plan (`terraform show -json PLAN`):"]
        for issue in self.issues:
            where = f"{_json_path(issue.path)}: " if issue.path else ""
            lines.append(f"  {self.source}: {where}{issue.message}")
        return "\n".join(lines)


def _json_path(path: Sequence[str | int]) -> str:
    text = "$"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def load_terraform_plan(path: Path) -> dict[str, Any]:
    """The plan JSON of `path`; TerraformPlanError when it is missing, not JSON or not an object."""
    source = str(path)
    if not path.is_file():
        raise TerraformPlanError(source, [ConfigIssue((), "file not found")])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TerraformPlanError(source, [ConfigIssue((), f"is not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise TerraformPlanError(source, [ConfigIssue((), f"is a JSON {type(data).__name__}, not an object")])
    if "resource_changes" not in data and "planned_values" not in data:
        raise TerraformPlanError(
            source, [ConfigIssue((), "has neither resource_changes nor planned_values: not Terraform plan JSON")]
        )
    return data


def plan_issues(plan: Mapping[str, Any], limit: int = 20) -> list[ConfigIssue]:
    """Structural problems of a plan (types of the parts the reader reads), each with its JSON path."""
    issues: list[ConfigIssue] = []

    def bad(path: tuple[str | int, ...], message: str) -> None:
        if len(issues) < limit:
            issues.append(ConfigIssue(path, message))

    def expect(value: Any, kinds: tuple[type, ...], path: tuple[str | int, ...], what: str) -> bool:
        if value is None or isinstance(value, kinds):
            return True
        bad(path, f"must be {what}, not {type(value).__name__}")
        return False

    changes = plan.get("resource_changes")
    if expect(changes, (list,), ("resource_changes",), "a list"):
        for i, rc in enumerate(changes or []):
            here: tuple[str | int, ...] = ("resource_changes", i)
            if not isinstance(rc, dict):
                bad(here, f"must be an object, not {type(rc).__name__}")
                continue
            for key in ("address", "type"):
                if not isinstance(rc.get(key), str) or not rc.get(key):
                    bad((*here, key), "missing" if key not in rc else "must be a non-empty string")
            if isinstance(rc.get("address"), str) and rc.get("address"):
                try:
                    parse_address(rc["address"])
                except AddressError as exc:
                    bad((*here, "address"), f"not a resource address: {exc}")
            if rc.get("mode") not in (None, "managed", "data"):
                bad((*here, "mode"), f"must be managed or data, not {rc.get('mode')!r}")
            change = rc.get("change")
            if not isinstance(change, dict):
                bad((*here, "change"), "missing" if change is None else "must be an object")
                continue
            actions = change.get("actions")
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                bad((*here, "change", "actions"), "must be a list of strings")
            elif tuple(actions) not in JUDGED_ACTIONS and tuple(actions) not in SKIPPED_ACTIONS:
                bad((*here, "change", "actions"), f"unknown action {actions!r}")
            expect(change.get("after"), (dict,), (*here, "change", "after"), "an object or null")
            expect(change.get("after_unknown"), (dict, bool), (*here, "change", "after_unknown"), "an object")
    config = plan.get("configuration")
    if expect(config, (dict,), ("configuration",), "an object") and config:
        providers = config.get("provider_config")
        if expect(providers, (dict,), ("configuration", "provider_config"), "an object"):
            for key, provider in (providers or {}).items():
                expect(provider, (dict,), ("configuration", "provider_config", key), "an object")
        _module_issues(config.get("root_module"), ("configuration", "root_module"), expect)
    variables = plan.get("variables")
    if expect(variables, (dict,), ("variables",), "an object"):
        for name, var in (variables or {}).items():
            expect(var, (dict,), ("variables", name), "an object")
    for key in ("planned_values", "prior_state"):
        expect(plan.get(key), (dict,), (key,), "an object")
    return issues


def _module_issues(module: Any, path: tuple[str | int, ...], expect: Any) -> None:
    if not expect(module, (dict,), path, "an object") or not module:
        return
    resources = module.get("resources")
    if expect(resources, (list,), (*path, "resources"), "a list"):
        for i, resource in enumerate(resources or []):
            if expect(resource, (dict,), (*path, "resources", i), "an object") and resource:
                expect(resource.get("address"), (str,), (*path, "resources", i, "address"), "a string")
                expect(resource.get("expressions"), (dict,), (*path, "resources", i, "expressions"), "an object")
    calls = module.get("module_calls")
    if expect(calls, (dict,), (*path, "module_calls"), "an object"):
        for name, call in (calls or {}).items():
            if expect(call, (dict,), (*path, "module_calls", name), "an object") and call:
                _module_issues(call.get("module"), (*path, "module_calls", name, "module"), expect)


# --- configuration --------------------------------------------------------------------------------------------

ConfigKey = tuple[tuple[str, ...], str, str, str]
"""Module names, mode, type, name: a resource block of the configuration."""


@dataclass(frozen=True)
class _ConfigResource:
    expressions: Mapping[str, Any]
    provider_key: str
    for_each_refs: tuple[str, ...]


@dataclass
class _Configuration:
    resources: dict[ConfigKey, _ConfigResource] = field(default_factory=dict)
    outputs: dict[tuple[str, ...], Mapping[str, Any]] = field(default_factory=dict)
    """Module names -> that module's `outputs` (name -> {expression: ...})."""
    calls: dict[tuple[str, ...], Mapping[str, Any]] = field(default_factory=dict)
    """Module names -> the call's `expressions` (the module's input variables)."""
    present: bool = False


def _configuration(plan: Mapping[str, Any]) -> _Configuration:
    found = _Configuration()
    config = plan.get("configuration")
    if not isinstance(config, Mapping) or not isinstance(config.get("root_module"), Mapping):
        return found
    found.present = True

    def walk(module: Mapping[str, Any], names: tuple[str, ...]) -> None:
        found.outputs[names] = module.get("outputs") or {}
        for resource in module.get("resources") or []:
            try:
                local = parse_address(str(resource.get("address", "")))
            except AddressError:
                continue
            for_each = resource.get("for_each_expression") or {}
            found.resources[(names, local.mode, local.type, local.name)] = _ConfigResource(
                expressions=resource.get("expressions") or {},
                provider_key=str(resource.get("provider_config_key", "aws")),
                for_each_refs=tuple(for_each.get("references") or ()) if isinstance(for_each, Mapping) else (),
            )
        for name, call in (module.get("module_calls") or {}).items():
            found.calls[(*names, name)] = call.get("expressions") or {}
            walk(call.get("module") or {}, (*names, name))

    walk(config["root_module"], ())
    return found


def _is_attribute_expression(expr: Any) -> bool:
    """An attribute's expression ({constant_value} / {references} / {}), as opposed to a nested block's."""
    return isinstance(expr, Mapping) and (not expr or "constant_value" in expr or "references" in expr)


def _block_expressions(expr: Any, index: int) -> Mapping[str, Any] | None:
    """The expressions of the `index`-th instance of a nested block, or None when `expr` is not a block."""
    if isinstance(expr, list) and expr and all(isinstance(e, Mapping) for e in expr):
        return expr[min(index, len(expr) - 1)]  # type: ignore[no-any-return]
    if isinstance(expr, Mapping) and not _is_attribute_expression(expr):
        return expr
    return None


def _settle(value: Mapping[str, Any], exprs: Mapping[str, Any]) -> dict[str, Any]:
    """Keep UNKNOWN where the configuration sets the attribute; an unknown nothing configures is unset."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        expr = exprs.get(key)
        if item is UNKNOWN:
            if expr is not None:
                out[key] = UNKNOWN
            continue
        if _is_attribute_expression(expr):
            out[key] = item  # a configured attribute (a map or list value included) is taken as planned
        elif isinstance(item, list):
            out[key] = [
                _settle(element, _block_expressions(expr, i) or {}) if isinstance(element, Mapping) else element
                for i, element in enumerate(item)
                if element is not UNKNOWN or expr is not None
            ]
        elif isinstance(item, Mapping):
            out[key] = _settle(item, _block_expressions(expr, 0) or {})
        else:
            out[key] = item
    return out


def _configured(exprs: Mapping[str, Any], path: Sequence[str]) -> bool:
    node: Any = exprs
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
        if _is_attribute_expression(node):
            return True
        node = _block_expressions(node, 0)
    return True


def _apply_defaults(tf_type: str, values: dict[str, Any], exprs: Mapping[str, Any]) -> None:
    for path, default in DEFAULTS.get(tf_type, ()):
        parts = path.split(".")
        if _configured(exprs, parts):
            continue
        node = values
        for block in parts[:-1]:
            current = node.get(block)
            if not isinstance(current, list) or not current:
                current = [{}]
                node[block] = current
            if not isinstance(current[0], dict):
                break
            node = current[0]
        else:
            if node.get(parts[-1]) is None:
                node[parts[-1]] = default


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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


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


# --- providers and tags ---------------------------------------------------------------------------------------


def _resolve_variable(
    plan: Mapping[str, Any], config: _Configuration, module: tuple[str, ...], name: str, depth: int = 0
) -> Any:
    """The value of `var.name` in `module` (root: the plan's variables; a module: its call's expression)."""
    if depth > 16:
        return None
    if not module:
        var = (plan.get("variables") or {}).get(name)
        return var.get("value") if isinstance(var, Mapping) else None
    expr = config.calls.get(module, {}).get(name)
    if not isinstance(expr, Mapping):
        return None
    if "constant_value" in expr:
        return expr["constant_value"]
    refs = [r for r in expr.get("references") or () if isinstance(r, str)]
    if len(refs) == 1 and refs[0].startswith("var."):
        return _resolve_variable(plan, config, module[:-1], refs[0].split(".", 2)[1], depth + 1)
    return None


def _module_names(address: str | None) -> tuple[str, ...]:
    if not address:
        return ()
    steps = tokenize(address)
    return tuple(s.name for i, s in enumerate(steps) if i % 2 == 1)


def _provider_default_tags(plan: Mapping[str, Any], config: _Configuration) -> dict[str, dict[str, str]]:
    """Default tags per provider config key (`aws`, `aws.west`, `module.m:aws`) from the plan's configuration."""
    found: dict[str, dict[str, str]] = {}
    providers = (plan.get("configuration") or {}).get("provider_config") or {}
    for key, provider in providers.items():
        try:
            module = _module_names(provider.get("module_address"))
        except AddressError:
            module = ()
        blocks = (provider.get("expressions") or {}).get("default_tags") or []
        tags: dict[str, str] = {}
        for block in blocks if isinstance(blocks, list) else [blocks]:
            expr = (block or {}).get("tags") or {}
            value: Any = expr.get("constant_value")
            refs = [r for r in expr.get("references") or () if isinstance(r, str)]
            if value is None and refs and all(r.startswith("var.") for r in refs):
                # `tags = var.tags` lists `var.tags`; only a lone variable is resolved (not merge(...) of several)
                names = {r.split(".", 2)[1] for r in refs}
                if len(names) == 1:
                    value = _resolve_variable(plan, config, module, names.pop())
            if isinstance(value, Mapping):
                tags.update({str(k): str(v) for k, v in value.items() if v is not None})
        found[key] = tags
    return found


def _provider_tags(defaults: Mapping[str, dict[str, str]], key: str) -> dict[str, str]:
    """The default tags of the provider a resource uses; a module without its own provider uses the root's."""
    if key in defaults:
        return defaults[key]
    local = key.rsplit(":", 1)[-1]
    return defaults.get(local, {})


def _tags(tf_type: str, values: Mapping[str, Any], provider_tags: Mapping[str, str]) -> dict[str, str]:
    if tf_type == "aws_autoscaling_group":
        found: dict[str, str] = {}
        for tag in [*(values.get("tag") or []), *(values.get("tags") or [])]:
            if isinstance(tag, Mapping) and isinstance(tag.get("key"), str) and isinstance(tag.get("value"), str):
                found[tag["key"]] = tag["value"]
        return found  # the provider's default_tags do not apply to Auto Scaling groups
    tags_all = values.get("tags_all")
    if isinstance(tags_all, Mapping) and all(isinstance(v, str) for v in tags_all.values()):
        return {str(k): str(v) for k, v in tags_all.items()}
    own = values.get("tags")
    own_tags = {str(k): v for k, v in own.items() if isinstance(v, str)} if isinstance(own, Mapping) else {}
    return {**provider_tags, **own_tags}


# --- instances and links --------------------------------------------------------------------------------------


@dataclass
class _Instance:
    address: str
    parsed: Address
    tf_type: str
    values: dict[str, Any]
    config: _ConfigResource | None


InstanceKey = tuple[ModulePath, str, str]
"""Module instance path, type, name: the instances of one resource block in one module instance."""


class _Links:
    """Resolves the references of a configuration expression to resource instance addresses."""

    def __init__(self, instances: Sequence[_Instance], config: _Configuration) -> None:
        self.config = config
        self.by_block: dict[InstanceKey, dict[Key, _Instance]] = {}
        self.module_keys: dict[tuple[ModulePath, str], list[Key]] = {}
        for inst in instances:
            a = inst.parsed
            self.by_block.setdefault((a.module, a.type, a.name), {})[a.key] = inst
            for depth in range(len(a.module)):
                keys = self.module_keys.setdefault((a.module[:depth], a.module[depth][0]), [])
                if a.module[depth][1] not in keys:
                    keys.append(a.module[depth][1])
        self._parsed: dict[str, tuple[Any, ...] | None] = {}

    def _steps(self, ref: str) -> tuple[Any, ...] | None:
        if ref not in self._parsed:
            try:
                self._parsed[ref] = tokenize(ref)
            except AddressError:
                self._parsed[ref] = None
        return self._parsed[ref]

    def resolve(
        self,
        refs: Sequence[str],
        scope: ModulePath,
        self_key: Key,
        for_each_refs: Sequence[str] = (),
        value: Any = None,
        depth: int = 0,
    ) -> list[str]:
        """Instance addresses `refs` (one expression's references) point at, seen from `scope`."""
        if depth > 8:
            return []
        follows_self = self_key is not None and any(r in ("count.index", "each.key") for r in refs)
        if self_key is not None and any(r == "each.value" or r.startswith("each.value.") for r in refs):
            follows_self = True
            refs = [*refs, *for_each_refs]  # each.value of a for_each over a resource is that resource's instance
        keyed: dict[tuple[str, str], set[Key]] = {}
        whole: set[tuple[str, str]] = set()
        module_refs: dict[tuple[str, str | None], set[Key] | None] = {}
        for ref in refs:
            steps = self._steps(ref)
            if not steps or steps[0].name in _NON_RESOURCE_ROOTS or steps[0].name == "data":
                continue
            if steps[0].name == "module":
                # `module.m.out`, `module.m[0].out`; `module.m[each.key].out` is written `module.m` (any output)
                if len(steps) >= 2 and not steps[0].indexed:
                    call = steps[1]
                    output = steps[2].name if len(steps) >= 3 else None
                    keys = module_refs.setdefault((call.name, output), set())
                    if call.indexed and call.key is not None and keys is not None:
                        keys.add(call.key)
                    else:
                        module_refs[(call.name, output)] = None
                continue
            if len(steps) < 2 or steps[0].indexed:
                continue
            block = (steps[0].name, steps[1].name)
            if steps[1].indexed and steps[1].key is not None:
                keyed.setdefault(block, set()).add(steps[1].key)
            else:
                whole.add(block)
        found: list[str] = []
        for block in [*keyed, *(b for b in whole if b not in keyed)]:
            instances = self.by_block.get((scope, *block), {})
            if not instances:
                continue
            if block in keyed:
                chosen = [instances[k] for k in keyed[block] if k in instances]
            elif len(instances) == 1:
                chosen = list(instances.values())
            elif follows_self and self_key in instances:
                chosen = [instances[self_key]]
            else:
                chosen = _by_value(list(instances.values()), value)
            found.extend(i.address for i in chosen)
        named_calls = {call for call, output in module_refs if output is not None}
        for (call, output), call_keys in module_refs.items():
            if output is None and call in named_calls:
                continue  # `module.m[0]` written beside `module.m[0].out`
            outputs = self.config.outputs.get((*(n for n, _ in scope), call)) or {}
            exprs = [outputs.get(output) or {}] if output is not None else list(outputs.values())
            out_refs = [
                r
                for e in exprs
                if isinstance(e, Mapping)
                for r in (e.get("expression") or {}).get("references") or ()
                if isinstance(r, str)
            ]
            available = self.module_keys.get((scope, call), [])
            chosen_keys: list[Key]
            if call_keys:
                chosen_keys = [k for k in available if k in call_keys]
            elif len(available) == 1:
                chosen_keys = available
            elif follows_self and self_key in available:
                chosen_keys = [self_key]
            else:
                chosen_keys = available
            targets: list[str] = []
            for key in chosen_keys:
                targets.extend(self.resolve(out_refs, (*scope, (call, key)), None, (), value, depth + 1))
            found.extend(targets if len(chosen_keys) <= 1 else self._narrow(targets, value))
        return list(dict.fromkeys(found))

    def _narrow(self, addresses: list[str], value: Any) -> list[str]:
        instances = [i for a in addresses for i in self._lookup(a)]
        return [i.address for i in _by_value(instances, value)]

    def _lookup(self, address: str) -> list[_Instance]:
        a = parse_address(address)
        found = self.by_block.get((a.module, a.type, a.name), {}).get(a.key)
        return [found] if found else []


def _by_value(candidates: list[_Instance], value: Any) -> list[_Instance]:
    """The candidates whose planned id/bucket/arn/name equals `value`; all of them when none does (or unknown)."""
    if isinstance(value, str) and value:
        matched = [c for c in candidates if any(c.values.get(attr) == value for attr in IDENTITY_ATTRIBUTES)]
        if matched:
            return matched
    return candidates


def _data_documents(plan: Mapping[str, Any]) -> dict[tuple[ModulePath, str, Key], str]:
    """Known JSON of `data.aws_iam_policy_document` instances: (module path, name, key) -> JSON."""
    found: dict[tuple[ModulePath, str, Key], str] = {}

    def add(address: Any, values: Any) -> None:
        if not isinstance(address, str) or not isinstance(values, Mapping):
            return
        document = values.get("json")
        if not isinstance(document, str):
            return
        try:
            a = parse_address(address)
        except AddressError:
            return
        if a.mode == "data" and a.type == "aws_iam_policy_document":
            found[(a.module, a.name, a.key)] = document

    def walk(module: Any) -> None:
        if not isinstance(module, Mapping):
            return
        for resource in module.get("resources") or []:
            if isinstance(resource, Mapping):
                add(resource.get("address"), resource.get("values"))
        for child in module.get("child_modules") or []:
            walk(child)

    walk(((plan.get("prior_state") or {}).get("values") or {}).get("root_module"))
    for rc in plan.get("resource_changes") or []:
        if rc.get("mode") == "data":
            change = rc.get("change") or {}
            unknown = change.get("after_unknown") or {}
            if not (isinstance(unknown, Mapping) and unknown.get("json")):
                add(rc.get("address"), change.get("after"))
    return found


def _fill_documents(
    values: dict[str, Any],
    exprs: Mapping[str, Any],
    scope: ModulePath,
    self_key: Key,
    documents: Mapping[tuple[ModulePath, str, Key], str],
) -> None:
    """A policy attribute unknown only because it reads a policy document whose JSON the plan knows."""
    for attr in POLICY_ATTRIBUTES:
        if values.get(attr) is not UNKNOWN:
            continue
        refs = [r for r in (exprs.get(attr) or {}).get("references") or () if isinstance(r, str)]
        follows_self = any(r in ("count.index", "each.key") for r in refs)
        for ref in refs:
            try:
                steps = tokenize(ref)
            except AddressError:
                continue
            if len(steps) < 3 or steps[0].name != "data" or steps[1].name != "aws_iam_policy_document":
                continue
            key = steps[2].key if steps[2].indexed else (self_key if follows_self else None)
            document = documents.get((scope, steps[2].name, key))
            if document is not None:
                values[attr] = document
                break


# --- the reader -----------------------------------------------------------------------------------------------


def _kubernetes_hook() -> tuple[frozenset[str], Any]:
    try:
        from mlplatform.policies.sources.terraform_kubernetes import KUBERNETES_TYPES, kubernetes_resources
    except ImportError:
        return frozenset(), None
    return frozenset(KUBERNETES_TYPES), kubernetes_resources


def from_terraform_plan(
    plan: Mapping[str, Any], source: str = "<terraform plan>"
) -> tuple[list[Resource], list[Skipped]]:
    """Normalized resources and the skipped changes of a plan; TerraformPlanError when it is malformed."""
    if not isinstance(plan, Mapping):
        raise TerraformPlanError(source, [ConfigIssue((), "is not a JSON object")])
    issues = plan_issues(plan)
    if issues:
        raise TerraformPlanError(source, issues)
    config = _configuration(plan)
    kubernetes_types, kubernetes_resources = _kubernetes_hook()
    skipped: list[Skipped] = []
    instances: list[_Instance] = []
    for change in plan.get("resource_changes") or []:
        address, tf_type = change["address"], change["type"]
        body = change["change"]
        actions = tuple(body["actions"])
        if change.get("mode") == "data":
            skipped.append(Skipped(address, tf_type, "data source (read, not managed)"))
            continue
        if actions in SKIPPED_ACTIONS:
            skipped.append(Skipped(address, tf_type, SKIPPED_ACTIONS[actions]))
            continue
        if actions == ("no-op",) and not body.get("after"):
            skipped.append(Skipped(address, tf_type, "no change and no planned values"))
            continue
        if tf_type not in TYPES and tf_type not in kubernetes_types:
            skipped.append(Skipped(address, tf_type, f"no mapping for {tf_type} (see policies/sources/terraform.py)"))
            continue
        parsed = parse_address(address)
        values = _with_unknowns(body.get("after") or {}, body.get("after_unknown"))
        instances.append(_Instance(address, parsed, tf_type, values, config.resources.get(parsed.config)))
    documents = _data_documents(plan)
    for inst in instances:
        if inst.config is not None:
            exprs = inst.config.expressions
            _fill_documents(inst.values, exprs, inst.parsed.module, inst.parsed.key, documents)
            inst.values = _settle(inst.values, exprs)
            _apply_defaults(inst.tf_type, inst.values, exprs)
    links = _Links(instances, config)
    defaults = _provider_default_tags(plan, config)
    resources: list[Resource] = []
    for inst in instances:
        if inst.tf_type in kubernetes_types:
            found, also_skipped = kubernetes_resources(inst.tf_type, inst.address, inst.values)
            resources.extend(replace(r, inputs=track_unknowns(r.inputs, r.name)) for r in found)
            skipped.extend(also_skipped)
            continue
        mapping = TYPES[inst.tf_type]
        references: dict[str, tuple[str, ...]] = {}
        provider_key = "aws"
        if inst.config is not None:
            provider_key = inst.config.provider_key
            for attr, expr in inst.config.expressions.items():
                if not isinstance(expr, Mapping) or not expr.get("references"):
                    continue
                refs = [r for r in expr["references"] if isinstance(r, str)]
                targets = links.resolve(
                    refs, inst.parsed.module, inst.parsed.key, inst.config.for_each_refs, inst.values.get(attr)
                )
                if targets:
                    references[mapping.renames.get(attr, _camel(attr))] = tuple(targets)
        tags = _tags(inst.tf_type, inst.values, _provider_tags(defaults, provider_key))
        inputs = _convert(inst.values, mapping, "")
        inputs.pop("tagsAll", None)
        resources.append(
            Resource(
                type=mapping.token,
                name=inst.address,
                inputs=track_unknowns(inputs, inst.address),
                tags=tags,
                options={},
                references=references,
                source="terraform",
            )
        )
    return resources, skipped
