"""Tests of :mod:`proformer.train.rundir`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import (
    LENGTH,
    LOCK,
    TRIM,
    cli_status,
    lenti_table,
    read_csv,
    settings,
    tiny_config_hardening_train,
)

from proformer.data.prepare import prepare
from proformer.io.run import read_weights
from proformer.model import ModelConfig, Proformer
from proformer.train import train


def _lock_is_free(path):
    """Whether another holder could take the lock at ``path`` now (a lock of its own, not waiting)."""
    import filelock

    lock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return False
    lock.release()
    return True


def test_a_second_train_into_a_locked_run_directory_fails_at_once_and_a_stale_lock_is_taken_over(
        small_planted_dataset, tmp_path, one_thread):

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Another process holds the lock (as a running train does) until it is killed.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, filelock; lock = filelock.FileLock(sys.argv[1]); "
                               "lock.acquire(); print('held', flush=True); time.sleep(60)", str(run_dir / LOCK)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FileExistsError, match="being written by another proformer train") as caught:
            train(tiny_config_hardening_train(small_planted_dataset), run_dir, progress=False)
        assert str(run_dir) in str(caught.value) and "\n" not in str(caught.value)
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    # Its process is gone, so is its hold: the lock file left on disk blocks nothing.
    assert (run_dir / LOCK).exists()
    train(tiny_config_hardening_train(small_planted_dataset), run_dir, progress=False)
    assert (run_dir / "weights.safetensors").exists() and not (run_dir / LOCK).exists()


def test_a_lock_file_without_a_holder_does_not_block(small_planted_dataset, tmp_path, one_thread):
    """A lock file on disk from an old run (or one of the former PID files) that no process holds."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK).write_text(f"{os.getpid()}\n")  # even naming a live process
    train(tiny_config_hardening_train(small_planted_dataset), run_dir, progress=False)
    assert (run_dir / "weights.safetensors").exists() and not (run_dir / LOCK).exists()


def test_the_lock_is_held_while_training(small_planted_dataset, tmp_path, monkeypatch, one_thread):
    from proformer.train.module import ProformerModule

    seen = []
    real = ProformerModule.objective

    def objective(self, batch):
        seen.append(_lock_is_free(tmp_path / "run" / LOCK))
        return real(self, batch)

    monkeypatch.setattr(ProformerModule, "objective", objective)
    train(tiny_config_hardening_train(small_planted_dataset), tmp_path / "run", progress=False)
    assert seen and set(seen) == {False}
    assert not (tmp_path / "run" / LOCK).exists()  # released and removed at the end


def test_run_directory_holds_config_metrics_curve_and_best_model(trained_run):
    run_dir, result = trained_run
    for name in ("config.yaml", "config.json", "weights.safetensors", "metrics.csv", "learning_curve.png",
                 "checkpoints/last.ckpt"):
        assert (run_dir / name).exists(), name
    rows = read_csv(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    best = max(rows, key=lambda r: float(r["val_pearson"]))
    info = json.loads((run_dir / "config.json").read_text())
    assert info["best"]["epoch"] == int(best["epoch"]) == result["best"]["epoch"]
    # Learning happened: with ~400 validation rows a chance correlation has sd ~0.05.
    assert float(best["val_pearson"]) > 0.2
    assert not (run_dir / "weights.pt").exists()  # safetensors only: tensors, no pickle
    state = read_weights(run_dir)
    assert set(state) == set(Proformer(ModelConfig.from_dict(info["model"])).state_dict())


def test_valid_file_is_prepared_like_the_training_set_and_used(lenti_dataset, tmp_path, capsys, one_thread):
    """A headed TSV (its columns in another order) is prepared with the training set's columns,
    trim and length into RUN/valid_data, which config.yaml names; every row of it is validated.
    --resume with the same file keeps that dataset. Old code: no --valid option (status 2, not 0)."""
    source = lenti_table(tmp_path / "valid.tsv", 37, seed=5, columns=("fold", "mean_value", "seq_id", "seq"))
    run_dir = tmp_path / "run"
    status = cli_status("train", "--out", run_dir, "--valid", source, "--no-progress", *settings(lenti_dataset, epochs=1))
    err = capsys.readouterr().err
    assert status == 0, err
    kept = run_dir / "valid_data"
    meta, train_meta = (json.loads((d / "meta.json").read_text()) for d in (kept, lenti_dataset))
    assert meta["transforms"] == train_meta["transforms"] == {"head": TRIM[0], "tail": TRIM[1], "length": LENGTH - 3}
    assert (meta["table"]["seq_col"], meta["table"]["target_cols"]) == ("seq", ["mean_value"])
    assert meta["rows_kept"] == 37
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["valid"] == str(kept)
    info = json.loads((run_dir / "config.json").read_text())
    assert info["data"]["n_valid"] == 37 and info["data"]["split"] is None
    assert info["data"]["valid"] == str(kept.resolve()) and info["data"]["n_train"] == 300
    assert f"validation data: {source} prepared as {lenti_dataset} was" in err and "37 rows" in err
    assert not list(run_dir.glob(".valid_data*"))  # no staging left
    # --resume with the same file validates on the same prepared rows (not prepared again).
    status = cli_status("train", "--out", run_dir, "--valid", source, "--resume", "--no-progress",
                 *settings(lenti_dataset, epochs=2))
    err = capsys.readouterr().err
    assert status == 0, err
    assert json.loads((kept / "meta.json").read_text())["created"] == meta["created"]
    assert "prepared from" in err and "when the run started" in err


def test_valid_dir_is_used_as_it_is(lenti_dataset, tmp_path, capsys, one_thread):
    """Old code: no --valid option (status 2, not 0)."""
    prepare(lenti_table(tmp_path / "valid.tsv", 41, seed=6), tmp_path / "valid", trim=TRIM, progress=False)
    run_dir = tmp_path / "run"
    status = cli_status("train", "--out", run_dir, "--valid", tmp_path / "valid", "--no-progress",
                 *settings(lenti_dataset, epochs=1))
    assert status == 0, capsys.readouterr().err
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["valid"] == str(tmp_path / "valid")
    assert json.loads((run_dir / "config.json").read_text())["data"]["n_valid"] == 41
    assert not (run_dir / "valid_data").exists()


def test_a_valid_file_without_the_training_columns_is_refused_before_anything_is_written(lenti_dataset, tmp_path,
                                                                                          capsys):
    """Old code: no --valid option (argparse's "unrecognized arguments", not this message)."""
    source = tmp_path / "other.tsv"
    source.write_text("name\tsequence\tscore\n" + "".join(f"r{i}\t{'ACGT' * 6}\t{i / 10}\n" for i in range(20)))
    run_dir = tmp_path / "run"
    status = cli_status("train", "--out", run_dir, "--valid", source, "--no-progress", *settings(lenti_dataset, epochs=1))
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert f"validation file {source}, read as {lenti_dataset} was" in err and "'seq'" in err, err
    assert not run_dir.exists()
