"""The reader of sequences: FASTA, one sequence per line, DREAM TSV and CSV/TSV tables.

Everything that reads sequences from a user's file without preparing a dataset goes through
:func:`read_sequences`: predict, evaluate and the interpretation commands (through
:mod:`proformer.io.inputs`) and the quickstart. ``prepare`` (:mod:`proformer.data.prepare`) reads through the same
opening (:mod:`proformer.io.sources`), format detection (:mod:`proformer.io.sniff`) and row
parsers (:class:`~proformer.io.tables.Delimited`, :class:`~proformer.io.fasta.Fasta`). Every
symbol is checked against the alphabet in a few passes in C per chunk; a bad row is an
:class:`~proformer.io.errors.InputError` with ``file:line``, the value and what to do. numpy and
the standard library only.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..sequence import INPUT_CODES, INVALID, SYMBOL_CODES
from .errors import InputError, invalid_message, show_value
from .fasta import Fasta, fasta_position
from .numbers import parse_number, target_problem
from .rows import WRONG_COLUMNS
from .sniff import HEADER_NAMES, detect_format, is_header_line
from .sources import Source, check_input, line_chunks
from .tables import Delimited, table_parser

__all__ = ["SequenceChunk", "read_sequences"]


@dataclass
class SequenceChunk:
    """Consecutive rows of a sequence file, in file order.

    Attributes
    ----------
    sequences : list of str
        The sequences as written (case kept), surrounding whitespace removed.
    lines : np.ndarray
        int64 ``(n,)``: 1-based input line of each row (a FASTA record's header line).
    ids : list of str or None
        FASTA: each record's id (the first word after ``>``; ``""`` when there is none). None
        for the other formats.
    values : np.ndarray or None
        float64 ``(n,)``: the value column of DREAM TSV when asked for (``values=True``).
    fields : list of list of str, or None
        A table's ``columns`` as written (stripped), one list per row, when asked for.
    """

    sequences: list[str]
    lines: np.ndarray
    ids: list[str] | None = None
    values: np.ndarray | None = None
    fields: list[list[str]] | None = None


@dataclass
class _RawChunk:
    """Rows before the symbol check: sequences as bytes and how to name a position in one."""

    sequences: list[bytes]
    lines: np.ndarray
    ids: list[str] | None = None
    values: list[float] | None = None
    # locate(row, position) -> (line, text after "position P") for the symbol check's message
    locate: Callable[[int, int], tuple[int, str]] | None = None
    # The line of a headerless file's first row, read as data although it might be a header.
    header_candidate: int | None = None
    fields: list[list[str]] | None = None


def read_sequences(
    path: str | os.PathLike,
    chunk_rows: int = 100_000,
    *,
    seq_col: str | None = None,
    columns: Sequence[str] = (),
    values: bool = False,
    allow_mask: bool = False,
) -> Iterator[SequenceChunk]:
    """Stream the sequences of a file, ``chunk_rows`` rows at a time, in file order.

    Parameters
    ----------
    path : str or path
        FASTA, one sequence per line, DREAM TSV (the first field of each line is the sequence,
        further tab-separated fields are ignored unless ``values``), or with ``seq_col`` a CSV/TSV
        table with a header row. Plain or gzip (detected by magic bytes).
    chunk_rows : int
        Rows per chunk; every chunk but the last has exactly this many.
    seq_col : str, optional
        The table column holding the sequence (the table's header must name it).
    columns : sequence of str
        With ``seq_col``: other columns of the table to return as text
        (:attr:`SequenceChunk.fields`), read in the same pass.
    values : bool
        DREAM TSV only: also read the value column; each line must then be exactly
        ``sequence<TAB>value`` with a finite number as value.
    allow_mask : bool
        Also accept ``M`` (the model's mask token; :data:`proformer.sequence.SYMBOL_CODES`).
        Otherwise the symbols are ``A C G T N`` in either case, the rule of ``prepare``.

    Yields
    ------
    SequenceChunk
        Sequences, their lines, FASTA ids, and values when asked for.

    Raises
    ------
    InputError
        With ``file:line``, the value and what to do: a symbol outside the alphabet (a first line
        that is neither data nor a column-name header, :func:`is_header_line`, lands here), a
        non-blank line with an empty sequence field, a table row with the wrong number of fields,
        a missing or non-numeric value, a sequence line before the first FASTA header, a
        truncated or corrupt gzip file; also a directory or an unreadable file.
    FileNotFoundError
        When ``path`` does not exist.

    Blank lines are skipped everywhere. An empty FASTA record gives an empty sequence.
    """
    display = os.fspath(path)
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    check_input(path, display)
    format = detect_format(path, seq_col)
    if format == "fasta" and seq_col is not None:
        raise ValueError(f"seq_col applies to tables only, but {display} is FASTA")
    if columns and format != "table":
        raise ValueError(f"columns= reads other columns of a table (with seq_col); {display} is read as {format}")
    if values and format != "dream":
        raise ValueError(f"values=True reads the value column of DREAM TSV (sequence<TAB>value); {display} is read as {format}")
    table = _with_newline(SYMBOL_CODES if allow_mask else INPUT_CODES)
    valid = bytes(byte for byte in range(256) if table[byte] != INVALID)
    allowed = "A C G T N M" if allow_mask else "A C G T N"
    source = Source(path, display, hash_it=False)
    try:
        if format == "fasta":
            raw = _fasta_chunks(source, chunk_rows)
        elif format == "table":
            raw = _delimited_chunks(source, chunk_rows, table_parser(source, display, seq_col, list(columns)), False)
        else:
            raw = _delimited_chunks(source, chunk_rows, None, values)
        checked = (_checked(chunk, display, table, valid, allowed, format) for chunk in raw)
        yield from _rebatched(checked, chunk_rows)
    finally:
        source.close()


_INVALID_BYTE = bytes([INVALID])


def _with_newline(table: np.ndarray) -> bytes:
    """A byte -> code table for ``bytes.translate`` that lets the newline between sequences pass."""
    table = table.copy()
    table[ord("\n")] = 0
    return table.tobytes()


def _fasta_chunks(source: Source, chunk_rows: int) -> Iterator[_RawChunk]:
    fasta = Fasta(source.display, with_targets=False)
    for records in fasta.records(line_chunks(source, chunk_rows, 1), chunk_rows):
        sequences, stripped = [], []
        for row, record in enumerate(records):
            if record.header is None:
                line, text = fasta.describe(records, row, WRONG_COLUMNS)
                raise InputError(f"{source.display}:{line}: {text}. A FASTA file starts with a '>' header line")
            parts = [part.strip() for part in record.parts]
            stripped.append(parts)
            sequences.append(b"".join(parts))
        ids = [(record.header[1:].split() or [b""])[0].decode("utf-8", errors="replace") for record in records]

        def locate(row: int, position: int, records=records, stripped=stripped) -> tuple[int, str]:
            record = records[row]
            leads = [len(part) - len(part.lstrip()) for part in record.parts]
            line, where = fasta_position(stripped[row], record.part_lines, position, leads)
            return line, f"{where} in record {show_value(record.header)}"

        lines = np.array([record.header_line for record in records], dtype=np.int64)
        yield _RawChunk(sequences, lines, ids, None, locate)


def _first_fields(lines: list[bytes]) -> list[bytes] | None:
    """The first tab-separated field of each line, stripped; None when some line needs the
    per-line path (a blank line or an empty first field)."""
    fields = [line.split(b"\t", 1)[0].strip() for line in lines]
    return None if b"" in fields else fields


def _delimited_chunks(source: Source, chunk_rows: int, parser: Delimited | None, values: bool) -> Iterator[_RawChunk]:
    """DREAM TSV / one per line (``parser`` None: the first field is the sequence) or a table."""
    display = source.display
    first_row = parser is None  # the first line of a headerless file may be a column-name header
    header_candidate = None
    for first_line, lines in line_chunks(source, chunk_rows, 2 if parser else 1):
        fast = _first_fields(lines) if parser is None and not values else None
        if fast is not None:
            skip = 0
            if first_row:
                first_row = False
                if is_header_line(lines[0]):
                    skip = 1
                else:
                    header_candidate = first_line
            if len(fast) > skip:
                numbers = np.arange(first_line + skip, first_line + len(fast), dtype=np.int64)
                yield _RawChunk(fast[skip:], numbers, header_candidate=header_candidate)
            continue
        sequences: list[bytes] = []
        numbers: list[int] = []
        found: list[float] = []
        extra: list[list[str]] = []
        for offset, line in enumerate(lines):
            text = line.strip()
            if not text:
                continue  # blank lines are skipped
            number = first_line + offset
            if first_row:
                first_row = False
                if is_header_line(text):
                    continue
                header_candidate = number
            if parser is not None:
                fields = parser._split(line)
                if len(fields) != parser.n_columns:
                    raise InputError(
                        f"{display}:{number}: {parser.describe(lines, offset, WRONG_COLUMNS)}. Every row of a "
                        "table has one field per header column"
                    )
                sequence = fields[parser.seq_column].strip()
                if parser.target_columns:
                    extra.append([fields[c].strip().decode("utf-8", errors="replace") for c in parser.target_columns])
            else:
                fields = line.rstrip(b"\r\n").split(b"\t")
                sequence = fields[0].strip()
                if values:
                    if len(fields) != 2:
                        raise InputError(
                            f"{display}:{number}: expected 2 tab-separated columns (sequence, value), found "
                            f"{len(fields)}: {show_value(text)}. Each line must be sequence<TAB>value"
                        )
                    problem = target_problem(fields[1].strip(), "value")
                    if problem:
                        raise InputError(f"{display}:{number}: {problem}. Each line must be sequence<TAB>value")
                    found.append(parse_number(fields[1]))
            if not sequence:
                raise InputError(
                    f"{display}:{number}: the sequence field is empty: {show_value(text)}. Remove the line "
                    "or give its sequence (a blank line is skipped, a line with an empty sequence is not)"
                )
            sequences.append(sequence)
            numbers.append(number)
        if sequences:
            yield _RawChunk(
                sequences, np.asarray(numbers, dtype=np.int64), None, found if values else None,
                header_candidate=header_candidate, fields=extra if parser is not None and parser.target_columns else None,
            )


def _checked(chunk: _RawChunk, display: str, table: bytes, valid: bytes, allowed: str, format: str) -> SequenceChunk:
    """Check every symbol of a chunk and decode it: a few passes in C over the newline-joined
    sequences (no sequence holds a newline), not a step per row."""
    joined = b"\n".join(chunk.sequences)
    if joined.translate(None, valid):  # something is left once every valid byte is deleted
        flat = joined.translate(table).find(_INVALID_BYTE)
        row = joined.count(b"\n", 0, flat)
        position = flat - (joined.rfind(b"\n", 0, flat) + 1)
        line, where = chunk.locate(row, position) if chunk.locate else (int(chunk.lines[row]), "")
        text = invalid_message(chunk.sequences[row], position, where, allowed)
        if chunk.lines[row] == chunk.header_candidate:
            text += (
                f" (line {line} is read as data: a first line is a header only when its first field is a "
                f"column name such as {HEADER_NAMES[0]!r}; for a table with a header, name its sequence "
                "column with --seq-col NAME, seq_col=)"
            )
        advice = "Fix the sequence" if format == "fasta" else "Fix the line"
        raise InputError(f"{display}:{line}: {text}. {advice}: sequences are DNA over {allowed}")
    return SequenceChunk(
        sequences=joined.decode("ascii").split("\n") if chunk.sequences else [],
        lines=chunk.lines,
        ids=chunk.ids,
        values=None if chunk.values is None else np.asarray(chunk.values, dtype=np.float64),
        fields=chunk.fields,
    )


def _rebatched(chunks: Iterator[SequenceChunk], size: int) -> Iterator[SequenceChunk]:
    """The same rows in chunks of exactly ``size`` (the last one shorter)."""
    pending: list[SequenceChunk] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk.sequences)
        while held >= size:
            merged = _concat(pending)
            yield _slice(merged, 0, size)
            rest = _slice(merged, size, held)
            held -= size
            pending = [rest] if held else []
    if held:
        yield _concat(pending)


def _concat(chunks: list[SequenceChunk]) -> SequenceChunk:
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    return SequenceChunk(
        sequences=list(itertools.chain.from_iterable(chunk.sequences for chunk in chunks)),
        lines=np.concatenate([chunk.lines for chunk in chunks]),
        ids=None if first.ids is None else list(itertools.chain.from_iterable(chunk.ids for chunk in chunks)),
        values=None if first.values is None else np.concatenate([chunk.values for chunk in chunks]),
        fields=None if first.fields is None else list(itertools.chain.from_iterable(chunk.fields for chunk in chunks)),
    )


def _slice(chunk: SequenceChunk, start: int, stop: int) -> SequenceChunk:
    if start == 0 and stop == len(chunk.sequences):
        return chunk
    return SequenceChunk(
        sequences=chunk.sequences[start:stop],
        lines=chunk.lines[start:stop],
        ids=None if chunk.ids is None else chunk.ids[start:stop],
        values=None if chunk.values is None else chunk.values[start:stop],
        fields=None if chunk.fields is None else chunk.fields[start:stop],
    )
