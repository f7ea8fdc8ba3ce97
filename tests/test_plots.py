"""Tests of :mod:`proformer.plots`."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from helpers import (
    NAMES,
    OLD,
    _half_written_savefig,
    _intact,
    _metrics_rows,
)
from matplotlib.figure import Figure

from proformer.plots import learning_curve_figure, plot_learning_curve
from proformer.train import history as train_history

matplotlib.use("Agg")


def test_failed_learning_curve_keeps_the_previous_png(tmp_path, monkeypatch):
    metrics = tmp_path / "metrics.csv"
    train_history.write_metrics(metrics, _metrics_rows())
    png = tmp_path / "learning_curve.png"
    png.write_bytes(OLD)
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    with pytest.raises(OSError):
        plot_learning_curve(train_history.read_metrics(metrics), png, "run")
    assert png.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learning_curve.png", "metrics.csv"]


def test_learning_curve_is_still_a_png(tmp_path):
    metrics = tmp_path / "metrics.csv"
    train_history.write_metrics(metrics, _metrics_rows())
    plot_learning_curve(train_history.read_metrics(metrics), tmp_path / "learning_curve.png", "run")
    assert (tmp_path / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learning_curve.png", "metrics.csv"]


def test_failed_quickstart_scatter_keeps_the_previous_png(tmp_path, monkeypatch):

    from proformer.plots import plot_scatter

    png = tmp_path / "scatter.png"
    png.write_bytes(OLD)
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    with pytest.raises(OSError):
        plot_scatter(np.arange(10.0), np.arange(10.0), png, "run")
    _intact(png)


def test_the_learning_curve_has_whole_epochs_the_run_name_and_marks_the_mean():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"epoch": str(e), "train_mse": "1", "val_mse": "1", "train_reconstruction": "1", "val_pearson": str(0.2 * e),
             "val_spearman": str(0.2 * e), f"val_pearson_{NAMES[0]}": str(0.3 * e), f"val_pearson_{NAMES[1]}": str(0.1 * e),
             f"val_spearman_{NAMES[0]}": "0", f"val_spearman_{NAMES[1]}": "0"} for e in range(3)]
    fig = learning_curve_figure(rows, "starr-run")
    try:
        assert fig._suptitle.get_text() == "starr-run: learning curve (3 epochs)"
        left, right = fig.axes
        for axis in (left, right):
            assert all(float(t).is_integer() for t in axis.get_xticks())
        labels = [line.get_label() for line in right.get_lines()]
        assert "Pearson r (mean of 2 targets)" in labels and f"r {NAMES[0]}" in labels and f"r {NAMES[1]}" in labels
    finally:
        plt.close(fig)
    single = learning_curve_figure([{k: v for k, v in r.items() if "_enrichment" not in k} for r in rows], "one")
    try:
        assert [line.get_label() for line in single.axes[1].get_lines()] == ["Pearson r", "Spearman rho"]
    finally:
        plt.close(single)


def _bigwig(path, chromosomes, entries):
    pyBigWig = pytest.importorskip("pyBigWig")
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(chromosomes, maxZooms=0)
    chrom, starts, ends, values = zip(*entries)
    bw.addEntries(list(chrom), list(starts), ends=list(ends), values=[float(v) for v in values])
    bw.close()
    return path


def test_plot_tracks_draws_a_png_and_names_a_track_without_the_chromosome(tmp_path):
    from proformer.plots import plot_tracks

    measured = _bigwig(tmp_path / "measured.bw", [("chr1", 1000), ("chr2", 500)],
                       [("chr1", 100, 120, 1.0), ("chr1", 120, 140, 3.0), ("chr1", 400, 500, 0.5), ("chr2", 0, 50, 2.0)])
    predicted = _bigwig(tmp_path / "predicted.bw", [("chr1", 1000)], [("chr1", 100, 120, 1.5), ("chr1", 140, 160, 2.5)])
    png = plot_tracks([("measured", measured), ("predicted", predicted)], ("chr1", 50, 600), tmp_path / "locus.png",
                      title="two tracks")
    assert png == tmp_path / "locus.png" and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"predicted\.bw: no chromosome 'chr2'"):
        plot_tracks([("measured", measured), ("predicted", predicted)], ("chr2", 0, 100), tmp_path / "other.png")
    assert not (tmp_path / "other.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locus.png", "measured.bw", "predicted.bw"]
