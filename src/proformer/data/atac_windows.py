"""Candidate ATAC-seq windows: drawn around summits, filtered, their codes and targets gathered,
until ``n`` are kept (the *Windows*, *Target*, *Filters* and *Drawing until n are kept* rules
of :mod:`proformer.data.atac`'s docstring).

:func:`proformer.data.atac.prepare_atac` reads the inputs, calls :func:`draw_until` and
splits and writes what it returns; this module holds the arithmetic on the genome and the signal
in between, so that it can be read (and tested) apart from the file handling.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..io.errors import InputError
from ..io.genome import Genome
from ..io.peaks import Peaks, overlaps
from ..sequence import GENOME_CODES, INVALID, N

__all__ = ["MAX_ROUNDS", "OK", "REASONS", "Options", "Round", "count_dropped", "counts_text", "draw_until"]

#: Why a candidate window was dropped, in the order the filters apply (``meta["dropped"]``'s keys).
REASONS = ("off_chromosome", "blacklist", "too_many_n", "missing_signal")
#: A candidate's ``reason`` code: ``OK`` (kept), else 1 + its index in :data:`REASONS`.
OK, _OFF_CHROMOSOME, _BLACKLIST, _TOO_MANY_N, _MISSING_SIGNAL = range(5)

#: Most rounds of drawing before too few kept windows is an error.
MAX_ROUNDS = 10


# --------------------------------------------------------------------------------------------
# Windows: drawing, filtering, gathering.
# --------------------------------------------------------------------------------------------


@dataclass
class Options:
    """The window options of :func:`proformer.data.atac.prepare_atac`, checked (widths in bp)."""

    window: int
    flank: int
    center: int
    max_n_frac: float
    missing: str
    transform: str

    @property
    def center_offset(self) -> int:
        """Start of the central region relative to the window start."""
        return (self.window - self.center) // 2


@dataclass
class Round:
    """Candidates of one round, in drawing order.

    Attributes
    ----------
    chrom, start, summit : np.ndarray
        int ``(m,)``: chromosome index, 0-based window start, summit.
    reason : np.ndarray
        uint8 ``(m,)``: ``OK`` or the drop reason.
    codes : np.ndarray
        uint8 ``(m, window)``; meaningful where ``reason == OK``.
    target : np.ndarray
        float64 ``(m,)``; meaningful where ``reason == OK``.
    """

    chrom: np.ndarray
    start: np.ndarray
    summit: np.ndarray
    reason: np.ndarray
    codes: np.ndarray
    target: np.ndarray

    def __getitem__(self, rows) -> Round:
        return Round(self.chrom[rows], self.start[rows], self.summit[rows], self.reason[rows], self.codes[rows], self.target[rows])


def _gather(array: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``(k, width)`` block: row i is ``array[starts[i] : starts[i] + width]`` (all in bounds)."""
    return array[starts[:, None] + np.arange(width)]


def _encode_windows(raw: np.ndarray, starts: np.ndarray, window: int, genome: Genome, name: str) -> np.ndarray:
    """uint8 ``(k, window)`` codes of the windows, A C G T N = 0..4; IUPAC codes become N."""
    codes = GENOME_CODES[_gather(raw, starts, window)]
    bad = np.argwhere(codes == INVALID)
    if bad.size:
        row, column = (int(x) for x in bad[0])
        position = int(starts[row]) + column
        raise InputError(
            f"{genome.display}: {name}:{position} (0-based) holds {chr(raw[position])!r}, not a nucleotide or IUPAC "
            "code; check that the file is a genome FASTA"
        )
    return codes


def _central_means(values: np.ndarray, starts: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over ``[start, start + width)`` per window, NaN counted as 0.

    Returns
    -------
    mean : np.ndarray
        float64 ``(k,)``.
    incomplete : np.ndarray
        bool ``(k,)``: some value was NaN (no data).
    """
    block = _gather(values, starts, width).astype(np.float64)
    absent = np.isnan(block)
    block[absent] = 0.0
    return block.mean(axis=1), absent.any(axis=1)


def _draw(rng: np.random.Generator, peaks: Peaks, m: int, options: Options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m`` candidates: a summit uniformly with replacement, then a start inside summit +- flank."""
    pick = rng.integers(0, len(peaks.summit), size=m)
    # Starts summit - flank .. summit + flank - window keep [start, start + window) inside.
    offset = rng.integers(-options.flank, options.flank - options.window + 1, size=m)
    summit = peaks.summit[pick]
    return peaks.chrom[pick], summit + offset, summit


def _evaluate(chrom, start, summit, lengths, blacklist, genome, signal, peaks, options, progress) -> Round:
    """Apply the filters in order and gather codes and targets of the surviving candidates."""
    m, window = len(start), options.window
    reason = np.zeros(m, dtype=np.uint8)
    reason[(start < 0) | (start + window > lengths[chrom])] = _OFF_CHROMOSOME
    for c, intervals in blacklist.items():
        rows = np.flatnonzero((chrom == c) & (reason == OK))
        reason[rows[overlaps(intervals, start[rows], start[rows] + window)]] = _BLACKLIST
    codes = np.full((m, window), N, dtype=np.uint8)
    target = np.full(m, np.nan)
    for c in np.unique(chrom[reason == OK]):  # one read of each needed chromosome
        name = peaks.names[c]
        began = time.perf_counter()
        rows = np.flatnonzero((chrom == c) & (reason == OK))
        codes[rows] = _encode_windows(genome.chromosome(name), start[rows], window, genome, name)
        too_many_n = (codes[rows] == N).mean(axis=1) > options.max_n_frac
        mean, incomplete = _central_means(signal.chromosome(name, int(lengths[c])), start[rows] + options.center_offset, options.center)
        target[rows] = mean
        reason[rows[too_many_n]] = _TOO_MANY_N
        if options.missing == "skip":
            reason[rows[~too_many_n & incomplete]] = _MISSING_SIGNAL
        if progress:
            print(f"prepare-atac: {name}: {len(rows):,} windows ({time.perf_counter() - began:.1f} s)", file=sys.stderr, flush=True)
    return Round(chrom, start, summit, reason, codes, target)


def _concat(rounds: list[Round]) -> Round:
    return Round(*(np.concatenate([getattr(r, f) for r in rounds]) for f in ("chrom", "start", "summit", "reason", "codes", "target")))


def draw_until(n, rng, peaks, lengths, blacklist, genome, signal, options, progress) -> tuple[Round, int]:
    """The first ``n`` kept candidates of the seeded stream, with every candidate before them.

    Returns
    -------
    stream : Round
        The stream up to and including the ``n``-th kept candidate.
    rounds : int
        Rounds used.
    """
    rounds: list[Round] = []
    kept = drawn = 0
    for number in range(1, MAX_ROUNDS + 1):
        rate = kept / drawn if drawn else 1.0
        # Enough for the keep rate seen so far, with a margin so that one round usually does.
        m = min(math.ceil((n - kept) / rate * 1.1) + 64, 50 * n + 1000)
        chrom, start, summit = _draw(rng, peaks, m, options)
        current = _evaluate(chrom, start, summit, lengths, blacklist, genome, signal, peaks, options, progress)
        rounds.append(current)
        new = int((current.reason == OK).sum())
        kept, drawn = kept + new, drawn + m
        if progress:
            print(f"prepare-atac: round {number}: {m:,} candidates, {new:,} passed the filters ({min(kept, n):,} of {n:,} kept)", file=sys.stderr, flush=True)
        if kept >= n:
            stream = _concat(rounds)
            last = int(np.flatnonzero(stream.reason == OK)[n - 1])
            return stream[: last + 1], number
        if new == 0:
            break
    stream = _concat(rounds)
    raise InputError(
        f"{peaks.display}: only {kept:,} of {drawn:,} candidate windows passed the filters after {len(rounds)} "
        f"round(s) (dropped: {counts_text(count_dropped(stream.reason))}), fewer than n={n:,}; ask for n <= {kept:,} "
        "or relax the filters (max_n_frac, missing='zero', a smaller blacklist)"
    )


def count_dropped(reason: np.ndarray) -> dict[str, int]:
    """Candidates dropped per reason, ``{name: count}`` in the order of :data:`REASONS`."""
    counts = np.bincount(reason, minlength=len(REASONS) + 1)
    return {name: int(counts[code]) for code, name in enumerate(REASONS, start=1)}


def counts_text(dropped: dict[str, int]) -> str:
    """``"blacklist 3, too_many_n 1"``: the reasons that dropped any, or ``"none"``."""
    return ", ".join(f"{name} {count:,}" for name, count in dropped.items() if count) or "none"
