"""Tests of :mod:`proformer.io.lock`."""

from __future__ import annotations

import filelock
import pytest

import proformer.io.lock
from proformer.io.lock import exclusive


def test_a_held_lock_is_refused_at_once_and_a_finished_holder_leaves_no_file(tmp_path):
    path = tmp_path / "out.lock"
    other = filelock.FileLock(path, timeout=0)
    other.acquire()
    try:
        with pytest.raises(FileExistsError, match="held: out.lock"):
            with exclusive([path], lambda lock: FileExistsError(f"held: {lock.name}")):
                pass
    finally:
        other.release()
    with exclusive([path], lambda lock: FileExistsError(lock)) as held:
        assert held == path and path.exists()
    assert not path.exists()


def test_an_unwritable_place_gives_way_to_the_next_and_errors_of_the_block_pass_through(tmp_path, monkeypatch):
    first, second = tmp_path / "a" / "out.lock", tmp_path / "out.lock"
    real = filelock.FileLock

    def lock(path, *args, **kwargs):
        if path == first:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(proformer.io.lock, "FileLock", lock)
    with pytest.raises(PermissionError, match="from the block"):  # not taken for an unwritable place
        with exclusive([first, second], FileExistsError) as held:
            assert held == second
            raise PermissionError("from the block")
    assert not second.exists()
    with pytest.raises(RuntimeError, match="cannot write"):
        with exclusive([first], FileExistsError, unwritable=lambda error: RuntimeError(f"cannot write: {error}")):
            pass
