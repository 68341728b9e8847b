"""Drift monitoring (infra/drift): the PSI statistic against a hand calculation, numpy's quantiles and its
properties; KServe's logged requests (CloudEvent headers, the blob store's JSON records, v1 and v2 bodies); the
exposition checked by `promtool check metrics`; the ModelFeatureDrift alert under `promtool test rules`."""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from mlplatform.infra.drift import alerts, exposition, payloads, stability

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("MLP_REQUIRE_PROMTOOL"),
    reason="promtool is not installed (apt-get install prometheus)",
)


def _promtool(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120)


# --- the statistic ---------------------------------------------------------------------------------------------

REF = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_bin_edges_are_the_references_quantiles() -> None:
    # Type 7 on 1..8 at 1/4, 2/4, 3/4: positions 1.75, 3.5, 5.25 -> 2.75, 4.5, 6.25.
    assert stability.bin_edges(REF, bins=4) == [2.75, 4.5, 6.25]


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.floats(0, 1))
def test_quantile_matches_numpy(values: list[float], q: float) -> None:
    assert math.isclose(
        stability.quantile(sorted(values), q), float(np.quantile(values, q)), rel_tol=1e-9, abs_tol=1e-6
    )


def test_psi_by_hand() -> None:
    # Reference shares 1/4 per bin; current [1,1,1,1 | 3 | 5 | 7,8] = 1/2, 1/8, 1/8, 1/4.
    # PSI = (1/2 - 1/4) ln 2 + 2 (1/8 - 1/4) ln(1/2) + 0 = 1/2 ln 2.
    assert stability.psi(REF, [1, 1, 1, 1, 3, 5, 7, 8], bins=4) == pytest.approx(0.5 * math.log(2), rel=1e-12)


def test_empty_bins_take_the_epsilon_share() -> None:
    # Everything in the first bin: three bins empty, each at 1e-4 instead of 0.
    eps = 1e-4
    by_hand = 0.75 * math.log(1 / 0.25) + 3 * (eps - 0.25) * math.log(eps / 0.25)
    assert stability.psi(REF, [1.0] * 8, bins=4) == pytest.approx(by_hand, rel=1e-12)


def test_discrete_feature_drops_repeated_edges() -> None:
    # Nine quantiles of a 60/40 binary feature: 0 (five times), 0.4 (interpolated at q=0.6), 1 (three times).
    binary = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert stability.bin_edges(binary, bins=10) == pytest.approx([0.0, 0.4, 1.0])
    # The empty middle bin adds nothing; flipping the shares to 40/60 gives 2 * 0.2 * ln(1.5).
    assert stability.psi(binary, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]) == pytest.approx(0.4 * math.log(1.5))


samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=300)


@settings(max_examples=200)
@given(samples, samples, st.integers(2, 20))
def test_psi_is_never_negative(reference: list[float], current: list[float], bins: int) -> None:
    assert stability.psi(reference, current, bins) >= 0


@given(samples, st.integers(2, 20), st.randoms(use_true_random=False))
def test_psi_is_zero_for_the_same_distribution(reference: list[float], bins: int, rnd: Any) -> None:
    shuffled = list(reference)
    rnd.shuffle(shuffled)
    assert stability.psi(reference, shuffled, bins) == 0
    assert stability.psi(reference, reference * 3, bins) == pytest.approx(0, abs=1e-12)


@given(samples, st.integers(2, 20))
def test_psi_is_positive_when_everything_moves_past_the_reference(reference: list[float], bins: int) -> None:
    shifted = [v + (max(reference) - min(reference)) + 1 for v in reference]
    assert stability.psi(reference, shifted, bins) > 0.5


def test_psi_grows_with_the_shift() -> None:
    normal = NormalDist()
    reference = [normal.inv_cdf((i + 0.5) / 1000) for i in range(1000)]
    values = [stability.psi(reference, [v + shift / 4 for v in reference]) for shift in range(13)]
    assert values[0] == 0
    assert all(a < b for a, b in itertools.pairwise(values)), values
    # The rule-of-thumb levels sit between a 0.1 and a 0.5 standard-deviation shift.
    assert stability.psi(reference, [v + 0.1 for v in reference]) < alerts.MODERATE_PSI
    assert stability.psi(reference, [v + 0.5 for v in reference]) > alerts.SIGNIFICANT_PSI


def test_bad_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="current sample is empty"):
        stability.psi(REF, [])
    with pytest.raises(ValueError, match="reference sample holds a value that is not a finite number"):
        stability.psi([1.0, math.nan], REF)


def test_drift_report_per_feature_max_and_mean() -> None:
    reference = [(v, v) for v in REF]
    current = [(v, c) for v, c in zip(REF, [1, 1, 1, 1, 3, 5, 7, 8], strict=True)]
    report = stability.drift_report("iris", ["a", "b"], reference, current, bins=4)
    assert report.per_feature == {"a": 0.0, "b": pytest.approx(0.5 * math.log(2))}
    assert report.max_psi == pytest.approx(0.5 * math.log(2))
    assert report.mean_psi == pytest.approx(0.25 * math.log(2))
    assert report.rows == 8
    with pytest.raises(ValueError, match=r"current_rows\[0\]: 1 values, expected 2"):
        stability.drift_report("iris", ["a", "b"], reference, [(1.0,)])


# --- KServe's logged requests ------------------------------------------------------------------------------------

V1 = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
V2_MATRIX = {
    "inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}
    ]
}
V2_COLUMNS = {
    "inputs": [
        {"name": "petal_width", "shape": [2], "datatype": "FP64", "data": [1.4, 1.6]},
        {"name": "sepal_length", "shape": [2, 1], "datatype": "FP64", "data": [[6.8], [6.0]]},
    ]
}
ROWS = [(6.8, 2.8, 4.8, 1.4), (6.0, 3.4, 4.5, 1.6)]


def test_v1_and_v2_bodies_give_the_same_rows() -> None:
    assert payloads.parse_request_body(json.dumps(V1)).rows == ROWS
    assert payloads.parse_request_body(json.dumps(V2_MATRIX).encode()).rows == ROWS
    nested = {"inputs": [{**V2_MATRIX["inputs"][0], "data": [list(r) for r in ROWS]}]}
    assert payloads.parse_request_body(json.dumps(nested)).rows == ROWS


def test_v2_named_tensors_are_columns() -> None:
    parsed = payloads.parse_request_body(json.dumps(V2_COLUMNS))
    assert parsed.columns == ("petal_width", "sepal_length")
    assert parsed.rows == [(1.4, 6.8), (1.6, 6.0)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [[1.0, "x"]]}, r"instances\[0\]\[1\]: 'x' is not a finite number"),
        ({"instances": [1.0, 2.0]}, "instances: expected a list of rows"),
        ({"inputs": [{"name": "t", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}, "shape"),
        ({"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}, "BYTES is not numeric"),
        ({"predict": []}, "not a v1"),
    ],
)
def test_bad_bodies_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        payloads.parse_request_body(json.dumps(body))


def _http_event(body: dict[str, Any], *, model: str = "iris", ce_type: str = payloads.REQUEST_EVENT_TYPE) -> Any:
    # The headers KServe v0.20.0's agent sets (pkg/logger/worker.go, binary encoding).
    headers = {
        "Ce-Id": "0b9a6f1e",
        "Ce-Type": ce_type,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Specversion": "1.0",
        "Ce-Inferenceservicename": model,
        "Ce-Namespace": "team-ml",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": "{}",
        "Content-Type": "application/json",
    }
    return payloads.event_from_http(headers, json.dumps(body).encode())


def test_cloudevent_headers() -> None:
    event = _http_event(V1)
    assert (event.id, event.type, event.inference_service, event.namespace, event.component) == (
        "0b9a6f1e",
        "org.kubeflow.serving.inference.request",
        "iris",
        "team-ml",
        "predictor",
    )
    with pytest.raises(ValueError, match="missing header"):
        payloads.event_from_http({"content-type": "application/json"}, b"{}")


def test_lake_records_as_kserve_blob_store_writes_them() -> None:
    def record(body: dict[str, Any], req_type: str) -> dict[str, Any]:
        return {
            "bytes": base64.b64encode(json.dumps(body).encode()).decode(),
            "contentType": "application/json",
            "reqType": req_type,
            "id": "7c1d",
            "inferenceService": "iris",
            "namespace": "team-ml",
            "component": "predictor",
            "occurrenceTime": "2026-12-05T10:00:00Z",
        }

    single = payloads.events_from_lake_object(json.dumps(record(V1, payloads.REQUEST_EVENT_TYPE)))
    assert payloads.request_rows(single, "iris", ["a", "b", "c", "d"]) == ROWS
    batch = json.dumps(
        [record(V2_MATRIX, payloads.REQUEST_EVENT_TYPE), record({"predictions": [1, 1]}, payloads.RESPONSE_EVENT_TYPE)]
    )
    assert payloads.request_rows(payloads.events_from_lake_object(batch), "iris", ["a", "b", "c", "d"]) == ROWS
    with pytest.raises(ValueError, match="no reqType"):
        payloads.events_from_lake_object('{"bytes": ""}')


def test_request_rows_keep_the_model_and_order_named_features() -> None:
    events = [
        _http_event(V2_COLUMNS),
        _http_event(V1, model="other"),
        _http_event({"predictions": [1]}, ce_type=payloads.RESPONSE_EVENT_TYPE),
    ]
    assert payloads.request_rows(events, "iris", ["sepal_length", "petal_width"]) == [(6.8, 1.4), (6.0, 1.6)]
    with pytest.raises(ValueError, match="no input tensor for feature"):
        payloads.request_rows(events, "iris", ["sepal_width"])
    with pytest.raises(ValueError, match="4 features, expected 2"):
        payloads.request_rows([_http_event(V1)], "iris", ["a", "b"])


# --- exposition ----------------------------------------------------------------------------------------------------


def _reports() -> list[stability.DriftReport]:
    return [
        stability.DriftReport(model="iris", per_feature={"petal_width": 0.31, "sepal_length": 0.02}, rows=500),
        stability.DriftReport(model='odd"name\\x', per_feature={"f": 0.0}, rows=3),
    ]


def test_exposition_round_trips_through_prometheus_client() -> None:
    text = exposition.exposition_text(_reports(), computed_at=1_765_000_000.0)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("mlp_model_feature_drift_psi", (("feature", "petal_width"), ("model", "iris")))] == 0.31
    assert samples[("mlp_model_drift_psi_max", (("model", "iris"),))] == 0.31
    assert samples[("mlp_model_drift_psi_mean", (("model", "iris"),))] == pytest.approx(0.165)
    assert samples[("mlp_model_drift_rows", (("model", "iris"),))] == 500
    assert samples[("mlp_model_drift_last_run_timestamp_seconds", (("model", "iris"),))] == 1_765_000_000.0
    assert ("mlp_model_drift_psi_max", (("model", 'odd"name\\x'),)) in samples


@needs_promtool
def test_exposition_passes_promtool_check_metrics(tmp_path: Path) -> None:
    text = exposition.exposition_text(_reports(), computed_at=1_765_000_000.0)
    result = _promtool("check", "metrics", cwd=tmp_path, stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""  # no lint complaints either
    broken = text.replace("# TYPE mlp_model_drift_rows gauge\n", "# TYPE mlp_model_drift_rows gauge\nmlp bad line\n")
    assert _promtool("check", "metrics", cwd=tmp_path, stdin=broken).returncode != 0


# --- the alert -----------------------------------------------------------------------------------------------------


def _series(model: str, values: str) -> dict[str, str]:
    return {
        "series": f'mlp_model_drift_psi_max{{model="{model}", job="model-drift", instance="pushgateway:9091"}}',
        "values": values,
    }


def _alert_case(series: list[dict[str, str]], at: str, firing_models: list[str], group: dict[str, Any]) -> Any:
    rule = group["rules"][0]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": at,
                "alertname": "ModelFeatureDrift",
                "exp_alerts": [
                    {
                        "exp_labels": {"model": model, **rule["labels"]},
                        "exp_annotations": {"summary": f"Model {model}: input drift above PSI 0.2"},
                    }
                    for model in firing_models
                ],
            }
        ],
    }


def _run_rule_tests(tmp_path: Path, group: dict[str, Any], cases: list[dict[str, Any]]) -> Any:
    # Only the summary is asserted: the description carries the value, which promtool renders with full precision.
    test_group = {
        **group,
        "rules": [{**group["rules"][0], "annotations": {"summary": group["rules"][0]["annotations"]["summary"]}}],
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [test_group]}))
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": cases}, sort_keys=False)
    )
    return _promtool("test", "rules", "tests.yml", cwd=tmp_path)


def test_alert_group_shape() -> None:
    group = alerts.drift_alert_group()
    rule = group["rules"][0]
    assert rule["expr"] == "max by (model) (mlp_model_drift_psi_max) > 0.2"
    assert rule["for"] == "2h"
    assert rule["labels"] == {"severity": "warning", "category": "drift", "action": "retrain"}
    assert alerts.drift_alert_group(0.1)["rules"][0]["expr"].endswith("> 0.1")
    with pytest.raises(ValueError, match="psi_threshold must be > 0"):
        alerts.drift_alert_group(0)


@needs_promtool
def test_alert_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [alerts.drift_alert_group()]}))
    result = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_fires_on_drift_and_stays_quiet_otherwise(tmp_path: Path) -> None:
    group = alerts.drift_alert_group()
    cases = [
        # Drifted for three hours: fires, for the drifted model only.
        _alert_case([_series("iris", "0.35x180"), _series("churn", "0.03x180")], "150m", ["iris"], group),
        # Stable, and moderate drift under the significant threshold: quiet.
        _alert_case([_series("iris", "0.05x180")], "150m", [], group),
        _alert_case([_series("iris", "0.15x180")], "150m", [], group),
        # A spike of 90 minutes, shorter than `for: 2h`, evaluated at its last sample: pending, not firing.
        _alert_case([_series("iris", "0.05x30 0.6x90 0.05x60")], "120m", [], group),
        # The same level for longer than 2h fires.
        _alert_case([_series("iris", "0.05x30 0.6x150")], "160m", ["iris"], group),
    ]
    result = _run_rule_tests(tmp_path, group, cases)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_wrong_expectation_fails_promtool(tmp_path: Path) -> None:
    """The rule tests can fail: expecting the alert on the brief spike is reported."""
    group = alerts.drift_alert_group()
    case = _alert_case([_series("iris", "0.05x30 0.6x90 0.05x60")], "120m", ["iris"], group)
    assert _run_rule_tests(tmp_path, group, [case]).returncode != 0


@needs_promtool
def test_the_job_output_drives_the_alert(tmp_path: Path) -> None:
    """End to end: logged requests shifted by one standard deviation give a PSI the alert fires on."""
    normal = NormalDist(5.0, 1.0)
    reference = [(normal.inv_cdf((i + 0.5) / 400),) for i in range(400)]
    body = {"instances": [[v + 1.0] for (v,) in reference]}
    event = payloads.event_from_http(
        {
            "ce-id": "1",
            "ce-type": payloads.REQUEST_EVENT_TYPE,
            "ce-specversion": "1.0",
            "ce-inferenceservicename": "iris",
        },
        json.dumps(body).encode(),
    )
    report = stability.drift_report("iris", ["x"], reference, payloads.request_rows([event], "iris", ["x"]))
    text = exposition.exposition_text([report], computed_at=0)
    value = next(
        s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == "mlp_model_drift_psi_max"
    )
    assert value > alerts.SIGNIFICANT_PSI
    group = alerts.drift_alert_group()
    case = _alert_case([_series("iris", f"{value!r}x180")], "150m", ["iris"], group)
    result = _run_rule_tests(tmp_path, group, [case])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_fires_on_the_series_the_exposition_writes(tmp_path: Path) -> None:
    """The rule reads what the job exposes: every sample of `exposition_text`, held for three hours as a
    Pushgateway would serve it (job and instance labels added), fires the alert for the drifted model only."""
    reports = [
        stability.DriftReport(model="iris", per_feature={"petal_width": 0.31, "sepal_length": 0.02}, rows=500),
        stability.DriftReport(model="churn", per_feature={"tenure": 0.04}, rows=200),
    ]
    text = exposition.exposition_text(reports, computed_at=1_765_000_000.0)
    series = [
        {
            "series": s.name
            + "{"
            + ", ".join(f'{k}="{v}"' for k, v in {**s.labels, "job": "model-drift", "instance": "pg:9091"}.items())
            + "}",
            "values": f"{s.value!r}x180",
        }
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    group = alerts.drift_alert_group()
    result = _run_rule_tests(tmp_path, group, [_alert_case(series, "150m", ["iris"], group)])
    assert result.returncode == 0, result.stdout + result.stderr
