"""Tests of :mod:`proformer.experiments.study`: sweeps as Optuna studies, shared by workers.

The multi-worker scenario starts ``proformer sweep`` processes on one tiny 4-cell grid, against
the default SQLite file and against a real PostgreSQL server that the session starts and stops
itself (Debian's postgresql package; skipped where initdb/pg_ctl are absent, failed under
CI=true): two workers share the grid, one is SIGKILLed mid-cell, a third started after the kill
joins, and the killed cell is failed by Optuna's heartbeat check and finished, from its
checkpoint, by another worker; no other cell is trained twice.
"""

import glob
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import LENGTH_SWEEP, OLD, _disk_full, _intact

from proformer.experiments import run_sweep, sweep_report
from proformer.experiments.study import (
    describe,
    enqueue,
    open_study,
    taken,
    work,
    write_results,
)

TINY_SET = [f"length={LENGTH_SWEEP}", "dim=8", "heads=1", "blocks=1", "kmer=3", "dropout=0", "train.batch_size=64",
            "data.split=hash:0.8", "train.lr=3e-3", "train.accelerator=cpu"]
CELLS = ["blocks1-readoutpool", "blocks1-readout2", "blocks2-readoutpool", "blocks2-readout2"]
HEARTBEAT = 1  # seconds: a killed worker's cell is stale 4 s after its last heartbeat
EPOCHS = 3  # a cell takes about a second: room to kill a worker between its first checkpoint and its last epoch


def _grid(path: Path) -> Path:
    """A 2 x 2 grid of models that train an epoch in a fraction of a second."""
    path.write_text(textwrap.dedent(f"""\
        name: tiny
        preset: grid
        set: [{", ".join(TINY_SET)}]
        rows: [[blocks=1], [blocks=2]]
        columns: [[readout=pool], [readout=2]]
        """))
    return path


def _missing(reason: str):
    """Skip with ``reason``; under CI=true, where .ci/run installs PostgreSQL, fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must provide it (.ci/run installs Debian's postgresql package)")
    pytest.skip(reason)


def _postgres_tool(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server on a free localhost port for the test session; yields its URL."""
    initdb, pg_ctl = _postgres_tool("initdb"), _postgres_tool("pg_ctl")
    if not (initdb and pg_ctl):
        _missing("PostgreSQL's initdb and pg_ctl were not found (on PATH or in /usr/lib/postgresql/*/bin)")
    if importlib.util.find_spec("psycopg") is None:
        _missing("psycopg is not installed (pip install 'proformer[postgres]')")
    # PostgreSQL refuses to run as root: then the server runs as the postgres user, in a folder it owns.
    as_user = []
    root = Path(tempfile.mkdtemp(prefix="proformer-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root, and there is no postgres user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options, "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request):
    """None (the default SQLite file OUT/study.db) or the session's PostgreSQL server's URL."""
    return request.getfixturevalue("postgres") if request.param == "postgres" else None


@pytest.fixture
def processes():
    """A list to put the test's processes in: any still running at its end (a failed test) are killed."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _worker(grid, data, out, storage, log: Path) -> subprocess.Popen:
    """``proformer sweep`` in a process of its own, one torch thread, stderr to ``log``."""
    argv = ["sweep", "--grid", str(grid), "--data", str(data), "--out", str(out), "--epochs", str(EPOCHS),
            "--heartbeat", str(HEARTBEAT), "--no-progress"] + (["--storage", storage] if storage else [])
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, "-m", "proformer.cli", *argv], stdout=subprocess.DEVNULL, stderr=handle,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})


def _trained(err: str) -> list[str]:
    """The cells a worker started training, from the ``[k/N] CELL: training`` lines of its stderr."""
    return [line.split("] ")[1].split(":")[0] for line in err.splitlines() if line.startswith("[") and ": training (" in line]


def _trials(out, storage) -> dict[str, list]:
    """Each cell's trials, oldest first, as (state, pid of the worker that ran it); without the
    PRUNED copies of a cell that two workers starting together both queued."""
    cells: dict[str, list] = {}
    for trial in open_study(out, storage, create=False).get_trials():
        if "cell" in trial.user_attrs and trial.state.name != "PRUNED":
            worker = trial.user_attrs.get("worker", "")
            cells.setdefault(trial.user_attrs["cell"], []).append((trial.state.name, worker.rpartition(":")[2]))
    return cells


def test_workers_share_a_grid_and_finish_the_cell_of_a_killed_one(tiny_data_sweep, tmp_path, storage, processes,
                                                                   capsys, one_thread):
    """Workers A and B (``proformer sweep`` processes) start on a 4-cell grid; A is SIGKILLed
    mid-cell (an epoch checkpoint written); C (``run_sweep`` in this process) starts after the
    kill. Every cell ends done and trained once, except A's: failed by the heartbeat check, then
    finished from its checkpoint by B or C."""
    grid, out = _grid(tmp_path / "grid.yaml"), tmp_path / tmp_path.name  # a study name of its own
    logs = {name: tmp_path / f"{name}.log" for name in "AB"}
    a, b = (_worker(grid, tiny_data_sweep, out, storage, logs[name]) for name in "AB")
    processes += [a, b]
    deadline = time.time() + 120
    while time.time() < deadline and a.poll() is None:
        started = _trained(logs["A"].read_text())
        if started and (out / "cells" / started[-1] / "checkpoints" / "last.ckpt").exists():
            break
        time.sleep(0.02)
    assert a.poll() is None, logs["A"].read_text()[-3000:]
    a.send_signal(signal.SIGKILL)
    a.wait()
    killed = _trained(logs["A"].read_text())[-1]
    # Running until its heartbeat is stale (a WAITING copy may be B's: both queued the grid).
    assert ("RUNNING", str(a.pid)) in _trials(out, storage)[killed]

    capsys.readouterr()
    rows = run_sweep(grid, tiny_data_sweep, out, epochs=EPOCHS, progress=False, storage=storage, heartbeat=HEARTBEAT)
    by_c = _trained(capsys.readouterr().err)
    assert [row["status"] for row in rows] == ["done"] * 4  # C ends once no cell waits or runs: every worker's rows
    # A worker started on the finished study trains nothing, and the report reads the study.
    run_sweep(grid, tiny_data_sweep, out, epochs=EPOCHS, progress=False, storage=storage, heartbeat=HEARTBEAT)
    assert ": training" not in capsys.readouterr().err
    text = sweep_report(out, storage=storage)
    assert "finished: 4 of 4 runs" in text and "| blocks | AvgPool | H=2 |" in text
    assert b.wait(timeout=120) == 0, logs["B"].read_text()[-3000:]
    trained = Counter(_trained(logs["A"].read_text()) + _trained(logs["B"].read_text()) + by_c)
    assert trained == {cell: 2 if cell == killed else 1 for cell in CELLS}
    trials = _trials(out, storage)
    assert trials[killed][0] == ("FAIL", str(a.pid)) and len(trials[killed]) == 2
    assert trials[killed][1] in (("COMPLETE", str(b.pid)), ("COMPLETE", str(os.getpid())))
    assert all([state for state, _ in trials[cell]] == ["COMPLETE"] for cell in CELLS if cell != killed)
    # Resumed from A's checkpoint: the time A spent before it is counted.
    assert json.loads((out / "cells" / killed / "sweep_cell.json").read_text())["prior_seconds"] > 0
    assert all((out / "cells" / cell / "weights.safetensors").exists() for cell in CELLS)


def test_cells_queued_twice_are_trained_once(tmp_path):
    """Two workers starting together may both queue a cell: its first trial trains, the copy is skipped."""
    import optuna

    (tmp_path / "twice").mkdir()
    study = open_study(tmp_path / "twice")
    units = [{"cell": cell, "fold": 0} for cell in CELLS]
    study.enqueue_trial({}, user_attrs=units[0])  # what another worker queued a moment before
    enqueue(study, units)
    for unit in units[:2]:
        study.enqueue_trial({}, user_attrs=unit)  # ... and two copies after
    trained = []

    def objective(trial):
        if taken(study, trial):
            raise optuna.TrialPruned()
        trained.append(trial.user_attrs["cell"])
        return 1.0

    work(study, objective, (), heartbeat=None)
    assert sorted(trained) == sorted(CELLS)
    enqueue(study, units)  # finished cells are not queued again
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,))


def test_a_waiting_worker_takes_a_dead_workers_cell_queued_again_after_it_failed(tmp_path, monkeypatch):
    """Optuna fails a dead worker's trial, then queues it again: a waiting worker that looks in
    between finds no cell waiting or running, and must look once more before it ends."""
    import types

    import optuna

    from proformer.experiments import study as study_module

    (tmp_path / "dead").mkdir()
    study = open_study(tmp_path / "dead")
    dead = study.ask()  # the running trial of a worker that died
    dead.set_user_attr("cell", "c")
    dead.set_user_attr("fold", 0)
    steps = []

    def fail_stale_trials(study):  # another worker, in its two steps
        if not steps:
            study.tell(dead, state=optuna.trial.TrialState.FAIL)
        elif len(steps) == 1:
            study.enqueue_trial({}, user_attrs={"cell": "c", "fold": 0})
        steps.append(len(steps))

    monkeypatch.setattr(optuna.storages, "fail_stale_trials", fail_stale_trials)
    monkeypatch.setattr(study_module, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    trained = []
    work(study, lambda trial: trained.append(trial.user_attrs["cell"]) or 1.0, (), heartbeat=1)
    assert trained == ["c"]


_POPPER = """
import json, os, sys, time, types
from pathlib import Path
import proformer
# Only the study module: proformer.experiments' __init__ would import the grids and with them torch.
package = types.ModuleType("proformer.experiments")
package.__path__ = [os.path.join(os.path.dirname(proformer.__file__), "experiments")]
sys.modules["proformer.experiments"] = package
from proformer.experiments.study import open_study, work
study = open_study(sys.argv[1])
# Both processes start taking trials together, however long each took to start.
(Path(sys.argv[1]) / f"ready-{os.getpid()}").touch()
while len(list(Path(sys.argv[1]).glob("ready-*"))) < 2:
    time.sleep(0.001)
taken = []


def objective(trial):
    # A trial without a cell is one Optuna made when another process took the last waiting one.
    taken.extend([trial.user_attrs["cell"]] if "cell" in trial.user_attrs else [])
    return 1.0


work(study, objective, (), None)
print(json.dumps(taken))
"""


def test_two_processes_never_take_the_same_waiting_trial_from_sqlite(tmp_path):
    """pysqlite left Optuna's pop of a waiting trial non-atomic (Optuna issue #4002): the study
    opens every SQLite transaction BEGIN IMMEDIATE, so a queue of 100 is split without overlap.
    (With the fix taken out, this test failed in 6 runs of 6; with a queue of 60, in 7 of 11.)"""
    (tmp_path / "race").mkdir()
    study = open_study(tmp_path / "race")
    for number in range(100):
        study.enqueue_trial({}, user_attrs={"cell": f"c{number}", "fold": 0})
    command = [sys.executable, "-c", _POPPER, str(tmp_path / "race")]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    # (Without BEGIN IMMEDIATE both pop one trial, and the second to finish it gets UpdateFinishedTrialError.)
    assert [process.returncode for process in processes] == [0, 0], "\n".join(err[-2000:] for _, err in outputs)
    taken = [json.loads(out) for out, _ in outputs]
    assert all(taken), "one process took every trial: no race was run"
    assert sorted(taken[0] + taken[1]) == sorted(f"c{number}" for number in range(100))


def test_journal_file_storage_and_the_report_find_the_study(tiny_data_sweep, tmp_path, one_thread):
    grid, out, journal = _grid(tmp_path / "grid.yaml"), tmp_path / "journal", str(tmp_path / "shared" / "study.log")
    (tmp_path / "shared").mkdir()
    rows = run_sweep(grid, tiny_data_sweep, out, epochs=1, progress=False, storage=journal)
    assert [row["status"] for row in rows] == ["done"] * 4 and not (out / "study.db").exists()
    assert "finished: 4 of 4 runs" in sweep_report(out, storage=journal)
    with pytest.raises(FileNotFoundError, match=r"study\.db does not exist: .* is not a sweep"):
        sweep_report(out)  # the default storage holds no study
    with pytest.raises(ValueError, match=r"this sweep was started with epochs=1, now epochs=2"):
        run_sweep(grid, tiny_data_sweep, out, epochs=2, progress=False, storage=journal)


def test_storage_urls_are_shown_without_their_password(tmp_path):
    assert describe(tmp_path / "yeast", "postgresql://me:secret@db.example:5432/sweeps") == \
        "study yeast in postgresql://me:***@db.example:5432/sweeps"
    assert describe(tmp_path / "yeast", None) == str(tmp_path / "yeast" / "study.db")


def test_failed_results_csv_write_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "results.csv").write_bytes(OLD)
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError):
        write_results(tmp_path, [{"cell": "a", "fold": 0}], ["cell", "fold"])
    _intact(tmp_path / "results.csv")
