"""Issue 13, "data lost": every result file goes through ``proformer.io.atomic``.

A fault injected while a result is written (the plot, the CSV writer, the rename, a disk that
fills up) leaves the previous file exactly as it was and no temporary file behind.
"""

from __future__ import annotations

import errno
import os

import matplotlib
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure

from proformer.experiments import sweep_report
from proformer.experiments.results import write_results, write_settings
from proformer.plots import plot_learning_curve
from proformer.train import history as train_history

OLD = b"the previous, complete file\n"


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_written_savefig(self, fname, *args, **kwargs):
    """A savefig that dies half-way: it has written part of the file when it fails."""
    with open(fname, "wb") as handle:
        handle.write(b"\x89PNG half")
    raise OSError(errno.ENOSPC, "No space left on device")


def _intact(path, old=OLD) -> None:
    assert path.read_bytes() == old, f"{path.name} was changed by a failed write"
    left = sorted(p.name for p in path.parent.iterdir() if p.name != path.name)
    assert not [name for name in left if name.startswith(".") or name.endswith((".tmp", ".part"))], left


def _metrics_rows() -> list[dict]:
    row = dict.fromkeys(train_history.METRIC_COLUMNS, "")
    row.update(epoch=0, step=1, lr=1e-3, train_mse=1.0, val_mse=1.0, train_reconstruction=1.0, val_pearson=0.1,
               val_spearman=0.1)
    return [row]


def test_failed_metrics_csv_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    path.write_bytes(OLD)
    monkeypatch.setattr(train_history.csv.DictWriter, "writerows", _disk_full)
    with pytest.raises(OSError):
        train_history.write_metrics(path, _metrics_rows())
    _intact(path)


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
    import numpy as np

    from proformer.plots import plot_scatter

    png = tmp_path / "scatter.png"
    png.write_bytes(OLD)
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    with pytest.raises(OSError):
        plot_scatter(np.arange(10.0), np.arange(10.0), png, "run")
    _intact(png)


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


def test_failed_results_csv_write_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "results.csv").write_bytes(OLD)
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError):
        write_results(tmp_path, [{"cell": "a", "fold": 0}], ["cell", "fold"])
    _intact(tmp_path / "results.csv")


def test_failed_sweep_json_write_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "sweep.json").write_bytes(OLD)
    monkeypatch.setattr(os, "replace", _disk_full)
    with pytest.raises(OSError):
        write_settings(tmp_path, {"grid": "x"})
    _intact(tmp_path / "sweep.json")


def _fake_sweep(out):
    from test_sweep import fake_sweep

    fake_sweep(out, "poster-yeast", lambda m: 0.5)
    return out


def test_failed_heatmap_keeps_the_previous_png_and_report(tmp_path, monkeypatch):
    out = _fake_sweep(tmp_path / "sweep")
    sweep_report(out)
    before = {name: (out / name).read_bytes() for name in ("report.md", "heatmap.png")}
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    with pytest.raises(OSError):
        sweep_report(out, compare="poster-yeast")
    for name, content in before.items():
        assert (out / name).read_bytes() == content, name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_failed_sweep_report_write_keeps_the_previous_report(tmp_path, monkeypatch):
    out = _fake_sweep(tmp_path / "sweep")
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
