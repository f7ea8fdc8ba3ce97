"""Tests of :mod:`proformer.cli`."""

from __future__ import annotations

import pytest
from helpers import (
    cli,
    usage_error,
    write_lines,
)

import proformer
from proformer.cli import main
from proformer.predict import predict


@pytest.mark.parametrize("argv, flag, limit", [
    (["attribute", "--method", "deep_lift_shap", "--shuffles", "1001"], "--shuffles", "1,000"),
    (["attribute", "--method", "deep_lift_shap", "--seed", "-1"], "--seed", "0"),
    (["ism", "--top", "10001"], "--top", "10,000"),
    (["ism", "--start", "-1"], "--start", "0"),
    (["design", "--target", "high", "--max-edits", "1001"], "--max-edits", "1,000"),
    (["design", "--target", "high", "--max-edits", "2", "--beam", "1001"], "--beam", "1,000"),
    (["predict", "--batch-size", "65537"], "--batch-size", "65,536"),
])
def test_numeric_options_of_the_model_commands_are_bounded(tiny_run_dir, sequences_file, tmp_path, capsys, argv, flag,
                                                           limit):
    """Old code: each ran (the tiny run takes any of these) and returned 0: no SystemExit."""
    command, *options = argv
    err = usage_error(capsys, [command, "--model", tiny_run_dir, "--input", sequences_file, "--out", tmp_path / "out",
                               *options, "--no-progress"])
    assert flag in err and limit in err and "limit" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, flag", [
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--folds", "101"], "--folds"),
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--epochs", "0"], "--epochs"),
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--data-fraction", "1.5"], "--data-fraction"),
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--data-fraction", "nan"], "--data-fraction"),
    (["atac", "prepare", "--fasta", "g.fa", "--signal", "s.bw", "--peaks", "p.bed", "--out", "{tmp}/a",
      "--max-n-frac", "1.5"], "--max-n-frac"),
    (["atac", "prepare", "--fasta", "g.fa", "--signal", "s.bw", "--peaks", "p.bed", "--out", "{tmp}/a",
      "--window", "1000000"], "--window"),
    (["bench", "predict", "--preset", "grid", "--steps", "0"], "--steps"),
])
def test_numeric_options_of_the_other_commands_are_bounded(tmp_path, capsys, argv, flag):
    """Old code: the sweep dry runs printed their cells (exit 0), atac prepare and bench returned 2
    from the function's own check or a missing file, without a SystemExit."""
    err = usage_error(capsys, [word.format(tmp=tmp_path) for word in argv])
    assert flag in err, err


def test_the_help_shows_the_bounds(capsys):
    """The limits are in --help, not only in the errors. Old code: no '1 to 1,000' in the help."""
    with pytest.raises(SystemExit):
        main(["attribute", "--help"])
    out = capsys.readouterr().out
    assert "1 to 1,000" in " ".join(out.split())


def test_prepare_train_predict_through_the_cli(tmp_path, capsys):
    from proformer.data.synthetic import simulate_library, write_tsv

    source = write_tsv(simulate_library(300, seed=1), tmp_path / "lib.tsv")
    assert main(["prepare", str(source), "--out", str(tmp_path / "ds"), "--no-progress"]) == 0
    assert "300 of 300 rows kept" in capsys.readouterr().out
    assert main(["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", "dim=8", "--set", "epochs=1", "--set", "batch_size=100"]) == 0
    # 300 rows: auto's 5-fold run, one ensemble for predict
    assert "5-fold run: validation Pearson" in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "run"), "--input", str(source), "--out", str(tmp_path / "p.tsv"),
                 "--no-progress"]) == 0
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 300  # the header line, then a row each
    # A second run into the same directory needs --resume or another --out.
    assert main(["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "already holds an ensemble run; use --resume" in capsys.readouterr().err


def test_the_removed_destandardize_is_refused(case, tmp_path, capsys):
    """--destandardize / destandardize= are gone (no shim): a usage error, a TypeError."""
    path = write_lines(tmp_path / "in.txt")
    for command in (["predict", "--out", tmp_path / "o.tsv"], ["ism", "--out", tmp_path / "ism"]):
        with pytest.raises(SystemExit) as exit_info:
            cli(command[0], *case.cli_models(), "--input", path, *command[1:], "--destandardize")
        assert exit_info.value.code == 2
        assert "unrecognized arguments: --destandardize" in capsys.readouterr().err
    with pytest.raises(TypeError, match="destandardize"):
        predict(case.model_arg, path, tmp_path / "o.tsv", destandardize=True, progress=False)
    with pytest.raises(TypeError, match="standardized"):
        proformer.load(case.model_arg, "cpu", standardized=True)  # the units are chosen per call now
    assert not (tmp_path / "o.tsv").exists() and not (tmp_path / "ism").exists()
