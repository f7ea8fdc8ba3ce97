"""What a training run says and how it ends (issue 26): one line per epoch with the time left,
whatever the progress setting; Ctrl-C (SIGINT) ends a run as SIGTERM does (the last checkpoint
kept, exit status 1, the resume hint, none of Lightning's shutdown text); no Lightning device
banner and no checkpoint-folder warning on --resume; ``train --valid FILE|DIR``."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import yaml
from helpers import TINY_MODEL, as_overrides, random_dna, read_csv

from proformer.cli import main
from proformer.data.prepare import prepare

LENGTH = 24
TRIM = (2, 1)  # not a table's default (0, 0): a validation file prepared with it was prepared like the training set
TINY_RUN = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 3, "lr": 3e-3}
HEADER = ("seq_id", "seq", "mean_value", "fold")  # lentiMPRA's columns
LEFT = re.compile(r"; (at most )?about (\d+(\.\d)? s|\d+ min( \d+ s)?|\d+ h( \d+ min)?) left$")


def lenti_table(path, n, seed, columns=HEADER):
    """A headed TSV like the lentiMPRA sample: id, sequence, a real-valued target, an integer fold."""
    rng = np.random.default_rng(seed)
    sequences = random_dna(rng, n, LENGTH)
    rows = []
    for i, sequence in enumerate(sequences):
        value = {"seq_id": f"s{seed}_{i}", "seq": sequence, "fold": str(i % 5),
                 "mean_value": f"{sequence.count('G') / LENGTH + rng.normal(0, 0.05):.4f}"}
        rows.append("\t".join(value[c] for c in columns))
    path.write_text("\t".join(columns) + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare(lenti_table(root / "train.tsv", 300, seed=0), root / "train", trim=TRIM, progress=False)
    return root / "train"


def settings(dataset_dir, **changes):
    return [f"--set={o}" for o in [f"data.path={dataset_dir}", *as_overrides({**TINY_RUN, **changes})]]


def cli(*argv):
    """``proformer ARGV`` in this process: its exit status (argparse's refusals included)."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return stop.code


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler for the test, even where the runner ignores SIGINT (a shell's
    background job), so that a SIGINT reaches train as Ctrl-C in a terminal does."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def epoch_lines(err):
    return [line for line in err.splitlines() if re.match(r"epoch \d+/\d+: ", line)]


# -- one line per epoch --------------------------------------------------------------------------


def test_every_epoch_prints_one_line_with_its_time_and_the_time_left_even_without_progress(
        dataset_dir, tmp_path, capsys, one_thread):
    """Old code: --no-progress printed no epoch line (``len(lines) == 3`` fails)."""
    status = cli("train", "--out", tmp_path / "run", "--no-progress", *settings(dataset_dir))
    err = capsys.readouterr().err
    assert status == 0, err
    lines = epoch_lines(err)
    assert len(lines) == 3, err
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    for line in lines:
        assert "train loss " in line and "Pearson " in line
        assert re.search(r"; \d+(\.\d)? s(;|$)", line), line  # the epoch's own time
    # The estimate from the first epoch on; none after the last (nothing is left).
    assert all(LEFT.search(line) and "at most" not in line for line in lines[:2]), lines
    assert "left" not in lines[2]
    assert "\r" not in err  # no bar in a log


def test_with_a_step_budget_and_early_stopping_the_estimate_is_of_the_planned_epochs_at_most(
        dataset_dir, tmp_path, capsys, one_thread):
    """train.steps sets the epochs the estimate counts; early stopping may end sooner: "at most".
    Old code: no epoch line with --no-progress (``lines`` is empty: ``lines[0]`` fails)."""
    status = cli("train", "--out", tmp_path / "run", "--no-progress",
                 *settings(dataset_dir, steps=8, epochs=50, early_stopping=10))
    err = capsys.readouterr().err
    assert status == 0, err
    planned = int(re.search(r"budget of 8 optimizer steps: (\d+) epoch", err).group(1))
    assert planned >= 2
    lines = epoch_lines(err)
    assert lines[0].startswith(f"epoch 1/{planned}: ") and "at most about" in lines[0], lines
    assert len(lines) == planned


# -- Lightning's text --------------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_lightning_prints_no_device_banner(dataset_dir, tmp_path, capsys, one_thread):
    """The memory line names the device instead. Old code: Lightning logged "GPU available: False,
    used: False" and "TPU available: ..." (the assertion on ``records.messages`` fails)."""
    records = Records()
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(records)
    try:
        assert cli("train", "--out", tmp_path / "run", "--no-progress", *settings(dataset_dir, epochs=1)) == 0
    finally:
        logger.removeHandler(records)
    assert not [m for m in records.messages if re.match(r"(GPU|TPU|HPU) available|LOCAL_RANK", m)], records.messages
    assert any("max_epochs=1" in m for m in records.messages)  # the handler saw Lightning's other lines
    [memory] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("memory: ")]
    assert re.search(r"; training on (cpu|cuda:\d+ \(.+\))", memory), memory


def test_resume_warns_nothing_about_the_checkpoint_folder(dataset_dir, tmp_path, capsys, one_thread):
    """Old code: --resume warned "Checkpoint directory .../checkpoints exists and is not empty"
    (the assertion on ``caught`` fails)."""
    run_dir = tmp_path / "run"
    assert cli("train", "--out", run_dir, "--no-progress", *settings(dataset_dir, epochs=1)) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli("train", "--out", run_dir, "--resume", "--no-progress", *settings(dataset_dir, epochs=2)) == 0
    assert not [w for w in caught if "exists and is not empty" in str(w.message)], [str(w.message) for w in caught]


# -- Ctrl-C ends a run as SIGTERM does ---------------------------------------------------------


def _command(dataset_dir, run_dir, epochs):
    return [sys.executable, "-m", "proformer.cli", "train", "--out", str(run_dir), "--no-progress",
            *settings(dataset_dir, batch_size=16, epochs=epochs)]


def _stopped_by(signum, dataset_dir, run_dir, epochs):
    """A CLI run sent ``signum`` once its first epoch's checkpoint is written: (status, stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # As a terminal's foreground job, even where this runner ignores SIGINT (a shell's background job).
    process = subprocess.Popen(_command(dataset_dir, run_dir, epochs), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None and not (run_dir / "checkpoints" / "last.ckpt").exists():
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be stopped; make it longer"
    process.send_signal(signum)
    _, err = process.communicate(timeout=180)
    return process.returncode, err


def test_ctrl_c_stops_a_run_as_sigterm_does_and_resume_finishes_without_warnings(dataset_dir, tmp_path):
    """SIGINT and SIGTERM: exit status 1, the same one line with the resume hint, the checkpoint
    kept; no Lightning "graceful shutdown" text; then --resume finishes the run without Lightning's
    checkpoint-folder warning or device banner. Old code: SIGINT printed "Detected
    KeyboardInterrupt, attempting graceful shutdown ..." and no hint (the assertion on
    ``hints["SIGINT"]`` fails)."""
    epochs = 8  # the signal lands in epoch 2 or 3: room to spare, and a short resume
    ends, hints = {}, {}
    for name in ("SIGINT", "SIGTERM"):
        run_dir = tmp_path / name
        status, err = _stopped_by(getattr(signal, name), dataset_dir, run_dir, epochs)
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
    done = subprocess.run(_command(dataset_dir, run_dir, epochs) + ["--resume"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exists and is not empty" not in done.stderr and "GPU available" not in done.stderr, done.stderr
    after = read_csv(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in after] == list(range(epochs)) and after[: len(before)] == before
    # The resumed epochs get their lines too.
    assert [line.split(":")[0] for line in epoch_lines(done.stderr)] == [f"epoch {k}/{epochs}"
                                                                         for k in range(len(before) + 1, epochs + 1)]


def test_ctrl_c_while_the_data_are_read_stops_with_a_message_and_restores_the_handler(
        dataset_dir, tmp_path, monkeypatch, capsys, sigint_raises):
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
        status = cli("train", "--out", run_dir, "--no-progress", *settings(dataset_dir))
    except KeyboardInterrupt:
        pytest.fail("SIGINT while the data were read raised KeyboardInterrupt")
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert "stopped by SIGINT (Ctrl-C) before its first step" in err and "start the run again" in err
    assert not run_dir.exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_stops_at_once(dataset_dir, tmp_path, monkeypatch, capsys, one_thread, sigint_raises):
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
    status = cli("train", "--out", run_dir, "--no-progress", *settings(dataset_dir))
    err = capsys.readouterr().err
    assert status == 1
    assert "stopped by SIGINT (Ctrl-C) in epoch 2" in err and f"proformer train --out {run_dir} --resume" in err, err
    assert reached == [reached[0]]  # the step did not go on after the second signal
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and not (run_dir / ".train.lock").exists()
    assert signal.getsignal(signal.SIGINT) is before


# -- train --valid FILE|DIR --------------------------------------------------------------------


def test_valid_file_is_prepared_like_the_training_set_and_used(dataset_dir, tmp_path, capsys, one_thread):
    """A headed TSV (its columns in another order) is prepared with the training set's columns,
    trim and length into RUN/valid_data, which config.yaml names; every row of it is validated.
    --resume with the same file keeps that dataset. Old code: no --valid option (status 2, not 0)."""
    source = lenti_table(tmp_path / "valid.tsv", 37, seed=5, columns=("fold", "mean_value", "seq_id", "seq"))
    run_dir = tmp_path / "run"
    status = cli("train", "--out", run_dir, "--valid", source, "--no-progress", *settings(dataset_dir, epochs=1))
    err = capsys.readouterr().err
    assert status == 0, err
    kept = run_dir / "valid_data"
    meta, train_meta = (json.loads((d / "meta.json").read_text()) for d in (kept, dataset_dir))
    assert meta["transforms"] == train_meta["transforms"] == {"head": TRIM[0], "tail": TRIM[1], "length": LENGTH - 3}
    assert (meta["table"]["seq_col"], meta["table"]["target_cols"]) == ("seq", ["mean_value"])
    assert meta["rows_kept"] == 37
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["valid"] == str(kept)
    info = json.loads((run_dir / "config.json").read_text())
    assert info["data"]["n_valid"] == 37 and info["data"]["split"] is None
    assert info["data"]["valid"] == str(kept.resolve()) and info["data"]["n_train"] == 300
    assert f"validation data: {source} prepared as {dataset_dir} was" in err and "37 rows" in err
    assert not list(run_dir.glob(".valid_data*"))  # no staging left
    # --resume with the same file validates on the same prepared rows (not prepared again).
    status = cli("train", "--out", run_dir, "--valid", source, "--resume", "--no-progress",
                 *settings(dataset_dir, epochs=2))
    err = capsys.readouterr().err
    assert status == 0, err
    assert json.loads((kept / "meta.json").read_text())["created"] == meta["created"]
    assert "prepared from" in err and "when the run started" in err


def test_valid_dir_is_used_as_it_is(dataset_dir, tmp_path, capsys, one_thread):
    """Old code: no --valid option (status 2, not 0)."""
    prepare(lenti_table(tmp_path / "valid.tsv", 41, seed=6), tmp_path / "valid", trim=TRIM, progress=False)
    run_dir = tmp_path / "run"
    status = cli("train", "--out", run_dir, "--valid", tmp_path / "valid", "--no-progress",
                 *settings(dataset_dir, epochs=1))
    assert status == 0, capsys.readouterr().err
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["valid"] == str(tmp_path / "valid")
    assert json.loads((run_dir / "config.json").read_text())["data"]["n_valid"] == 41
    assert not (run_dir / "valid_data").exists()


def test_a_valid_file_without_the_training_columns_is_refused_before_anything_is_written(dataset_dir, tmp_path,
                                                                                          capsys):
    """Old code: no --valid option (argparse's "unrecognized arguments", not this message)."""
    source = tmp_path / "other.tsv"
    source.write_text("name\tsequence\tscore\n" + "".join(f"r{i}\t{'ACGT' * 6}\t{i / 10}\n" for i in range(20)))
    run_dir = tmp_path / "run"
    status = cli("train", "--out", run_dir, "--valid", source, "--no-progress", *settings(dataset_dir, epochs=1))
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert f"validation file {source}, read as {dataset_dir} was" in err and "'seq'" in err, err
    assert not run_dir.exists()
