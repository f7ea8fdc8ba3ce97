"""Tests of :mod:`proformer.train.checkpoint`."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from helpers import (
    TINY_MODEL,
    as_overrides,
    one_line_run_directory,
    planted_tsv,
)

from proformer.config import load_run_config
from proformer.data.prepare import prepare
from proformer.io.run import (
    RunWriteError,
    read_weights,
)
from proformer.train import train
from proformer.train.checkpoint import AtomicCheckpointIO

LENGTH = 24


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    source = planted_tsv(root / "planted.tsv", 200, LENGTH, rule=lambda s: 2.0 * s.count("GAT"), noise=0.1, seed=0,
                         digits=5)
    prepare(source, root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


def test_a_failed_checkpoint_write_keeps_the_last_good_one_and_names_it(dataset_dir, tmp_path, monkeypatch, one_thread):
    """A full disk while epoch 2's checkpoint is saved: one error naming RUN/checkpoints/last.ckpt
    and the space needed and free, epoch 1's last.ckpt still there and loadable, no temporary
    left, and --resume continues from it. (Old code: Lightning's own error, ``[Errno 28] No space
    left on device`` naming no file, so the assertion on the path fails.)"""
    run_dir = tmp_path / "run"
    settings = [f"data.path={dataset_dir}", f"length={LENGTH}", "data.split=hash:0.8", "batch_size=64",
                "lr=3e-3", "epochs=2", *as_overrides(TINY_MODEL)]
    config = load_run_config(preset="grid", overrides=settings)
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OSError) as caught:
        train(config, run_dir, progress=False)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    message = one_line_run_directory(str(caught.value))
    assert str(checkpoint) in message, message
    assert "no space left" in message.lower() and "needs about" in message and f"free in {checkpoint.parent}" in message
    assert ".tmp" not in message and "--resume" in message
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(torch, "save", real_save)
    kept = torch.load(checkpoint, weights_only=True)
    assert kept["epoch"] == 0  # the first epoch's, whole
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.ckpt"]  # no temporary left
    assert read_weights(run_dir)  # the best model (epoch 1) is whole too
    resumed = train(config, run_dir, resume=True, progress=False)
    assert resumed["epochs_run"] == 2


def test_the_checkpoint_io_replaces_the_file_only_once_it_is_on_disk(tmp_path, monkeypatch):
    """A write that fails at fsync (the data did not reach the disk) leaves the previous file as it
    was and no temporary, and the error names the target. (Old code: no such plugin; Lightning's
    IO neither writes beside the target nor fsyncs.)"""
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO(tmp_path)
    io.save_checkpoint({"epoch": 0, "w": torch.ones(1000)}, path)
    before = path.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(RunWriteError) as caught:
        io.save_checkpoint({"epoch": 1, "w": torch.zeros(1000)}, path)
    monkeypatch.undo()
    message = one_line_run_directory(str(caught.value))
    assert message.startswith(f"{path}: cannot write the checkpoint (")
    assert "no space left" in message.lower() and "it needs about " in message
    assert f"free in {path.parent}" in message and f"--out {tmp_path} --resume" in message
    assert ".tmp" not in message
    assert path.read_bytes() == before and torch.load(path, weights_only=True)["epoch"] == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
