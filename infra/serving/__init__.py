"""Model serving: KServe (Standard mode) with a vLLM ServingRuntime, vLLM servers scaled by KEDA. The pure
builders import no SDK; the component loads on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.serving import documents

if TYPE_CHECKING:
    from mlplatform.infra.serving.cloud import ServingCloud, ServingCloudArgs
    from mlplatform.infra.serving.component import InferenceServiceArgs, Serving, ServingArgs

__all__ = ["InferenceServiceArgs", "Serving", "ServingArgs", "ServingCloud", "ServingCloudArgs", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("InferenceServiceArgs", "Serving", "ServingArgs"):
        from mlplatform.infra.serving import component

        return getattr(component, name)
    if name in ("ServingCloud", "ServingCloudArgs"):
        from mlplatform.infra.serving import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
