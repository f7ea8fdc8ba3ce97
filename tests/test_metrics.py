"""The one correlation definition (proformer.metrics) against scipy's, and its undefined cases."""


from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from proformer.metrics import pearson, per_target, spearman


def test_pearson_and_spearman_equal_scipy_on_data_with_ties():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = 0.3 * x + rng.normal(size=500)
    y[:100] = np.round(y[:100])  # ties, which Spearman ranks by their mean rank
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert 0.1 < pearson(x, y) < 0.5  # the planted correlation, not a degenerate value


def test_undefined_correlations_are_nan_not_zero():
    assert math.isnan(pearson(np.ones(10), np.arange(10)))  # a collapsed predictor
    assert math.isnan(spearman(np.arange(10), np.full(10, 3.0)))
    assert math.isnan(pearson([1.0], [2.0]))


def test_perfect_correlation_is_clipped_to_one():
    x = np.linspace(0, 1, 1001) * 1e-3 + 7.0  # large offset: rounding could push |r| past 1
    assert pearson(x, 3 * x) == 1.0 and pearson(x, -x) == -1.0


def test_per_target_takes_each_column_against_its_own_target():
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(200, 2))
    predictions = np.stack([targets[:, 0], -targets[:, 1]], axis=1)
    assert per_target(pearson, predictions, targets) == pytest.approx([1.0, -1.0])
    with pytest.raises(ValueError, match="one length"):
        pearson(np.ones(3), np.ones(4))
