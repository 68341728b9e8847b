"""The evaluator of Kubernetes network policy that tests use: NetworkPolicy egress and ingress, and the Admin and
Baseline tiers of EKS ClusterNetworkPolicies. It lives in `mlp.network_policy` (the semantics and their sources
are written there) because `mlp isolation` prints the same reachability matrix the tests assert; this module keeps
the names tests import."""

from __future__ import annotations

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

__all__ = [
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
    "selector_matches",
    "tier_decision",
]
