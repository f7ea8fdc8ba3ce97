"""The one lock design: a :class:`filelock.FileLock`, taken without waiting, removed on release.

Train's ``RUN/.train.lock`` and prepare's ``OUT.lock`` are both :func:`exclusive`. The operating
system frees the lock when its holder ends, however it ends, so a lock file left by a killed
process blocks nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["exclusive"]


@contextlib.contextmanager
def exclusive(paths: Sequence[Path], refused: Callable[[Path], Exception],
              unwritable: Callable[[OSError], Exception] | None = None) -> Iterator[Path]:
    """Hold a lock for the block; raise ``refused(path)`` at once when another process holds it.

    ``paths`` are where the lock may live, in order of preference: one whose folder cannot be
    written (``PermissionError``) gives way to the next. Any other ``OSError`` while taking the
    lock is raised as ``unwritable(error)`` (as itself without it); errors of the block itself
    pass through untouched. Yields the lock's path.

    The file is removed at the end while still held, so a finished holder leaves none behind: a
    process that opened it just before takes no lock on the removed name (filelock refuses a
    lock on a file with no name left) and is refused as if the lock were held.
    """
    for index, path in enumerate(paths):
        lock = None
        try:
            lock = FileLock(path, timeout=0)
            lock.acquire()
            held = path.stat()
            break
        except Timeout:
            raise refused(path) from None
        except OSError as error:
            if lock is not None and lock.is_locked:
                lock.release()
            if isinstance(error, PermissionError) and index + 1 < len(paths):
                continue
            if unwritable is None:
                raise
            raise unwritable(error) from None
    try:
        yield path
    finally:
        try:
            if os.path.samestat(path.stat(), held):
                path.unlink()
        except OSError:
            pass
        finally:
            lock.release()
