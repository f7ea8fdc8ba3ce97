"""Parsed rows of one chunk, common to all formats, and why a row is not kept.

The row parsers (:class:`proformer.io.tables.Delimited`, :class:`proformer.io.fasta.Fasta`) turn
a chunk of lines into one :class:`Rows`; ``prepare`` classifies each row by the reason codes
below, in the order the checks run. numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = [
    "REASONS", "OK", "WRONG_COLUMNS", "EMPTY_SEQUENCE", "TOO_LONG", "INVALID_SYMBOL", "BAD_TARGET", "Rows",
]


#: Why a row of an input file is not kept, in the order the checks run (``meta["dropped"]``).
REASONS = ("wrong_columns", "empty_sequence", "too_long", "invalid_symbol", "bad_target")
OK, WRONG_COLUMNS, EMPTY_SEQUENCE, TOO_LONG, INVALID_SYMBOL, BAD_TARGET = range(6)


@dataclass
class Rows:
    """One chunk of parsed rows.

    Attributes
    ----------
    line : np.ndarray
        int64 ``(n,)``: 1-based input line of each row (a FASTA record's header line).
    buffer : np.ndarray
        uint8 bytes that hold the sequences.
    start, length : np.ndarray
        int64 ``(n,)``: where each row's sequence lies in ``buffer`` (0 for unparsable rows).
    values : np.ndarray
        float64 ``(n, n_targets)``; NaN where unparsable.
    reason : np.ndarray
        uint8 ``(n,)``: ``WRONG_COLUMNS``, ``EMPTY_SEQUENCE`` or ``OK`` (structure only).
    bad_target : np.ndarray
        bool ``(n,)``: some target is missing, non-numeric or not finite.
    describe : callable
        ``describe(row, reason) -> (line, text)``: what is wrong with one row and the input
        line that shows it, for messages.
    """

    line: np.ndarray
    buffer: np.ndarray
    start: np.ndarray
    length: np.ndarray
    values: np.ndarray
    reason: np.ndarray
    bad_target: np.ndarray
    describe: Callable[[int, int], tuple[int, str]]

    @classmethod
    def joined(cls, sequences: list[bytes], length: np.ndarray, **fields) -> "Rows":
        """Rows whose sequences are given one by one (the csv and FASTA paths): joined into one
        buffer, each row's ``start`` where its sequence begins; ``fields`` are the others."""
        start = np.zeros(len(length), dtype=np.int64)
        np.cumsum(length[:-1], out=start[1:])
        return cls(buffer=np.frombuffer(b"".join(sequences), dtype=np.uint8), start=start, length=length, **fields)
