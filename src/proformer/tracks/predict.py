"""``proformer predict --fasta``: a run applied along a genome, to BED intervals or as a track.

:func:`predict_intervals` scores the intervals of a BED file (one row each, in file order);
:func:`predict_track` tiles regions or whole chromosomes into windows and writes each window's
prediction over the bases its target covers, as bigWig or bedGraph. Window placement is
:mod:`proformer.tracks.windows`'s; the model is :func:`proformer.inference.load`'s, which lays
each window out as training did, so a window's value is ``predict`` of its sequence cut by hand.
Work goes in blocks of windows read from the genome through its index (pyfaidx), so memory is
bounded whatever the region's size; ``devices > 1`` predicts on several processes
(:mod:`proformer.parallel`) and writes the same file as one process.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..inference import load, units_text
from ..io.atomic import atomic_write, check_output
from ..io.genome import Genome
from ..io.peaks import Intervals, read_intervals
from ..io.track import track_format, write_track
from ..limits import whole
from ..predict import processes
from ..sequence import reverse_complement
from .windows import (BLOCK, Region, centred_windows, check_chromosome, parse_region, placement_of, read_windows, tile,
                      tiled_count, too_many_n)

__all__ = ["WindowChunk", "predict_intervals", "predict_track"]

#: A window with more N than this is not predicted (``atac prepare``'s ``max_n_frac``).
MAX_N_FRAC = 0.1


@dataclass
class WindowChunk:
    """Windows read from a genome, as :meth:`proformer.inference.Run.predict_chunks` takes them.

    Attributes
    ----------
    codes : np.ndarray
        uint8 ``(k, window)``: each window's bases (reverse complemented for a minus-strand interval).
    chrom : str or list of str
        The chromosome of every window (a track's block), or of each window.
    starts : np.ndarray
        int64 ``(k,)``: window starts.
    ranges : tuple of np.ndarray, optional
        A track's: ``(range_starts, range_ends)``, the bases each window's value covers.
    rows, count, keep : np.ndarray, optional
        Intervals': the intervals of the chunk, their windows, and which of those windows are in
        ``codes`` (the others hold too many N).
    measured : np.ndarray, optional
        float64 ``(k,)``: each window's measured target (``evaluate --fasta``).
    """

    codes: np.ndarray
    chrom: str | list[str]
    starts: np.ndarray
    ranges: tuple[np.ndarray, np.ndarray] | None = None
    rows: np.ndarray | None = None
    count: np.ndarray | None = None
    keep: np.ndarray | None = None
    measured: np.ndarray | None = None

    def __post_init__(self):
        self.lengths = np.full(len(self.codes), self.codes.shape[1], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.codes)

    def where(self, i: int) -> str:
        chrom = self.chrom if isinstance(self.chrom, str) else self.chrom[i]
        return f"window {chrom}:{int(self.starts[i])}-{int(self.starts[i]) + self.codes.shape[1]}"


def _open(model, fasta, device, batch_size, precision, rc_average, devices, num_nodes, out, inputs):
    """What both commands start with: processes, the output checked, the genome and the model."""
    trainer, lead = processes(device, devices, num_nodes, fasta=fasta, **inputs)
    check_output(out, fasta, *inputs.values())
    genome = Genome(fasta, os.fspath(fasta))
    try:
        runner = load(model, device if trainer is None else trainer.strategy.root_device, batch_size=batch_size,
                      precision=precision, rc_average=rc_average)
        placement = placement_of([member.info for member in runner.members], runner.runs)
    except BaseException:
        genome.close()
        raise
    return trainer, lead, genome, runner, placement


def track_column(runner, target: str | int | None, why: str = "a track holds one") -> int:
    """The column of ``target`` among the run's predictions; the run's one target by default, and
    ValueError listing the targets when it has several (``why`` says why one is needed)."""
    if target is None and runner.n_targets > 1:
        raise ValueError(f"the model predicts {', '.join(runner.target_names)}; {why}: give --target NAME")
    return runner.target_index(target)


def _predict(runner, trainer, chunks: Iterator, write: Callable | None, standardized: bool, progress: bool,
             total: int) -> None:
    if trainer is None:
        for chunk, values in runner.predict_chunks(chunks, standardized=standardized, progress=progress, total=total,
                                                   unit="windows"):
            write(chunk, values)
    else:
        from ..parallel import predict_chunks_ddp

        predict_chunks_ddp(trainer, runner, chunks, write, standardized, progress, total=total, unit="windows")


def predict_track(
    model: str | os.PathLike | Sequence[str | os.PathLike],
    fasta: str | os.PathLike,
    out: str | os.PathLike,
    *,
    regions: Sequence[str] = (),
    stride: int | None = None,
    target: str | int | None = None,
    standardized: bool = False,
    max_n_frac: float = MAX_N_FRAC,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "32",
    rc_average: bool | None = None,
    progress: bool = True,
    devices: int = 1,
    num_nodes: int = 1,
) -> dict:
    """Tile regions of a genome into windows and write each window's prediction as a track.

    Parameters
    ----------
    model : path, or list of paths
        A run directory or several (their mean), as :func:`proformer.load`; an ensemble's runs
        must place their windows alike.
    fasta : path
        The genome: plain FASTA or bgzip, indexed by pyfaidx (``.fai`` written on first use).
    out : path
        ``.bw``/``.bigWig`` or ``.bedGraph``/``.bg`` (:mod:`proformer.io.track`), written
        atomically; a bigWig's header lists every chromosome of the FASTA with its length.
    regions : list of str
        ``CHROM`` or ``CHROM:START-END`` (1-based, inclusive), disjoint; none: every chromosome.
    stride : int, optional
        bp between consecutive windows; default the run's target length (20 for the ATAC recipe:
        contiguous, non-overlapping values). Placement: :mod:`proformer.tracks.windows`.
    target : str or int, optional
        The target written (a track holds one); needed when the run predicts several.
    standardized : bool
        z-scores of the training targets instead of training units.
    max_n_frac : float
        Windows with more N than this are not predicted (no value there), counted.
    batch_size, device, precision, rc_average, progress, devices, num_nodes
        As :func:`proformer.predict.predict`.

    Returns
    -------
    dict
        ``windows`` predicted, ``skipped`` (``too_many_n``), ``out``, ``format``, ``stride``,
        ``target`` (its name), ``units``, ``rank``.
    """
    fmt = track_format(out)
    max_n_frac = _fraction(max_n_frac)
    trainer, lead, genome, runner, placement = _open(model, fasta, device, batch_size, precision, rc_average, devices,
                                                     num_nodes, out, {})
    try:
        column = track_column(runner, target)
        stride = placement.target_length if stride is None else whole("stride", stride, 1, 10**9)
        parsed = _regions(regions, genome, os.fspath(fasta))
        total = sum(tiled_count(region, genome.lengths[region.chrom], placement, stride) for region in parsed)
        skipped = [0]

        def chunks() -> Iterator[WindowChunk]:
            for region in parsed:
                for starts, range_starts, range_ends in tile(region, genome.lengths[region.chrom], placement, stride):
                    codes = read_windows(genome, region.chrom, starts, placement.window)
                    keep = ~too_many_n(codes, max_n_frac)
                    skipped[0] += int((~keep).sum())
                    if keep.any():
                        yield WindowChunk(codes[keep], region.chrom, starts[keep], (range_starts[keep], range_ends[keep]))

        written = [0]
        if not lead:
            _predict(runner, trainer, chunks(), None, standardized, False, total)
            return {"windows": 0, "out": None, "rank": trainer.global_rank}
        with write_track(out, list(genome.lengths.items())) as track:
            def write(chunk: WindowChunk, values: np.ndarray) -> None:
                track.add(chunk.chrom, *chunk.ranges, values[:, column])
                written[0] += len(chunk)

            _predict(runner, trainer, chunks(), write, standardized, progress, total)
            if not written[0]:
                raise ValueError(f"no window to predict: the regions hold {total:,} window(s) of {placement.window} bp "
                                 f"at stride {stride} inside their chromosomes, {skipped[0]:,} of them with more than "
                                 f"{max_n_frac:g} N; nothing was written to {out}")
    finally:
        genome.close()
    if skipped[0]:
        print(f"{skipped[0]:,} window(s) with more than {max_n_frac:g} N were not predicted (no value there)", file=sys.stderr)
    return {"windows": written[0], "skipped": {"too_many_n": skipped[0]}, "out": os.fspath(out), "format": fmt,
            "stride": stride, "target": runner.target_names[column], "units": units_text(standardized), "rank": 0}


def _fraction(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"max_n_frac={value!r}: give a fraction in [0, 1]")
    return float(value)


def _regions(texts: Sequence[str], genome: Genome, fasta: str) -> list[Region]:
    """The regions asked for (every chromosome by default), in the FASTA's order; overlaps refused."""
    if not texts:
        return [Region(name, 0, length, name) for name, length in genome.lengths.items()]
    order = {name: i for i, name in enumerate(genome.lengths)}
    parsed = sorted((parse_region(text, genome.lengths, fasta) for text in texts), key=lambda r: (order[r.chrom], r.start))
    for before, after in itertools.pairwise(parsed):
        if before.chrom == after.chrom and after.start < before.end:
            raise ValueError(f"--region {before.text} and --region {after.text} overlap; a track holds one value per "
                             f"base: give disjoint regions")
    return parsed


def predict_intervals(
    model: str | os.PathLike | Sequence[str | os.PathLike],
    fasta: str | os.PathLike,
    bed: str | os.PathLike,
    out: str | os.PathLike,
    *,
    stride: int | None = None,
    standardized: bool = False,
    max_n_frac: float = MAX_N_FRAC,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "32",
    rc_average: bool | None = None,
    progress: bool = True,
    devices: int = 1,
    num_nodes: int = 1,
) -> dict:
    """One prediction per interval of a BED file, on the model's window centred on the interval.

    Parameters
    ----------
    model, fasta
        As :func:`predict_track`.
    bed : path
        Intervals (:func:`proformer.io.peaks.read_intervals`): column 4 names them (default
        ``chrom:start-end``), column 6 gives the strand (``-``: the window's reverse complement
        is predicted).
    out : path or "-"
        A TSV, written atomically: ``id chrom start end strand windows`` then, per target, the
        mean over the interval's windows and ``TARGET_windows``, the windows' values 5' to 3' on
        the genome, comma-separated (``nan`` for a window with too many N). One row per interval
        kept, in file order.
    stride : int, optional
        bp between the windows of an interval longer than the window (default: the window).
    max_n_frac : float
        A window with more N than this gets no value; an interval with none left is skipped.

    Returns
    -------
    dict
        ``intervals`` written, ``windows`` predicted, ``skipped`` by reason (``off_chromosome``:
        a window would leave the chromosome, never shifted; ``too_many_n``), ``out``, ``units``,
        ``rank``.
    """
    max_n_frac = _fraction(max_n_frac)
    intervals = read_intervals(bed)  # before the model loads: a bad line is one error, at once
    trainer, lead, genome, runner, placement = _open(model, fasta, device, batch_size, precision, rc_average, devices,
                                                     num_nodes, out, {"bed": bed})
    try:
        window = placement.window
        stride = window if stride is None else whole("stride", stride, 1, 10**9)
        for i, chrom in enumerate(intervals.chrom):
            check_chromosome(chrom, genome.lengths, genome.display, intervals.where(i))
        count, starts = centred_windows(intervals.start, intervals.end, window, stride)
        first = np.cumsum(count) - count
        lengths = np.array([genome.lengths[chrom] for chrom in intervals.chrom], dtype=np.int64)
        last_end = starts[first + count - 1] + window
        off = (starts[first] < 0) | (last_end > lengths)
        state = {"too_many_n": 0, "windows": 0}
        chunks = _interval_chunks(intervals, genome, window, count, starts, first, off, max_n_frac)
        if not lead:
            _predict(runner, trainer, chunks, None, standardized, False, int(count[~off].sum()))
            return {"intervals": 0, "out": None, "rank": trainer.global_rank}
        with atomic_write(out) as handle:
            names = runner.target_names
            handle.write("\t".join(["id", "chrom", "start", "end", "strand", "windows", *names,
                                    *(f"{name}_windows" for name in names)]) + "\n")

            def write(chunk: WindowChunk, values: np.ndarray) -> None:
                state["windows"] += len(chunk)
                handle.writelines(_rows(chunk, values, intervals, state))

            _predict(runner, trainer, chunks, write, standardized, progress, int(count[~off].sum()))
            written = len(intervals) - int(off.sum()) - state["too_many_n"]
            if written == 0:
                raise ValueError(f"{intervals.display}: no interval could be predicted ({int(off.sum()):,} off a "
                                 f"chromosome's end, {state['too_many_n']:,} with too many N); nothing was written")
    finally:
        genome.close()
    skipped = {"off_chromosome": int(off.sum()), "too_many_n": state["too_many_n"]}
    if any(skipped.values()):
        example = f" (first: {intervals.where(int(np.argmax(off)))})" if off.any() else ""
        print(f"skipped intervals: {skipped['off_chromosome']:,} off a chromosome's end{example}, "
              f"{skipped['too_many_n']:,} with more than {max_n_frac:g} N in every window", file=sys.stderr)
    return {"intervals": written, "windows": state["windows"], "skipped": skipped, "out": os.fspath(out),
            "units": units_text(standardized), "rank": 0}


def _interval_chunks(intervals: Intervals, genome: Genome, window: int, count, starts, first, off,
                     max_n_frac: float) -> Iterator[WindowChunk]:
    """Whole intervals, about :data:`BLOCK` windows a chunk, in file order (those off a
    chromosome left out)."""
    rows: list[int] = []
    codes: list[np.ndarray] = []
    size = 0

    def flush() -> WindowChunk:
        joined = np.concatenate(codes)
        keep = ~too_many_n(joined, max_n_frac)
        chroms = [intervals.chrom[r] for r in rows for _ in range(count[r])]
        chunk_starts = np.concatenate([starts[first[r] : first[r] + count[r]] for r in rows])
        return WindowChunk(joined[keep], [c for c, k in zip(chroms, keep) if k], chunk_starts[keep],
                           rows=np.array(rows), count=count[rows], keep=keep)

    for r in np.flatnonzero(~off):
        own = starts[first[r] : first[r] + count[r]]
        block = read_windows(genome, intervals.chrom[r], own, window)
        codes.append(reverse_complement(block) if intervals.strand[r] == "-" else block)
        rows.append(int(r))
        size += len(own)
        if size >= BLOCK:
            yield flush()
            rows, codes, size = [], [], 0
    if rows:
        yield flush()


def _rows(chunk: WindowChunk, values: np.ndarray, intervals: Intervals, state: dict) -> Iterator[str]:
    """The TSV rows of a chunk's intervals; counts intervals with no window left."""
    full = np.full((len(chunk.keep), values.shape[1]), np.nan)
    full[chunk.keep] = values
    at = 0
    for row, n in zip(chunk.rows.tolist(), chunk.count.tolist()):
        own, at = full[at : at + n], at + n
        known = ~np.isnan(own[:, 0])
        if not known.any():
            state["too_many_n"] += 1
            continue
        mean = own[known].mean(axis=0)
        each = [",".join("nan" if np.isnan(v) else f"{v:.6g}" for v in own[:, j]) for j in range(own.shape[1])]
        yield "\t".join([intervals.name[row], intervals.chrom[row], str(int(intervals.start[row])),
                         str(int(intervals.end[row])), intervals.strand[row], str(n),
                         *(f"{v:.6g}" for v in mean), *each]) + "\n"
