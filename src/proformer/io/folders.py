"""Folder outputs (``ism``, ``attribute``, ``evaluate --out-dir``): a folder holds the current
command's files only.

A command stages its files and publishes them together (:func:`output_folder`): the folder then
holds this run's files only, never a mix with an earlier run's, and a failure leaves the earlier
output as it was. The command clears the names it writes (``owned``: patterns such as
``logos/*.png``) and leaves files it never writes (a user's notes) alone. Each file inside follows
the output rule of :mod:`proformer.io.atomic`.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .atomic import broken_link, kind_name

__all__ = ["check_output_folder", "output_folder"]


def _folder(out: str | os.PathLike, flag: str, what: str) -> Path:
    """The real folder behind ``out`` (a link to a folder is followed); refuse a non-folder."""
    given = os.fspath(out)
    try:
        own = os.lstat(given)
    except (FileNotFoundError, NotADirectoryError):
        return Path(given)
    if stat.S_ISLNK(own.st_mode):
        try:
            status = os.stat(given)
        except OSError as error:
            raise broken_link(given, flag, error) from None
    else:
        status = own
    if not stat.S_ISDIR(status.st_mode):
        raise FileExistsError(f"{flag} {given} is a {kind_name(status.st_mode)}; {what}: choose a folder name")
    return Path(os.path.realpath(given))


def check_output_folder(out: str | os.PathLike, flag: str = "--out",
                        what: str = "this command writes a folder") -> None:
    """Check a folder output before any work starts, creating nothing: it is a folder (or a link
    to one) or a new path, and the place where :func:`output_folder` stages is writable."""
    folder = _folder(out, flag, what)
    place = folder
    while not place.exists():
        if place.parent == place:
            break
        place = place.parent
    if not place.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{place} is not a folder ({flag} {os.fspath(out)} cannot be made)",
                                 os.fspath(out))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".proformer-check.", dir=place))
    except OSError as error:
        raise type(error)(error.errno, f"cannot write in {place} ({error.strerror})", os.fspath(out)) from None


def _owned_by(relative: str, owned: Sequence[str]) -> int | None:
    """The index of the first pattern of ``owned`` that ``relative`` (a POSIX path) matches."""
    for index, pattern in enumerate(owned):
        if relative.count("/") == pattern.count("/") and fnmatch.fnmatchcase(relative, pattern):
            return index
    return None


def _files(root: Path) -> list[str]:
    """Every file under ``root`` as POSIX paths relative to it (folders are not listed)."""
    found = []
    for folder, directories, names in os.walk(root):
        base = Path(folder).relative_to(root)
        found += [(base / name).as_posix() for name in names]
        found += [(base / name).as_posix() for name in directories if os.path.islink(os.path.join(folder, name))]
    return found


def _old_files(folder: Path, owned: Sequence[str], skip: Sequence[Path]) -> list[str]:
    """The files in ``folder`` that match ``owned`` (an earlier run's output)."""
    old = []
    for pattern in owned:
        parent, _, leaf = pattern.rpartition("/")
        where = folder / parent if parent else folder
        if not where.is_dir() or where.is_symlink():
            continue
        for entry in sorted(where.iterdir()):
            if entry in skip or not fnmatch.fnmatchcase(entry.name, leaf):
                continue
            if entry.is_dir() and not entry.is_symlink():
                continue  # a folder with an owned file's name is not ours to remove
            relative = entry.relative_to(folder).as_posix()
            if relative not in old:
                old.append(relative)
    return old


@contextlib.contextmanager
def output_folder(out: str | os.PathLike, owned: Sequence[str], *, flag: str = "--out",
                  what: str = "this command writes a folder") -> Iterator[Path]:
    """``with output_folder(out, ["ism.npz", "logos/*.png"]) as staging:`` write the run's files
    into ``staging``; on success ``out`` holds them, and no earlier run's.

    ``owned`` names the files the command writes, as glob patterns relative to the folder (the
    main file first). Every file written into ``staging`` must match one. The rule a user can
    rely on: the command clears its own earlier files (the names it writes, such as
    ``logos/*.png`` or ``scatter_*.png``) and leaves every other file in the folder (a user's
    notes) alone.

    How: a new folder is staged beside ``out`` (a hidden ``.NAME.*.tmp``) and renamed into
    place whole. An existing folder (or the folder a link points to) gets a hidden staging
    folder inside it (one file system, so moves are renames; the current directory and a folder
    in a read-only parent work too); when the block finished, the earlier files matching
    ``owned`` are moved aside, the new ones moved in (the main file last) and the earlier ones
    deleted. Any failure in the block (a full disk included) removes the staging folder and
    leaves ``out`` exactly as it was; a failure while moving puts the earlier files back.
    Errors naming a staged file name the file in ``out`` instead.
    """
    folder = _folder(out, flag, what)
    new = not folder.exists()
    if new:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    else:
        staging = Path(tempfile.mkdtemp(prefix=".proformer-staging.", dir=folder))
    try:
        try:
            yield staging
        except OSError as error:
            raise _unstaged(error, staging, folder) from None
        written = _files(staging)
        strays = [name for name in written if _owned_by(name, owned) is None]
        if strays:
            raise RuntimeError(f"{folder}: the command wrote {strays[0]}, which is not among the files it owns "
                               f"({', '.join(owned)}); this is a bug")
        if new:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private
            try:
                os.rename(staging, folder)
                return
            except OSError:
                if not folder.is_dir():
                    raise
                # Made meanwhile (another run): fall back to moving the files into it.
        _move_in(staging, folder, written, owned)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unstaged(error: OSError, staging: Path, folder: Path) -> OSError:
    """``error`` with the staging folder's name replaced by the output folder's."""
    def swap(text):
        return text.replace(str(staging), str(folder)) if isinstance(text, str) else text

    filename = swap(os.fspath(error.filename)) if error.filename is not None else None
    strerror = swap(error.strerror)
    if isinstance(strerror, str) and strerror.endswith("; nothing was written"):
        strerror = strerror[: -len("; nothing was written")] + f"; {folder} is as it was"
    if filename == error.filename and strerror == error.strerror:
        return error
    renamed = type(error)(error.errno, strerror, filename) if error.errno is not None else OSError(strerror)
    renamed.__cause__ = error
    return renamed


def _move_in(staging: Path, folder: Path, written: list[str], owned: Sequence[str]) -> None:
    """Swap the staged files in: the earlier owned files aside, the new ones in (main file last)."""
    previous = Path(tempfile.mkdtemp(prefix=".proformer-previous.", dir=folder))
    old = _old_files(folder, owned, skip=[staging, previous])
    order = sorted(written, key=lambda name: (-_owned_by(name, owned), name))
    aside, placed, made = [], [], []
    try:
        for name in old:
            (previous / name).parent.mkdir(parents=True, exist_ok=True)
            os.rename(folder / name, previous / name)
            aside.append(name)
        for name in order:
            parent = (folder / name).parent
            if not parent.is_dir():
                parent.mkdir(parents=True)
                made.append(parent)
            os.replace(staging / name, folder / name)
            placed.append(name)
    except BaseException:
        for name in reversed(placed):
            with contextlib.suppress(OSError):
                os.rename(folder / name, staging / name)
        for name in reversed(made):
            with contextlib.suppress(OSError):
                name.rmdir()
        for name in reversed(aside):
            with contextlib.suppress(OSError):
                os.rename(previous / name, folder / name)
        raise
    finally:
        shutil.rmtree(previous, ignore_errors=True)
    for name in old:  # a subfolder of owned files (logos/) emptied by this run goes too
        parent = (folder / name).parent
        if parent != folder:
            with contextlib.suppress(OSError):
                parent.rmdir()
