"""Tests of :mod:`proformer.data.prepare`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    ARRAYS,
    DREAM_ROWS,
    GOOD,
    HEAD,
    TAIL,
    arrays,
    dream_text_prepare,
    lentimpra_rows,
    load,
    one_line,
    prepare_cli,
    random_dna,
    random_dna_training_ideas,
    run_prepare,
    write_prepare,
    write_prepare_tables,
)

from proformer.cli import main
from proformer.config import load_run_config
from proformer.data.dataset import Dataset
from proformer.data.prepare import REASONS, InputError, prepare
from proformer.model import ModelConfig
from proformer.sequence import (
    DREAM_HEAD,
    DREAM_TAIL,
    decode,
)
from proformer.train import train

LINE = (f"prepare: found constant flanks shared by all 1,000 rows: 15 nt at the start ({HEAD}) and 15 nt at the "
        f"end ({TAIL}); the model will not see them")


def assert_same_arrays(a: dict, b: dict) -> None:
    for name in ARRAYS:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), name


def read_table(path: Path, seq_col: str, target_cols: list[str]):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    targets = np.array([[float(row[c]) for c in target_cols] for row in rows], dtype=np.float32)
    return [row[seq_col] for row in rows], targets


@pytest.mark.parametrize("same", [True, False])
def test_prepare_out_naming_a_file_says_that_prepare_writes_a_directory(tmp_path, capsys, same):
    """Old code: 'FILE: File exists' (and a FILE.lock left behind)."""
    source = tmp_path / "rows.txt"
    source.write_text("".join(f"{s}\t{i}.5\n" for i, s in enumerate(random_dna(np.random.default_rng(1), 5, 30))))
    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    out = source if same else other
    before = out.read_bytes()
    assert main(["prepare", str(source), "--out", str(out), "--trim", "0,0", "--no-progress"]) == 2
    err = one_line(capsys)
    assert "--out" in err and ("the input" if same else "an existing file") in err and "dataset directory" in err, err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "rows.txt"]  # no lock, no staging


def test_prepare_bad_input_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("ACGT\t1.0\nACXT\t2.0\n")
    assert main(["prepare", str(bad), "--out", str(tmp_path / "ds"), "--trim", "0,0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad.tsv:2" in err and "'X'" in err
    assert main(["prepare", str(bad), "--out", str(tmp_path / "ds"), "--trim", "0,0", "--on-bad", "skip", "--no-progress"]) == 0
    assert json.loads((tmp_path / "ds" / "meta.json").read_text())["dropped"]["invalid_symbol"] == 1


def test_prepare_finds_the_lentimpra_primers_and_says_so(lentimpra, tmp_path, capsys):
    status, err = prepare_cli(capsys, lentimpra, "--out", tmp_path / "ds")
    assert status == 0, err
    found = [line for line in err.splitlines() if "constant flanks" in line]
    assert len(found) == 1 and found[0].startswith(LINE) and "--keep-flanks" in found[0]  # old: no such line
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["transforms"] == {"head": 15, "tail": 15, "length": 200}
    assert meta["flanks"]["head"] == HEAD and meta["flanks"]["tail"] == TAIL and meta["flanks"]["rows"] == 1000
    # The stored rows keep their flanks (outputs keep them); the layout trims them.
    dataset = Dataset(tmp_path / "ds")
    assert all(s.startswith(HEAD) and s.endswith(TAIL) for s in decode(np.asarray(dataset.codes), dataset.lengths))
    layout = dataset.layout()
    assert (layout.head, layout.tail, layout.length) == (15, 15, 200)
    # Streaming in small chunks finds the same.
    assert prepare(lentimpra, tmp_path / "chunked", chunk_rows=7, progress=False)["flanks"] == meta["flanks"]


@pytest.mark.parametrize(
    "target, hint",
    [
        ("1_000", "'_' digit separator"),
        ("\uff11\uff12", "full-width digits"),  # "１２"
        ("\u0661\u0662", "non-ASCII"),  # Arabic-Indic digits
    ],
)
@pytest.mark.parametrize("layout", ["dream", "table", "csv_quoted", "fasta"])
def test_prepare_refuses_python_number_syntax_naming_file_line_and_value(tmp_path, target, hint, layout):
    kwargs = {}
    if layout == "dream":
        text = f"{GOOD}\t1\n{GOOD}\t{target}\n{GOOD}\t3\n"
        name, line = "in.txt", 2
    elif layout == "table":
        text = f"seq,y\n{GOOD},1\n{GOOD},{target}\n"
        name, line, kwargs = "in.csv", 3, {"seq_col": "seq", "target_cols": ["y"]}
    elif layout == "csv_quoted":  # a quote sends the chunk through the csv module
        text = f'seq,y\n"{GOOD}",1\n{GOOD},{target}\n'
        name, line, kwargs = "in.csv", 3, {"seq_col": "seq", "target_cols": ["y"]}
    else:
        text = f">a 1\n{GOOD}\n>b 2\n{GOOD}\n>c {target}\n{GOOD}\n"
        name, line = "in.fa", 5
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        prepare(path, tmp_path / "ds", progress=False, **kwargs)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert hint in message and target in message, message
    assert not (tmp_path / "ds").exists()


def test_prepare_refuses_a_trim_that_empties_every_sequence(tmp_path):
    """--trim 100,100 on 110-nt rows used to write a dataset of empty sequences with exit 0."""
    from proformer.data.prepare import prepare

    source = tmp_path / "rows.tsv"
    source.write_text("".join(f"{'ACGT' * 27}AC\t{i}.5\n" for i in range(20)))
    with pytest.raises(ValueError, match=r"--trim 100,100 removes 200 positions, and the longest sequence has 110"):
        prepare(source, tmp_path / "data", trim=(100, 100), progress=False)
    assert not (tmp_path / "data" / "meta.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".prepare-" in p.name]  # staging removed


def test_gzip_crlf_and_chunking_give_identical_arrays(tmp_path):
    text = dream_text_prepare()
    run_prepare(write_prepare(tmp_path / "plain.txt", text), tmp_path / "plain")
    reference = load(tmp_path / "plain")

    meta = run_prepare(write_prepare(tmp_path / "train.txt.gz", text), tmp_path / "gz")
    assert_same_arrays(load(tmp_path / "gz"), reference)
    assert meta["source"]["sha256"] == hashlib.sha256((tmp_path / "train.txt.gz").read_bytes()).hexdigest()

    # Chunks of 3 rows have different widths (the 130-nt row sits in the second chunk).
    run_prepare(tmp_path / "plain.txt", tmp_path / "chunked", chunk_rows=3)
    assert_same_arrays(load(tmp_path / "chunked"), reference)
    run_prepare(tmp_path / "train.txt.gz", tmp_path / "chunked1", chunk_rows=1)
    assert_same_arrays(load(tmp_path / "chunked1"), reference)

    # Windows line ends, no final newline.
    run_prepare(write_prepare(tmp_path / "crlf.txt", text.replace("\n", "\r\n").rstrip("\r\n")), tmp_path / "crlf", chunk_rows=2)
    assert_same_arrays(load(tmp_path / "crlf"), reference)


def test_trim_and_length_overrides(tmp_path):
    path = write_prepare(tmp_path / "t.txt", dream_text_prepare())
    meta = run_prepare(path, tmp_path / "ds", trim=(0, 0), length=110)
    # Without trimming, rows longer than 110 nt are too long: the 136- and 130-nt rows.
    assert meta["dropped"]["too_long"] == 2 and meta["rows_kept"] == 5
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 110}


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_sequences_without_targets(tmp_path, newline):
    path = write_prepare(tmp_path / "test.txt", "".join(sequence + newline for sequence, _ in DREAM_ROWS[:3]))
    meta = run_prepare(path, tmp_path / "ds")
    arrays = load(tmp_path / "ds")
    assert meta["target_names"] == [] and meta["target_mean"] == []
    assert arrays["targets"].shape == (3, 0) and not arrays["integer_target"].any()
    assert decode(arrays["codes"], arrays["lengths"]) == [s.upper() for s, _ in DREAM_ROWS[:3]]


def test_real_dream_sample(shared_dir, tmp_path):
    path = shared_dir / "data" / "dream2022" / "train_sample.txt"
    meta = run_prepare(path, tmp_path / "ds")
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


def test_deepstarr_two_targets(shared_dir, tmp_path):
    path = shared_dir / "data" / "mpra" / "drosophila_deepstarr_sample_train.txt"
    names = ["Dev_log2_enrichment", "Hk_log2_enrichment"]
    meta = run_prepare(path, tmp_path / "ds", seq_col="Sequence", target_cols=names)
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
    meta = run_prepare(path, tmp_path / "ds", seq_col="seq", target_cols="mean_value", chunk_rows=300)
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
    run_prepare(write_prepare(tmp_path / "plain.csv", plain), tmp_path / "plain", seq_col="seq", target_cols=["a", "b"])
    path = write_prepare(tmp_path / "quoted.csv", quoted)
    meta = run_prepare(path, tmp_path / "quoted", seq_col="seq", target_cols=["a", "b"], chunk_rows=2)
    assert_same_arrays(load(tmp_path / "quoted"), load(tmp_path / "plain"))
    assert meta["rows_kept"] == 3
    assert load(tmp_path / "plain")["targets"].tolist() == [[1.5, 2], [3, -4], [0.25, 8]]


def test_fasta_numeric_headers_multiline(tmp_path):
    text = ">a 1.25\nACGT\nacgt\n\n>b desc -3\nNNA\n>c x 4\nGG\nCC\nTT\n"
    path = write_prepare(tmp_path / "x.fa.gz", text)
    meta = run_prepare(path, tmp_path / "ds", chunk_rows=2)
    arrays = load(tmp_path / "ds")
    assert meta["source"]["format"] == "fasta" and meta["target_names"] == ["target"]
    assert decode(arrays["codes"], arrays["lengths"]) == ["ACGTACGT", "NNA", "GGCCTT"]
    assert arrays["targets"][:, 0].tolist() == [1.25, -3, 4]
    assert arrays["integer_target"].tolist() == [False, True, True]
    assert meta["rows_read"] == 3 and meta["transforms"] == {"head": 0, "tail": 0, "length": 8}


def test_fasta_without_numeric_headers_has_no_targets(tmp_path):
    # One header without a number is enough: the file has no targets.
    meta = run_prepare(write_prepare(tmp_path / "x.fasta", "\n>a 1\nAC\n>b\nGTA\n"), tmp_path / "ds")
    arrays = load(tmp_path / "ds")
    assert meta["target_names"] == [] and arrays["targets"].shape == (2, 0)
    assert decode(arrays["codes"], arrays["lengths"]) == ["AC", "GTA"]


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
    path = write_prepare(tmp_path / "bad.txt", "\n".join(lines) + "\n\n")
    meta = run_prepare(path, tmp_path / "ds", on_bad="skip", chunk_rows=4)
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


def test_progress_is_printed_per_chunk(tmp_path, capsys, monkeypatch):
    # proformer.progress.Progress (tqdm): in a log, plain lines (every 30 s and at the end), no
    # carriage returns; on a terminal, one line rewritten in place (at most every 0.1 s).
    prepare(write_prepare(tmp_path / "t.txt", dream_text_prepare()), tmp_path / "ds", chunk_rows=3, progress=True)
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


def test_argument_errors(tmp_path):
    path = write_prepare(tmp_path / "t.txt", dream_text_prepare())
    with pytest.raises(ValueError, match="on_bad"):
        run_prepare(path, tmp_path / "ds", on_bad="ignore")
    with pytest.raises(ValueError, match="seq_col"):
        run_prepare(path, tmp_path / "ds", format="table")
    with pytest.raises(FileNotFoundError):
        run_prepare(tmp_path / "missing.txt", tmp_path / "ds")


@pytest.mark.slow
def test_full_size_dream_file_meets_the_time_and_memory_budget():
    """6,739,258 synthetic DREAM rows in <= 60 s and <= 2 GiB (benchmarks/bench_prepare.py)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_prepare.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert result.returncode == 0 and "PASS" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    "name, seq_col, targets, length, flanks",
    [
        # lentiMPRA's rows all carry the same 15-nt primers at both ends: prepare trims them (test_flanks.py).
        ("human_lentimpra_sample_train.txt", "seq", ["mean_value"], 230, 15),
        ("drosophila_deepstarr_sample_train.txt", "Sequence", ["Dev_log2_enrichment", "Hk_log2_enrichment"], 249, 0),
    ],
)
def test_real_mpra_samples_without_flags(shared_dir, tmp_path, capsys, name, seq_col, targets, length, flanks):
    path = shared_dir / "data" / "mpra" / name
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds")
    assert status == 0, err
    assert err.startswith(f"prepare: read {path} as a table: sequence column {seq_col!r}")
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["target_names"] == targets and meta["table"]["seq_col"] == seq_col
    assert meta["min_length"] == meta["max_length"] == length
    assert meta["transforms"] == {"head": flanks, "tail": flanks, "length": length - 2 * flanks}
    assert meta["rows_kept"] == 1000
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    sequences, values = arrays(tmp_path / "ds")
    assert sequences == [row[seq_col] for row in rows]
    assert np.array_equal(values, np.array([[float(row[t]) for t in targets] for row in rows], dtype=np.float32))


def test_argument_errors_name_the_flags(tmp_path, capsys):
    path = write_prepare_tables(tmp_path / "lenti.txt", lentimpra_rows())
    with pytest.raises(SystemExit) as stop:  # refused while parsing: one line naming the flag and its limit
        prepare_cli(capsys, path, "--out", tmp_path / "ds", "--length", "0")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --length: 0 is below the limit, 1" in err
    with pytest.raises(ValueError, match=r"--length \(length=\) must be >= 1, got 0"):  # the Python API
        prepare(path, tmp_path / "ds", length=0, progress=False)
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds", "--trim=-1,0")
    assert status == 2 and "--trim (trim=) values must be >= 0" in err
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a 1\nACGT\n")
    status, err = prepare_cli(capsys, fasta, "--out", tmp_path / "ds", "--seq-col", "seq")
    assert status == 2 and "--seq-col (seq_col=) can only name columns of a table" in err and "FASTA" in err
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds", "--seq-col", "sequence")
    assert status == 2 and "column(s) 'sequence' not in the header" in err and "Pass --seq-col (seq_col=)" in err
    # Every row too long after --length: nothing kept, and the message says which flag to change.
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds", "--length", "10", "--on-bad", "skip")
    assert status == 2 and "none of the 40 rows was kept (dropped: too_long 40)" in err
    assert "pass a larger --length (length=)" in err


def test_soft_bins_refuse_targets_that_are_not_bins(tmp_path):
    rows = "".join(f"{random_dna_training_ideas(20)}\t{value}\n" for value in [1.0, 2.5, 40.0] * 20)
    (tmp_path / "t.tsv").write_text(rows)
    prepare(tmp_path / "t.tsv", tmp_path / "data", trim=(0, 0), length=20, progress=False)
    config = load_run_config(preset="grid", overrides=[f"data.path={tmp_path / 'data'}", "length=20", "loss=soft_bins",
                                                      "epochs=1"])
    with pytest.raises(ValueError, match=r"row 2 \(0-based\) has target 40\.0, not a mean sort bin in \[0, 17\]"):
        train(config, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="n_targets=2"):
        ModelConfig(loss="soft_bins", n_targets=2)
