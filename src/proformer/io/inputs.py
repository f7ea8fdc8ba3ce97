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

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..sequence import decode, encode_padded
from .dataset import CODES, META, read_dataset, read_meta
from .errors import InputError
from .numbers import parse_measured
from .reader import read_sequences
from .sniff import HEADER_NAMES, detect_format, is_header_line, sniff_table
from .sources import Source, check_input
from .tables import check_columns, table_delimiter, table_header

if TYPE_CHECKING:  # io.run pulls in the model package (torch); the readers need neither
    from .run import TableColumns

__all__ = ["InputChunk", "check_input_options", "columns_line", "input_format", "measured_columns",
           "read_all_sequences", "read_input", "run_columns"]

#: What else the header advice suggests, by the input flag: evaluate (``--data``) picks measured
#: columns and writes no per-row output; predict keeps an id column in its output.
_MORE_COLUMNS = {"--data": "--target-col NAME to pick the measured columns"}


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
            f"(and {_MORE_COLUMNS.get(input_flag, '--id-col NAME to keep an id column')})"
        )
    return kind


def run_columns(input: str | os.PathLike, recorded: Sequence[tuple[str, "TableColumns | None"]],
                input_flag: str = "--input") -> "TableColumns | None":
    """The training table's columns to read ``input`` with when ``--seq-col`` is not given.

    Parameters
    ----------
    input : path
        The table (or any input: a dataset directory, a FASTA or an empty file give None).
    recorded : list of (run, TableColumns or None)
        Each run's recorded columns (``config.json`` ``data.columns``; None for a run trained on
        a FASTA or a DREAM TSV, or written before runs recorded them).
    input_flag : str
        How errors name the input.

    Returns
    -------
    TableColumns or None
        The runs' columns narrowed to those the table's header has (its ``seq_col`` always;
        ``target_cols`` and ``id_col`` where present), or None: no run recorded columns (runs
        without a record are left out of an ensemble's vote), or the file has no header with
        the sequence column and is read as it is without a record (a DREAM TSV, one sequence
        per line, a header whose first field is ``sequence``).

    Raises ``ValueError`` when the runs of an ensemble recorded different columns and the header
    names one of their sequence columns (``--seq-col`` must say which), and ``InputError`` naming
    the header's columns when line 1 is a table header without the run's sequence column.
    """
    records = [(run, columns) for run, columns in recorded if columns is not None]
    path = Path(input)
    if not records or path.is_dir():
        return None
    check_input(path, os.fspath(input))
    if detect_format(path) == "fasta":
        return None
    try:
        names, _ = table_header(input)
    except InputError:
        return None  # an empty file: the reader says so
    distinct = list({(c.seq_col, tuple(c.target_cols), c.id_col): c for _, c in records}.values())
    if len(distinct) > 1:
        if any(columns.seq_col in names for columns in distinct):
            each = "; ".join(f"{run}: sequence {columns.seq_col!r}"
                             + (f", targets {', '.join(map(repr, columns.target_cols))}" if columns.target_cols else "")
                             for run, columns in records)
            raise ValueError(f"the runs were trained on tables read with different columns ({each}): give --seq-col "
                             f"NAME to say which column of {input_flag} {input} holds the sequences (its header has "
                             f"{', '.join(map(repr, names))})")
        return None
    columns = distinct[0]
    if columns.seq_col in names:
        return dataclasses.replace(columns, target_cols=[name for name in columns.target_cols if name in names],
                                   id_col=columns.id_col if columns.id_col in names else None)
    sniff = None if names and names[0].casefold() in HEADER_NAMES else sniff_table(path, os.fspath(input))
    if sniff is not None:  # line 1 names columns, and none is the run's: say which there are
        dna = [column.name for column in sniff.columns if column.kind == "sequence"]
        example = f" (--seq-col {dna[0]} holds DNA)" if len(dna) == 1 else ""
        raise InputError(f"{input_flag} {input} has no column {columns.seq_col!r}, the sequence column of the table "
                         f"the run was trained on; its header has {', '.join(map(repr, sniff.names))}: give --seq-col "
                         f"NAME, the column that holds the sequences{example}")
    return None


def columns_line(input: str | os.PathLike, columns: "TableColumns", runs: int = 1) -> str:
    """The one line (for stderr) saying which recorded columns ``input`` is read with."""
    parts = [f"sequence {columns.seq_col!r}"]
    if columns.id_col is not None:
        parts.append(f"id {columns.id_col!r}")
    if columns.target_cols:
        parts.append(f"targets {', '.join(map(repr, columns.target_cols))}")
    whose = "the run's" if runs == 1 else "the runs'"
    return f"reading {os.fspath(input)} with {whose} columns: {', '.join(parts)}"


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


def measured_columns(data: str, kind: str, seq_col: str | None, target_cols: Sequence[str],
                     id_col: str | None = None) -> list[str]:
    """The measured columns of labelled rows (``kind`` from :func:`check_input_options`): a table's
    columns besides ``seq_col`` and ``id_col`` (or ``target_cols``), ``["value"]`` for a DREAM TSV,
    a dataset's ``target_names``; an error saying why there are none."""
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
    columns = [name for name in names if name not in (seq_col, id_col)]
    if not columns:
        besides = f"--seq-col {seq_col!r}" + (f" and --id-col {id_col!r}" if id_col is not None else "")
        raise InputError(f"--data {data} has no column besides {besides}: no measured values to compare "
                         f"with. Give a table with a value column (--target-col NAME)")
    return columns
