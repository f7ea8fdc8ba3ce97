"""Tests of :mod:`proformer.data.dataset`."""

from __future__ import annotations

import math

import numpy as np
import torch
from helpers import (
    LENGTH,
)

from proformer.data.dataset import (
    BatchBuilder,
    Dataset,
    ShardedBatchSampler,
    mask_draws,
    with_rc_rows,
)
from proformer.sequence import Layout


def test_two_ranks_share_out_the_doubled_global_batches():
    """DDP: rank r takes ids r::2 of each global batch of the doubled epoch, as for plain rows."""
    ids = with_rc_rows(np.arange(0, 103, 2), 103)
    single = [batch for _, batch in ShardedBatchSampler(ids, 16, shuffle=True, seed=5, rank=0, world=1)]
    ranks = [list(ShardedBatchSampler(ids, 16, shuffle=True, seed=5, rank=r, world=2)) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == math.ceil(104 / 16)
    for whole, (_, half0), (_, half1) in zip(single, *ranks):
        np.testing.assert_array_equal(half0, whole[0::2])
        np.testing.assert_array_equal(half1, whole[1::2])


def test_two_ranks_see_the_global_batches_of_one_process():
    rows = np.arange(103)
    single = [batch for _, batch in ShardedBatchSampler(rows, 16, shuffle=True, seed=3, rank=0, world=1)]
    ranks = [list(ShardedBatchSampler(rows, 16, shuffle=True, seed=3, rank=r, world=2)) for r in (0, 1)]
    assert len(single) == 7 and all(len(b) == 16 for b in single)  # last batch wraps around
    assert set(np.concatenate(single)) == set(rows)
    for whole, (_, half0), (_, half1) in zip(single, *ranks):
        assert sorted(np.concatenate([half0, half1])) == sorted(whole)
    evaluation = [ShardedBatchSampler(rows, 16, shuffle=False, rank=r, world=2) for r in (0, 1)]
    seen = np.concatenate([batch for sampler in evaluation for _, batch in sampler])
    assert sorted(seen) == list(rows)  # every row exactly once


def test_epochs_reshuffle_and_seed_fixes_the_order():
    sampler = ShardedBatchSampler(np.arange(50), 10, shuffle=True, seed=1)
    first = np.concatenate([b for _, b in sampler])
    sampler.set_epoch(1)
    second = np.concatenate([b for _, b in sampler])
    assert not np.array_equal(first, second)
    again = ShardedBatchSampler(np.arange(50), 10, shuffle=True, seed=1)
    assert np.array_equal(first, np.concatenate([b for _, b in again]))


def test_mask_draws_depend_only_on_seed_epoch_row_position():
    draws = mask_draws(np.array([5, 9, 2]), epoch=0, seed=7, positions=200)
    alone = mask_draws(np.array([9]), epoch=0, seed=7, positions=200)
    np.testing.assert_array_equal(draws[1], alone[0])
    assert not np.array_equal(draws, mask_draws(np.array([5, 9, 2]), epoch=1, seed=7, positions=200))
    many = mask_draws(np.arange(5000), epoch=3, seed=0, positions=200)
    assert abs((many < 0.05).mean() - 0.05) < 0.002 and 0 <= many.min() and many.max() < 1


def test_batch_builder_lays_out_standardises_and_masks(planted_dataset):
    dataset = Dataset(planted_dataset)
    layout = dataset.layout()
    assert layout == Layout(0, 0, LENGTH)
    builder = BatchBuilder(dataset, layout, target_mean=[1.0], target_std=[2.0], mask_ratio=0.2, seed=0)
    rows = np.array([7, 3, 11])
    batch = builder[(0, rows)]
    assert batch["codes"].shape == (3, 2 * LENGTH) and batch["codes"].dtype == torch.uint8
    np.testing.assert_array_equal(batch["codes"][:, :LENGTH].numpy(), np.asarray(dataset.codes[rows]))
    expected = (np.asarray(dataset.targets[rows]) - 1.0) / 2.0
    np.testing.assert_allclose(batch["targets"].numpy(), expected, rtol=1e-6)
    assert batch["mask"].shape == (3, 2 * LENGTH) and batch["mask"].any()


def test_singletons_are_the_rows_with_integer_targets(dream_data):
    dataset = Dataset(dream_data)
    flags = dataset.integer_target()
    targets = np.asarray(dataset.targets[:, 0])
    assert flags.dtype == bool and flags.tolist() == (targets == np.round(targets)).tolist()
    assert 0.3 < flags.mean() < 0.8  # odd rows are integers, some even ones round to one
    layout = dataset.layout()
    rows = np.arange(10)
    training = BatchBuilder(dataset, layout, singleton_flag="measured")[(0, rows)]
    assert training["singleton"].tolist() == flags[rows].astype(float).tolist()
    assert BatchBuilder(dataset, layout, singleton_flag="zero")[(0, rows)]["singleton"].sum() == 0
    assert "singleton" not in BatchBuilder(dataset, layout)[(0, rows)]


def test_shifts_stay_in_the_padding_are_keyed_and_cover_both_directions(dream_data):
    dataset = Dataset(dream_data)
    layout = dataset.layout()
    rows = np.arange(len(dataset))
    centred = BatchBuilder(dataset, layout)[(0, rows)]["codes"].numpy()
    builder = BatchBuilder(dataset, layout, shift=3, seed=1)
    shifted = builder[(0, rows)]["codes"].numpy()
    offsets = []
    for a, b, n in zip(centred[:, :100], shifted[:, :100], dataset.lengths - 30):
        start_a, start_b = int(np.argmax(a != 4)), int(np.argmax(b != 4))
        assert np.array_equal(a[start_a:start_a + n], b[start_b:start_b + n])  # the sequence itself is intact
        assert 0 <= start_b and start_b + n <= 100
        offsets.append(start_b - start_a)
    assert set(offsets) == set(range(-3, 4))
    # The same (seed, epoch, row) shifts the same way in any batch order; another epoch differs.
    reordered = builder[(0, rows[::-1])]["codes"].numpy()[::-1]
    assert np.array_equal(reordered, shifted)
    assert not np.array_equal(builder[(1, rows)]["codes"].numpy(), shifted)
