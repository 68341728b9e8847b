"""Image cache: ECR pull-through cache rules for the public registries the platform's images come from, and the
rewriting of image references to the cache. The pure builders import no SDK; the component loads on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.registry import documents

if TYPE_CHECKING:
    from mlplatform.infra.registry.cloud import ImageCacheCloud, ImageCacheCloudArgs

__all__ = ["ImageCacheCloud", "ImageCacheCloudArgs", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("ImageCacheCloud", "ImageCacheCloudArgs"):
        from mlplatform.infra.registry import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
