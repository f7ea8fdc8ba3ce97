"""Staging: where a prepare run writes before it publishes, and what a killed run left behind.

A run writes its dataset into a fresh ``.prepare-<pid>-<random>`` directory beside the output
(:func:`_make_staging`), which :func:`proformer.io.dataset.publish` swaps into place; SIGTERM and
SIGHUP are turned into an exception meanwhile so that the staging directory is removed
(:func:`_cleanup_on_signal`), and the next run removes what a killed one left
(:func:`_remove_stale_staging`). The names are private to :mod:`proformer.data.prepare`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from ..io.atomic import process_alive

__all__ = ["_OWN_STAGING", "_remove_stale_staging", "_make_staging", "_cleanup_on_signal"]


#: ``.prepare-<pid>-<random>``: a staging directory and the process that created it (also the
#: ``-old`` copy a directory swap leaves for a moment).
_STAGING = re.compile(r"\.prepare-(\d+)-[a-z0-9_]+(?:-old)?")
#: The staging directories of earlier versions, inside the dataset directory, without a pid.
_LEGACY_STAGING = re.compile(r"\.prepare-[a-z0-9_]{8}")
#: Staging directories of this process's runs in progress.
_OWN_STAGING: set[Path] = set()


def _remove_stale_staging(out: Path, began: float) -> list[Path]:
    """Remove the staging directories killed runs left beside or inside ``out``: those whose
    creating process is dead, and, inside ``out`` only, pid-less ones (earlier versions) last
    changed before this run began. Another run's staging directory, alive, is left alone.
    Returns what was removed."""
    removed = []
    for folder in dict.fromkeys([out.resolve().parent, out]):
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            match = _STAGING.fullmatch(entry.name)
            if match:
                pid = int(match.group(1))
                stale = entry not in _OWN_STAGING and (pid == os.getpid() or not process_alive(pid))
            elif folder == out and _LEGACY_STAGING.fullmatch(entry.name):
                try:
                    stale = entry.stat().st_mtime < began
                except OSError:
                    continue
            else:
                continue
            if stale and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def _make_staging(out: Path) -> Path:
    """A fresh staging directory beside ``out`` (so that publishing swaps the directory as a
    whole), or inside it where ``out``'s parent is not writable."""
    prefix = f".prepare-{os.getpid()}-"
    try:
        staged = Path(tempfile.mkdtemp(prefix=prefix, dir=out.resolve().parent))
    except OSError:
        staged = Path(tempfile.mkdtemp(prefix=prefix, dir=out))
    _OWN_STAGING.add(staged)
    return staged


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
