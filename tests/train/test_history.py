"""Tests of :mod:`proformer.train.history`."""

from __future__ import annotations

import matplotlib
import pytest
from helpers import OLD, _disk_full, _intact, _metrics_rows

from proformer.train import history as train_history

matplotlib.use("Agg")


def test_failed_metrics_csv_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    path.write_bytes(OLD)
    monkeypatch.setattr(train_history.csv.DictWriter, "writerows", _disk_full)
    with pytest.raises(OSError):
        train_history.write_metrics(path, _metrics_rows())
    _intact(path)
