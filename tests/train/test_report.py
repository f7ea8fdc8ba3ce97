"""Tests of :mod:`proformer.train.report`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import (
    NAMES,
    cli_status,
    epoch_lines,
    read_csv,
    settings,
)

from proformer.train.report import best_summary

LEFT = re.compile(r"; (at most )?about (\d+(\.\d)? s|\d+ min( \d+ s)?|\d+ h( \d+ min)?) left$")


def test_every_epoch_prints_one_line_with_its_time_and_the_time_left_even_without_progress(
        lenti_dataset, tmp_path, capsys, one_thread):
    """Old code: --no-progress printed no epoch line (``len(lines) == 3`` fails)."""
    # Without early stopping (auto's default stops early), the planned epochs are the estimate.
    status = cli_status("train", "--out", tmp_path / "run", "--no-progress", *settings(lenti_dataset, early_stopping=0))
    err = capsys.readouterr().err
    assert status == 0, err
    lines = epoch_lines(err)
    assert len(lines) == 3, err
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    for line in lines:
        assert "train loss " in line and "Pearson " in line
        assert re.search(r"; \d+(\.\d)? s(;|$)", line), line  # the epoch's own time
    # The estimate from the first epoch on; none after the last (nothing is left).
    assert all(LEFT.search(line) and "at most" not in line for line in lines[:2]), lines
    assert "left" not in lines[2]
    assert "\r" not in err  # no bar in a log


def test_with_a_step_budget_and_early_stopping_the_estimate_is_of_the_planned_epochs_at_most(
        lenti_dataset, tmp_path, capsys, one_thread):
    """train.steps sets the epochs the estimate counts; early stopping may end sooner: "at most".
    Old code: no epoch line with --no-progress (``lines`` is empty: ``lines[0]`` fails)."""
    status = cli_status("train", "--out", tmp_path / "run", "--no-progress",
                 *settings(lenti_dataset, steps=8, epochs=50, early_stopping=10))
    err = capsys.readouterr().err
    assert status == 0, err
    planned = int(re.search(r"budget of 8 optimizer steps: (\d+) epoch", err).group(1))
    assert planned >= 2
    lines = epoch_lines(err)
    assert lines[0].startswith(f"epoch 1/{planned}: ") and "at most about" in lines[0], lines
    assert len(lines) == planned


def test_several_targets_get_a_pearson_and_spearman_each_beside_the_mean(starr_run):
    run_dir, result, _ = starr_run
    rows = read_csv(run_dir / "metrics.csv")
    assert len(rows) == 2
    for row in rows:
        pearsons = [float(row[f"val_pearson_{name}"]) for name in NAMES]
        spearmans = [float(row[f"val_spearman_{name}"]) for name in NAMES]
        assert float(row["val_pearson"]) == pytest.approx(np.mean(pearsons), abs=1e-9)
        assert float(row["val_spearman"]) == pytest.approx(np.mean(spearmans), abs=1e-9)
        assert all(np.isfinite(pearsons)) and pearsons[0] != pearsons[1]
    best = json.loads((run_dir / "config.json").read_text())["best"]
    assert {f"val_pearson_{name}" for name in NAMES} <= set(best) and best == result["best"]
    summary = best_summary(result)
    assert "means of 2 targets" in summary
    assert all(f"{name} {best[f'val_pearson_{name}']:.4f}" in summary for name in NAMES)


def test_progress_in_a_log_is_plain_lines_with_the_epoch_metrics(starr_run):
    """stderr is not a terminal: no progress bar (no carriage returns), a line per epoch."""
    _, _, err = starr_run
    assert "\r" not in err
    epochs = [line for line in err.splitlines() if line.startswith("epoch ") and "validation MSE" in line]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all(f"{NAMES[0]} " in line for line in epochs)


def test_the_time_left_of_a_fold_counts_the_folds_after_it_at_its_planned_epochs():
    """Old code counted the later folds at the config's placeholder epochs (20), not the epochs
    the auto rule gave the fold (100 on the lentiMPRA sample): 15 minutes said, 43 meant."""
    from types import SimpleNamespace

    from proformer.train.report import EpochLines

    trainer = SimpleNamespace(max_epochs=100, callbacks=[])
    lines = EpochLines(member=("fold", 1, 5))  # the second of five folds
    lines.epoch_seconds = [6.0]
    assert lines.time_left(trainer, done=40) == "about 36 min left"  # (60 + 3 x 100) epochs x 6 s
    last = EpochLines(member=("fold", 4, 5))
    last.epoch_seconds = [6.0]
    assert last.time_left(trainer, done=99) == "about 6.0 s left" and last.time_left(trainer, done=100) is None
