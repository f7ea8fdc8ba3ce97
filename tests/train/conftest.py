"""Fixtures shared by the tests under tests/train/."""

from __future__ import annotations

import pytest
from helpers import (
    NAMES,
    TRAIN_2_EPOCHS,
    TRIM,
    as_overrides,
    lenti_table,
    make_dataset,
    two_target_table,
)

from proformer.config import load_run_config
from proformer.data.prepare import prepare
from proformer.train import train


@pytest.fixture(scope="session")
def small_planted_dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def lenti_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare(lenti_table(root / "train.tsv", 300, seed=0), root / "train", trim=TRIM, progress=False)
    return root / "train"


@pytest.fixture(scope="session")
def starr(tmp_path_factory):
    """A prepared 230-nt dataset with two targets (DeepSTARR-like)."""
    root = tmp_path_factory.mktemp("starr")
    prepare(two_target_table(root / "starr.tsv"), root / "data", seq_col="sequence", target_cols=NAMES, progress=False)
    return root / "data"


@pytest.fixture(scope="session")
def starr_run(starr, tmp_path_factory):
    """The grid preset on it, nothing about the shape set; progress on, stderr not a terminal."""
    import contextlib
    import io

    config = load_run_config(preset="grid", overrides=[f"data.path={starr}", *as_overrides(TRAIN_2_EPOCHS)])
    run_dir = tmp_path_factory.mktemp("runs") / "starr-run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result = train(config, run_dir, progress=True)
    return run_dir, result, err.getvalue()
