"""The EKS cluster: control plane, IAM, access entries, pinned add-ons, system node group, Kubernetes provider; or
an existing cluster adopted (explicit values or a Terraform state), with only access entries attached."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.cluster import documents

if TYPE_CHECKING:
    from mlplatform.infra.cluster.adopted import AdoptedCluster, AdoptedClusterArgs
    from mlplatform.infra.cluster.component import AdminAccess, Cluster, ClusterArgs, SystemNodeGroupArgs

__all__ = [
    "AdminAccess",
    "AdoptedCluster",
    "AdoptedClusterArgs",
    "Cluster",
    "ClusterArgs",
    "SystemNodeGroupArgs",
    "documents",
]


def __getattr__(name: str) -> Any:
    if name in ("AdminAccess", "Cluster", "ClusterArgs", "SystemNodeGroupArgs"):
        from mlplatform.infra.cluster import component

        return getattr(component, name)
    if name in ("AdoptedCluster", "AdoptedClusterArgs"):
        from mlplatform.infra.cluster import adopted

        return getattr(adopted, name)
    raise AttributeError(name)
