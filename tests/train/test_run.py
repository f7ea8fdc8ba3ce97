"""Tests of :mod:`proformer.train.run`."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from helpers import (
    LENGTH,
    NAMES,
    TINY_MODEL,
    as_overrides,
    cli_status,
    make_dataset,
    planted_table,
    random_dna_training_ideas,
    read_csv,
    read_predictions,
    settings,
    tiny_config_hardening_train,
    tiny_config_train,
    two_target_table,
)
from helpers import weight_distance as distance

import proformer
from proformer.cli import build_parser, main
from proformer.config import apply_overrides, load_run_config
from proformer.data.dataset import (
    Dataset,
    with_rc_rows,
)
from proformer.data.prepare import prepare
from proformer.data.splits import split_indices
from proformer.data.synthetic import simulate_library, write_tsv
from proformer.io.run import read_weights
from proformer.predict import predict
from proformer.sequence import DREAM_HEAD, DREAM_TAIL
from proformer.train import run as run_module
from proformer.train import train
from proformer.train.module import lr_factor
from proformer.train.run import resolve_shape

SETTINGS = {"dim": 16, "epochs": 1, "batch_size": 64, "accelerator": "cpu", "lr": 1e-3, "dropout": 0.1, "mask_ratio": 0.05}


class Batches(L.Callback):
    """The ids of every training and validation batch, by epoch."""

    def __init__(self):
        self.train: dict[int, list[int]] = {}
        self.valid: dict[int, list[int]] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.train.setdefault(trainer.current_epoch, []).extend(batch["rows"].tolist())

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.valid.setdefault(trainer.current_epoch, []).extend(batch["rows"].tolist())


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path, one_thread):
    """Both runs see the same global batches and the same masks (keyed by seed, epoch and row);
    what differs is the dropout draws on each process and the mask-filling normaliser, which is
    per process (masked count + 1). Tolerance: after one epoch (8 steps), the two-process weights
    are within 5 % of how far a different seed ends up, which is where unrelated runs land."""
    write_tsv(simulate_library(512, seed=3), tmp_path / "lib.tsv")
    prepare(tmp_path / "lib.tsv", tmp_path / "ds", progress=False)
    overrides = [f"{k}={v}" for k, v in SETTINGS.items()] + [f"data.path={tmp_path / 'ds'}"]

    # Lightning's DDP launcher re-runs the command line in each process, as on a GPU machine.
    command = [sys.executable, "-m", "proformer.cli", "train", "--preset", "grid", "--out", str(tmp_path / "two"),
               "--no-progress"]
    # TensorBoard too: the loggers get each epoch's row from rank 0 only.
    command += [f"--set={o}" for o in overrides + ["devices=2", "train.logger=csv,tensorboard"]]
    # Started first: the one-process runs train here while it imports (one core each).
    ddp = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        train(load_run_config(preset="grid", overrides=overrides + ["devices=1"]), tmp_path / "one", progress=False)
        train(load_run_config(preset="grid", overrides=overrides + ["devices=1", "seed=1"]), tmp_path / "seed1",
              progress=False)
        stdout, stderr = ddp.communicate(timeout=600)
    finally:
        if ddp.poll() is None:
            ddp.kill()
            ddp.communicate()
    assert ddp.returncode == 0, stderr[-3000:]
    assert "Starting with 2 processes" in stderr + stdout

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


def test_ema_and_rc_rows_are_run_settings_of_the_cli(tmp_path, capsys):
    """`proformer train --set data.rc_rows=true --set train.ema=0.999` parses, reaches the run
    config (and so config.yaml); a bad value stops the command naming the key and the range."""
    args = build_parser().parse_args(["train", "--out", str(tmp_path / "run"), "--set", "data.rc_rows=true",
                                      "--set", "train.ema=0.999"])
    config = load_run_config(None, "grid", args.overrides)
    assert config.data.rc_rows is True and config.train.ema == 0.999
    assert config.to_dict()["train"]["ema"] == 0.999 and config.to_dict()["data"]["rc_rows"] is True
    assert apply_overrides(config, ["ema=0"]).train.ema == 0.0  # the bare key is train's
    assert main(["train", "--out", str(tmp_path / "run"), "--set", "train.ema=1"]) == 2
    error = capsys.readouterr().err
    assert "train.ema=1.0" in error and "(0, 1)" in error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_nonfinite_or_huge_targets_are_refused_naming_dataset_and_row(small_planted_dataset, tmp_path, value):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(small_planted_dataset, copy)
    targets = np.load(copy / "targets.npy")
    targets[7, 0] = value
    np.save(copy / "targets.npy", targets)
    with pytest.raises(ValueError, match=rf"{copy}: row 7 .*target expression = "):
        train(tiny_config_hardening_train(copy), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_run_whose_every_validation_pearson_is_nan_writes_no_model_and_fails(small_planted_dataset, tmp_path, monkeypatch,
                                                                                one_thread):
    import torch

    import proformer.train.module as module

    monkeypatch.setattr(module, "predict_batch", lambda model, codes, *args: torch.zeros(len(codes), 1))
    with pytest.raises(RuntimeError, match=r"every validation epoch \(2\) gave a NaN Pearson"):
        train(tiny_config_hardening_train(small_planted_dataset, epochs=2), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "weights.safetensors").exists() and not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("overrides, message", [
    (["data.head=200"], r"data.head=200 \+ data.tail=0 .* every sequence would be empty"),
    (["data.head=12", "data.tail=12"], r"data.head=12 \+ data.tail=12 .*longest row .* has 24 nt"),
    (["kmer=30"], r"model.kmer=30 is longer than .* \(24 nt"),
    (["data.head=10", "data.tail=8", "kmer=7"], r"model.kmer=7 is longer than .* \(6 nt"),
])
def test_options_that_empty_every_sequence_or_outgrow_it_are_refused(small_planted_dataset, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_config_hardening_train(small_planted_dataset, *overrides), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_dataset_without_targets_says_how_to_prepare_one_with_them(tmp_path):
    """The old advice (set n_targets=0) was then refused: the message now says what training needs."""
    from proformer.config import load_run_config
    from proformer.data.prepare import prepare
    from proformer.train.run import train

    fasta = tmp_path / "plain.fa"
    fasta.write_text("".join(f">s{i}\n{'ACGT'[i % 4] * 10}{'ACGTACGTAC'[: 1 + i % 9]}\n" for i in range(40)))
    prepare(fasta, tmp_path / "data", progress=False)
    config = load_run_config(preset="grid", overrides=[f"data.path={tmp_path / 'data'}", "length=19"])
    with pytest.raises(ValueError, match=r"has no targets .* proformer prepare TABLE\.tsv --seq-col"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("rc_rows", [False, True])
def test_a_run_trains_on_twice_the_rows_and_schedules_twice_the_steps(rc_dataset, tmp_path, monkeypatch, one_thread,
                                                                       rc_rows):
    """Every id of the doubled epoch is trained on, validation is not doubled, the epoch has twice
    the optimizer steps, and the warmup + cosine schedule counts them (its lr after epoch 1 of 2
    is the schedule's at step S of 2S, S the doubled steps per epoch)."""
    batches, make_trainer = Batches(), run_module._trainer

    def recording(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.callbacks.append(batches)
        return trainer

    monkeypatch.setattr(run_module, "_trainer", recording)
    settings = {**TINY_MODEL, "data.split": "hash:0.8", "data.rc_rows": rc_rows, "data.shift": 2,
                "data.singleton_flag": True, "batch_size": 32, "epochs": 2, "lr": 3e-3}
    config = load_run_config(preset="grid", overrides=[f"data.path={rc_dataset}", *as_overrides(settings)])
    result = train(config, tmp_path / "run", progress=False)
    dataset = Dataset(rc_dataset)
    n, (train_rows, valid_rows) = len(dataset), split_indices(dataset, "hash:0.8")
    assert result["n_train"] == len(train_rows)  # sequences, not rows of an epoch
    ids = with_rc_rows(train_rows, n) if rc_rows else train_rows
    steps = math.ceil(len(ids) / 32)
    assert steps == (2 if rc_rows else 1) * math.ceil(len(train_rows) / 32)
    for epoch in (0, 1):
        assert set(batches.train[epoch]) == set(ids.tolist()) and len(batches.train[epoch]) == 32 * steps
        assert sorted(batches.valid[epoch]) == sorted(valid_rows.tolist())
    metrics = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in metrics] == [steps, 2 * steps]
    # The scheduler has taken `steps` steps; the lr of the next is warmup_cosine's at step S of 2S
    # (one epoch of warmup), which a schedule of the undoubled epoch would have put at 0.
    assert float(metrics[0]["lr"]) == pytest.approx(3e-3 * lr_factor("warmup_cosine", steps, steps, 2 * steps, 16))
    assert float(metrics[0]["lr"]) > 2e-3


def test_mismatched_length_is_a_clear_error(planted_dataset, tmp_path):
    """An explicit model.length shorter than the rows is refused with fixes that work (a preset's
    own length is taken from the data now: tests/test_train_shapes.py). Every row has LENGTH nt,
    so preparing with the shorter length would drop them all: that is not suggested."""
    config = load_run_config(preset="grid", overrides=[f"data.path={planted_dataset}", f"length={LENGTH - 4}"])
    with pytest.raises(ValueError, match=f"set length={LENGTH}") as caught:
        train(config, tmp_path / "run", progress=False)
    assert "leave length unset" in str(caught.value) and "--length" not in str(caught.value)


def test_given_validation_set_bf16_and_early_stopping(planted_dataset, tmp_path, one_thread):
    """A separate validation dataset replaces the split; bf16-mixed runs on CPU; a patience of 1
    with a learning rate that cannot improve stops after two epochs."""
    from proformer.data.prepare import prepare as prepare_dataset

    valid_source = planted_table(tmp_path / "valid.tsv", n=300, seed=9)
    prepare_dataset(valid_source, tmp_path / "valid", trim=(0, 0), length=LENGTH, progress=False)
    config = tiny_config_train(planted_dataset, epochs=6, early_stopping=1, precision="bf16", schedule="constant", lr=1e-9)
    from proformer.config import apply_overrides

    config = apply_overrides(config, [f"data.valid={tmp_path / 'valid'}"])
    result = train(config, tmp_path / "run", progress=False)
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["data"]["n_valid"] == 300 and info["data"]["n_train"] == 2000 and info["data"]["split"] is None
    assert result["epochs_run"] < 6


def test_compile_wraps_the_training_loss_and_the_run_saves_the_eager_weight_names(small_planted_dataset, tmp_path,
                                                                                   monkeypatch, one_thread):
    """train.compile=true hands the model's loss method to torch.compile (here a recorder that
    returns it as it is: Inductor itself is the slow test below) and trains through what it
    returns; the saved weights have the names of a run without it."""
    compiled_functions = []

    def recording_compile(function, **kwargs):
        compiled_functions.append(function)
        return function

    monkeypatch.setattr(torch, "compile", recording_compile)
    names = {}
    for name, changes in {"eager": {}, "compiled": {"compile": True}}.items():
        train(tiny_config_hardening_train(small_planted_dataset, **changes), tmp_path / name, progress=False)
        names[name] = set(read_weights(tmp_path / name))
    [function] = compiled_functions  # the compiled run only
    assert function.__name__ == "loss" and isinstance(function.__self__, proformer.model.Proformer)
    assert names["compiled"] == names["eager"]


@pytest.mark.slow
def test_compiled_training_loss_trains_like_the_eager_one(planted_dataset, tmp_path, monkeypatch):
    """train.compile=true compiles the loss (Inductor): the run saves the same weight names and,
    from the same seed, ends where the eager run ends up to float reordering: within 5 % of how
    far a run with another seed lands (one epoch, 25 steps, dropout off, keyed masks).

    Marked slow: Inductor's compile takes 5 s even with a warm cache (15-20 s cold), whatever the
    model's size. `pytest -m slow` runs it; benchmarks/gpu_check.py's compile step trains the same
    compiled loss (ProformerModule with train.compile=true, through proformer.bench) on a GPU."""
    compiled_functions, real_compile = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, **kw: compiled_functions.append(f) or real_compile(f, **kw))
    runs = {"eager": {}, "compiled": {"compile": True}, "seed1": {"seed": 1}}
    results, weights = {}, {}
    for name, changes in runs.items():
        results[name] = train(tiny_config_train(planted_dataset, epochs=1, **changes), tmp_path / name, progress=False)
        weights[name] = read_weights(tmp_path / name)
    assert len(compiled_functions) == 1  # the compiled run only
    assert set(weights["eager"]) == set(weights["compiled"])
    assert distance(weights["eager"], weights["compiled"]) < 0.05 * distance(weights["eager"], weights["seed1"])
    assert abs(results["eager"]["best"]["val_pearson"] - results["compiled"]["best"]["val_pearson"]) < 0.01


def test_lightning_prints_no_device_banner(lenti_dataset, tmp_path, capsys, one_thread):
    """The memory line names the device instead, and the last epoch line says the run ended. Old
    code: Lightning logged "GPU available: False, used: False", "TPU available: ..." and
    "`Trainer.fit` stopped: `max_epochs=1` reached." (the assertion on ``records.messages`` fails)."""
    records = Records()
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(records)
    try:
        assert cli_status("train", "--out", tmp_path / "run", "--no-progress", *settings(lenti_dataset, epochs=1)) == 0
        logging.getLogger("lightning.pytorch.utilities.rank_zero").warning("a line to act on")
    finally:
        logger.removeHandler(records)
    dropped = r"(GPU|TPU|HPU) available|LOCAL_RANK|`Trainer.fit` stopped"
    assert not [m for m in records.messages if re.match(dropped, m)], records.messages
    assert "a line to act on" in records.messages  # the handler sees what Lightning's filter lets through
    [memory] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("memory: ")]
    assert re.search(r"; training on (cpu|cuda:\d+ \(.+\))", memory), memory


def test_a_230_nt_two_target_dataset_trains_with_the_shape_taken_from_the_data(starr_run):
    run_dir, result, err = starr_run
    info = json.loads((run_dir / "config.json").read_text())
    assert info["model"]["length"] == 230 and info["model"]["n_targets"] == 2
    assert info["layout"]["length"] == 230 and info["target"]["names"] == NAMES
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())  # the resolved config
    assert saved["model"]["length"] == 230 and saved["model"]["n_targets"] == 2
    assert (result["length"], result["n_targets"], result["target_names"]) == (230, 2, NAMES)
    # One line says what was taken from the data.
    [note] = [line for line in err.splitlines() if line.startswith("model shape from the data")]
    assert "length=230 (its longest row after trimming 0 + 0 nt)" in note and f"n_targets=2 ({', '.join(NAMES)})" in note


def test_an_explicit_length_shorter_than_the_rows_is_refused_naming_fixes_that_work(tmp_path):
    prepare(two_target_table(tmp_path / "t.tsv", n=60, lengths=(150, 230), seed=1), tmp_path / "data",
            seq_col="sequence", target_cols=NAMES, progress=False)
    dataset = Dataset(tmp_path / "data")
    longest = int(dataset.lengths.max())
    shorter = int((dataset.lengths > 200).sum())
    assert 0 < shorter < len(dataset) and longest > 200
    model = load_run_config(preset="grid", overrides=["length=200"]).model
    with pytest.raises(ValueError, match=rf"set --set length={longest}") as caught:
        resolve_shape(dataset, model, dataset.layout())
    message = str(caught.value)
    assert "leave length unset" in message
    # Preparing with --length 200 keeps some rows here, so it is offered, with what it drops.
    assert f"prepare the data again with --length 200, which drops the {shorter} of {len(dataset)} rows" in message
    # A longer length than the rows pads more; n_targets (not set) is the data's.
    model, layout, note = resolve_shape(dataset, load_run_config(preset="grid", overrides=["length=240"]).model,
                                        dataset.layout())
    assert (model.length, model.n_targets, layout.length) == (240, 2, 240)
    assert note.endswith(f"): n_targets=2 ({', '.join(NAMES)})")  # the length was not the data's


def test_an_explicit_target_count_other_than_the_data_is_refused(starr):
    dataset = Dataset(starr)
    model = load_run_config(preset="grid", overrides=["n_targets=1"]).model
    with pytest.raises(ValueError, match=r"2 target column\(s\).*model.n_targets=1; leave n_targets unset .*"
                                         r"--set n_targets=2"):
        resolve_shape(dataset, model, dataset.layout())
    soft_bins = load_run_config(preset="grid", overrides=["loss=soft_bins"]).model
    with pytest.raises(ValueError, match=r"has 2 target column.*soft_bins"):
        resolve_shape(dataset, soft_bins, dataset.layout())


def test_all_options_train_save_and_predict_together(dream_data, tmp_path):
    overrides = [f"data.path={dream_data}", "dim=16", "heads=2", "readout=4", "epochs=2", "batch_size=64",
                 "loss=soft_bins", "data.singleton_flag=true", "data.rc_average=true", "data.pad=plasmid",
                 "data.shift=5", "train.optimizer=lion", "train.lr=3e-4", "train.weight_decay=0.1",
                 "train.schedule=one_cycle"]
    result = train(load_run_config(preset="grid", overrides=overrides), tmp_path / "run", progress=False)
    assert np.isfinite(result["best"]["val_pearson"])
    loaded = proformer.load(tmp_path / "run", "cpu")
    model, info = loaded.model, loaded.info
    assert model.config.singleton_flag and model.config.loss == "soft_bins"
    assert info.layout.pad == "plasmid" and info.target.standardized is False
    (tmp_path / "in.txt").write_text("".join(DREAM_HEAD + random_dna_training_ideas(80) + DREAM_TAIL + "\n" for _ in range(7)))
    predict(tmp_path / "run", tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)
    values = read_predictions(tmp_path / "out.tsv")
    assert len(values) == 7 and all(0 <= v <= 17 for v in values)


def test_auto_holds_out_500_rows_between_2500_and_10000_rows(tmp_path, capsys, one_thread):
    """Old code: the auto preset's 95/5 split validated 2,600 rows on 130."""
    data = make_dataset(tmp_path, n=2_600)
    capsys.readouterr()
    status = cli_status("train", "--data", data, "--out", tmp_path / "run", "--no-progress", "--set", f"length={LENGTH}",
                        *(f"--set={o}" for o in as_overrides({**TINY_MODEL, "epochs": 1})))
    assert status == 0, capsys.readouterr().err
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["data"]["n_valid"] == 500 and info["data"]["n_train"] == 2_100
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["early_stopping"] == 5
