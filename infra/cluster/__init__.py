"""The EKS cluster: control plane, IAM, access entries, pinned add-ons, system node group, Kubernetes provider."""

from typing import TYPE_CHECKING, Any

from infra.cluster import documents

if TYPE_CHECKING:
    from infra.cluster.component import AdminAccess, Cluster, ClusterArgs, SystemNodeGroupArgs

__all__ = ["AdminAccess", "Cluster", "ClusterArgs", "SystemNodeGroupArgs", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("AdminAccess", "Cluster", "ClusterArgs", "SystemNodeGroupArgs"):
        from infra.cluster import component

        return getattr(component, name)
    raise AttributeError(name)
