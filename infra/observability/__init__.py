"""Monitoring: kube-prometheus-stack, the DCGM exporter, monitors, dashboards and alert rules. The pure builders
import no SDK; the component loads on first use."""

from typing import TYPE_CHECKING, Any

from infra.observability import documents

if TYPE_CHECKING:
    from infra.observability.component import Monitoring, MonitoringArgs

__all__ = ["Monitoring", "MonitoringArgs", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("Monitoring", "MonitoringArgs"):
        from infra.observability import component

        return getattr(component, name)
    raise AttributeError(name)
