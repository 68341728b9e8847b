"""A small evaluator of Kubernetes NetworkPolicy egress (networking.k8s.io/v1), as the API documents it, so that
tests can ask of rendered policies whether a pod may open a connection.

Semantics, as the field descriptions of the API at the pinned version state them (the `kubernetes` 35.0.0
client's V1NetworkPolicySpec, V1NetworkPolicyEgressRule, V1NetworkPolicyPeer, V1NetworkPolicyPort, V1IPBlock;
https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/, read 2026-12-04):
- a policy applies to the pods of its namespace that its `podSelector` selects (`{}`: all of them);
- `policyTypes` defaults to `["Ingress"]`, plus `"Egress"` when the spec has `egress` rules;
- a pod that no Egress policy selects may send anywhere; a selected pod may send only what the union of the
  selecting policies' egress rules allows (policies are additive, never subtractive);
- a rule allows a connection when one of its `to` peers matches the destination (no `to`: every destination) and
  one of its `ports` matches (no `ports`: every port); a port entry's protocol defaults to TCP, `endPort` makes it
  a range; a named port matches nothing here (destinations carry numbers only);
- a peer is an `ipBlock` (the address is inside `cidr` and in none of `except`), or selectors: `podSelector`
  alone selects pods of the policy's namespace, `namespaceSelector` alone every pod of the selected namespaces,
  both together the selected pods of the selected namespaces. Selectors match pods only; an `ipBlock` is matched
  here against non-pod destinations only (for pod addresses the API leaves it to the implementation).

Only egress is evaluated: the destinations that matter here (AWS endpoints, other VPC addresses) are not pods.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


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


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    return list(spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"]))


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, dest: Destination) -> bool:
    if "ipBlock" in peer:
        if dest.address is None:
            return False
        address = ipaddress.ip_address(dest.address)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
    if dest.pod is None:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], dest.pod.all_namespace_labels()):
            return False
    elif dest.pod.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), dest.pod.labels)


def _port_matches(entry: Mapping[str, Any], dest: Destination) -> bool:
    if entry.get("protocol", "TCP") != dest.protocol:
        return False
    port = entry.get("port")
    if port is None:
        return True
    if not isinstance(port, int):
        return False  # a named port
    return port <= dest.port <= int(entry.get("endPort", port))


def _rule_allows(rule: Mapping[str, Any], policy_namespace: str, dest: Destination) -> bool:
    peers = rule.get("to") or []
    ports = rule.get("ports") or []
    to_ok = not peers or any(_peer_matches(p, policy_namespace, dest) for p in peers)
    return to_ok and (not ports or any(_port_matches(p, dest) for p in ports))


def egress_allowed(policies: Iterable[Mapping[str, Any]], pod: Pod, dest: Destination) -> bool:
    """Whether `pod` may open a connection to `dest` under these NetworkPolicy objects (any namespaces)."""
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and "Egress" in _policy_types(p["spec"])
        and selector_matches(p["spec"].get("podSelector"), pod.labels)
    ]
    if not selecting:
        return True
    rules = [(rule, p["metadata"]["namespace"]) for p in selecting for rule in p["spec"].get("egress") or []]
    return any(_rule_allows(rule, namespace, dest) for rule, namespace in rules)
