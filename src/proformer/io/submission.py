"""DREAM 2022 submission and truth files: read, check, and name the line that is wrong.

A submission is a JSON object ``{"index": value}`` (the leaderboard's format) or a table of one
prediction per test row (``sequence<TAB>prediction``, or one value per line) in test-file order;
a truth file is a table of the 71,103 measured values. numpy only.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .numbers import parse_number
from .sniff import is_header_line

#: Number of test sequences (rows of ``test_sequences.txt``; row i is test index i).
N_TEST = 71_103

Predictions = Union[Mapping[Any, float], np.ndarray, Sequence[float]]
PathLike = Union[str, Path]


def finite_float(value: Any) -> float | None:
    """``float(value)`` for a finite real number (Python or numpy), else None."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _json_key_line(text: str, key: str, occurrence: int = 1) -> int:
    """Line number (1-based) of the ``occurrence``-th ``"key":`` in JSON ``text`` (0 if absent)."""
    pattern = re.compile('"' + re.escape(key) + r'"\s*:')
    for count, match in enumerate(pattern.finditer(text), start=1):
        if count == occurrence:
            return text.count("\n", 0, match.start()) + 1
    return 0


def _load_prediction_json(path: Path, text: str, n_test: int) -> dict[int, float]:
    """Parse a ``{"index": value}`` JSON object, naming file and line of any bad entry."""
    try:
        pairs = json.loads(text, object_pairs_hook=tuple)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}). A JSON submission must be "
            'one object {"index": value, ...}.'
        ) from None
    if not isinstance(pairs, tuple):
        raise ValueError(
            f'{path}: line 1: expected a JSON object {{"index": value, ...}}, '
            f"found {type(pairs).__name__}."
        )
    result: dict[int, float] = {}
    for position, (key, value) in enumerate(pairs):
        problem = _json_entry_problem(key, value, result, n_test)
        if problem is None:
            result[int(key)] = finite_float(value)
            continue
        # The line is looked up only for a bad entry: searching the text for every key would
        # be quadratic on a 71,103-key file.
        occurrence = sum(1 for earlier, _ in pairs[: position + 1] if earlier == key)
        line = _json_key_line(text, key, occurrence)
        raise ValueError(f"{path}: line {line if line else '?'}: {problem}")
    return result


def _json_entry_problem(key: str, value: Any, seen: Mapping[int, float], n_test: int) -> str | None:
    """What is wrong with one ``"key": value`` entry of a JSON submission, or None."""
    if not re.fullmatch(r"\d+", key):
        return (
            f"key {key!r} is not a test index; keys must be integers written as strings, "
            f'e.g. "0" .. "{n_test - 1}".'
        )
    index = int(key)
    if index >= n_test:
        return f"index {index} is out of range; test indices run from 0 to {n_test - 1}."
    if index in seen:
        return (
            f"duplicate key {key!r} (index {index} appears more than once); keep exactly one "
            "prediction per index."
        )
    if finite_float(value) is None:
        return (
            f"value {value!r} for index {index} is not a finite number; every prediction must "
            "be a real number (no NaN, Infinity, null or strings)."
        )
    return None


#: The test set's sequences, one per line, in test-index order (inside the DREAM folder).
TEST_SEQUENCES_FILE = "test_sequences.txt"


def load_test_sequences(data_dir: PathLike | None) -> list[str] | None:
    """The test sequences of ``data_dir/test_sequences.txt`` (row i = test index i), or None
    when there is no such file (then a submission's sequence column cannot be checked)."""
    if data_dir is None:
        return None
    path = Path(data_dir) / TEST_SEQUENCES_FILE
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r").split("\t")[0].strip() for line in lines]


def _check_sequence_column(
    path: Path, column: list[str], sequences: Sequence[str] | None, what: str, first_line: int = 1
) -> None:
    """Refuse a TSV whose sequence column repeats a sequence or is not the test set's, in order.

    The rows of a table are matched to test indices by position, so a shuffled or duplicated
    file would score a wrong number without this check.
    """
    # Duplicates first: a repeated row is named as such, not as the first row out of place.
    seen: dict[str, int] = {}
    for number, found in enumerate(column, start=first_line):
        first = seen.setdefault(found, number)
        if first != number:
            raise ValueError(
                f"{path}: line {number}: duplicate row, sequence {found[:40]!r} already given on "
                f"line {first}; the test set holds each sequence once, so write each row once."
            )
    if sequences is not None:
        if len(sequences) != len(column):
            raise ValueError(
                f"{path}: found {len(column)} rows but {TEST_SEQUENCES_FILE} has "
                f"{len(sequences)}; write one row per test sequence, in test order."
            )
        for row, (found, expected) in enumerate(zip(column, sequences), start=1):
            if found != expected:
                where = ""
                try:
                    where = f" ({found[:20]}... is test row {sequences.index(found) + 1})"
                except ValueError:
                    where = " (that sequence is not in the test set)"
                raise ValueError(
                    f"{path}: line {first_line - 1 + row}: the sequence column does not match test row "
                    f"{row} of {TEST_SEQUENCES_FILE}{where}: expected {expected[:40]!r}..., "
                    f"found {found[:40]!r}.... Rows must be the test sequences in test order "
                    f"(row i = test index i) with the {what} of each; do not sort or shuffle them."
                )


def _load_table_lines(
    path: Path,
    text: str,
    n_test: int,
    what: str,
    tsv_only: bool = False,
    sequences: Sequence[str] | None = None,
) -> np.ndarray:
    """Parse one value per line, or ``sequence<TAB>value`` per line, into an array.

    For the TSV layout the sequence column must not repeat a sequence and, when ``sequences``
    (the test set's, in order) is given, must equal it row for row.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # final newline
    # A column-name line (predict's TSV starts with one: sequence<TAB>name) is skipped; by the
    # one header rule, anything else on line 1 is a row.
    header = int(bool(lines) and is_header_line(lines[0]))
    first_line, lines = 1 + header, lines[header:]
    if not lines:
        raise ValueError(f"{path}: the file is empty; expected {n_test} rows of {what}s.")
    tsv = "\t" in lines[0]
    if tsv_only and not tsv:
        raise ValueError(
            f"{path}: line {first_line}: expected two tab-separated columns (sequence, {what}), "
            f"found {lines[0][:60]!r}."
        )
    layout = f"sequence<TAB>{what}" if tsv else f"one {what} per line"
    values = np.empty(len(lines), dtype=np.float64)
    column: list[str] = []
    for number, line in enumerate(lines, start=first_line):
        line = line.rstrip("\r")
        if tsv:
            fields = line.split("\t")
            if len(fields) != 2:
                raise ValueError(
                    f"{path}: line {number}: expected 2 tab-separated columns (sequence, {what}), "
                    f"found {len(fields)}; every row must be {layout}."
                )
            raw = fields[1]
            column.append(fields[0].strip())
        else:
            raw = line
        value = parse_number(raw)
        if value is None:
            hint = " (a header line must name the columns, e.g. sequence<TAB>prediction)" if number == 1 else ""
            raise ValueError(
                f"{path}: line {number}: non-numeric {what} {raw!r}{hint}; every row must be "
                f"{layout} with a real number."
            )
        if not math.isfinite(value):
            raise ValueError(
                f"{path}: line {number}: {what} {raw!r} is not finite; replace NaN/inf by a "
                "real number."
            )
        values[number - first_line] = value
    if len(lines) != n_test:
        if len(lines) > n_test:
            where = f"line {first_line + n_test} is an extra row"
        else:
            where = f"the file ends at line {first_line - 1 + len(lines)}"
        raise ValueError(
            f"{path}: {where}: found {len(lines)} rows but expected {n_test} ({layout}, row i = "
            "test index i, in the order of test_sequences.txt). Write one row per test sequence."
        )
    if tsv:
        _check_sequence_column(path, column, sequences, what, first_line)
    return values


def load_predictions(
    path: PathLike, n_test: int = N_TEST, sequences: Sequence[str] | None = None
) -> dict[int, float] | np.ndarray:
    """Read a submission in any of the three accepted formats.

    Parameters
    ----------
    path : str or Path
        One of

        * a JSON object ``{"index": value}`` (keys are test indices written as strings), e.g.
          a public-leaderboard submission over the 9,045 indices of ``sample_submission.json``;
        * a TSV ``sequence<TAB>prediction`` with one row per test sequence, no header;
        * one value per line, one row per test sequence.

        For the two line formats, row i holds the prediction of test index i.
    n_test : int, default 71,103
        Number of test rows; the line formats must have exactly this many rows and JSON keys
        must lie in ``0 .. n_test - 1``.
    sequences : list of str, optional
        The test sequences in order (:func:`load_test_sequences`); a TSV's sequence column must
        then equal them row for row. A TSV may never repeat a sequence.

    Returns
    -------
    dict of int to float, or numpy.ndarray
        A dict for JSON input (only the indices given), otherwise a float64 array of length
        ``n_test``. Both are accepted by :func:`score_public` and :func:`score_private`.

    Raises
    ------
    ValueError
        On a malformed file; the message names the file, the line and the bad value (non-numeric
        or non-finite value, duplicate key or row, wrong number of rows or columns, a sequence
        column that is not the test set's in test order).
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _load_prediction_json(path, text, n_test)
    return _load_table_lines(path, text, n_test, what="prediction", sequences=sequences)


def load_truth(
    path: PathLike, n_test: int = N_TEST, sequences: Sequence[str] | None = None
) -> np.ndarray:
    """Read measured expression for every test row from a ``sequence<TAB>expression`` file.

    Parameters
    ----------
    path : str or Path
        TSV without header, one row per test sequence in test order (row i = test index i).
    n_test : int, default 71,103
        Expected number of rows.
    sequences : list of str, optional
        The test sequences in order; the sequence column must then equal them row for row.

    Returns
    -------
    numpy.ndarray
        float64 array of length ``n_test``, ready for :func:`score_private`.

    Raises
    ------
    ValueError
        If a row is malformed, the row count is wrong, a sequence is repeated or (with
        ``sequences``) out of test order (the message names file and line).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return _load_table_lines(
        path, text, n_test, what="expression", tsv_only=True, sequences=sequences
    )


def sample_submission(data_dir: PathLike) -> Path:
    """The public leaderboard's template, ``data_dir/public_leaderboard/sample_submission.json``."""
    return Path(data_dir) / "public_leaderboard" / "sample_submission.json"


def public_indices(data_dir: PathLike) -> list[str]:
    """The test indices of a public-leaderboard submission, as the template's keys (strings), in
    its order: the keys ``proformer predict --format dream-json`` writes."""
    template = sample_submission(data_dir)
    if not template.is_file():
        raise FileNotFoundError(f"{template} does not exist; --data-dir must hold public_leaderboard/sample_submission.json")
    try:
        return list(json.loads(template.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{template} is not valid JSON ({error}); download the DREAM 2022 files again") from None
