"""Tests of :mod:`proformer.train.stop`."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import pytest
from helpers import (
    LENGTH,
    LOCK,
    TRAIN_1_EPOCH,
    as_overrides,
    cli_status,
    epoch_lines,
    read_csv,
    settings,
)

from proformer.cli import main


class LightningLines(logging.Handler):
    """``with LightningLines() as lines:`` every line Lightning logs in the block (after its
    filters: what would reach stderr), in ``lines.messages``."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("lightning.pytorch").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("lightning.pytorch").removeHandler(self)


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler for the test, even where the runner ignores SIGINT (a shell's
    background job), so that a SIGINT reaches train as Ctrl-C in a terminal does."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _command(lenti_dataset, run_dir, epochs):
    return [sys.executable, "-m", "proformer.cli", "train", "--out", str(run_dir), "--no-progress",
            *settings(lenti_dataset, batch_size=16, epochs=epochs)]


def _stopped_by(signums, lenti_dataset, tmp_path, epochs):
    """CLI runs, one per signal of ``signums`` (``{name: signum}``) in ``tmp_path / name``, started
    together (one thread each, so they share two cores) and each sent its signal once its first
    epoch's checkpoint is written: ``{name: (status, stderr)}``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes, logs = {}, {}
    for name in signums:
        logs[name] = open(tmp_path / f"{name}.stderr", "w+")  # a file, not a pipe: nothing blocks on a full pipe
        # As a terminal's foreground job, even where this runner ignores SIGINT (a shell's background job).
        processes[name] = subprocess.Popen(_command(lenti_dataset, tmp_path / name, epochs), stdout=subprocess.DEVNULL,
                                           stderr=logs[name], text=True, env=env,
                                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        waiting, deadline = dict(signums), time.time() + 180
        while waiting and time.time() < deadline:
            for name in list(waiting):
                if processes[name].poll() is not None:
                    break
                if (tmp_path / name / "checkpoints" / "last.ckpt").exists():
                    processes[name].send_signal(waiting.pop(name))
            else:
                time.sleep(0.05)
                continue
            break
        assert not waiting, f"{sorted(waiting)}: the run ended before it could be stopped; make it longer"
        ends = {}
        for name, process in processes.items():
            process.wait(timeout=180)
            logs[name].seek(0)
            ends[name] = process.returncode, logs[name].read()
        return ends
    finally:
        for name, process in processes.items():
            if process.poll() is None:
                process.kill()
                process.wait()
            logs[name].close()


def test_sigterm_stops_the_run_saying_how_to_resume_with_a_nonzero_status(small_planted_dataset, tmp_path, monkeypatch,
                                                                         capsys, one_thread):
    from proformer.train.module import ProformerModule

    real = ProformerModule.objective

    def objective(self, batch):
        if self.current_epoch == 1 and not getattr(self, "_signalled", False):
            self._signalled = True
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler only notes it
        return real(self, batch)

    monkeypatch.setattr(ProformerModule, "objective", objective)
    run_dir = tmp_path / "run"
    args = [f"--set={o}" for o in [f"data.path={small_planted_dataset}", f"length={LENGTH}", *as_overrides(TRAIN_1_EPOCH), "epochs=3"]]
    status = main(["train", "--out", str(run_dir), "--no-progress", *args])
    err = capsys.readouterr().err
    assert status == 1  # a failure, not a usage error (2)
    assert "stopped by SIGTERM in epoch 2" in err and f"proformer train --out {run_dir} --resume" in err
    assert not (run_dir / LOCK).exists()
    assert (run_dir / "checkpoints" / "last.ckpt").exists()


def test_sigterm_while_the_data_are_read_stops_with_a_message_and_restores_the_handler(small_planted_dataset, tmp_path,
                                                                                       monkeypatch, capsys):
    """Before trainer.fit, Python's default SIGTERM handler would end the process silently."""
    from proformer.train import run

    real = run.Dataset

    def dataset_then_sigterm(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "Dataset", dataset_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    run_dir = tmp_path / "run"
    args = [f"--set={o}" for o in [f"data.path={small_planted_dataset}", f"length={LENGTH}", *as_overrides(TRAIN_1_EPOCH)]]
    status = main(["train", "--out", str(run_dir), "--no-progress", *args])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert "stopped by SIGTERM before its first step" in err and "start the run again" in err
    assert not run_dir.exists()
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_stops_a_run_as_sigterm_does_and_resume_finishes_without_warnings(lenti_dataset, tmp_path, capsys,
                                                                                   one_thread):
    """SIGINT and SIGTERM, each sent to a CLI process mid-run: exit status 1, the same one line
    with the resume hint, the checkpoint kept; no Lightning "graceful shutdown" text; then
    --resume (in this process) finishes the run without Lightning's checkpoint-folder warning or
    device banner. Old code: SIGINT printed "Detected KeyboardInterrupt, attempting graceful
    shutdown ..." and no hint (the assertion on ``hints["SIGINT"]`` fails)."""
    epochs = 8  # the signal lands in epoch 2 or 3: room to spare, and a short resume
    stopped = _stopped_by({"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}, lenti_dataset, tmp_path, epochs)
    ends, hints = {}, {}
    for name, (status, err) in stopped.items():
        run_dir = tmp_path / name
        ends[name] = status
        hints[name] = [line for line in err.splitlines() if f"proformer train --out {run_dir} --resume" in line]
        assert len(hints[name]) == 1, err
        assert "graceful shutdown" not in err and "KeyboardInterrupt" not in err and "Traceback" not in err, err
        assert "GPU available" not in err and "Received SIGTERM" not in err, err
        assert (run_dir / "checkpoints" / "last.ckpt").exists() and not (run_dir / ".train.lock").exists()
    assert ends == {"SIGINT": 1, "SIGTERM": 1}
    assert "stopped by SIGINT (Ctrl-C) in epoch" in hints["SIGINT"][0]
    assert "stopped by SIGTERM in epoch" in hints["SIGTERM"][0]
    # The same line but for the signal's name, the run directory and the epoch and step it stopped at.
    words = {"SIGINT": "SIGINT (Ctrl-C)", "SIGTERM": "SIGTERM"}
    same = {re.sub(r"\d+", "N", hints[name][0].replace(str(tmp_path / name), "RUN").replace(words[name], "SIGNAL"))
            for name in words}
    assert len(same) == 1, same

    run_dir = tmp_path / "SIGINT"
    before = read_csv(run_dir / "metrics.csv")
    assert 1 <= len(before) < epochs
    capsys.readouterr()
    lines = LightningLines()
    with warnings.catch_warnings(record=True) as caught, lines:
        warnings.simplefilter("always")
        status = cli_status("train", "--out", run_dir, "--no-progress", *settings(lenti_dataset, batch_size=16, epochs=epochs),
                            "--resume")
    err = capsys.readouterr().err
    assert status == 0, err[-3000:]
    warned = [str(w.message) for w in caught]
    assert not [m for m in warned + [err] if "exists and is not empty" in m], warned
    assert not [m for m in lines.messages + [err] if "GPU available" in m], lines.messages
    after = read_csv(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in after] == list(range(epochs)) and after[: len(before)] == before
    # The resumed epochs get their lines too.
    assert [line.split(":")[0] for line in epoch_lines(err)] == [f"epoch {k}/{epochs}"
                                                                 for k in range(len(before) + 1, epochs + 1)]


def test_ctrl_c_while_the_data_are_read_stops_with_a_message_and_restores_the_handler(
        lenti_dataset, tmp_path, monkeypatch, capsys, sigint_raises):
    """Old code: SIGINT before fit raised KeyboardInterrupt out of main (``pytest.fail`` below)."""
    from proformer.train import run

    real = run.Dataset

    def dataset_then_sigint(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "Dataset", dataset_then_sigint)
    before = signal.getsignal(signal.SIGINT)
    run_dir = tmp_path / "run"
    try:
        status = cli_status("train", "--out", run_dir, "--no-progress", *settings(lenti_dataset))
    except KeyboardInterrupt:
        pytest.fail("SIGINT while the data were read raised KeyboardInterrupt")
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert "stopped by SIGINT (Ctrl-C) before its first step" in err and "start the run again" in err
    assert not run_dir.exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_stops_at_once(lenti_dataset, tmp_path, monkeypatch, capsys, one_thread, sigint_raises):
    """The first SIGINT stops after the current step; a second one in that step stops it at once,
    with the same message. Old code: the first raised KeyboardInterrupt, which Lightning ended with
    sys.exit(1) ("graceful shutdown"): ``cli`` returns 1 but the message assertion fails."""
    from proformer.train.module import ProformerModule

    real = ProformerModule.objective
    reached = []

    def objective(self, batch):
        if self.current_epoch == 1 and not reached:
            reached.append(self.global_step)
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # raises here: the step never finishes
            reached.append("after")
        return real(self, batch)

    monkeypatch.setattr(ProformerModule, "objective", objective)
    run_dir = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)
    status = cli_status("train", "--out", run_dir, "--no-progress", *settings(lenti_dataset))
    err = capsys.readouterr().err
    assert status == 1
    assert "stopped by SIGINT (Ctrl-C) in epoch 2" in err and f"proformer train --out {run_dir} --resume" in err, err
    assert reached == [reached[0]]  # the step did not go on after the second signal
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and not (run_dir / ".train.lock").exists()
    assert signal.getsignal(signal.SIGINT) is before
