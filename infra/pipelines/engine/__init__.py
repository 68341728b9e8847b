"""The pipeline engine: Argo Workflows (pinned chart) in the `argo` namespace, and per team the right to run
workflows in its own namespace with its own AWS role and artifact prefix. `documents` holds the pure builders;
`component` the cluster layer's component (loaded on first use)."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.pipelines.engine import documents

if TYPE_CHECKING:
    from mlplatform.infra.pipelines.engine.component import PipelineEngine, PipelineEngineArgs, TeamPipelines

__all__ = ["PipelineEngine", "PipelineEngineArgs", "TeamPipelines", "documents"]


def __getattr__(name: str) -> Any:
    if name in {"PipelineEngine", "PipelineEngineArgs", "TeamPipelines"}:
        from mlplatform.infra.pipelines.engine import component

        return getattr(component, name)
    raise AttributeError(name)
