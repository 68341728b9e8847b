"""Population stability index (PSI) per feature: the drift statistic of the scheduled drift job.

PSI compares the share of a feature's values in each bin between the reference sample (the training data) and the
current sample (the logged requests): PSI = sum over bins of (current - reference) * ln(current / reference).
Bins are the reference's quantiles, so every bin holds about the same share of the reference and a shift anywhere
in its range moves mass between bins. A bin that one side leaves empty gets a share of EMPTY_BIN_SHARE instead of
zero (the logarithm of zero is undefined); each term stays >= 0 because (c - r) and ln(c / r) share their sign.

Pure Python on purpose: the platform's runtime lock (requirements.txt) holds no numpy, and a few thousand rows per
feature need none. The tests check the quantiles against numpy's and the index against a hand calculation.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_BINS = 10
# The share given to an empty bin: 1e-4, the value Evidently 0.7's PSI test fills empty bins with (it cuts its bins
# differently: Sturges histogram edges over both samples, where this module uses the reference's quantiles).
EMPTY_BIN_SHARE = 1e-4


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation between order statistics (Hyndman & Fan type 7, numpy's default)."""
    if not sorted_values:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def bin_edges(reference: Sequence[float], bins: int = DEFAULT_BINS) -> list[float]:
    """Interior cut points at the reference's 1/bins ... (bins-1)/bins quantiles, repeated values dropped (a
    discrete feature has fewer distinct quantiles than bins). Bins are closed on the right: (e[i-1], e[i]]."""
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    ordered = sorted(reference)
    edges: list[float] = []
    for i in range(1, bins):
        edge = quantile(ordered, i / bins)
        if not edges or edge > edges[-1]:
            edges.append(edge)
    return edges


def bin_shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """The share of values in each of the len(edges) + 1 bins; empty bins get EMPTY_BIN_SHARE."""
    if not values:
        raise ValueError("cannot bin an empty sample")
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_left(edges, value)] += 1
    return [count / len(values) if count else EMPTY_BIN_SHARE for count in counts]


def psi(reference: Sequence[float], current: Sequence[float], bins: int = DEFAULT_BINS) -> float:
    """Population stability index of current against reference, on bins cut at the reference's quantiles."""
    for name, sample in (("reference", reference), ("current", current)):
        if not sample:
            raise ValueError(f"{name} sample is empty")
        if any(not math.isfinite(v) for v in sample):
            raise ValueError(f"{name} sample holds a value that is not a finite number")
    edges = bin_edges(reference, bins)
    ref = bin_shares(reference, edges)
    cur = bin_shares(current, edges)
    return sum((c - r) * math.log(c / r) for r, c in zip(ref, cur, strict=True))


@dataclass(frozen=True, kw_only=True)
class DriftReport:
    """PSI per feature of one model's current inputs against its training reference."""

    model: str
    per_feature: Mapping[str, float]
    rows: int

    @property
    def max_psi(self) -> float:
        return max(self.per_feature.values())

    @property
    def mean_psi(self) -> float:
        return sum(self.per_feature.values()) / len(self.per_feature)


def drift_report(
    model: str,
    feature_names: Sequence[str],
    reference_rows: Sequence[Sequence[float]],
    current_rows: Sequence[Sequence[float]],
    bins: int = DEFAULT_BINS,
) -> DriftReport:
    """PSI of every feature (column) of current_rows against the same column of reference_rows."""
    if not feature_names:
        raise ValueError("feature_names is empty")
    for name, rows in (("reference_rows", reference_rows), ("current_rows", current_rows)):
        for i, row in enumerate(rows):
            if len(row) != len(feature_names):
                raise ValueError(f"{name}[{i}]: {len(row)} values, expected {len(feature_names)} ({feature_names})")
    per_feature = {
        feature: psi([row[j] for row in reference_rows], [row[j] for row in current_rows], bins)
        for j, feature in enumerate(feature_names)
    }
    return DriftReport(model=model, per_feature=per_feature, rows=len(current_rows))
