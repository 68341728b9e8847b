"""Every namespace the stack creates has a default-deny NetworkPolicy."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlplatform.policies.helpers import as_list, by_type, metadata_name, metadata_namespace
from mlplatform.policies.model import Resource, RuleContext, is_unknown, stack_rule

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def is_default_deny(spec: Any) -> bool:
    """`podSelector: {}` (every pod), both directions, and no rules: nothing is admitted but what other policies
    of the namespace add."""
    if not isinstance(spec, Mapping):
        return False
    selector = spec.get("podSelector")
    if not isinstance(selector, Mapping) or any(selector.get(k) for k in ("matchLabels", "matchExpressions")):
        return False
    types = {str(t) for t in as_list(spec.get("policyTypes"))}
    return types >= {"Ingress", "Egress"} and not as_list(spec.get("ingress")) and not as_list(spec.get("egress"))


@stack_rule(
    id="kubernetes-namespace-default-deny",
    severity="medium",
    types=[NAMESPACE, NETWORK_POLICY],
    description="Every namespace the stack creates has a default-deny NetworkPolicy (podSelector {}, policyTypes "
    "Ingress and Egress, no rules), so that its pods admit and send only what its other policies allow: an "
    "unauthenticated Prometheus, Alertmanager or model server is otherwise open to every pod of the cluster. "
    "kube-system is exempt (the platform does not create it; its add-ons are EKS's).",
    remediation="Create a NetworkPolicy named e.g. default-deny with spec {podSelector: {}, policyTypes: [Ingress, "
    "Egress]} in the namespace, then allow what its components need (scrapes, webhooks, the API server, DNS).",
    references=[
        "CIS Amazon EKS Benchmark 4.3.2 (all namespaces have network policies defined)",
        "Kubescape C-0206 (all namespaces have network policies defined)",
        "Kubernetes docs: Network Policies, default deny all ingress and all egress traffic",
    ],
    params={"exemptNamespaces": ["kube-system"]},
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    denied: set[str] = set()
    for policy in by_type(resources, NETWORK_POLICY):
        spec = policy.inputs.get("spec")
        if is_unknown(spec) or is_default_deny(spec):
            denied.add(metadata_namespace(policy))
    for namespace in by_type(resources, NAMESPACE):
        name = metadata_name(namespace)
        if name in ctx.params["exemptNamespaces"] or name in denied:
            continue
        yield (
            namespace,
            f"namespace {name} has no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress, no rules)",
        )


RULE = check
