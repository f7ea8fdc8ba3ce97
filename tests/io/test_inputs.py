"""Tests of proformer.io.inputs: read_input and its option checks, read_all_sequences,
measured_columns and run_columns.

tests/io/test_reader.py covers the symbol and header rules of the sequence reader through
read_input; these pin what inputs.py adds: columns, ids, targets, chunks, datasets, the errors
raised before any model loads.
"""

import numpy as np
import pytest

from proformer.data.prepare import prepare
from proformer.io.errors import InputError
from proformer.io.inputs import (
    check_input_options,
    columns_line,
    input_format,
    measured_columns,
    read_all_sequences,
    read_input,
    run_columns,
)
from proformer.io.run import TableColumns


@pytest.fixture
def table(tmp_path):
    """A tab-separated table: an id column, the sequence column and two measured columns."""
    path = tmp_path / "t.tsv"
    path.write_text("name\tseq\ty\tz\nr1\tACGT\t1.5\tNA\nr2\tgg\t\t3\nr3\tTTTTT\t-1\t2\n")
    return path


@pytest.fixture
def fasta(tmp_path):
    path = tmp_path / "a.fa"
    path.write_text(">r1 first\nACGT\n>r2\nGG\nTT\n")
    return path


@pytest.fixture
def dream(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("ACGT\t1\nGGGGG\t2\nTTT\t3\n")
    return path


@pytest.fixture
def dataset(tmp_path):
    """A prepared dataset of three rows of different lengths (one target, 'expression')."""
    source = tmp_path / "s.tsv"
    source.write_text("ACGTACGTAC\t1.5\nGGGGGGGG\t2\nTTTTACGT\t3\n")
    prepare(source, tmp_path / "ds", trim=(0, 0), progress=False)
    return tmp_path / "ds"


# -- read_input ---------------------------------------------------------------------------------


def test_table_chunks_carry_ids_targets_in_asked_order_and_lines(table):
    """Chunks of ``chunk_rows``; ids from id_col; targets in target_cols order, NaN where empty
    or NA; sequences as written, codes upper case, N past each row's end; where = file:line."""
    chunks = list(read_input(table, 2, seq_col="seq", id_col="name", target_cols=["z", "y"]))
    assert [len(chunk) for chunk in chunks] == [2, 1]
    first, last = chunks
    assert first.ids == ["r1", "r2"] and last.ids == ["r3"]
    assert first.sequences == ["ACGT", "gg"] and first.text() == ["ACGT", "gg"]
    np.testing.assert_array_equal(first.codes, [[0, 1, 2, 3], [2, 2, 4, 4]])
    assert first.lengths.dtype == np.int64 and first.lengths.tolist() == [4, 2]
    np.testing.assert_array_equal(first.targets, [[np.nan, 1.5], [3.0, np.nan]])
    assert [first.where(0), first.where(1), last.where(0)] == [f"{table}:2", f"{table}:3", f"{table}:4"]


def test_table_without_id_or_targets_has_neither(table):
    chunk, = read_input(table, seq_col="seq")
    assert chunk.ids is None and chunk.targets is None and len(chunk) == 3


def test_a_non_number_in_a_measured_column_names_the_line(table):
    with pytest.raises(InputError, match=rf"{table}:2: target 'name' is not a number: 'r1'"):
        list(read_input(table, seq_col="seq", target_cols=["name"]))


def test_dream_values_and_fasta_ids(dream, fasta):
    """values=True gives a DREAM TSV's second column as one target column; FASTA ids are the
    record names (first word); a FASTA record's where is its header line."""
    chunk, = read_input(dream, values=True)
    assert chunk.ids is None and chunk.targets.shape == (3, 1)
    np.testing.assert_array_equal(chunk.targets[:, 0], [1, 2, 3])
    chunk, = read_input(fasta)
    assert chunk.ids == ["r1", "r2"] and chunk.sequences == ["ACGT", "GGTT"]
    assert chunk.where(1) == f"{fasta}:3" and chunk.targets is None


def test_dataset_chunks_decode_their_codes(dataset):
    """A dataset's ids are 0-based row numbers, its sequences decoded from codes; values=True
    gives targets.npy; where names the row."""
    chunks = list(read_input(dataset, 2, values=True))
    assert [chunk.ids for chunk in chunks] == [["0", "1"], ["2"]]
    assert chunks[0].sequences is None
    assert [s for chunk in chunks for s in chunk.text()] == ["ACGTACGTAC", "GGGGGGGG", "TTTTACGT"]
    assert chunks[1].lengths.tolist() == [8]
    np.testing.assert_array_equal(np.concatenate([chunk.targets for chunk in chunks])[:, 0], [1.5, 2, 3])
    assert chunks[1].where(0) == f"{dataset} row 2 (0-based)"
    assert next(read_input(dataset)).targets is None


def test_a_directory_that_is_no_dataset_is_refused_when_called(tmp_path):
    """Checked at the call, before the rows are iterated (before any model loads)."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"--data .*empty is a directory but not a prepared dataset"):
        read_input(tmp_path / "empty", input_flag="--data")


def test_values_only_for_dream_or_dataset(fasta, table):
    with pytest.raises(ValueError, match=r"values=True .*a\.fa is fasta"):
        read_input(fasta, values=True)
    with pytest.raises(ValueError, match=r"values=True .*t\.tsv is table"):
        read_input(table, seq_col="seq", values=True)


def test_an_empty_fasta_record_is_an_error_at_its_header(tmp_path):
    path = tmp_path / "a.fa"
    path.write_text(">r1\nACGT\n>r2\n>r3\nGG\n")
    with pytest.raises(InputError, match=rf"{path}:3: the FASTA record 'r2' has no sequence lines"):
        list(read_input(path))


# -- input_format and check_input_options -------------------------------------------------------


def test_input_format(dataset, fasta, dream, table, tmp_path):
    assert input_format(dataset) == "dataset"
    assert input_format(fasta) == "fasta" and input_format(fasta, "seq") == "fasta"
    assert input_format(dream) == "dream" and input_format(table, "seq") == "table"
    with pytest.raises(FileNotFoundError):
        input_format(tmp_path / "absent.tsv")


def test_column_flags_refused_where_they_do_not_apply(dataset, fasta, dream):
    """Datasets and FASTA take no column flags; --id-col / --target-col need --seq-col."""
    with pytest.raises(ValueError, match=r"--seq-col applies to tables; --input .*ds is a prepared dataset"):
        check_input_options(dataset, seq_col="seq")
    with pytest.raises(ValueError, match=r"--id-col applies to tables with a header; --input .*a\.fa is FASTA"):
        check_input_options(fasta, id_col="x")
    with pytest.raises(ValueError, match=r"--target-col needs --seq-col"):
        check_input_options(dream, target_cols=["value"])


def test_table_columns_are_checked_against_the_header(table):
    assert check_input_options(table, seq_col="seq", id_col="name", target_cols=["y"]) == "table"
    with pytest.raises(InputError, match=r"--target-col 'w': .*t\.tsv has no such column"):
        check_input_options(table, seq_col="seq", target_cols=["y", "w"])


def test_a_header_read_as_data_suggests_seq_col(tmp_path):
    """A header whose first field is not a sequence name but names one later: say --seq-col
    NAME, with the advice of the flag (--data: --target-col, else --id-col)."""
    path = tmp_path / "h.csv"
    path.write_text('"id","Sequence","value"\nr,ACGT,1\n')
    with pytest.raises(InputError, match=rf"{path}:1 is a table header \(id, Sequence, value\): give --seq-col "
                                         r"Sequence .*--id-col NAME"):
        check_input_options(path)
    with pytest.raises(InputError, match=r"--target-col NAME to pick the measured columns"):
        check_input_options(path, input_flag="--data")
    path.write_text("seq,sequence\nACGT,1\n")  # led by a sequence name: a header the DREAM reader skips
    assert check_input_options(path) == "dream"


# -- read_all_sequences -------------------------------------------------------------------------


def test_read_all_sequences_ids_are_record_names_or_row_numbers(fasta, dream, table):
    assert read_all_sequences(fasta) == (["r1", "r2"], ["ACGT", "GGTT"], [f"{fasta}:1", f"{fasta}:3"])
    ids, sequences, where = read_all_sequences(dream)
    assert ids == ["0", "1", "2"] and sequences == ["ACGT", "GGGGG", "TTT"] and where[2] == f"{dream}:3"
    assert read_all_sequences(table, "seq")[0] == ["0", "1", "2"]


@pytest.mark.parametrize("text", ["", "\n\n", "sequence\n"])
def test_read_all_sequences_of_a_file_without_any_is_an_error(tmp_path, text):
    path = tmp_path / "e.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"{path}: no sequences"):
        read_all_sequences(path)


# -- measured_columns ---------------------------------------------------------------------------


def test_measured_columns_by_kind(table, dream, dataset):
    """A table's columns besides seq and id (or target_cols as given); 'value' for a DREAM TSV;
    a dataset's target_names."""
    assert measured_columns(str(table), "table", "seq", [], "name") == ["y", "z"]
    assert measured_columns(str(table), "table", "seq", ["z"]) == ["z"]
    assert measured_columns(str(dream), "dream", None, []) == ["value"]
    assert measured_columns(str(dataset), "dataset", None, []) == ["expression"]


def test_measured_columns_errors_say_why_there_are_none(tmp_path, fasta):
    with pytest.raises(InputError, match=r"--data .*a\.fa is FASTA: sequences without measured values"):
        measured_columns(str(fasta), "fasta", None, [])
    one = tmp_path / "one.txt"
    one.write_text("sequence\n\nACGT\nGG\n")
    with pytest.raises(InputError, match=r"one\.txt has one sequence per line and no values"):
        measured_columns(str(one), "dream", None, [])
    bare = tmp_path / "bare.csv"
    bare.write_text("id,seq\nr,ACGT\n")
    with pytest.raises(InputError, match=r"bare\.csv has no column besides --seq-col 'seq' and --id-col 'id'"):
        measured_columns(str(bare), "table", "seq", [], "id")


# -- run_columns and columns_line ---------------------------------------------------------------


def test_run_columns_narrowed_to_the_header(table):
    """The run's columns, less the targets and id the header lacks."""
    recorded = [("runA", TableColumns("seq", ["y", "q"], "id"))]
    assert run_columns(table, recorded) == TableColumns("seq", ["y"], None)
    recorded = [("runA", TableColumns("seq", ["z"], "name")), ("runB", TableColumns("seq", ["z"], "name"))]
    assert run_columns(table, recorded) == TableColumns("seq", ["z"], "name")


def test_run_columns_none_without_a_record_or_a_table(table, fasta, dataset, tmp_path):
    """No recorded columns, a FASTA, a dataset, an empty file, or a header led by 'sequence'."""
    columns = [("runA", TableColumns("seq", ["y"]))]
    assert run_columns(table, [("runA", None)]) is None
    assert run_columns(fasta, columns) is None and run_columns(dataset, columns) is None
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert run_columns(empty, columns) is None
    headed = tmp_path / "headed.tsv"
    headed.write_text("sequence\tvalue\nACGTACGTAC\t1\n")
    assert run_columns(headed, columns) is None


def test_run_columns_errors(table):
    """Runs that disagree on columns the header has need --seq-col; a header without the run's
    sequence column names the DNA column there is."""
    disagree = [("runA", TableColumns("seq", ["y"])), ("runB", TableColumns("seq", ["z"]))]
    with pytest.raises(ValueError, match=r"different columns \(runA: sequence 'seq', targets 'y'; runB: .*'z'\)"):
        run_columns(table, disagree)
    with pytest.raises(InputError, match=r"--data .*t\.tsv has no column 'dna'.*\(--seq-col seq holds DNA\)"):
        run_columns(table, [("runA", TableColumns("dna", ["y"]))], input_flag="--data")


def test_columns_line(table):
    line = columns_line(table, TableColumns("seq", ["y", "z"], "name"), runs=2)
    assert line == f"reading {table} with the runs' columns: sequence 'seq', id 'name', targets 'y', 'z'"
    assert "the run's columns: sequence 'seq'" in columns_line(table, TableColumns("seq", []))
