"""Monitoring: kube-prometheus-stack, the DCGM exporter, monitors, dashboards, alert rules, and where alerts go
(Alertmanager's receivers; the alert topic and Alertmanager's role in the cloud layer). The pure builders import no
SDK; the components load on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.observability import alerting, documents

if TYPE_CHECKING:
    from mlplatform.infra.observability.cloud import AlertingCloud, AlertingCloudArgs
    from mlplatform.infra.observability.component import Monitoring, MonitoringArgs

__all__ = ["AlertingCloud", "AlertingCloudArgs", "Monitoring", "MonitoringArgs", "alerting", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("Monitoring", "MonitoringArgs"):
        from mlplatform.infra.observability import component

        return getattr(component, name)
    if name in ("AlertingCloud", "AlertingCloudArgs"):
        from mlplatform.infra.observability import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
