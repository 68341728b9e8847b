"""Model input drift: PSI per feature of KServe's logged requests against the training reference, exposed to
Prometheus, and the alert that starts retraining. Pure Python: no Pulumi, no I/O."""

from mlplatform.infra.drift.alerts import MODERATE_PSI, RETRAIN_LABEL, SIGNIFICANT_PSI, drift_alert_group
from mlplatform.infra.drift.exposition import exposition_text
from mlplatform.infra.drift.payloads import (
    LoggedEvent,
    event_from_http,
    events_from_lake_object,
    parse_request_body,
    request_rows,
)
from mlplatform.infra.drift.stability import DriftReport, drift_report, psi

__all__ = [
    "MODERATE_PSI",
    "RETRAIN_LABEL",
    "SIGNIFICANT_PSI",
    "DriftReport",
    "LoggedEvent",
    "drift_alert_group",
    "drift_report",
    "event_from_http",
    "events_from_lake_object",
    "exposition_text",
    "parse_request_body",
    "psi",
    "request_rows",
]
