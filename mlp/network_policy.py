"""An evaluator of Kubernetes network policy as the VPC CNI enforces it, so that tests and `mlp isolation` can ask
of rendered policies whether a pod may open a connection: NetworkPolicy (`networking.k8s.io/v1`), both
directions, and the Admin and Baseline tiers of EKS cluster network policies (`networking.k8s.aws/v1alpha1`
ClusterNetworkPolicy).

NetworkPolicy, as the field descriptions of the API at the pinned version state them (the `kubernetes` 35.0.0
client's V1NetworkPolicySpec, V1NetworkPolicyEgressRule, V1NetworkPolicyIngressRule, V1NetworkPolicyPeer,
V1NetworkPolicyPort, V1IPBlock; https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/,
read 2026-12-04):
- a policy applies to the pods of its namespace that its `podSelector` selects (`{}`: all of them);
- `policyTypes` defaults to `["Ingress"]`, plus `"Egress"` when the spec has `egress` rules;
- a pod that no policy of a direction selects is open in that direction; a selected pod admits only what the
  union of the selecting policies' rules allows (policies are additive, never subtractive);
- a rule allows a connection when one of its peers (`to` / `from`) matches the other end (none: every peer) and
  one of its `ports` matches the destination port (none: every port); a port entry's protocol defaults to TCP,
  `endPort` makes it a range; a named port matches nothing here (destinations carry numbers only);
- a peer is an `ipBlock` (the address is inside `cidr` and in none of `except`), or selectors: `podSelector`
  alone selects pods of the policy's namespace, `namespaceSelector` alone every pod of the selected namespaces,
  both together the selected pods of the selected namespaces. Selectors match pods only; an `ipBlock` is matched
  here against non-pod addresses only (for pod addresses the API leaves it to the implementation).

ClusterNetworkPolicy (`ADMIN_TIER_SOURCES`): policies of the Admin tier are evaluated before any NetworkPolicy,
those of the Baseline tier after them. Within a tier, policies whose `subject` selects the pod are taken by
`priority` (0-1000, lower first; equal priorities have no defined order: taken here by name) and their rules in
the order written; the first rule whose peers and ports match decides: `Accept` admits the connection in that
direction (no NetworkPolicy is consulted), `Deny` drops it, `Pass` skips the rest of the Admin tier and hands the
decision to the NetworkPolicies. Baseline rules decide only for a pod that no NetworkPolicy of that direction
selects (`Pass` there means: no verdict). Peers: `namespaces` (every pod of the selected namespaces), `pods`
(namespace and pod selector), `networks` (CIDRs, matched against non-pod addresses), `domainNames` (egress;
matched against a destination's `domain`). A pod-to-pod connection needs the source's egress and the
destination's ingress both admitted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ADMIN_TIER_SOURCES = (
    "aws/amazon-network-policy-controller-k8s v1.1.7 (ecc7e6a, 2026-05-18), config/crd/bases/"
    "networking.k8s.aws_clusternetworkpolicies.yaml (stored in mlp/data/crds): tiers Admin and Baseline, priority "
    "0-1000 lower = higher precedence, actions Accept/Deny/Pass, peers namespaces/pods/networks/domainNames",
    "Kubernetes enhancement KEP-2091 (AdminNetworkPolicy, kubernetes/enhancements keps/sig-network/"
    "2091-admin-network-policy) and the network-policy-api ClusterNetworkPolicy it became: the Admin tier is "
    "evaluated before NetworkPolicy, rules in order, first match wins, Pass delegates to NetworkPolicy, the "
    "Baseline tier applies where no NetworkPolicy isolates the pod",
)

Direction = Literal["Ingress", "Egress"]
Verdict = Literal["allowed", "denied"]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    """The namespace's labels; `kubernetes.io/metadata.name` is added as the API server does."""

    def all_namespace_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, "kubernetes.io/metadata.name": self.namespace}


@dataclass(frozen=True)
class Destination:
    port: int
    protocol: str = "TCP"
    address: str | None = None
    """An address outside the pod network (an endpoint's network interface, a node, the internet)."""
    pod: Pod | None = None
    domain: str | None = None
    """The name the pod resolved, for `domainNames` peers."""


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist) all hold;
    an empty selector matches everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def _in_network(address: str | None, cidr: str) -> bool:
    return address is not None and ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


# --- NetworkPolicy ---------------------------------------------------------------------------------------------


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    return list(spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"]))


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, address: str | None, pod: Pod | None) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if pod is not None or not _in_network(address, block["cidr"]):
            return False
        return not any(_in_network(address, e) for e in block.get("except") or [])
    if pod is None:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], pod.all_namespace_labels()):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), pod.labels)


def _port_matches(entry: Mapping[str, Any], port: int, protocol: str) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    value = entry.get("port")
    if value is None:
        return True
    if not isinstance(value, int):
        return False  # a named port
    return value <= port <= int(entry.get("endPort", value))


def _rule_allows(
    rule: Mapping[str, Any], peers_key: str, namespace: str, address: str | None, pod: Pod | None, dest: Destination
) -> bool:
    peers = rule.get(peers_key) or []
    ports = rule.get("ports") or []
    peer_ok = not peers or any(_peer_matches(p, namespace, address, pod) for p in peers)
    return peer_ok and (not ports or any(_port_matches(p, dest.port, dest.protocol) for p in ports))


def _selecting(policies: Iterable[Mapping[str, Any]], pod: Pod, direction: Direction) -> list[Mapping[str, Any]]:
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in _policy_types(p["spec"])
        and selector_matches(p["spec"].get("podSelector"), pod.labels)
    ]


def egress_isolated(policies: Iterable[Mapping[str, Any]], pod: Pod) -> bool:
    """Whether any NetworkPolicy selects `pod` for egress."""
    return bool(_selecting(policies, pod, "Egress"))


def egress_allowed(policies: Iterable[Mapping[str, Any]], pod: Pod, dest: Destination) -> bool:
    """Whether `pod` may open a connection to `dest` under these NetworkPolicy objects (any namespaces)."""
    selecting = _selecting(policies, pod, "Egress")
    if not selecting:
        return True
    return any(
        _rule_allows(rule, "to", p["metadata"]["namespace"], dest.address, dest.pod, dest)
        for p in selecting
        for rule in p["spec"].get("egress") or []
    )


def ingress_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Pod | None,
    pod: Pod,
    port: int,
    protocol: str = "TCP",
    *,
    address: str | None = None,
) -> bool:
    """Whether `pod` accepts a connection on `port` from `source` (a pod) or from `address` (outside the pod
    network) under these NetworkPolicy objects."""
    selecting = _selecting(policies, pod, "Ingress")
    if not selecting:
        return True
    dest = Destination(port, protocol, pod=pod)
    return any(
        _rule_allows(rule, "from", p["metadata"]["namespace"], address, source, dest)
        for p in selecting
        for rule in p["spec"].get("ingress") or []
    )


# --- ClusterNetworkPolicy (EKS): Admin and Baseline tiers -----------------------------------------------------

Action = Literal["Accept", "Deny", "Pass"]


@dataclass(frozen=True)
class TierMatch:
    """The rule of a ClusterNetworkPolicy that decided a connection in one direction."""

    policy: str
    rule: str
    action: Action


def _cnp_subject_selects(subject: Mapping[str, Any], pod: Pod) -> bool:
    if "namespaces" in subject:
        return selector_matches(subject["namespaces"], pod.all_namespace_labels())
    if "pods" in subject:
        pods = subject["pods"]
        return selector_matches(pods.get("namespaceSelector"), pod.all_namespace_labels()) and selector_matches(
            pods.get("podSelector"), pod.labels
        )
    return False


def _cnp_peer_matches(peer: Mapping[str, Any], address: str | None, pod: Pod | None, domain: str | None) -> bool:
    if "namespaces" in peer:
        return pod is not None and selector_matches(peer["namespaces"], pod.all_namespace_labels())
    if "pods" in peer:
        pods = peer["pods"]
        return (
            pod is not None
            and selector_matches(pods.get("namespaceSelector"), pod.all_namespace_labels())
            and selector_matches(pods.get("podSelector"), pod.labels)
        )
    if "networks" in peer:
        return pod is None and any(_in_network(address, cidr) for cidr in peer["networks"])
    if "domainNames" in peer:
        return domain is not None and any(_domain_matches(d, domain) for d in peer["domainNames"])
    return False  # an unknown peer: the CRD says fail closed, which for a rule means it never matches here


def _domain_matches(pattern: str, domain: str) -> bool:
    pattern, domain = pattern.rstrip(".").lower(), domain.rstrip(".").lower()
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return domain.endswith(suffix) and len(domain) > len(suffix)
    return pattern == domain


def _cnp_port_matches(entry: Mapping[str, Any], port: int, protocol: str) -> bool:
    if "portNumber" in entry:
        number = entry["portNumber"]
        return bool(number.get("protocol", "TCP") == protocol and int(number["port"]) == port)
    if "portRange" in entry:
        span = entry["portRange"]
        return bool(span.get("protocol", "TCP") == protocol and int(span["start"]) <= port <= int(span["end"]))
    return False  # a named port: destinations carry numbers only


def tier_decision(
    cluster_policies: Iterable[Mapping[str, Any]],
    tier: str,
    direction: Direction,
    subject: Pod,
    *,
    port: int,
    protocol: str = "TCP",
    peer_pod: Pod | None = None,
    peer_address: str | None = None,
    peer_domain: str | None = None,
) -> TierMatch | None:
    """The first rule of the `tier`'s ClusterNetworkPolicies selecting `subject` that matches the other end of
    the connection (`peer_*`) and the destination port, in priority order; None when no rule matches."""
    applying = sorted(
        (
            p
            for p in cluster_policies
            if p["spec"].get("tier") == tier and _cnp_subject_selects(p["spec"].get("subject") or {}, subject)
        ),
        key=lambda p: (int(p["spec"].get("priority", 0)), p["metadata"]["name"]),
    )
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in applying:
        for i, rule in enumerate(policy["spec"].get(key) or []):
            ports = rule.get("ports")
            if ports and not any(_cnp_port_matches(p, port, protocol) for p in ports):
                continue
            if any(_cnp_peer_matches(p, peer_address, peer_pod, peer_domain) for p in rule.get(peers_key) or []):
                return TierMatch(
                    policy=policy["metadata"]["name"], rule=str(rule.get("name", i)), action=rule["action"]
                )
    return None


@dataclass(frozen=True)
class Decision:
    """The verdict on one direction of a connection and what decided it."""

    allowed: bool
    by: str
    """`admin <policy>/<rule>: <action>`, `network policies`, `baseline <policy>/<rule>: <action>`, `open`."""


def _decide(
    network_policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]],
    direction: Direction,
    subject: Pod,
    *,
    port: int,
    protocol: str,
    peer_pod: Pod | None,
    peer_address: str | None,
    peer_domain: str | None,
    netpol_allows: bool,
) -> Decision:
    def tier(name: str) -> TierMatch | None:
        return tier_decision(
            cluster_policies,
            name,
            direction,
            subject,
            port=port,
            protocol=protocol,
            peer_pod=peer_pod,
            peer_address=peer_address,
            peer_domain=peer_domain,
        )

    admin = tier("Admin")
    if admin is not None and admin.action != "Pass":
        return Decision(admin.action == "Accept", f"admin {admin.policy}/{admin.rule}: {admin.action}")
    if _selecting(network_policies, subject, direction):
        return Decision(netpol_allows, "network policies")
    baseline = tier("Baseline")
    if baseline is not None and baseline.action != "Pass":
        return Decision(baseline.action == "Accept", f"baseline {baseline.policy}/{baseline.rule}: {baseline.action}")
    return Decision(True, "open")


def egress_decision(
    network_policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]],
    pod: Pod,
    dest: Destination,
) -> Decision:
    """Whether `pod` may send to `dest`: the Admin tier, then NetworkPolicies, then the Baseline tier."""
    return _decide(
        network_policies,
        cluster_policies,
        "Egress",
        pod,
        port=dest.port,
        protocol=dest.protocol,
        peer_pod=dest.pod,
        peer_address=dest.address,
        peer_domain=dest.domain,
        netpol_allows=egress_allowed(network_policies, pod, dest),
    )


def ingress_decision(
    network_policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]],
    source: Pod | None,
    pod: Pod,
    port: int,
    protocol: str = "TCP",
    *,
    address: str | None = None,
) -> Decision:
    """Whether `pod` accepts a connection on `port` from `source` (or from `address`)."""
    return _decide(
        network_policies,
        cluster_policies,
        "Ingress",
        pod,
        port=port,
        protocol=protocol,
        peer_pod=source,
        peer_address=address,
        peer_domain=None,
        netpol_allows=ingress_allowed(network_policies, source, pod, port, protocol, address=address),
    )


def connection_decision(
    network_policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]],
    source: Pod,
    dest: Destination,
) -> tuple[Decision, Decision | None]:
    """The source's egress decision and, for a pod destination, the destination's ingress decision (both must
    admit the connection)."""
    egress = egress_decision(network_policies, cluster_policies, source, dest)
    if dest.pod is None:
        return egress, None
    ingress = ingress_decision(network_policies, cluster_policies, source, dest.pod, dest.port, dest.protocol)
    return egress, ingress


def connection_allowed(
    network_policies: Sequence[Mapping[str, Any]],
    cluster_policies: Sequence[Mapping[str, Any]],
    source: Pod,
    dest: Destination,
) -> bool:
    egress, ingress = connection_decision(network_policies, cluster_policies, source, dest)
    return egress.allowed and (ingress is None or ingress.allowed)
