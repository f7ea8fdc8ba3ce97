"""Progress of long steps on stderr, on tqdm: a bar with its rate and time estimate.

On a terminal tqdm rewrites one line in place. A log file, a pipe or CI gets plain lines instead
(tqdm's in-place updates, each made a line of its own): none for the first ``every`` seconds, then
at most one every ``every`` seconds, and one at the end, so a log holds a few readable lines
rather than thousands of ``\\r`` updates. Prepare,
predict, the interpretation commands and train's epochs all report through :class:`Progress`.
"""

from __future__ import annotations

import io
import sys
from typing import IO

from tqdm import tqdm

__all__ = ["Progress"]


class _Lines(io.TextIOBase):
    """A stream that gives each of tqdm's in-place updates a line of its own."""

    def __init__(self, stream: IO):
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """``with Progress("predicted", total=n, unit="sequences") as progress: progress.update(done)``.

    Parameters
    ----------
    what : str
        What is counted, e.g. ``"predicted"`` or ``"ISM forward passes"``.
    total : int, optional
        The count at the end, when known (then the bar shows a time estimate).
    unit : str
        Shown after the numbers.
    enabled : bool
        False: print nothing (``--no-progress``).
    every : float
        Seconds between lines when the stream is not a terminal.
    stream : file, optional
        Where to write (default: ``sys.stderr``).
    """

    def __init__(self, what: str, total: int | None = None, unit: str = "", enabled: bool = True,
                 every: float = 30.0, stream: IO | None = None):
        stream = sys.stderr if stream is None else stream
        self.log = not stream.isatty()
        self.bar = tqdm(total=total, desc=what, unit=f" {unit}" if unit else "", disable=not enabled,
                        file=_Lines(stream) if self.log else stream, mininterval=every if self.log else 0.1,
                        delay=every if self.log else 0, maxinterval=max(every, 10.0), dynamic_ncols=not self.log,
                        ascii=self.log, leave=True)
        if self.log:
            self.bar.miniters, self.bar.dynamic_miniters = 0, False  # time alone decides when a line is due

    def update(self, done: int) -> None:
        """Record that ``done`` items are finished (an absolute count)."""
        self.bar.update(int(done) - self.bar.n)

    def close(self) -> None:
        """The final state, and the end of the line."""
        if self.log and not self.bar.disable:
            self.bar.refresh()  # a log always gets the final line, however short the work
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.bar.close()  # a terminal's line ends, so the error starts on its own line
