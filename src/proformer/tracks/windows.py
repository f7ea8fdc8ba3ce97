"""Where a run's windows sit on a genome: regions tiled at a stride, BED intervals centred, and
the windows' codes read from the genome in bounded blocks.

Coordinates are 0-based and half-open, as in BED; a region given as text (``chr8:127,700,001-
127,900,000``) is 1-based and inclusive, as samtools and genome browsers write it.

Placement
    A run sees windows of ``window`` bp (its layout's whole input, flanks included) and its
    prediction describes the bases ``[window_start + target[0], window_start + target[1])``:
    the central ``center`` bp of an ATAC run (``config.json`` ``data.atac``), else the whole
    window.
Tiling a region ``[a, b)`` at stride ``S``
    Window ``k`` writes its value over ``width = min(S, target length)`` bases starting at
    ``a + k * S`` (``k = 0, 1, ...`` while that is below ``b``; the last range is cut at
    ``b``): the target's centre bases (an odd surplus to the right, as ``atac prepare`` centres
    its target in the window), so that the ranges of consecutive windows never overlap
    and every window's value is in the track once. With ``S`` at least the target length the
    range is the whole target (gaps between); with ``S = 1`` each window writes its target's
    centre base. The window starts ``offset = target[0] + (target length - width) // 2`` bp
    before its range. A window that would start before 0 or end past the chromosome is left
    out (never shifted): those bases get no value.
Centring an interval ``[s, e)``
    Its centre is ``c = (s + e) // 2`` (the summit rule of ``atac prepare``). An interval no
    longer than the window gets the one window starting at ``c - window // 2``; a longer one
    gets ``n = ceil((e - s - window) / S) + 1`` windows ``S`` apart (``S`` the window by
    default), their group centred the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..io.errors import InputError
from ..io.genome import Genome
from ..io.run import RunInfo
from ..sequence import GENOME_CODES, INVALID, N

__all__ = ["BLOCK", "Placement", "Region", "centred_windows", "parse_region", "read_windows", "tile", "tiled_count"]

#: Windows per block read from the genome and predicted at once: bounds memory whatever the
#: region's size (a block of 100-bp windows holds ~6 MB of codes and model input).
BLOCK = 1 << 14


@dataclass(frozen=True)
class Placement:
    """A run's windows on a genome.

    Attributes
    ----------
    window : int
        bp the model reads (its input, flanks included).
    target : (int, int)
        The bases, within the window, that the prediction describes (0-based, half-open).
    transform : str
        How the training targets were made from the signal's mean: ``none`` or ``log1p``.
    """

    window: int
    target: tuple[int, int]
    transform: str = "none"

    @classmethod
    def of(cls, info: RunInfo) -> Placement:
        """A run's placement: its ATAC record (``data.atac``: window, target span, transform), else
        the whole window of its layout."""
        layout = info.layout
        window = layout.head + layout.length + layout.tail
        atac = info.data.get("atac") if isinstance(info.data, dict) else None
        if isinstance(atac, dict) and atac.get("window") == window and atac.get("target_span"):
            start, end = (int(x) for x in atac["target_span"])
            return cls(window, (start, end), str(atac.get("transform", "none")))
        return cls(window, (0, window))

    @property
    def target_length(self) -> int:
        return self.target[1] - self.target[0]

    def width(self, stride: int) -> int:
        """bp each window writes at ``stride``."""
        return min(stride, self.target_length)

    def offset(self, stride: int) -> int:
        """From a window's start to the start of the range it writes, at ``stride``."""
        return self.target[0] + (self.target_length - self.width(stride)) // 2


def placement_of(infos: list[RunInfo], runs: list[str]) -> Placement:
    """The one placement of an ensemble's runs; ValueError naming two runs that differ."""
    placements = [Placement.of(info) for info in infos]
    for run, placement in zip(runs[1:], placements[1:]):
        if placement != placements[0]:
            raise ValueError(f"run {runs[0]} reads {placements[0].window}-bp windows and predicts bases "
                             f"{placements[0].target[0]}..{placements[0].target[1]} of them, run {run} "
                             f"{placement.window}-bp windows, bases {placement.target[0]}..{placement.target[1]}: "
                             f"a genome track needs runs that place their windows alike")
    return placements[0]


@dataclass(frozen=True)
class Region:
    """``chrom:[start, end)``, 0-based half-open, and how the user wrote it."""

    chrom: str
    start: int
    end: int
    text: str


_REGION = re.compile(r"^(?P<chrom>[^:\s]+)(?::(?P<start>[\d,_]+)-(?P<end>[\d,_]+))?$")


def parse_region(text: str, lengths: dict[str, int], fasta: str) -> Region:
    """``chr8:127,700,001-127,900,000`` (1-based, inclusive; commas allowed) or ``chr8`` (the whole
    chromosome) -> a :class:`Region`. InputError for an unknown chromosome or a range outside it."""
    match = _REGION.match(text.strip())
    if match is None:
        raise InputError(f"--region {text!r}: write CHROM or CHROM:START-END (1-based, inclusive, e.g. "
                         f"chr8:127,700,001-127,900,000)")
    chrom = match["chrom"]
    if chrom not in lengths:
        raise InputError(f"--region {text}: {fasta} has no chromosome {chrom!r} ({_names(lengths)})")
    length = lengths[chrom]
    if match["start"] is None:
        return Region(chrom, 0, length, text)
    first, last = (int(match[key].replace(",", "").replace("_", "")) for key in ("start", "end"))
    if not 1 <= first <= last <= length:
        raise InputError(f"--region {text} is outside {chrom} (1..{length:,} in {fasta}) or ends before it starts; "
                         f"give 1 <= START <= END <= {length:,}")
    return Region(chrom, first - 1, last, text)


def _names(lengths: dict[str, int]) -> str:
    names = list(lengths)
    return f"it has {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"


def check_chromosome(chrom: str, lengths: dict[str, int], fasta: str, where: str) -> None:
    """InputError naming ``where`` (``file:line``) for a chromosome the FASTA lacks."""
    if chrom not in lengths:
        hint = ""
        other = chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"
        if other in lengths:
            hint = f"; the FASTA names it {other!r} (a 'chr' prefix differs between the files)"
        raise InputError(f"{where}: chromosome {chrom!r} is not in {fasta} ({_names(lengths)}){hint}")


def tiled_count(region: Region, length: int, placement: Placement, stride: int) -> int:
    """How many windows :func:`tile` gives for ``region`` of a chromosome of ``length`` bp."""
    offset = placement.offset(stride)
    # range starts p = a + k S with p < b, and offset <= p <= length - window + offset.
    low, high = max(region.start, offset), min(region.end - 1, length - placement.window + offset)
    if high < low:
        return 0
    first = math.ceil((low - region.start) / stride)
    last = (high - region.start) // stride
    return max(0, last - first + 1)


def tile(region: Region, length: int, placement: Placement, stride: int,
         block: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The windows of ``region`` at ``stride`` (module docstring), ``block`` (default
    :data:`BLOCK`) at a time.

    Yields
    ------
    (starts, range_starts, range_ends)
        int64 ``(k,)`` each: window starts and the bases each window's value covers.
    """
    block = BLOCK if block is None else block
    offset, width = placement.offset(stride), placement.width(stride)
    low, high = max(region.start, offset), min(region.end - 1, length - placement.window + offset)
    if high < low:
        return
    first = math.ceil((low - region.start) / stride)
    last = (high - region.start) // stride
    for k in range(first, last + 1, block):
        ranges = region.start + np.arange(k, min(k + block, last + 1), dtype=np.int64) * stride
        yield ranges - offset, ranges, np.minimum(ranges + width, region.end)


def centred_windows(start: np.ndarray, end: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of intervals ``[start, end)`` (module docstring, *Centring*).

    Returns
    -------
    count : np.ndarray
        int64 ``(k,)``: windows of each interval.
    starts : np.ndarray
        int64 ``(count.sum(),)``: window starts, interval after interval, 5' to 3' on the genome.
    """
    start, end = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
    count = np.where(end - start > window, -(-(end - start - window) // stride) + 1, 1)
    group = (count - 1) * stride + window
    first = (start + end) // 2 - group // 2
    index = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return count, np.repeat(first, count) + index * stride


def encode_genome(raw: bytes | str, genome: Genome, chrom: str, start: int) -> np.ndarray:
    """uint8 codes (A C G T N = 0..4; lower case as upper, IUPAC codes as N) of genome bases read
    from ``chrom:start``; InputError naming the position of a byte that is not a base."""
    data = np.frombuffer(raw.encode("ascii", errors="replace") if isinstance(raw, str) else raw, dtype=np.uint8)
    codes = GENOME_CODES[data]
    bad = np.flatnonzero(codes == INVALID)
    if bad.size:
        position = start + int(bad[0])
        raise InputError(f"{genome.display}: {chrom}:{position} (0-based) holds {chr(data[bad[0]])!r}, not a nucleotide "
                         f"or IUPAC code; check that the file is a genome FASTA")
    return codes


def read_windows(genome: Genome, chrom: str, starts: np.ndarray, window: int) -> np.ndarray:
    """uint8 ``(k, window)``: the codes of windows ``[s, s + window)`` of ``chrom`` (all inside it),
    read as one slice from the first window's start to the last one's end."""
    low, high = int(starts.min()), int(starts.max()) + window
    codes = encode_genome(genome.fetch(chrom, low, high), genome, chrom, low)
    return np.lib.stride_tricks.sliding_window_view(codes, window)[starts - low]


def too_many_n(codes: np.ndarray, max_n_frac: float) -> np.ndarray:
    """bool ``(k,)``: windows with more than ``max_n_frac`` of N (``atac prepare``'s filter)."""
    return (codes == N).mean(axis=1) > max_n_frac
