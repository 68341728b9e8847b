"""Container logs: Fluent Bit ships every pod's logs to KMS-encrypted CloudWatch log groups (one for the platform's
namespaces, one per team). The pure builders import no SDK; the components load on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.container_logs import documents

if TYPE_CHECKING:
    from mlplatform.infra.container_logs.cloud import ContainerLogsCloud, ContainerLogsCloudArgs
    from mlplatform.infra.container_logs.component import ContainerLogs, ContainerLogsArgs

__all__ = ["ContainerLogs", "ContainerLogsArgs", "ContainerLogsCloud", "ContainerLogsCloudArgs", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("ContainerLogs", "ContainerLogsArgs"):
        from mlplatform.infra.container_logs import component

        return getattr(component, name)
    if name in ("ContainerLogsCloud", "ContainerLogsCloudArgs"):
        from mlplatform.infra.container_logs import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
