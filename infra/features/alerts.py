"""The feature store's alerts, one rule group (`mlplatform.feature-store`), in the platform's PrometheusRule when
the feature store and the monitoring stack are both on. Every alert has a promtool unit test where it fires and one
where it stays quiet (tests/test_feature_store_alerts.py); the Feast contract test scrapes the real feature server
and finds every series these rules read (tests/test_feast_contract.py).

- `FeatureMaterializationFailing`: the materialization CronJob's latest scheduled run has not succeeded for longer
  than a run may take (kube-state-metrics: the last schedule time is after the last successful time, or nothing
  ever succeeded). Independent of the schedule: a failed hourly run and a failed daily run both fire it.
- `FeatureViewStale`: a served view's latest materialized data (Feast's `feast_feature_freshness_seconds`, what
  the feature server reads from the registry) is older than two of the schedule's intervals plus a run's deadline.
  The interval is the CronJob's own (next minus last schedule time), so no threshold is configured twice.
- `FeatureServerDown`: no available feature server replica for 5 minutes.
- `FeatureServerErrors`: more than `error_percent` of `/get-online-features` requests failed over 10 minutes (AWS
  refusing the table reads, the registry unreadable, requests naming unknown features).
"""

from __future__ import annotations

from typing import Any

from mlplatform.infra.features.documents import (
    FEAST_NAMESPACE,
    FEATURE_SERVER,
    MATERIALIZE_CRONJOB,
    MATERIALIZE_DEADLINE_SECONDS,
)
from mlplatform.infra.observability.rules import alert_rule, deployment_down

GROUP_NAME = "mlplatform.feature-store"
FRESHNESS = "feast_feature_freshness_seconds"
"""Feast 0.67.0 (feast/metrics.py): seconds since a view's most recent materialization end, labels feature_view and
project."""
REQUESTS = "feast_feature_server_request_total"
"""Feast 0.67.0: requests by endpoint and status (`success` or `error`: the handler raised)."""
ONLINE_ENDPOINT = "/get-online-features"
LAST_SCHEDULE = "kube_cronjob_status_last_schedule_time"
LAST_SUCCESS = "kube_cronjob_status_last_successful_time"
NEXT_SCHEDULE = "kube_cronjob_next_schedule_time"
CRONJOB = f'{{namespace="{FEAST_NAMESPACE}", cronjob="{MATERIALIZE_CRONJOB}"}}'
FAILING_FOR_MINUTES = MATERIALIZE_DEADLINE_SECONDS // 60 + 15
"""Longer than a run may last (its deadline): a run still going is not a failure."""


def feature_store_alert_group(error_percent: float = 5) -> dict[str, Any]:
    if not 0 < error_percent <= 100:
        raise ValueError(f"error_percent must be in (0, 100], got {error_percent}")
    by_job = "max by (namespace, cronjob)"
    interval = f"max ({NEXT_SCHEDULE}{CRONJOB} - {LAST_SCHEDULE}{CRONJOB})"
    online = f'endpoint="{ONLINE_ENDPOINT}"'
    errors = f'sum by (endpoint) (rate({REQUESTS}{{{online}, status="error"}}[10m]))'
    total = f"sum by (endpoint) (rate({REQUESTS}{{{online}}}[10m]))"
    percent = f"{error_percent:g}"
    rules = [
        alert_rule(
            "FeatureMaterializationFailing",
            f"{by_job} ({LAST_SCHEDULE}{CRONJOB}) > on (namespace, cronjob) "
            f"({by_job} ({LAST_SUCCESS}{CRONJOB}) or on (namespace, cronjob) 0 * {by_job} ({LAST_SCHEDULE}{CRONJOB}))",
            f"{FAILING_FOR_MINUTES}m",
            "warning",
            "freshness",
            "Feature materialization has not succeeded since its last scheduled run",
            f"The latest run of CronJob {FEAST_NAMESPACE}/{MATERIALIZE_CRONJOB} has not succeeded after "
            f"{FAILING_FOR_MINUTES} minutes, so the online store no longer advances and models read older features. "
            f"`kubectl -n {FEAST_NAMESPACE} get jobs` and the failed pod's log say why (a view missing from "
            "feature_store.feature_views has no table; AWS refusals name the action).",
        ),
        alert_rule(
            "FeatureViewStale",
            f"max by (project, feature_view) ({FRESHNESS}) > on () group_left () "
            f"(2 * {interval} + {MATERIALIZE_DEADLINE_SECONDS})",
            "10m",
            "warning",
            "freshness",
            "Feature view {{ $labels.project }}/{{ $labels.feature_view }} has missed two materializations",
            "The feature server's registry says the view's latest materialized data is older than two of the "
            "materialization schedule's intervals and a run's deadline: online reads return old values. See "
            "FeatureMaterializationFailing; a view that a run skips is missing from the definitions it applied.",
        ),
        deployment_down(
            "FeatureServerDown",
            FEAST_NAMESPACE,
            FEATURE_SERVER,
            "The feature server",
            impact=": models that read features online fail",
        ),
        alert_rule(
            "FeatureServerErrors",
            f"100 * {errors} / {total} > {percent}",
            "10m",
            "critical",
            "availability",
            f"More than {percent}% of online feature requests fail",
            f"Over 10 minutes more than {percent}% of {ONLINE_ENDPOINT} requests raised an error. The feature "
            f"server's log has the cause: AWS refusing a table read, the registry unreadable, or clients asking for "
            "features that are not in the registry.",
        ),
    ]
    return {"name": GROUP_NAME, "rules": rules}
