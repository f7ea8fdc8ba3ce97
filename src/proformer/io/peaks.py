"""Peaks and intervals: summits from narrowPeak or BED, blacklist intervals from BED, and the
named, stranded intervals that ``predict --bed`` and ``evaluate --bed`` score.

Both are small text files, read whole, plain or gzip (detected by magic bytes); ``#``, ``track``
and ``browser`` lines are skipped, and a malformed line raises :class:`InputError` naming
``file:line`` and the value. Coordinates are 0-based, half-open, as in BED. The summit rules
are those of ``docs/atac.md`` (and of :func:`read_peaks` below).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .sources import GZIP_MAGIC

__all__ = ["PEAK_FORMATS", "Intervals", "Peaks", "merge_intervals", "overlaps", "read_blacklist", "read_intervals",
           "read_peaks"]

PEAK_FORMATS = ("auto", "narrowpeak", "bed")
#: The largest interval end read (2**48, far past any genome's chromosomes).
MAX_COORDINATE = 1 << 48


def _read_text(path: Path, display: str) -> tuple[list[str], str]:
    """Lines of a plain or gzip file (detected by magic bytes) and the sha256 of the stored bytes."""
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {display}")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise InputError(
                f"{display}: the gzip file is truncated or corrupt ({error}); download or compress it again "
                f"(gzip -t {display} checks it)"
            ) from None
    return data.decode("utf-8", errors="replace").splitlines(), sha256


def _data_lines(lines: list[str]):
    """Yield ``(1-based line number, fields)`` of BED-like data lines.

    Blank lines and ``#``, ``track`` and ``browser`` header lines are skipped. Fields are split
    on tabs (BED); a line without tabs is split on any whitespace, as many tools write it.
    """
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.startswith(("#", "track", "browser")):
            continue
        yield number, (text.split("\t") if "\t" in text else text.split())


def _integer(value: str, display: str, number: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{display}:{number}: {what} is not an integer: {value!r}") from None


def _bed_interval(fields: list[str], display: str, number: int) -> tuple[int, int]:
    """``(start, end)`` of one BED line, checked (3+ columns, integers, 0 <= start <= end)."""
    if len(fields) < 3:
        raise InputError(
            f"{display}:{number}: a BED line needs at least 3 columns (chrom, start, end), this one has "
            f"{len(fields)}: {' '.join(fields)!r}"
        )
    start = _integer(fields[1], display, number, "start (column 2)")
    end = _integer(fields[2], display, number, "end (column 3)")
    if start < 0 or end < start:
        raise InputError(f"{display}:{number}: need 0 <= start <= end, got start={start}, end={end}")
    return start, end


@dataclass
class Peaks:
    """Summits read from a narrowPeak or BED file.

    Attributes
    ----------
    names : list of str
        Chromosome names in order of first appearance; ``chrom`` indexes into it.
    chrom : np.ndarray
        int32 ``(s,)``: chromosome index of each summit.
    summit : np.ndarray
        int64 ``(s,)``: 0-based summit position.
    line : np.ndarray
        int64 ``(s,)``: 1-based line of each summit in the file, for messages.
    format : str
        ``narrowpeak`` or ``bed``.
    sha256 : str
        Of the file as stored.
    display : str
        The path as the user gave it.
    """

    names: list[str]
    chrom: np.ndarray
    summit: np.ndarray
    line: np.ndarray
    format: str
    sha256: str
    display: str


def _is_narrowpeak(fields: list[str]) -> bool:
    if len(fields) != 10:
        return False
    try:
        int(fields[9])
    except ValueError:
        return False
    return True


def read_peaks(path: str | os.PathLike, peak_format: str = "auto") -> Peaks:
    """Read summits from a narrowPeak or a BED file (plain or gzip).

    Parameters
    ----------
    path : str or path
        The peaks file.
    peak_format : {"auto", "narrowpeak", "bed"}
        ``auto`` reads the file as narrowPeak when its first data line has 10 columns and an
        integer in column 10, else as BED.

    Returns
    -------
    Peaks
        One summit per data line (duplicates are kept: each line is a draw target).

    Raises
    ------
    InputError
        A malformed line (naming ``file:line`` and the value) or a file without data lines.
    """
    if peak_format not in PEAK_FORMATS:
        raise ValueError(f"peak_format={peak_format!r}: use one of {', '.join(PEAK_FORMATS)}")
    display = os.fspath(path)
    lines, sha256 = _read_text(Path(path), display)
    index: dict[str, int] = {}
    chrom, summit, line_no = [], [], []
    for number, fields in _data_lines(lines):
        if peak_format == "auto":
            peak_format = "narrowpeak" if _is_narrowpeak(fields) else "bed"
        start, end = _bed_interval(fields, display, number)
        if peak_format == "narrowpeak":
            if len(fields) != 10:
                raise InputError(
                    f"{display}:{number}: a narrowPeak line has 10 columns, this one has {len(fields)}: "
                    f"{' '.join(fields)[:120]!r} (pass peak_format='bed' to read the file as BED)"
                )
            offset = _integer(fields[9], display, number, "summit offset (column 10)")
            if offset == -1:
                position = (start + end) // 2  # MACS writes -1 when it called no summit
            elif 0 <= offset < end - start:
                position = start + offset
            else:
                raise InputError(
                    f"{display}:{number}: summit offset (column 10) {offset} is outside the peak "
                    f"[{start}, {end}) (allowed: 0..{end - start - 1}, or -1 for the midpoint)"
                )
        else:
            position = start if end - start <= 1 else (start + end) // 2
        chrom.append(index.setdefault(fields[0], len(index)))
        summit.append(position)
        line_no.append(number)
    if not chrom:
        raise InputError(f"{display}: no peak lines (only blank, '#', 'track' or 'browser' lines); nothing to sample")
    return Peaks(
        names=list(index),
        chrom=np.asarray(chrom, dtype=np.int32),
        summit=np.asarray(summit, dtype=np.int64),
        line=np.asarray(line_no, dtype=np.int64),
        format=peak_format,
        sha256=sha256,
        display=display,
    )


def read_blacklist(path: str | os.PathLike) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str, int]:
    """Read a BED of excluded regions and merge overlapping intervals per chromosome.

    Returns
    -------
    intervals : dict
        ``chrom -> (starts, ends)``, int64 ``(k,)`` each, sorted and disjoint (merged), so that
        overlap with a window is one ``searchsorted``.
    sha256 : str
        Of the file as stored.
    count : int
        Intervals read (before merging).
    """
    display = os.fspath(path)
    lines, sha256 = _read_text(Path(path), display)
    by_chrom: dict[str, list[tuple[int, int]]] = {}
    count = 0
    for number, fields in _data_lines(lines):
        start, end = _bed_interval(fields, display, number)
        if end > start:  # an empty interval excludes nothing
            by_chrom.setdefault(fields[0], []).append((start, end))
        count += 1
    return {chrom: merge_intervals(np.asarray(pairs, dtype=np.int64)) for chrom, pairs in by_chrom.items()}, sha256, count


def merge_intervals(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, disjoint union of ``(k, 2)`` half-open intervals."""
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    starts, ends = pairs[:, 0], np.maximum.accumulate(pairs[:, 1])
    # A new merged interval begins where the start lies past every earlier end.
    begins = np.concatenate([[True], starts[1:] > ends[:-1]])
    first = np.flatnonzero(begins)
    last = np.concatenate([first[1:] - 1, [len(pairs) - 1]])
    return starts[first], ends[last]


def overlaps(intervals: tuple[np.ndarray, np.ndarray], start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """bool ``(k,)``: does ``[start, end)`` overlap one of the sorted disjoint ``intervals``?"""
    starts, ends = intervals
    # The only candidate is the last interval starting before the window's end.
    i = np.searchsorted(starts, end, side="left") - 1
    return (i >= 0) & (ends[np.maximum(i, 0)] > start)


@dataclass
class Intervals:
    """Intervals read from a BED file, in file order.

    Attributes
    ----------
    chrom : list of str
        Column 1.
    start, end : np.ndarray
        int64 ``(k,)``: 0-based, half-open (columns 2 and 3), ``end > start``.
    name : list of str
        Column 4, or ``chrom:start-end`` where the file has no name column (or the name is ``.``,
        or a header line calls column 4 something else than ``name``).
    strand : list of str
        Column 6 as written: ``+``, ``-`` or ``.`` (also where the file has no column 6).
    line : np.ndarray
        int64 ``(k,)``: 1-based line of each interval, for messages.
    display : str
        The path as the user gave it.
    """

    chrom: list[str]
    start: np.ndarray
    end: np.ndarray
    name: list[str]
    strand: list[str]
    line: np.ndarray
    display: str

    def __len__(self) -> int:
        return len(self.chrom)

    def where(self, i: int) -> str:
        """``file:line`` of interval ``i``."""
        return f"{self.display}:{int(self.line[i])}"


def read_intervals(path: str | os.PathLike) -> Intervals:
    """Read named, stranded intervals from a BED file (plain or gzip), in file order.

    A first data line whose column 2 is ``start`` (any case) is a header, so that the
    ``windows.tsv`` of ``proformer atac prepare`` reads as it is (its column 4, the summit, is
    then no name). Raises :class:`InputError`
    naming ``file:line`` for fewer than 3 columns, a non-integer coordinate, ``end <= start`` and
    a strand other than ``+``, ``-`` or ``.``; and for a file without intervals.
    """
    display = os.fspath(path)
    lines, _ = _read_text(Path(path), display)
    chrom, start, end, name, strands, line_no = [], [], [], [], [], []
    named = True  # column 4 holds names: no header, or a header that calls it so
    for number, fields in _data_lines(lines):
        if not chrom and len(fields) >= 2 and fields[1].strip().lower() == "start":
            named = len(fields) >= 4 and fields[3].strip().lower() == "name"
            continue  # a header line (chrom, start, end, ...)
        begin, stop = _bed_interval(fields, display, number)
        if stop <= begin:
            raise InputError(f"{display}:{number}: end ({stop}) <= start ({begin}): an interval needs end > start")
        if stop > MAX_COORDINATE:  # numpy's int64 arithmetic on the windows must not overflow
            raise InputError(f"{display}:{number}: end ({stop}) is past any chromosome (at most {MAX_COORDINATE:,})")
        strand = fields[5].strip() if len(fields) >= 6 else "."
        if strand not in ("+", "-", "."):
            raise InputError(f"{display}:{number}: strand (column 6) is {strand!r}; use +, - or .")
        label = fields[3].strip() if named and len(fields) >= 4 else "."
        chrom.append(fields[0])
        start.append(begin)
        end.append(stop)
        name.append(label if label not in ("", ".") else f"{fields[0]}:{begin}-{stop}")
        strands.append(strand)
        line_no.append(number)
    if not chrom:
        raise InputError(f"{display}: no intervals (only blank, '#', 'track' or 'browser' lines)")
    return Intervals(chrom, np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64), name, strands,
                     np.asarray(line_no, dtype=np.int64), display)
