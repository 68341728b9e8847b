"""The image cache (issue 13): prod pulls every image the platform renders through ECR pull-through cache rules of
its own (no Docker Hub pulls through the NAT addresses), the rules are what ECR accepts, the node roles may import
only under the stack's prefixes (evaluated with `mlp.iam_eval`), and an upstream without credentials is left
public with a warning rather than broken."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mlplatform.infra.catalog import versions
from mlplatform.infra.config import PlatformConfig
from mlplatform.infra.registry import documents
from mlplatform.infra.registry.documents import UNSUPPORTED_HOSTS, ImageCache, cached_image, parse_image
from mlplatform.infra.registry.images import required_registry
from mlplatform.mlp.iam_eval import Policy, Request, RolePrincipal, evaluate
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack

RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PROD_REGISTRY = "444455556666.dkr.ecr.us-east-1.amazonaws.com/mlp-prod"
# What ECR's CreatePullThroughCacheRule accepts as upstreamRegistryUrl for the upstreams the platform uses (AWS ECR
# User Guide, pull-through-cache-creating-rule.html).
ECR_UPSTREAM_URLS = {"public.ecr.aws", "registry.k8s.io", "quay.io", "registry-1.docker.io", "ghcr.io"}


def _images(value: Any) -> Iterator[str]:
    """Every container image a Kubernetes object or chart values name (`image` as a string, or a chart's
    `repository` + `tag`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str):
                yield item
            else:
                yield from _images(item)
    elif isinstance(value, list):
        for item in value:
            yield from _images(item)


def _cluster_images(plan: Plan) -> set[str]:
    """Every image the cluster layer renders from an upstream registry; images the stack's own account builds into
    its ECR (the Feast image, `feature_store.image`) are not an upstream's and need no cache."""
    own = f"{plan_account(plan)}.dkr.ecr."
    return {
        image
        for r in plan.in_layer("cluster")
        if r.type.startswith("kubernetes:")
        for image in _images(r.inputs)
        if not (image.startswith(own) and "/mlplatform-" in image)
    }


def plan_account(plan: Plan) -> str:
    return str(plan.of_type("aws:iam/role:Role")[0].outputs["arn"]).split(":")[4]


def test_prod_pulls_every_rendered_image_through_its_own_cache(plans: dict[str, Plan]) -> None:
    images = _cluster_images(plans["prod"])
    assert len(images) >= 8, images  # vLLM, Ray (CPU and GPU), MLflow, Envoy (2), the AWS CLI, pause
    for image in images:
        host = parse_image(image).host
        if host in UNSUPPORTED_HOSTS:
            continue
        assert image.startswith(PROD_REGISTRY + "/"), f"{image} does not come through the cache"
        upstream = image.removeprefix(PROD_REGISTRY + "/").split("/", 1)[0]
        assert upstream in documents.UPSTREAM_KEYS, image
    # the tags are the catalog's pins, unchanged
    for name in ("vllm", "ray", "mlflow", "envoy-proxy"):
        pinned = parse_image(versions.image(name))
        assert any(i.endswith(f"/{pinned.path}{pinned.suffix}") for i in images), name


def test_the_charts_images_come_through_the_cache_where_their_keys_are_known(plans: dict[str, Plan]) -> None:
    releases = {r.name: r for r in plans["prod"].of_type("kubernetes:helm.sh/v3:Release")}
    values = {name: r.inputs.get("values", {}) for name, r in releases.items()}
    karpenter = next(v for n, v in values.items() if "karpenter" in n)
    assert karpenter["controller"]["image"]["repository"] == f"{PROD_REGISTRY}/ecr-public/karpenter/controller"
    kuberay = next(v for n, v in values.items() if "kuberay" in n)
    assert kuberay["image"]["repository"] == f"{PROD_REGISTRY}/quay/kuberay/operator"
    gateway = next(v for n, v in values.items() if "envoy-gateway" in n or "gateway-helm" in n)
    assert gateway["global"]["images"]["envoyGateway"]["image"].startswith(f"{PROD_REGISTRY}/docker-hub/")


def test_dev_and_staging_pull_from_upstream_without_a_cache(plans: dict[str, Plan], project: Project) -> None:
    for stack in ("dev", "staging"):
        plan = plans[stack]
        assert not plan.of_type(RULE) and not plan.of_type(TEMPLATE), stack
        # The steps' image (registry-driven serving runs its resolver) is the user's own, in their ECR: not a cache.
        pipelines = load_stack(project, stack).config.get("ml-platform:pipelines", {})
        own = {pipelines.get("templates", {}).get("image")}
        assert not any(".dkr.ecr." in i for i in _cluster_images(plan) - own), stack


def test_prod_rules_are_what_ecr_accepts_and_encrypt_with_the_platforms_key(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    rules = {r.inputs["ecrRepositoryPrefix"]: r for r in plan.of_type(RULE)}
    assert set(rules) == {f"mlp-prod/{u}" for u in documents.UPSTREAM_KEYS}
    templates = {r.inputs["prefix"]: r for r in plan.of_type(TEMPLATE)}
    assert set(templates) == set(rules)
    for prefix, rule in rules.items():
        assert 2 <= len(prefix) <= documents.MAX_RULE_PREFIX, prefix
        assert rule.inputs["upstreamRegistryUrl"] in ECR_UPSTREAM_URLS
        upstream = prefix.split("/", 1)[1]
        credential = rule.inputs.get("credentialArn")
        if upstream in documents.CREDENTIAL_UPSTREAMS:
            assert credential and f":secret:ecr-pullthroughcache/{upstream}-" in credential, prefix
        else:
            assert not credential, prefix
        # the template exists before a first pull can create a repository with ECR's defaults
        template = templates[prefix]
        assert template.name in rule.dependencies(), prefix
        assert template.inputs["appliedFors"] == ["PULL_THROUGH_CACHE"]
        (encryption,) = template.inputs["encryptionConfigurations"]
        assert encryption["encryptionType"] == "KMS" and encryption["kmsKey"].startswith("arn:aws:kms:")
        rules_json = json.loads(template.inputs["lifecyclePolicy"])["rules"]
        assert [r["selection"]["tagStatus"] for r in rules_json] == ["untagged"]


def _node_import_policies(plan: Plan) -> list[Any]:
    return [r for r in plan.of_type(ROLE_POLICY) if r.name.startswith("image-cache-node-import-")]


def test_both_node_roles_may_import_only_under_the_stacks_prefixes(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    attached = _node_import_policies(plan)
    # the system node group's role and Karpenter's node role: whichever node a pod lands on makes the first pull
    assert len(attached) == 2
    roles = {r.inputs["role"] for r in attached}
    assert len(roles) == 2
    principal = RolePrincipal(role_arn="arn:aws:iam::444455556666:role/mlp-prod-node", session_name="i-0abc")
    policies = [Policy.parse(r.name, r.inputs["policy"]) for r in attached[:1]]
    repo = "arn:aws:ecr:us-east-1:444455556666:repository/"
    for action in documents.IMPORT_ACTIONS:
        for path in ("mlp-prod/docker-hub/vllm/vllm-openai", "mlp-prod/quay/kuberay/operator"):
            assert evaluate(Request(action=action, resource=repo + path), principal, policies).allowed, (action, path)
        for path in ("mlp-staging/docker-hub/vllm/vllm-openai", "team-repo/app", "mlp-prod-other/quay/x"):
            assert not evaluate(Request(action=action, resource=repo + path), principal, policies).allowed, path
    other_region = "arn:aws:ecr:eu-west-1:444455556666:repository/mlp-prod/quay/kuberay/operator"
    request = Request(action="ecr:CreateRepository", resource=other_region)
    assert not evaluate(request, principal, policies).allowed
    # nothing beyond importing: deleting or pushing stays denied
    push = Request(action="ecr:PutImage", resource=repo + "mlp-prod/quay/kuberay/operator")
    assert not evaluate(push, principal, policies).allowed


def _replan(project: Project, stack: str, mutate: Any) -> tuple[Plan, PlatformConfig]:
    stack_config = load_stack(project, stack)
    config = json.loads(json.dumps(stack_config.config))
    mutate(config["ml-platform:cluster"])
    changed = dataclasses.replace(stack_config, config=config)
    return plan_stack(changed), changed.validate()


def test_an_upstream_without_credentials_keeps_its_public_reference_with_a_warning(project: Project) -> None:
    from mlplatform.mlp.cli import _image_cache_warning

    plan, cfg = _replan(project, "prod", lambda c: c["image_cache"].pop("credentials"))
    prefixes = {r.inputs["ecrRepositoryPrefix"] for r in plan.of_type(RULE)}
    assert prefixes == {"mlp-prod/ecr-public", "mlp-prod/k8s", "mlp-prod/quay"}
    images = _cluster_images(plan)
    assert versions.image("vllm") in images and versions.image("mlflow") in images
    assert any(i.startswith(f"{PROD_REGISTRY}/ecr-public/aws-cli/") for i in images)
    warning = _image_cache_warning(cfg)
    assert warning is not None
    assert versions.image("vllm") in warning and versions.image("mlflow") in warning
    assert versions.image("aws-cli") not in warning
    _, full = _replan(project, "prod", lambda c: None)
    assert _image_cache_warning(full) is None


def test_a_configured_prefix_names_the_rules_and_the_images(project: Project) -> None:
    plan, _ = _replan(project, "prod", lambda c: c["image_cache"].update(prefix="acme-ml"))
    prefixes = {r.inputs["ecrRepositoryPrefix"] for r in plan.of_type(RULE)}
    assert prefixes == {f"acme-ml/{u}" for u in documents.UPSTREAM_KEYS}
    assert all(i.startswith("444455556666.dkr.ecr.us-east-1.amazonaws.com/acme-ml/") for i in _cluster_images(plan))


def test_the_cache_can_be_turned_off_in_prod(project: Project) -> None:
    plan, _ = _replan(project, "prod", lambda c: c["image_cache"].update(enabled=False))
    assert not plan.of_type(RULE) and not _node_import_policies(plan)
    assert versions.image("vllm") in _cluster_images(plan)


@pytest.mark.parametrize(
    ("ref", "host", "path", "suffix"),
    [
        ("rayproject/ray:2.60.0-py311", "docker.io", "rayproject/ray", ":2.60.0-py311"),
        ("nginx", "docker.io", "library/nginx", ""),
        ("docker.io/envoyproxy/envoy:distroless-v1.39.0", "docker.io", "envoyproxy/envoy", ":distroless-v1.39.0"),
        ("localhost:5000/app:1", "localhost:5000", "app", ":1"),
        (
            "quay.io/jetstack/cert-manager-controller@sha256:" + "a" * 64,
            "quay.io",
            "jetstack/cert-manager-controller",
            "@sha256:" + "a" * 64,
        ),
    ],
)
def test_references_are_read_as_container_runtimes_read_them(ref: str, host: str, path: str, suffix: str) -> None:
    image = parse_image(ref)
    assert (image.host, image.path, image.suffix) == (host, path, suffix)


def test_cached_references_keep_tag_and_digest_and_skip_unsupported_registries() -> None:
    cache = ImageCache(base="111122223333.dkr.ecr.eu-west-1.amazonaws.com/p")
    digest = "sha256:" + "b" * 64
    assert (
        cached_image("nginx:1.27", cache)
        == "111122223333.dkr.ecr.eu-west-1.amazonaws.com/p/docker-hub/library/nginx:1.27"
    )
    assert cached_image(f"quay.io/a/b:1@{digest}", cache).endswith(f"/p/quay/a/b:1@{digest}")
    assert cached_image("nvcr.io/nvidia/k8s-device-plugin:v0.17.0", cache) == "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
    no_hub = ImageCache(base="r/p", upstreams=frozenset({"quay"}))
    assert cached_image("nginx:1.27", no_hub) == "nginx:1.27"
    assert cached_image("nginx:1.27", None) == "nginx:1.27"


def test_a_cloud_stack_without_the_registry_output_fails_with_what_to_do() -> None:
    from mlplatform.infra.registry.images import _present

    with pytest.raises(ValueError, match="run `pulumi up` for the cloud layer"):
        _present(None)
    assert _present("r/p") == "r/p"
    assert required_registry("r/p") is not None
