"""Tests of :mod:`proformer.data.splits`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import (
    WINDOW,
)

import proformer
from proformer.data.dataset import (
    BatchBuilder,
    Dataset,
    ShardedBatchSampler,
    mask_draws,
    with_rc_rows,
)
from proformer.data.splits import split_indices
from proformer.model import swap_strands


def epoch_rows(builder: BatchBuilder, sampler, epoch: int) -> dict[int, dict[str, np.ndarray]]:
    """Every id of one epoch's batches -> its codes, target, mask and singleton flag."""
    sampler.set_epoch(epoch)
    rows = {}
    for key, ids in sampler:
        batch = builder[(key, ids)]
        for index, row in enumerate(batch["rows"].tolist()):
            rows[row] = {name: batch[name][index].numpy() for name in ("codes", "targets", "mask", "singleton")}
    return rows


def test_an_epoch_holds_each_row_and_its_reverse_complement(rc_dataset):
    """2n rows an epoch; each RC row is swap_strands of its forward row as laid out that epoch
    (shift included), with its target and singleton flag; its mask is its own, keyed by its id."""
    dataset = Dataset(rc_dataset)
    n = len(dataset)
    train_rows, _ = split_indices(dataset, "hash:0.8")
    ids = with_rc_rows(train_rows, n)
    assert ids.shape == (2 * len(train_rows),)
    builder = BatchBuilder(dataset, dataset.layout(), target_mean=[1.0], target_std=[2.0], mask_ratio=0.15, seed=3,
                           shift=3, singleton_flag="measured", rc_rows=True)
    sampler = ShardedBatchSampler(ids, 32, shuffle=True, seed=3)
    assert len(sampler) == math.ceil(2 * len(train_rows) / 32) == 2 * math.ceil(len(train_rows) / 32)
    for epoch in (0, 1):
        rows = epoch_rows(builder, sampler, epoch)
        assert set(rows) == set(ids.tolist())  # every row and every RC row (the last batch wraps around)
        swapped = 0
        for row in train_rows.tolist():
            forward, reverse = rows[row], rows[row + n]
            expected = swap_strands(torch.from_numpy(forward["codes"][None]))[0].numpy()
            np.testing.assert_array_equal(reverse["codes"], expected)
            np.testing.assert_array_equal(reverse["targets"], forward["targets"])
            assert reverse["singleton"] == forward["singleton"]
            swapped += not np.array_equal(reverse["codes"], forward["codes"])
            # Each mask is keyed by (seed, epoch, id): the RC row's by n + row, in whatever batch.
            draws = mask_draws(np.array([row + n]), epoch, 3, 2 * WINDOW)[0]
            np.testing.assert_array_equal(reverse["mask"], (draws < 0.15) & (reverse["codes"] != 4))
        assert swapped == len(train_rows)  # a real reverse complement, never the row itself
        singletons = np.array([rows[row]["singleton"] for row in train_rows.tolist()])
        assert 0 < singletons.mean() < 1
    # Shifts do move the rows (the forward strand is not always centred) ...
    centred = BatchBuilder(dataset, dataset.layout())[(0, train_rows)]["codes"].numpy()
    shifted = np.stack([rows[row]["codes"] for row in train_rows.tolist()])
    assert not np.array_equal(shifted, centred)


def test_without_rc_rows_the_batches_are_unchanged(rc_dataset):
    """rc_rows=False (the default) and the forward ids of rc_rows=True give the batches the
    builder always gave: the layout shifted by draws keyed by (seed, epoch + 2**20, row), the
    masks keyed by (seed, epoch, row)."""
    dataset = Dataset(rc_dataset)
    layout = dataset.layout()
    train_rows, _ = split_indices(dataset, "hash:0.8")
    settings = {"target_mean": [1.0], "target_std": [2.0], "mask_ratio": 0.15, "seed": 3, "shift": 3,
                "singleton_flag": "measured"}
    plain, doubled = BatchBuilder(dataset, layout, **settings), BatchBuilder(dataset, layout, rc_rows=True, **settings)
    rows = train_rows[::-1][:50]
    batch = plain[(2, rows)]
    draw = mask_draws(rows, 2 + (1 << 20), 3, 1)[:, 0]
    shifts = np.floor(draw * 7).astype(np.int64) - 3
    expected = layout.apply(np.asarray(dataset.codes[rows]), dataset.lengths[rows], shifts)
    np.testing.assert_array_equal(batch["codes"].numpy(), expected)
    np.testing.assert_array_equal(batch["mask"].numpy(), (mask_draws(rows, 2, 3, 2 * WINDOW) < 0.15) & (expected != 4))
    np.testing.assert_array_equal(batch["rows"].numpy(), rows)
    again = doubled[(2, rows)]
    for name in batch:
        np.testing.assert_array_equal(again[name].numpy(), batch[name].numpy())
    # And without rc_rows there are no ids beyond the dataset.
    with pytest.raises(IndexError):
        plain[(0, np.array([len(dataset)]))]
    # The training sampler over the plain rows: as many steps as ever.
    assert len(ShardedBatchSampler(train_rows, 32, shuffle=True)) == math.ceil(len(train_rows) / 32)


def test_splits_are_disjoint_seeded_and_hash_stable(planted_dataset):
    dataset = Dataset(planted_dataset)
    train_rows, valid_rows = split_indices(dataset, "random:0.9", seed=0)
    assert len(np.intersect1d(train_rows, valid_rows)) == 0 and len(train_rows) + len(valid_rows) == len(dataset)
    assert len(valid_rows) == 200
    assert np.array_equal(split_indices(dataset, "random:0.9", seed=0)[1], valid_rows)
    assert not np.array_equal(split_indices(dataset, "random:0.9", seed=1)[1], valid_rows)
    hashed = split_indices(dataset, "hash:0.8")[1]
    assert 300 < len(hashed) < 500
    from proformer.sequence import decode
    valid_sequences = set(decode(np.asarray(dataset.codes[hashed]), dataset.lengths[hashed]))
    # The same sequences land in validation whatever the order of the file.
    reordered = Dataset(planted_dataset)
    order = np.random.default_rng(0).permutation(len(dataset))
    reordered.codes, reordered.lengths = np.asarray(dataset.codes)[order], dataset.lengths[order]
    again = split_indices(reordered, "hash:0.8")[1]
    assert set(decode(reordered.codes[again], reordered.lengths[again])) == valid_sequences


def test_validation_pearson_is_global_over_the_whole_validation_set(trained_run, planted_dataset):
    run_dir, _ = trained_run
    loaded = proformer.load(run_dir, "cpu")
    model, info = loaded.model, loaded.info
    dataset = Dataset(planted_dataset)
    _, valid_rows = split_indices(dataset, "hash:0.8")
    batch = BatchBuilder(dataset, info.layout)[(0, valid_rows)]
    with torch.no_grad():
        prediction = model(batch["codes"]).numpy()
    r = np.corrcoef(prediction, np.asarray(dataset.targets[valid_rows])[:, 0])[0, 1]
    assert r == pytest.approx(info.best["val_pearson"], abs=1e-5)


@pytest.mark.parametrize(("rows", "split", "held_out"), [
    (1_000, "folds:5", None), (2_499, "folds:5", None), (2_500, "random:0.8000000", 500),
    (4_856, "random:0.8970346", 500), (9_999, "random:0.9499950", 500), (10_000, "random:0.95", 500),
    (6_700_000, "random:0.95", 335_000),
])
def test_the_auto_split_keeps_500_validation_rows_at_most_a_fifth_else_five_folds(rows, split, held_out):
    from proformer.data.splits import auto_split

    assert auto_split(rows) == split
    if held_out is not None:
        assert rows - round(float(split.partition(":")[2]) * rows) == held_out


class _Rows:
    """What split_indices reads of a dataset for a seeded split: its length."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def test_the_folds_of_a_k_fold_split_partition_the_rows():
    folds = [split_indices(_Rows(103), f"fold:{k}/5", seed=3) for k in range(5)]
    valid = np.concatenate([v for _, v in folds])
    assert sorted(valid.tolist()) == list(range(103))  # every row validated exactly once
    assert sorted(len(v) for _, v in folds) == [20, 20, 21, 21, 21]
    for train, v in folds:
        assert np.intersect1d(train, v).size == 0 and len(train) + len(v) == 103
    again = split_indices(_Rows(103), "fold:2/5", seed=3)[1]
    other_seed = split_indices(_Rows(103), "fold:2/5", seed=4)[1]
    assert np.array_equal(again, folds[2][1]) and not np.array_equal(other_seed, folds[2][1])


@pytest.mark.parametrize(("split", "words"), [
    ("folds:1", "K >= 2"), ("folds:x", "K >= 2"), ("fold:5/5", "0 <= k < K"), ("fold:1", "0 <= k < K"),
    ("random:1.5", "(0, 1)"), ("kfold:5", "folds:K"),
])
def test_a_split_it_cannot_read_is_refused_naming_the_forms_it_can(split, words):
    from proformer.config.run import DataConfig

    with pytest.raises(ValueError, match="split=") as error:
        DataConfig(split=split)
    assert words in str(error.value)
