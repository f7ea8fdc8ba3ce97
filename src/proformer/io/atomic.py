"""Output files and folders: the one output rule, and writes that never destroy what is there.

The rule, for every command that writes a file (:func:`output_target` decides, :func:`atomic_write`
and :func:`atomic_path` follow it):

* a **regular file or a new path** is written to a temporary file in the target's own folder (so
  the final :func:`os.replace` is a rename on one file system), flushed, fsynced and renamed over
  the target only when the writer finished. On any exception, ``KeyboardInterrupt`` included,
  the temporary is removed and an existing target is left exactly as it was; a killed process
  leaves at most a hidden ``.NAME.*.tmp`` file, never a complete-looking target;
* a **symbolic link** is followed and its **target** written that way: the link stays a link. A
  link to standard output or standard error (``/dev/stdout``, ``/proc/self/fd/1``) writes to it
  as ``-`` does. A link that leads nowhere (a loop, or a target that does not exist) is refused;
* a **character device** (``/dev/null``, a terminal), a **named pipe** (FIFO) or ``-`` (standard
  output) is written straight through: no temporary, no rename, never a regular file in its
  place. A writer that needs a path (:func:`atomic_path`) writes a temporary file in the system's
  temporary folder, whose bytes are then copied into the device or pipe;
* a **directory** where a file belongs is refused, naming the option (``--out``, ``--onnx``).

A write that fails for lack of space, a quota or an I/O error (``ENOSPC``, ``EDQUOT``, ``EFBIG``,
``EIO``, or numpy's "N requested and M written") becomes one :class:`OSError` naming the output
file (not the temporary), with how many bytes were written (of how many, when known) and, for a
file, the free space of its folder.

A command that writes a **folder** follows :mod:`proformer.io.folders`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..limits import size_text

__all__ = ["Output", "atomic_path", "atomic_write", "check_output", "output_target", "same_file"]

#: The errors of a write that ran out of room or failed on the device: reported naming the output.
WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
#: numpy's short write (``ndarray.tofile``): an OSError without errno.
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


@dataclass(frozen=True)
class Output:
    """Where an output goes (:func:`output_target`).

    Attributes
    ----------
    given : str
        The path as given (for messages).
    kind : str
        ``"file"`` (written beside ``path`` and renamed), ``"stream"`` (a pipe or character
        device, written straight through by opening ``path``), ``"stdout"`` or ``"stderr"``.
    path : Path or None
        ``file``: the file to replace (a symbolic link's target); ``stream``: the path to open;
        None for standard output and error.
    """

    given: str
    kind: str
    path: Path | None

    @property
    def streamed(self) -> bool:
        """Written straight through (no temporary, no rename)."""
        return self.kind != "file"

    @property
    def to_stdout(self) -> bool:
        return self.kind == "stdout"


def kind_name(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "named pipe"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return name
    return "special file"


def _standard_stream(status: os.stat_result) -> str | None:
    """``"stdout"``/``"stderr"`` when ``status`` is the file behind descriptor 1/2."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        with contextlib.suppress(OSError):
            if os.path.samestat(status, os.fstat(fd)):
                return name
    return None


def broken_link(given: str, flag: str, error: OSError) -> ValueError:
    if error.errno == errno.ELOOP:
        return ValueError(f"{flag} {given} is a symbolic link that leads back to itself (a loop of links): "
                          f"remove the link or give another path")
    with contextlib.suppress(OSError):
        points = os.readlink(given)
        return ValueError(f"{flag} {given} is a symbolic link to {points}, which does not exist: create it, "
                          f"remove the link or give another path")
    return ValueError(f"{flag} {given} is a symbolic link that cannot be followed ({error.strerror}): "
                      f"give another path")


def output_target(path: str | os.PathLike, flag: str = "--out") -> Output:
    """Where writing ``path`` goes under the output rule (see the module); refuse what it forbids.

    Raises
    ------
    IsADirectoryError
        ``path`` is a directory (or a link to one); the message names ``flag``.
    ValueError
        A symbolic link loop, a link to nothing, or a block device or socket.
    """
    given = os.fspath(path)
    if given == "-":
        return Output(given, "stdout", None)
    target = Path(given)
    try:
        own = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return Output(given, "file", target)  # a new path (a missing folder is reported on writing)
    status = own
    if stat.S_ISLNK(own.st_mode):
        try:
            status = os.stat(target)
        except OSError as error:
            raise broken_link(given, flag, error) from None
    mode = status.st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"is a directory ({flag} takes a file name)", given)
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        raise ValueError(f"{flag} {given} is a {kind_name(mode)}: write to a file, a named pipe, a character device "
                         f"or - (standard output)")
    if stat.S_ISLNK(own.st_mode):
        standard = _standard_stream(status)
        if standard:
            return Output(given, standard, None)
    if not stat.S_ISREG(mode):
        return Output(given, "stream", target)
    if stat.S_ISLNK(own.st_mode):
        real = Path(os.path.realpath(target))
        try:
            same = os.path.samestat(os.stat(real), status)
        except OSError:
            same = False
        # A regular file behind a descriptor link (/proc/self/fd/N) has no name to rename over.
        return Output(given, "file", real) if same else Output(given, "stream", target)
    return Output(given, "file", target)


# -- messages for failed writes ------------------------------------------------------------------



def _file_size(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _write_error(error: BaseException, target: Output, temporary: Path | None = None, written: int | None = None,
                 size: int | None = None, staged: bool = False) -> BaseException:
    """``error`` as one OSError naming the output (with sizes and free space when it is a full
    disk), or ``error`` itself when it is not a failed write of this output."""
    if not isinstance(error, OSError) or isinstance(error, BrokenPipeError):
        return error
    short = _SHORT_WRITE.search(str(error)) if error.errno is None else None
    if error.errno not in WRITE_ERRORS and short is None:
        return error
    ours = {target.given, os.fspath(target.path) if target.path else None,
            os.fspath(temporary) if temporary else None, None}
    if (os.fspath(error.filename) if error.filename is not None else None) not in ours:
        return error  # another file's error (an input read in the block names its own file)
    if short is not None:
        size, written = int(short.group(1)), int(short.group(2))
    if written is None:
        written = _file_size(temporary)
    if short is not None:
        what = "the write was cut short (the disk is probably full)"
    else:
        what = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EFBIG: "file too large for the file system",
                errno.EIO: "input/output error (the disk or its connection failed)"}[error.errno]
    details = []
    if written is not None:
        details.append(f"{written:,}" + (f" of {size:,}" if size is not None else "") + " bytes written")
    if target.kind == "file" and (short is not None or error.errno in (errno.ENOSPC, errno.EDQUOT)):
        folder = target.path.parent
        with contextlib.suppress(OSError):
            details.append(f"{size_text(shutil.disk_usage(folder).free)} free in {folder}")
    if details:
        what += ": " + ", ".join(details)
    if staged:  # the temporary of a stream, in the system's temporary folder
        what += f" (in the temporary file, before copying it to {target.given})"
    elif target.kind == "file":
        what += "; the existing file is unchanged" if os.path.lexists(target.path) else "; nothing was written"
    named = OSError(error.errno if error.errno is not None else errno.EIO, what, target.given)
    named.__cause__ = error
    return named


# -- files ----------------------------------------------------------------------------------------

def _temporary(target: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(2, f"the folder {directory} does not exist (create it first)", str(target))
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=directory)
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


def _sync(path: Path) -> None:
    """Flush a finished file to the disk (a full disk can show only here)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_stream(target: Output) -> int:
    """A descriptor on a pipe or device, opened without creating anything (a named pipe blocks
    here until a reader opens it)."""
    try:
        return os.open(target.path, os.O_WRONLY | os.O_TRUNC)  # O_TRUNC: ignored by pipes and devices
    except OSError as error:
        raise type(error)(error.errno, f"cannot open for writing ({error.strerror})", target.given) from None


@contextlib.contextmanager
def _stream(target: Output, mode: str, encoding: str | None, newline: str | None) -> Iterator[IO]:
    """``atomic_write`` for a stream: the handle writes straight through."""
    if target.kind in ("stdout", "stderr"):
        text = sys.stdout if target.kind == "stdout" else sys.stderr
        if mode == "wb":
            text.flush()
        handle = text if mode == "w" else text.buffer
        try:
            yield handle
            handle.flush()
        except OSError as error:
            raise _write_error(error, target) from None
        return
    fd = _open_stream(target)
    try:
        handle = os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": encoding, "newline": newline}))
    except BaseException:
        os.close(fd)
        raise
    try:
        with handle:
            yield handle
    except OSError as error:
        raise _write_error(error, target) from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = None, *, flag: str = "--out") -> Iterator[IO]:
    """``with atomic_write(path) as handle:`` write ``handle``; ``path`` appears only on success.

    ``mode`` is ``"w"`` (text, ``encoding``/``newline`` as for :func:`open`) or ``"wb"``. The
    output rule applies (module docstring): a link's target is replaced, a pipe, a character
    device or ``-`` (standard output) is written straight through, a directory is refused naming
    ``flag``. A full disk is one OSError naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r}: use 'w' or 'wb'")
    target = output_target(path, flag)
    if target.streamed:
        with _stream(target, mode, encoding, newline) as handle:
            yield handle
        return
    fd, temporary = _temporary(target.path)
    try:
        if mode == "wb":
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temporary, target.path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.close(fd)
        named = _write_error(error, target, temporary)
        with contextlib.suppress(OSError):
            temporary.unlink()
        if named is error:
            raise
        raise named from None


def _copy_into(temporary: Path, target: Output) -> None:
    """Copy the finished temporary into a stream, counting what went through."""
    size = _file_size(temporary)
    written = 0
    try:
        if target.kind in ("stdout", "stderr"):
            text = sys.stdout if target.kind == "stdout" else sys.stderr
            text.flush()
            sink = text.buffer
            closing = contextlib.nullcontext(sink)
        else:
            closing = os.fdopen(_open_stream(target), "wb", buffering=0)
        with closing as sink, open(temporary, "rb") as source:
            while block := source.read(1 << 20):
                view = memoryview(block)
                while view:
                    n = sink.write(view)
                    n = len(view) if n is None else n
                    written += n
                    view = view[n:]
            if hasattr(sink, "flush"):
                sink.flush()
    except OSError as error:
        raise _write_error(error, target, written=written, size=size) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", *, flag: str = "--out") -> Iterator[Path]:
    """``with atomic_path(out) as temporary: writer(temporary)``: ``out`` appears only on success.

    For writers that take a path. ``suffix`` is appended to the temporary's name, for writers
    that look at the extension (``.onnx``, ``.npy``). The temporary exists (empty) when the
    block starts; a writer that replaces it is fine. The output rule applies (module
    docstring); for a pipe, a character device or ``-`` the temporary is in the system's
    temporary folder and its bytes are copied there once the writer finished.
    """
    target = output_target(path, flag)
    if target.streamed:
        fd, name = tempfile.mkstemp(prefix=".proformer-output.", suffix=".tmp" + suffix)
        os.close(fd)
        temporary = Path(name)
        try:
            try:
                yield temporary
            except OSError as error:  # the system's temporary folder is full: say so
                named = _write_error(error, Output(target.given, "file", temporary), temporary, staged=True)
                if named is error:
                    raise
                raise named from None
            if not temporary.is_file():
                raise FileNotFoundError(f"{target.given}: the writer produced no file")
            _copy_into(temporary, target)
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return
    fd, temporary = _temporary(target.path)
    os.close(fd)
    if suffix:
        named = temporary.with_name(temporary.name + suffix)
        os.replace(temporary, named)
        temporary = named
    try:
        yield temporary
        if not temporary.is_file():
            raise FileNotFoundError(f"{target.given}: the writer produced no file")
        _sync(temporary)
        _publish(temporary, target.path)
    except BaseException as error:
        named = _write_error(error, target, temporary)
        with contextlib.suppress(OSError):
            temporary.unlink()
        if named is error:
            raise
        raise named from None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Do ``a`` and ``b`` name the same file (a link, ``..`` or another spelling included)?

    False when either does not exist.
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(out: str | os.PathLike, *inputs: str | os.PathLike | None, flag: str = "--out") -> Output:
    """Check an output file before any work starts, and say where it goes (:func:`output_target`).

    Refuses what the output rule refuses (a directory, a link loop or a link to nothing), an
    output in a folder that does not exist, and an output that is one of ``inputs``, through
    links too (writing would destroy it).
    """
    target = output_target(out, flag)
    if target.kind == "file" and not target.path.parent.is_dir():
        raise FileNotFoundError(2, f"the folder {target.path.parent} does not exist (create it first)", os.fspath(out))
    for source in inputs:
        if source is None or target.kind in ("stdout", "stderr") or not Path(source).exists():
            continue
        if same_file(out, source) or (target.path is not None and same_file(target.path, source)):
            raise ValueError(f"{flag} {os.fspath(out)} is the input file {os.fspath(source)}: writing it would destroy "
                             f"the input; choose another output path")
    return target
