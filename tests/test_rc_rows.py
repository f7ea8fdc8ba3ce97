"""data.rc_rows: every training sequence's reverse complement is one more training row (LegNet's
augmentation), with the two strand halves of the model input swapped (issue "Training options that
the winners used and we lack").

The rows checked are real batches of the sampler and the builder, as training gets them.
"""

import math

import lightning as L
import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, as_overrides, random_dna, read_csv

from proformer.config import load_run_config
from proformer.data.dataset import (
    BatchBuilder,
    Dataset,
    ShardedBatchSampler,
    mask_draws,
    with_rc_rows,
)
from proformer.data.prepare import prepare
from proformer.data.splits import split_indices
from proformer.model import swap_strands
from proformer.train import run as run_module
from proformer.train import train
from proformer.train.module import lr_factor

WINDOW = 28  # positions per strand; the rows have 16 to 24 nt, so shifts have room


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """240 rows of 16-24 nt in a 28-position window; every third target an integer (a
    singleton, for data.singleton_flag)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(240):
        sequence = random_dna(rng, 1, int(rng.integers(16, 25)))[0]
        target = 2.0 * sequence.count("GAT") + 4 * sequence.count("C") / len(sequence) + rng.normal(0, 0.1)
        lines.append(f"{sequence}\t{round(target) if i % 3 == 0 else round(target, 5)}\n")
    (root / "rows.tsv").write_text("".join(lines))
    prepare(root / "rows.tsv", root / "rows", trim=(0, 0), length=WINDOW, progress=False)
    return root / "rows"


def epoch_rows(builder: BatchBuilder, sampler, epoch: int) -> dict[int, dict[str, np.ndarray]]:
    """Every id of one epoch's batches -> its codes, target, mask and singleton flag."""
    sampler.set_epoch(epoch)
    rows = {}
    for key, ids in sampler:
        batch = builder[(key, ids)]
        for index, row in enumerate(batch["rows"].tolist()):
            rows[row] = {name: batch[name][index].numpy() for name in ("codes", "targets", "mask", "singleton")}
    return rows


def test_an_epoch_holds_each_row_and_its_reverse_complement(dataset_dir):
    """2n rows an epoch; each RC row is swap_strands of its forward row as laid out that epoch
    (shift included), with its target and singleton flag; its mask is its own, keyed by its id."""
    dataset = Dataset(dataset_dir)
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


def test_without_rc_rows_the_batches_are_unchanged(dataset_dir):
    """rc_rows=False (the default) and the forward ids of rc_rows=True give the batches the
    builder always gave: the layout shifted by draws keyed by (seed, epoch + 2**20, row), the
    masks keyed by (seed, epoch, row)."""
    dataset = Dataset(dataset_dir)
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


def test_two_ranks_share_out_the_doubled_global_batches():
    """DDP: rank r takes ids r::2 of each global batch of the doubled epoch, as for plain rows."""
    ids = with_rc_rows(np.arange(0, 103, 2), 103)
    single = [batch for _, batch in ShardedBatchSampler(ids, 16, shuffle=True, seed=5, rank=0, world=1)]
    ranks = [list(ShardedBatchSampler(ids, 16, shuffle=True, seed=5, rank=r, world=2)) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == math.ceil(104 / 16)
    for whole, (_, half0), (_, half1) in zip(single, *ranks):
        np.testing.assert_array_equal(half0, whole[0::2])
        np.testing.assert_array_equal(half1, whole[1::2])


class Batches(L.Callback):
    """The ids of every training and validation batch, by epoch."""

    def __init__(self):
        self.train: dict[int, list[int]] = {}
        self.valid: dict[int, list[int]] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.train.setdefault(trainer.current_epoch, []).extend(batch["rows"].tolist())

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.valid.setdefault(trainer.current_epoch, []).extend(batch["rows"].tolist())


@pytest.mark.parametrize("rc_rows", [False, True])
def test_a_run_trains_on_twice_the_rows_and_schedules_twice_the_steps(dataset_dir, tmp_path, monkeypatch, one_thread,
                                                                       rc_rows):
    """Every id of the doubled epoch is trained on, validation is not doubled, the epoch has twice
    the optimizer steps, and the warmup + cosine schedule counts them (its lr after epoch 1 of 2
    is the schedule's at step S of 2S, S the doubled steps per epoch)."""
    batches, make_trainer = Batches(), run_module._trainer

    def recording(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.callbacks.append(batches)
        return trainer

    monkeypatch.setattr(run_module, "_trainer", recording)
    settings = {**TINY_MODEL, "data.split": "hash:0.8", "data.rc_rows": rc_rows, "data.shift": 2,
                "data.singleton_flag": True, "batch_size": 32, "epochs": 2, "lr": 3e-3}
    config = load_run_config(preset="grid", overrides=[f"data.path={dataset_dir}", *as_overrides(settings)])
    result = train(config, tmp_path / "run", progress=False)
    dataset = Dataset(dataset_dir)
    n, (train_rows, valid_rows) = len(dataset), split_indices(dataset, "hash:0.8")
    assert result["n_train"] == len(train_rows)  # sequences, not rows of an epoch
    ids = with_rc_rows(train_rows, n) if rc_rows else train_rows
    steps = math.ceil(len(ids) / 32)
    assert steps == (2 if rc_rows else 1) * math.ceil(len(train_rows) / 32)
    for epoch in (0, 1):
        assert set(batches.train[epoch]) == set(ids.tolist()) and len(batches.train[epoch]) == 32 * steps
        assert sorted(batches.valid[epoch]) == sorted(valid_rows.tolist())
    metrics = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in metrics] == [steps, 2 * steps]
    # The scheduler has taken `steps` steps; the lr of the next is warmup_cosine's at step S of 2S
    # (one epoch of warmup), which a schedule of the undoubled epoch would have put at 0.
    assert float(metrics[0]["lr"]) == pytest.approx(3e-3 * lr_factor("warmup_cosine", steps, steps, 2 * steps, 16))
    assert float(metrics[0]["lr"]) > 2e-3
