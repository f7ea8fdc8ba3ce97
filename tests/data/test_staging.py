"""Tests of :mod:`proformer.data.staging`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import _dream_input, _staging

from proformer.data.prepare import OutputLocked, prepare
from proformer.io.dataset import read_meta

# A test run started in the background (``pytest &`` in a non-interactive shell) hands its children
# SIGINT ignored, and Python then never raises KeyboardInterrupt: the child restores the default.
_SLOW_PREPARE = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import proformer.data.prepare as p
real = p._process
def slow(*args, **kwargs):
    real(*args, **kwargs)
    print("staged", flush=True)
    time.sleep(120)
p._process = slow
p.prepare(sys.argv[1], sys.argv[2], progress=False)
"""


def _slow_prepare(source: Path, out: Path) -> subprocess.Popen:
    """A prepare into ``out`` that has staged its first rows and sleeps (holding the lock)."""
    child = subprocess.Popen([sys.executable, "-c", _SLOW_PREPARE, str(source), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if child.stdout.readline().strip() != "staged":
        child.kill()
        raise AssertionError(f"the slow prepare did not start: {child.communicate()[1]}")
    return child


def test_prepare_removes_the_staging_folders_of_killed_runs_only(tmp_path):
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    beside = tmp_path / ".ds.prepare-abc12345"  # a killed run's, beside the dataset
    inside = out / ".ds.prepare-k3j4h5g6"  # one from a run whose output's parent was not writable
    other = tmp_path / ".other.prepare-zzz99999"  # a run into another output: not this run's to judge
    lookalike = tmp_path / ".ds.prepare-x.prepare-abc12345"  # a staging folder of the output "ds.prepare-x"
    for folder in (beside, inside, other, lookalike):
        folder.mkdir()
        (folder / "codes.npy").write_bytes(b"x" * 1000)
    prepare(_dream_input(tmp_path / "b.txt", 4, 2.0), out, progress=False)
    assert not beside.exists() and not inside.exists()
    assert other.exists() and lookalike.exists()
    assert read_meta(out)["rows_kept"] == 4
    assert _staging(out) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_prepare_stopped_by_a_signal_removes_its_staging_folder(tmp_path, signum):
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    child = _slow_prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out)
    try:
        assert _staging(out), "the run stages its dataset in a .ds.prepare-* folder"
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode != 0
    assert _staging(out) == []
    assert read_meta(out)["rows_kept"] == 3  # the old dataset is untouched


def test_two_prepares_into_one_out_the_second_is_refused_at_once_naming_the_lock(tmp_path, capsys):
    from proformer.cli import main

    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    second = _dream_input(tmp_path / "c.txt", 7, 3.0)
    child = _slow_prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out)
    try:
        staged = _staging(out)
        assert len(staged) == 1
        lock = tmp_path / "ds.lock"
        started = time.perf_counter()
        with pytest.raises(OutputLocked, match=rf"^{out} is being prepared by another run, which holds the lock "
                                               rf"{lock}; wait for it to finish, or prepare into another --out$"):
            prepare(second, out, progress=False)
        assert time.perf_counter() - started < 5  # refused at once, not after waiting
        assert main(["prepare", str(second), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{lock}" in err[0] and f"{out} is being prepared" in err[0], err
        # The second run wrote nothing: one staging folder (the first run's), the dataset untouched.
        assert _staging(out) == staged and staged[0].is_dir()
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert child.poll() is None  # the first run goes on
    finally:
        child.terminate()
        child.wait(timeout=60)
    # Its holder gone, the lock is free: the next run prepares.
    assert prepare(second, out, progress=False)["rows_kept"] == 7
    assert _staging(out) == []


def test_a_staging_folder_of_a_killed_prepare_is_removed_by_the_next_one(tmp_path):
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    child = _slow_prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out)
    staged = _staging(out)
    child.kill()  # SIGKILL: no handler runs, the staging folder stays; the system frees the lock
    child.wait(timeout=60)
    assert len(staged) == 1 and staged[0].is_dir() and (tmp_path / "ds.lock").exists()
    assert read_meta(out)["rows_kept"] == 3
    assert prepare(_dream_input(tmp_path / "c.txt", 4, 3.0), out, progress=False)["rows_kept"] == 4
    assert not staged[0].exists() and _staging(out) == []


def test_an_output_whose_folder_is_not_writable_holds_its_lock_and_staging_inside(tmp_path, monkeypatch):
    """Root writes anywhere, so the unwritable parent is simulated: creating files beside the
    output is refused; prepare then locks and stages inside the (writable) output, and removes
    the lock file when it ends."""
    import tempfile

    import filelock

    import proformer.io.lock

    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    assert not (tmp_path / "ds.lock").exists()  # a finished prepare leaves no lock file behind
    real_lock, real_mkdtemp = filelock.FileLock, tempfile.mkdtemp

    def lock(path, *args, **kwargs):
        if Path(path).parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_lock(path, *args, **kwargs)

    def mkdtemp(*args, dir=None, **kwargs):
        if Path(dir) == tmp_path:
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(proformer.io.lock, "FileLock", lock)
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    assert prepare(_dream_input(tmp_path / "b.txt", 4, 2.0), out, progress=False)["rows_kept"] == 4
    assert not (tmp_path / "ds.lock").exists() and not (out / ".prepare.lock").exists()  # taken inside, removed at the end
    assert _staging(out) == []
    held = real_lock(out / ".prepare.lock", timeout=0)
    held.acquire()
    try:
        with pytest.raises(OutputLocked, match=rf"holds the lock {out / '.prepare.lock'}"):
            prepare(_dream_input(tmp_path / "c.txt", 5, 3.0), out, progress=False)
    finally:
        held.release()
