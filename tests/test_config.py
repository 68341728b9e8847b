"""The stack config schema: bad input is rejected with the stack file, key path and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplatform.infra.config import ConfigError, PlatformConfig, validate_config
from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS, tag_problems

SOURCE = "stacks/Pulumi.test.yaml"


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set a value at `ml-platform:section.a.b` (creating maps on the way); `value=...` deletes it."""
    key, *path = dotted.split(".")
    node = config
    parts = [key, *path]
    for part in parts[:-1]:
        index = int(part) if part.isdigit() else part
        node = node[index] if isinstance(node, list) else node.setdefault(index, {})  # type: ignore[index]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is ...:
        del node[last]
    else:
        node[last] = value


def _errors(config: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, SOURCE)
    assert info.value.source == SOURCE
    return [(i.key_path(), i.message) for i in info.value.issues]


P = "ml-platform:"

# (stack to start from, key to change, new value or ... to delete, expected key path, expected message part)
BAD_CASES: list[tuple[str, str, Any, str, str]] = [
    # the image cache (issue 13): ECR's 30-character rule prefix, the credentials' secret in the stack's region
    (
        "prod",
        P + "cluster.image_cache.prefix",
        "a-twenty-character-x",
        "cluster.image_cache.prefix",
        "at most 19 of a-z",
    ),
    (
        "prod",
        P + "cluster.image_cache.credentials.docker-hub",
        "arn:aws:secretsmanager:eu-west-1:444455556666:secret:ecr-pullthroughcache/docker-hub-a1B2c3",
        "cluster.image_cache.credentials.docker-hub",
        "must be a secret in the stack's region us-east-1",
    ),
    (
        "prod",
        P + "cluster.image_cache.credentials.docker-hub",
        "arn:aws:secretsmanager:us-east-1:444455556666:secret:dockerhub-a1B2c3",
        "cluster.image_cache.credentials.docker-hub",
        "ecr-pullthroughcache",
    ),
    # the lake's data perimeter, team egress and internet-facing load balancers (issue 13)
    ("prod", P + "data_lake.perimeter.enabled", False, "data_lake.perimeter.enabled", "must be true in prod"),
    (
        "dev",
        P + "network.s3_gateway_endpoint",
        False,
        "data_lake.perimeter.enabled",
        "needs network.s3_gateway_endpoint",
    ),
    (
        "dev",
        P + "data_lake.perimeter.break_glass_role_arns",
        ["arn:aws:iam::123456789012:user/bob"],
        "data_lake.perimeter.break_glass_role_arns[0]",
        "must be an IAM role ARN",
    ),
    ("dev", P + "network.s3_external_read_buckets", ["Bad_Bucket"], "network.s3_external_read_buckets[0]", "bucket"),
    ("prod", P + "ingress.internet_facing_namespaces", ["web"], "ingress.internet_facing_namespaces", "empty in prod"),
    (
        "dev",
        P + "ingress.internet_facing_namespaces",
        ["team-research"],
        "ingress.internet_facing_namespaces[0]",
        "team-research is a team namespace",
    ),
    ("dev", P + "environment", "qa", "environment", "'dev', 'staging' or 'prod'"),
    ("dev", "aws:region", ..., "aws:region", "is required"),
    ("dev", "aws:region", "us-east1", "aws:region", "an AWS region such as us-east-1"),
    ("dev", P + "aws_account_id", "12345", "aws_account_id", "12 digits"),
    ("dev", P + "tags.owner", ..., "tags", "missing required cost tag(s) owner"),
    ("dev", P + "tags.environment", "prod", "tags.environment", "must equal environment"),
    ("dev", P + "tags.aws:createdBy", "me", "tags.aws:createdBy", "reserved for AWS"),
    ("dev", P + "tags." + "k" * 129, "v", "tags." + "k" * 129, "1 to 128 characters"),
    ("dev", P + "tags.team", "x" * 257, "tags.team", "at most 256 characters"),
    ("dev", P + "tags.team", "ml|platform", "tags.team", "may contain only letters"),
    ("dev", P + "tags.pulumi-stack", "x", "tags.pulumi-stack", "set by the platform itself"),
    ("dev", P + "network.cidr", "10.0.0.0/8", "network.cidr", "/16 to /22"),
    ("dev", P + "network.cidr", "8.8.0.0/16", "network.cidr", "not a private range"),
    ("dev", P + "network.cidr", "10.0.0.1/16", "network.cidr", "IPv4 CIDR block"),
    ("dev", P + "network.az_count", 7, "network.az_count", "less than or equal to 4"),
    ("dev", P + "network.nat", "none", "network.nat", "'single' or 'per_az'"),
    ("dev", P + "network.interface_endpoints", ["ecr.api", "s3"], "network.interface_endpoints[1]", "ecr.api"),
    ("dev", P + "network.flow_logs.retention_days", 10, "network.flow_logs.retention_days", "retention periods"),
    ("dev", P + "network.natgw", "single", "network.natgw", "unknown key `natgw`; allowed: cidr, az_count"),
    (
        "dev",
        P + "network.adopt",
        {"terraform_state": {"path": "a", "s3": {"bucket": "bkt", "key": "k", "region": "us-east-1"}}},
        "network.adopt.terraform_state",
        "exactly one of path, s3 or remote",
    ),
    (
        "dev",
        P + "network.adopt",
        {"vpc_id": "vpc-0123456789abcdef0", "private_subnet_ids": ["subnet-01234567"]},
        "network.adopt.private_subnet_ids",
        "at least 2 subnets",
    ),
    ("dev", P + "cluster.version", "1.29", "cluster.version", "allowed: 1.34, 1.35, 1.36"),
    ("dev", P + "cluster.endpoint.public_cidrs", [], "cluster.endpoint.public_cidrs", "needs the CIDRs"),
    (
        "staging",
        P + "cluster.endpoint",
        {"public": True, "public_cidrs": ["0.0.0.0/0"]},
        "cluster.endpoint.public_cidrs[0]",
        "allowed only in dev",
    ),
    ("prod", P + "cluster.endpoint.public", True, "cluster.endpoint.public", "must be false in prod"),
    ("prod", P + "cluster.deletion_protection", False, "cluster.deletion_protection", "must be true in prod"),
    ("dev", P + "cluster.admins.0.principal_arn", "admin", "cluster.admins[0].principal_arn", "IAM role or user ARN"),
    (
        "dev",
        P + "cluster.system_node_group.desired_size",
        9,
        "cluster.system_node_group",
        "min_size <= desired_size <= max_size",
    ),
    (
        "dev",
        P + "cluster.system_node_group.instance_types",
        ["m7g.large"],
        "cluster.system_node_group.instance_types[0]",
        "does not match ami_type",
    ),
    ("dev", P + "gpu_pools.shared.min_gpus", 8, "gpu_pools.shared.max_gpus", "must be >= min_gpus (4 < 8)"),
    (
        "dev",
        P + "gpu_pools.shared.instance_families",
        ["g7x"],
        "gpu_pools.shared.instance_families[0]",
        "not an NVIDIA GPU family",
    ),
    (
        "dev",
        P + "gpu_pools.shared.instance_types",
        ["g5.3xlarge"],
        "gpu_pools.shared.instance_types[0]",
        "did you mean g5.xlarge",
    ),
    (
        "dev",
        P + "gpu_pools.shared.instance_types",
        ["inf2.xlarge"],
        "gpu_pools.shared.instance_types[0]",
        "not NVIDIA GPUs",
    ),
    (
        "dev",
        P + "gpu_pools.shared.consolidate_after",
        "5 minutes",
        "gpu_pools.shared.consolidate_after",
        "duration such as 30s",
    ),
    (
        "dev",
        P + "gpu_pools.Shared_Pool",
        {"max_gpus": 1, "instance_families": ["g6"]},
        "gpu_pools.Shared_Pool",
        "lowercase DNS label",
    ),
    (
        "dev",
        P + "gpu_pools.shared",
        {"provisioner": "node_group", "instance_families": ["g6"], "max_gpus": 4},
        "gpu_pools.shared.instance_families",
        "take instance_types, not families",
    ),
    ("prod", P + "gpu_pools.training.max_gpus", 12, "gpu_pools.training.max_gpus", "multiple of 8"),
    # A capacity reservation: one instance type (the reservation's), `reserved` first and on-demand only as the
    # configured fallback, an AZ of the stack's region; a node group also needs the AZ and has no fallback.
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation.availability_zone",
        "eu-west-1a",
        "gpu_pools.training.capacity_reservation.availability_zone",
        "eu-west-1a is not an AZ of the stack's region us-east-1",
    ),
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation.availability_zone",
        "use1-az1",
        "gpu_pools.training.capacity_reservation.availability_zone",
        "must be an availability zone name such as us-east-1a",
    ),
    (
        "prod",
        P + "gpu_pools.training.instance_families",
        ["p5"],
        "gpu_pools.training.instance_families",
        "takes the reservation's instance type in instance_types, not families",
    ),
    (
        "prod",
        P + "gpu_pools.training.instance_types",
        ["p5.48xlarge", "p4d.24xlarge"],
        "gpu_pools.training.instance_types",
        "a pool on a capacity reservation has exactly one instance type",
    ),
    (
        "prod",
        P + "gpu_pools.training.capacity_types",
        ["spot", "on-demand"],
        "gpu_pools.training.capacity_types",
        "allow on-demand after it with capacity_reservation.on_demand_fallback",
    ),
    (
        "prod",
        P + "gpu_pools.training",
        {
            "provisioner": "node_group",
            "instance_types": ["p5.48xlarge"],
            "max_gpus": 16,
            "capacity_reservation": {"id": "cr-0a1b2c3d4e5f60718", "kind": "odcr"},
        },
        "gpu_pools.training.capacity_reservation.availability_zone",
        "a node group on a capacity reservation needs the reservation's AZ",
    ),
    (
        "prod",
        P + "gpu_pools.training",
        {
            "provisioner": "node_group",
            "instance_types": ["p5.48xlarge"],
            "max_gpus": 16,
            "capacity_reservation": {
                "id": "cr-0a1b2c3d4e5f60718",
                "availability_zone": "us-east-1a",
                "on_demand_fallback": True,
            },
        },
        "gpu_pools.training.capacity_reservation.on_demand_fallback",
        "a node group launches into its reservation only; use provisioner: karpenter",
    ),
    # The reservation's billing facts, which the cost floor prices: its type (the pool's), its count (within the
    # pool's max_gpus), and for a Capacity Block the price paid and its dates.
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation.instance_type",
        "p4d.24xlarge",
        "gpu_pools.training.capacity_reservation.instance_type",
        "p4d.24xlarge is not one of the pool's instance_types (p5.48xlarge)",
    ),
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation.instance_count",
        ...,
        "gpu_pools.training.capacity_reservation.instance_count",
        "required: the instances the reservation holds",
    ),
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation.instance_count",
        3,
        "gpu_pools.training.capacity_reservation.instance_count",
        "3 x p5.48xlarge hold 24 GPUs, more than the pool's max_gpus 16",
    ),
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation.kind",
        "capacity_block",
        "gpu_pools.training.capacity_reservation.price_usd",
        "required for a capacity_block: the upfront price paid (USD)",
    ),
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation.price_usd",
        1000.0,
        "gpu_pools.training.capacity_reservation.price_usd",
        "applies to kind: capacity_block",
    ),
    (
        "prod",
        P + "gpu_pools.training.capacity_reservation",
        {
            "id": "cr-0a1b2c3d4e5f60718",
            "kind": "capacity_block",
            "instance_type": "p5.48xlarge",
            "instance_count": 2,
            "price_usd": 90000,
            "start_date": "2026-12-10",
            "end_date": "2026-12-01",
        },
        "gpu_pools.training.capacity_reservation.end_date",
        "must be on or after start_date (2026-12-01 < 2026-12-10)",
    ),
    ("prod", P + "gpu_pools.inference.ami_version", "latest", "gpu_pools.inference.ami_version", "refused in prod"),
    (
        "prod",
        P + "gpu_pools.inference.time_slicing_replicas",
        4,
        "gpu_pools.inference.time_slicing_replicas",
        "dev/staging only",
    ),
    ("dev", P + "budget.max_gpus", 2, "budget.max_gpus", "the pools allow 4 GPUs"),
    ("dev", P + "budget.monthly_usd", 0, "budget.monthly_usd", "greater than 0"),
    ("dev", P + "budget", ..., "budget", "is required"),
    ("prod", P + "data_lake.protect", False, "data_lake.protect", "must be true in prod"),
    (
        "dev",
        P + "mlflow.database.backup_retention_days",
        3,
        "mlflow.database.backup_retention_days",
        "greater than or equal to 7",
    ),
    ("prod", P + "mlflow.database.multi_az", False, "mlflow.database.multi_az", "must be true in prod"),
    ("staging", P + "mlflow.auth.enabled", False, "mlflow.auth.enabled", "anonymous writes"),
    (
        "dev",
        P + "mlflow.ingress",
        {"enabled": True, "internal": False},
        "mlflow.ingress.internal",
        "never exposed to the internet",
    ),
    (
        "dev",
        P + "ray.clusters.research.gpu_workers.gpu.pool",
        "nope",
        "ray.clusters.research.gpu_workers.gpu.pool",
        "unknown GPU pool 'nope'",
    ),
    (
        "dev",
        P + "vllm.models.assistant.gpus_per_replica",
        16,
        "vllm.models.assistant.pool",
        "do not fit on any node of pool 'shared' (at most 1)",
    ),
    (
        "prod",
        P + "vllm.models.embedder.hub_token_secret",
        "hf_abcdefghijklmnop",
        "vllm.models.embedder.hub_token_secret",
        "looks like a token value",
    ),
    (
        "dev",
        P + "vllm.models.assistant.gpu_memory_utilization",
        1.5,
        "vllm.models.assistant.gpu_memory_utilization",
        "less than or equal to 0.98",
    ),
    (
        "dev",
        P + "kserve.inference_services.churn-model.runtime",
        "custom",
        "kserve.inference_services.churn-model",
        "exactly one of model_format or runtime",
    ),
    (
        "dev",
        P + "kserve.inference_services.churn-model.canary",
        {"storage_path": "churn/v4", "traffic_percent": 100},
        "kserve.inference_services.churn-model.canary.traffic_percent",
        "less than or equal to 99",
    ),
    (
        "staging",
        P + "kserve.inference_services.churn-model.min_replicas",
        0,
        "kserve.inference_services.churn-model.min_replicas",
        "must be >= 1 with a canary",
    ),
    ("dev", P + "tenants.research.quota.cpu", "lots", "tenants.research.quota.cpu", "Kubernetes quantity"),
    (
        "dev",
        P + "tenants.research.principal_arns",
        ["arn:aws:iam::111122223333:role/PlatformAdmin"],
        "tenants.research.principal_arns[0]",
        "also in cluster.admins",
    ),
    ("dev", P + "data_lake.zones.artifacts", ..., "mlflow.enabled", "`artifacts` zone"),
    ("prod", P + "data_lake.zones.models", ..., "vllm.models.assistant.source", "`models` zone"),
    ("dev", P + "kserve.enabled", False, "kserve.inference_services.churn-model", "kserve.enabled is false"),
    ("dev", P + "observability.enabled", False, "vllm.models.assistant.max_replicas", "enable observability"),
    (
        "dev",
        P + "kserve.inference_services.churn-model.runtime",
        "triton",
        "kserve.inference_services.churn-model.runtime",
        "allowed: vllm",
    ),
    ("prod", P + "mlflow.ingress.certificate_arn", ..., "mlflow.ingress.certificate_arn", "required in prod"),
    (
        "prod",
        P + "mlflow.ingress.certificate_arn",
        "arn:aws:acm:cert",
        "mlflow.ingress.certificate_arn",
        "an ACM certificate ARN",
    ),
    ("prod", P + "mlflow.ingress.hostname", ..., "mlflow.ingress.hostname", "is required when the ingress is enabled"),
    ("dev", P + "vllm.models.assistant.memory", "a lot", "vllm.models.assistant.memory", "Kubernetes quantity"),
    (
        "dev",
        P + "ray.clusters.research.head.memory",
        "4Gi",
        "ray.clusters.research.head",
        "does not fit a system node (t3.medium: 2 vCPUs, 4 GiB",
    ),
    ("prod", P + "cpu_pool.enabled", False, "ray.clusters.training.head.placement", "needs cpu_pool.enabled"),
    ("dev", P + "tenants.research.groups", [], "tenants.research.groups", "at least 1 item"),
    (
        "dev",
        P + "observability.alerts.gpu_idle_minutes",
        1,
        "observability.alerts.gpu_idle_minutes",
        "greater than or equal to 5",
    ),
    # the feature store (issue 18): an image, the served views (one table each), two servers in prod
    ("prod", P + "feature_store.image", ..., "feature_store.image", "required: the Feast image"),
    ("prod", P + "feature_store.image", "acme/feast:latest", "feature_store.image", "`latest` is refused"),
    ("prod", P + "feature_store.feature_views", [], "feature_store.feature_views", "one DynamoDB table each"),
    ("prod", P + "feature_store.feature_views", ["a", "a"], "feature_store.feature_views[1]", "listed twice"),
    (
        "prod",
        P + "feature_store.feature_views",
        ["User-Activity"],
        "feature_store.feature_views[0]",
        "not allowed here",
    ),
    ("prod", P + "feature_store.server_replicas", 1, "feature_store.server_replicas", "prod needs 2 or more"),
    (
        "prod",
        P + "observability.alerts.feature_server_error_percent",
        0,
        "observability.alerts.feature_server_error_percent",
        "greater than 0",
    ),
    ("dev", P + "region", "us-east-1", "ml-platform:region", "unknown key `ml-platform:region`"),
    ("dev", P + "gpu_pool", {}, "ml-platform:gpu_pool", "allowed: environment, aws_account_id, tags"),
    ("dev", P + "network", {"secure": "AAABAHk"}, "network", "encrypted secret"),
]


@pytest.mark.parametrize(
    ("stack", "key", "value", "path", "message"), BAD_CASES, ids=[f"{c[0]}:{c[3]}:{c[4][:30]}" for c in BAD_CASES]
)
def test_bad_config_is_rejected_with_key_path(
    stack_config: Callable[[str], dict[str, Any]], stack: str, key: str, value: Any, path: str, message: str
) -> None:
    config = stack_config(stack)
    _set(config, key, value)
    errors = _errors(config)
    matching = [m for p, m in errors if p == path]
    assert matching, f"no error at {path}; got {errors}"
    assert any(message in m for m in matching), f"{path}: expected {message!r} in {matching}"


def test_there_are_at_least_25_distinct_bad_config_cases() -> None:
    assert len({(c[3], c[4]) for c in BAD_CASES}) >= 25


def test_all_errors_are_reported_at_once(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("dev")
    _set(config, P + "network.nat", "none")
    _set(config, P + "gpu_pools.shared.max_gpus", 0)
    _set(config, P + "mlflow.replicas", 0)
    paths = {p for p, _ in _errors(config)}
    assert {"network.nat", "gpu_pools.shared.max_gpus", "mlflow.replicas"} <= paths


def test_error_text_names_file_line_and_path(project: Any, tmp_path: Any) -> None:
    from mlplatform.mlp.stackfile import load_project, load_stack

    stack_dir = tmp_path / "stacks"
    stack_dir.mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: ml-platform\nruntime: python\nstackConfigDir: stacks\n")
    text = (project.stack_file("dev")).read_text().replace("nat: single", "nat: triple")
    (stack_dir / "Pulumi.dev.yaml").write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "nat: triple" in ln)
    with pytest.raises(ConfigError) as info:
        load_stack(load_project(tmp_path), "dev").validate()
    assert f"stacks/Pulumi.dev.yaml:{line}: network.nat: Input should be 'single' or 'per_az'" in str(info.value)


def test_shipped_stacks_validate(stack_config: Callable[[str], dict[str, Any]]) -> None:
    for stack in ("dev", "staging", "prod"):
        cfg = validate_config(stack_config(stack), f"stacks/Pulumi.{stack}.yaml")
        assert cfg.environment == stack


def test_profiles_really_differ(stack_config: Callable[[str], dict[str, Any]]) -> None:
    dev = validate_config(stack_config("dev"), "dev")
    prod = validate_config(stack_config("prod"), "prod")
    assert (dev.network.nat, dev.network.az_count, dev.cluster.endpoint.public) == ("single", 2, True)
    assert (prod.network.nat, prod.network.az_count, prod.cluster.endpoint.public) == ("per_az", 3, False)
    assert all(p.min_gpus == 0 and "spot" in p.capacity_types for p in dev.gpu_pools.values())
    assert prod.data_lake.protect and prod.mlflow.database.multi_az and not dev.data_lake.protect


def test_config_is_frozen(stack_config: Callable[[str], dict[str, Any]]) -> None:
    cfg = validate_config(stack_config("dev"), "dev")
    with pytest.raises(ValueError, match="frozen"):
        cfg.network.__setattr__("nat", "per_az")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("a" * 128, "v", None),
        ("a" * 129, "v", "1 to 128"),
        ("k", "v" * 256, None),
        ("k", "v" * 257, "at most 256"),
        ("aws:x", "v", "reserved"),
        ("AWS:x", "v", "reserved"),
        ("k", "a+b-c=d.e_f:g/h@i j", None),
        ("k", "semi;colon", "may contain only"),
        ("", "v", "1 to 128"),
    ],
)
def test_tag_rules(key: str, value: str, problem: str | None) -> None:
    problems = tag_problems(key, value)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems)


# --- property: any mutation of a valid config gives a PlatformConfig or a ConfigError, never anything else ----

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["", "0.0.0.0/0", "latest", "10.0.0.0/16", "g5.xlarge", "prod", "-1"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), stack=st.sampled_from(["dev", "staging", "prod"]))
def test_mutated_configs_never_escape_as_other_exceptions(
    stack_config: Callable[[str], dict[str, Any]], data: st.DataObject, stack: str
) -> None:
    config = stack_config(stack)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(config)
        path = data.draw(st.sampled_from(paths))
        parent: Any = config
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=10))] = data.draw(_values)
        else:
            parent[path[-1]] = data.draw(_values)
    try:
        result = validate_config(config, SOURCE)
    except ConfigError as error:
        assert error.issues, "a ConfigError always lists at least one issue"
        for issue in error.issues:
            assert issue.message and isinstance(issue.key_path(), str)
    else:
        assert isinstance(result, PlatformConfig)
        assert all(result.tags.get(k) for k in REQUIRED_COST_TAGS)
