"""The image cache's pure side: which upstream registries an ECR pull-through cache rule can mirror, how an image
reference becomes its cached reference, the chart values that point each chart's images at the cache, and the IAM
documents (node roles' first-pull import, the repository creation template's role).

Upstreams an ECR pull-through cache rule supports (AWS ECR User Guide, "Sync an upstream registry with an Amazon
ECR private registry", docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html, read 2026-12-04):
Amazon ECR Public, the Kubernetes registry and Quay need no authentication; Docker Hub, GitHub Container Registry,
GitLab, Azure and Chainguard need a Secrets Manager secret whose name begins with `ecr-pullthroughcache/`, in the
rule's account and region (pull-through-cache-creating-rule.html). NVIDIA's nvcr.io and Fluent Bit's
cr.fluentbit.io are not supported upstreams: their images keep their public reference (`UNSUPPORTED_HOSTS`).

A cached image is `<account>.dkr.ecr.<region>.amazonaws.com/<stack prefix>/<upstream>/<repository>:<tag>`; the
first pull of a tag makes ECR create the repository (from the creation template) and import the image, with the
pulling principal's `ecr:CreateRepository` and `ecr:BatchImportUpstreamImage` (pull-through-cache-iam.html).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pulumi

    ImageRef = pulumi.Input[str]
    """An image reference: a plain string, or an Output when it names the cache's registry (a stack output)."""


@dataclass(frozen=True)
class Upstream:
    key: str
    """The last part of the cache rule's repository prefix (`<stack prefix>/<key>`), and the config key of its
    credentials."""
    url: str
    """The rule's `upstreamRegistryUrl` (CreatePullThroughCacheRule API reference)."""
    hosts: tuple[str, ...]
    """Registry hosts of image references this upstream serves."""
    needs_credentials: bool
    title: str


UPSTREAMS: Final[tuple[Upstream, ...]] = (
    Upstream("ecr-public", "public.ecr.aws", ("public.ecr.aws",), False, "Amazon ECR Public"),
    Upstream("k8s", "registry.k8s.io", ("registry.k8s.io",), False, "Kubernetes registry"),
    Upstream("quay", "quay.io", ("quay.io",), False, "Quay"),
    Upstream("docker-hub", "registry-1.docker.io", ("docker.io", "registry-1.docker.io"), True, "Docker Hub"),
    Upstream("ghcr", "ghcr.io", ("ghcr.io",), True, "GitHub Container Registry"),
)
UPSTREAM_KEYS: Final[tuple[str, ...]] = tuple(u.key for u in UPSTREAMS)
CREDENTIAL_UPSTREAMS: Final[tuple[str, ...]] = tuple(u.key for u in UPSTREAMS if u.needs_credentials)

UNSUPPORTED_HOSTS: Final[Mapping[str, str]] = {
    "nvcr.io": "NVIDIA NGC is not an upstream ECR pull-through cache supports",
    "cr.fluentbit.io": "Fluent Bit's own registry is not an upstream ECR pull-through cache supports",
}

MAX_RULE_PREFIX: Final = 30
"""`ecrRepositoryPrefix` is 2 to 30 characters (CreatePullThroughCacheRule API reference)."""
PREFIX_PATTERN: Final = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
"""One component of the ECR repository prefix pattern `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*...`."""


@dataclass(frozen=True)
class ImageName:
    host: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_image(ref: str) -> ImageName:
    """Split an image reference as container runtimes read it: the first part is a registry host when it has a
    dot or a port (or is localhost); otherwise the image is on Docker Hub, whose single-name images are
    `library/<name>`."""
    rest, _, digest = ref.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first, remainder
    else:
        host, path = "docker.io", rest
    name, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if not colon:
        name = path
    if host in ("docker.io", "registry-1.docker.io") and "/" not in name:
        name = f"library/{name}"
    return ImageName(host=host, path=name, tag=tag or None, digest=digest or None)


def upstream_of(ref: str) -> Upstream | None:
    host = parse_image(ref).host
    return next((u for u in UPSTREAMS if host in u.hosts), None)


@dataclass(frozen=True)
class ImageCache:
    """Where the cluster layer pulls images from: the account's private registry under the stack's repository
    prefix, and the upstreams that have a rule (those needing credentials only when config names a secret)."""

    base: pulumi.Input[str]
    """`<account>.dkr.ecr.<region>.amazonaws.com/<prefix>`: the cloud layer's `image_registry` output."""
    upstreams: frozenset[str] = field(default_factory=lambda: frozenset(UPSTREAM_KEYS))

    def caches(self, ref: str) -> bool:
        upstream = upstream_of(ref)
        return upstream is not None and upstream.key in self.upstreams


def cached_upstreams(credentials: Collection[str]) -> list[str]:
    """Upstreams that get a rule: those needing no credentials, and those config names a secret for."""
    return [u.key for u in UPSTREAMS if not u.needs_credentials or u.key in credentials]


PULLED_IMAGES: Final[tuple[str, ...]] = (
    "pause",
    "mlflow",
    "ray",
    "ray-gpu",
    "vllm",
    "envoy-gateway",
    "envoy-proxy",
    "aws-cli",
)
"""The catalog's images the cluster pulls (`codebuild` is CodeBuild's curated image, pulled by CodeBuild)."""


def uncached_images(refs: Sequence[str], credentials: Collection[str]) -> list[str]:
    """Of `refs`, those from an upstream that needs credentials config does not name: they keep their public
    reference, pulled through the NAT addresses."""
    cached = set(cached_upstreams(credentials))
    out = []
    for ref in refs:
        upstream = upstream_of(ref)
        if upstream is not None and upstream.needs_credentials and upstream.key not in cached:
            out.append(ref)
    return sorted(set(out))


def rule_prefix(prefix: str, upstream: str) -> str:
    """A cache rule's (and its creation template's) repository prefix: `mlp-prod/quay`."""
    return f"{prefix}/{upstream}"


def _join(*parts: pulumi.Input[str]) -> ImageRef:
    if all(isinstance(p, str) for p in parts):
        return "".join(str(p) for p in parts)
    import pulumi

    return pulumi.Output.concat(*parts)


def cached_repository(ref: str, cache: ImageCache | None) -> ImageRef:
    """The repository of `ref` (no tag or digest) in the cache, or upstream's when the cache does not mirror it."""
    image = parse_image(ref)
    upstream = upstream_of(ref)
    if cache is None or upstream is None or upstream.key not in cache.upstreams:
        return ref.partition("@")[0].rsplit(":", 1)[0] if image.tag else ref.partition("@")[0]
    return _join(cache.base, f"/{upstream.key}/{image.path}")


def cached_registry(upstream: str, cache: ImageCache | None, default: str) -> ImageRef:
    """What a chart's `registry` value becomes for images of `upstream` (`default`, the chart's, when uncached)."""
    if cache is None or upstream not in cache.upstreams:
        return default
    return _join(cache.base, f"/{upstream}")


def cached_image(ref: str, cache: ImageCache | None) -> ImageRef:
    """`ref` pulled through the cache (`<registry>/<prefix>/<upstream>/<repository>:<tag>[@digest]`), or `ref`
    itself when there is no cache or its upstream has no rule (no credentials for it, or unsupported)."""
    if cache is None or not cache.caches(ref):
        return ref
    return _join(cached_repository(ref, cache), parse_image(ref).suffix)


# --- charts -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartImage:
    """One image a chart runs by default, and the values key that moves it (read in the chart at its pin)."""

    image: str
    """The chart's default (its repository; the tag stays the chart's unless the platform sets one)."""
    key: tuple[str, ...]
    """The values path to set."""
    form: str
    """`repository`: the key takes `<registry>/<repository>`; `registry`: the key takes the registry alone (the
    chart joins its own repository to it)."""
    source: str


@dataclass(frozen=True)
class ChartException:
    image: str
    reason: str


CHART_IMAGES: Final[Mapping[str, tuple[ChartImage, ...]]] = {
    "cert-manager": (
        ChartImage(
            "quay.io/jetstack/cert-manager-controller",
            ("imageRegistry",),
            "registry",
            "cert-manager v1.21.1 values.yaml: `imageRegistry` (default quay.io) + `imageNamespace` (jetstack) + "
            "each part's `image.name` build the controller, webhook, cainjector, acmesolver and startupapicheck "
            "images (mlp/data/charts/cert-manager-v1.21.1, checked against its values.schema.json by the planner)",
        ),
    ),
    "karpenter": (
        ChartImage(
            "public.ecr.aws/karpenter/controller",
            ("controller", "image", "repository"),
            "repository",
            "aws/karpenter-provider-aws charts/karpenter/values.yaml: `controller.image.repository` (default "
            "public.ecr.aws/karpenter/controller), `tag` and `digest` left to the chart (its release pins both)",
        ),
    ),
    "kuberay-operator": (
        ChartImage(
            "quay.io/kuberay/operator",
            ("image", "repository"),
            "repository",
            "ray-project/kuberay helm-chart/kuberay-operator/values.yaml: `image.repository` (default "
            "quay.io/kuberay/operator), the release's `image.tag` left to the chart",
        ),
    ),
}
"""Charts whose image keys were read in the chart's values; the overlay sets only those keys."""

CHART_EXCEPTIONS: Final[Mapping[str, tuple[ChartException, ...]]] = {
    "nvidia-device-plugin": (ChartException("nvcr.io/nvidia/k8s-device-plugin", UNSUPPORTED_HOSTS["nvcr.io"]),),
    "aws-efa-k8s-device-plugin": (
        ChartException(
            "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin",
            "EKS's own private ECR registry (the chart's pinned image): not an upstream this stack's cache rules "
            "name; the nodes pull it from us-west-2 with their node role",
        ),
    ),
    "dcgm-exporter": (ChartException("nvcr.io/nvidia/k8s/dcgm-exporter", UNSUPPORTED_HOSTS["nvcr.io"]),),
    "fluent-bit": (ChartException("cr.fluentbit.io/fluent/fluent-bit", UNSUPPORTED_HOSTS["cr.fluentbit.io"]),),
    "aws-load-balancer-controller": (
        ChartException(
            "public.ecr.aws/eks/aws-load-balancer-controller",
            "image key not read at the pinned chart version (3.5.0) here: left at the chart's default",
        ),
    ),
    "keda": (
        ChartException(
            "ghcr.io/kedacore/keda, keda-metrics-apiserver, keda-admission-webhooks",
            "image keys not read at the pinned chart version (2.20.2) here: left at the chart's defaults",
        ),
    ),
    "kserve-resources": (
        ChartException(
            "kserve/kserve-controller, kserve/agent, kserve/storage-initializer, kserve/router",
            "image keys not read at the pinned chart version (v0.20.0) here: left at the chart's defaults",
        ),
    ),
    "kserve-runtime-configs": (
        ChartException(
            "the ClusterServingRuntimes' server images",
            "pulled only by an InferenceService that uses that runtime; keys not read at v0.20.0 here",
        ),
    ),
    "kube-prometheus-stack": (
        ChartException(
            "Prometheus, Alertmanager, the operator and its config reloader (quay.io), kube-state-metrics and the "
            "webhook cert job (registry.k8s.io), Grafana (docker.io) and its sidecar (quay.io), node-exporter "
            "(quay.io)",
            "per-image registry keys not read at the pinned chart version (88.5.3) and its subcharts here: left "
            "at the chart's defaults",
        ),
    ),
}
"""Images the platform's charts run that the cache does not serve yet, with the reason. `gateway-helm` is not
here: its controller image is set through `global.images.envoyGateway.image` (`infra.serving.routing`)."""


def _nest(key: Sequence[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {key[-1]: value}
    for part in reversed(key[:-1]):
        out = {part: out}
    return out


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`overlay` over `base`, mappings merged key by key (as Helm merges values)."""
    out = dict(base)
    for key, value in overlay.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out


def chart_image_values(chart_key: str, cache: ImageCache | None) -> dict[str, Any]:
    """The values that point a chart's default images at the cache (empty without a cache, for a chart with no
    known keys, or when none of its upstreams is cached)."""
    values: dict[str, Any] = {}
    for item in CHART_IMAGES.get(chart_key, ()):
        if cache is None or not cache.caches(item.image):
            continue
        upstream = upstream_of(item.image)
        assert upstream is not None
        if item.form == "registry":
            value = cached_registry(upstream.key, cache, parse_image(item.image).host)
        else:
            value = cached_repository(item.image, cache)
        values = deep_merge(values, _nest(item.key, value))
    return values


# --- IAM --------------------------------------------------------------------------------------------------------


def repository_arns(partition: str, region: str, account_id: str, prefix: str, upstreams: Sequence[str]) -> list[str]:
    return [
        f"arn:{partition}:ecr:{region}:{account_id}:repository/{rule_prefix(prefix, u)}/*" for u in sorted(upstreams)
    ]


IMPORT_ACTIONS: Final[tuple[str, ...]] = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")
"""What the principal that pulls an image first needs, beyond pulling (pull-through-cache-iam.html)."""


def node_import_policy(partition: str, region: str, account_id: str, prefix: str, upstreams: Sequence[str]) -> str:
    """Node roles (the kubelet pulls with them) may create the cache's repositories and import upstream images into
    them: only under the stack's rule prefixes. Pulling itself comes from AmazonEC2ContainerRegistryPullOnly."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PullThroughCacheImport",
                    "Effect": "Allow",
                    "Action": list(IMPORT_ACTIONS),
                    "Resource": repository_arns(partition, region, account_id, prefix, upstreams),
                }
            ],
        },
        sort_keys=True,
    )


def template_role_policy(
    partition: str, region: str, account_id: str, prefix: str, upstreams: Sequence[str], key_arn: str
) -> str:
    """The role ECR assumes to create a cache repository from a template that sets a KMS key and tags: the
    actions of AWS's policy for repository creation templates (repository-creation-templates-custom.html, read
    2026-12-04), scoped to the stack's prefixes and key (no `ecr:ReplicateImage`: the templates apply to pull-through
    cache only)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CreateCacheRepositories",
                    "Effect": "Allow",
                    "Action": ["ecr:CreateRepository", "ecr:TagResource"],
                    "Resource": repository_arns(partition, region, account_id, prefix, upstreams),
                },
                {
                    "Sid": "EncryptWithTheImagesKey",
                    "Effect": "Allow",
                    "Action": ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"],
                    "Resource": key_arn,
                },
            ],
        },
        sort_keys=True,
    )


UNTAGGED_EXPIRY_DAYS: Final = 14


def lifecycle_policy() -> str:
    """Images a tag no longer names (an upstream moved the tag; ECR re-syncs cached tags at least daily) expire
    after two weeks, so storage holds what the pins name."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"expire untagged images after {UNTAGGED_EXPIRY_DAYS} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": UNTAGGED_EXPIRY_DAYS,
                    },
                    "action": {"type": "expire"},
                }
            ]
        },
        sort_keys=True,
    )


def registry_host(account_id: str, region: str, partition: str) -> str:
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"{account_id}.dkr.ecr.{region}.{suffix}"
