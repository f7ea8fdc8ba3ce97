"""FASTA records: multi-line sequences, the record id, and a target in the header.

The first non-blank character of a FASTA file is ``>``; a record's id is the first word of its
header, and ``prepare`` reads a target from the header's numeric last word
(:func:`header_number`). Blank lines are skipped wherever they are. numpy and the standard
library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .errors import first_invalid, invalid_message, show_value
from .numbers import parse_number, target_problem
from .rows import EMPTY_SEQUENCE, INVALID_SYMBOL, OK, WRONG_COLUMNS, Rows

__all__ = ["FastaRecord", "header_number", "fasta_position", "Fasta"]


@dataclass
class FastaRecord:
    header_line: int
    header: bytes | None  # None: sequence lines before the first header
    parts: list[bytes] = field(default_factory=list)
    part_lines: list[int] = field(default_factory=list)


def header_number(header: bytes) -> float | None:
    """The numeric last token of ``>id ... 1.25``, or None (a header needs id and value)."""
    tokens = header[1:].split()
    if len(tokens) < 2:
        return None
    return parse_number(tokens[-1])


def fasta_position(parts: list[bytes], part_lines: list[int], position: int,
                   leads: list[int] | None = None) -> tuple[int, str]:
    """The input line holding ``position`` of a record's joined ``parts``, and `` (line L, column C)``.

    ``leads``: characters stripped from the start of each part, added back to the column.
    """
    ends = np.cumsum([len(part) for part in parts])
    k = int(np.searchsorted(ends, position, side="right"))
    column = position - (int(ends[k - 1]) if k else 0) + (leads[k] if leads else 0)
    return part_lines[k], f" (line {part_lines[k]}, column {column + 1})"


@dataclass
class Fasta:
    """FASTA records (multi-line allowed); the target is the header's numeric last token."""

    display: str
    with_targets: bool

    def records(self, chunks: Iterator[tuple[int, list[bytes]]], chunk_rows: int) -> Iterator[list[FastaRecord]]:
        """Group lines into records and yield ``chunk_rows`` records at a time.

        Blank lines carry nothing in FASTA and are skipped wherever they are.
        """
        batch: list[FastaRecord] = []
        record: FastaRecord | None = None
        for first_line, lines in chunks:
            for offset, line in enumerate(lines):
                text = line.rstrip(b"\r\n")
                if not text:
                    continue
                if text[:1] == b">":
                    if record is not None:
                        batch.append(record)
                        if len(batch) == chunk_rows:
                            yield batch
                            batch = []
                    record = FastaRecord(first_line + offset, text)
                else:
                    if record is None:
                        record = FastaRecord(first_line + offset, None)
                    record.parts.append(text)
                    record.part_lines.append(first_line + offset)
        if record is not None:
            batch.append(record)
        if batch:
            yield batch

    def describe(self, records: list[FastaRecord], row: int, reason: int) -> tuple[int, str]:
        record = records[row]
        if reason == WRONG_COLUMNS:
            return record.header_line, f"sequence line before the first '>' header: {show_value(record.parts[0])}"
        if reason == EMPTY_SEQUENCE:
            return record.header_line, f"record {show_value(record.header)} has no sequence lines"
        if reason == INVALID_SYMBOL:
            sequence = b"".join(record.parts)
            position = first_invalid(sequence)
            line, where = fasta_position(record.parts, record.part_lines, position)
            text = invalid_message(sequence, position, where) + f" in record {show_value(record.header)}"
            return line, text
        problem = target_problem(record.header[1:].split()[-1], "target")
        return record.header_line, f"{problem} in header {show_value(record.header)}"

    def parse(self, records: list[FastaRecord]) -> Rows:
        n = len(records)
        sequences = [b"".join(record.parts) for record in records]
        length = np.fromiter(map(len, sequences), dtype=np.int64, count=n)
        reason = np.zeros(n, dtype=np.uint8)
        reason[[record.header is None for record in records]] = WRONG_COLUMNS
        reason[(reason == OK) & (length == 0)] = EMPTY_SEQUENCE
        if self.with_targets:
            numbers = [
                header_number(record.header) if record.header is not None else None for record in records
            ]
            values = np.array([np.nan if x is None else x for x in numbers], dtype=np.float64)[:, None]
            bad_target = ~np.isfinite(values[:, 0])
        else:
            values = np.zeros((n, 0))
            bad_target = np.zeros(n, dtype=bool)
        return Rows.joined(sequences, length, line=np.array([record.header_line for record in records], dtype=np.int64),
                           values=values, reason=reason, bad_target=bad_target,
                           describe=lambda row, why: self.describe(records, row, why))
