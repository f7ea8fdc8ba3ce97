"""A run records its training table's column names (config.json ``data.columns``); predict and
evaluate read a headed table with them when ``--seq-col`` is not given (docs/conventions.md).

One tiny run is trained once per module from a TSV with the header ``seq_id seq mean_value
fold``, prepared without flags (prepare finds ``seq`` and ``mean_value`` itself): a few seconds on
one thread. Runs whose config.json is edited (an old one without the record, one that recorded
other columns) are copies of it.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import TINY_MODEL, as_overrides, random_dna, torch_threads

from proformer.cli import main
from proformer.evaluate import evaluate
from proformer.io.errors import InputError
from proformer.io.run import read_run_info
from proformer.predict import predict

RNG = np.random.default_rng(26)
N_TRAIN, N_TEST, LENGTH = 96, 24, 30
TRAIN_SEQUENCES = random_dna(RNG, N_TRAIN, LENGTH)
TEST_SEQUENCES = random_dna(RNG, N_TEST, LENGTH)


def gc(sequence: str) -> float:
    return (sequence.count("G") + sequence.count("C")) / len(sequence)


def headed_tsv(path, sequences, header=("seq_id", "seq", "mean_value", "fold")):
    """``seq_id seq mean_value fold``: an id (text), the DNA, a real-valued target, an integer fold."""
    lines = ["\t".join(header)]
    for i, sequence in enumerate(sequences):
        lines.append(f"id_{i}\t{sequence}\t{3 + 10 * gc(sequence) + 0.01 * i:.4f}\t{i % 5}")
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(*args) -> int:
    return main([str(arg) for arg in args] + ["--no-progress"])


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("columns")
    train = headed_tsv(root / "train.tsv", TRAIN_SEQUENCES)
    recipe = {**TINY_MODEL, "epochs": 1, "batch_size": 32, "data.split": "hash:0.8"}
    with torch_threads(1):
        assert cli("prepare", train, "--out", root / "data") == 0
        sets = [part for setting in as_overrides(recipe) for part in ("--set", setting)]
        assert cli("train", "--data", root / "data", "--out", root / "run", *sets) == 0
    return {"run": root / "run", "test": headed_tsv(root / "test.tsv", TEST_SEQUENCES), "root": root}


def edited_run(trained, name: str, edit) -> str:
    """A copy of the trained run whose config.json ``edit(values)`` changed."""
    copy = trained["root"] / name
    if not copy.exists():
        shutil.copytree(trained["run"], copy)
        values = json.loads((copy / "config.json").read_text())
        edit(values)
        (copy / "config.json").write_text(json.dumps(values, indent=2) + "\n")
    return copy


def test_the_run_records_the_columns_prepare_read(trained):
    values = json.loads((trained["run"] / "config.json").read_text())
    assert values["data"]["columns"] == {"seq_col": "seq", "target_cols": ["mean_value"]}
    columns = read_run_info(trained["run"]).columns
    assert (columns.seq_col, columns.target_cols, columns.id_col) == ("seq", ["mean_value"], None)


def test_evaluate_reads_a_table_with_the_runs_columns(trained, capsys):
    capsys.readouterr()
    assert cli("evaluate", "--model", trained["run"], "--data", trained["test"], "--json") == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert list(result["targets"]) == ["mean_value"]
    metrics = result["targets"]["mean_value"]
    assert metrics["column"] == "mean_value" and metrics["n"] == N_TEST and metrics["pearson"] is not None
    assert (f"reading {trained['test']} with the run's columns: sequence 'seq', targets 'mean_value'"
            in captured.err.splitlines())
    # The Python function reads it the same way, and agrees with --seq-col given by hand.
    given = evaluate(trained["run"], trained["test"], seq_col="seq", device="cpu", progress=False)
    found = evaluate(trained["run"], trained["test"], device="cpu", progress=False)
    assert found.to_dict()["targets"] == given.to_dict()["targets"]


def test_predict_reads_the_runs_sequence_column(trained, tmp_path, capsys):
    capsys.readouterr()
    assert cli("predict", "--model", trained["run"], "--input", trained["test"], "--out", tmp_path / "o.tsv") == 0
    line = f"reading {trained['test']} with the run's columns: sequence 'seq', targets 'mean_value'"
    assert line in capsys.readouterr().err.splitlines()
    header, *rows = (tmp_path / "o.tsv").read_text().splitlines()
    assert header.split("\t") == ["sequence", "mean_value"]
    assert [row.split("\t")[0] for row in rows] == TEST_SEQUENCES
    predict(trained["run"], trained["test"], tmp_path / "given.tsv", seq_col="seq", device="cpu", progress=False)
    assert (tmp_path / "given.tsv").read_text() == (tmp_path / "o.tsv").read_text()


def test_a_table_without_the_runs_column_names_the_columns_it_has(trained, tmp_path, capsys):
    other = headed_tsv(tmp_path / "other.tsv", TEST_SEQUENCES, header=("name", "dna", "value", "fold"))
    capsys.readouterr()
    assert cli("predict", "--model", trained["run"], "--input", other, "--out", tmp_path / "o.tsv") != 0
    line = one_line_error(capsys.readouterr().err)
    assert "no column 'seq'" in line and "'name', 'dna', 'value', 'fold'" in line and "--seq-col" in line, line
    assert not (tmp_path / "o.tsv").exists()
    with pytest.raises(InputError, match="'name', 'dna', 'value', 'fold'"):
        evaluate(trained["run"], other, device="cpu", progress=False)
    # --seq-col still reads it; a one-target run matches the one value column left besides --id-col.
    assert cli("evaluate", "--model", trained["run"], "--data", other, "--seq-col", "dna", "--id-col", "name",
               "--target-col", "value") == 0


def test_an_old_config_without_the_record_still_loads_and_predicts(trained, tmp_path, capsys):
    old = edited_run(trained, "old", lambda values: values["data"].pop("columns", None))
    assert read_run_info(old).columns is None
    assert cli("predict", "--model", old, "--input", trained["test"], "--seq-col", "seq", "--out", tmp_path / "o.tsv") == 0
    assert cli("predict", "--model", trained["run"], "--input", trained["test"], "--out", tmp_path / "new.tsv") == 0
    assert (tmp_path / "o.tsv").read_text() == (tmp_path / "new.tsv").read_text()
    # Without the record, a headed table needs --seq-col, as before; evaluate's advice names its own flags.
    capsys.readouterr()
    assert cli("evaluate", "--model", old, "--data", trained["test"]) != 0
    line = one_line_error(capsys.readouterr().err)
    assert "--seq-col seq" in line and "--target-col" in line and "--id-col" not in line, line


def test_evaluate_accepts_an_id_column(trained, tmp_path, capsys):
    capsys.readouterr()
    assert cli("evaluate", "--model", trained["run"], "--data", trained["test"], "--id-col", "seq_id", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["targets"]["mean_value"]["n"] == N_TEST
    assert cli("evaluate", "--model", trained["run"], "--data", trained["test"], "--id-col", "name") != 0
    line = one_line_error(capsys.readouterr().err)
    assert "--id-col 'name'" in line and "'seq_id', 'seq', 'mean_value', 'fold'" in line, line


def test_an_ensemble_whose_runs_recorded_other_columns_asks_for_seq_col(trained, tmp_path, capsys):
    def rename(values):
        values["data"]["columns"] = {"seq_col": "sequence", "target_cols": ["mean_value"]}

    other = edited_run(trained, "other", rename)
    capsys.readouterr()
    assert cli("predict", "--model", trained["run"], other, "--input", trained["test"], "--out", tmp_path / "o.tsv") != 0
    line = one_line_error(capsys.readouterr().err)
    assert "different columns" in line and "'seq'" in line and "'sequence'" in line and "--seq-col" in line, line
    assert cli("evaluate", "--model", trained["run"], other, "--data", trained["test"]) != 0
    assert "different columns" in one_line_error(capsys.readouterr().err)
    # --seq-col says which; runs that agree need nothing.
    assert cli("predict", "--model", trained["run"], other, "--input", trained["test"], "--seq-col", "seq",
               "--out", tmp_path / "given.tsv") == 0
    same = edited_run(trained, "same", lambda values: None)
    capsys.readouterr()
    assert cli("predict", "--model", trained["run"], same, "--input", trained["test"], "--out", tmp_path / "o.tsv") == 0
    assert "with the runs' columns: sequence 'seq'" in capsys.readouterr().err


def test_a_damaged_record_is_refused_in_one_line(trained):
    damaged = edited_run(trained, "damaged", lambda values: values["data"].update(columns={"seq_col": 3}))
    with pytest.raises(ValueError, match="data.columns"):
        read_run_info(damaged)
