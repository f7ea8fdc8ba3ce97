"""Tests of proformer.io.tables: the delimited-row parser, the table delimiter and header checks."""

from pathlib import Path

import numpy as np
import pytest

from proformer.io.errors import InputError
from proformer.io.rows import (
    BAD_TARGET,
    EMPTY_SEQUENCE,
    INVALID_SYMBOL,
    OK,
    WRONG_COLUMNS,
)
from proformer.io.sources import Source
from proformer.io.tables import (
    Delimited,
    check_columns,
    table_delimiter,
    table_header,
    table_parser,
)


def dream(header_hint: bool = True) -> Delimited:
    """The DREAM TSV parser: ``sequence<TAB>value``, no quoting."""
    return Delimited("d.tsv", "\t", ["sequence", "value"], 0, [1], quoting=False, header_hint=header_hint)


def sequences(rows) -> list[bytes]:
    """Each row's sequence, cut from the shared buffer by ``start`` and ``length``."""
    return [rows.buffer[s : s + n].tobytes() for s, n in zip(rows.start, rows.length)]


def parser_of(path: Path, seq_col: str, target_cols: list[str]) -> tuple[Delimited, list[bytes]]:
    """The parser from the header of ``path`` and the data lines after it."""
    source = Source(path, path.name, hash_it=False)
    try:
        return table_parser(source, path.name, seq_col, target_cols), source.read_lines(100)
    finally:
        source.close()


# -- Delimited.parse: the numpy path --------------------------------------------------------------


def test_parse_fast_path_sequences_values_and_lines():
    """Sequences, float targets and 1-based lines from ``first_line``; CRLF and no final newline."""
    lines = [b"ACGT\t1.5\r\n", b"ggA\t-2e1\n", b"TTTTT\t0"]
    rows = dream().parse(lines, 7)
    assert rows.line.tolist() == [7, 8, 9]
    assert sequences(rows) == [b"ACGT", b"ggA", b"TTTTT"]
    np.testing.assert_array_equal(rows.values[:, 0], [1.5, -20.0, 0.0])
    assert (rows.reason == OK).all() and not rows.bad_target.any()


def test_parse_fast_path_crlf_is_not_part_of_the_last_field():
    """With CRLF line ends the sequence in the last column ends before the carriage return."""
    parser = Delimited("t.tsv", "\t", ["value", "sequence"], 1, [0], quoting=True)
    rows = parser.parse([b"1\tACGT\r\n", b"2\tGG\r\n"], 2)
    assert sequences(rows) == [b"ACGT", b"GG"] and rows.length.tolist() == [4, 2]


def test_parse_classifies_structure_and_targets():
    """Wrong field counts and blank lines are WRONG_COLUMNS, an empty sequence EMPTY_SEQUENCE,
    a non-number target sets bad_target (its value NaN); symbols are not checked here."""
    lines = [b"ACGT\t1\t2\n", b"\n", b"\t3\n", b"ACXT\t2\n", b"ACGT\tabc\n"]
    rows = dream().parse(lines, 1)
    assert rows.reason.tolist() == [WRONG_COLUMNS, WRONG_COLUMNS, EMPTY_SEQUENCE, OK, OK]
    assert rows.bad_target.tolist() == [False, False, False, False, True]
    assert rows.values[3, 0] == 2.0 and np.isnan(rows.values[4, 0])
    assert rows.length[:2].tolist() == [0, 0]


def test_describe_names_the_problem_of_each_row():
    """Messages name the expected columns, the empty column, the symbol, the bad target."""
    lines = [b"ACGT\t1\t2\n", b"\n", b"\t3\n", b"ACXT\t2\n", b"ACGT\tabc\n"]
    rows = dream(header_hint=False).parse(lines, 10)
    line, text = rows.describe(0, WRONG_COLUMNS)
    assert line == 10 and "expected 2 tab-separated columns (sequence, value), found 3" in text
    assert "blank line" in rows.describe(1, WRONG_COLUMNS)[1]
    assert "sequence column 'sequence' is empty" in rows.describe(2, EMPTY_SEQUENCE)[1]
    line, text = rows.describe(3, INVALID_SYMBOL)
    assert line == 13 and "invalid symbol 'X' at position 3" in text
    assert "'abc'" in rows.describe(4, BAD_TARGET)[1]


def test_header_hint_only_on_line_1_of_dream_tsv():
    """A header-looking line 1 of a DREAM TSV suggests --seq-col; line 2, or a table, does not."""
    lines = [b"sequence\tvalue\n", b"sequence\tvalue\n"]
    rows = dream().parse(lines, 1)
    assert rows.bad_target.tolist() == [True, True]
    assert "--seq-col and --target-col" in rows.describe(0, BAD_TARGET)[1]
    assert "--seq-col" not in rows.describe(1, BAD_TARGET)[1]
    assert "--seq-col" not in dream(header_hint=False).parse(lines, 1).describe(0, BAD_TARGET)[1]


# -- Delimited.parse: the csv path (tables with quotes) -----------------------------------------


def test_quoted_fields_are_read_by_the_csv_module(tmp_path):
    """A quoted field may hold the delimiter; its bytes come back exactly (latin-1 round trip)."""
    path = tmp_path / "t.csv"
    path.write_bytes(b'name,seq,y\n"a,b","ACGT",1.5\nc,"gg",NA\nd,,2\ne,AC\n')
    parser, lines = parser_of(path, "seq", ["y"])
    rows = parser.parse(lines, 2)
    assert sequences(rows) == [b"ACGT", b"gg", b"", b""]
    assert rows.reason.tolist() == [OK, OK, EMPTY_SEQUENCE, WRONG_COLUMNS]
    assert rows.values[0, 0] == 1.5 and rows.bad_target[1]
    line, text = rows.describe(3, WRONG_COLUMNS)
    assert line == 5 and "expected 3 comma-separated columns (name, seq, y), found 2" in text


def test_a_quote_left_open_is_an_error_naming_the_line(tmp_path):
    """A quoted field running past its line is refused: records are one line each."""
    path = tmp_path / "t.csv"
    path.write_bytes(b'seq,y\nACGT,1\n"ACGT,2\nTT",3\n')
    parser, lines = parser_of(path, "seq", ["y"])
    with pytest.raises(InputError, match=r"t\.csv:3: a quoted field continues on the next line.*close the quote"):
        parser.parse(lines, 2)


# -- table_delimiter ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, header, expected", [
    ("a.csv", "x\ty", ","), ("A.CSV.gz", "x\ty", ","), ("a.tsv", "x,y", "\t"), ("a.tab.gz", "x;y", "\t"),
    ("a.txt", "x,y\tz", "\t"), ("a.txt", "x,y;z", ","), ("a", "x;y", ";"), ("a.txt", "xyz", "\t"),
])
def test_table_delimiter_suffix_first_then_sniffed_tab_first(name, header, expected):
    """The suffix decides (case-insensitive, .gz ignored); else tab, comma, semicolon; else tab."""
    assert table_delimiter(Path(name), header) == expected


# -- table_parser ---------------------------------------------------------------------------------


def test_table_parser_finds_the_columns_in_any_order(tmp_path):
    """Column indices come from the header; names are stripped."""
    path = tmp_path / "t.txt"
    path.write_text("y2 ; id ; seq ; y1\n")
    parser, _ = parser_of(path, "seq", ["y1", "y2"])
    assert parser.delimiter == ";" and parser.column_names == ["y2", "id", "seq", "y1"]
    assert parser.seq_column == 2 and parser.target_columns == [3, 0]
    assert parser.quoting and not parser.header_hint


def test_table_parser_missing_column_names_the_flags_and_the_header(tmp_path):
    """Both flags when both are wrong, the delimiter in words, the names there are."""
    path = tmp_path / "t.csv"
    path.write_text("id,sequence,value\n")
    with pytest.raises(InputError, match=r"t\.csv:1: column\(s\) 'seq', 'y' not in the header") as error:
        parser_of(path, "seq", ["y", "value"])
    message = str(error.value)
    assert "comma-separated header has: id, sequence, value" in message
    assert "--seq-col (seq_col=) and --target-col (target_cols=)" in message
    with pytest.raises(InputError, match="not in the header") as error:
        parser_of(path, "sequence", ["y"])
    assert "--seq-col" not in str(error.value)


def test_table_parser_repeated_wanted_name_is_an_error(tmp_path):
    """A wanted name twice in the header is ambiguous; another repeated name is not."""
    path = tmp_path / "t.tsv"
    path.write_text("seq\ty\ty\tx\tx\n")
    with pytest.raises(InputError, match=r"t\.tsv:1: column name\(s\) 'y' appear more than once"):
        parser_of(path, "seq", ["y"])
    assert parser_of(path, "seq", [])[0].seq_column == 0


@pytest.mark.parametrize("text", ["", "\nseq\ty\n"])
def test_table_parser_needs_a_header_on_line_1(tmp_path, text):
    """An empty file or a blank line 1 is an error at line 1."""
    path = tmp_path / "t.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=r"t\.tsv:1: no header line"):
        parser_of(path, "seq", [])


# -- table_header and check_columns ---------------------------------------------------------------


def test_table_header_of_a_gzip_file(tmp_path):
    """Names and delimiter of line 1, also gzip-compressed (by magic bytes)."""
    import gzip

    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b'"id", seq ,y\r\nr1,ACGT,1\n'))
    assert table_header(path) == (["id", "seq", "y"], ",")


def test_table_header_errors(tmp_path):
    """A missing file is FileNotFoundError; an empty one names line 1."""
    with pytest.raises(FileNotFoundError):
        table_header(tmp_path / "absent.tsv")
    path = tmp_path / "empty.tsv"
    path.write_text("")
    with pytest.raises(InputError, match=r"empty\.tsv:1: no header line"):
        table_header(path)


def test_check_columns_returns_the_header_or_names_the_flag(tmp_path):
    """Each (flag, column) is checked in order; the error names the flag, value and the header."""
    path = tmp_path / "t.tsv"
    path.write_text("id\tseq\ty\ty\n")
    assert check_columns(path, [("--seq-col", "seq"), ("--id-col", "id")]) == ["id", "seq", "y", "y"]
    with pytest.raises(InputError, match=r"--id-col 'name': .*t\.tsv has no such column") as error:
        check_columns(path, [("--seq-col", "seq"), ("--id-col", "name")])
    assert "tab-separated header has 'id', 'seq', 'y', 'y'" in str(error.value)
    with pytest.raises(InputError, match=r"--target-col 'y': the header of .*t\.tsv names that column 2 times"):
        check_columns(path, [("--target-col", "y")])
