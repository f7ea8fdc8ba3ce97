"""Staging: where a prepare run writes before it publishes, and what a killed run left behind.

A run holds the output's lock, ``OUT.lock`` beside the output (:func:`_output_lock`,
:func:`proformer.io.lock.exclusive`), from start to end: a second run on the same output is
refused at once, naming the lock; the lock is freed by the system when its holder dies and
removed when the run ends. The run
writes its dataset into a fresh ``.OUT.prepare-<random>`` directory beside the output
(:func:`_make_staging`), which :func:`proformer.io.dataset.publish` swaps into place; SIGTERM
and SIGHUP are turned into an exception meanwhile so that the staging directory is removed
(:func:`_cleanup_on_signal`). Whoever holds the lock owns every staging directory of the output,
so those found on taking it were left by a killed run and are removed, and a publish a killed
run interrupted is undone (:func:`_remove_stale_staging`). The names are private to
:mod:`proformer.data.prepare`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..io.dataset import recover
from ..io.lock import exclusive

__all__ = ["OutputLocked", "_output_lock", "_remove_stale_staging", "_make_staging", "_cleanup_on_signal"]


class OutputLocked(FileExistsError):
    """Another ``proformer prepare`` is writing the same output."""


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.prepare-"


@contextlib.contextmanager
def _output_lock(out: Path) -> Iterator[Path]:
    """Hold ``OUT.lock`` beside the output (inside it where the parent is not writable) for the
    block (:func:`proformer.io.lock.exclusive`); raise :class:`OutputLocked` at once when another
    run holds it. Yields the lock's path."""
    target = out.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    places = [target.with_name(target.name + ".lock")] + ([target / ".prepare.lock"] if target.is_dir() else [])
    refused = lambda lock: OutputLocked(f"{out} is being prepared by another run, which holds the lock {lock}; "  # noqa: E731
                                        f"wait for it to finish, or prepare into another --out")
    with exclusive(places, refused) as path:
        yield path


def _remove_stale_staging(out: Path) -> tuple[list[Path], str | None]:
    """With the output's lock held: undo or finish a publish a killed run interrupted
    (:func:`proformer.io.dataset.recover`), then remove the staging directories beside or
    inside ``out`` (none of them can belong to a run in progress: that run would hold the lock).
    Returns what was removed and what :func:`~proformer.io.dataset.recover` did."""
    target = out.resolve()
    recovered = recover(target)
    staging = re.compile(re.escape(_staging_prefix(target)) + r"[a-z0-9_]{8}")
    removed = []
    for folder in dict.fromkeys([target.parent, target]):
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if staging.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed, recovered


def _make_staging(out: Path) -> Path:
    """A fresh staging directory beside ``out`` (so that publishing swaps the directory as a
    whole), or inside it where ``out``'s parent is not writable."""
    target = out.resolve()
    prefix = _staging_prefix(target)
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    except OSError:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=target))


@contextlib.contextmanager
def _cleanup_on_signal():
    """Turn SIGTERM and SIGHUP into an exception while preparing, so that the ``finally``
    clauses remove the staging directory (SIGINT already raises KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        try:
            current = signal.getsignal(number)
            if current in (signal.SIG_DFL, None):  # leave a handler someone else installed
                previous[number] = signal.signal(number, stop)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
