"""Sequence files: the one reader of FASTA, one-sequence-per-line / DREAM TSV and CSV/TSV tables.

Everything that reads sequences from a user's file goes through this module: ``prepare``
(:mod:`proformer.data.prepare`, through the row parsers :class:`Delimited` and :class:`Fasta`),
``predict`` (:func:`proformer.predict.read_sequences`) and the quickstart, through
:func:`read_sequences`. numpy and the standard library only.

Opening
    Plain or gzip, gzip detected by its magic bytes (never by the file name), read in chunks of
    lines (:class:`Source`, :func:`line_chunks`), optionally hashed as read. A truncated or
    corrupt gzip stream is an :class:`InputError` naming the file and the line where reading
    stopped. A UTF-8 byte-order mark at the start of the file is dropped.
Formats (:func:`detect_format`)
    FASTA when the first non-blank character is ``>`` (multi-line records; the record id is the
    first word of the header); a table when a sequence column is named (``seq_col``: a header row
    naming the columns is required; delimiter from the suffix ``.csv``/``.tsv``/``.tab``, else
    sniffed, tab first; quoted fields allowed); otherwise DREAM TSV, ``sequence<TAB>value``, of
    which one sequence per line is the one-column case.
Tables without a named sequence column (``prepare``; :func:`sniff_table`, :func:`choose_columns`)
    Line 1 is a table's header when its fields are names (no number, no DNA) and the next line
    is data with DNA below one of them; the sequence column is the one column of DNA, the
    targets are the columns of real numbers (integer and text columns are listed as ignored),
    decided from the first :data:`SNIFF_ROWS` data rows. ``read_sequences`` does not guess: it
    reads a table only when ``seq_col`` names the column.
The header rule
    A DREAM TSV / one-per-line file has no header. Its first line is taken as a header only when
    it is a column-name line (:func:`is_header_line`: its first field is ``sequence``, ``seq`` or
    ``sequences`` in any case, or the requested ``seq_col``). Any other first line is data: a
    first field that is not a sequence (lower case and ``N`` are sequence) fails the symbol check
    with ``file:line``, so no row is ever dropped silently. :func:`read_sequences` skips such a
    header; ``prepare`` calls it an error and says to read the file as a table.
Errors
    :class:`InputError` (a ``ValueError``), ``file:line: what is wrong: the value. What to do``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..sequence import INPUT_CODES, INVALID, SYMBOL_CODES

__all__ = [
    "InputError",
    "SequenceChunk",
    "read_sequences",
    "is_header_line",
    "detect_format",
    "check_input",
    "HEADER_NAMES",
    "sniff_table",
    "choose_columns",
    "TableSniff",
    "TableChoice",
    "REASONS",
]

#: Why a row of an input file is not kept, in the order the checks run (``meta["dropped"]``).
REASONS = ("wrong_columns", "empty_sequence", "too_long", "invalid_symbol", "bad_target")
OK, WRONG_COLUMNS, EMPTY_SEQUENCE, TOO_LONG, INVALID_SYMBOL, BAD_TARGET = range(6)

#: First fields that make the first line of a DREAM TSV / one-per-line file a header (any case).
HEADER_NAMES = ("sequence", "sequences", "seq")

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20
# A target field longer than this is not a number anyone wrote by hand or by printf; treating it
# as bad up front also bounds the (rows, width) matrix the bulk conversion builds.
MAX_NUMBER_WIDTH = 64


class InputError(ValueError):
    """An input file cannot be read as asked; the message names ``file:line`` and the value."""


def check_input(path: Path, display: str) -> None:
    """Raise unless ``path`` is a file: FileNotFoundError when absent, InputError for a directory."""
    if path.is_dir():
        raise InputError(f"{display} is a directory; give the path of a sequence file (FASTA, DREAM TSV or a CSV/TSV table)")
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {display}")


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
        while self._raw.read(READ_BUFFER):
            pass

    def close(self) -> None:
        self._raw.close()
        super().close()


class Source:
    """An input file opened for line-wise reading, plain or gzip (detected by magic bytes).

    ``hash_it``: feed the stored bytes into a sha256 as they are read (:meth:`sha256`).
    """

    def __init__(self, path: Path, display: str, hash_it: bool = True) -> None:
        self.path = path
        self.display = display
        self.hasher = hashlib.sha256() if hash_it else None
        try:
            with open(path, "rb") as probe:
                self.gzipped = probe.read(2) == GZIP_MAGIC
            raw = open(path, "rb", buffering=0)
        except PermissionError:
            raise InputError(f"{display}: permission denied; make the file readable (chmod u+r {display})") from None
        self._hashing = _HashingReader(raw, self.hasher) if hash_it else None
        base = io.BufferedReader(self._hashing or raw, READ_BUFFER)
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
        if not self.lines_read and lines and lines[0].startswith(BOM):
            lines[0] = lines[0][len(BOM) :]  # a byte-order mark is not data
        self.lines_read += len(lines)
        return lines

    def sha256(self) -> str:
        self._hashing.drain()
        return self.hasher.hexdigest()

    def close(self) -> None:
        self.stream.close()
        self._base.close()


def is_blank(line: bytes) -> bool:
    return not line.rstrip(b"\r\n")


def line_chunks(source: Source, chunk_rows: int, first_line: int) -> Iterator[tuple[int, list[bytes]]]:
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
        while blanks < len(lines) and is_blank(lines[-1 - blanks]):
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


def show_value(value: bytes | str, limit: int = 80) -> str:
    """A value for a message: repr, shortened in the middle when long."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if len(value) > limit:
        value = value[: limit - 25] + " ... " + value[-20:]
    return repr(value)


def first_invalid(sequence: bytes, table: np.ndarray = INPUT_CODES) -> int | None:
    """0-based position of the first symbol outside ``table`` (default ACGTN), or None."""
    codes = table[np.frombuffer(sequence, dtype=np.uint8)]
    bad = np.flatnonzero(codes == INVALID)
    return int(bad[0]) if bad.size else None


def invalid_message(sequence: bytes, position: int, where: str = "", allowed: str = "A C G T N") -> str:
    # The whole character (a non-ASCII one takes several bytes), not its first byte.
    char = sequence[position : position + 4].decode("utf-8", errors="replace")[:1]
    context = sequence[max(0, position - 10) : position + 11]
    return (
        f"invalid symbol {char!r} at position {position + 1}{where} of the sequence (allowed: "
        f"{allowed}, either case): {show_value(context)}"
    )


#: A number as data files write it: ASCII digits, optional sign, point and exponent (``1_000``,
#: full-width or other Unicode digits are Python syntax, not a data format). ``nan``/``inf`` are
#: read so that they can be reported as such.
_NUMBER = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(rb"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: Bytes a number field may hold; a field with any other byte is parsed one by one.
_NUMBER_BYTES = np.zeros(256, dtype=bool)
_NUMBER_BYTES[np.frombuffer(b"0123456789+-.eE \t\r\x0b\x0c\x00", dtype=np.uint8)] = True


def _as_bytes(text: bytes | str) -> bytes:
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("latin-1")  # the csv path decodes bytes as latin-1
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace")


def parse_number(text: bytes | str) -> float | None:
    """The value of one number field (ASCII decimal, surrounding whitespace allowed; ``nan`` and
    ``inf`` give NaN and infinity), or None when the field is not a number in a data format."""
    stripped = _as_bytes(text).strip()
    if _NUMBER.fullmatch(stripped) or _NON_FINITE.fullmatch(stripped):
        return float(stripped)
    return None


def target_problem(text: bytes | str, name: str) -> str | None:
    """Why one target field is bad, or None when it is a finite number."""
    raw = _as_bytes(text)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        return f"target {name!r} is missing (empty field)"
    if len(raw) > MAX_NUMBER_WIDTH:
        return f"target {name!r} is not a number (longer than {MAX_NUMBER_WIDTH} characters): {show_value(text)}"
    value = parse_number(raw)
    if value is None:
        hint = ""
        if b"_" in raw:
            hint = " (a '_' digit separator is Python syntax, not a data format: write 1000, not 1_000)"
        elif not raw.isascii():
            hint = " (it holds non-ASCII characters, e.g. full-width digits: write numbers with the ASCII digits 0-9)"
        return f"target {name!r} is not a number{hint}: {show_value(text)}"
    if math.isnan(value):
        return f"target {name!r} is NaN: {show_value(text)}"
    if math.isinf(value):
        return f"target {name!r} is infinite: {show_value(text)}"
    return None


def parse_numbers(texts: Sequence[bytes | str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-item conversion (:func:`parse_number`), for the chunks where bulk conversion failed."""
    values = np.full(len(texts), np.nan)
    for i, text in enumerate(texts):
        value = parse_number(text)
        if value is not None:
            values[i] = value
    return values, ~np.isfinite(values)


def bulk_numbers(padded: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert byte fields ``padded[start:end]`` to float64 in bulk.

    Parameters
    ----------
    padded : np.ndarray
        uint8 buffer with at least ``MAX_NUMBER_WIDTH`` spare bytes after the last field.
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
    bad = (width == 0) | (width > MAX_NUMBER_WIDTH)
    rows = np.flatnonzero(~bad)
    if rows.size:
        w = int(width[rows].max())
        # Gather each field into a fixed-width row, zero the bytes past its end and read the
        # matrix as numpy byte strings, which numpy converts to float in C.
        fields = sliding_window_view(padded, w)[start[rows]]
        fields[np.arange(w) >= width[rows, None]] = 0
        strings = fields.view(f"S{w}").ravel()
        # numpy reads Python's syntax ("1_000"): only fields of digits, sign, point, exponent and
        # blanks take the bulk path; the others go through the strict parse_number.
        plain = bool(_NUMBER_BYTES[fields].all())
        try:
            if not plain:
                raise ValueError
            values[rows] = strings.astype(np.float64)
        except ValueError:
            values[rows] = parse_numbers(strings.tolist())[0]
    bad |= ~np.isfinite(values)
    return values, bad


# --------------------------------------------------------------------------------------------
# Parsers: DREAM TSV and CSV/TSV tables (delimited), FASTA.
# --------------------------------------------------------------------------------------------


@dataclass
class Delimited:
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
        if self.header_hint and line == 1 and reason in (WRONG_COLUMNS, INVALID_SYMBOL, BAD_TARGET):
            text += (
                " (if line 1 is a header naming the columns, read the file as a table: name them with "
                "--seq-col and --target-col, seq_col= and target_cols=)"
            )
        return line, text

    def describe(self, lines: list[bytes], row: int, reason: int) -> str:
        text = lines[row].rstrip(b"\r\n")
        fields = self._split(text)
        if reason == WRONG_COLUMNS:
            if not fields:
                return f"blank line; expected {self._columns_text()}"
            return f"expected {self._columns_text()}, found {len(fields)}: {show_value(text)}"
        if reason == EMPTY_SEQUENCE:
            return f"the sequence column {self.column_names[self.seq_column]!r} is empty: {show_value(text)}"
        if reason == INVALID_SYMBOL:
            sequence = fields[self.seq_column]
            return invalid_message(sequence, first_invalid(sequence))
        for column in self.target_columns:
            problem = target_problem(fields[column], self.column_names[column])
            if problem:
                return problem
        raise AssertionError(f"row {row} has no problem of kind {REASONS[reason - 1]}")

    def parse(self, lines: list[bytes], first_line: int) -> Rows:
        data = b"".join(lines)
        if self.quoting and b'"' in data:
            return self._parse_csv(lines, first_line)
        if not data.endswith(b"\n"):
            data += b"\n"  # the last line of a file without a final newline
        # Spare bytes after the data let fixed-width windows start at any field.
        buffer = np.frombuffer(data + bytes(MAX_NUMBER_WIDTH), dtype=np.uint8)
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
        reason[(n_fields != self.n_columns) | (ends == starts)] = WRONG_COLUMNS
        ok = np.flatnonzero(reason == OK)
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
        reason[ok[length[ok] == 0]] = EMPTY_SEQUENCE

        values = np.full((n, len(self.target_columns)), np.nan)
        bad_target = np.zeros(n, dtype=bool)
        for j, column in enumerate(self.target_columns):
            values[ok, j], bad = bulk_numbers(buffer, *bounds(column))
            bad_target[ok] |= bad

        return Rows(
            line=first_line + np.arange(n, dtype=np.int64),
            buffer=buffer,
            start=start,
            length=length,
            values=values,
            reason=reason,
            bad_target=bad_target,
            describe=lambda row, why: self.locate(lines, first_line, row, why),
        )

    def _parse_csv(self, lines: list[bytes], first_line: int) -> Rows:
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
                    f"{show_value(lines[i])}. Each record must be on one line"
                ) from None
            if reader.line_num != i + 1:
                raise InputError(
                    f"{self.display}:{first_line + i}: a quoted field continues on the next "
                    f"line: {show_value(lines[i])}. Each record must be on one line (close the quote)"
                )
            if len(fields) != self.n_columns:
                reason[i] = WRONG_COLUMNS
                sequences.append(b"")
                targets.append([""] * len(self.target_columns))
                continue
            sequences.append(fields[self.seq_column].encode("latin-1"))
            targets.append([fields[column] for column in self.target_columns])
        length = np.fromiter(map(len, sequences), dtype=np.int64, count=n)
        reason[(reason == OK) & (length == 0)] = EMPTY_SEQUENCE
        values = np.full((n, len(self.target_columns)), np.nan)
        bad_target = np.zeros(n, dtype=bool)
        for j in range(len(self.target_columns)):
            values[:, j], bad = parse_numbers([row[j] for row in targets])
            bad_target |= bad
        start = np.zeros(n, dtype=np.int64)
        np.cumsum(length[:-1], out=start[1:])
        return Rows(
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
        start = np.zeros(n, dtype=np.int64)
        np.cumsum(length[:-1], out=start[1:])
        return Rows(
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
# Format detection and table headers.
# --------------------------------------------------------------------------------------------


def first_char(path: Path) -> bytes:
    """The first non-whitespace byte of the (decompressed) file after any byte-order mark, or b''."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == GZIP_MAGIC
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as stream:
            block = stream.read(1 << 16).removeprefix(BOM)
            while True:
                if not block:
                    return b""
                stripped = block.lstrip()
                if stripped:
                    return stripped[:1]
                block = stream.read(1 << 16)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return b""  # the main pass reports the damage with a line number


def detect_format(path: Path, seq_col: str | None = None) -> str:
    """``"fasta"`` when the first non-blank character is ``>``, ``"table"`` when a sequence column
    is named, else ``"dream"`` (``sequence<TAB>value``, or one sequence per line)."""
    if first_char(path) == b">":
        return "fasta"
    return "table" if seq_col is not None else "dream"


def table_delimiter(path: Path, header: str) -> str:
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


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon"}.get(delimiter, repr(delimiter))


def table_parser(source: Source, display: str, seq_col: str, target_cols: list[str]) -> Delimited:
    """Read a table's header (line 1) and return the parser of its rows."""
    lines = source.read_lines(1)
    if not lines or is_blank(lines[0]):
        raise InputError(
            f"{display}:1: no header line (the file is empty or starts with a blank line); a table "
            "needs a header on line 1 naming its columns (--seq-col and --target-col name them)"
        )
    text = lines[0].decode("utf-8", errors="replace").removeprefix("\ufeff").rstrip("\r\n")
    delimiter = table_delimiter(source.path, text)
    names = [name.strip() for name in next(csv.reader([text], delimiter=delimiter))]
    wanted = [seq_col, *target_cols]
    missing = [name for name in wanted if name not in names]
    if missing:
        flags = []
        if seq_col in missing:
            flags.append("--seq-col (seq_col=)")
        if set(missing) & set(target_cols):
            flags.append("--target-col (target_cols=)")
        raise InputError(
            f"{display}:1: column(s) {', '.join(map(repr, missing))} not in the header; the "
            f"{_delimiter_name(delimiter)}-separated header has: {', '.join(names)}. Pass "
            f"{' and '.join(flags)} a name from the header (names are case-sensitive)"
        )
    duplicated = sorted({name for name in wanted if names.count(name) > 1})
    if duplicated:
        raise InputError(
            f"{display}:1: column name(s) {', '.join(map(repr, duplicated))} appear more than once in the "
            "header; rename the columns so that each name is unique"
        )
    return Delimited(
        display=display,
        delimiter=delimiter,
        column_names=names,
        seq_column=names.index(seq_col),
        target_columns=[names.index(name) for name in target_cols],
        quoting=True,
    )


# --------------------------------------------------------------------------------------------
# Tables without --seq-col: is line 1 a header, and which columns hold what?
# --------------------------------------------------------------------------------------------

#: Data rows after the header that column detection looks at (fewer when they exceed
#: :data:`SNIFF_BYTES`). The choice is made from these rows; a later row that does not fit it
#: is reported with its line by the main pass like any bad row.
SNIFF_ROWS = 1000
SNIFF_BYTES = 8 << 20
#: A column is a sequence (number) column when all but this fraction of its non-missing sampled
#: values (all but one, in a sample of under 20) are DNA (numbers), and more than half are: one
#: mistyped value must not turn the sequence or target column into text; the main pass reports
#: it with its line.
STRAYS = 0.1
#: Values that mean "no value" in tables (any case); they count neither for nor against a kind.
#: ``NA`` is also a DNA word, which is why missing values are set aside first.
MISSING_VALUES = frozenset({"", "na", "nan", "n/a", "null", "none", "."})
#: At most this many distinct integers: a split, fold or class label rather than a coordinate.
FEW_DISTINCT = 20
#: A field made of DNA letters only (either case): a sequence, short or long.
_DNA_WORD = re.compile(r"[ACGTNacgtn]+")


def _is_dna(text: str) -> bool:
    return bool(_DNA_WORD.fullmatch(text))


def _is_name(text: str) -> bool:
    """A header field: neither a number nor DNA nor a broken sequence (an empty field is an
    unnamed column).

    A broken sequence (RNA, an IUPAC letter, a typo) is 8 or more characters of which 80% are
    A C G T U N: no column name is that, and such a first row must stay data, reported with
    its line, rather than vanish as a header.
    """
    if parse_number(text) is not None or _is_dna(text):
        return False
    return len(text) < 8 or sum(text.count(c) for c in "ACGTUNacgtun") < 0.8 * len(text)


def _split_fields(text: str, delimiter: str) -> list[str]:
    """The stripped fields of one line (quoted fields allowed)."""
    if '"' in text:
        try:
            fields = next(csv.reader([text], delimiter=delimiter))
        except (csv.Error, StopIteration):
            fields = text.split(delimiter)
    else:
        fields = text.split(delimiter)
    return [value.strip() for value in fields]


@dataclass
class Column:
    """What the sampled values of one table column look like.

    Attributes
    ----------
    name : str
        The header's name of the column.
    kind : str
        ``"sequence"`` (DNA over A C G T N), ``"float"`` (numbers, not all integers),
        ``"integer"`` (whole numbers only), ``"text"`` or ``"empty"`` (only missing values).
    distinct : int
        Distinct values among the sampled ones.
    example : str
        The first sampled value that is not missing (for messages).
    median_length : int
        Median length of the sampled values (sequence columns).
    """

    name: str
    kind: str
    distinct: int = 0
    example: str = ""
    median_length: int = 0

    def label(self) -> str:
        """The column for a message: its name, or ``(unnamed)`` when the header leaves it empty."""
        return self.name or "(unnamed)"

    def why_not_a_target(self, example: bool = False) -> str:
        """Why detection does not take this column as a target, in a few words (with an example
        value of a text column when ``example``)."""
        if self.kind == "integer":
            if self.distinct <= FEW_DISTINCT:
                return f"integers, {self.distinct} distinct values: a split, fold or class?"
            return "integers: a coordinate, count or id?"
        if self.kind == "float":
            return "numbers, not named with --target-col"
        if self.kind == "sequence":
            return f"DNA, median {self.median_length} nt"
        if self.kind == "empty":
            return "empty"
        return f"text, e.g. {show_value(self.example, 40)}" if example else "text"


@dataclass
class TableSniff:
    """A table's header and the kinds of its columns, from the first :data:`SNIFF_ROWS` data rows.

    Attributes
    ----------
    delimiter : str
        The field separator (by suffix, else sniffed from the header: tab, comma, semicolon).
    names : list of str
        The header's column names (line 1), stripped.
    columns : list of Column
        One per header column, in order.
    rows : int
        Data rows sampled (0: the file holds only its header).
    """

    delimiter: str
    names: list[str]
    columns: list[Column]
    rows: int


@dataclass
class TableChoice:
    """The columns a table is read with, and how they were chosen.

    Attributes
    ----------
    seq_col : str
        The sequence column.
    target_cols : list of str
        The target columns, in file order when detected.
    ignored : dict
        ``{name: why}`` for every other column.
    detected : list of str
        What was found rather than given: ``"seq_col"`` and/or ``"target_cols"``.
    message : str
        One line saying what was chosen (printed by ``prepare``, stored in ``meta.json``).
    """

    seq_col: str
    target_cols: list[str]
    ignored: dict[str, str]
    detected: list[str]
    message: str


def _classify(name: str, values: list[str]) -> Column:
    present = [value for value in values if value.casefold() not in MISSING_VALUES]
    if not present:
        return Column(name, "empty")
    distinct = len(set(present))
    example = present[0]
    needed = max(len(present) - max(1, int(STRAYS * len(present))), len(present) // 2 + 1)
    dna = [value for value in present if _is_dna(value)]
    if len(dna) >= needed:
        return Column(name, "sequence", distinct, example, int(np.median([len(value) for value in dna])))
    numbers = [parse_number(value) for value in present]
    finite = [number for number in numbers if number is not None and math.isfinite(number)]
    if sum(number is not None for number in numbers) >= needed and finite:
        # Whole numbers are labels, coordinates or ids far more often than measurements, which are
        # real-valued; detection never takes them as targets (--target-col does).
        integer = all(number == int(number) for number in finite)
        return Column(name, "integer" if integer else "float", distinct, example)
    return Column(name, "text", distinct, example)


def _looks_like_header(first: list[str], second: list[str] | None, first_line: str) -> bool:
    """The header rule of tables read without ``--seq-col`` (see :func:`sniff_table`)."""
    if len(first) == 1:
        # One column: a header only when it is a sequence column's name (the one-per-line
        # header rule, is_header_line), over a DNA line or nothing.
        return is_header_line(first_line) and (second is None or (len(second) == 1 and _is_dna(second[0])))
    if not all(map(_is_name, first)) or not any(first):
        return False
    if second is None:
        return True  # names and nothing else: a header-only file (an error, said so)
    if len(second) != len(first):
        return False
    # Line 2 is data with a sequence in some column, and line 1 holds a name there, shorter than
    # that sequence: a first row with a broken sequence (ACGU...) is data, never a header.
    return any(_is_dna(value) and len(name) < len(value) for name, value in zip(first, second))


def sniff_table(path: Path, display: str, header: str = "detect") -> TableSniff | None:
    """Read a table's header and classify its columns, from the first lines of the file.

    Line 1 is a header when its fields are names and the next non-blank line looks like data:

    - line 1 has two or more fields (split by the table delimiter), none of them a number, DNA
      (letters A C G T N only, either case) or a broken sequence (8+ characters, 80% of them
      A C G T U N), not all empty;
    - the next non-blank line has as many fields, and in some column it holds DNA below a name
      shorter than that DNA (so a first data row with a broken sequence is never a header);
    - a one-field line 1 is a header only when it is a sequence column's name
      (:func:`is_header_line`: ``sequence``, ``seq``, ``sequences``).

    Names alone with no data line after them make a header-only file (``rows`` 0).

    Parameters
    ----------
    path : Path
        The input (plain or gzip).
    display : str
        The input as the user wrote it, for messages.
    header : {"detect", "required", "given"}
        ``detect``: apply the rule above. ``required`` (``--format table``): line 1 must be the
        header; one holding a number or DNA is an error naming ``--seq-col``. ``given`` (the
        columns are named): line 1 is the header, whatever it holds.

    Returns
    -------
    TableSniff or None
        None when line 1 is not a header (the file is then DREAM TSV / one per line).

    Raises
    ------
    InputError
        ``header="required"`` and line 1 is not a header; a truncated gzip file.
    """
    if header not in ("detect", "required", "given"):
        raise ValueError(f"header must be 'detect', 'required' or 'given', got {header!r}")
    source = Source(path, display, hash_it=False)
    try:
        head = source.read_lines(1)
        rows: list[bytes] = []
        size = 0
        while head and len(rows) < SNIFF_ROWS and size < SNIFF_BYTES:
            lines = source.read_lines(256)
            if not lines:
                break
            for line in lines:
                if not is_blank(line):
                    rows.append(line)
                    size += len(line)
    finally:
        source.close()
    rows = rows[:SNIFF_ROWS]
    if not head or is_blank(head[0]):
        if header != "detect":
            raise InputError(
                f"{display}:1: no header line (the file is empty or starts with a blank line); a table "
                "needs a header on line 1 naming its columns (--seq-col and --target-col name them)"
            )
        return None
    first_line = head[0].decode("utf-8", errors="replace").rstrip("\r\n")
    delimiter = table_delimiter(path, first_line)
    names = _split_fields(first_line, delimiter)
    # Data rows are decoded as latin-1, as the row parser does: every byte maps to one character.
    data = [_split_fields(line.decode("latin-1").rstrip("\r\n"), delimiter) for line in rows]
    if header != "given" and not _looks_like_header(names, data[0] if data else None, first_line):
        if header == "detect":
            return None
        odd = next((name for name in names if not _is_name(name)), None)
        if odd is not None:
            what = "a number" if parse_number(odd) is not None else "a sequence"
            raise InputError(
                f"{display}:1: --format table reads line 1 as the header naming the columns, but it holds "
                f"{what}: {show_value(odd)}; add a header line, or name the sequence column with --seq-col "
                "(seq_col=) if line 1 is one"
            )
    # Rows with another number of fields are left out of the vote; the main pass reports them.
    usable = [fields for fields in data if len(fields) == len(names)]
    columns = [_classify(name, [fields[j] for fields in usable]) for j, name in enumerate(names)]
    return TableSniff(delimiter, names, columns, len(data))


def choose_columns(sniff: TableSniff, display: str, seq_col: str | None = None,
                   target_cols: Sequence[str] = ()) -> TableChoice:
    """Choose a table's sequence and target columns where they are not given.

    The rule (``docs/dataset-format.md``):

    - the sequence column is the one column whose values are DNA (A C G T N, either case);
      none or several is an error naming ``--seq-col``;
    - the targets are the columns of real numbers (not all whole numbers), in file order.
      Integer columns are splits, folds, coordinates, counts or ids far more often than
      measurements, and text columns (ids, chromosome names) are never targets: both are
      ignored and listed unless named with ``--target-col``;
    - a table of just two columns, a sequence and a number, is the DREAM layout with a header:
      the number is the target whether or not it is whole;
    - a table with only the sequence column has no targets (as one sequence per line);
    - no target column otherwise is an error naming ``--target-col`` (and ``--seq-col`` alone
      for a dataset without targets);
    - a given ``seq_col`` without ``target_cols`` keeps its meaning: no targets.

    Raises
    ------
    InputError
        No or several sequence columns; no target column.
    """
    columns = sniff.columns
    sampled = f"the first {sniff.rows:,} data row(s)"
    detected = []
    if seq_col is None:
        dna = [column for column in columns if column.kind == "sequence"]
        if len(dna) > 1:
            which = ", ".join(f"{column.label()!r} (median {column.median_length} nt)" for column in dna)
            raise InputError(
                f"{display}:1: several columns hold DNA in {sampled}: {which}; name the sequence column "
                "with --seq-col NAME (seq_col=)"
            )
        if not dna:
            kinds = "; ".join(f"{column.label()} ({column.why_not_a_target(example=True)})" for column in columns)
            raise InputError(
                f"{display}:1: line 1 looks like a header, but no column holds DNA (A C G T N) in {sampled}: "
                f"{kinds}; name the sequence column with --seq-col NAME (seq_col=)"
            )
        if not dna[0].name:
            raise InputError(
                f"{display}:1: the column holding DNA (column {columns.index(dna[0]) + 1}) has no name in the "
                "header; name it in the header, then pass --seq-col NAME (seq_col=) or let prepare find it"
            )
        seq_col = dna[0].name
        detected.append("seq_col")
        target_cols = list(target_cols)
        if not target_cols:
            target_cols = _detect_targets(sniff, display, seq_col)
            detected.append("target_cols")
    target_cols = list(target_cols)
    ignored = {
        column.label(): column.why_not_a_target()
        for column in columns
        if column.name != seq_col and column.name not in target_cols
    }
    parts = [f"sequence column {seq_col!r}"]
    if target_cols:
        parts.append(f"target column(s) {', '.join(map(repr, target_cols))}")
    elif len(columns) == 1:
        parts.append("no target column (the table holds only sequences)")
    else:
        parts.append("no target column (none named with --target-col)")
    message = f"read {display} as a table: {', '.join(parts)}"
    if ignored:
        message += "; ignored: " + ", ".join(f"{name} ({why})" for name, why in ignored.items())
    if detected:
        message += "; pass --seq-col/--target-col to choose"
    elif not target_cols and any(column.kind in ("float", "integer") for column in columns):
        message += "; pass --target-col NAME to add targets"
    return TableChoice(seq_col, target_cols, ignored, detected, message)


def _detect_targets(sniff: TableSniff, display: str, seq_col: str) -> list[str]:
    """The target columns of a table whose sequence column is ``seq_col`` (:func:`choose_columns`)."""
    others = [column for column in sniff.columns if column.name != seq_col]
    if not others:
        return []  # the sequence column alone: sequences without targets
    if len(others) == 1 and others[0].kind in ("float", "integer"):
        return [others[0].name]  # sequence<TAB>value with a header
    floats = [column for column in others if column.kind == "float"]
    unnamed = [column for column in floats if not column.name]
    if unnamed:
        raise InputError(
            f"{display}:1: a column of numbers (column {sniff.columns.index(unnamed[0]) + 1}) has no name in "
            "the header; name it, or choose the targets with --target-col NAME (target_cols=)"
        )
    if floats:
        return [column.name for column in floats]
    kinds = "; ".join(f"{column.label()} ({column.why_not_a_target(example=True)})" for column in others)
    raise InputError(
        f"{display}:1: no target column: no column holds real numbers in the first {sniff.rows:,} data "
        f"row(s) ({kinds}). Name the target(s) with --target-col NAME (target_cols=), an integer column "
        f"too, or pass --seq-col {seq_col} alone for a dataset without targets"
    )


# --------------------------------------------------------------------------------------------
# The reader of sequences (predict, the quickstart, and whatever reads sequences next).
# --------------------------------------------------------------------------------------------


def is_header_line(line: bytes | str, seq_col: str | None = None) -> bool:
    """The header rule: is this first line of a DREAM TSV / one-per-line file a header?

    Only when its first field (up to a tab, comma or semicolon; quotes and a byte-order mark
    removed) is a column name: one of :data:`HEADER_NAMES` or ``seq_col``, in any case. A first
    field such as ``acgt``, ``ACGR`` or ``x1`` is not a header: it is data, and the symbol check
    then reports it with its line.
    """
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.removeprefix("\ufeff").strip()
    for delimiter in "\t,;":
        text = text.split(delimiter, 1)[0]
    name = text.strip().strip('"').strip().casefold()
    return name in HEADER_NAMES or (seq_col is not None and name == seq_col.strip().casefold())


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
    """

    sequences: list[str]
    lines: np.ndarray
    ids: list[str] | None = None
    values: np.ndarray | None = None


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


def read_sequences(
    path: str | os.PathLike,
    chunk_rows: int = 100_000,
    *,
    seq_col: str | None = None,
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
            raw = _delimited_chunks(source, chunk_rows, table_parser(source, display, seq_col, []), False)
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
                    found.append(float(fields[1]))
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
                header_candidate=header_candidate,
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
    )


def _slice(chunk: SequenceChunk, start: int, stop: int) -> SequenceChunk:
    if start == 0 and stop == len(chunk.sequences):
        return chunk
    return SequenceChunk(
        sequences=chunk.sequences[start:stop],
        lines=chunk.lines[start:stop],
        ids=None if chunk.ids is None else chunk.ids[start:stop],
        values=None if chunk.values is None else chunk.values[start:stop],
    )
