"""Creates a platform namespace's NetworkPolicies (`infra.platform_policies`) under the caller's component: one
object per policy, its spec an Output when it names addresses only the cloud layer knows."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

# A module import: the domains' packages import their components, which import this module, while
# `infra.platform_policies` (which imports the domains' documents) may still be initializing.
from mlplatform.infra import platform_policies

if TYPE_CHECKING:
    from mlplatform.infra.platform_policies import ClusterAddresses

Build = Callable[["ClusterAddresses"], list[dict[str, Any]]]


def network_policies(
    prefix: str,
    build: Build,
    addresses: pulumi.Input[ClusterAddresses],
    namespace: pulumi.Resource,
    parent: pulumi.Resource,
) -> list[k8s.networking.v1.NetworkPolicy]:
    """`build`'s policies, each `<prefix>-<policy name>`, inside `namespace`. The set of policies (their names and
    metadata) never depends on the addresses, so the objects are known at preview; only their specs wait for the
    cloud layer's outputs."""
    skeleton = build(platform_policies.ClusterAddresses())
    names = [p["metadata"]["name"] for p in skeleton]
    rendered = pulumi.Output.from_input(addresses).apply(lambda a: _same_names(build(a), names))
    opts = pulumi.ResourceOptions(parent=parent, depends_on=[namespace])
    return [
        k8s.networking.v1.NetworkPolicy(
            f"{prefix}-{policy['metadata']['name']}",
            metadata=policy["metadata"],
            spec=rendered.apply(functools.partial(_spec, i)),
            opts=opts,
        )
        for i, policy in enumerate(skeleton)
    ]


def _spec(index: int, policies: list[dict[str, Any]]) -> Any:
    return policies[index]["spec"]


def _same_names(policies: list[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    got = [p["metadata"]["name"] for p in policies]
    if got != list(names):  # pragma: no cover - a builder bug
        raise ValueError(f"network policies changed with the addresses: {got} != {list(names)}")
    return policies


def database_guard_resource(
    name: str, addresses: pulumi.Input[ClusterAddresses], labels: dict[str, str], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """`infra.platform_policies.database_guard` as a cluster-scoped object."""
    guard = platform_policies.database_guard(platform_policies.ClusterAddresses(), labels)
    spec = pulumi.Output.from_input(addresses).apply(lambda a: platform_policies.database_guard(a, labels)["spec"])
    return k8s.apiextensions.CustomResource(
        name, api_version=guard["apiVersion"], kind=guard["kind"], metadata=guard["metadata"], spec=spec, opts=opts
    )
