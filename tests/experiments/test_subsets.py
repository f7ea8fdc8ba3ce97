"""Tests of :mod:`proformer.experiments.subsets`."""

from __future__ import annotations

import numpy as np

from proformer.data.dataset import Dataset
from proformer.data.splits import split_indices
from proformer.experiments.subsets import fraction_rows, sweep_datasets


def test_data_fraction_and_folds_are_stable_and_independent_of_the_split(tiny_data_sweep, tmp_path):
    dataset = Dataset(tiny_data_sweep)
    rows = fraction_rows(dataset, 0.3)
    assert 0.2 * len(dataset) < len(rows) < 0.4 * len(dataset)
    np.testing.assert_array_equal(rows, fraction_rows(Dataset(tiny_data_sweep), 0.3))
    [part] = sweep_datasets(tiny_data_sweep, tmp_path, fraction=0.3)
    subset = Dataset(part["path"])
    assert len(subset) == len(rows) and subset.meta["subset_of"]["fraction"] == 0.3
    # The fraction uses other bits of the hash than the split: hash:0.8 still validates ~20 %.
    _, valid = split_indices(subset, "hash:0.8")
    assert 0.1 < len(valid) / len(subset) < 0.3
    folds = sweep_datasets(tiny_data_sweep, tmp_path, folds=4)
    valid_sizes = [len(Dataset(f["valid"])) for f in folds]
    assert sum(valid_sizes) == len(dataset)  # every row validated exactly once
    assert all(len(Dataset(f["path"])) + n == len(dataset) for f, n in zip(folds, valid_sizes))
