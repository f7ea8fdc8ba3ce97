"""Delimited tables: DREAM TSV and CSV/TSV with a header, their delimiter and header line.

:class:`Delimited` parses a chunk of lines with numpy on one byte buffer (line ends and delimiters
found with vectorised comparisons, targets converted in bulk); chunks of tables that hold a double
quote go through the csv module. A table's delimiter comes from the suffix ``.csv``/``.tsv``/
``.tab``, else is sniffed from the header, tab first (:func:`table_delimiter`); its header names
the columns (:func:`table_parser`, :func:`table_header`, :func:`check_columns`). numpy and the
standard library only.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError, first_invalid, invalid_message, show_value
from .numbers import MAX_NUMBER_WIDTH, bulk_numbers, parse_numbers, target_problem
from .rows import BAD_TARGET, EMPTY_SEQUENCE, INVALID_SYMBOL, OK, REASONS, WRONG_COLUMNS, Rows
from .sources import Source, check_input, is_blank

__all__ = ["Delimited", "table_delimiter", "table_parser", "table_header", "check_columns"]


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
        return Rows.joined(sequences, length, line=first_line + np.arange(n, dtype=np.int64), values=values,
                           reason=reason, bad_target=bad_target,
                           describe=lambda row, why: self.locate(lines, first_line, row, why))


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


def table_header(path: str | os.PathLike) -> tuple[list[str], str]:
    """``(column names, delimiter)`` of a table's header line (line 1), split as the sequence
    reader splits it (:func:`table_delimiter`: by suffix, else sniffed)."""
    display = os.fspath(path)
    check_input(Path(path), display)
    source = Source(Path(path), display, hash_it=False)
    try:
        lines = source.read_lines(1)
    finally:
        source.close()
    if not lines or is_blank(lines[0]):
        raise InputError(f"{display}:1: no header line (the file is empty or starts with a blank line); "
                         "a table needs a header naming its columns")
    text = lines[0].decode("utf-8", errors="replace").rstrip("\r\n")
    delimiter = table_delimiter(Path(path), text)
    return [name.strip() for name in next(csv.reader([text], delimiter=delimiter))], delimiter


def check_columns(path: str | os.PathLike, wanted: Sequence[tuple[str, str]]) -> list[str]:
    """Check that the table ``path`` has each column of ``wanted`` (``(flag, column)`` pairs);
    return its header. The error names the flag, the value and the columns there are."""
    names, delimiter = table_header(path)
    for flag, column in wanted:
        if column not in names:
            kind = "tab" if delimiter == "\t" else repr(delimiter)
            raise InputError(
                f"{flag} {column!r}: {os.fspath(path)} has no such column; its {kind}-separated header has "
                f"{', '.join(map(repr, names))}. Give {flag} one of those"
            )
        if names.count(column) > 1:
            raise InputError(f"{flag} {column!r}: the header of {os.fspath(path)} names that column "
                             f"{names.count(column)} times; rename one of them")
    return names
