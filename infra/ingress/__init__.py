"""The AWS Load Balancer Controller: internal ALBs for the platform's ingresses. The pure builders import no SDK;
the component loads on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.ingress import documents

if TYPE_CHECKING:
    from mlplatform.infra.ingress.cloud import LoadBalancerControllerCloud, LoadBalancerControllerCloudArgs
    from mlplatform.infra.ingress.component import LoadBalancerController, LoadBalancerControllerArgs

__all__ = [
    "LoadBalancerController",
    "LoadBalancerControllerArgs",
    "LoadBalancerControllerCloud",
    "LoadBalancerControllerCloudArgs",
    "documents",
]


def __getattr__(name: str) -> Any:
    if name in ("LoadBalancerController", "LoadBalancerControllerArgs"):
        from mlplatform.infra.ingress import component

        return getattr(component, name)
    if name in ("LoadBalancerControllerCloud", "LoadBalancerControllerCloudArgs"):
        from mlplatform.infra.ingress import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
