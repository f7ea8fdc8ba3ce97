"""Fixtures shared by the test modules (plain helper functions are in helpers.py)."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import torch_threads

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _require(path: Path, what: str) -> Path:
    """Skip when the project's read-only ../shared data is absent (a user's fresh clone);
    fail under CI=true, where it is always present."""
    if not path.exists():
        reason = f"{what} not found at {path} (expected the project's shared/ folder beside the repository)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must provide it.")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    _require(SHARED / "data", "shared data directory")
    return SHARED


@pytest.fixture(scope="session")
def dream_dir() -> Path:
    """The DREAM 2022 folder: public_leaderboard/, test_subsets/, peer_predictions/, ..."""
    path = SHARED / "data" / "dream2022"
    _require(path / "public_leaderboard" / "ground.json", "DREAM 2022 data")
    return path


@pytest.fixture
def one_thread():
    """One torch thread for the test (see helpers.torch_threads: tiny models train faster so)."""
    with torch_threads(1):
        yield


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder on a read-only file system (a tmpfs mounted ro), where even root cannot write."""
    path = tmp_path / "ro"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({done.stderr.decode().strip()[:80]})")
    yield path
    subprocess.run(["umount", str(path)], check=False)


@pytest.fixture
def unreadable(monkeypatch):
    """``unreadable(path)``: from then on, opening ``path`` from Python raises PermissionError.

    Root reads files whatever their mode, so ``chmod 000`` cannot make an unreadable file in
    this container; this raises what ``open`` raises for a non-root user (errno 13, the path).
    """
    import builtins
    import io

    real_open, blocked = builtins.open, set()

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) in blocked:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    return lambda path: blocked.add(os.path.abspath(os.fspath(path)))


@pytest.fixture(autouse=True)
def lightning_logs_to_this_tests_stderr():
    """Point Lightning's console handler at the stderr of the test about to run.

    Lightning adds a StreamHandler bound to whatever ``sys.stderr`` was when it was first imported;
    when that was a finished test's captured stream (closed by then), every later Lightning log
    line ends in a logging traceback on stderr, and tests that read stderr fail by test order.
    """
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stderr  # not setStream(): it flushes the old, maybe closed, stream
    yield
