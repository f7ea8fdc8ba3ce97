"""Prediction inputs: a sequence file or a prepared dataset, in chunks of codes with names and values.

:func:`read_input` is the one call that predict, evaluate and the interpretation commands read
their input with: whatever columns the caller asks for (the sequence; a table's id column; its
measured columns, or a DREAM TSV's value column, or a dataset's targets) come in one stream of
:class:`InputChunk`, every row named ``file:line`` (a dataset's ``DIR row R``) for errors. The
options are checked against the input when it is called, before any model loads.
:func:`read_all_sequences` gives a whole file as lists (the interpretation commands hold their
inputs in memory anyway). numpy and the standard library only.

Input rules are prepare's: ``A C G T N`` in either case (the mask token ``M`` is refused), no
empty FASTA record; a table's measured field may be empty or ``NA`` (not measured), any other
non-number is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..sequence import decode, encode_padded
from .dataset import CODES, META, read_dataset, read_meta
from .errors import InputError
from .numbers import parse_measured
from .reader import read_sequences
from .sniff import HEADER_NAMES, detect_format, is_header_line
from .sources import Source, check_input
from .tables import check_columns, table_delimiter, table_header

__all__ = ["InputChunk", "check_input_options", "input_format", "measured_columns", "read_all_sequences",
           "read_input"]


@dataclass
class InputChunk:
    """Consecutive rows of a prediction input (a sequence file or a dataset directory), in order.

    Attributes
    ----------
    codes : np.ndarray
        uint8 ``(n, width)``: the sequences as stored (flanks included), N past each row's end.
    lengths : np.ndarray
        int64 ``(n,)``.
    sequences : list of str or None
        The sequences as written in the file; None for a dataset directory (:meth:`text` decodes).
    ids : list of str or None
        FASTA record ids, the values of the table's id column, or a dataset's 0-based row
        numbers; None for inputs without ids (one per line, DREAM TSV, a table without ``id_col``).
    where : callable
        ``where(i)`` names row ``i`` in messages: ``file:line``, or ``DIR row R``.
    targets : np.ndarray or None
        float64 ``(n, n_columns)`` measured values, NaN where a table's field is empty or NA;
        only when asked for (:func:`read_input` ``target_cols`` / ``values``).
    """

    codes: np.ndarray
    lengths: np.ndarray
    sequences: list[str] | None
    ids: list[str] | None
    where: Callable[[int], str]
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def text(self) -> list[str]:
        """The sequences as strings (a dataset's are decoded from its codes, upper case)."""
        return self.sequences if self.sequences is not None else decode(self.codes, self.lengths)


def input_format(path: str | os.PathLike, seq_col: str | None = None) -> str:
    """``"dataset"`` (a directory), ``"fasta"``, ``"table"`` (with ``seq_col``) or ``"dream"``
    (one sequence per line or ``sequence<TAB>value``)."""
    if Path(path).is_dir():
        return "dataset"
    check_input(Path(path), os.fspath(path))
    return detect_format(Path(path), seq_col)


def _first_line_fields(path: Path) -> list[str]:
    """The fields of the first line of a headerless file (split at tabs, commas or semicolons)."""
    source = Source(path, os.fspath(path), hash_it=False)
    try:
        lines = source.read_lines(1)
    finally:
        source.close()
    if not lines:
        return []
    text = lines[0].decode("utf-8", errors="replace").strip()
    delimiter = table_delimiter(path, text)
    return [field.strip().strip('"').strip() for field in text.split(delimiter)]


def check_input_options(input: str | os.PathLike, seq_col: str | None = None, id_col: str | None = None,
                        target_cols: Sequence[str] = (), input_flag: str = "--input") -> str:
    """Check the column options against the input before any model is loaded; return its format
    (:func:`input_format`). Errors name the flag, the value and what to do."""
    kind = input_format(input, seq_col)
    columns = [("--seq-col", seq_col), ("--id-col", id_col)] + [("--target-col", name) for name in target_cols]
    given = [(flag, value) for flag, value in columns if value is not None]
    if kind == "dataset":
        if given:
            raise ValueError(f"{given[0][0]} applies to tables; {input_flag} {input} is a prepared dataset directory, "
                             f"whose rows need no column names: drop {given[0][0]}")
        return kind
    if kind == "fasta" and given:
        raise ValueError(f"{given[0][0]} applies to tables with a header; {input_flag} {input} is FASTA (ids are the "
                         f"record names): drop {given[0][0]}")
    if kind == "table":
        check_columns(input, given)
        return kind
    if given:  # --id-col or --target-col without --seq-col
        raise ValueError(f"{given[0][0]} needs --seq-col: name the sequence column of the table {input} too "
                         "(a table is read by its header)")
    # A header such as "id<TAB>sequence<TAB>value" would be read as data and fail at line 1:
    # say which flag reads it instead.
    fields = _first_line_fields(Path(input))
    named = [f for f in fields[1:] if f.casefold() in HEADER_NAMES]
    if fields and fields[0].casefold() not in HEADER_NAMES and named:
        raise InputError(
            f"{input}:1 is a table header ({', '.join(fields)}): give --seq-col {named[0]} to read the table "
            f"(and --id-col NAME to keep an id column)"
        )
    return kind


def read_input(input: str | os.PathLike, chunk_rows: int = 100_000, *, seq_col: str | None = None,
               id_col: str | None = None, target_cols: Sequence[str] = (), values: bool = False,
               input_flag: str = "--input") -> Iterator[InputChunk]:
    """The rows of a prediction input in chunks of ``chunk_rows`` (the last one shorter).

    Parameters
    ----------
    input : path
        A sequence file (FASTA, one per line, DREAM TSV, a table with ``seq_col``; plain or gzip)
        or a prepared dataset directory.
    seq_col, id_col : str, optional
        A table's sequence and id columns (its header names them).
    target_cols : list of str
        A table's measured-value columns, returned as :attr:`InputChunk.targets` in this order.
    values : bool
        Also the measured values of a DREAM TSV (its second column) or a dataset (every column of
        ``targets.npy``).
    input_flag : str
        How errors name the input (``--input``, ``--data``).

    The options are checked against the input when this is called (before any model is loaded);
    the rows are read as the result is iterated.
    """
    kind = check_input_options(input, seq_col, id_col, target_cols, input_flag)
    if kind == "dataset":
        return _dataset_chunks(Path(input), chunk_rows, values, input_flag)
    if values and kind != "dream":
        raise ValueError(f"values=True reads a DREAM TSV's value column or a dataset's targets; {input} is {kind}")
    return _file_chunks(os.fspath(input), chunk_rows, seq_col, id_col, list(target_cols), values)


def _file_chunks(display: str, chunk_rows: int, seq_col: str | None, id_col: str | None, target_cols: list[str],
                 values: bool) -> Iterator[InputChunk]:
    columns = ([id_col] if id_col is not None else []) + target_cols
    for chunk in read_sequences(display, chunk_rows, seq_col=seq_col, columns=columns, values=values):
        for row, sequence in enumerate(chunk.sequences):
            if not sequence:
                record = f" {chunk.ids[row]!r}" if chunk.ids is not None else ""
                raise InputError(f"{display}:{int(chunk.lines[row])}: the FASTA record{record} has no sequence lines. "
                                 "Give each record its sequence or remove the record")
        codes, lengths = encode_padded(chunk.sequences)
        where = (lambda row, lines=chunk.lines: f"{display}:{int(lines[row])}")
        ids, targets = chunk.ids, None
        if columns:
            fields = chunk.fields
            if id_col is not None:
                ids = [row[0] for row in fields]
                fields = [row[1:] for row in fields]
            if target_cols:
                targets = parse_measured(fields, target_cols, where)
        elif values:
            targets = chunk.values.reshape(-1, 1)
        yield InputChunk(codes, lengths.astype(np.int64), chunk.sequences, ids, where, targets)


def _dataset_chunks(directory: Path, chunk_rows: int, values: bool, input_flag: str) -> Iterator[InputChunk]:
    """Open the dataset now (a directory that is not one is an error before any model loads) and
    return the generator of its rows."""
    if not (directory / META).exists() and not (directory / CODES).exists():
        raise InputError(
            f"{input_flag} {directory} is a directory but not a prepared dataset (no {META}, no {CODES}); give a "
            f"sequence file (FASTA, one per line, DREAM TSV, a table with --seq-col) or a directory written by "
            f"proformer prepare"
        )
    data = read_dataset(directory)
    if len(data.lengths) == 0:
        raise InputError(f"{directory}: the dataset has no rows")

    def rows() -> Iterator[InputChunk]:
        n = len(data.lengths)
        for start in range(0, n, chunk_rows):
            stop = min(n, start + chunk_rows)
            lengths = np.asarray(data.lengths[start:stop], dtype=np.int64)
            codes = np.asarray(data.codes[start:stop])
            where = (lambda row, start=start: f"{directory} row {start + row:,} (0-based)")
            targets = np.asarray(data.targets[start:stop], dtype=np.float64) if values else None
            yield InputChunk(codes, lengths, None, [str(i) for i in range(start, stop)], where, targets)

    return rows()


def read_all_sequences(path: str | os.PathLike, seq_col: str | None = None) -> tuple[list[str], list[str], list[str]]:
    """``(ids, sequences, where)`` of a whole sequence file under predict's input rules.

    ``ids`` are the FASTA record ids, or the 0-based row numbers (``"0"``, ``"1"``, ...) for
    other formats (row i of the DREAM test file is test index i); ``where`` is each sequence's
    ``file:line``, for errors. An empty file is an error.
    """
    ids: list[str] = []
    sequences: list[str] = []
    where: list[str] = []
    for chunk in _file_chunks(os.fspath(path), 100_000, seq_col, None, [], False):
        ids.extend(chunk.ids if chunk.ids is not None else map(str, range(len(sequences), len(sequences) + len(chunk))))
        sequences.extend(chunk.sequences)
        where.extend(chunk.where(row) for row in range(len(chunk)))
    if not sequences:
        raise InputError(f"{path}: no sequences (the file is empty, blank or only a header)")
    return ids, sequences, where


def _first_data_fields(path: Path) -> int | None:
    """How many tab-separated fields the first data line of a headerless file has (None: no data
    line near the top; the reader then says what is wrong)."""
    source = Source(path, os.fspath(path), hash_it=False)
    try:
        for line in source.read_lines(100):
            text = line.rstrip(b"\r\n")
            if not text.strip() or is_header_line(text):
                continue
            return len(text.split(b"\t"))
    finally:
        source.close()
    return None


def measured_columns(data: str, kind: str, seq_col: str | None, target_cols: Sequence[str]) -> list[str]:
    """The measured columns of labelled rows (``kind`` from :func:`check_input_options`): a table's
    columns besides ``seq_col`` (or ``target_cols``), ``["value"]`` for a DREAM TSV, a dataset's
    ``target_names``; an error saying why there are none."""
    if kind == "fasta":
        raise InputError(f"--data {data} is FASTA: sequences without measured values. Give a table with a header "
                         f"(--seq-col, --target-col), a DREAM TSV (sequence<TAB>value) or a prepared dataset directory")
    if kind == "dataset":
        names = list(read_meta(data).get("target_names") or [])
        if not names:
            raise InputError(f"--data {data}: the dataset has no targets (meta.json target_names is empty: it was "
                             f"prepared from sequences alone); evaluate needs measured values. Prepare it from a file "
                             f"with values, or give that file with --data")
        return names
    if kind == "dream":
        if _first_data_fields(Path(data)) == 1:
            raise InputError(f"--data {data} has one sequence per line and no values; evaluate needs measured values: "
                             f"sequence<TAB>value lines, or a table with a header (--seq-col, --target-col)")
        return ["value"]
    if target_cols:
        return list(target_cols)
    names, _ = table_header(data)
    columns = [name for name in names if name != seq_col]
    if not columns:
        raise InputError(f"--data {data} has no column besides --seq-col {seq_col!r}: no measured values to compare "
                         f"with. Give a table with a value column (--target-col NAME)")
    return columns
