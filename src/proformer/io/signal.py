"""Accessibility signal per base, one chromosome at a time: a bigWig, or Tn5 insertions from a BAM.

Both sources have ``kind``, ``display``, ``lengths`` (chromosome -> bp), ``chromosome(name,
length)`` (float32 per base) and ``close()``. pyBigWig and pysam are imported when a source is
opened (``pip install 'proformer[atac]'``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from ._optional import require

__all__ = ["BAM_SKIP_FLAGS", "TN5_MINUS_SHIFT", "TN5_PLUS_SHIFT", "BamInsertions", "BigWigSignal", "tn5_insertions"]

#: Tn5 shift (Buenrostro et al. 2013, "+4/-5"), as 0-based insertion positions: a read on the
#: + strand inserts at ``reference_start + 4``; a read on the - strand at
#: ``reference_end - 1 - 5`` (its last aligned base, 0-based, minus 5).
TN5_PLUS_SHIFT = 4
TN5_MINUS_SHIFT = 5
#: Reads skipped when counting insertions: unmapped (0x4), secondary (0x100), QC fail (0x200),
#: duplicate (0x400), supplementary (0x800).
BAM_SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800


class BigWigSignal:
    """Signal from a bigWig: per base, NaN where the file has no data."""

    kind = "signal"

    def __init__(self, path: Path, display: str):
        pyBigWig = require("pyBigWig", "pyBigWig")
        self.display = display
        open(path, "rb").close()  # the OS's reason for an unreadable file; pyBigWig's error has none
        try:
            self._bw = pyBigWig.open(str(path))
        except RuntimeError:
            self._bw = None
        if self._bw is None or not self._bw.isBigWig():
            raise InputError(f"{display}: not a readable bigWig file (pyBigWig could not open it as bigWig)")
        if not pyBigWig.numpy:
            raise ImportError("pyBigWig was built without numpy support; reinstall it with numpy present (pip install --no-binary pyBigWig pyBigWig)")
        self.lengths = dict(self._bw.chroms())

    def chromosome(self, name: str, length: int) -> np.ndarray:
        """float32 ``(length,)``; NaN where there is no data."""
        return self._bw.values(name, 0, length, numpy=True)

    def values(self, name: str, start: int, end: int) -> np.ndarray:
        """float32 ``(end - start,)`` of bases ``[start, end)`` of ``name``; NaN where there is no data."""
        return self._bw.values(name, int(start), int(end), numpy=True)

    def close(self) -> None:
        self._bw.close()


def tn5_insertions(reference_start: np.ndarray, reference_end: np.ndarray, is_reverse: np.ndarray) -> np.ndarray:
    """0-based Tn5 insertion positions of aligned reads (the "+4/-5" shift).

    Parameters
    ----------
    reference_start, reference_end : np.ndarray
        int64 ``(r,)``: pysam's 0-based alignment start and exclusive end.
    is_reverse : np.ndarray
        bool ``(r,)``: the read aligned to the - strand.

    Returns
    -------
    np.ndarray
        int64 ``(r,)``: ``reference_start + 4`` on the + strand,
        ``reference_end - 1 - 5`` (= ``reference_end - 6``) on the - strand.
    """
    return np.where(
        is_reverse,
        np.asarray(reference_end, dtype=np.int64) - 1 - TN5_MINUS_SHIFT,
        np.asarray(reference_start, dtype=np.int64) + TN5_PLUS_SHIFT,
    )


class BamInsertions:
    """Tn5 insertions counted per base from a coordinate-sorted, indexed BAM."""

    kind = "bam"

    def __init__(self, path: Path, display: str):
        pysam = require("pysam", "pysam")
        self.display = display
        open(path, "rb").close()  # the OS's reason for an unreadable file, named
        try:
            self._bam = pysam.AlignmentFile(str(path), "rb")
        except (ValueError, OSError) as error:
            raise InputError(f"{display}: cannot read the BAM with pysam ({error})") from None
        if not self._bam.has_index():
            self._bam.close()
            raise InputError(
                f"{display}: the BAM has no index (.bai/.csi); sort and index it first: "
                f"samtools sort -o sorted.bam {display} && samtools index sorted.bam"
            )
        self.lengths = dict(zip(self._bam.references, self._bam.lengths))
        # Per chromosome, so that a chromosome read again in a later round is not counted twice.
        self.reads: dict[str, tuple[int, int]] = {}

    def chromosome(self, name: str, length: int) -> np.ndarray:
        """float32 ``(length,)``: insertions per base (never NaN: no read means 0)."""
        starts, ends, reverse = [], [], []
        skipped = 0
        # pysam has no bulk accessor: one Python step per read, then numpy for the rest.
        for read in self._bam.fetch(name):
            if read.flag & BAM_SKIP_FLAGS:
                skipped += 1
                continue
            starts.append(read.reference_start)
            ends.append(read.reference_end)
            reverse.append(read.is_reverse)
        self.reads[name] = (len(starts), skipped)
        position = tn5_insertions(np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), np.asarray(reverse, dtype=bool))
        position = position[(position >= 0) & (position < length)]
        counts = np.zeros(length, dtype=np.float32)  # float32: exact up to 2**24 per base
        np.add.at(counts, position, 1.0)
        return counts

    def close(self) -> None:
        self._bam.close()
