"""Correlations between predictions and measurements: the one definition used everywhere.

Validation during training, the quickstart's held-out figures, the synthetic library's noise
ceiling and the official DREAM score all call these, so "Pearson r" means one computation in
this package. numpy and scipy only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata


def _unit_scaled(x: np.ndarray) -> np.ndarray:
    """``x`` scaled by a power of two (exact) to a largest magnitude in [0.5, 1); 0 stays 0."""
    largest = float(np.max(np.abs(x)))
    if largest == 0:
        return x
    return np.ldexp(x, -math.frexp(largest)[1])


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two ``(n,)`` arrays, in float64.

    Returns NaN when it is undefined: fewer than two values, a non-finite value, or either array
    constant (a collapsed predictor). Both arrays are scaled before the sums, so values of any
    finite magnitude (1e-300 or 1e301) give the right r. Rounding can put ``|r|`` a hair above 1; it is clipped to [-1, 1].
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"pearson() needs arrays of one length, got {x.size} and {y.size}")
    if x.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("nan")
    # r does not change when either array is scaled, so scale both to a largest magnitude of 1
    # first: values near 1e301 would otherwise overflow the sums and products (and values near
    # 1e-300 underflow them) and give a wrong r.
    x, y = _unit_scaled(x), _unit_scaled(y)
    xc, yc = x - x.mean(), y - y.mean()
    xc, yc = _unit_scaled(xc), _unit_scaled(yc)
    scale = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    if scale == 0:
        return float("nan")
    return min(1.0, max(-1.0, float(np.dot(xc, yc)) / scale))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho of two ``(n,)`` arrays: Pearson r of their ranks (ties get their mean rank).

    NaN where :func:`pearson` is undefined (fewer than two values, either array constant).
    """
    return pearson(rankdata(np.asarray(x, dtype=np.float64).ravel()), rankdata(np.asarray(y, dtype=np.float64).ravel()))


def per_target(metric, predictions: np.ndarray, targets: np.ndarray) -> list[float]:
    """``metric`` of each column of ``(n, n_targets)`` predictions against the same targets."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    predictions = predictions.reshape(len(predictions), -1)
    targets = targets.reshape(len(targets), -1)
    return [metric(predictions[:, j], targets[:, j]) for j in range(predictions.shape[1])]
