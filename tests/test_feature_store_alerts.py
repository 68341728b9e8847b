"""The feature store's alerts (infra.features.alerts) as the prod plan renders them, under `promtool test rules`
(Debian package `prometheus`): each alert fires in one case and stays quiet in another. The series are named and
labelled as Feast 0.67.0 and kube-state-metrics publish them (the Feast contract test scrapes the real server for
them)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra.features import alerts
from mlplatform.mlp.planner import Plan
from mlplatform.mlp.stackfile import Project, load_stack
from tests import test_alert_rules
from tests.test_alert_rules import PROMTOOL, _expected, _series

pytestmark = test_alert_rules.pytestmark  # skipped without promtool, unless CI requires it

CRON = {"namespace": "feast", "cronjob": "feast-materialize"}
VIEW = {"project": "ranking", "feature_view": "user_activity"}
SERVER = {"namespace": "feast", "deployment": "feature-server"}
ONLINE = {"endpoint": alerts.ONLINE_ENDPOINT}


def _group(plan: Plan) -> dict[str, Any]:
    (group,) = [
        g
        for r in plan.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        for g in r.inputs["spec"]["groups"]
        if g["name"] == alerts.GROUP_NAME
    ]
    return dict(group)


def _schedule(interval_s: int, last_s: int, minutes: int = 120) -> list[dict[str, str]]:
    """The CronJob as kube-state-metrics shows it: its last schedule time and the next one."""
    return [
        _series(alerts.LAST_SCHEDULE, CRON, f"{last_s}x{minutes}"),
        _series(alerts.NEXT_SCHEDULE, CRON, f"{last_s + interval_s}x{minutes}"),
    ]


def _case(rule: dict[str, Any], series: list[dict[str, str]], at: str, fires: dict[str, str] | None) -> Any:
    expected = [_expected(rule, fires)] if fires is not None else []
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": rule["alert"], "exp_alerts": expected}],
    }


def _replicas(available: int) -> list[dict[str, str]]:
    return [_series("kube_deployment_status_replicas_available", SERVER, f"{available}x20")]


def _online_requests(failing: dict[str, str]) -> list[dict[str, str]]:
    """100 successful online requests a minute beside `failing` (a counter series of errors)."""
    return [_series(alerts.REQUESTS, {**ONLINE, "status": "success"}, "0+100x40"), failing]


def _cases(rules: dict[str, dict[str, Any]], error_percent: float) -> list[dict[str, Any]]:
    failing, stale, down, errors = (
        rules[n]
        for n in ("FeatureMaterializationFailing", "FeatureViewStale", "FeatureServerDown", "FeatureServerErrors")
    )
    after_deadline = f"{alerts.FAILING_FOR_MINUTES + 5}m"
    # Scheduled at 7200 s; the run before succeeded at 3700 s.
    scheduled = _series(alerts.LAST_SCHEDULE, CRON, "7200x120")
    succeeded_before = _series(alerts.LAST_SUCCESS, CRON, "3700x120")
    succeeded_after_10m = _series(alerts.LAST_SUCCESS, CRON, "3700x10 7330x110")
    online_errors = {**ONLINE, "status": "error"}
    write_errors = {"endpoint": "/write-to-online-store", "status": "error"}
    # Beside the successful requests, failing ones: twice the threshold's share of all, and a hundredth of it.
    share = min(2 * error_percent, 90) / 100
    over, under = 100 * share / (1 - share), error_percent / 100
    return [
        # The latest run never succeeded, past its deadline: fires. One that succeeded 10 minutes in: quiet.
        _case(failing, [scheduled, succeeded_before], after_deadline, CRON),
        _case(failing, [scheduled, succeeded_after_10m], after_deadline, None),
        # Nothing ever succeeded (the metric is absent until something does): fires.
        _case(failing, [scheduled], after_deadline, CRON),
        # Still inside a run's deadline: not yet.
        _case(failing, [scheduled, succeeded_before], f"{alerts.FAILING_FOR_MINUTES - 10}m", None),
        # Hourly schedule: two intervals and the deadline is 3 h. A view 3 h 5 min old and ageing: fires.
        _case(
            stale, [*_schedule(3600, 7200), _series(alerts.FRESHNESS, {**VIEW, "pod": "a"}, "11100+60x60")], "20m", VIEW
        ),
        # The same view 1 h old: quiet.
        _case(
            stale, [*_schedule(3600, 7200), _series(alerts.FRESHNESS, {**VIEW, "pod": "a"}, "3600+60x60")], "20m", None
        ),
        # A daily schedule: 3 h old is fresh.
        _case(
            stale,
            [*_schedule(86400, 7200), _series(alerts.FRESHNESS, {**VIEW, "pod": "a"}, "11100+60x60")],
            "20m",
            None,
        ),
        _case(down, _replicas(0), "10m", SERVER),
        _case(down, _replicas(2), "10m", None),
        _case(errors, _online_requests(_series(alerts.REQUESTS, online_errors, f"0+{over:g}x40")), "30m", ONLINE),
        _case(errors, _online_requests(_series(alerts.REQUESTS, online_errors, f"0+{under:g}x40")), "30m", None),
        # Errors of the write endpoints (refused by AWS to the server's role) are not online reads failing.
        _case(errors, _online_requests(_series(alerts.REQUESTS, write_errors, "0+100x40")), "30m", None),
    ]


def _promtool(tmp_path: Path, group: dict[str, Any], cases: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [group]}))
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": cases}, sort_keys=False)
    )
    return subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_the_feature_store_alerts_fire_and_stay_quiet_when_they_should(
    plans: dict[str, Plan], project: Project, tmp_path: Path
) -> None:
    group = _group(plans["prod"])
    rules = {r["alert"]: r for r in group["rules"]}
    cfg = load_stack(project, "prod").validate()
    cases = _cases(rules, cfg.observability.alerts.feature_server_error_percent)
    tested = {c["alert_rule_test"][0]["alertname"] for c in cases}
    assert tested == set(rules), "every alert needs tests"
    for name in rules:
        outcomes = {
            bool(c["alert_rule_test"][0]["exp_alerts"]) for c in cases if c["alert_rule_test"][0]["alertname"] == name
        }
        assert outcomes == {True, False}, f"{name} needs a firing and a quiet case"
    result = _promtool(tmp_path, group, cases)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_error_threshold_comes_from_the_stacks_alert_thresholds(tmp_path: Path) -> None:
    """At 20% a 9% error rate is quiet: the expectation that it fires is reported by promtool."""
    group = alerts.feature_store_alert_group(20)
    rules = {r["alert"]: r for r in group["rules"]}
    series = _online_requests(_series(alerts.REQUESTS, {**ONLINE, "status": "error"}, "0+10x40"))
    assert _promtool(tmp_path, group, [_case(rules["FeatureServerErrors"], series, "30m", ONLINE)]).returncode != 0
    assert _promtool(tmp_path, group, [_case(rules["FeatureServerErrors"], series, "30m", None)]).returncode == 0
    with pytest.raises(ValueError, match="error_percent"):
        alerts.feature_store_alert_group(0)
