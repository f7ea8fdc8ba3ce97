"""Tests of :mod:`proformer.io.reader`."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from helpers import GOOD, dream_text_prepare, run_prepare, write_prepare

from proformer.data.prepare import prepare
from proformer.io.errors import InputError
from proformer.io.reader import read_sequences
from proformer.io.sniff import is_header_line
from proformer.sequence import decode

RNG = np.random.default_rng(7)


SEQUENCES = ["".join(RNG.choice(list("ACGTN"), int(n))) for n in RNG.integers(20, 60, 23)]
SEQUENCES[3] = SEQUENCES[3].lower()  # lower case is DNA too


VALUES = [round(float(v), 3) for v in RNG.normal(size=len(SEQUENCES))]


def write(path: Path, text: str, compress: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def dream_text(sequences=SEQUENCES, values=VALUES) -> str:
    return "".join(f"{s}\t{v}\n" for s, v in zip(sequences, values))


def fasta_text(sequences=SEQUENCES) -> str:
    # Records split over lines of 10, a description after the id, blank lines between records.
    records = []
    for i, s in enumerate(sequences):
        lines = "\n".join(s[k : k + 10] for k in range(0, len(s), 10))
        records.append(f">rec{i} some description\n{lines}\n")
    return "\n".join(records)


def read_all(path, **kwargs):
    chunks = list(read_sequences(path, **kwargs))
    sequences = [s for chunk in chunks for s in chunk.sequences]
    lines = np.concatenate([chunk.lines for chunk in chunks]).tolist() if chunks else []
    return chunks, sequences, lines


@pytest.mark.parametrize("name,compress", [("a.txt", False), ("a.txt.gz", True), ("plain.txt.gz", False), ("zipped.txt", True)])
def test_dream_tsv_plain_or_gzip_whatever_the_name(tmp_path, name, compress):
    path = write(tmp_path / name, dream_text(), compress)
    chunks, sequences, lines = read_all(path, values=True)
    assert sequences == SEQUENCES and lines == list(range(1, len(SEQUENCES) + 1))
    assert np.concatenate([c.values for c in chunks]).tolist() == VALUES
    assert all(c.ids is None for c in chunks)


@pytest.mark.parametrize("compress", [False, True])
def test_one_sequence_per_line_with_blank_lines_and_crlf(tmp_path, compress):
    text = "\n" + "\r\n".join(SEQUENCES[:5]) + "\r\n\n\n" + "\n".join(SEQUENCES[5:]) + "\n\n"
    _, sequences, lines = read_all(write(tmp_path / "one.txt", text, compress))
    assert sequences == SEQUENCES
    assert lines[:6] == [2, 3, 4, 5, 6, 9]


@pytest.mark.parametrize("name,compress", [("x.fa", False), ("x.fa.gz", True), ("x.fasta", True)])
def test_fasta_keeps_record_ids(tmp_path, name, compress):
    chunks, sequences, lines = read_all(write(tmp_path / name, fasta_text(), compress), chunk_rows=5)
    assert sequences == SEQUENCES
    assert [i for c in chunks for i in c.ids] == [f"rec{i}" for i in range(len(SEQUENCES))]
    assert lines[0] == 1 and lines[1] == 2 + (len(SEQUENCES[0]) + 9) // 10 + 1  # header lines


@pytest.mark.parametrize("name,delimiter", [("t.csv", ","), ("t.tsv", "\t"), ("t.txt", ";")])
def test_table_with_named_columns(tmp_path, name, delimiter):
    rows = [delimiter.join(["id", "value", "promoter"])]
    rows += [delimiter.join([f"x{i}", str(v), s]) for i, (s, v) in enumerate(zip(SEQUENCES, VALUES))]
    path = write(tmp_path / name, "\n".join(rows) + "\n", compress=True)
    _, sequences, lines = read_all(path, seq_col="promoter")
    assert sequences == SEQUENCES and lines[0] == 2
    with pytest.raises(InputError, match=rf"{name}:1: column\(s\) 'seq' not in the header"):
        read_all(path, seq_col="seq")


def test_truncated_or_corrupt_gzip_names_the_file(tmp_path):
    data = gzip.compress(dream_text(SEQUENCES * 300).encode())
    path = tmp_path / "cut.txt"  # no .gz: detected by the magic bytes
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.txt:\d+: the gzip file is truncated or corrupt"):
        read_all(path)


@pytest.mark.parametrize("header", ["sequence\tvalue", "SEQ", "Sequence", '"sequence",value', "\ufeffsequence\texpr"])
def test_a_column_name_line_is_skipped(tmp_path, header):
    path = write(tmp_path / "h.txt", f"{header}\n" + dream_text())
    _, sequences, lines = read_all(path)
    assert sequences == SEQUENCES and lines[0] == 2


def test_the_header_rule():
    assert is_header_line(b"sequence\tvalue") and is_header_line("Seq,y") and is_header_line("\ufeffSEQUENCES")
    assert is_header_line("promoter\ty", seq_col="promoter")
    for line in ("acgt\t1", "ACGR\t1", "NNNN", "x1\tACGT", "sequence_id\tACGT", ""):
        assert not is_header_line(line), line


def test_a_first_line_that_is_not_a_header_is_data(tmp_path):
    """Lower case, a byte-order mark or an IUPAC letter on line 1 never drops that line."""
    lower = write(tmp_path / "lower.txt", dream_text([s.lower() for s in SEQUENCES]))
    assert read_all(lower)[1] == [s.lower() for s in SEQUENCES]
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + dream_text().encode())
    assert read_all(bom)[1] == SEQUENCES
    iupac = write(tmp_path / "iupac.txt", dream_text(["ACGRT"] + SEQUENCES[1:]))
    with pytest.raises(InputError, match=r"iupac\.txt:1: invalid symbol 'R' at position 4 .*line 1 is read as data"):
        read_all(iupac)
    named = write(tmp_path / "named.txt", "id\tsequence\n" + "".join(f"x{i}\t{s}\n" for i, s in enumerate(SEQUENCES)))
    with pytest.raises(InputError, match=r"named\.txt:1: invalid symbol 'i' .*seq_col"):
        read_all(named)


def test_predict_reads_a_bom_or_iupac_first_line_as_data(tmp_path):
    """predict used to take any first line that was not pure ACGTN for a header and skip it, which
    shifted every prediction by one row (--format dream-json then scored the wrong sequences)."""
    from proformer.io.inputs import read_input

    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + dream_text().encode())
    assert [s for chunk in read_input(bom) for s in chunk.text()] == SEQUENCES
    iupac = write(tmp_path / "iupac.txt", dream_text(["ACGRT"] + SEQUENCES[1:]))
    with pytest.raises(ValueError, match=r"iupac\.txt:1: invalid symbol 'R'"):
        list(read_input(iupac))
    header = write(tmp_path / "header.txt", "sequence\tvalue\n" + dream_text())
    assert [s for chunk in read_input(header) for s in chunk.text()] == SEQUENCES
    masked = write(tmp_path / "masked.txt", "ACGTM\n")  # the mask token: refused by predict as by prepare
    with pytest.raises(InputError, match=r"masked\.txt:1: invalid symbol 'M' at position 5"):
        list(read_input(masked))
    with pytest.raises(InputError, match=r"masked\.txt:1: invalid symbol 'M' at position 5"):
        read_all(masked)


@pytest.mark.parametrize("fasta", [False, True])
@pytest.mark.parametrize("chunk_rows", [1, 4, 7, 100])
def test_chunks_keep_file_order(tmp_path, fasta, chunk_rows):
    text = fasta_text() if fasta else "sequence\n" + dream_text().replace("\t", "\t\t", 3) + "\n\n"
    chunks, sequences, lines = read_all(write(tmp_path / "c.txt", text), chunk_rows=chunk_rows)
    assert sequences == SEQUENCES
    assert [len(c.sequences) for c in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    assert 0 < len(chunks[-1].sequences) <= chunk_rows
    assert lines == sorted(lines) and all(len(c.lines) == len(c.sequences) for c in chunks)


def test_errors_name_the_file_the_line_and_the_value(tmp_path):
    cases = [
        ("empty_field.txt", "ACGT\t1\n\t2\n", {}, r"empty_field\.txt:2: the sequence field is empty"),
        ("bad.txt", "ACGT\nACXGT\n", {}, r"bad\.txt:2: invalid symbol 'X' at position 3 .*'ACXGT'"),
        ("value.txt", "ACGT\t1\nACGT\toops\n", {"values": True}, r"value\.txt:2: target 'value' is not a number: 'oops'"),
        ("cols.txt", "ACGT\t1\nACGT\n", {"values": True}, r"cols\.txt:2: expected 2 tab-separated columns"),
        ("t.csv", "seq,y\nACGT,1\nACGT\n", {"seq_col": "seq"}, r"t\.csv:3: expected 2 comma-separated columns"),
        ("x.fa", ">a\nACGT\n>b\nAC\nGGZ\n", {}, r"x\.fa:5: invalid symbol 'Z' at position 5 \(line 5, column 3\)"),
        ("utf8.txt", "ACGT\nACGé\n", {}, r"utf8\.txt:2: invalid symbol 'é' at position 4"),
    ]
    for name, text, kwargs, message in cases:
        with pytest.raises(InputError, match=message):
            read_all(write(tmp_path / name, text), **kwargs)
    with pytest.raises(FileNotFoundError, match="input file not found"):
        read_all(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="is a directory"):
        read_all(tmp_path)


def test_empty_inputs_read_as_nothing(tmp_path):
    for name, text in [("empty.txt", ""), ("blank.txt", "\n\n"), ("header.txt", "sequence\n")]:
        assert read_all(write(tmp_path / name, text)) == ([], [], [])


@pytest.mark.parametrize("kind", ["dream.txt", "dream.txt.gz", "one.txt", "x.fa.gz", "t.csv"])
def test_prepare_and_predict_read_the_same_sequences(tmp_path, kind):
    from proformer.io.inputs import read_input

    kwargs = {}
    if kind.startswith("dream"):
        path = write(tmp_path / kind, dream_text(), kind.endswith(".gz"))
    elif kind == "one.txt":
        path = write(tmp_path / kind, "\n".join(SEQUENCES) + "\n")
    elif kind == "x.fa.gz":
        path = write(tmp_path / kind, fasta_text(), compress=True)
    else:
        path = write(tmp_path / kind, "seq,y\n" + "".join(f"{s},{v}\n" for s, v in zip(SEQUENCES, VALUES)))
        kwargs = {"seq_col": "seq"}
    meta = prepare(path, tmp_path / "ds", trim=(0, 0), length=1000, progress=False, chunk_rows=5, **kwargs)
    assert meta["rows_kept"] == len(SEQUENCES)
    prepared = decode(np.load(tmp_path / "ds" / "codes.npy"), np.load(tmp_path / "ds" / "lengths.npy"))
    predicted = [s for chunk in read_input(path, chunk_rows=5, **kwargs) for s in chunk.text()]
    assert [s.upper() for s in predicted] == prepared == [s.upper() for s in SEQUENCES]


def test_trailing_blank_lines_are_ignored_inner_ones_are_not(tmp_path):
    for chunk_rows in (2, 3, 100):
        meta = run_prepare(write_prepare(tmp_path / "t.txt", dream_text_prepare() + "\n\n"), tmp_path / "ds", chunk_rows=chunk_rows)
        assert meta["rows_read"] == 7 and sum(meta["dropped"].values()) == 1
    # A blank line that ends a chunk is still an error when data follows it.
    path = write_prepare(tmp_path / "inner.txt", f"{GOOD}\t1\n\n\n{GOOD}\t2\n")
    with pytest.raises(InputError, match=r"inner\.txt:2: blank line; expected 2 tab-separated columns"):
        run_prepare(path, tmp_path / "ds", chunk_rows=2)
    meta = run_prepare(path, tmp_path / "ds", chunk_rows=1, on_bad="skip")
    assert meta["rows_read"] == 4 and meta["dropped"]["wrong_columns"] == 2 and meta["rows_kept"] == 2


def test_header_in_dream_file_suggests_a_table(tmp_path):
    # A header over sequence<TAB>value rows is read as a table since issue 14 (more in
    # test_prepare_tables.py); a line 1 that is not confirmed as a header (line 2 has another
    # number of fields) is data, and the error says how to read a table, by flag.
    path = write_prepare(tmp_path / "h.txt", f"sequence\tvalue\n{GOOD}\t1\n")
    meta = run_prepare(path, tmp_path / "ds")
    assert meta["source"]["format"] == "table" and meta["target_names"] == ["value"] and meta["rows_kept"] == 1
    path = write_prepare(tmp_path / "odd.txt", f"sequence\tvalue\n{GOOD}\t1\t2\n")
    expected = r"odd\.txt:1: invalid symbol 's' at position 1 .*'sequence' \(if line 1 is a header.*--seq-col"
    with pytest.raises(InputError, match=expected) as error:
        run_prepare(path, tmp_path / "ds2")
    assert "--on-bad skip" not in str(error.value)  # every row is bad: skipping would drop them all


def test_table_length_filter_and_missing_column(tmp_path):
    path = write_prepare(tmp_path / "t.tsv", "seq\ty\nACGTACGT\t1\nACG\t2\n")
    meta = run_prepare(path, tmp_path / "ds", seq_col="seq", target_cols=["y"], length=5)
    assert meta["rows_kept"] == 1 and meta["dropped"]["too_long"] == 1
    with pytest.raises(InputError, match=r"t\.tsv:1: column\(s\) 'expr' not in the header.*seq, y"):
        run_prepare(path, tmp_path / "ds2", seq_col="seq", target_cols=["expr"])


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        (GOOD[:20] + "X" + GOOD[21:] + "\t5", ["invalid symbol 'X' at position 21", "ACGX"]),
        (GOOD[:30] + "M" + GOOD[31:] + "\t5", ["invalid symbol 'M' at position 31"]),
        (GOOD + "\t", ["target 'expression' is missing"]),
        (GOOD + "\tNaN", ["target 'expression' is NaN: 'NaN'"]),
        (GOOD + "\t-inf", ["target 'expression' is infinite: '-inf'"]),
        (GOOD + "\thigh", ["target 'expression' is not a number: 'high'"]),
        (GOOD + "\t5\t6", ["expected 2 tab-separated columns", "found 3", "\\t5\\t6'"]),
        (GOOD, ["expected 2 tab-separated columns", "found 1", GOOD[-20:]]),
        ("", ["blank line"]),
        ("\t5", ["sequence column 'sequence' is empty", "'\\t5'"]),
    ],
)
def test_bad_rows_are_errors_naming_file_line_and_value(tmp_path, bad_line, expected):
    lines = [GOOD + "\t1", GOOD + "\t2", bad_line, GOOD + "\t3"]
    path = write_prepare(tmp_path / "bad.txt", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        run_prepare(path, tmp_path / "ds", chunk_rows=2)
    message = str(error.value)
    assert message.startswith(f"{path}:3: "), message
    for part in expected:
        assert part in message, message
    assert "--on-bad skip" in message
    assert not (tmp_path / "ds" / "meta.json").exists()  # no half-written dataset


def test_table_bad_target_names_the_column(tmp_path):
    path = write_prepare(tmp_path / "t.csv", "id,seq,a,b\nx,ACGT,1,2\ny,ACGT,3,oops\n")
    with pytest.raises(InputError, match=r"t\.csv:3: target 'b' is not a number: 'oops'"):
        run_prepare(path, tmp_path / "ds", seq_col="seq", target_cols=["a", "b"])
    path = write_prepare(tmp_path / "u.csv", "id,seq,a\nx,ACGT,1,2\n")
    expected = r"u\.csv:2: expected 3 comma-separated columns \(id, seq, a\), found 4: 'x,ACGT,1,2'"
    with pytest.raises(InputError, match=expected):
        run_prepare(path, tmp_path / "ds", seq_col="seq", target_cols=["a"])


def test_empty_inputs_are_errors_even_when_skipping(tmp_path):
    for name, text in [("empty.txt", ""), ("blank.txt", "\n\n"), ("empty.txt.gz", "")]:
        path = write_prepare(tmp_path / name, text)
        with pytest.raises(InputError, match=rf"{name}:\d+: no data rows"):
            run_prepare(path, tmp_path / "ds", on_bad="skip")
    path = write_prepare(tmp_path / "header.tsv", "seq\ty\n")
    with pytest.raises(InputError, match=r"header\.tsv:2: no data rows after the header"):
        run_prepare(path, tmp_path / "ds", seq_col="seq", target_cols=["y"], on_bad="skip")
    path = write_prepare(tmp_path / "bad.txt", "XX\t1\n")
    with pytest.raises(InputError, match=r"none of the 1 rows was kept \(dropped: invalid_symbol 1\)"):
        run_prepare(path, tmp_path / "ds", on_bad="skip")
