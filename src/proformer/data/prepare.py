"""Read DREAM TSV, FASTA or CSV/TSV tables into a dataset directory (``docs/dataset-format.md``).

:func:`prepare` streams the input ``chunk_rows`` rows at a time, so memory does not grow with the
file. Each chunk is parsed with numpy on one byte buffer: line ends and delimiters are found with
vectorised comparisons, sequences are gathered into a padded ``(rows, width)`` matrix and
translated through a lookup table, and targets are converted in bulk. Per-line Python only runs
for FASTA records, quoted CSV, and to describe a bad row in an error message.

Encoded chunks go to temporary files; ``codes.npy`` is assembled at the end in a memory-mapped
``.npy`` of the final shape, one chunk padded to the final width at a time, so the full matrix is
never held in memory. The directory's files, names and ``meta.json`` writer are those of
:mod:`proformer.io.dataset`.

Every input row ends up kept or counted under one reason of ``meta["dropped"]``. Problems are
checked in this order and the first one found names the reason:

==================  ==========================================================  ===============
reason              meaning                                                     on_bad="error"
==================  ==========================================================  ===============
``wrong_columns``   wrong number of fields, or a blank line inside the file     raises
``empty_sequence``  the sequence field is empty                                 raises
``too_long``        longer than ``transforms.length`` after trimming            dropped, counted
``invalid_symbol``  a character outside ``ACGTN`` (either case) in the sequence raises
``bad_target``      target missing, non-numeric, NaN or infinite                raises
==================  ==========================================================  ===============

``too_long`` is the length filter of the DREAM layout, not an input error, so such rows are
dropped in both modes (their symbols and targets are not checked). With ``on_bad="skip"`` the
other rows are dropped too and counted; a summary goes to stderr. An empty input and a truncated
or corrupt ``.gz`` file are errors in both modes.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import hashlib
import io
import itertools
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..io.dataset import CODES, FORMAT_VERSION, INTEGER_TARGET, LENGTHS, TARGETS, is_integer_target, publish, write_meta
from ..io.dataset import read_meta as load_meta  # the checked reader, under the name prepare has always exported
from ..sequence import DREAM_HEAD, DREAM_LENGTH, DREAM_TAIL, INPUT_CODES, INPUT_CODES_BYTES, INVALID, N, Layout

__all__ = ["InputError", "prepare", "load_meta", "FORMAT_VERSION", "REASONS"]

REASONS = ("wrong_columns", "empty_sequence", "too_long", "invalid_symbol", "bad_target")
_OK, _WRONG_COLUMNS, _EMPTY_SEQUENCE, _TOO_LONG, _INVALID_SYMBOL, _BAD_TARGET = range(6)
_ERRORS = (_WRONG_COLUMNS, _EMPTY_SEQUENCE, _INVALID_SYMBOL, _BAD_TARGET)  # too_long is a filter

_GZIP_MAGIC = b"\x1f\x8b"
_READ_BUFFER = 1 << 20
# A target field longer than this is not a number anyone wrote by hand or by printf; treating it
# as bad up front also bounds the (rows, width) matrix the bulk conversion builds.
_MAX_NUMBER_WIDTH = 64
_EXAMPLES_SHOWN = 5
_ADVICE = (
    "Fix the input, or pass --on-bad skip (prepare(..., on_bad='skip')) to drop such rows; "
    "they are then counted in meta.json 'dropped'"
)


class InputError(ValueError):
    """The input file cannot be prepared; the message names ``file:line`` and the value."""


# --------------------------------------------------------------------------------------------
# Reading: plain or gzip, hashed while read, in chunks of lines.
# --------------------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """A raw reader that feeds every byte it reads from disk into ``hasher``.

    Hashing the bytes as they come off the disk gives the checksum of the file as stored (the
    compressed bytes of a ``.gz``) without a second pass over it.
    """

    def __init__(self, raw: io.RawIOBase, hasher) -> None:
        self._raw = raw
        self._hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self._hasher.update(memoryview(buffer)[:count])
        return count

    def drain(self) -> None:
        """Hash whatever the parser did not need (e.g. bytes after a gzip stream)."""
        while self._raw.read(_READ_BUFFER):
            pass

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Source:
    """An input file opened for line-wise reading, plain or gzip (detected by magic bytes)."""

    def __init__(self, path: Path, display: str, hash_it: bool = True) -> None:
        self.path = path
        self.display = display
        self.hasher = hashlib.sha256() if hash_it else None
        with open(path, "rb") as probe:
            self.gzipped = probe.read(2) == _GZIP_MAGIC
        raw = open(path, "rb", buffering=0)
        self._hashing = _HashingReader(raw, self.hasher) if hash_it else None
        base = io.BufferedReader(self._hashing or raw, _READ_BUFFER)
        self._base = base  # GzipFile does not close the file object it is given
        if self.gzipped:
            # GzipFile itself, not a BufferedReader around it: a buffered read of a truncated
            # stream raises without returning the lines before the damage, and those lines are
            # what tells the user where reading stopped.
            self.stream = gzip.GzipFile(fileobj=base, mode="rb")
        else:
            self.stream = base
        self.lines_read = 0

    def read_lines(self, count: int) -> list[bytes]:
        """The next ``count`` lines (fewer at the end), newline characters included."""
        lines: list[bytes] = []
        try:
            # list.extend keeps the lines read before an exception, so lines_read stays exact.
            lines.extend(itertools.islice(self.stream, count))
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            stopped = self.lines_read + len(lines) + 1
            raise InputError(
                f"{self.display}:{stopped}: the gzip file is truncated or corrupt ({error}); "
                f"reading stopped at line {stopped}. Download or compress the file again "
                f"(gzip -t {self.display} checks it); skipping cannot repair this"
            ) from None
        self.lines_read += len(lines)
        return lines

    def sha256(self) -> str:
        self._hashing.drain()
        return self.hasher.hexdigest()

    def close(self) -> None:
        self.stream.close()
        self._base.close()


def _is_blank(line: bytes) -> bool:
    return not line.rstrip(b"\r\n")


def _line_chunks(source: _Source, chunk_rows: int, first_line: int) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(number of the first line, lines)`` for consecutive chunks of the input.

    Blank lines at the very end of the file are dropped (an editor's trailing newline). A blank
    run at the end of a chunk is held back until it is known whether data follows, in which case
    it is passed on (and counted as ``wrong_columns`` by the parser).
    """
    pending: list[bytes] = []
    next_line = first_line  # number of the first line in ``pending + lines``
    while True:
        lines = source.read_lines(chunk_rows)
        if not lines:
            return  # pending blank lines were trailing: ignored
        blanks = 0
        while blanks < len(lines) and _is_blank(lines[-1 - blanks]):
            blanks += 1
        if blanks == len(lines):
            pending.extend(lines)
            continue
        batch = pending + lines[: len(lines) - blanks]
        pending = lines[len(lines) - blanks :]
        yield next_line, batch
        next_line += len(batch)


# --------------------------------------------------------------------------------------------
# Parsed rows of one chunk, common to all formats.
# --------------------------------------------------------------------------------------------


@dataclass
class _Rows:
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
        uint8 ``(n,)``: ``_WRONG_COLUMNS``, ``_EMPTY_SEQUENCE`` or ``_OK`` (structure only).
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


def _show(value: bytes | str, limit: int = 80) -> str:
    """A value for a message: repr, shortened in the middle when long."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if len(value) > limit:
        value = value[: limit - 25] + " ... " + value[-20:]
    return repr(value)


def _first_invalid(sequence: bytes) -> int | None:
    """0-based position of the first symbol outside ACGTN, or None."""
    codes = INPUT_CODES[np.frombuffer(sequence, dtype=np.uint8)]
    bad = np.flatnonzero(codes == INVALID)
    return int(bad[0]) if bad.size else None


def _invalid_message(sequence: bytes, position: int, where: str = "") -> str:
    char = sequence[position : position + 1].decode("utf-8", errors="replace")
    context = sequence[max(0, position - 10) : position + 11]
    return (
        f"invalid symbol {char!r} at position {position + 1}{where} of the sequence (allowed: "
        f"A C G T N, either case): {_show(context)}"
    )


def _target_problem(text: bytes | str, name: str) -> str | None:
    """Why one target field is bad, or None when it is a finite number."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        return f"target {name!r} is missing (empty field)"
    if len(text) > _MAX_NUMBER_WIDTH:
        return f"target {name!r} is not a number (longer than {_MAX_NUMBER_WIDTH} characters): {_show(text)}"
    try:
        value = float(text)
    except ValueError:
        return f"target {name!r} is not a number: {_show(text)}"
    if math.isnan(value):
        return f"target {name!r} is NaN: {_show(text)}"
    if math.isinf(value):
        return f"target {name!r} is infinite: {_show(text)}"
    return None


def _parse_numbers(texts: Sequence[bytes | str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-item float conversion, for the few chunks where bulk conversion failed."""
    values = np.full(len(texts), np.nan)
    for i, text in enumerate(texts):
        try:
            values[i] = float(text)
        except ValueError:
            pass
    return values, ~np.isfinite(values)


def _bulk_numbers(padded: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert byte fields ``padded[start:end]`` to float64 in bulk.

    Parameters
    ----------
    padded : np.ndarray
        uint8 buffer with at least ``_MAX_NUMBER_WIDTH`` spare bytes after the last field.
    start, end : np.ndarray
        int64 ``(m,)`` field bounds.

    Returns
    -------
    values : np.ndarray
        float64 ``(m,)``, NaN where bad.
    bad : np.ndarray
        bool ``(m,)``: empty, too wide, non-numeric, NaN or infinite.
    """
    width = end - start
    values = np.full(len(start), np.nan)
    bad = (width == 0) | (width > _MAX_NUMBER_WIDTH)
    rows = np.flatnonzero(~bad)
    if rows.size:
        w = int(width[rows].max())
        # Gather each field into a fixed-width row, zero the bytes past its end and read the
        # matrix as numpy byte strings, which numpy converts to float in C.
        fields = sliding_window_view(padded, w)[start[rows]]
        fields[np.arange(w) >= width[rows, None]] = 0
        strings = fields.view(f"S{w}").ravel()
        try:
            values[rows] = strings.astype(np.float64)
        except ValueError:
            values[rows] = _parse_numbers(strings.tolist())[0]
    bad |= ~np.isfinite(values)
    return values, bad


# --------------------------------------------------------------------------------------------
# Parsers: DREAM TSV and CSV/TSV tables (delimited), FASTA.
# --------------------------------------------------------------------------------------------


@dataclass
class _Delimited:
    """Rows of ``n_columns`` fields split by one delimiter byte (DREAM TSV and tables).

    The fast path splits a whole chunk with numpy. Chunks of tables that contain a double quote
    go through the csv module instead, so quoted fields (``"a,b"``) read correctly.
    """

    display: str
    delimiter: str
    column_names: list[str]
    seq_column: int
    target_columns: list[int]
    quoting: bool  # tables may quote fields; DREAM TSV never does
    header_hint: bool = False  # DREAM TSV has no header: say what to do if line 1 looks like one

    @property
    def n_columns(self) -> int:
        return len(self.column_names)

    def _columns_text(self) -> str:
        name = {"\t": "tab", ",": "comma", ";": "semicolon"}.get(self.delimiter, repr(self.delimiter))
        return f"{self.n_columns} {name}-separated columns ({', '.join(self.column_names)})"

    def _split(self, line: bytes) -> list[bytes]:
        text = line.rstrip(b"\r\n")
        if not text:
            return []
        if self.quoting and b'"' in text:
            row = next(csv.reader([text.decode("latin-1")], delimiter=self.delimiter))
            return [value.encode("latin-1") for value in row]
        return text.split(self.delimiter.encode())

    def locate(self, lines: list[bytes], first_line: int, row: int, reason: int) -> tuple[int, str]:
        """``(line, text)`` for one bad row; on line 1 of DREAM TSV also suggest a header."""
        line, text = first_line + row, self.describe(lines, row, reason)
        if self.header_hint and line == 1 and reason in (_WRONG_COLUMNS, _INVALID_SYMBOL, _BAD_TARGET):
            text += " (if line 1 is a header, read the file as a table: seq_col=..., target_cols=...)"
        return line, text

    def describe(self, lines: list[bytes], row: int, reason: int) -> str:
        text = lines[row].rstrip(b"\r\n")
        fields = self._split(text)
        if reason == _WRONG_COLUMNS:
            if not fields:
                return f"blank line; expected {self._columns_text()}"
            return f"expected {self._columns_text()}, found {len(fields)}: {_show(text)}"
        if reason == _EMPTY_SEQUENCE:
            return f"the sequence column {self.column_names[self.seq_column]!r} is empty: {_show(text)}"
        if reason == _INVALID_SYMBOL:
            sequence = fields[self.seq_column]
            return _invalid_message(sequence, _first_invalid(sequence))
        for column in self.target_columns:
            problem = _target_problem(fields[column], self.column_names[column])
            if problem:
                return problem
        raise AssertionError(f"row {row} has no problem of kind {REASONS[reason - 1]}")

    def parse(self, lines: list[bytes], first_line: int) -> _Rows:
        data = b"".join(lines)
        if self.quoting and b'"' in data:
            return self._parse_csv(lines, first_line)
        if not data.endswith(b"\n"):
            data += b"\n"  # the last line of a file without a final newline
        # Spare bytes after the data let fixed-width windows start at any field.
        buffer = np.frombuffer(data + bytes(_MAX_NUMBER_WIDTH), dtype=np.uint8)
        n = len(lines)
        body = buffer[: len(data)]
        ends = np.flatnonzero(body == ord("\n"))
        assert len(ends) == n, "one newline per line"
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        ends = ends - ((ends > starts) & (body[ends - 1] == ord("\r")))  # CRLF files
        delims = np.flatnonzero(body == ord(self.delimiter))
        first = np.searchsorted(delims, starts)
        n_fields = np.searchsorted(delims, ends) - first + 1

        reason = np.zeros(n, dtype=np.uint8)
        reason[(n_fields != self.n_columns) | (ends == starts)] = _WRONG_COLUMNS
        ok = np.flatnonzero(reason == _OK)
        # Delimiter positions of the well-formed rows: (rows, n_columns - 1).
        cuts = delims[first[ok, None] + np.arange(self.n_columns - 1)]

        def bounds(column: int) -> tuple[np.ndarray, np.ndarray]:
            lo = starts[ok] if column == 0 else cuts[:, column - 1] + 1
            hi = ends[ok] if column == self.n_columns - 1 else cuts[:, column]
            return lo, hi

        start = np.zeros(n, dtype=np.int64)
        length = np.zeros(n, dtype=np.int64)
        lo, hi = bounds(self.seq_column)
        start[ok], length[ok] = lo, hi - lo
        reason[ok[length[ok] == 0]] = _EMPTY_SEQUENCE

        values = np.full((n, len(self.target_columns)), np.nan)
        bad_target = np.zeros(n, dtype=bool)
        for j, column in enumerate(self.target_columns):
            values[ok, j], bad = _bulk_numbers(buffer, *bounds(column))
            bad_target[ok] |= bad

        return _Rows(
            line=first_line + np.arange(n, dtype=np.int64),
            buffer=buffer,
            start=start,
            length=length,
            values=values,
            reason=reason,
            bad_target=bad_target,
            describe=lambda row, why: self.locate(lines, first_line, row, why),
        )

    def _parse_csv(self, lines: list[bytes], first_line: int) -> _Rows:
        # latin-1 maps bytes 1:1 to characters, so fields encode back to the exact input bytes.
        texts = [line.decode("latin-1") for line in lines]
        reader = csv.reader(texts, delimiter=self.delimiter)
        n = len(lines)
        reason = np.zeros(n, dtype=np.uint8)
        sequences: list[bytes] = []
        targets: list[list[str]] = []
        for i in range(n):
            try:
                fields = next(reader)
            except (csv.Error, StopIteration) as error:
                raise InputError(
                    f"{self.display}:{first_line + i}: cannot parse this line as CSV ({error}): "
                    f"{_show(lines[i])}. Each record must be on one line"
                ) from None
            if reader.line_num != i + 1:
                raise InputError(
                    f"{self.display}:{first_line + i}: a quoted field continues on the next "
                    f"line: {_show(lines[i])}. Each record must be on one line (close the quote)"
                )
            if len(fields) != self.n_columns:
                reason[i] = _WRONG_COLUMNS
                sequences.append(b"")
                targets.append([""] * len(self.target_columns))
                continue
            sequences.append(fields[self.seq_column].encode("latin-1"))
            targets.append([fields[column] for column in self.target_columns])
        length = np.fromiter(map(len, sequences), dtype=np.int64, count=n)
        reason[(reason == _OK) & (length == 0)] = _EMPTY_SEQUENCE
        values = np.full((n, len(self.target_columns)), np.nan)
        bad_target = np.zeros(n, dtype=bool)
        for j in range(len(self.target_columns)):
            values[:, j], bad = _parse_numbers([row[j] for row in targets])
            bad_target |= bad
        start = np.zeros(n, dtype=np.int64)
        np.cumsum(length[:-1], out=start[1:])
        return _Rows(
            line=first_line + np.arange(n, dtype=np.int64),
            buffer=np.frombuffer(b"".join(sequences), dtype=np.uint8),
            start=start,
            length=length,
            values=values,
            reason=reason,
            bad_target=bad_target,
            describe=lambda row, why: self.locate(lines, first_line, row, why),
        )


@dataclass
class _FastaRecord:
    header_line: int
    header: bytes | None  # None: sequence lines before the first header
    parts: list[bytes] = field(default_factory=list)
    part_lines: list[int] = field(default_factory=list)


def _header_number(header: bytes) -> float | None:
    """The numeric last token of ``>id ... 1.25``, or None (a header needs id and value)."""
    tokens = header[1:].split()
    if len(tokens) < 2:
        return None
    try:
        return float(tokens[-1])
    except ValueError:
        return None


@dataclass
class _Fasta:
    """FASTA records (multi-line allowed); the target is the header's numeric last token."""

    display: str
    with_targets: bool

    def records(self, chunks: Iterator[tuple[int, list[bytes]]], chunk_rows: int) -> Iterator[list[_FastaRecord]]:
        """Group lines into records and yield ``chunk_rows`` records at a time.

        Blank lines carry nothing in FASTA and are skipped wherever they are.
        """
        batch: list[_FastaRecord] = []
        record: _FastaRecord | None = None
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
                    record = _FastaRecord(first_line + offset, text)
                else:
                    if record is None:
                        record = _FastaRecord(first_line + offset, None)
                    record.parts.append(text)
                    record.part_lines.append(first_line + offset)
        if record is not None:
            batch.append(record)
        if batch:
            yield batch

    def describe(self, records: list[_FastaRecord], row: int, reason: int) -> tuple[int, str]:
        record = records[row]
        if reason == _WRONG_COLUMNS:
            return record.header_line, f"sequence line before the first '>' header: {_show(record.parts[0])}"
        if reason == _EMPTY_SEQUENCE:
            return record.header_line, f"record {_show(record.header)} has no sequence lines"
        if reason == _INVALID_SYMBOL:
            sequence = b"".join(record.parts)
            position = _first_invalid(sequence)
            # Name the line that holds the symbol, not just the record's header line.
            ends = np.cumsum([len(part) for part in record.parts])
            k = int(np.searchsorted(ends, position, side="right"))
            column = position - (int(ends[k - 1]) if k else 0)
            where = f" (line {record.part_lines[k]}, column {column + 1})"
            text = _invalid_message(sequence, position, where) + f" in record {_show(record.header)}"
            return record.part_lines[k], text
        problem = _target_problem(record.header[1:].split()[-1], "target")
        return record.header_line, f"{problem} in header {_show(record.header)}"

    def parse(self, records: list[_FastaRecord]) -> _Rows:
        n = len(records)
        sequences = [b"".join(record.parts) for record in records]
        length = np.fromiter(map(len, sequences), dtype=np.int64, count=n)
        reason = np.zeros(n, dtype=np.uint8)
        reason[[record.header is None for record in records]] = _WRONG_COLUMNS
        reason[(reason == _OK) & (length == 0)] = _EMPTY_SEQUENCE
        if self.with_targets:
            numbers = [
                _header_number(record.header) if record.header is not None else None for record in records
            ]
            values = np.array([np.nan if x is None else x for x in numbers], dtype=np.float64)[:, None]
            bad_target = ~np.isfinite(values[:, 0])
        else:
            values = np.zeros((n, 0))
            bad_target = np.zeros(n, dtype=bool)
        start = np.zeros(n, dtype=np.int64)
        np.cumsum(length[:-1], out=start[1:])
        return _Rows(
            line=np.array([record.header_line for record in records], dtype=np.int64),
            buffer=np.frombuffer(b"".join(sequences), dtype=np.uint8),
            start=start,
            length=length,
            values=values,
            reason=reason,
            bad_target=bad_target,
            describe=lambda row, why: self.describe(records, row, why),
        )


# --------------------------------------------------------------------------------------------
# Encoding one chunk.
# --------------------------------------------------------------------------------------------


def _gather_codes(buffer: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sequences ``buffer[start:start+length]`` as a padded code matrix.

    Returns
    -------
    np.ndarray
        uint8 ``(m, max(length))``, padded with ``N``; ``INVALID`` marks symbols outside ACGTN.
    """
    width = int(length.max(initial=0))
    if not width:
        return np.zeros((len(start), 0), dtype=np.uint8)
    # bytes.translate runs the lookup table at memory speed, several times faster than numpy
    # fancy indexing with uint8 indices; it also makes the copy that the padding below needs.
    translated = buffer.tobytes().translate(INPUT_CODES_BYTES)
    if len(translated) < int(start.max()) + width:
        translated += bytes(width)
    # One fixed-width window per row, copied straight out of the buffer (no per-row loop);
    # positions past a row's end hold the next field's bytes and are overwritten with N.
    codes = sliding_window_view(np.frombuffer(translated, dtype=np.uint8), width)[start]
    small = np.int16 if width < 2**15 else np.int64  # a narrower compare is several times faster
    codes[np.arange(width, dtype=small) >= length.astype(small)[:, None]] = N
    return codes


@dataclass
class _Stats:
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    examples: list[str] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    integer: list[np.ndarray] = field(default_factory=list)
    chunk_files: list[tuple[Path, int, int]] = field(default_factory=list)  # (file, rows, width)


def _process(
    rows: _Rows,
    stats: _Stats,
    *,
    display: str,
    on_bad: str,
    head: int,
    tail: int,
    limit: int | None,
    tmp_dir: Path,
) -> None:
    """Classify, encode and store one chunk of rows (or raise on the first bad one)."""
    n = len(rows.line)
    stats.rows_read += n
    reason = rows.reason.copy()
    if limit is not None:
        # The layout's own rule for rows longer than the window (Layout's docstring).
        fits = Layout(head=head, tail=tail, length=limit).fits(rows.length)
        reason[(reason == _OK) & ~fits] = _TOO_LONG
    candidates = np.flatnonzero(reason == _OK)
    codes = _gather_codes(rows.buffer, rows.start[candidates], rows.length[candidates])
    invalid = (codes == INVALID).any(axis=1)
    reason[candidates[invalid]] = _INVALID_SYMBOL
    reason[(reason == _OK) & rows.bad_target] = _BAD_TARGET

    bad = np.flatnonzero(np.isin(reason, _ERRORS))
    if bad.size and on_bad == "error":
        line, text = rows.describe(int(bad[0]), int(reason[bad[0]]))
        raise InputError(f"{display}:{line}: {text}. {_ADVICE}")
    for row in bad[: max(0, _EXAMPLES_SHOWN - len(stats.examples))]:
        line, text = rows.describe(int(row), int(reason[row]))
        stats.examples.append(f"{display}:{line}: {text}")
    counts = np.bincount(reason, minlength=len(REASONS) + 1)
    for code, name in enumerate(REASONS, start=1):
        stats.dropped[name] += int(counts[code])

    kept_in_candidates = reason[candidates] == _OK
    kept = candidates[kept_in_candidates]
    if not kept.size:
        return
    lengths = rows.length[kept]
    width = int(lengths.max())
    codes = np.ascontiguousarray(codes[kept_in_candidates, :width])
    path = tmp_dir / f"codes-{len(stats.chunk_files):05d}.u8"
    codes.tofile(path)
    stats.chunk_files.append((path, len(kept), width))
    stats.lengths.append(lengths.astype(np.int32))
    values = rows.values[kept]
    stats.targets.append(values.astype(np.float32))
    if values.shape[1]:
        stats.integer.append(is_integer_target(values))
    else:
        stats.integer.append(np.zeros(len(kept), dtype=bool))


def _assemble_codes(path: Path, chunk_files: list[tuple[Path, int, int]], width: int) -> None:
    """Write ``codes.npy`` of shape ``(rows, width)`` from the chunk files, one chunk in memory.

    Each chunk file holds uint8 ``(rows, chunk_width)``, ``chunk_width <= width``; the columns
    beyond a chunk's width are padding (N).
    """
    n = sum(rows for _, rows, _ in chunk_files)
    codes = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, width))
    start = 0
    for chunk_path, rows, chunk_width in chunk_files:
        block = codes[start : start + rows]
        block[:, :chunk_width] = np.fromfile(chunk_path, dtype=np.uint8).reshape(rows, chunk_width)
        block[:, chunk_width:] = N
        start += rows
        chunk_path.unlink()
    codes.flush()
    del codes  # close the map before the file is moved into place


# --------------------------------------------------------------------------------------------
# Format detection and table headers.
# --------------------------------------------------------------------------------------------


def _first_char(path: Path) -> bytes:
    """The first non-whitespace byte of the (decompressed) file, or b'' when there is none."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == _GZIP_MAGIC
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as stream:
            while True:
                block = stream.read(1 << 16)
                if not block:
                    return b""
                stripped = block.lstrip()
                if stripped:
                    return stripped[:1]
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return b""  # the main pass reports the damage with a line number


def _detect_format(path: Path, seq_col: str | None) -> str:
    if _first_char(path) == b">":
        return "fasta"
    return "table" if seq_col is not None else "dream"


def _table_delimiter(path: Path, header: str) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".tab")):
        return "\t"
    # .txt and anything else: sniff the header. Tabs win (the MPRA .txt files are TSV).
    for delimiter in ("\t", ",", ";"):
        if delimiter in header:
            return delimiter
    return "\t"


def _table_parser(source: _Source, display: str, seq_col: str, target_cols: list[str]) -> _Delimited:
    lines = source.read_lines(1)
    if not lines or _is_blank(lines[0]):
        raise InputError(
            f"{display}:1: no header line (the file is empty or starts with a blank line); a table "
            "needs a header naming its columns"
        )
    text = lines[0].decode("utf-8", errors="replace").removeprefix("\ufeff").rstrip("\r\n")
    delimiter = _table_delimiter(source.path, text)
    names = [name.strip() for name in next(csv.reader([text], delimiter=delimiter))]
    wanted = [seq_col, *target_cols]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise InputError(
            f"{display}:1: column(s) {', '.join(map(repr, missing))} not in the header; the "
            f"{'tab' if delimiter == chr(9) else repr(delimiter)}-separated header has: {', '.join(names)}"
        )
    duplicated = sorted({name for name in wanted if names.count(name) > 1})
    if duplicated:
        raise InputError(
            f"{display}:1: column name(s) {', '.join(map(repr, duplicated))} appear more than once in the header"
        )
    return _Delimited(
        display=display,
        delimiter=delimiter,
        column_names=names,
        seq_column=names.index(seq_col),
        target_columns=[names.index(name) for name in target_cols],
        quoting=True,
    )


def _fasta_has_targets(path: Path, display: str) -> tuple[bool, str]:
    """One streaming pass: do all headers end in a number? Also the file's sha256."""
    source = _Source(path, display)
    numeric, headers = True, 0
    try:
        while True:
            lines = source.read_lines(200_000)
            if not lines:
                break
            if numeric:
                for line in lines:
                    if line[:1] == b">":
                        headers += 1
                        if _header_number(line.rstrip(b"\r\n")) is None:
                            numeric = False
                            break
        return numeric and headers > 0, source.sha256()
    finally:
        source.close()


# --------------------------------------------------------------------------------------------
# The public functions.
# --------------------------------------------------------------------------------------------


def prepare(
    input: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "auto",
    seq_col: str | None = None,
    target_cols: str | Sequence[str] | None = None,
    on_bad: str = "error",
    trim: tuple[int, int] | None = None,
    length: int | None = None,
    chunk_rows: int = 200_000,
    progress: bool = True,
) -> dict:
    """Read an input file into a dataset directory (``docs/dataset-format.md``).

    Parameters
    ----------
    input : str or path
        DREAM TSV (``sequence<TAB>expression``, no header; a file without tabs is read as
        sequences without targets), FASTA (targets from a numeric last header token when every
        header has one), or a CSV/TSV table with a header. Plain or gzip-compressed.
    out : str or path
        Dataset directory; created if needed, dataset files in it are replaced.
    format : {"auto", "dream", "fasta", "table"}
        ``auto``: FASTA if the first non-blank character is ``>``, a table if ``seq_col`` is
        given, else DREAM TSV.
    seq_col : str, optional
        Table column holding the sequence.
    target_cols : str or list of str, optional
        Table column(s) holding targets, in order; none gives ``n_targets = 0``.
    on_bad : {"error", "skip"}
        ``error`` raises :class:`InputError` at the first bad row; ``skip`` drops bad rows,
        counts them by reason in ``meta["dropped"]`` and prints a summary to stderr.
    trim : (int, int), optional
        ``(head, tail)`` for ``meta["transforms"]``; default ``(17, 13)`` for DREAM, else ``(0, 0)``.
    length : int, optional
        Positions per strand after trimming; rows longer than this after trimming are dropped as
        ``too_long``. Default 100 for DREAM, else the longest trimmed row (nothing dropped).
    chunk_rows : int
        Rows parsed at a time; memory use scales with it, not with the file.
    progress : bool
        Print rows read to stderr after every chunk.

    Returns
    -------
    dict
        The ``meta.json`` contents written.

    Raises
    ------
    InputError
        Bad rows (with ``on_bad="error"``), an empty input, a truncated or corrupt ``.gz``, or
        unknown table columns; the message names ``file:line`` and the offending value.
    """
    from .. import __version__

    if format not in ("auto", "dream", "fasta", "table"):
        raise ValueError(f"format must be 'auto', 'dream', 'fasta' or 'table', got {format!r}")
    if on_bad not in ("error", "skip"):
        raise ValueError(f"on_bad must be 'error' or 'skip', got {on_bad!r}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if isinstance(target_cols, str):
        target_cols = [target_cols]
    target_cols = list(target_cols or [])
    display = os.fspath(input)
    path = Path(input).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {display}")
    if format == "auto":
        format = _detect_format(path, seq_col)
    if format == "table" and seq_col is None:
        raise ValueError("a table needs seq_col (the column holding the sequence; --seq-col)")
    if format != "table" and (seq_col is not None or target_cols):
        raise ValueError(f"seq_col/target_cols apply to tables only, but the input is read as {format}")

    dream = format == "dream"
    head, tail = trim if trim is not None else ((len(DREAM_HEAD), len(DREAM_TAIL)) if dream else (0, 0))
    head, tail = int(head), int(tail)
    if head < 0 or tail < 0:
        raise ValueError(f"trim values must be >= 0, got {(head, tail)}")
    if length is None and dream:
        length = DREAM_LENGTH
    if length is not None and length < 1:
        raise ValueError(f"length must be >= 1, got {length}")

    out = Path(out)
    created_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out))
    stats = _Stats()
    began = time.perf_counter()

    def report_progress() -> None:
        if progress:
            print(
                f"prepare {display}: {stats.rows_read:,} rows read ({time.perf_counter() - began:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    process = dict(display=display, on_bad=on_bad, head=head, tail=tail, limit=length, tmp_dir=tmp_dir)
    source = None
    finished = False
    try:
        if format == "fasta":
            with_targets, sha256 = _fasta_has_targets(path, display)
            target_names = ["target"] if with_targets else []
            parser = _Fasta(display, with_targets)
            source = _Source(path, display, hash_it=False)
            for records in parser.records(_line_chunks(source, chunk_rows, 1), chunk_rows):
                _process(parser.parse(records), stats, **process)
                report_progress()
            empty_line = source.lines_read + 1
        else:
            source = _Source(path, display)
            if format == "table":
                parser = _table_parser(source, display, seq_col, target_cols)
                first_line = 2
            else:
                parser = None  # DREAM: one or two columns, decided by the first data line
                first_line = 1
            for line_no, lines in _line_chunks(source, chunk_rows, first_line):
                if parser is None:
                    two = b"\t" in next(line for line in lines if not _is_blank(line))
                    parser = _Delimited(
                        display=display,
                        delimiter="\t",
                        column_names=["sequence", "expression"] if two else ["sequence"],
                        seq_column=0,
                        target_columns=[1] if two else [],
                        quoting=False,
                        header_hint=True,
                    )
                _process(parser.parse(lines, line_no), stats, **process)
                report_progress()
            target_names = [parser.column_names[c] for c in parser.target_columns] if parser else ["expression"]
            empty_line = source.lines_read + 1
            sha256 = source.sha256()

        if stats.rows_read == 0:
            what = "after the header" if format == "table" else "(the file is empty or holds only blank lines)"
            raise InputError(f"{display}:{empty_line}: no data rows {what}; nothing to prepare")
        _print_summary(display, stats, on_bad)
        rows_kept = sum(rows for _, rows, _ in stats.chunk_files)
        if rows_kept == 0:
            raise InputError(
                f"{display}: none of the {stats.rows_read:,} rows was kept (dropped: "
                f"{_counts_text(stats.dropped)}); nothing to prepare"
            )

        lengths = np.concatenate(stats.lengths)
        targets = np.concatenate(stats.targets).reshape(rows_kept, len(target_names))
        integer = np.concatenate(stats.integer)
        width = int(lengths.max())
        _assemble_codes(tmp_dir / CODES, stats.chunk_files, width)
        np.save(tmp_dir / LENGTHS, lengths)
        np.save(tmp_dir / TARGETS, targets)
        np.save(tmp_dir / INTEGER_TARGET, integer)

        # Statistics of the stored float32 values, so they match what targets.npy gives back.
        as64 = targets.astype(np.float64)
        meta = {
            "source": {"path": str(path), "sha256": sha256, "format": format},
            "rows_read": stats.rows_read,
            "rows_kept": rows_kept,
            "dropped": stats.dropped,
            "target_names": target_names,
            "target_mean": as64.mean(axis=0).tolist(),
            "target_std": as64.std(axis=0).tolist(),
            "min_length": int(lengths.min()),
            "max_length": width,
            "transforms": {
                "head": head,
                "tail": tail,
                "length": length if length is not None else max(width - head - tail, 0),
            },
            "proformer_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        meta = write_meta(tmp_dir, meta)
        # Move into place only once everything is written: a failed run leaves no half dataset.
        publish(tmp_dir, out)
        if progress:
            print(
                f"prepare {display}: {rows_kept:,} of {stats.rows_read:,} rows kept -> {out} "
                f"({time.perf_counter() - began:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        finished = True
        return meta
    finally:
        if source is not None:
            source.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not finished and created_out and not any(out.iterdir()):
            out.rmdir()  # do not leave an empty dataset directory behind a failed run


def _counts_text(dropped: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in dropped.items() if count) or "none"


def _print_summary(display: str, stats: _Stats, on_bad: str) -> None:
    """Tell the user about every dropped row: counts by reason and the first examples."""
    total = sum(stats.dropped.values())
    if not total:
        return
    print(
        f"prepare {display}: dropped {total:,} of {stats.rows_read:,} rows: {_counts_text(stats.dropped)}",
        file=sys.stderr,
    )
    if stats.dropped["too_long"]:
        print("  too_long: longer than transforms.length after trimming (the length filter)", file=sys.stderr)
    if on_bad == "skip" and stats.examples:
        print("  first skipped rows (on_bad='skip'):", file=sys.stderr)
        for example in stats.examples:
            print(f"    {example}", file=sys.stderr)
    sys.stderr.flush()
