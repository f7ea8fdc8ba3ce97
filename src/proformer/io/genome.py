"""Genome sequence: a FASTA read with pyfaidx, one chromosome at a time.

pyfaidx is imported when a :class:`Genome` is opened (``pip install 'proformer[atac]'``); it
writes a ``.fai`` index beside the FASTA on first use, and rebuilds one older than the FASTA
(said on stderr). A FASTA compressed with plain gzip, which no index can seek in, is refused
before pyfaidx sees it, with what to do: bgzip it or decompress it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .errors import InputError
from ._optional import require
from .sources import GZIP_MAGIC

__all__ = ["Genome", "is_bgzip"]


def is_bgzip(head: bytes) -> bool:
    """Whether the first bytes of a gzip file (at least 12 + its extra field) are a BGZF block
    header: the FEXTRA flag and a ``BC`` subfield in the extra field (SAM/BAM spec, section 4.1)."""
    if head[:2] != GZIP_MAGIC or len(head) < 12 or not head[3] & 0x04:
        return False
    extra = head[12 : 12 + int.from_bytes(head[10:12], "little")]
    while len(extra) >= 4:
        if extra[:2] == b"BC":
            return True
        extra = extra[4 + int.from_bytes(extra[2:4], "little") :]
    return False


class Genome:
    """A FASTA read with pyfaidx (plain, or bgzip with its index); one chromosome at a time."""

    def __init__(self, path: Path, display: str):
        pyfaidx = require("pyfaidx", "pyfaidx")
        self.display = display
        # pyfaidx reports an unreadable file as "Cannot read FASTA": open it once here so that
        # the operating system's reason (e.g. permission denied) reaches the user.
        with open(path, "rb") as probe:
            head = probe.read(1 << 16)
        if head[:2] == GZIP_MAGIC and not is_bgzip(head):
            raise InputError(f"{display} is gzip-compressed but not with bgzip, which an indexed genome needs: bgzip it "
                             f"(bgzip -d {display}, then bgzip the result) or decompress it (gzip -d {display})")
        index = Path(f"{path}.fai")
        if index.is_file() and index.stat().st_mtime < Path(path).stat().st_mtime:
            print(f"{display}: its index {index.name} is older than the FASTA (edited since it was indexed): rebuilding "
                  f"the index", file=sys.stderr, flush=True)
        try:
            # rebuild=True: a .fai older than the FASTA is built again (the note above said so).
            self._fasta = pyfaidx.Fasta(os.fspath(path), as_raw=True, sequence_always_upper=False, rebuild=True)
        except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError, OSError) as error:
            raise InputError(
                f"{display}: cannot read the FASTA with pyfaidx ({type(error).__name__}: {error}); a genome must be "
                "plain text (or bgzip-compressed with Biopython installed), in a directory where the .fai index can be written"
            ) from None
        self.lengths = {name: len(record) for name, record in self._fasta.records.items()}

    def chromosome(self, name: str) -> np.ndarray:
        """uint8 ``(length,)``: the chromosome's bytes as stored (any case)."""
        return np.frombuffer(self._fasta[name][:].encode("ascii", errors="replace"), dtype=np.uint8)

    def fetch(self, name: str, start: int, end: int) -> str:
        """Bases ``start <= i < end`` (0-based, end exclusive) of chromosome ``name`` as stored
        (any case), read through the index: only the slice, not the whole chromosome.

        Raises KeyError for an unknown ``name`` and ValueError for a slice off the chromosome
        (pyfaidx would silently return a shorter slice).
        """
        length = self.lengths[name]
        if not 0 <= start <= end <= length:
            raise ValueError(f"{self.display}: {name}:{start}-{end} is outside the chromosome (0..{length})")
        return self._fasta[name][start:end]

    def close(self) -> None:
        self._fasta.close()
