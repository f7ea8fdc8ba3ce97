"""Genome sequence: a FASTA read with pyfaidx, one chromosome at a time.

pyfaidx is imported when a :class:`Genome` is opened (``pip install 'proformer[atac]'``); it
writes a ``.fai`` index beside the FASTA on first use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from ._optional import require

__all__ = ["Genome"]


class Genome:
    """A FASTA read with pyfaidx (plain, or bgzip with its index); one chromosome at a time."""

    def __init__(self, path: Path, display: str):
        pyfaidx = require("pyfaidx", "pyfaidx")
        self.display = display
        # pyfaidx reports an unreadable file as "Cannot read FASTA": open it once here so that
        # the operating system's reason (e.g. permission denied) reaches the user.
        open(path, "rb").close()
        try:
            self._fasta = pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False)
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
