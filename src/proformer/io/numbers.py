"""The one number parser of input files and the one set of missing values.

A number as data files write it: ASCII digits, optional sign, point and exponent; ``1_000`` and
full-width digits are Python syntax, not a data format, and are refused with a hint. Target
fields are converted in bulk (:func:`bulk_numbers`) or one by one (:func:`parse_numbers`), and a
bad one is explained by :func:`target_problem`. :data:`MISSING_VALUES` are the fields that mean
"nothing measured" (column detection, :func:`parse_measured`). numpy and the standard library
only.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import InputError, show_value

__all__ = [
    "MAX_NUMBER_WIDTH", "MISSING_VALUES", "parse_number", "target_problem", "parse_numbers", "bulk_numbers",
    "parse_measured",
]


# A target field longer than this is not a number anyone wrote by hand or by printf; treating it
# as bad up front also bounds the (rows, width) matrix the bulk conversion builds.
MAX_NUMBER_WIDTH = 64
#: Fields that mean "no value" in tables (any case): nothing measured (:func:`parse_measured`), and
#: in column detection neither for nor against a kind. ``NA`` is also a DNA word, which is why
#: missing values are set aside first.
MISSING_VALUES = frozenset({"", "na", "nan", "n/a", "null", "none", "."})


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


def parse_measured(fields: Sequence[Sequence[str]], names: Sequence[str], where: Callable[[int], str]) -> np.ndarray:
    """Measured values from rows of text fields (a table's target columns).

    Parameters
    ----------
    fields : sequence of sequences of str
        ``n`` rows, each one field per name, in the order of ``names``.
    names : sequence of str
        The column names, for messages.
    where : callable
        ``where(i)`` names row ``i`` in a message (e.g. ``file:line``).

    Returns
    -------
    np.ndarray
        float64 ``(n, len(names))``; NaN where a field's casefold is in :data:`MISSING_VALUES`
        (nothing measured).

    Raises
    ------
    InputError
        Any other field that is not a finite number (:func:`target_problem`), naming ``where(i)``.
    """
    values = np.full((len(fields), len(names)), np.nan)
    for i, row in enumerate(fields):
        for j, text in enumerate(row):
            if text.casefold() in MISSING_VALUES:
                continue
            problem = target_problem(text, names[j])
            if problem:
                raise InputError(f"{where(i)}: {problem}. Give a number, or leave the field empty "
                                 "(or NA) where nothing was measured")
            values[i, j] = parse_number(text)
    return values
