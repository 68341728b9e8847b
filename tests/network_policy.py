"""The evaluator of Kubernetes network policy that tests use: NetworkPolicy egress and ingress, and the Admin and
Baseline tiers of EKS ClusterNetworkPolicies. It lives in `mlp.network_policy` (the semantics and their sources
are written there) because `mlp isolation` prints the same reachability matrix the tests assert; this module keeps
the names tests import."""

from __future__ import annotations

from typing import Any

from mlplatform.mlp.k8s_schema import object_of
from mlplatform.mlp.network_policy import (
    Decision,
    Destination,
    Pod,
    TierMatch,
    connection_allowed,
    connection_decision,
    egress_allowed,
    egress_decision,
    ingress_allowed,
    ingress_decision,
    selector_matches,
    tier_decision,
)
from mlplatform.mlp.planner import Plan

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CLUSTER_NETWORK_POLICY = "kubernetes:networking.k8s.aws/v1alpha1:ClusterNetworkPolicy"


def plan_policies(plan: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A plan's NetworkPolicies (those with a known spec) and its EKS ClusterNetworkPolicies (the admin tiers)."""
    network = [object_of(r) for r in plan.of_type(NETWORK_POLICY)]
    cluster = [object_of(r) for r in plan.of_type(CLUSTER_NETWORK_POLICY)]
    return [p for p in network if isinstance(p.get("spec"), dict)], cluster


def plan_namespace_labels(plan: Plan, name: str) -> dict[str, str]:
    """The labels a planned Namespace gets (empty when the plan does not create it)."""
    for r in plan.of_type("kubernetes:core/v1:Namespace"):
        meta = object_of(r)["metadata"]
        if meta["name"] == name:
            return dict(meta.get("labels", {}))
    return {}


__all__ = [
    "CLUSTER_NETWORK_POLICY",
    "NETWORK_POLICY",
    "Decision",
    "Destination",
    "Pod",
    "TierMatch",
    "connection_allowed",
    "connection_decision",
    "egress_allowed",
    "egress_decision",
    "ingress_allowed",
    "ingress_decision",
    "plan_namespace_labels",
    "plan_policies",
    "selector_matches",
    "tier_decision",
]
