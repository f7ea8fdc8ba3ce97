"""Atomic file output: write beside the target, rename into place on success.

The one home of the rule "nothing lost, nothing half-written": a temporary file is created in
the target's own directory (so the final :func:`os.replace` is a rename on one file system),
written, flushed and fsynced, and renamed over the target only when the writer finished. On any
exception, ``KeyboardInterrupt`` included, the temporary is removed and an existing target is
left exactly as it was; a killed process leaves at most a hidden ``.NAME.*.tmp`` file, never a
complete-looking target.

Use :func:`atomic_write` for a handle, :func:`atomic_path` for a writer that takes a path (an
exporter, ``np.save``, ``torch.save``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write", "check_output", "same_file"]


def _temporary(target: Path) -> tuple[int, Path]:
    if target.is_dir():
        raise IsADirectoryError(21, "is a directory (give a file name)", str(target))
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(2, f"the folder {directory} does not exist (create it first)", str(target))
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:  # name the target, not the temporary's random name
        raise type(error)(error.errno, f"cannot write in {directory} ({error.strerror})", str(target)) from None
    return fd, Path(name)


def _publish(temporary: Path, target: Path) -> None:
    try:
        mode = os.stat(target).st_mode & 0o7777  # keep an existing file's permissions
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(temporary, mode)
    os.replace(temporary, target)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """``with atomic_write(path) as handle:`` write ``handle``; ``path`` appears only on success.

    ``mode`` is ``"w"`` (text, ``encoding``/``newline`` as for :func:`open`) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r}: use 'w' or 'wb'")
    target = Path(path)
    fd, temporary = _temporary(target)
    try:
        if mode == "wb":
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """``with atomic_path(out) as temporary: writer(temporary)``: ``out`` appears only on success.

    For writers that take a path. ``suffix`` is appended to the temporary's name, for writers
    that look at the extension (``.onnx``, ``.npy``). The temporary exists (empty) when the
    block starts; a writer that replaces it is fine.
    """
    target = Path(path)
    fd, temporary = _temporary(target)
    os.close(fd)
    if suffix:
        named = temporary.with_name(temporary.name + suffix)
        os.replace(temporary, named)
        temporary = named
    try:
        yield temporary
        if not temporary.is_file():
            raise FileNotFoundError(f"{target}: the writer produced no file")
        _publish(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Do ``a`` and ``b`` name the same file (a link, ``..`` or another spelling included)?

    False when either does not exist.
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """Refuse an output path that is a directory or one of ``inputs`` (writing would destroy it),
    before any work starts."""
    if Path(out).is_dir():
        raise IsADirectoryError(21, "is a directory (--out takes a file name)", str(out))
    for source in inputs:
        if source is not None and Path(source).exists() and same_file(out, source):
            raise ValueError(f"--out {out} is the input file {source}: writing it would destroy the input; "
                             f"choose another output path")

