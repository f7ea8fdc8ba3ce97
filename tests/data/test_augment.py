"""Tests of :mod:`proformer.data.augment` (EvoAug) and its place in the training batches."""

from __future__ import annotations

import numpy as np
import pytest

from proformer.config import load_run_config
from proformer.data import augment as evoaug
from proformer.data.augment import AUGMENTATIONS, augment, parse_augmentations
from proformer.sequence import COMPLEMENT, N

HEAD, TAIL = 5, 4


def rows(n=40, width=60, seed=0):
    """Stored rows of different lengths with recognisable flanks (N past each end)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, width + 1, size=n)
    codes = np.full((n, width), N, dtype=np.uint8)
    for i, length in enumerate(lengths):
        codes[i, :length] = rng.integers(0, 4, size=length)
    return codes, lengths


@pytest.mark.parametrize("names", [(name,) for name in AUGMENTATIONS] + [AUGMENTATIONS])
def test_flanks_lengths_and_padding_are_kept(names):
    codes, lengths = rows()
    out = augment(codes, lengths, np.arange(len(codes)), epoch=0, seed=1, names=names, head=HEAD, tail=TAIL)
    assert out.shape == codes.shape and out.dtype == np.uint8
    for i, length in enumerate(lengths):
        assert (out[i, :HEAD] == codes[i, :HEAD]).all()  # the 5' flank
        assert (out[i, length - TAIL : length] == codes[i, length - TAIL : length]).all()  # the 3' flank
        assert (out[i, length:] == N).all()  # the row's length
        assert (out[i, HEAD : length - TAIL] < 4).all()  # bases, no N from nowhere
    assert (out != codes).any()  # something changed


def test_the_draws_are_keyed_by_seed_epoch_and_row_not_by_the_batch():
    codes, lengths = rows()
    ids = np.arange(100, 140)
    whole = augment(codes, lengths, ids, 3, 7, AUGMENTATIONS, HEAD, TAIL)
    part = augment(codes[10:20], lengths[10:20], ids[10:20], 3, 7, AUGMENTATIONS, HEAD, TAIL)
    assert (whole[10:20] == part).all()  # one row's augmentation does not depend on its batch
    assert (augment(codes, lengths, ids, 4, 7, AUGMENTATIONS, HEAD, TAIL) != whole).any()  # another epoch
    assert (augment(codes, lengths, ids, 3, 8, AUGMENTATIONS, HEAD, TAIL) != whole).any()  # another seed


def test_each_augmentation_does_what_it_says(monkeypatch):
    region = np.arange(40, dtype=np.uint8) % 4
    inverted = evoaug._augment_region(region, ["inversion"], np.random.default_rng(0))
    # some segment [a, b) is replaced by its reverse complement, the rest untouched
    assert [(a, b) for a in range(40) for b in range(a + 1, 41)
            if (COMPLEMENT[region[a:b][::-1]] == inverted[a:b]).all() and (inverted[:a] == region[:a]).all()
            and (inverted[b:] == region[b:]).all() and (inverted != region).any()]
    rolled = evoaug._augment_region(region, ["translocation"], np.random.default_rng(1))
    assert any((np.roll(region, s) == rolled).all() for s in range(-10, 11) if s)
    inserted = evoaug._augment_region(region, ["insertion"], np.random.default_rng(2))
    # the region with k bases inserted somewhere, cut back to its length: some prefix is kept
    # and the tail after the insertion is the original shifted by k
    k_and_at = [(k, a) for k in range(1, 11) for a in range(0, 41)
                if (inserted[:a] == region[:a]).all() and (inserted[a + k :] == region[a : 40 - k]).all()]
    assert k_and_at
    deleted = evoaug._augment_region(region, ["deletion"], np.random.default_rng(3))
    assert [(k, a) for k in range(1, 11) for a in range(0, 41 - k)
            if (deleted[:a] == region[:a]).all() and (deleted[a : 40 - k] == region[a + k :]).all()]
    monkeypatch.setattr(evoaug, "SUBSTITUTION_RATE", 0.5)
    big = np.random.default_rng(4).integers(0, 4, 20_000).astype(np.uint8)
    substituted = evoaug._augment_region(big, ["substitution"], np.random.default_rng(5))
    assert abs((substituted != big).mean() - 0.5) < 0.02  # a hit always changes the base


def test_parse_and_config():
    assert parse_augmentations("evoaug") == AUGMENTATIONS
    assert parse_augmentations("") == ()
    assert parse_augmentations("deletion, inversion") == ("deletion", "inversion")
    for bad in ("shuffle", "deletion,deletion", "evoaug,deletion"):
        with pytest.raises(ValueError, match="data.augment"):
            parse_augmentations(bad)
    config = load_run_config(None, "grid", ["data.augment=insertion,deletion", "data.augment_finetune=3"])
    assert config.data.augment == "insertion,deletion" and config.data.augment_finetune == 3
    with pytest.raises(ValueError, match="augment_finetune"):
        load_run_config(None, "grid", ["data.augment_finetune=-1"])


def test_batches_are_augmented_until_the_fine_tune_epochs(tmp_path):
    """The BatchBuilder applies it to epochs before augment_until only, inside the layout's flanks."""
    from helpers import make_dataset

    from proformer.data.dataset import BatchBuilder, Dataset
    from proformer.sequence import Layout

    dataset = Dataset(make_dataset(tmp_path, n=50))
    layout = Layout(head=2, tail=2, length=int(dataset.lengths.max()) - 4, pad="n")
    plain = BatchBuilder(dataset, layout)
    builder = BatchBuilder(dataset, layout, augment=AUGMENTATIONS, augment_until=3)
    ids = np.arange(50)
    assert (builder[(0, ids)]["codes"] != plain[(0, ids)]["codes"]).any()
    assert (builder[(2, ids)]["codes"] != builder[(1, ids)]["codes"]).any()
    assert (builder[(3, ids)]["codes"] == plain[(3, ids)]["codes"]).all()  # the fine-tune epochs


def test_a_run_trains_with_augmentation_and_fine_tunes(planted_dataset, tmp_path, one_thread):
    from helpers import LENGTH

    from proformer.train import train

    config = load_run_config(preset="grid", overrides=[f"data.path={planted_dataset}", f"length={LENGTH}",
                                                       "dim=8", "heads=1", "blocks=1", "kmer=3", "epochs=2",
                                                       "batch_size=64", "data.augment=evoaug", "data.augment_finetune=1"])
    result = train(config, tmp_path / "run", progress=False)
    assert result["epochs_run"] == 2 and np.isfinite(result["best"]["val_pearson"])

    with pytest.raises(ValueError, match="leaves none of the run's 2 epochs augmented"):
        train(load_run_config(preset="grid", overrides=[f"data.path={planted_dataset}", f"length={LENGTH}", "dim=8",
                                                        "epochs=2", "data.augment=evoaug", "data.augment_finetune=2"]),
              tmp_path / "none", progress=False)
    assert not (tmp_path / "none" / "config.yaml").exists()  # refused before the run directory is written
