"""Tests of :mod:`proformer.experiments.results`."""

from __future__ import annotations

import os

import matplotlib
import pytest
from helpers import OLD, _disk_full, _intact
from proformer.experiments.results import write_results, write_settings

matplotlib.use("Agg")


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
