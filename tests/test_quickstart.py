"""Tests of :mod:`proformer.quickstart`."""

from __future__ import annotations

import json
import re

import matplotlib
import numpy as np
import pytest

from proformer.data.synthetic import simulate_library, write_tsv
from proformer.quickstart import quickstart

matplotlib.use("Agg")


FAST = ["train.epochs=1", "train.batch_size=64", "model.dim=16"]


def test_quickstart_on_an_empty_file_names_the_users_file(tmp_path, capsys):
    from proformer.cli import main

    empty = tmp_path / "my_library.tsv"
    empty.write_text("")
    code = main(["quickstart", "--data", str(empty), "--out", str(tmp_path / "qs"), "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    assert str(empty) in err and "empty" in err
    assert "train.tsv" not in err  # not the quickstart's internal file


def test_quickstart_writes_a_complete_report(tmp_path, capsys, one_thread):
    metrics = quickstart(tmp_path / "qs", n_train=600, n_test=200, overrides=FAST, progress=True)
    # Each step says what it does on stderr when it starts (a quiet minute reads as a hang), and its time.
    steps = [line for line in capsys.readouterr().err.splitlines() if line.startswith("quickstart: ")]
    assert re.fullmatch(r"quickstart: simulating 600 training and 200 held-out sequences\.\.\. \d+\.\d s", steps[0])
    assert re.fullmatch(r"quickstart: preparing the training set\.\.\. \d+\.\d s", steps[1])
    assert steps[2].startswith("quickstart: training on 600 sequences for 1 epoch(s)")
    assert re.fullmatch(r"quickstart: predicting the held-out set\.\.\. \d+\.\d s", steps[3])
    assert re.fullmatch(rf"quickstart: writing {re.escape(str(tmp_path / 'qs' / 'report'))}\.\.\. \d+\.\d s", steps[4])
    report = tmp_path / "qs" / "report"
    for name in ("metrics.json", "learning_curve.png", "scatter.png", "report.md"):
        assert (report / name).stat().st_size > 0, name
    saved = json.loads((report / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["n_test"] == 200 and saved["n_train_rows"] == 600 and saved["model"]["dim"] == 16
    assert 0.5 < saved["noise_ceiling"] < 1
    assert saved["fraction_of_ceiling"] == pytest.approx(saved["test_pearson"] / saved["noise_ceiling"])
    # Held-out predictions are in training units (mean sort bins), one per test sequence.
    predictions = np.loadtxt(tmp_path / "qs" / "test_predictions.tsv", usecols=1, skiprows=1)  # predict's header
    measured = np.loadtxt(tmp_path / "qs" / "data" / "test.tsv", usecols=1)
    assert len(predictions) == 200
    assert np.corrcoef(predictions, measured)[0, 1] == pytest.approx(saved["test_pearson"])
    assert 0 < predictions.mean() < 17
    text = (report / "report.md").read_text()
    assert f"{saved['noise_ceiling']:.4f}" in text and f"{saved['test_pearson']:.4f}" in text
    # The advice to close the gap is a command that runs (tests/test_docs.py parses it too).
    assert "`proformer quickstart --set train.epochs=20 --n 100000`" in text


def test_a_failing_step_ends_its_progress_line_before_the_error(tmp_path, capsys):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        quickstart(tmp_path / "qs", data=empty, progress=True)
    assert capsys.readouterr().err.endswith("by sequence hash...\n")


def test_report_figures_have_whole_epoch_ticks_a_colour_bar_and_the_run_name(tmp_path):
    from proformer.plots import learning_curve_figure, scatter_figure
    from proformer.train.history import read_metrics

    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,train_mse,val_mse,train_reconstruction,val_pearson,val_spearman\n"
                       "0,1.0,0.9,1.4,0.3,0.25\n1,0.8,0.7,1.3,0.5,0.45\n2,0.7,0.65,1.2,0.6,0.55\n")
    figure = learning_curve_figure(read_metrics(metrics), "my-run")
    try:
        assert "my-run" in figure._suptitle.get_text()
        for ax in figure.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks == [1, 2, 3]  # epochs counted from 1, no 1.5
    finally:
        figure.clf()

    rng = np.random.default_rng(0)
    measured = rng.normal(8, 3, 500)
    figure = scatter_figure(measured + rng.normal(0, 1, 500), measured, "my-run: held-out set")
    try:
        main, colour_bar = figure.axes  # the hexbin and its colour bar
        assert main.get_title().startswith("my-run: held-out set, n = 500")
        assert colour_bar.get_ylabel() == "sequences per hexagon (log scale)"
    finally:
        figure.clf()


def test_quickstart_on_a_user_file_holds_out_a_stable_tenth(tmp_path, capsys, one_thread):
    source = write_tsv(simulate_library(800, seed=5), tmp_path / "mine.tsv")
    metrics = quickstart(tmp_path / "qs", data=source, overrides=FAST, progress=False)
    assert "quickstart:" not in capsys.readouterr().err  # progress=False (--no-progress): no step lines
    assert metrics["noise_ceiling"] is None and "unknown" in (tmp_path / "qs" / "report" / "report.md").read_text()
    train_lines = (tmp_path / "qs" / "data" / "train.tsv").read_text().splitlines()
    test_lines = (tmp_path / "qs" / "data" / "test.tsv").read_text().splitlines()
    assert sorted(train_lines + test_lines) == sorted(source.read_text().splitlines())
    assert 40 < len(test_lines) < 130
    again = quickstart(tmp_path / "qs2", data=source, overrides=FAST, progress=False)
    assert (tmp_path / "qs2" / "data" / "test.tsv").read_text().splitlines() == test_lines
    assert again["n_test"] == metrics["n_test"]


def test_held_out_rows_are_those_the_training_split_hash_puts_below_a_tenth(tmp_path):
    """One sequence hash for every stable split: the quickstart's held-out tenth is decided by
    the hash of data.split=hash:F, and a bad sequence is reported with its file and line."""
    from proformer.data.splits import sequence_hash, string_hash
    from proformer.quickstart import _split_file
    from proformer.sequence import encode_padded

    source = write_tsv(simulate_library(300, seed=2), tmp_path / "mine.tsv")
    _split_file(source, tmp_path / "train.tsv", tmp_path / "test.tsv", chunk_rows=64)
    held_out = [line.split("\t")[0] for line in (tmp_path / "test.tsv").read_text().splitlines()]
    sequences = [line.split("\t")[0] for line in source.read_text().splitlines()]
    hashes = sequence_hash(*encode_padded(sequences))
    assert np.array_equal(hashes, string_hash(sequences))
    assert held_out == [s for s, h in zip(sequences, hashes) if h < 0.1]

    lines = source.read_text().splitlines()
    lines[100] = "ACGTXACGT\t5"
    (tmp_path / "bad.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad\.tsv:101: invalid symbol 'X'"):
        _split_file(tmp_path / "bad.tsv", tmp_path / "t.tsv", tmp_path / "h.tsv", chunk_rows=64)
