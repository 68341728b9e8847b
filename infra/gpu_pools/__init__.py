"""GPU node pools: Karpenter NodePools/EC2NodeClasses, reserved-capacity node groups, NVIDIA device plugin.

`GpuPoolsCloud` is the AWS side (cloud layer), `GpuNodePools` the Kubernetes side (cluster layer). The pure
builders (`documents`) import no SDK; the components load on first use.
"""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.gpu_pools import documents
from mlplatform.infra.gpu_pools.documents import GeneralPoolSpec, PoolSpec

if TYPE_CHECKING:
    from mlplatform.infra.gpu_pools.cloud import GpuPoolsCloud, GpuPoolsCloudArgs
    from mlplatform.infra.gpu_pools.component import GpuNodePools, GpuNodePoolsArgs

__all__ = [
    "GeneralPoolSpec",
    "GpuNodePools",
    "GpuNodePoolsArgs",
    "GpuPoolsCloud",
    "GpuPoolsCloudArgs",
    "PoolSpec",
    "documents",
]


def __getattr__(name: str) -> Any:
    if name in ("GpuNodePools", "GpuNodePoolsArgs"):
        from mlplatform.infra.gpu_pools import component

        return getattr(component, name)
    if name in ("GpuPoolsCloud", "GpuPoolsCloudArgs"):
        from mlplatform.infra.gpu_pools import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
