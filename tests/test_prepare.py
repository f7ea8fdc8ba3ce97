"""proformer.data.prepare: input files -> dataset directories (docs/dataset-format.md)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from proformer.data.prepare import REASONS, InputError, load_meta, prepare
from proformer.sequence import DREAM_HEAD, DREAM_TAIL, N, decode

ARRAYS = ("codes", "lengths", "targets", "integer_target")

# A DREAM-like TSV: flanks around a variable core, lower case, N, integer and float targets, one
# row too long for the 100-nt layout (136 nt - 30 = 106 > 100) and one 130-nt row that just fits.
DREAM_ROWS = [
    (DREAM_HEAD + "ACGT" * 20 + DREAM_TAIL, "12"),
    (DREAM_HEAD.lower() + "acgtn" * 10 + DREAM_TAIL.lower(), "15.1823836007871"),
    (DREAM_HEAD + "N" * 3 + "GATTACA" + DREAM_TAIL, "0"),
    (DREAM_HEAD + "C" * 106 + DREAM_TAIL, "7"),  # too long: dropped
    (DREAM_HEAD + "T" * 100 + DREAM_TAIL, "3.5"),  # 130 nt: kept, the widest row
    (DREAM_HEAD + "GA" * 40 + DREAM_TAIL, "-1.25e-1"),
    (DREAM_HEAD + "AC" * 39 + DREAM_TAIL, "17"),
]
GOOD = DREAM_HEAD + "ACGT" * 20 + DREAM_TAIL


def dream_text(rows=DREAM_ROWS) -> str:
    return "".join(f"{sequence}\t{target}\n" for sequence, target in rows)


def write(path: Path, text: str | bytes) -> Path:
    """Write ``text``, gzip-compressed when the name ends in .gz."""
    data = text.encode() if isinstance(text, str) else text
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def load(directory: Path) -> dict[str, np.ndarray]:
    return {name: np.load(directory / f"{name}.npy") for name in ARRAYS}


def assert_same_arrays(a: dict, b: dict) -> None:
    for name in ARRAYS:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), name


def run(path: Path, out: Path, **kwargs) -> dict:
    kwargs.setdefault("progress", False)
    return prepare(path, out, **kwargs)


# ---------------------------------------------------------------------------------------------
# DREAM TSV
# ---------------------------------------------------------------------------------------------


def test_dream_round_trip(tmp_path):
    path = write(tmp_path / "train.txt", dream_text())
    meta = run(path, tmp_path / "ds")
    arrays = load(tmp_path / "ds")
    kept = [row for row in DREAM_ROWS if len(row[0]) - 30 <= 100]
    assert len(kept) == len(DREAM_ROWS) - 1

    codes, lengths = arrays["codes"], arrays["lengths"]
    assert codes.dtype == np.uint8 and lengths.dtype == np.int32
    assert codes.shape == (len(kept), 130)  # padded to the widest kept row, not the dropped one
    assert decode(codes, lengths) == [sequence.upper() for sequence, _ in kept]
    assert lengths.tolist() == [len(sequence) for sequence, _ in kept]
    assert (codes[np.arange(130) >= lengths[:, None]] == N).all()  # padding is N
    assert "M" not in "".join(decode(codes))

    expected = np.array([float(target) for _, target in kept], dtype=np.float32)[:, None]
    assert arrays["targets"].dtype == np.float32 and np.array_equal(arrays["targets"], expected)
    assert arrays["integer_target"].dtype == np.bool_
    assert arrays["integer_target"].tolist() == [True, False, True, False, False, True]

    assert meta == json.loads((tmp_path / "ds" / "meta.json").read_text()) == load_meta(tmp_path / "ds")
    assert meta["format_version"] == 1
    assert meta["source"] == {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": "dream",
    }
    assert meta["rows_read"] == 7 and meta["rows_kept"] == 6
    assert meta["dropped"] == dict.fromkeys(REASONS, 0) | {"too_long": 1}
    assert meta["target_names"] == ["expression"]
    values = expected[:, 0].astype(np.float64)
    assert meta["target_mean"] == pytest.approx([values.mean()], rel=1e-12)
    assert meta["target_std"] == pytest.approx([values.std()], rel=1e-12)
    assert meta["min_length"] == min(map(len, (s for s, _ in kept))) and meta["max_length"] == 130
    assert meta["transforms"] == {"head": 17, "tail": 13, "length": 100}
    assert meta["proformer_version"] and meta["created"]


def test_gzip_crlf_and_chunking_give_identical_arrays(tmp_path):
    text = dream_text()
    run(write(tmp_path / "plain.txt", text), tmp_path / "plain")
    reference = load(tmp_path / "plain")

    meta = run(write(tmp_path / "train.txt.gz", text), tmp_path / "gz")
    assert_same_arrays(load(tmp_path / "gz"), reference)
    assert meta["source"]["sha256"] == hashlib.sha256((tmp_path / "train.txt.gz").read_bytes()).hexdigest()

    # Chunks of 3 rows have different widths (the 130-nt row sits in the second chunk).
    run(tmp_path / "plain.txt", tmp_path / "chunked", chunk_rows=3)
    assert_same_arrays(load(tmp_path / "chunked"), reference)
    run(tmp_path / "train.txt.gz", tmp_path / "chunked1", chunk_rows=1)
    assert_same_arrays(load(tmp_path / "chunked1"), reference)

    # Windows line ends, no final newline.
    run(write(tmp_path / "crlf.txt", text.replace("\n", "\r\n").rstrip("\r\n")), tmp_path / "crlf", chunk_rows=2)
    assert_same_arrays(load(tmp_path / "crlf"), reference)


def test_trailing_blank_lines_are_ignored_inner_ones_are_not(tmp_path):
    for chunk_rows in (2, 3, 100):
        meta = run(write(tmp_path / "t.txt", dream_text() + "\n\n"), tmp_path / "ds", chunk_rows=chunk_rows)
        assert meta["rows_read"] == 7 and sum(meta["dropped"].values()) == 1
    # A blank line that ends a chunk is still an error when data follows it.
    path = write(tmp_path / "inner.txt", f"{GOOD}\t1\n\n\n{GOOD}\t2\n")
    with pytest.raises(InputError, match=r"inner\.txt:2: blank line; expected 2 tab-separated columns"):
        run(path, tmp_path / "ds", chunk_rows=2)
    meta = run(path, tmp_path / "ds", chunk_rows=1, on_bad="skip")
    assert meta["rows_read"] == 4 and meta["dropped"]["wrong_columns"] == 2 and meta["rows_kept"] == 2


def test_trim_and_length_overrides(tmp_path):
    path = write(tmp_path / "t.txt", dream_text())
    meta = run(path, tmp_path / "ds", trim=(0, 0), length=110)
    # Without trimming, rows longer than 110 nt are too long: the 136- and 130-nt rows.
    assert meta["dropped"]["too_long"] == 2 and meta["rows_kept"] == 5
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 110}


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_sequences_without_targets(tmp_path, newline):
    path = write(tmp_path / "test.txt", "".join(sequence + newline for sequence, _ in DREAM_ROWS[:3]))
    meta = run(path, tmp_path / "ds")
    arrays = load(tmp_path / "ds")
    assert meta["target_names"] == [] and meta["target_mean"] == []
    assert arrays["targets"].shape == (3, 0) and not arrays["integer_target"].any()
    assert decode(arrays["codes"], arrays["lengths"]) == [s.upper() for s, _ in DREAM_ROWS[:3]]


def test_real_dream_sample(shared_dir, tmp_path):
    path = shared_dir / "data" / "dream2022" / "train_sample.txt"
    meta = run(path, tmp_path / "ds")
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    too_long = sum(len(sequence) - 30 > 100 for sequence, _ in rows)
    integers = [float(t) == int(float(t)) for s, t in rows if len(s) - 30 <= 100]
    assert meta["rows_read"] == len(rows) == 7369
    assert meta["dropped"]["too_long"] == too_long == 3
    assert meta["rows_kept"] + meta["dropped"]["too_long"] == 7369
    assert sum(meta["dropped"].values()) == too_long
    arrays = load(tmp_path / "ds")
    assert arrays["integer_target"].tolist() == integers
    assert arrays["integer_target"].mean() == pytest.approx(0.58, abs=0.01)
    assert decode(arrays["codes"][:50], arrays["lengths"][:50]) == [s for s, _ in rows[:50]]


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def read_table(path: Path, seq_col: str, target_cols: list[str]):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    targets = np.array([[float(row[c]) for c in target_cols] for row in rows], dtype=np.float32)
    return [row[seq_col] for row in rows], targets


def test_deepstarr_two_targets(shared_dir, tmp_path):
    path = shared_dir / "data" / "mpra" / "drosophila_deepstarr_sample_train.txt"
    names = ["Dev_log2_enrichment", "Hk_log2_enrichment"]
    meta = run(path, tmp_path / "ds", seq_col="Sequence", target_cols=names)
    arrays = load(tmp_path / "ds")
    sequences, targets = read_table(path, "Sequence", names)
    assert meta["source"]["format"] == "table" and meta["target_names"] == names
    assert meta["rows_read"] == meta["rows_kept"] == 1000
    assert arrays["targets"].shape == (1000, 2) and np.array_equal(arrays["targets"], targets)
    assert decode(arrays["codes"], arrays["lengths"]) == sequences
    assert meta["min_length"] == meta["max_length"] == 249
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 249}
    assert meta["target_mean"] == pytest.approx(targets.astype(np.float64).mean(axis=0).tolist(), rel=1e-12)


def test_lentimpra(shared_dir, tmp_path):
    path = shared_dir / "data" / "mpra" / "human_lentimpra_sample_train.txt"
    meta = run(path, tmp_path / "ds", seq_col="seq", target_cols="mean_value", chunk_rows=300)
    arrays = load(tmp_path / "ds")
    sequences, targets = read_table(path, "seq", ["mean_value"])
    assert meta["rows_kept"] == 1000 and meta["target_names"] == ["mean_value"]
    assert np.array_equal(arrays["targets"], targets)
    assert decode(arrays["codes"], arrays["lengths"]) == sequences
    # The 230-nt rows share 15-nt primers at both ends: found across the chunks, they are the layout's flanks.
    assert meta["transforms"] == {"head": 15, "tail": 15, "length": 200}


def test_quoted_csv_reads_like_plain(tmp_path):
    plain = "id,seq,a,b\nx1,ACGT,1.5,2\nx2,GGN,3,-4\nx3,ttt,0.25,8\n"
    quoted = 'id,seq,a,b\n"x1, first",ACGT,1.5,2\nx2,GGN,"3",-4\n"x3",ttt,0.25,8\n'
    run(write(tmp_path / "plain.csv", plain), tmp_path / "plain", seq_col="seq", target_cols=["a", "b"])
    path = write(tmp_path / "quoted.csv", quoted)
    meta = run(path, tmp_path / "quoted", seq_col="seq", target_cols=["a", "b"], chunk_rows=2)
    assert_same_arrays(load(tmp_path / "quoted"), load(tmp_path / "plain"))
    assert meta["rows_kept"] == 3
    assert load(tmp_path / "plain")["targets"].tolist() == [[1.5, 2], [3, -4], [0.25, 8]]


def test_header_in_dream_file_suggests_a_table(tmp_path):
    # A header over sequence<TAB>value rows is read as a table since issue 14 (more in
    # test_prepare_tables.py); a line 1 that is not confirmed as a header (line 2 has another
    # number of fields) is data, and the error says how to read a table, by flag.
    path = write(tmp_path / "h.txt", f"sequence\tvalue\n{GOOD}\t1\n")
    meta = run(path, tmp_path / "ds")
    assert meta["source"]["format"] == "table" and meta["target_names"] == ["value"] and meta["rows_kept"] == 1
    path = write(tmp_path / "odd.txt", f"sequence\tvalue\n{GOOD}\t1\t2\n")
    expected = r"odd\.txt:1: invalid symbol 's' at position 1 .*'sequence' \(if line 1 is a header.*--seq-col"
    with pytest.raises(InputError, match=expected) as error:
        run(path, tmp_path / "ds2")
    assert "--on-bad skip" not in str(error.value)  # every row is bad: skipping would drop them all


def test_table_length_filter_and_missing_column(tmp_path):
    path = write(tmp_path / "t.tsv", "seq\ty\nACGTACGT\t1\nACG\t2\n")
    meta = run(path, tmp_path / "ds", seq_col="seq", target_cols=["y"], length=5)
    assert meta["rows_kept"] == 1 and meta["dropped"]["too_long"] == 1
    with pytest.raises(InputError, match=r"t\.tsv:1: column\(s\) 'expr' not in the header.*seq, y"):
        run(path, tmp_path / "ds2", seq_col="seq", target_cols=["expr"])


# ---------------------------------------------------------------------------------------------
# FASTA
# ---------------------------------------------------------------------------------------------


def test_fasta_numeric_headers_multiline(tmp_path):
    text = ">a 1.25\nACGT\nacgt\n\n>b desc -3\nNNA\n>c x 4\nGG\nCC\nTT\n"
    path = write(tmp_path / "x.fa.gz", text)
    meta = run(path, tmp_path / "ds", chunk_rows=2)
    arrays = load(tmp_path / "ds")
    assert meta["source"]["format"] == "fasta" and meta["target_names"] == ["target"]
    assert decode(arrays["codes"], arrays["lengths"]) == ["ACGTACGT", "NNA", "GGCCTT"]
    assert arrays["targets"][:, 0].tolist() == [1.25, -3, 4]
    assert arrays["integer_target"].tolist() == [False, True, True]
    assert meta["rows_read"] == 3 and meta["transforms"] == {"head": 0, "tail": 0, "length": 8}


def test_fasta_without_numeric_headers_has_no_targets(tmp_path):
    # One header without a number is enough: the file has no targets.
    meta = run(write(tmp_path / "x.fasta", "\n>a 1\nAC\n>b\nGTA\n"), tmp_path / "ds")
    arrays = load(tmp_path / "ds")
    assert meta["target_names"] == [] and arrays["targets"].shape == (2, 0)
    assert decode(arrays["codes"], arrays["lengths"]) == ["AC", "GTA"]


def test_fasta_invalid_symbol_names_its_line(tmp_path):
    path = write(tmp_path / "x.fa", ">a 1\nACGT\nACXT\n")
    with pytest.raises(InputError, match=r"x\.fa:3: invalid symbol 'X' at position 7 \(line 3, column 3\)"):
        run(path, tmp_path / "ds")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


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
    path = write(tmp_path / "bad.txt", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        run(path, tmp_path / "ds", chunk_rows=2)
    message = str(error.value)
    assert message.startswith(f"{path}:3: "), message
    for part in expected:
        assert part in message, message
    assert "--on-bad skip" in message
    assert not (tmp_path / "ds" / "meta.json").exists()  # no half-written dataset


def test_table_bad_target_names_the_column(tmp_path):
    path = write(tmp_path / "t.csv", "id,seq,a,b\nx,ACGT,1,2\ny,ACGT,3,oops\n")
    with pytest.raises(InputError, match=r"t\.csv:3: target 'b' is not a number: 'oops'"):
        run(path, tmp_path / "ds", seq_col="seq", target_cols=["a", "b"])
    path = write(tmp_path / "u.csv", "id,seq,a\nx,ACGT,1,2\n")
    expected = r"u\.csv:2: expected 3 comma-separated columns \(id, seq, a\), found 4: 'x,ACGT,1,2'"
    with pytest.raises(InputError, match=expected):
        run(path, tmp_path / "ds", seq_col="seq", target_cols=["a"])


def test_skip_counts_every_reason(tmp_path, capsys):
    long = DREAM_HEAD + "A" * 101 + DREAM_TAIL
    lines = [
        GOOD + "\t1",
        GOOD + "Z\t2",  # invalid_symbol
        GOOD + "\tnan",  # bad_target
        GOOD + "\t",  # bad_target
        GOOD + "\t1\t2",  # wrong_columns
        "",  # wrong_columns (not trailing)
        "\t4",  # empty_sequence
        long + "\t5",  # too_long
        long + "Z\tx",  # too_long: the length filter comes first
        GOOD.lower() + "\t6",
    ]
    path = write(tmp_path / "bad.txt", "\n".join(lines) + "\n\n")
    meta = run(path, tmp_path / "ds", on_bad="skip", chunk_rows=4)
    assert meta["dropped"] == {
        "wrong_columns": 2, "empty_sequence": 1, "too_long": 2, "invalid_symbol": 1, "bad_target": 2
    }
    assert json.loads((tmp_path / "ds" / "meta.json").read_text())["dropped"] == meta["dropped"]
    assert set(meta["dropped"]) == set(REASONS)
    assert meta["rows_read"] == 10 and meta["rows_kept"] == 2
    arrays = load(tmp_path / "ds")
    assert decode(arrays["codes"], arrays["lengths"]) == [GOOD, GOOD]
    assert arrays["targets"][:, 0].tolist() == [1, 6]
    err = capsys.readouterr().err
    assert "dropped 8 of 10 rows" in err and "invalid_symbol 1" in err and "bad_target 2" in err
    assert f"{path}:2: invalid symbol 'Z'" in err  # the first skipped rows are shown


def test_empty_inputs_are_errors_even_when_skipping(tmp_path):
    for name, text in [("empty.txt", ""), ("blank.txt", "\n\n"), ("empty.txt.gz", "")]:
        path = write(tmp_path / name, text)
        with pytest.raises(InputError, match=rf"{name}:\d+: no data rows"):
            run(path, tmp_path / "ds", on_bad="skip")
    path = write(tmp_path / "header.tsv", "seq\ty\n")
    with pytest.raises(InputError, match=r"header\.tsv:2: no data rows after the header"):
        run(path, tmp_path / "ds", seq_col="seq", target_cols=["y"], on_bad="skip")
    path = write(tmp_path / "bad.txt", "XX\t1\n")
    with pytest.raises(InputError, match=r"none of the 1 rows was kept \(dropped: invalid_symbol 1\)"):
        run(path, tmp_path / "ds", on_bad="skip")


@pytest.mark.parametrize("on_bad", ["error", "skip"])
def test_truncated_gzip_is_an_error_naming_the_line(tmp_path, on_bad):
    rng = np.random.default_rng(0)
    rows = ["".join(rng.choice(list("ACGT"), 110)) + f"\t{i % 17}" for i in range(3000)]
    data = gzip.compress(("\n".join(rows) + "\n").encode())
    truncated = data[: len(data) // 2]
    path = write(tmp_path / "cut.txt", truncated)  # not .gz by name: detected by magic bytes
    complete = zlib.decompressobj(wbits=31).decompress(truncated).count(b"\n")
    with pytest.raises(InputError) as error:
        run(path, tmp_path / "ds", on_bad=on_bad, chunk_rows=500)
    message = str(error.value)
    assert f"{path}:{complete + 1}: the gzip file is truncated or corrupt" in message
    assert f"reading stopped at line {complete + 1}" in message and 0 < complete < 3000


def test_corrupt_gzip_is_an_error(tmp_path):
    data = bytearray(gzip.compress(dream_text().encode()))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "bad.txt.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.txt\.gz:\d+: the gzip file is truncated or corrupt"):
        run(path, tmp_path / "ds", on_bad="skip")


# ---------------------------------------------------------------------------------------------
# Odds and ends
# ---------------------------------------------------------------------------------------------


def test_progress_is_printed_per_chunk(tmp_path, capsys, monkeypatch):
    # proformer.progress.Progress (tqdm): in a log, plain lines (every 30 s and at the end), no
    # carriage returns; on a terminal, one line rewritten in place (at most every 0.1 s).
    prepare(write(tmp_path / "t.txt", dream_text()), tmp_path / "ds", chunk_rows=3, progress=True)
    err = capsys.readouterr().err
    assert "7 rows read" in err and "\r" not in err
    assert "6 of 7 rows kept" in err and "too_long 1" in err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    prepare(tmp_path / "t.txt", tmp_path / "ds2", chunk_rows=3, progress=True)
    shown = terminal.getvalue()
    assert "\r" in shown and "7 rows read" in shown.split("\r")[-1], shown
    assert "6 of 7 rows kept" in shown.split("\r")[-1]  # the final line starts on a line of its own


def test_load_meta_rejects_non_datasets(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        load_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        load_meta(tmp_path)


def test_argument_errors(tmp_path):
    path = write(tmp_path / "t.txt", dream_text())
    with pytest.raises(ValueError, match="on_bad"):
        run(path, tmp_path / "ds", on_bad="ignore")
    with pytest.raises(ValueError, match="seq_col"):
        run(path, tmp_path / "ds", format="table")
    with pytest.raises(FileNotFoundError):
        run(tmp_path / "missing.txt", tmp_path / "ds")


@pytest.mark.slow
def test_full_size_dream_file_meets_the_time_and_memory_budget():
    """6,739,258 synthetic DREAM rows in <= 60 s and <= 2 GiB (benchmarks/bench_prepare.py)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_prepare.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert result.returncode == 0 and "PASS" in result.stdout, result.stdout + result.stderr
