"""Tests of :mod:`proformer.train.resume`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
from helpers import (
    LENGTH,
    TRAIN_2_EPOCHS,
    cli_status,
    make_dataset,
    read_csv,
    settings,
    tiny_config_hardening_train,
)

from proformer.config import load_run_config
from proformer.train import train


def snapshot(directory):
    """Every file under ``directory`` with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_resume_refuses_another_dataset_or_model_shape_and_changes_nothing(small_planted_dataset, tmp_path, one_thread):
    run_dir = tmp_path / "run"
    train(tiny_config_hardening_train(small_planted_dataset), run_dir, progress=False)
    before = snapshot(run_dir)
    other = make_dataset(tmp_path, "other", seed=5)
    cases = [
        (tiny_config_hardening_train(small_planted_dataset, "dim=24"), r"Changed: model.dim: 16 -> 24"),
        (tiny_config_hardening_train(other), r"data.path: '.*planted' -> '.*other'"),
        (tiny_config_hardening_train(small_planted_dataset, "data.split=hash:0.5"), r"data.split: 'hash:0.8' -> 'hash:0.5'"),
    ]
    for config, message in cases:
        with pytest.raises(ValueError, match=message):
            train(config, run_dir, resume=True, progress=False)
        assert snapshot(run_dir) == before
    # The same directory prepared again from other rows: the path is the same, the data is not.
    import shutil

    moved = tmp_path / "same"
    shutil.copytree(small_planted_dataset, moved)
    run2 = tmp_path / "run2"
    train(tiny_config_hardening_train(moved), run2, progress=False)
    before = snapshot(run2)
    shutil.rmtree(moved)
    make_dataset(tmp_path, "same", n=280, seed=3)
    with pytest.raises(ValueError, match=r"data.path \(.*same\) rows: 300 -> 280.*sha256"):
        train(tiny_config_hardening_train(moved, epochs=2), run2, resume=True, progress=False)
    assert snapshot(run2) == before
    # Unchanged data and model: the run continues.
    result = train(tiny_config_hardening_train(small_planted_dataset, epochs=2), run_dir, resume=True, progress=False)
    assert result["epochs_run"] == 2
    assert load_run_config(str(run_dir / "config.yaml")).train.epochs == 2  # the resumed run's config


def test_a_run_stopped_and_resumed_ends_where_the_uninterrupted_run_ends(small_planted_dataset, tmp_path, monkeypatch, one_thread):
    """With dropout on (torch's random state), SIGTERM in epoch 2 + --resume gives the weights and
    metrics of the run that was never stopped."""

    from proformer.train.module import ProformerModule

    config = tiny_config_hardening_train(small_planted_dataset, "dropout=0.2", epochs=2)
    whole = train(config, tmp_path / "whole", progress=False)
    real = ProformerModule.objective

    def objective(self, batch):
        if self.current_epoch == 1 and self.global_step == self.steps_per_epoch + 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, batch)

    monkeypatch.setattr(ProformerModule, "objective", objective)
    with pytest.raises(RuntimeError, match="stopped by SIGTERM"):
        train(config, tmp_path / "parts", progress=False)
    monkeypatch.setattr(ProformerModule, "objective", real)
    resumed = train(config, tmp_path / "parts", resume=True, progress=False)
    assert resumed["best"] == whole["best"]
    # The last epoch's weights (weights.safetensors may hold the first epoch's, identical either way).
    a, b = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
            for name in ("whole", "parts"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    columns = ("epoch", "step", "train_loss", "val_mse", "val_pearson")
    rows = [[{k: r[k] for k in columns} for r in read_csv(tmp_path / name / "metrics.csv")] for name in ("whole", "parts")]
    assert rows[0] == rows[1]


def test_resume_reads_the_checkpoint_with_weights_only_so_a_crafted_one_runs_no_code(small_planted_dataset, tmp_path):
    import pickle

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(ValueError, match=r"last.ckpt cannot be read .*truncated or damaged") as caught:
        train(tiny_config_hardening_train(small_planted_dataset), run_dir, resume=True, progress=False)
    assert not marker.exists()
    assert "weights_only" not in str(caught.value)  # torch's advice to load it unsafely is not passed on
    assert sorted(p.name for p in run_dir.rglob("*")) == ["checkpoints", "last.ckpt"]


def test_killed_run_resumes_from_its_last_checkpoint(planted_dataset, tmp_path, capsys, one_thread):
    """SIGKILL a CLI run (its own process, one thread) after its first epoch; --resume (in this
    process) finishes without redoing that epoch."""
    run_dir = tmp_path / "run"
    epochs = 4
    args = [f"--set={k}={v}" for k, v in {"data.path": planted_dataset, "length": LENGTH, **TRAIN_2_EPOCHS,
                                          "epochs": epochs}.items()]
    command = [sys.executable, "-m", "proformer.cli", "train", "--out", str(run_dir), "--no-progress", *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics = run_dir / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2 and (run_dir / "checkpoints" / "last.ckpt").exists():
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed; make it longer"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = read_csv(metrics)
    assert 1 <= len(before) < epochs
    status = cli_status(*command[3:], "--resume")
    assert status == 0, capsys.readouterr().err[-2000:]
    after = read_csv(metrics)
    assert [int(r["epoch"]) for r in after] == list(range(epochs))
    assert after[: len(before)] == before  # finished epochs were not trained again
    assert int(after[-1]["step"]) == epochs * int(before[0]["step"])


def test_resume_warns_nothing_about_the_checkpoint_folder(lenti_dataset, tmp_path, capsys, one_thread):
    """Old code: --resume warned "Checkpoint directory .../checkpoints exists and is not empty"
    (the assertion on ``caught`` fails)."""
    run_dir = tmp_path / "run"
    assert cli_status("train", "--out", run_dir, "--no-progress", *settings(lenti_dataset, epochs=1)) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli_status("train", "--out", run_dir, "--resume", "--no-progress", *settings(lenti_dataset, epochs=2)) == 0
    assert not [w for w in caught if "exists and is not empty" in str(w.message)], [str(w.message) for w in caught]
