"""Genome tracks written by ``proformer predict --fasta``: bigWig (pyBigWig) or bedGraph, by suffix.

A track is a value over half-open, 0-based base ranges ``[start, end)`` of chromosomes. Entries
come in the order of the chromosome list given (the FASTA's), positions increasing, never
overlapping: what both formats require. The file is written under the output rule of
:mod:`proformer.io.atomic`: beside its target and renamed into place when complete, so a failed
or stopped run leaves an existing track untouched. Values are stored as float32 in both formats
(bigWig's own type; bedGraph with the 9 significant digits that give back the same float32).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ._optional import require
from .atomic import atomic_path, atomic_write

__all__ = ["TRACK_SUFFIXES", "track_format", "write_track"]

#: Output suffixes (any case) and the format each writes.
TRACK_SUFFIXES = {".bw": "bigwig", ".bigwig": "bigwig", ".bedgraph": "bedgraph", ".bg": "bedgraph"}


def track_format(out: str | os.PathLike) -> str:
    """``bigwig`` or ``bedgraph`` by the suffix of ``out``; ValueError naming the suffixes otherwise."""
    suffix = Path(os.fspath(out)).suffix.lower()
    if suffix not in TRACK_SUFFIXES:
        raise ValueError(f"--out {os.fspath(out)}: a track is written as bigWig (.bw, .bigWig) or bedGraph (.bedGraph, "
                         f".bg); name the output with one of those suffixes")
    return TRACK_SUFFIXES[suffix]


class _BigWig:
    def __init__(self, path: Path, chromosomes: list[tuple[str, int]]):
        pyBigWig = require("pyBigWig", "pyBigWig", needed_by="a bigWig track")
        self._bw = pyBigWig.open(os.fspath(path), "w")
        # No zoom levels: they summarise the track for browsers at a cost in time and size that
        # a track read back by programs does not need; genome browsers read it without them.
        self._bw.addHeader([(name, int(length)) for name, length in chromosomes], maxZooms=0)

    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        if len(starts):
            values = np.asarray(values, dtype=np.float32).astype(np.float64)  # float32 is what the file holds
            self._bw.addEntries([chrom] * len(starts), np.asarray(starts, dtype=np.int64),
                                ends=np.asarray(ends, dtype=np.int64), values=values)

    def close(self) -> None:
        self._bw.close()


class _BedGraph:
    def __init__(self, handle):
        self._handle = handle

    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32)
        self._handle.writelines(f"{chrom}\t{s}\t{e}\t{float(v):.9g}\n" for s, e, v in zip(starts.tolist(), ends.tolist(), values))

    def close(self) -> None:
        pass


@contextlib.contextmanager
def write_track(out: str | os.PathLike, chromosomes: list[tuple[str, int]]) -> Iterator[object]:
    """``with write_track(out, [(name, length), ...]) as track: track.add(chrom, starts, ends, values)``.

    Parameters
    ----------
    out : path
        ``.bw``/``.bigWig`` (bigWig; its header lists every chromosome of ``chromosomes`` with its
        length) or ``.bedGraph``/``.bg`` (one ``chrom start end value`` line per entry).
    chromosomes : list of (str, int)
        Every chromosome of the genome, in the order entries will be added.

    ``track.add(chrom, starts, ends, values)`` takes int64 ``(k,)`` starts and ends and ``(k,)``
    values; calls must follow the chromosome order, positions increasing, ranges disjoint.
    """
    if track_format(out) == "bigwig":
        with atomic_path(out, ".bw") as temporary:
            writer = _BigWig(temporary, chromosomes)
            try:
                yield writer
            finally:
                writer.close()
    else:
        with atomic_write(out) as handle:
            yield _BedGraph(handle)
