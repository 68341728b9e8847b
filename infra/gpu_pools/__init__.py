"""GPU node pools: Karpenter NodePools/EC2NodeClasses, reserved-capacity node groups, NVIDIA device plugin.

The pure builders (`documents`) import no SDK; the component loads on first use.
"""

from typing import TYPE_CHECKING, Any

from infra.gpu_pools import documents
from infra.gpu_pools.documents import GeneralPoolSpec, PoolSpec

if TYPE_CHECKING:
    from infra.gpu_pools.component import GpuNodePools, GpuNodePoolsArgs

__all__ = ["GeneralPoolSpec", "GpuNodePools", "GpuNodePoolsArgs", "PoolSpec", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("GpuNodePools", "GpuNodePoolsArgs"):
        from infra.gpu_pools import component

        return getattr(component, name)
    raise AttributeError(name)
