"""Pairs files: a TSV whose header names ``id``, ``ref_sequence`` and ``alt_sequence``.

The input of ``proformer variant-effect --pairs``: one variant per line as its whole reference
and alternative sequences (ref and alt may differ in length: indels).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, first_invalid, invalid_message, show_value
from .sources import Source, check_input, line_chunks

__all__ = ["PAIR_COLUMNS", "Pairs", "read_pairs"]

#: The header of a pairs file (the columns may come in any order, with others beside them).
PAIR_COLUMNS = ("id", "ref_sequence", "alt_sequence")


@dataclass
class Pairs:
    """The rows of a pairs file.

    Attributes
    ----------
    ids, refs, alts : list of str
        ``(n,)`` each: the id and the two sequences as written (symbols checked).
    where : list of str
        ``(n,)``: ``file:line`` of each row, for messages.
    """

    ids: list[str]
    refs: list[str]
    alts: list[str]
    where: list[str]


def read_pairs(path: str | os.PathLike) -> Pairs:
    """Read a TSV of sequence pairs: a header naming ``id``, ``ref_sequence`` and ``alt_sequence``
    (tab-separated; any order, other columns ignored), then one pair per line.

    Plain or gzip. Blank lines are skipped. Sequences are A C G T N in either case, of any
    lengths the run's layout takes; ref and alt need not have the same length.

    Raises
    ------
    InputError
        Naming ``file:line``, the value and what to do: a header without those columns, a row
        with the wrong number of fields, an empty or repeated id, an empty sequence, a symbol
        outside A C G T N; a file without pairs.
    FileNotFoundError
        When ``path`` does not exist.
    """
    display = os.fspath(path)
    path = Path(path)
    check_input(path, display)
    source = Source(path, display, hash_it=False)
    pairs = Pairs([], [], [], [])
    first_line: dict[str, int] = {}
    columns: list[int] | None = None
    n_fields = 0
    try:
        for start, lines in line_chunks(source, 100_000, 1):
            for offset, raw in enumerate(lines):
                number = start + offset
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not text.strip():
                    continue
                fields = [field.strip() for field in text.split("\t")]
                if columns is None:
                    columns, n_fields = _pair_header(fields, f"{display}:{number}", text), len(fields)
                    continue
                where = f"{display}:{number}"
                if len(fields) != n_fields:
                    raise InputError(f"{where}: expected {n_fields} tab-separated fields as in the header, found "
                                     f"{len(fields)}: {show_value(text)}. Fix the line")
                id_, ref, alt = (fields[column] for column in columns)
                if not id_:
                    raise InputError(f"{where}: the id field is empty: {show_value(text)}. Give every pair an id")
                if id_ in first_line:
                    raise InputError(f"{where}: id {id_!r} already names the pair on line {first_line[id_]}; "
                                     "give every pair its own id")
                first_line[id_] = number
                for name, sequence in (("ref_sequence", ref), ("alt_sequence", alt)):
                    _check_sequence(sequence, name, where, text)
                pairs.ids.append(id_)
                pairs.refs.append(ref)
                pairs.alts.append(alt)
                pairs.where.append(where)
    finally:
        source.close()
    if columns is None or not pairs.ids:
        raise InputError(f"{display}: no pairs; the file needs the header {chr(9).join(PAIR_COLUMNS)!r} and "
                         "then one tab-separated line per pair")
    return pairs


def _pair_header(fields: list[str], where: str, text: str) -> list[int]:
    names = [field.removeprefix("\ufeff") for field in fields]
    missing = [name for name in PAIR_COLUMNS if name not in names]
    if missing:
        raise InputError(
            f"{where}: the header must name the columns {', '.join(PAIR_COLUMNS)} (tab-separated); "
            f"{', '.join(missing)} missing in {show_value(text)}. Write the header line "
            f"{chr(9).join(PAIR_COLUMNS)!r} first"
        )
    repeated = [name for name in PAIR_COLUMNS if names.count(name) > 1]
    if repeated:
        raise InputError(f"{where}: the header names {', '.join(repeated)} more than once: {show_value(text)}")
    return [names.index(name) for name in PAIR_COLUMNS]


def _check_sequence(sequence: str, name: str, where: str, text: str) -> None:
    if not sequence:
        raise InputError(f"{where}: {name} is empty: {show_value(text)}. Give both sequences of the pair")
    raw = sequence.encode("utf-8")
    position = first_invalid(raw)
    if position is not None:
        raise InputError(f"{where}: {name}: {invalid_message(raw, position)}. Fix the line: sequences are DNA "
                         "over A C G T N")
