"""Every figure the package draws, in one place: learning curves, predicted-vs-measured hexbins,
heatmaps of a sweep, genome tracks over a locus. Train, evaluate, the quickstart and the sweep reports all draw through
these functions; each ``*_figure`` returns a matplotlib Figure (for a notebook), each ``plot_*``
writes a PNG atomically (:func:`save`). matplotlib is imported on use, with the Agg backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .io.atomic import atomic_path

__all__ = ["LEGEND_TARGETS", "TRACK_POINTS", "heatmap_figure", "learning_curve_figure", "plot_learning_curve",
           "plot_scatter", "plot_tracks", "save", "scatter_figure"]

#: With more targets than this, the per-target lines of a learning curve share one legend entry.
LEGEND_TARGETS = 6
#: A track panel draws at most this many steps: a longer region is averaged in equal bins.
TRACK_POINTS = 10_000


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG beside ``path`` and rename it into place; close it in any case."""
    plt = _pyplot()
    try:
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as temporary:
            fig.savefig(temporary, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def learning_curve_figure(rows: Sequence[dict], title: str):
    """The learning curve of a run's metrics.csv ``rows`` (one dict per epoch), in two panels.

    Left: training and validation MSE and the mask-filling loss. Right: validation Pearson and
    Spearman; with several targets these are the means over targets (labelled "Pearson r (mean
    of 2 targets)") and each target's Pearson is a thinner line. Epochs are counted from 1
    (metrics.csv counts from 0), with whole-number ticks; ``title`` names the run.
    """
    from matplotlib.ticker import MaxNLocator

    epochs = [int(row["epoch"]) + 1 for row in rows]

    def column(name: str) -> list[float]:
        return [float(row[name]) if row.get(name) not in ("", None) else float("nan") for row in rows]

    per_target = [name for name in (rows[0] if rows else {}) if name.startswith("val_pearson_")]
    mean = f" (mean of {len(per_target)} targets)" if per_target else ""
    fig, (left, right) = _pyplot().subplots(1, 2, figsize=(10, 3.8))
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
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        axis.legend(fontsize="small")
    fig.suptitle(f"{title}: learning curve ({len(epochs)} epoch{'s' if len(epochs) != 1 else ''})", fontsize=10)
    return fig


def plot_learning_curve(rows: Sequence[dict], out: str | Path, title: str) -> Path:
    """:func:`learning_curve_figure` written to the PNG ``out``."""
    return save(learning_curve_figure(rows, title), out, dpi=100)


def scatter_figure(predicted, measured, title: str, measured_label: str = "measured",
                   predicted_label: str = "predicted", r2: float | None = None):
    """A hexbin of predicted against measured values: a log colour scale with its colour bar, one
    extent for both axes (square hexagons, the identity as the dashed diagonal), titled with
    ``title``, n, Pearson r, Spearman rho and, when given, R^2.

    Parameters
    ----------
    predicted, measured : array-like
        ``(n,)`` each, in the same units.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from .metrics import pearson, spearman

    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    fig, ax = _pyplot().subplots(figsize=(5.4, 4.6))
    low, high = min(measured.min(), predicted.min()), max(measured.max(), predicted.max())
    if high == low:  # one value everywhere: give the axes some width
        low, high = low - 0.5, high + 0.5
    cells = ax.hexbin(measured, predicted, gridsize=40, mincnt=1, cmap="viridis", bins="log",
                      extent=(low, high, low, high))
    bar = fig.colorbar(cells, ax=ax, label="sequences per hexagon (log scale)", fraction=0.046, pad=0.04)
    bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1 2 5 10 20 50 ..., not 2x10^0
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel(measured_label)
    ax.set_ylabel(predicted_label)
    scores = f"r = {pearson(predicted, measured):.3f}, rho = {spearman(predicted, measured):.3f}"
    if r2 is not None:
        scores += f", R$^2$ = {r2:.3f}"
    ax.set_title(f"{title}, n = {len(measured):,}\n{scores}", fontsize=9)
    return fig


def plot_scatter(predicted, measured, out: str | Path, title: str, measured_label: str = "measured",
                 predicted_label: str = "predicted", r2: float | None = None) -> Path:
    """:func:`scatter_figure` written to the PNG ``out``."""
    return save(scatter_figure(predicted, measured, title, measured_label, predicted_label, r2), out)


def heatmap_figure(panels: Sequence[tuple[str, np.ndarray, str, float | None]], rows: Sequence[str],
                   columns: Sequence[str], row_header: str, title: str, marks: np.ndarray | None = None,
                   mark: str = "*"):
    """Heatmaps side by side, each cell labelled with its value (NaN cells grey, unlabelled).

    Parameters
    ----------
    panels : list of (title, values, colormap, limit)
        ``values`` float ``(len(rows), len(columns))``; ``limit``: a colour scale symmetric
        around 0 (``-limit..limit``, for differences), or None for the data's range.
    rows, columns : list of str
        The labels of the axes.
    marks : np.ndarray, optional
        bool, the shape of ``values``: cells whose label gets ``mark`` appended.
    """
    plt = _pyplot()
    marks = np.zeros((len(rows), len(columns)), dtype=bool) if marks is None else marks
    fig, axes = plt.subplots(1, len(panels), figsize=(1.1 * len(columns) * len(panels) + 2.5, 0.45 * len(rows) + 1.8),
                             squeeze=False)
    for ax, (name, data, cmap, limit) in zip(axes[0], panels):
        color = plt.get_cmap(cmap).with_extremes(bad="lightgrey")
        kwargs = {"vmin": -limit, "vmax": limit} if limit else {}
        image = ax.imshow(np.ma.masked_invalid(data), cmap=color, aspect="auto", **kwargs)
        fig.colorbar(image, ax=ax, fraction=0.046)
        for i in range(len(rows)):
            for j in range(len(columns)):
                if np.isfinite(data[i, j]):
                    red, green, blue, _ = color(image.norm(data[i, j]))
                    dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5  # white text on dark colours
                    ax.text(j, i, f"{data[i, j]:.3f}{mark if marks[i, j] else ''}", ha="center", va="center",
                            fontsize=7, color="white" if dark else "black")
        ax.set_xticks(range(len(columns)), columns, fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_ylabel(row_header)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig



def _track_values(path: str | Path, chrom: str, start: int, end: int) -> np.ndarray:
    """float64 ``(end - start,)``: a bigWig's or bedGraph's value per base, NaN without data;
    ValueError naming the file for a chromosome it lacks or a region past its end."""
    values, path = np.full(end - start, np.nan), Path(path)
    if path.suffix.lower() in (".bedgraph", ".bg"):
        rows = [line.split() for line in path.read_text().splitlines() if line.startswith(f"{chrom}\t")]
        for _, low, high, value, *_ in rows:
            values[max(int(low), start) - start : max(min(int(high), end) - start, 0)] = float(value)
        lengths = {chrom: end} if rows else {}
    else:
        from .io.signal import BigWigSignal

        bw = BigWigSignal(path, str(path))  # InputError (a ValueError) for a file that is not a bigWig
        lengths = bw.lengths
        if lengths.get(chrom, 0) >= end:
            values = bw.values(chrom, start, end).astype(np.float64)
        bw.close()
    if chrom not in lengths:
        names = f"it has {', '.join(list(lengths)[:8])}" if lengths else "no line of the bedGraph names it"
        raise ValueError(f"{path}: no chromosome {chrom!r} in this track ({names})")
    if lengths[chrom] < end:
        raise ValueError(f"{path}: {chrom} is {lengths[chrom]:,} bp, the region ends at {end:,}")
    return values


def plot_tracks(tracks: Sequence[tuple[str, str | Path]], region: tuple[str, int, int], path: str | Path,
                title: str | None = None) -> Path:
    """Genome tracks over one region, one panel each, stacked on a shared genome-position axis.

    Parameters
    ----------
    tracks : list of (label, path)
        bigWig (pyBigWig) or bedGraph (``.bedGraph``/``.bg``) files, e.g. a measured signal and
        ``proformer predict --fasta ... --out pred.bw``: each a step plot of its values, bases
        without data as gaps. Over more than :data:`TRACK_POINTS` bp the values are averaged in
        equal bins (a bin without data is a gap).
    region : (chrom, start, end)
        0-based, half-open. A track without ``chrom``, or shorter than ``end``: ValueError
        naming the file.
    path : path
        The PNG, written atomically (:func:`save`).
    title : str, optional
        Default: the region as ``chrom:start+1-end`` (1-based, inclusive).
    """
    chrom, start, end = region[0], int(region[1]), int(region[2])
    if not 0 <= start < end:
        raise ValueError(f"region {chrom}:{start}-{end}: give 0 <= start < end (0-based, half-open)")
    values = [_track_values(file, chrom, start, end) for _, file in tracks]
    step = -(-(end - start) // TRACK_POINTS)
    edges = np.append(np.arange(start, end, step), end)
    fig, axes = _pyplot().subplots(len(tracks), 1, sharex=True, squeeze=False, figsize=(10, 1.2 + 1.4 * len(tracks)))
    for ax, (label, _), per_base in zip(axes[:, 0], tracks, values):
        bins = np.append(per_base, np.full(-len(per_base) % step, np.nan)).reshape(-1, step)
        known = (~np.isnan(bins)).sum(axis=1)
        ax.stairs(np.where(known > 0, np.nansum(bins, axis=1) / np.maximum(known, 1), np.nan), edges, baseline=None,
                  color="C0", linewidth=1)
        ax.set_ylabel(label, fontsize=9)
    axes[-1, 0].set_xlim(start, end)
    axes[-1, 0].set_xlabel(f"{chrom} position (bp, 0-based)")
    fig.suptitle(title or f"{chrom}:{start + 1:,}-{end:,}", fontsize=10)
    return save(fig, path)
