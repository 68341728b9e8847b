"""The drift job's results in Prometheus' text exposition format (version 0.0.4), written by hand: the runtime lock
holds no prometheus_client, and five gauges need none. tests/test_drift.py validates the output with
`promtool check metrics` and parses it back with prometheus_client's parser (a dev dependency).

The job runs on a schedule, so its gauges must outlive it: the drift step (`infra.pipelines.steps.drift`) PUTs this
text to the platform's Pushgateway (`infra.observability.pushgateway`) under `/metrics/job/mlp-drift/model/<model>`.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlplatform.infra.drift.stability import DriftReport

FEATURE_PSI = "mlp_model_feature_drift_psi"
MAX_PSI = "mlp_model_drift_psi_max"
MEAN_PSI = "mlp_model_drift_psi_mean"
ROWS = "mlp_model_drift_rows"
LAST_RUN = "mlp_model_drift_last_run_timestamp_seconds"

_HELP = {
    FEATURE_PSI: "Population stability index of a model input feature, logged requests against the training reference.",
    MAX_PSI: "Largest population stability index over a model's input features.",
    MEAN_PSI: "Mean population stability index over a model's input features.",
    ROWS: "Logged request rows the drift of a model was computed on.",
    LAST_RUN: "Unix time the drift of a model was last computed.",
}


def _label_value(value: str) -> str:
    # The exposition format escapes backslash, double quote and line feed in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items()) + "}"


def _value(value: float) -> str:
    return repr(float(value))


def exposition_text(reports: Iterable[DriftReport], computed_at: float) -> str:
    """Gauges for every report: PSI per feature, max, mean, the rows used and the time of the run."""
    reports = sorted(reports, key=lambda r: r.model)
    samples: dict[str, list[str]] = {name: [] for name in _HELP}
    for report in reports:
        model = _labels(model=report.model)
        for feature, value in sorted(report.per_feature.items()):
            samples[FEATURE_PSI].append(f"{FEATURE_PSI}{_labels(model=report.model, feature=feature)} {_value(value)}")
        samples[MAX_PSI].append(f"{MAX_PSI}{model} {_value(report.max_psi)}")
        samples[MEAN_PSI].append(f"{MEAN_PSI}{model} {_value(report.mean_psi)}")
        samples[ROWS].append(f"{ROWS}{model} {report.rows}")
        samples[LAST_RUN].append(f"{LAST_RUN}{model} {_value(computed_at)}")
    lines: list[str] = []
    for name, help_text in _HELP.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return "\n".join(lines) + "\n"
