"""``proformer evaluate --fasta --signal``: predicted against measured signal over genome windows.

The windows are those ``predict`` would score: the centred windows of BED intervals, or regions
tiled at a stride (:mod:`proformer.tracks.windows`). Each window's measured value is what
``atac prepare`` makes its target from: the mean of the bigWig over the window's target bases
(no data counts as 0), the run's transform (``none`` or ``log1p``), stored as float32. So
evaluating the windows of an ``atac prepare`` dataset's ``windows.tsv`` gives the numbers of
``proformer evaluate --data`` on that dataset, by a second path. Metrics (:func:`proformer.
evaluate.regression_metrics`) over all windows and per chromosome, in training units.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..evaluate import regression_metrics
from ..inference import load, units_text
from ..io.atomic import atomic_write
from ..io.folders import check_output_folder, output_folder
from ..io.errors import InputError
from ..io.genome import Genome
from ..io.peaks import read_intervals
from ..io.signal import BigWigSignal
from ..limits import whole
from ..plots import plot_scatter
from ..sequence import reverse_complement
from .predict import MAX_N_FRAC, WindowChunk, _fraction, _regions, track_column
from .windows import (BLOCK, Placement, centred_windows, check_chromosome, placement_of, read_windows, tile,
                      tiled_count, too_many_n)

__all__ = ["GenomeEvaluation", "evaluate_genome", "measured_means"]


@dataclass
class ChromosomeMetrics:
    """Agreement over the windows of one chromosome (``all``: every window)."""

    chromosome: str
    n: int
    pearson: float
    spearman: float
    mse: float
    r2: float


@dataclass
class GenomeEvaluation:
    """What :func:`evaluate_genome` measured."""

    model: str | list[str]
    fasta: str
    signal: str
    windows: str
    target: str
    units: str
    skipped: dict = field(default_factory=dict)
    chromosomes: list[ChromosomeMetrics] = field(default_factory=list)
    scatter: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready; NaN becomes null."""
        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        values = asdict(self)
        values["chromosomes"] = {m["chromosome"]: {k: clean(v) for k, v in m.items() if k != "chromosome"}
                                 for m in values["chromosomes"]}
        return values

    def to_table(self) -> str:
        model = self.model if isinstance(self.model, str) else f"the mean of {len(self.model)} runs"
        lines = [f"{model} on {self.windows} of {self.fasta} against {self.signal}: {self.target} in {self.units}"]
        header = ("chromosome", "n", "pearson", "spearman", "mse", "r2")
        rows = [(m.chromosome, f"{m.n:,}", f"{m.pearson:.4f}", f"{m.spearman:.4f}", f"{m.mse:.4g}", f"{m.r2:.4f}")
                for m in self.chromosomes]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        if any(self.skipped.values()):
            lines.append("windows left out: " + ", ".join(f"{k} {v:,}" for k, v in self.skipped.items() if v))
        if self.scatter:
            lines.append(f"scatter plot: {self.scatter}")
        return "\n".join(lines)


def measured_means(signal: BigWigSignal, chrom: str, starts: np.ndarray, placement: Placement) -> np.ndarray:
    """float64 ``(k,)``: the measured target of windows starting at ``starts`` of ``chrom``: the
    signal's mean over each window's target bases (NaN as 0), transformed, rounded to float32
    as ``atac prepare`` stores it."""
    low = int(starts.min()) + placement.target[0]
    values = signal.values(chrom, low, int(starts.max()) + placement.target[1])
    block = values[(starts - low + placement.target[0])[:, None] + np.arange(placement.target_length)].astype(np.float64)
    block[np.isnan(block)] = 0.0
    mean = block.mean(axis=1)
    if placement.transform == "log1p":
        mean = np.log1p(mean)
    return mean.astype(np.float32).astype(np.float64)


def evaluate_genome(
    model: str | os.PathLike | Sequence[str | os.PathLike],
    fasta: str | os.PathLike,
    signal: str | os.PathLike,
    *,
    bed: str | os.PathLike | None = None,
    regions: Sequence[str] = (),
    stride: int | None = None,
    target: str | int | None = None,
    max_n_frac: float = MAX_N_FRAC,
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "32",
    rc_average: bool | None = None,
    progress: bool = True,
) -> GenomeEvaluation:
    """Predict genome windows and compare with the measured signal, over all windows and per chromosome.

    Parameters
    ----------
    model, fasta
        As :func:`proformer.tracks.predict_track`.
    signal : path
        The measured bigWig.
    bed : path, optional
        Intervals whose centred windows are compared (strand as ``predict --bed``; an interval
        longer than the window gives several windows, each a point). Without it, ``regions``
        (default: every chromosome) tiled at ``stride`` (default: the target length).
    target : str or int, optional
        The run's target compared with the signal; needed when it predicts several.
    max_n_frac : float
        Windows with more N than this are left out (counted).
    out_dir : path, optional
        Also write ``metrics.json`` and ``scatter.png`` (hexbin of predicted against measured)
        here, as ``proformer evaluate --out-dir`` does.

    Returns
    -------
    GenomeEvaluation
    """
    max_n_frac = _fraction(max_n_frac)
    stride = None if stride is None else whole("stride", stride, 1, 10**9)
    intervals = read_intervals(bed) if bed is not None else None
    if out_dir is not None:
        check_output_folder(Path(out_dir), "--out-dir", "evaluate writes a folder")
    genome = Genome(fasta, os.fspath(fasta))
    source = BigWigSignal(Path(signal), os.fspath(signal))
    try:
        runner = load(model, device, batch_size=batch_size, precision=precision, rc_average=rc_average)
        placement = placement_of([member.info for member in runner.members], runner.runs)
        column = track_column(runner, target, f"one is compared with {os.fspath(signal)}")
        skipped = {"off_chromosome": 0, "too_many_n": 0}
        parsed = None if intervals is not None else _regions(regions, genome, os.fspath(fasta))
        _check_signal(source, genome, intervals.chrom if intervals is not None else [region.chrom for region in parsed])
        if intervals is not None:
            chunks, total, described = _bed_chunks(intervals, genome, source, placement, stride, skipped)
        else:
            chunks, total, described = _track_chunks(parsed, bool(regions), genome, source, placement, stride)
        # one value of each kind per window, and the chromosome's index, not its name: the rank
        # correlations need every value, so memory is ~20 bytes per window (3 GB for a human genome at stride 20)
        predicted, measured, chroms = [], [], []
        index = {name: i for i, name in enumerate(genome.lengths)}
        for chunk, values in runner.predict_chunks(_filtered(chunks, max_n_frac, skipped), progress=progress,
                                                   total=total, unit="windows"):
            predicted.append(values[:, column])
            measured.append(chunk.measured)
            names = [chunk.chrom] * len(chunk) if isinstance(chunk.chrom, str) else chunk.chrom
            chroms.append(np.array([index[name] for name in names], dtype=np.int32))
    finally:
        genome.close()
        source.close()
    if not predicted:
        raise ValueError(f"no window to evaluate in {described}: {skipped['off_chromosome']:,} off a chromosome's end, "
                         f"{skipped['too_many_n']:,} with more than {max_n_frac:g} N")
    predictions, truth, chroms = np.concatenate(predicted), np.concatenate(measured), np.concatenate(chroms)
    name = runner.target_names[column]
    result = GenomeEvaluation(model=os.fspath(model) if isinstance(model, (str, os.PathLike)) else [os.fspath(m) for m in model],
                              fasta=os.fspath(fasta), signal=os.fspath(signal), windows=described, target=name,
                              units=units_text(False), skipped=skipped)
    names = list(index)
    for chrom in [-1, *dict.fromkeys(chroms.tolist())]:  # -1: every window
        rows = slice(None) if chrom == -1 else chroms == chrom
        result.chromosomes.append(ChromosomeMetrics("all" if chrom == -1 else names[chrom], len(truth[rows]),
                                                    **regression_metrics(predictions[rows], truth[rows])))
    if out_dir is not None:
        out_dir = Path(out_dir)
        result.scatter = str(out_dir / "scatter.png")
        with output_folder(out_dir, ("metrics.json", "scatter.png"), flag="--out-dir", what="evaluate writes a folder") as staging:
            plot_scatter(predictions, truth, staging / "scatter.png", f"{described}: {name}", f"measured {name}",
                         f"predicted {name}", r2=result.chromosomes[0].r2)
            with atomic_write(staging / "metrics.json", flag="--out-dir") as handle:
                json.dump(result.to_dict(), handle, indent=2)
                handle.write("\n")
    return result


def _check_signal(source: BigWigSignal, genome: Genome, chroms: Sequence[str]) -> None:
    """Every chromosome evaluated must be in the bigWig, with the FASTA's length (one genome build)."""
    for chrom in dict.fromkeys(chroms):
        if chrom in genome.lengths and source.lengths.get(chrom) != genome.lengths[chrom]:
            found = (f"has {chrom} with {source.lengths[chrom]:,} bp against the FASTA's {genome.lengths[chrom]:,} (two genome "
                     f"builds?)" if chrom in source.lengths else f"has no {chrom!r} (it has {', '.join(list(source.lengths)[:8])})")
            raise InputError(f"--signal {source.display} {found}: give the signal of the genome in {genome.display}")


def _filtered(chunks: Iterator[WindowChunk], max_n_frac: float, skipped: dict) -> Iterator[WindowChunk]:
    """Chunks without their windows of too many N (counted)."""
    for chunk in chunks:
        keep = ~too_many_n(chunk.codes, max_n_frac)
        skipped["too_many_n"] += int((~keep).sum())
        if keep.any():
            chrom = chunk.chrom if isinstance(chunk.chrom, str) else [c for c, k in zip(chunk.chrom, keep) if k]
            yield WindowChunk(chunk.codes[keep], chrom, chunk.starts[keep], measured=chunk.measured[keep])


def _track_chunks(parsed, chosen, genome, source, placement, stride):
    stride = placement.target_length if stride is None else stride
    total = sum(tiled_count(region, genome.lengths[region.chrom], placement, stride) for region in parsed)

    def chunks():
        for region in parsed:
            for starts, _, _ in tile(region, genome.lengths[region.chrom], placement, stride):
                yield WindowChunk(read_windows(genome, region.chrom, starts, placement.window), region.chrom, starts,
                                  measured=measured_means(source, region.chrom, starts, placement))

    described = ", ".join(region.text for region in parsed) if chosen else "every chromosome"
    return chunks(), total, f"{described} at stride {stride}"


def _bed_chunks(intervals, genome, source, placement, stride, skipped):
    window = placement.window
    stride = window if stride is None else stride
    for i, chrom in enumerate(intervals.chrom):
        check_chromosome(chrom, genome.lengths, genome.display, intervals.where(i))
    count, starts = centred_windows(intervals.start, intervals.end, window, stride)
    owner = np.repeat(np.arange(len(intervals)), count)
    lengths = np.array([genome.lengths[c] for c in intervals.chrom], dtype=np.int64)[owner]
    inside = (starts >= 0) & (starts + window <= lengths)
    skipped["off_chromosome"] += int((~inside).sum())
    kept = np.flatnonzero(inside)

    def chunks():
        for begin in range(0, len(kept), BLOCK):
            rows = kept[begin : begin + BLOCK]
            codes = np.empty((len(rows), window), dtype=np.uint8)
            measured = np.empty(len(rows))
            for j, row in enumerate(rows):  # one read per window: intervals may lie anywhere
                chrom, start = intervals.chrom[owner[row]], starts[row : row + 1]
                block = read_windows(genome, chrom, start, window)
                codes[j] = reverse_complement(block)[0] if intervals.strand[owner[row]] == "-" else block[0]
                measured[j] = measured_means(source, chrom, start, placement)[0]
            yield WindowChunk(codes, [intervals.chrom[owner[r]] for r in rows], starts[rows], measured=measured)

    return chunks(), len(kept), f"the windows of {intervals.display}"
