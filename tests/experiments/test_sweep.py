"""Tests of :mod:`proformer.experiments.sweep`."""

from __future__ import annotations

import textwrap

import optuna
import pytest
from helpers import LENGTH_SWEEP, planted_tsv, read_csv

from proformer.cli import main
from proformer.data.dataset import Dataset
from proformer.data.prepare import prepare
from proformer.experiments import poster, run_sweep, sweep_report
from proformer.experiments.study import open_study

TINY = ["length=40", "dim=8", "heads=1", "blocks=1", "kmer=3", "dropout=0", "train.batch_size=64",
        "data.split=hash:0.8", "train.accelerator=cpu"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("failing")
    planted_tsv(root / "tiny.tsv", n=200, length=40, rule=lambda s: s.count("G"), noise=0.3, seed=1, digits=4)

    prepare(root / "tiny.tsv", root / "tiny", trim=(0, 0), length=40, progress=False)
    return root / "tiny"


def _grid(path):
    path.write_text(textwrap.dedent(f"""\
        preset: grid
        set: [{", ".join(TINY)}]
        cells:
          - {{id: bad, set: [train.lr=0.001]}}
          - {{id: good, set: [train.lr=0.003]}}
        """))
    return path


# A tiny recipe: every cell trains in about a second on a few hundred rows.
TINY_SET = [f"length={LENGTH_SWEEP}", "dim=8", "heads=1", "blocks=1", "kmer=3", "dropout=0", "train.batch_size=64",
            "data.split=hash:0.8", "train.lr=3e-3", "train.accelerator=cpu"]


def tiny_grid_yaml(path, columns=("[readout=pool]", "[readout=2]")):
    body = textwrap.dedent(f"""\
        name: tiny
        preset: grid
        set: [{", ".join(TINY_SET)}]
        rows:
          - [blocks=1]
        columns:
        """) + "".join(f"  - {c}\n" for c in columns)
    path.write_text(body)
    return path


@pytest.mark.parametrize("grid, cells", [("poster-yeast", 72), ("poster-atac", 48), ("ablation", 4)])
def test_sweep_dry_run_lists_one_line_per_cell(tmp_path, capsys, grid, cells):
    assert main(["sweep", "--grid", grid, "--out", str(tmp_path / "sweep"), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == cells


def test_a_failed_cell_is_recorded_the_sweep_goes_on_and_exits_1_naming_it(tiny_data, tmp_path, capsys, monkeypatch,
                                                                             one_thread):
    from proformer.experiments import sweep
    from proformer.train.module import TrainingDiverged

    real = sweep._train_cell
    calls = []

    def train_cell(config, run_dir, progress):
        calls.append(run_dir.name)
        if run_dir.name == "bad" and len(calls) == 1:
            raise TrainingDiverged("the training loss is nan at step 3\nlower train.lr")
        return real(config, run_dir, progress)

    monkeypatch.setattr(sweep, "_train_cell", train_cell)
    grid, out = _grid(tmp_path / "grid.yaml"), tmp_path / "out"
    argv = ["sweep", "--grid", str(grid), "--data", str(tiny_data), "--out", str(out), "--epochs", "1", "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    # (Lightning's log handler may print a "Logging error" traceback into pytest's captured stream.)
    last = err.strip().splitlines()[-1]
    assert last.startswith("proformer sweep: error: 1 cell(s) failed: bad (") and "results.csv" in last
    rows = {row["cell"]: row for row in read_csv(out / "results.csv")}
    assert rows["good"]["status"] == "done"  # the sweep went on
    assert rows["bad"]["status"] == "failed"
    assert rows["bad"]["error"] == "TrainingDiverged: the training loss is nan at step 3 lower train.lr"  # one line

    # A rerun retries only the failed cell; now it trains and the sweep succeeds.
    assert main(argv) == 0
    assert calls == ["bad", "good", "bad"]
    assert {row["status"] for row in read_csv(out / "results.csv")} == {"done"}


def test_a_sigterm_in_a_cell_stops_the_sweep_and_records_the_cell(tiny_data, tmp_path, capsys, monkeypatch):
    from proformer.experiments import sweep
    from proformer.train.run import TrainingStopped

    calls = []

    def train_cell(config, run_dir, progress):
        calls.append(run_dir.name)
        raise TrainingStopped("training was stopped by SIGTERM in epoch 1")

    monkeypatch.setattr(sweep, "_train_cell", train_cell)
    grid, out = _grid(tmp_path / "grid.yaml"), tmp_path / "out"
    assert main(["sweep", "--grid", str(grid), "--data", str(tiny_data), "--out", str(out), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert calls == ["bad"] and "stopped (SIGTERM or Ctrl-C) in cell bad" in err and "run the same command again" in err
    assert [(row["cell"], row["status"]) for row in read_csv(out / "results.csv")] == [("bad", "failed")]


def test_a_resumed_cell_that_diverges_again_is_not_retrained_from_scratch(tmp_path, monkeypatch):
    from proformer.experiments import sweep
    from proformer.train.module import TrainingDiverged

    run_dir = tmp_path / "cell"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    calls = []

    def train(config, directory, resume, progress):
        calls.append(resume)
        raise TrainingDiverged("the training loss is nan")

    import proformer.train

    monkeypatch.setattr(proformer.train, "train", train)
    with pytest.raises(TrainingDiverged):
        sweep._train_cell(None, run_dir, False)
    assert calls == [True] and (run_dir / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("name, count", [("poster-yeast", 72), ("poster-atac", 48), ("ablation", 4), ("cpu-study", 24)])
def test_dry_run_lists_every_cell_once(name, count, capsys, tmp_path):
    cells = run_sweep(name, None, tmp_path / "out", dry_run=True)
    printed = capsys.readouterr().out.splitlines()
    assert len(cells) == len(printed) == count
    assert len({c["cell"] for c in cells}) == count
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_ablation_and_cpu_study_cells():
    cells = run_sweep("ablation", None, "unused", dry_run=True)
    keys = {(c["config"].model.readout, c["config"].model.mask_ratio > 0, c["config"].model.activation) for c in cells}
    assert keys == set(poster.ABLATION)
    assert all(c["config"].model.dim == 512 for c in cells)  # the final model's shape (dream2022 preset)
    study = run_sweep("cpu-study", None, "unused", dry_run=True, epochs=3)
    assert {c["config"].model.readout for c in study} == {"pool", 8, 32}
    assert {(c["config"].model.dim, c["config"].model.heads) for c in study} == {(64, 2), (128, 4)}
    assert {c["config"].data.split for c in study} == {"hash:0.9"} and study[0]["config"].train.epochs == 3


def test_overrides_the_grid_varies_are_refused():
    with pytest.raises(ValueError, match="varies model.readout"):
        run_sweep("poster-yeast", None, "unused", dry_run=True, overrides=["readout=8"])
    with pytest.raises(ValueError, match="use --epochs"):
        run_sweep("poster-yeast", None, "unused", dry_run=True, overrides=["train.epochs=3"])


def test_tiny_sweep_writes_both_rows_and_reruns_nothing(tiny_data_sweep, tmp_path, capsys, monkeypatch, one_thread):
    from proformer.experiments import sweep

    grid, out = tiny_grid_yaml(tmp_path / "tiny.yaml"), tmp_path / "out"
    # A worker killed in the first epoch of blocks1-readoutpool: its trial failed (as Optuna's
    # heartbeat check fails a dead worker's), its directory half-written, no checkpoint. The
    # sweep queues the cell again, deletes the directory and trains it from scratch.
    out.mkdir()
    study = open_study(out)
    trial = study.ask()
    trial.set_user_attr("cell", "blocks1-readoutpool")
    trial.set_user_attr("fold", 0)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    (out / "cells" / "blocks1-readoutpool").mkdir(parents=True)
    (out / "cells" / "blocks1-readoutpool" / "config.json").write_text("{half")
    # The first cell trained (the heavier blocks1-readout2) dies after its last epoch, before its
    # trial is completed: the trial fails, its checkpoint is at the last epoch.
    real, killed = sweep._metrics_row, []

    def metrics_row(result, seconds):
        killed.append(real(result, seconds))
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "_metrics_row", metrics_row)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, tiny_data_sweep, out, epochs=2, data_fraction=0.75, progress=False)
    monkeypatch.setattr(sweep, "_metrics_row", real)
    assert capsys.readouterr().err.count(": training") == 1

    rows = run_sweep(grid, tiny_data_sweep, out, epochs=2, data_fraction=0.75, progress=False)
    table = read_csv(out / "results.csv")
    assert [r["cell"] for r in table] == ["blocks1-readoutpool", "blocks1-readout2"]
    assert [r["readout"] for r in table] == ["pool", "2"] and {r["status"] for r in table} == {"done"}
    assert {r["dim"] for r in table} == {"8"} and all(float(r["seconds"]) > 0 for r in table)
    for row in rows:
        assert row["epochs_run"] == 2 and 1 <= row["best_epoch"] <= 2 and row["collapsed"] in (True, False)
        assert 200 < row["n_train"] + row["n_valid"] < 400  # 75 % of the rows
    assert (out / "data" / "fraction-0.75" / "meta.json").exists()
    # The killed cell resumed from its last checkpoint: nothing left to train, the same best epoch.
    assert rows[1]["val_pearson"] == pytest.approx(killed[0]["val_pearson"])
    assert rows[1]["best_epoch"] == killed[0]["best_epoch"]

    # Rerunning trains nothing: every cell's trial is complete.
    capsys.readouterr()
    again = run_sweep(grid, tiny_data_sweep, out, epochs=2, data_fraction=0.75, progress=False)
    assert "training" not in capsys.readouterr().err
    assert [r["val_pearson"] for r in again] == [float(r["val_pearson"]) for r in table]

    with pytest.raises(ValueError, match=r"study\.db: this sweep was started with epochs=2, now epochs=3"):
        run_sweep(grid, tiny_data_sweep, out, epochs=3, data_fraction=0.75, progress=False)


def test_folds_train_each_cell_once_per_fold(tiny_data_sweep, tmp_path, one_thread):
    grid = tiny_grid_yaml(tmp_path / "tiny.yaml", columns=("[readout=2]",))
    rows = run_sweep(grid, tiny_data_sweep, tmp_path / "out", epochs=1, folds=2, progress=False)
    assert [(r["cell"], r["fold"]) for r in rows] == [("blocks1-readout2", 0), ("blocks1-readout2", 1)]
    assert sum(r["n_valid"] for r in rows) == len(Dataset(tiny_data_sweep))  # each row validated once
    assert all((tmp_path / "out" / "cells" / "blocks1-readout2" / f"fold-{k}" / "weights.safetensors").exists() for k in (0, 1))
    assert "mean ± sd over 2 folds" in sweep_report(tmp_path / "out")
