"""Tests of :mod:`proformer.io.sniff`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import (
    N_ROWS,
    RNG,
    SEQUENCES_PREPARE_TABLES,
    VALUES,
    arrays,
    dna,
    lentimpra_rows,
    prepare_cli,
    write_prepare_tables,
)

from proformer.data.prepare import InputError, prepare
from proformer.sequence import DREAM_HEAD, DREAM_TAIL

SECOND = [round(float(v), 4) for v in RNG.normal(size=N_ROWS)]


def deepstarr_rows() -> list[list]:
    """As the DeepSTARR sample: chromosome, integer coordinates, id, set, DNA, two targets."""
    header = ["seqnames", "start", "end", "ID", "set", "Sequence", "Dev_log2_enrichment", "Hk_log2_enrichment"]
    rows = [header]
    for i, (s, dev, hk) in enumerate(zip(SEQUENCES_PREPARE_TABLES, VALUES, SECOND)):
        start = 4_544_150 + 977 * i
        rows.append([f"chr{'X23'[i % 3]}", start, start + 59, f"chrX_{start}_{start + 59}_+_peak", "Train", s, dev, hk])
    return rows


def run(path: Path, out: Path, **kwargs) -> dict:
    kwargs.setdefault("progress", False)
    return prepare(path, out, **kwargs)


def _barcode(rows):
    rows[0].insert(2, "barcode")
    for row in rows[1:]:
        row.insert(2, dna(12))
    return rows


@pytest.mark.parametrize("name, delimiter", [("lenti.txt", "\t"), ("lenti.csv", ","), ("lenti.tsv.gz", "\t")])
def test_lentimpra_like_table_is_read_without_flags(tmp_path, capsys, name, delimiter):
    path = write_prepare_tables(tmp_path / name, lentimpra_rows(), delimiter)
    meta = run(path, tmp_path / "ds")
    sequences, targets = arrays(tmp_path / "ds")
    assert sequences == [s.upper() for s in SEQUENCES_PREPARE_TABLES]
    assert targets.shape == (N_ROWS, 1) and np.array_equal(targets[:, 0], np.array(VALUES, dtype=np.float32))
    assert meta["source"]["format"] == "table" and meta["target_names"] == ["mean_value"]
    assert meta["rows_read"] == meta["rows_kept"] == N_ROWS
    assert meta["min_length"] == meta["max_length"] == 60
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 60}
    table = meta["table"]
    assert table["delimiter"] == delimiter and table["columns"] == ["seq_id", "seq", "mean_value", "fold"]
    assert table["seq_col"] == "seq" and table["target_cols"] == ["mean_value"]
    assert table["detected"] == ["seq_col", "target_cols"]
    assert table["ignored"] == {"seq_id": "text", "fold": "integers, 10 distinct values: a split, fold or class?"}
    # One line on stderr, the same as in meta.json.
    err = capsys.readouterr().err
    line = f"prepare: read {path} as a table: sequence column 'seq', target column(s) 'mean_value'; ignored: seq_id (text), fold (integers, 10 distinct values: a split, fold or class?); pass --seq-col/--target-col to choose"
    assert err.splitlines() == [line] and table["message"] == line.removeprefix("prepare: ")


def test_deepstarr_like_table_two_targets_coordinates_ignored(tmp_path, capsys):
    path = write_prepare_tables(tmp_path / "starr.csv", deepstarr_rows(), ",")
    meta = run(path, tmp_path / "ds")
    sequences, targets = arrays(tmp_path / "ds")
    assert sequences == [s.upper() for s in SEQUENCES_PREPARE_TABLES]
    assert np.array_equal(targets, np.array([VALUES, SECOND], dtype=np.float32).T)
    assert meta["target_names"] == ["Dev_log2_enrichment", "Hk_log2_enrichment"]
    assert meta["table"]["seq_col"] == "Sequence"
    assert meta["table"]["ignored"] == {
        "seqnames": "text",
        "start": "integers: a coordinate, count or id?",
        "end": "integers: a coordinate, count or id?",
        "ID": "text",
        "set": "text",
    }
    assert "target column(s) 'Dev_log2_enrichment', 'Hk_log2_enrichment'" in capsys.readouterr().err


def test_what_is_named_wins_and_keeps_its_meaning(tmp_path, capsys):
    path = write_prepare_tables(tmp_path / "lenti.txt", lentimpra_rows())
    # --target-col alone: the sequence column is found, the named integer column is the target.
    meta = run(path, tmp_path / "a", target_cols=["fold"])
    assert meta["target_names"] == ["fold"] and meta["table"]["detected"] == ["seq_col"]
    assert arrays(tmp_path / "a")[1][:, 0].tolist() == [i % 10 for i in range(N_ROWS)]
    assert "target column(s) 'fold'; ignored: seq_id (text), mean_value (numbers" in capsys.readouterr().err
    # --seq-col alone: as before issue 14, a dataset without targets; the line says how to add them.
    meta = run(path, tmp_path / "b", seq_col="seq")
    assert meta["target_names"] == [] and meta["table"]["detected"] == []
    assert "no target column (none named with --target-col)" in capsys.readouterr().err
    assert meta["table"]["message"].endswith("pass --target-col NAME to add targets")
    # Both named: nothing is chosen, nothing printed, the same arrays as detection gives.
    meta = run(path, tmp_path / "c", seq_col="seq", target_cols=["mean_value"])
    assert capsys.readouterr().err == "" and meta["table"]["detected"] == []
    run(path, tmp_path / "d")
    for name in ("codes", "lengths", "targets"):
        assert np.array_equal(np.load(tmp_path / "c" / f"{name}.npy"), np.load(tmp_path / "d" / f"{name}.npy"))


def test_two_columns_with_a_header_are_sequence_and_value(tmp_path):
    """sequence<TAB>value with a header line: the value is the target even when whole (DREAM's
    expression values often are), unlike an integer column beside real-valued ones."""
    rows = [["sequence", "expression"]] + [[s, i % 17] for i, s in enumerate(SEQUENCES_PREPARE_TABLES)]
    meta = run(write_prepare_tables(tmp_path / "h.txt", rows), tmp_path / "ds")
    assert meta["target_names"] == ["expression"] and meta["table"]["ignored"] == {}
    assert arrays(tmp_path / "ds")[1][:, 0].tolist() == [i % 17 for i in range(N_ROWS)]
    # One column named like a sequence column: sequences without targets, as one per line.
    meta = run(write_prepare_tables(tmp_path / "one.txt", [["Sequence"]] + [[s] for s in SEQUENCES_PREPARE_TABLES]), tmp_path / "one")
    assert meta["target_names"] == [] and meta["rows_kept"] == N_ROWS


def test_a_stray_bad_value_is_reported_with_its_line_not_mistaken_for_text(tmp_path):
    rows = lentimpra_rows()
    rows[9][2] = "oops"
    path = write_prepare_tables(tmp_path / "lenti.txt", rows)
    with pytest.raises(InputError) as error:
        run(path, tmp_path / "ds")
    message = str(error.value)
    assert message.startswith(f"{path}:10: target 'mean_value' is not a number: 'oops'. Fix the input, or pass --on-bad skip")
    meta = run(path, tmp_path / "ds", on_bad="skip")
    assert meta["rows_kept"] == N_ROWS - 1 and meta["dropped"]["bad_target"] == 1


@pytest.mark.parametrize(
    "case, rows, expected",
    [
        ("two_dna", _barcode(lentimpra_rows()),
         ["several columns hold DNA", "'seq' (median 60 nt), 'barcode' (median 12 nt)", "--seq-col NAME"]),
        ("no_number", [r[:2] + [f"group{i % 3}"] for i, r in enumerate(lentimpra_rows())],
         ["no target column", "group0", "--target-col NAME", "--seq-col seq alone for a dataset without targets"]),
        ("integers_only", [r[:2] + r[3:] for r in lentimpra_rows()],
         ["no target column", "fold (integers, 10 distinct values", "--target-col NAME", "an integer column too"]),
        ("header_only", lentimpra_rows()[:1], ["only a header line (seq_id, seq, mean_value, fold)", "no data rows"]),
    ],
)
def test_ambiguous_tables_are_errors_naming_the_flags(tmp_path, capsys, case, rows, expected):
    path = write_prepare_tables(tmp_path / f"{case}.txt", rows)
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds")
    assert status == 2
    assert err.startswith(f"proformer prepare: error: {path}:1: "), err
    for part in expected:
        assert part in err, err
    assert "--on-bad skip" not in err and "seq_col=..." not in err
    assert not (tmp_path / "ds").exists()


def test_format_table_without_a_header_names_seq_col(tmp_path, capsys):
    path = write_prepare_tables(tmp_path / "data.txt", lentimpra_rows()[1:])
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds", "--format", "table")
    assert status == 2 and f"{path}:1: --format table reads line 1 as the header" in err
    assert "--seq-col" in err
    # RNA in a table read by its header: no DNA column, named by flag with the values seen.
    rows = [r[:1] + [r[1].replace("T", "U").replace("t", "u")] + r[2:] for r in lentimpra_rows()]
    status, err = prepare_cli(capsys, write_prepare_tables(tmp_path / "rna.txt", rows), "--out", tmp_path / "ds", "--format", "table")
    assert status == 2 and "no column holds DNA (A C G T N)" in err and "--seq-col NAME" in err


def test_headerless_dream_tsv_reads_as_before(tmp_path, capsys):
    rows = [[DREAM_HEAD + s + DREAM_TAIL, v] for s, v in zip(SEQUENCES_PREPARE_TABLES, VALUES)]
    path = write_prepare_tables(tmp_path / "train.txt", rows)
    meta = run(path, tmp_path / "auto")
    assert capsys.readouterr().err == ""  # nothing chosen, nothing said
    assert meta["source"]["format"] == "dream" and "table" not in meta
    assert meta["target_names"] == ["expression"] and meta["transforms"] == {"head": 17, "tail": 13, "length": 100}
    run(path, tmp_path / "dream", format="dream")
    for name in ("codes", "lengths", "targets"):
        assert np.array_equal(np.load(tmp_path / "auto" / f"{name}.npy"), np.load(tmp_path / "dream" / f"{name}.npy"))
    # A first row whose sequence and value are both broken is data, reported at line 1, not a header.
    broken = write_prepare_tables(tmp_path / "broken.txt", [[SEQUENCES_PREPARE_TABLES[0].replace("T", "U"), "high"]] + rows)
    with pytest.raises(InputError, match=r"broken\.txt:1: invalid symbol 'U'"):
        run(broken, tmp_path / "ds")
    # A short first sequence over a bad value is data too.
    short = write_prepare_tables(tmp_path / "short.txt", [["ACGT", "oops"]] + rows)
    with pytest.raises(InputError, match=r"short\.txt:1: target 'expression' is not a number: 'oops'"):
        run(short, tmp_path / "ds")


def test_four_columns_without_a_header_name_the_table_flags(tmp_path, capsys):
    path = write_prepare_tables(tmp_path / "four.txt", lentimpra_rows()[1:])
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds")
    assert status == 2
    assert err.startswith(f"proformer prepare: error: {path}:1: expected 2 tab-separated columns"), err
    assert "--seq-col" in err and "--target-col" in err and "add a header line" in err
    assert "--on-bad skip" not in err and "seq_col=..." not in err
    # Flags that only apply to tables say why they do not apply here.
    status, err = prepare_cli(capsys, path, "--out", tmp_path / "ds", "--target-col", "mean_value")
    assert status == 2 and "--target-col (target_cols=) can only name columns of a table" in err
    assert "line 1 of" in err and "is not a header" in err
