"""Tests of proformer.io.pairs: read_pairs reads id / ref_sequence / alt_sequence TSVs.

tests/interpret/test_variants.py runs pairs files through variant-effect (a wrong header, a bad
symbol, a repeated id, gzip); these pin the reader's own result and its other errors.
"""

import pytest

from proformer.io.errors import InputError
from proformer.io.pairs import PAIR_COLUMNS, Pairs, read_pairs


def write(tmp_path, text: str, name: str = "pairs.tsv"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_columns_in_any_order_others_ignored_sequences_as_written(tmp_path):
    """Header columns may be permuted and mixed with others; sequences keep their case; blank
    lines are skipped and ``where`` names each row's own line; fields are stripped; CRLF ok."""
    path = write(tmp_path, "\ufeffnote\talt_sequence\tid\tref_sequence\r\n"
                           "x\tACGTA\t v1 \tacgt\r\n\n \n"
                           "y\tNNNN\tv2\tACG\n")
    pairs = read_pairs(path)
    assert pairs == Pairs(ids=["v1", "v2"], refs=["acgt", "ACG"], alts=["ACGTA", "NNNN"],
                          where=[f"{path}:2", f"{path}:5"])
    assert PAIR_COLUMNS == ("id", "ref_sequence", "alt_sequence")


def test_header_naming_a_column_twice_is_an_error(tmp_path):
    path = write(tmp_path, "id\tref_sequence\talt_sequence\tid\n")
    with pytest.raises(InputError, match=rf"{path}:1: the header names id more than once"):
        read_pairs(path)


def test_the_header_is_the_first_non_blank_line(tmp_path):
    """Leading blank lines are skipped; the error names the header's own line."""
    path = write(tmp_path, "\n\nid\tref\n")
    with pytest.raises(InputError, match=rf"{path}:3: the header must name.*ref_sequence, alt_sequence missing"):
        read_pairs(path)


@pytest.mark.parametrize("row, words", [
    ("p1\tACGT\n", "expected 3 tab-separated fields as in the header, found 2"),
    ("\tACGT\tACGA\n", "the id field is empty"),
    ("p1\t\tACGA\n", "ref_sequence is empty"),
    ("p1\tACGT\tACMA\n", "alt_sequence: invalid symbol 'M' at position 3"),
])
def test_bad_row_names_file_line_and_problem(tmp_path, row, words):
    path = write(tmp_path, "id\tref_sequence\talt_sequence\np0\tA\tC\n" + row)
    with pytest.raises(InputError, match=rf"{path}:3: ") as error:
        read_pairs(path)
    assert words in str(error.value)


@pytest.mark.parametrize("text", ["", "\n\n", "id\tref_sequence\talt_sequence\n\n"])
def test_a_file_without_pairs_is_an_error(tmp_path, text):
    """Empty, blank, or a header alone: no pairs, and the message shows the header to write."""
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=rf"{path}: no pairs; the file needs the header"):
        read_pairs(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_pairs(tmp_path / "absent.tsv")
