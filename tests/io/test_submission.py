"""Tests of :mod:`proformer.io.submission`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import _write

from proformer.score import (
    N_TEST,
    load_predictions,
    load_truth,
    score,
)

SEQUENCES = ["ACGT", "TTTT", "GGCA", "ACGA", "CCCC"]


VALUES = [0.5, -1.25, 3.0, 0.0, 2.5]


def _tsv(path: Path, sequences: list[str], values: list[float]) -> Path:
    path.write_text("".join(f"{s}\t{v}\n" for s, v in zip(sequences, values)))
    return path


VALUES = [0.5, -1.25, 3.0, 0.0, 2.5]


SEQUENCES = ["ACGT", "TTTT", "GGCA", "ACGA", "CCCC"]


def test_score_tsv_shuffled_rows_are_refused_with_the_first_mismatching_line(tmp_path):
    shuffled = [SEQUENCES[0], SEQUENCES[2], SEQUENCES[1], SEQUENCES[3], SEQUENCES[4]]
    path = _tsv(tmp_path / "pred.tsv", shuffled, VALUES)
    with pytest.raises(ValueError, match=r"pred.tsv: line 2: the sequence column does not match test row 2"):
        load_predictions(path, n_test=5, sequences=SEQUENCES)
    truth = _tsv(tmp_path / "truth.tsv", shuffled, VALUES)
    with pytest.raises(ValueError, match=r"truth.tsv: line 2: the sequence column does not match"):
        load_truth(truth, n_test=5, sequences=SEQUENCES)
    # In test order it loads.
    ordered = _tsv(tmp_path / "ok.tsv", SEQUENCES, VALUES)
    assert load_predictions(ordered, n_test=5, sequences=SEQUENCES).tolist() == VALUES
    assert load_truth(ordered, n_test=5, sequences=SEQUENCES).tolist() == VALUES


def test_score_tsv_duplicated_rows_are_refused_even_without_the_test_sequences(tmp_path):
    doubled = SEQUENCES[:4] + [SEQUENCES[1]]
    path = _tsv(tmp_path / "pred.tsv", doubled, VALUES)
    for load in (load_predictions, load_truth):
        with pytest.raises(ValueError, match=r"pred.tsv: line 5: duplicate row, .* already given on line 2"):
            load(path, n_test=5)


def test_score_full_size_shuffled_tsv_and_truth_are_refused(dream_dir, tmp_path):
    """The real 71,103-row test set: a shuffled TSV used to score 0.0128 without a word."""
    sequences = (dream_dir / "test_sequences.txt").read_text().split()
    assert len(sequences) == N_TEST
    values = np.random.default_rng(0).normal(size=N_TEST)
    order = np.random.default_rng(1).permutation(N_TEST)
    shuffled = _tsv(tmp_path / "shuffled.tsv", [sequences[i] for i in order], values.tolist())
    with pytest.raises(ValueError, match=r"shuffled.tsv: line \d+: the sequence column does not match"):
        score(shuffled, dream_dir)
    good = _tsv(tmp_path / "good.tsv", sequences, values.tolist())
    with pytest.raises(ValueError, match=r"shuffled.tsv: line \d+: the sequence column"):
        score(good, dream_dir, split="private", truth=shuffled)
    duplicated = sequences[:-1] + [sequences[0]]
    dup = _tsv(tmp_path / "dup.tsv", duplicated, values.tolist())
    with pytest.raises(ValueError, match=rf"dup.tsv: line {N_TEST}: duplicate row, sequence .* already given on line 1"):
        score(dup, dream_dir)


def test_load_predictions_json(tmp_path):
    path = tmp_path / "sub.json"
    path.write_text(json.dumps({str(i): v for i, v in enumerate(VALUES)}, indent=1))
    assert load_predictions(path, n_test=5) == dict(enumerate(VALUES))


def test_load_predictions_tsv_and_lines(tmp_path):
    tsv = _write(tmp_path / "pred.tsv", [f"{s}\t{v}" for s, v in zip(SEQUENCES, VALUES)])
    lines = tmp_path / "pred.txt"
    lines.write_text("".join(f"{v}\r\n" for v in VALUES))  # CRLF is fine
    for path in (tsv, lines):
        loaded = load_predictions(path, n_test=5)
        assert isinstance(loaded, np.ndarray) and loaded.tolist() == VALUES
    np.testing.assert_array_equal(load_truth(tsv, n_test=5), VALUES)


@pytest.mark.parametrize(
    "name, lines, pattern",
    [
        ("bad.tsv", ["A\t1", "C\t2", "G\tabc", "T\t4", "A\t5"], r"line 3: non-numeric .*'abc'"),
        ("nan.txt", ["1", "nan", "3", "4", "5"], r"line 2: prediction 'nan' is not finite"),
        # The one number parser of data files (io.numbers), not Python's float(): '_' separators
        # and non-ASCII digits are syntax, not data, here as in prepare.
        ("underscore.tsv", ["A\t1", "C\t1_000", "G\t3", "T\t4", "A\t5"], r"line 2: non-numeric .*'1_000'"),
        ("wide.txt", ["1", "2", "\uff13", "4", "5"], r"line 3: non-numeric"),
        ("short.txt", ["1", "2", "3", "4"], r"ends at line 4: found 4 rows but expected 5"),
        ("long.tsv", [f"A\t{i}" for i in range(6)], r"line 6 is an extra row: found 6 rows"),
        ("no_tab.tsv", ["A\t1", "C\t2", "G\t3", "T 4", "A\t5"], r"line 4: expected 2 tab-sep"),
        # A column-name line is skipped (predict's TSV has one); any other text on line 1 is a row.
        ("header.tsv", ["seq_name\tprediction"] + [f"{b}\t{i}" for i, b in enumerate("ACGTN")], r"line 1: .*header line must name"),
    ],
)
def test_load_predictions_bad_lines(tmp_path, name, lines, pattern):
    path = _write(tmp_path / name, lines)
    with pytest.raises(ValueError, match=pattern) as error:
        load_predictions(path, n_test=5)
    assert name in str(error.value)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ('{\n"0": 1.0,\n"1": 2.0,\n"1": 3.0\n}', r"line 4: duplicate key '1'"),
        ('{\n"0": 1.0,\n"1": "high"\n}', r"line 3: value 'high' for index 1 is not a finite"),
        ('{\n"0": NaN,\n"1": 1.0\n}', r"line 2: value nan for index 0"),
        ('{\n"0": 1.0,\n"1": null\n}', r"line 3: value None"),
        ('{\n"0": 1.0,\n"seven": 1.0\n}', r"line 3: key 'seven' is not a test index"),
        ('{\n"0": 1.0,\n"9": 1.0\n}', r"line 3: index 9 is out of range"),
        ('{\n"0": 1.0,\n"1": 1.0,\n}', r"line 4: not valid JSON"),
        ("[1.0, 2.0]", r"line 1: expected a JSON object"),
    ],
)
def test_load_predictions_bad_json(tmp_path, text, pattern):
    path = tmp_path / "submission.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern) as error:
        load_predictions(path, n_test=5)
    assert "submission.json" in str(error.value)


def test_load_truth_requires_two_columns(tmp_path):
    path = _write(tmp_path / "truth.txt", [str(v) for v in VALUES])
    with pytest.raises(ValueError, match=r"truth.txt: line 1: expected two tab-separated"):
        load_truth(path, n_test=5)
