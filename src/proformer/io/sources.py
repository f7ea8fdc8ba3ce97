"""Opening input files: plain or gzip, hashed while read, in chunks of lines.

Plain or gzip, gzip detected by its magic bytes (never by the file name), read in chunks of lines
(:class:`Source`, :func:`line_chunks`), optionally hashed as read. A truncated or corrupt gzip
stream is an :class:`~proformer.io.errors.InputError` naming the file and the line where reading
stopped. A UTF-8 byte-order mark at the start of the file is dropped. numpy-free: the standard
library only.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import itertools
import os
import zlib
from pathlib import Path
from typing import Iterator

from .errors import InputError

__all__ = ["GZIP_MAGIC", "BOM", "READ_BUFFER", "Source", "check_input", "check_link", "check_links", "is_blank",
           "line_chunks", "first_char"]


GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20


def check_link(path: str | os.PathLike, display: str) -> None:
    """InputError when ``path`` cannot be followed because of a symbolic link: a loop (ELOOP), or
    a link to something that does not exist. Anything else (absent, unreadable) is left to the caller."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InputError(f"{display} is a symbolic link loop (ELOOP: its links lead back to themselves), not a "
                             f"file; point the link at a real file, or give the file itself") from None
        if os.path.islink(path):
            raise InputError(f"{display} is a symbolic link to {os.readlink(path)}, which does not exist; point the "
                             f"link at a real file, or give the file itself") from None


def check_links(paths, flag: str) -> None:
    """:func:`check_link` of each path of a command-line option (``flag PATH`` in the message)."""
    for path in paths:
        check_link(path, f"{flag} {os.fspath(path)}")


def check_input(path: Path, display: str) -> None:
    """Raise unless ``path`` is a file: FileNotFoundError when absent, InputError for a directory or
    a symbolic link that leads nowhere (a loop, or a link to nothing)."""
    check_link(path, display)
    if path.is_dir():
        raise InputError(f"{display} is a directory; give the path of a sequence file (FASTA, DREAM TSV or a CSV/TSV table)")
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {display}")


# --------------------------------------------------------------------------------------------
# Reading: plain or gzip, hashed while read, in chunks of lines.
# --------------------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """A raw reader that feeds every byte it reads from disk into ``hasher``.

    Hashing the bytes as they come off the disk gives the checksum of the file as stored (the
    compressed bytes of a ``.gz``) without a second pass over it.
    """

    def __init__(self, raw: io.RawIOBase, hasher) -> None:
        self._raw = raw
        self._hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self._hasher.update(memoryview(buffer)[:count])
        return count

    def drain(self) -> None:
        """Hash whatever the parser did not need (e.g. bytes after a gzip stream)."""
        while self._raw.read(READ_BUFFER):
            pass

    def close(self) -> None:
        self._raw.close()
        super().close()


class Source:
    """An input file opened for line-wise reading, plain or gzip (detected by magic bytes).

    ``hash_it``: feed the stored bytes into a sha256 as they are read (:meth:`sha256`).
    """

    def __init__(self, path: Path, display: str, hash_it: bool = True) -> None:
        self.path = path
        self.display = display
        self.hasher = hashlib.sha256() if hash_it else None
        try:
            with open(path, "rb") as probe:
                self.gzipped = probe.read(2) == GZIP_MAGIC
            raw = open(path, "rb", buffering=0)
        except PermissionError:
            raise InputError(f"{display}: permission denied; make the file readable (chmod u+r {display})") from None
        self._hashing = _HashingReader(raw, self.hasher) if hash_it else None
        base = io.BufferedReader(self._hashing or raw, READ_BUFFER)
        self._base = base  # GzipFile does not close the file object it is given
        if self.gzipped:
            # GzipFile itself, not a BufferedReader around it: a buffered read of a truncated
            # stream raises without returning the lines before the damage, and those lines are
            # what tells the user where reading stopped.
            self.stream = gzip.GzipFile(fileobj=base, mode="rb")
        else:
            self.stream = base
        self.lines_read = 0

    def read_lines(self, count: int) -> list[bytes]:
        """The next ``count`` lines (fewer at the end), newline characters included."""
        lines: list[bytes] = []
        try:
            # list.extend keeps the lines read before an exception, so lines_read stays exact.
            lines.extend(itertools.islice(self.stream, count))
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            stopped = self.lines_read + len(lines) + 1
            raise InputError(
                f"{self.display}:{stopped}: the gzip file is truncated or corrupt ({error}); "
                f"reading stopped at line {stopped}. Download or compress the file again "
                f"(gzip -t {self.display} checks it); skipping cannot repair this"
            ) from None
        if not self.lines_read and lines and lines[0].startswith(BOM):
            lines[0] = lines[0][len(BOM) :]  # a byte-order mark is not data
        self.lines_read += len(lines)
        return lines

    def sha256(self) -> str:
        self._hashing.drain()
        return self.hasher.hexdigest()

    def close(self) -> None:
        self.stream.close()
        self._base.close()


def is_blank(line: bytes) -> bool:
    return not line.rstrip(b"\r\n")


def line_chunks(source: Source, chunk_rows: int, first_line: int) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(number of the first line, lines)`` for consecutive chunks of the input.

    Blank lines at the very end of the file are dropped (an editor's trailing newline). A blank
    run at the end of a chunk is held back until it is known whether data follows, in which case
    it is passed on (and counted as ``wrong_columns`` by the parser).
    """
    pending: list[bytes] = []
    next_line = first_line  # number of the first line in ``pending + lines``
    while True:
        lines = source.read_lines(chunk_rows)
        if not lines:
            return  # pending blank lines were trailing: ignored
        blanks = 0
        while blanks < len(lines) and is_blank(lines[-1 - blanks]):
            blanks += 1
        if blanks == len(lines):
            pending.extend(lines)
            continue
        batch = pending + lines[: len(lines) - blanks]
        pending = lines[len(lines) - blanks :]
        yield next_line, batch
        next_line += len(batch)


def first_char(path: Path) -> bytes:
    """The first non-whitespace byte of the (decompressed) file after any byte-order mark, or b''."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == GZIP_MAGIC
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as stream:
            block = stream.read(1 << 16).removeprefix(BOM)
            while True:
                if not block:
                    return b""
                stripped = block.lstrip()
                if stripped:
                    return stripped[:1]
                block = stream.read(1 << 16)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return b""  # the main pass reports the damage with a line number
