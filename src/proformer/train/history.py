"""A run's per-epoch history: metrics.csv (its columns, reading, atomic writing).

One home for the file's format: :class:`proformer.train.loggers.MetricsCSV`, the Lightning logger
that is metrics.csv, writes it with the row :class:`proformer.train.rundir.RunDirectory` logs after
every validation (which then draws the learning curve from it,
:func:`proformer.plots.plot_learning_curve`), and on ``--resume`` rewrites it without the epochs
that run again.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..io.atomic import atomic_write
from .module import per_target_metric_names

__all__ = ["METRIC_COLUMNS", "metric_columns", "read_metrics", "write_metrics"]

#: metrics.csv's columns with one target, in order (:func:`metric_columns` adds per-target ones).
METRIC_COLUMNS = (
    "epoch", "step", "lr", "train_loss", "train_mse", "train_reconstruction",
    "val_mse", "val_pearson", "val_spearman", "val_prediction_std", "seconds",
)


def metric_columns(target_names: list[str]) -> tuple[str, ...]:
    """metrics.csv's columns: :data:`METRIC_COLUMNS`, with several targets each target's Pearson
    and Spearman after ``val_prediction_std`` (``val_pearson_{name}``, see ``target_keys``)."""
    at = METRIC_COLUMNS.index("seconds")
    return METRIC_COLUMNS[:at] + tuple(per_target_metric_names(target_names)) + METRIC_COLUMNS[at:]


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv's rows, oldest epoch first, as dicts of strings (column -> value)."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_metrics(path: Path, rows: list[dict], columns: tuple[str, ...] = METRIC_COLUMNS) -> None:
    """Write ``rows`` as metrics.csv with ``columns``, atomically (a reader never sees half a file)."""
    # restval/ignore: rows of a metrics.csv written before per-target columns existed (--resume).
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
