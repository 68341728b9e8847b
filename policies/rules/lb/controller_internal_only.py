"""The AWS Load Balancer Controller makes internal load balancers only."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlplatform.policies.helpers import by_type, metadata_name
from mlplatform.policies.model import Resource, RuleContext, is_unknown, stack_rule

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE = "kubernetes:core/v1:Service"
INGRESS_CLASS_PARAMS = "kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams"
CHART = "aws-load-balancer-controller"
INTERNAL = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _chart(r: Resource) -> str:
    return str(r.inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]


def _controller_findings(values: Mapping[str, Any]) -> Iterator[str]:
    # A value unknown until apply (a Terraform set_sensitive, a preview's unknown output) is not judged.
    params = values.get("ingressClassParams")
    create = _mapping(params).get("create")
    spec = _mapping(params).get("spec")
    scheme = _mapping(spec).get("scheme")
    if not any(is_unknown(v) for v in (params, create, spec, scheme)) and not (create is True and scheme == "internal"):
        yield (
            "the controller's IngressClass does not fix the scheme: set ingressClassParams {create: true, spec: "
            "{scheme: internal}}"
        )
    if values.get("createIngressClassResource") is False:
        yield "createIngressClassResource is false: the IngressClass is not tied to the internal IngressClassParams"
    disable = values.get("disableIngressClassAnnotation")
    if not is_unknown(disable) and disable is not True:
        yield (
            "disableIngressClassAnnotation is not true: an Ingress with the kubernetes.io/ingress.class annotation "
            "bypasses the IngressClass and may ask for internet-facing"
        )
    default_scheme = values.get("defaultLoadBalancerScheme", "internal")
    if not is_unknown(default_scheme) and default_scheme != "internal":
        yield f"defaultLoadBalancerScheme is {default_scheme}"


@stack_rule(
    id="aws-lb-controller-internal-only",
    severity="critical",
    types=[RELEASE, INGRESS_CLASS_PARAMS, SERVICE],
    description="Where the stack installs the AWS Load Balancer Controller, every load balancer it makes is "
    "internal unless scoped otherwise: its IngressClass points at IngressClassParams with scheme internal (which "
    "the controller prefers to an Ingress's scheme annotation), the legacy ingress.class annotation is refused, "
    "Services default to internal; an internet-facing IngressClassParams names its namespaces "
    "(namespaceSelector); no planned Service of type LoadBalancer lacks the internal scheme annotation.",
    remediation="Set the chart values ingressClassParams {create: true, spec: {scheme: internal}}, "
    "createIngressClassResource: true, disableIngressClassAnnotation: true, defaultLoadBalancerScheme: internal "
    "(infra/ingress/documents.py controller_values); give an internet-facing IngressClassParams a "
    "namespaceSelector; annotate LoadBalancer Services with service.beta.kubernetes.io/aws-load-balancer-scheme: "
    "internal.",
    references=[
        "AWS Load Balancer Controller v3.5.0 docs: IngressClassParams (scheme, namespaceSelector)",
        "AWS Load Balancer Controller Helm chart values: disableIngressClassAnnotation, defaultLoadBalancerScheme",
        "CIS Amazon EKS Benchmark 5.4.3 (private nodes; same intent for load balancers)",
    ],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    controllers = [r for r in by_type(resources, RELEASE) if _chart(r) == CHART]
    for release in controllers:
        values = release.inputs.get("values")
        if is_unknown(values):
            continue
        for finding in _controller_findings(_mapping(values)):
            yield release, finding
    for params in by_type(resources, INGRESS_CLASS_PARAMS):
        spec = _mapping(params.inputs.get("spec"))
        if spec.get("scheme") == "internet-facing" and not spec.get("namespaceSelector"):
            yield (
                params,
                (
                    f"IngressClassParams {metadata_name(params)} is internet-facing for every namespace (no "
                    "namespaceSelector)"
                ),
            )
    if not controllers:
        return
    for service in by_type(resources, SERVICE):
        spec = _mapping(service.inputs.get("spec"))
        annotations = _mapping(_mapping(service.inputs.get("metadata")).get("annotations"))
        if spec.get("type") == "LoadBalancer" and not any(annotations.get(k) == v for k, v in INTERNAL.items()):
            yield (
                service,
                (
                    f"Service {metadata_name(service)} is of type LoadBalancer without "
                    "service.beta.kubernetes.io/aws-load-balancer-scheme: internal"
                ),
            )


RULE = check
