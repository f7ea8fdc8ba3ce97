"""Tests of :mod:`proformer.experiments.report`."""

from __future__ import annotations

import json
import os
import shutil

import matplotlib
import optuna
import pytest
from helpers import OLD, _disk_full, _half_written_savefig
from matplotlib.figure import Figure

from proformer.experiments import load_grid, poster, sweep_report
from proformer.experiments.study import open_study
from proformer.experiments.sweep import sweep_settings

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def yeast_sweep(tmp_path_factory):
    """poster-yeast's 72 cells at r = 0.5, built once: each test copies it (a study of 72 trials
    takes a second or two to write)."""
    out = tmp_path_factory.mktemp("yeast") / "sweep"
    fake_sweep(out, "poster-yeast", lambda m: 0.5)
    return out


def _fake_sweep(built, out):
    shutil.copytree(built, out)  # the study is named after the folder: "sweep" in both
    return out


def fake_sweep(out, grid_name, value, folds=1, collapsed=()):
    """A sweep's study (out/study.db, opened as run_sweep opens it) holding a finished trial per
    cell and fold, its Pearson r ``value(cell_config)``."""
    grid = load_grid(grid_name)
    out.mkdir(parents=True)
    study = open_study(out)
    study.set_user_attr("settings", sweep_settings(grid, None, [], out, 20, 0.1, folds))
    trials = []
    for cell in grid.cells:
        model = grid.config(cell).model
        for fold in range(folds):
            r = value(model) + 0.001 * fold
            row = {"cell": cell.id, "fold": fold, "row": cell.row, "column": cell.column, "dim": model.dim,
                   "heads": model.heads, "blocks": model.blocks, "readout": model.readout,
                   "activation": model.activation, "mask_ratio": model.mask_ratio, "kmer": model.kmer,
                   "best_epoch": 3, "epochs_run": 20, "val_pearson": r, "val_spearman": r, "val_mse": 0.5,
                   "val_prediction_std": 0.001 if cell.id in collapsed else 0.6, "n_train": 900, "n_valid": 100,
                   "seconds": 10.0, "collapsed": cell.id in collapsed}
            trials.append(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=r, user_attrs=row))
    study.add_trials(trials)
    return grid


def test_failed_heatmap_keeps_the_previous_png_and_report(yeast_sweep, tmp_path, monkeypatch):
    out = _fake_sweep(yeast_sweep, tmp_path / "sweep")
    sweep_report(out)
    before = {name: (out / name).read_bytes() for name in ("report.md", "heatmap.png")}
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    with pytest.raises(OSError):
        sweep_report(out, compare="poster-yeast")
    for name, content in before.items():
        assert (out / name).read_bytes() == content, name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_failed_sweep_report_write_keeps_the_previous_report(yeast_sweep, tmp_path, monkeypatch):
    out = _fake_sweep(yeast_sweep, tmp_path / "sweep")
    (out / "report.md").write_bytes(OLD)
    real_fsync = os.fsync

    def fsync(fd):  # the disk fills up when report.md is flushed (a PNG written first is fine)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".report.md"):
            _disk_full()
        real_fsync(fd)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        sweep_report(out)
    assert (out / "report.md").read_bytes() == OLD
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_report_has_the_poster_layout_values_and_differences(tmp_path):
    out = tmp_path / "sweep"
    key = lambda m: (m.dim, m.heads, m.blocks, m.readout)
    fake_sweep(out, "poster-yeast", lambda m: poster.YEAST_PEARSON[key(m)] - 0.01,
               collapsed={"dim256-heads8-blocks8-readoutpool"})
    text = sweep_report(out, compare="poster-yeast")
    assert (out / "report.md").read_text() == text
    lines = text.splitlines()
    header = lines.index("| dim / heads / blocks | AvgPool | H=1 | H=8 | H=16 | H=32 | H=64 |")
    table = lines[header + 2: header + 14]
    assert [line.split(" | ")[0] for line in table] == [f"| {d} / {h} / {b}" for d, h, b in poster.YEAST_SHAPES]
    assert table[0].startswith("| 64 / 2 / 1 | 0.6926 (0.7026, -0.0100) | 0.6946 (0.7046, -0.0100) |")
    assert "| 256 / 8 / 8 | 0.0065\u2020 (0.0165, -0.0100) |" in text
    assert "\u2020 collapsed" in text and "72 cells compared, mean difference -0.0100" in text
    assert "Budget" in text and "fraction 0.1" in text
    assert (out / "heatmap.png").stat().st_size > 10_000

    plain = sweep_report(out)
    assert "| 64 / 2 / 1 | 0.6926 | 0.6946 |" in plain
    with pytest.raises(ValueError, match="valid values are poster-yeast"):
        sweep_report(out, compare="poster")


def test_report_of_folds_shows_mean_and_spread(tmp_path):
    out = tmp_path / "cv"
    fake_sweep(out, "cpu-study", lambda m: 0.5, folds=3)
    text = sweep_report(out, compare="poster-yeast")
    assert "mean ± sd over 3 folds" in text
    assert "| 64 / 2 / 1 | 0.5010 ± 0.0010 (0.7026, -0.2016) | 0.5010 ± 0.0010 (0.7011, -0.2001) |" in text


def test_ablation_report_without_test_predictions_says_so(tmp_path):
    out = tmp_path / "ablation"
    fake_sweep(out, "ablation", lambda m: 0.9)
    text = sweep_report(out, compare="ablation")
    assert "| cell | configuration | validation r^2 | validation rho | poster Score PearsonR^2 |" in text
    assert "| pool-nomask | global average pooling, no mask filling | 0.810 | 0.900 | 0.766 | 0.819 | 0.918 | 0.961 |" in text
    assert "Test-set scores (Score PearsonR^2, Score Spearman) are not shown: no DREAM data directory" in text


def test_ablation_report_scores_test_predictions(tmp_path, dream_dir):
    out = tmp_path / "ablation"
    fake_sweep(out, "ablation", lambda m: 0.9)
    truth = json.loads((dream_dir / "public_leaderboard" / "ground.json").read_text())
    (out / "cells" / "mask-H32").mkdir(parents=True)
    (out / "cells" / "mask-H32" / "test_predictions.json").write_text(json.dumps(truth))
    text = sweep_report(out, dream_dir=dream_dir)
    assert "| mask-H32 | mask filling, 32 expression heads | 1.000 | 1.000 | 1.000 | 1.000 | 0.810 | 0.900 |" in text
    assert "| mask-H1 | mask filling, 1 expression head | - | - | - | - | 0.810 | 0.900 |" in text
