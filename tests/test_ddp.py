"""Distributed training through Lightning DDP: 2 CPU processes (gloo) against one process."""

import subprocess
import sys

import pytest
from helpers import read_csv
from helpers import weight_distance as distance

from proformer.config import load_run_config
from proformer.data.prepare import prepare
from proformer.data.synthetic import simulate_library, write_tsv
from proformer.io.run import read_weights
from proformer.train import train

SETTINGS = {"dim": 16, "epochs": 1, "batch_size": 64, "accelerator": "cpu", "lr": 1e-3, "dropout": 0.1, "mask_ratio": 0.05}


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    """Both runs see the same global batches and the same masks (keyed by seed, epoch and row);
    what differs is the dropout draws on each process and the mask-filling normaliser, which is
    per process (masked count + 1). Tolerance: after one epoch (8 steps), the two-process weights
    are within 5 % of how far a different seed ends up, which is where unrelated runs land."""
    write_tsv(simulate_library(512, seed=3), tmp_path / "lib.tsv")
    prepare(tmp_path / "lib.tsv", tmp_path / "ds", progress=False)
    overrides = [f"{k}={v}" for k, v in SETTINGS.items()] + [f"data.path={tmp_path / 'ds'}"]

    train(load_run_config(preset="grid", overrides=overrides + ["devices=1"]), tmp_path / "one", progress=False)
    train(load_run_config(preset="grid", overrides=overrides + ["devices=1", "seed=1"]), tmp_path / "seed1", progress=False)
    # Lightning's DDP launcher re-runs the command line in each process, as on a GPU machine.
    command = [sys.executable, "-m", "proformer.cli", "train", "--preset", "grid", "--out", str(tmp_path / "two"),
               "--no-progress"]
    # TensorBoard too: the loggers get each epoch's row from rank 0 only.
    command += [f"--set={o}" for o in overrides + ["devices=2", "train.logger=csv,tensorboard"]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting with 2 processes" in done.stderr + done.stdout

    weights = {name: read_weights(tmp_path / name) for name in ("one", "two", "seed1")}
    steps = [open(tmp_path / name / "metrics.csv").read().splitlines()[1].split(",")[1] for name in ("one", "two")]
    assert steps[0] == steps[1] == "8"  # 512 rows * 0.95 / 64 per global batch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert len(list((tmp_path / "two" / "tensorboard").glob("events.out.tfevents.*"))) == 1  # one writer
    events = EventAccumulator(str(tmp_path / "two" / "tensorboard"))
    events.Reload()
    row = read_csv(tmp_path / "two" / "metrics.csv")[0]
    [event] = events.Scalars("train_loss")
    assert event.step == 8 and event.value == pytest.approx(float(row["train_loss"]), rel=1e-6)
    assert distance(weights["one"], weights["two"]) < 0.05 * distance(weights["one"], weights["seed1"])
