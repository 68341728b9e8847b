"""The in-VPC runner that deploys the cluster layer of a private cluster (a CodeBuild project in the VPC). The pure
builders (`documents`) import no SDK; the component loads on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.runner import documents

if TYPE_CHECKING:
    from mlplatform.infra.runner.component import ClusterRunner, ClusterRunnerArgs

__all__ = ["ClusterRunner", "ClusterRunnerArgs", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("ClusterRunner", "ClusterRunnerArgs"):
        from mlplatform.infra.runner import component

        return getattr(component, name)
    raise AttributeError(name)
