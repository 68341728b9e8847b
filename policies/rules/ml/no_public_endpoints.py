"""MLflow, the Ray dashboard, Grafana, Prometheus and the models' Gateway are never exposed to the internet."""

from collections.abc import Iterator, Mapping
from typing import Any

from mlplatform.policies.model import Resource, RuleContext, contains_unknown, is_unknown, resource_rule

INTERNAL_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
}


def _annotations(r: Resource) -> Mapping[str, Any]:
    meta = r.inputs.get("metadata")
    found = meta.get("annotations") if isinstance(meta, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


ENVOY_GATEWAY_CHART = "gateway-helm"
ENVOY_SERVICE_PATH = ("config", "envoyGateway", "envoyProxy", "provider", "kubernetes", "envoyService")
"""Where Envoy Gateway's controller configuration sets the default Service of every Gateway's proxies."""


def _chart_name(r: Resource) -> str:
    return str(r.inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]


def _unknown_along(values: Any, path: tuple[str, ...]) -> bool:
    """Whether the values, or a value on the way to the Envoy Service's settings, are unknown (a Terraform
    `set_sensitive` or a value known after apply): the default cannot be told then."""
    node = values
    for key in (*path, "type"):
        if is_unknown(node):
            return True
        if not isinstance(node, Mapping):
            return False
        node = node.get(key)
    return is_unknown(node)


def _envoy_gateway_default(values: Any) -> Iterator[str]:
    """Envoy Gateway (v1.x) gives each Gateway's proxies a LoadBalancer Service unless told otherwise
    (`KubernetesServiceSpec.Type`, default LoadBalancer): an AWS load balancer per Gateway, internet-facing when
    EKS's legacy cloud provider makes it (its default scheme), the case where no load balancer controller takes it."""
    service: Any = values
    for key in ENVOY_SERVICE_PATH:
        service = _mapping(service).get(key)
    service = _mapping(service)
    annotations = _mapping(service.get("annotations"))
    internal = any(annotations.get(k) == v for k, v in INTERNAL_ANNOTATIONS.items())
    if service.get("type", "LoadBalancer") == "LoadBalancer" and not internal:
        where, kind = ".".join(ENVOY_SERVICE_PATH), service.get("type", "unset (LoadBalancer)")
        yield f"{where}.type is {kind}: every Gateway gets a load balancer"


def _helm_exposures(values: Any, path: str = "") -> Iterator[str]:
    """Public service types or internet-facing ingresses anywhere in a chart's values (`service`, `envoyService`)."""
    if isinstance(values, Mapping):
        load_balancer = path.lower().endswith("service") and values.get("type") == "LoadBalancer"
        ingress = path.endswith("ingress") and values.get("enabled") is True
        # Annotations known only after apply: whether the scheme is internal cannot be told yet.
        if (load_balancer or ingress) and not contains_unknown(values.get("annotations")):
            annotations = _mapping(values.get("annotations"))
            if load_balancer and not any(annotations.get(k) == v for k, v in INTERNAL_ANNOTATIONS.items()):
                yield f"{path}.type is LoadBalancer without an internal scheme"
            if ingress and annotations.get("alb.ingress.kubernetes.io/scheme") != "internal":
                yield f"{path} is enabled without alb.ingress.kubernetes.io/scheme: internal"
        for key, value in values.items():
            yield from _helm_exposures(value, f"{path}.{key}" if path else str(key))


@resource_rule(
    id="mlp-no-public-ml-endpoints",
    severity="critical",
    types=["kubernetes:core/v1:Service", "kubernetes:networking.k8s.io/v1:Ingress", "kubernetes:helm.sh/v3:Release"],
    description="Services of type LoadBalancer and Ingresses are internal (MLflow, the Ray dashboard, Grafana and "
    "Prometheus hold credentials and data, the models' Gateway serves every model); charts are not configured to "
    "expose them either, Envoy Gateway's default LoadBalancer proxies included.",
    remediation='Annotate load balancer Services with aws-load-balancer-scheme "internal" and ALB Ingresses with '
    "alb.ingress.kubernetes.io/scheme: internal (Envoy Gateway: envoyService.type ClusterIP in its default "
    "EnvoyProxy); reach them over the VPN or kubectl port-forward.",
    references=["CIS Amazon EKS Benchmark 5.4.3 (private nodes; same intent for services)"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.type == "kubernetes:core/v1:Service":
        spec = r.inputs.get("spec")
        if isinstance(spec, Mapping) and spec.get("type") == "LoadBalancer":
            annotations = _annotations(r)
            if not any(annotations.get(k) == v for k, v in INTERNAL_ANNOTATIONS.items()):
                yield "the Service is an internet-facing load balancer"
    elif r.type == "kubernetes:networking.k8s.io/v1:Ingress":
        if _annotations(r).get("alb.ingress.kubernetes.io/scheme") != "internal":
            yield "the Ingress is internet-facing (alb.ingress.kubernetes.io/scheme is not internal)"
    else:
        values = r.inputs.get("values")
        exposures = list(_helm_exposures(values))
        if _chart_name(r) == ENVOY_GATEWAY_CHART and not _unknown_along(values, ENVOY_SERVICE_PATH):
            exposures = [e for e in exposures if not e.startswith(".".join(ENVOY_SERVICE_PATH))]
            exposures += _envoy_gateway_default(values)
        for exposure in exposures:
            yield f"chart values expose a service: {exposure}"


RULE = check
