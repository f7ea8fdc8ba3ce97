"""Training and its config under bad input and faults (issue 13): a run that failed never reports
success, refused options and a refused --resume change nothing, one run directory has one writer,
SIGTERM stops with a message and a non-zero status."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY_MODEL, as_overrides, planted_tsv, read_csv

from proformer.config import load_run_config
from proformer.data.prepare import prepare
from proformer.train import train

LENGTH = 24
LOCK = ".train.lock"  # proformer.train.rundir.LOCK
TINY_RUN = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 1, "lr": 3e-3}


def make_dataset(root, name="planted", n=300, seed=0):
    source = planted_tsv(root / f"{name}.tsv", n, LENGTH, rule=lambda s: 2.0 * s.count("GAT") + s.count("C") / LENGTH,
                         noise=0.1, seed=seed, digits=5)
    prepare(source, root / name, trim=(0, 0), length=LENGTH, progress=False)
    return root / name


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


def tiny_config(dataset_dir, *overrides, **train):
    settings = [f"data.path={dataset_dir}", f"length={LENGTH}", *as_overrides(TINY_RUN)]
    settings += [f"train.{k}={v}" for k, v in train.items()] + list(overrides)
    return load_run_config(preset="grid", overrides=settings)


def snapshot(directory):
    """Every file under ``directory`` with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- 1. non-finite values ------------------------------------------------------------------------


@pytest.mark.parametrize("override, key", [
    ("train.lr=inf", "lr"), ("lr=nan", "lr"), ("train.eps=0", "eps"), ("train.mask_loss_weight=nan", "mask_loss_weight"),
    ("mask_loss_weight=-1", "mask_loss_weight"), ("clip_value=-1", "clip_value"), ("clip_norm=0", "clip_norm"),
    ("max_time=-1", "max_time"), ("max_time=0", "max_time"), ("seed=-1", "seed"),
])
def test_config_refuses_out_of_range_training_values_naming_the_key(override, key):
    with pytest.raises(ValueError, match=rf"{key}=.*must be"):
        load_run_config(preset="grid", overrides=[override])


def test_a_nonfinite_loss_stops_training_naming_epoch_step_and_causes(dataset_dir, tmp_path, monkeypatch, one_thread):
    from proformer.train.module import ProformerModule

    real = ProformerModule.objective

    def objective(self, batch):
        loss, parts = real(self, batch)
        return (loss * float("nan") if self.global_step >= 2 else loss), parts

    monkeypatch.setattr(ProformerModule, "objective", objective)
    with pytest.raises(RuntimeError, match=r"loss became nan in epoch 1, at optimizer step 3.*learning rate") as caught:
        train(tiny_config(dataset_dir), tmp_path / "run", progress=False)
    assert "no model was written" in str(caught.value)
    assert not (tmp_path / "run" / "weights.safetensors").exists() and not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_nonfinite_or_huge_targets_are_refused_naming_dataset_and_row(dataset_dir, tmp_path, value):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(dataset_dir, copy)
    targets = np.load(copy / "targets.npy")
    targets[7, 0] = value
    np.save(copy / "targets.npy", targets)
    with pytest.raises(ValueError, match=rf"{copy}: row 7 .*target expression = "):
        train(tiny_config(copy), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_run_whose_every_validation_pearson_is_nan_writes_no_model_and_fails(dataset_dir, tmp_path, monkeypatch,
                                                                                one_thread):
    import torch

    import proformer.train.module as module

    monkeypatch.setattr(module, "predict_batch", lambda model, codes, *args: torch.zeros(len(codes), 1))
    with pytest.raises(RuntimeError, match=r"every validation epoch \(2\) gave a NaN Pearson"):
        train(tiny_config(dataset_dir, epochs=2), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "weights.safetensors").exists() and not (tmp_path / "run" / "config.json").exists()


# -- 2. options that leave nothing to train on -----------------------------------------------------


@pytest.mark.parametrize("overrides, message", [
    (["data.head=200"], r"data.head=200 \+ data.tail=0 .* every sequence would be empty"),
    (["data.head=12", "data.tail=12"], r"data.head=12 \+ data.tail=12 .*longest row .* has 24 nt"),
    (["kmer=30"], r"model.kmer=30 is longer than .* \(24 nt"),
    (["data.head=10", "data.tail=8", "kmer=7"], r"model.kmer=7 is longer than .* \(6 nt"),
])
def test_options_that_empty_every_sequence_or_outgrow_it_are_refused(dataset_dir, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_config(dataset_dir, *overrides), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# -- 3. resume ---------------------------------------------------------------------------------------


def test_resume_refuses_another_dataset_or_model_shape_and_changes_nothing(dataset_dir, tmp_path, one_thread):
    run_dir = tmp_path / "run"
    train(tiny_config(dataset_dir), run_dir, progress=False)
    before = snapshot(run_dir)
    other = make_dataset(tmp_path, "other", seed=5)
    cases = [
        (tiny_config(dataset_dir, "dim=24"), r"Changed: model.dim: 16 -> 24"),
        (tiny_config(other), r"data.path: '.*planted' -> '.*other'"),
        (tiny_config(dataset_dir, "data.split=hash:0.5"), r"data.split: 'hash:0.8' -> 'hash:0.5'"),
    ]
    for config, message in cases:
        with pytest.raises(ValueError, match=message):
            train(config, run_dir, resume=True, progress=False)
        assert snapshot(run_dir) == before
    # The same directory prepared again from other rows: the path is the same, the data is not.
    import shutil

    moved = tmp_path / "same"
    shutil.copytree(dataset_dir, moved)
    run2 = tmp_path / "run2"
    train(tiny_config(moved), run2, progress=False)
    before = snapshot(run2)
    shutil.rmtree(moved)
    make_dataset(tmp_path, "same", n=280, seed=3)
    with pytest.raises(ValueError, match=r"data.path \(.*same\) rows: 300 -> 280.*sha256"):
        train(tiny_config(moved, epochs=2), run2, resume=True, progress=False)
    assert snapshot(run2) == before
    # Unchanged data and model: the run continues.
    result = train(tiny_config(dataset_dir, epochs=2), run_dir, resume=True, progress=False)
    assert result["epochs_run"] == 2
    assert load_run_config(str(run_dir / "config.yaml")).train.epochs == 2  # the resumed run's config


# -- 4. one writer per run directory -----------------------------------------------------------------


def test_a_second_train_into_a_locked_run_directory_fails_at_once_and_a_stale_lock_is_taken_over(
        dataset_dir, tmp_path, one_thread):

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Another process holds the lock (as a running train does) until it is killed.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, filelock; lock = filelock.FileLock(sys.argv[1]); "
                               "lock.acquire(); print('held', flush=True); time.sleep(60)", str(run_dir / LOCK)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FileExistsError, match="being written by another proformer train") as caught:
            train(tiny_config(dataset_dir), run_dir, progress=False)
        assert str(run_dir) in str(caught.value) and "\n" not in str(caught.value)
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    # Its process is gone, so is its hold: the lock file left on disk blocks nothing.
    assert (run_dir / LOCK).exists()
    train(tiny_config(dataset_dir), run_dir, progress=False)
    assert (run_dir / "weights.safetensors").exists() and not (run_dir / LOCK).exists()


def test_a_lock_file_without_a_holder_does_not_block(dataset_dir, tmp_path, one_thread):
    """A lock file on disk from an old run (or one of the former PID files) that no process holds."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK).write_text(f"{os.getpid()}\n")  # even naming a live process
    train(tiny_config(dataset_dir), run_dir, progress=False)
    assert (run_dir / "weights.safetensors").exists() and not (run_dir / LOCK).exists()


def test_the_lock_is_held_while_training(dataset_dir, tmp_path, monkeypatch, one_thread):
    from proformer.train.module import ProformerModule

    seen = []
    real = ProformerModule.objective

    def objective(self, batch):
        seen.append(_lock_is_free(tmp_path / "run" / LOCK))
        return real(self, batch)

    monkeypatch.setattr(ProformerModule, "objective", objective)
    train(tiny_config(dataset_dir), tmp_path / "run", progress=False)
    assert seen and set(seen) == {False}
    assert not (tmp_path / "run" / LOCK).exists()  # released and removed at the end


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


# -- 5. SIGTERM ----------------------------------------------------------------------------------------


def test_sigterm_stops_the_run_saying_how_to_resume_with_a_nonzero_status(dataset_dir, tmp_path, monkeypatch,
                                                                         capsys, one_thread):
    from proformer.cli import main
    from proformer.train.module import ProformerModule

    real = ProformerModule.objective

    def objective(self, batch):
        if self.current_epoch == 1 and not getattr(self, "_signalled", False):
            self._signalled = True
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler only notes it
        return real(self, batch)

    monkeypatch.setattr(ProformerModule, "objective", objective)
    run_dir = tmp_path / "run"
    args = [f"--set={o}" for o in [f"data.path={dataset_dir}", f"length={LENGTH}", *as_overrides(TINY_RUN), "epochs=3"]]
    status = main(["train", "--out", str(run_dir), "--no-progress", *args])
    err = capsys.readouterr().err
    assert status == 1  # a failure, not a usage error (2)
    assert "stopped by SIGTERM in epoch 2" in err and f"proformer train --out {run_dir} --resume" in err
    assert not (run_dir / LOCK).exists()
    assert (run_dir / "checkpoints" / "last.ckpt").exists()


def test_sigterm_while_the_data_are_read_stops_with_a_message_and_restores_the_handler(dataset_dir, tmp_path,
                                                                                       monkeypatch, capsys):
    """Before trainer.fit, Python's default SIGTERM handler would end the process silently."""
    from proformer.cli import main
    from proformer.train import run

    real = run.Dataset

    def dataset_then_sigterm(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "Dataset", dataset_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    run_dir = tmp_path / "run"
    args = [f"--set={o}" for o in [f"data.path={dataset_dir}", f"length={LENGTH}", *as_overrides(TINY_RUN)]]
    status = main(["train", "--out", str(run_dir), "--no-progress", *args])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert "stopped by SIGTERM before its first step" in err and "start the run again" in err
    assert not run_dir.exists()
    assert signal.getsignal(signal.SIGTERM) is before


# -- 6. a resumed run is the uninterrupted one ---------------------------------------------------


def test_a_run_stopped_and_resumed_ends_where_the_uninterrupted_run_ends(dataset_dir, tmp_path, monkeypatch, one_thread):
    """With dropout on (torch's random state), SIGTERM in epoch 2 + --resume gives the weights and
    metrics of the run that was never stopped."""
    import torch

    from proformer.train.module import ProformerModule

    config = tiny_config(dataset_dir, "dropout=0.2", epochs=2)
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


def test_resume_reads_the_checkpoint_with_weights_only_so_a_crafted_one_runs_no_code(dataset_dir, tmp_path):
    import pickle

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(ValueError, match=r"last.ckpt cannot be read .*truncated or damaged") as caught:
        train(tiny_config(dataset_dir), run_dir, resume=True, progress=False)
    assert not marker.exists()
    assert "weights_only" not in str(caught.value)  # torch's advice to load it unsafely is not passed on
    assert sorted(p.name for p in run_dir.rglob("*")) == ["checkpoints", "last.ckpt"]


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
