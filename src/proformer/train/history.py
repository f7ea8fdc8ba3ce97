"""A run's per-epoch history: metrics.csv (its columns, reading, atomic writing) and the
learning curve drawn from it.

One home for the file's format and its picture: :class:`proformer.train.rundir.RunDirectory`
writes both after every validation, and ``--resume`` rewrites the file without the epochs that run
again.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..io.atomic import atomic_path, atomic_write
from .module import per_target_metric_names

__all__ = ["LEGEND_TARGETS", "METRIC_COLUMNS", "learning_curve_figure", "metric_columns", "plot_learning_curve",
           "read_metrics", "write_metrics"]

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


def plot_learning_curve(metrics_csv: Path, out: Path, title: str | None = None) -> None:
    """Training/validation loss and validation correlations per epoch (metrics.csv -> PNG).

    Parameters
    ----------
    metrics_csv : path
        A run's metrics.csv; with several targets, its ``val_pearson_{name}`` columns are drawn
        one line per target beside the mean.
    out : path
        The PNG written.
    title : str, optional
        Default: the run's name, the directory that holds ``metrics_csv``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = learning_curve_figure(read_metrics(metrics_csv), Path(metrics_csv).resolve().parent.name if title is None else title)
    try:
        with atomic_path(out, suffix=".png") as temporary:
            fig.savefig(temporary, dpi=100, format="png")
    finally:
        plt.close(fig)


#: With more targets than this, the per-target lines share one legend entry.
LEGEND_TARGETS = 6


def learning_curve_figure(rows: list[dict], title: str):
    """The learning curve of metrics.csv's ``rows`` as a matplotlib figure (two panels).

    Left: training and validation MSE and the mask-filling loss. Right: validation Pearson and
    Spearman; with several targets these are the means over targets (labelled "Pearson r (mean
    of 2 targets)") and each target's Pearson is a thinner line. Epochs are counted from 1,
    with whole-number ticks; the title is the run's name.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [int(r["epoch"]) + 1 for r in rows]

    def column(name: str) -> list[float]:
        return [float(r[name]) if r.get(name) not in ("", None) else float("nan") for r in rows]

    per_target = [name for name in (rows[0] if rows else {}) if name.startswith("val_pearson_")]
    mean = f" (mean of {len(per_target)} targets)" if per_target else ""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(epochs, column("train_mse"), "o-", label="train MSE")
    left.plot(epochs, column("val_mse"), "o-", label="validation MSE")
    left.plot(epochs, column("train_reconstruction"), "o--", label="train mask filling")
    left.set_ylabel("loss")
    right.plot(epochs, column("val_pearson"), "o-", linewidth=2, color="C0", label=f"Pearson r{mean}")
    right.plot(epochs, column("val_spearman"), "o-", linewidth=2, color="C1", label=f"Spearman rho{mean}")
    for index, name in enumerate(per_target):
        many = len(per_target) > LEGEND_TARGETS
        label = ("Pearson r per target" if index == 0 else None) if many else f"r {name[len('val_pearson_'):]}"
        right.plot(epochs, column(name), ".--", linewidth=1, color="0.6" if many else f"C{index + 2}", label=label)
    right.set_ylabel("validation correlation")
    for axis in (left, right):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
