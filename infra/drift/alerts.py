"""The drift alert, as a pure rule group for the platform's PrometheusRule (see infra/observability/rules.py).

Thresholds follow the usual convention for PSI (a rule of thumb from credit-scoring practice, not a derived
bound): below 0.1 no significant change, 0.1 to 0.2 moderate, above 0.2 significant shift. The alert fires on the
significant level by default; `action: retrain` lets Alertmanager route it to whatever starts the retrain template.
"""

from __future__ import annotations

from typing import Any

from mlplatform.infra.drift.exposition import FEATURE_PSI, MAX_PSI

SIGNIFICANT_PSI = 0.2
MODERATE_PSI = 0.1
RETRAIN_LABEL = {"action": "retrain"}
GROUP_NAME = "mlplatform.model-drift"
ALERT_NAME = "ModelFeatureDrift"


def drift_alert_group(psi_threshold: float = SIGNIFICANT_PSI, for_: str = "2h") -> dict[str, Any]:
    """ModelFeatureDrift: a model's largest feature PSI stayed above psi_threshold for `for_`.

    The `for_` window must span more than one run of the drift job, so one unlucky sample does not retrain."""
    if not psi_threshold > 0:
        raise ValueError(f"psi_threshold must be > 0, got {psi_threshold}")
    threshold = f"{psi_threshold:g}"
    return {
        "name": GROUP_NAME,
        "rules": [
            {
                "alert": ALERT_NAME,
                "expr": f"max by (model) ({MAX_PSI}) > {threshold}",
                "for": for_,
                "labels": {"severity": "warning", "category": "drift", **RETRAIN_LABEL},
                "annotations": {
                    "summary": "Model {{ $labels.model }}: input drift above PSI " + threshold,
                    "description": "The largest population stability index of the model's input features against "
                    f"its training reference has stayed above {threshold} for {for_} (value {{{{ $value }}}}). "
                    f"{FEATURE_PSI} says which features moved; the alert starts the retrain template.",
                },
            }
        ],
    }
