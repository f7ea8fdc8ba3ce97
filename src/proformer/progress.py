"""Progress of long steps on stderr, fit for a terminal and for a log file.

On a terminal one line is rewritten in place (``\\r``); elsewhere (a log file, a pipe, CI) a
plain line is written at most every ``every`` seconds and once at the end, so a log holds a
few readable lines instead of thousands of ``\\r`` updates.
"""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["Progress"]


class Progress:
    """``progress = Progress("predicted", total=n, unit="sequences")``; ``progress.update(done)``
    as work finishes; ``progress.close()`` (or use it as a context manager) for the final line.

    Parameters
    ----------
    what : str
        What is counted, e.g. ``"predicted"`` or ``"ISM forward passes"``.
    total : int, optional
        The count at the end, when known.
    unit : str
        Shown after the numbers.
    enabled : bool
        False: print nothing (``--no-progress``).
    every : float
        Seconds between plain lines when stderr is not a terminal.
    stream : file, optional
        Where to write (default: ``sys.stderr`` at the time of each write).
    """

    def __init__(self, what: str, total: int | None = None, unit: str = "", enabled: bool = True,
                 every: float = 30.0, stream: IO | None = None):
        self.what, self.total, self.unit, self.enabled, self.every = what, total, unit, enabled, every
        self._stream = stream
        self._began = self._last = time.monotonic()
        self._done = 0
        self._open = False  # a terminal line is waiting for its newline

    @property
    def stream(self) -> IO:
        return self._stream if self._stream is not None else sys.stderr

    def _text(self) -> str:
        count = f"{self._done:,}" + (f" of {self.total:,}" if self.total is not None else "")
        return f"{self.what}: {count}{' ' + self.unit if self.unit else ''} ({time.monotonic() - self._began:.0f} s)"

    def update(self, done: int) -> None:
        """Record that ``done`` items are finished (an absolute count)."""
        self._done = int(done)
        if not self.enabled:
            return
        now = time.monotonic()
        if self.stream.isatty():
            print(f"\r{self._text()}", end="", file=self.stream, flush=True)
            self._open = True
        elif now - self._last >= self.every:
            print(self._text(), file=self.stream, flush=True)
            self._last = now

    def close(self) -> None:
        """The final line (a newline after the terminal's line)."""
        if not self.enabled:
            return
        if self._open:
            print(file=self.stream, flush=True)
            self._open = False
        else:
            print(self._text(), file=self.stream, flush=True)
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        elif self._open:  # an error message must start on its own line
            print(file=self.stream, flush=True)
