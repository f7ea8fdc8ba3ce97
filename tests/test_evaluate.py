"""Tests of :mod:`proformer.evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import (
    N_TEST,
    TEST_SEQUENCES,
    cli,
    edited_run,
    headed_tsv,
    random_dna,
    write_tiny_run,
)
from scipy.stats import spearmanr

from proformer.data.prepare import prepare
from proformer.evaluate import evaluate
from proformer.io.errors import InputError

RNG = np.random.default_rng(11)


N = 40


SEQUENCES = random_dna(RNG, N, 22)  # flanks 2 + 1: 19 nt seen, inside the 20-position window


MEASURED = RNG.normal(1.0, 2.0, size=(N, 2))


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("two") / "run", seed=5, n_targets=2)


@pytest.fixture(scope="module")
def run1(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("one") / "run", seed=6)



def labelled_table(path, missing_row: int | None = None):
    """id, sequence, a text column, then the two targets named as the run names them."""
    lines = ["name\tsequence\tnote\ttarget0\ttarget1"]
    for i, (sequence, (a, b)) in enumerate(zip(SEQUENCES, MEASURED)):
        second = "NA" if i == missing_row else f"{b:.6f}"
        lines.append(f"s{i}\t{sequence}\tnote {i}\t{a:.6f}\t{second}")
    path.write_text("\n".join(lines) + "\n")
    return path


def predicted_by_predict(run, table, tmp_path) -> np.ndarray:
    """``proformer predict``'s output for the table: ``(N, n_targets)``."""
    out = tmp_path / "predictions.tsv"
    assert cli("predict", "--model", run, "--input", table, "--seq-col", "sequence", "--out", out) == 0
    header, *rows = out.read_text().splitlines()
    return np.array([[float(v) for v in row.split("\t")[1:]] for row in rows])


def direct(predicted: np.ndarray, measured: np.ndarray) -> dict:
    """The metrics, computed here without proformer.metrics."""
    residual = np.sum((measured - predicted) ** 2)
    return {"n": len(measured), "pearson": np.corrcoef(predicted, measured)[0, 1],
            "spearman": spearmanr(predicted, measured)[0], "mse": residual / len(measured),
            "r2": 1 - residual / np.sum((measured - measured.mean()) ** 2)}


def assert_metrics(reported: dict, expected: dict) -> None:
    assert reported["n"] == expected["n"]
    for key in ("pearson", "spearman", "mse", "r2"):
        # predict's TSV holds 6 significant digits; evaluate uses the full values
        assert reported[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key


def run_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert cli("evaluate", *args, "--json") == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(err: str, *fragments: str) -> str:
    """helpers.one_line_error, with evaluate's warning lines set aside."""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_a_labelled_table_matches_the_run_targets_by_name(run2, tmp_path, capsys):
    table = labelled_table(tmp_path / "labelled.tsv", missing_row=3)
    result = run_json(capsys, "--model", run2, "--data", table, "--seq-col", "sequence")
    predicted = predicted_by_predict(run2, table, tmp_path)
    assert result["units"] == "training units" and result["rows"] == N
    assert list(result["targets"]) == ["target0", "target1"]
    assert_metrics(result["targets"]["target0"], direct(predicted[:, 0], MEASURED[:, 0]))
    kept = np.arange(N) != 3  # NA: left out of target1 only, and counted
    assert_metrics(result["targets"]["target1"], direct(predicted[kept, 1], MEASURED[kept, 1]))
    assert result["targets"]["target1"]["missing"] == 1 and result["targets"]["target0"]["missing"] == 0
    # --target-col narrows the comparison to the columns named.
    only = run_json(capsys, "--model", run2, "--data", table, "--seq-col", "sequence", "--target-col", "target1")
    assert list(only["targets"]) == ["target1"] and only["targets"]["target1"] == result["targets"]["target1"]


def test_a_prepared_dataset_directory_gives_the_same_metrics(run2, tmp_path, capsys):
    table = labelled_table(tmp_path / "labelled.tsv")
    prepare(table, tmp_path / "ds", seq_col="sequence", target_cols=["target0", "target1"], trim=(2, 1),
            progress=False)
    result = run_json(capsys, "--model", run2, "--data", tmp_path / "ds")
    predicted = predicted_by_predict(run2, table, tmp_path)
    for j, name in enumerate(("target0", "target1")):
        # targets.npy is float32: compare with the values as stored
        measured = np.load(tmp_path / "ds" / "targets.npy")[:, j].astype(np.float64)
        assert_metrics(result["targets"][name], direct(predicted[:, j], measured))


def test_the_table_output_and_the_scatter_plots(run2, tmp_path, capsys):
    table = labelled_table(tmp_path / "labelled.tsv")
    out_dir = tmp_path / "report"
    capsys.readouterr()
    assert cli("evaluate", "--model", run2, "--data", table, "--seq-col", "sequence", "--out-dir", out_dir) == 0
    printed = capsys.readouterr().out.splitlines()
    saved = json.loads((out_dir / "metrics.json").read_text())
    assert printed[1].split() == ["target", "column", "n", "pearson", "spearman", "mse", "r2"]
    for line, name in zip(printed[2:4], ("target0", "target1")):
        fields = line.split()
        assert fields[:3] == [name, name, str(N)]
        assert float(fields[3]) == pytest.approx(saved["targets"][name]["pearson"], abs=6e-5)
    for name in ("target0", "target1"):
        png = out_dir / f"scatter_{name}.png"
        assert saved["targets"][name]["scatter"] == str(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert sorted(p.name for p in out_dir.iterdir()) == ["metrics.json", "scatter_target0.png", "scatter_target1.png"]


def test_a_dream_tsv_matches_a_one_target_run_by_position(run1, tmp_path, capsys):
    source = tmp_path / "dream.txt"
    source.write_text("".join(f"{s}\t{v:.6f}\n" for s, v in zip(SEQUENCES, MEASURED[:, 0])))
    result = run_json(capsys, "--model", run1, "--data", source)
    assert list(result["targets"]) == ["expr"] and result["targets"]["expr"]["column"] == "value"
    out = tmp_path / "p.tsv"
    assert cli("predict", "--model", run1, "--input", source, "--out", out) == 0
    predicted = np.array([float(line.split("\t")[1]) for line in out.read_text().splitlines()[1:]])
    assert_metrics(result["targets"]["expr"], direct(predicted, MEASURED[:, 0]))


def test_errors_are_one_line_naming_the_flag_and_both_sides(run1, run2, tmp_path, capsys):
    table = labelled_table(tmp_path / "labelled.tsv")
    (tmp_path / "in.fa").write_text(f">a\n{SEQUENCES[0]}\n")
    (tmp_path / "plain.txt").write_text("\n".join(SEQUENCES) + "\n")
    (tmp_path / "dream.txt").write_text("".join(f"{s}\t1.5\n" for s in SEQUENCES))
    unlabelled = tmp_path / "unlabelled"
    prepare(tmp_path / "plain.txt", unlabelled, trim=(2, 1), progress=False)  # sequences alone: no targets
    lines = table.read_text().splitlines()
    fields = lines[5].split("\t")
    lines[5] = "\t".join(fields[:3] + ["high", fields[4]])  # line 6: target0 is not a number
    (tmp_path / "bad.tsv").write_text("\n".join(lines) + "\n")
    cases = [
        ([run2, unlabelled], ["--data", "no targets"]),
        ([run2, table, "--seq-col", "seq"], ["--seq-col 'seq'", "'sequence'"]),
        ([run2, tmp_path / "in.fa"], ["--data", "FASTA"]),
        ([run2, tmp_path / "plain.txt"], ["--data", "no values"]),
        ([run2, tmp_path / "dream.txt"], ["2 target(s) (target0, target1)", "1 measured column(s) (value)"]),
        ([run2, table, "--seq-col", "sequence", "--target-col", "note"], ["--target-col 'note'", "target0, target1"]),
        ([run1, table, "--seq-col", "sequence"], ["1 target(s) (expr)", "--target-col"]),
        ([run2, tmp_path / "bad.tsv", "--seq-col", "sequence"], ["bad.tsv:6", "'target0'", "'high'"]),
    ]
    for (model, data, *flags), fragments in cases:
        capsys.readouterr()
        assert cli("evaluate", "--model", model, "--data", data, *flags) == 2, (data, flags)
        one_line_error(capsys.readouterr().err, *fragments)


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


def test_the_progress_line_does_not_change_the_units_of_the_metrics(run2, tmp_path):
    """Old code passed ``progress`` where ``standardized`` goes: with the progress line on,
    evaluate compared z-scores with measured values (another MSE; an ensemble of folds refused)."""
    table = labelled_table(tmp_path / "labelled.tsv")
    quiet = evaluate(run2, table, seq_col="sequence", progress=False)
    shown = evaluate(run2, table, seq_col="sequence", progress=True)
    for plain, with_line in zip(quiet.targets, shown.targets):
        assert with_line.mse == pytest.approx(plain.mse, rel=1e-12)
        assert with_line.r2 == pytest.approx(plain.r2, rel=1e-12)
