"""Format detection and headers: which format a file is, and which line and columns are what.

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

numpy and the standard library only.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError, show_value
from .numbers import MISSING_VALUES, parse_number
from .sources import Source, first_char, is_blank
from .tables import table_delimiter

__all__ = [
    "HEADER_NAMES", "is_header_line", "detect_format", "SNIFF_ROWS", "SNIFF_BYTES", "STRAYS", "FEW_DISTINCT",
    "Column", "TableSniff", "TableChoice", "sniff_table", "choose_columns",
]


#: First fields that make the first line of a DREAM TSV / one-per-line file a header (any case).
HEADER_NAMES = ("sequence", "sequences", "seq")


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


def detect_format(path: Path, seq_col: str | None = None) -> str:
    """``"fasta"`` when the first non-blank character is ``>``, ``"table"`` when a sequence column
    is named, else ``"dream"`` (``sequence<TAB>value``, or one sequence per line)."""
    if first_char(path) == b">":
        return "fasta"
    return "table" if seq_col is not None else "dream"


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
