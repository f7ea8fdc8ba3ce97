"""Tests of proformer.io.rows: the reason codes and Rows.joined."""

import numpy as np

from proformer.io.rows import (
    BAD_TARGET,
    EMPTY_SEQUENCE,
    INVALID_SYMBOL,
    OK,
    REASONS,
    TOO_LONG,
    WRONG_COLUMNS,
    Rows,
)


def test_reason_codes_index_reasons_from_one():
    """Code c names ``REASONS[c - 1]`` (meta["dropped"] keys), in the order the checks run; OK is 0."""
    assert OK == 0
    codes = [WRONG_COLUMNS, EMPTY_SEQUENCE, TOO_LONG, INVALID_SYMBOL, BAD_TARGET]
    assert [REASONS[code - 1] for code in codes] == [
        "wrong_columns", "empty_sequence", "too_long", "invalid_symbol", "bad_target"]


def test_joined_puts_sequences_end_to_end():
    """One buffer of all sequences; each row's start where its own begins; other fields kept."""
    sequences = [b"ACGT", b"", b"GG", b"T"]
    length = np.array([4, 0, 2, 1], dtype=np.int64)
    describe = lambda row, why: (row + 1, "x")
    rows = Rows.joined(sequences, length, line=np.arange(1, 5), values=np.zeros((4, 1)),
                       reason=np.array([OK, EMPTY_SEQUENCE, OK, OK], dtype=np.uint8),
                       bad_target=np.zeros(4, dtype=bool), describe=describe)
    assert rows.buffer.dtype == np.uint8 and rows.buffer.tobytes() == b"ACGTGGT"
    assert rows.start.dtype == np.int64 and rows.start.tolist() == [0, 4, 4, 6]
    assert [rows.buffer[s : s + n].tobytes() for s, n in zip(rows.start, rows.length)] == sequences
    assert rows.line.tolist() == [1, 2, 3, 4] and rows.describe is describe


def test_joined_with_no_rows():
    """An empty chunk gives empty arrays, not an error."""
    rows = Rows.joined([], np.zeros(0, dtype=np.int64), line=np.zeros(0, dtype=np.int64), values=np.zeros((0, 1)),
                       reason=np.zeros(0, dtype=np.uint8), bad_target=np.zeros(0, dtype=bool),
                       describe=lambda row, why: (0, ""))
    assert rows.start.shape == (0,) and rows.buffer.size == 0
