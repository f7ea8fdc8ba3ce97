"""Prepare's chunks: each chunk of parsed rows classified, encoded and stored, then assembled.

:func:`_process` gives every row of a chunk (:class:`proformer.io.rows.Rows`) one reason of
``meta["dropped"]`` or keeps it, gathers the kept sequences into a padded ``(rows, width)``
matrix translated through the lookup table, and writes it to a temporary file. Encoded chunks go
to temporary files; ``codes.npy`` is assembled at the end in a memory-mapped ``.npy`` of the
final shape, one chunk padded to the final width at a time, so the full matrix is never held in
memory (:func:`_assemble_codes`). numpy and the standard library only. The names are private to
:mod:`proformer.data.prepare`, which calls them.

When prepare looks for constant flanks, :func:`_process` also keeps the longest prefix and the
longest suffix shared by every kept row so far (``_Stats.prefix``/``suffix``, codes): each chunk
only shortens them, by one vectorised comparison of its rows against them (the suffix measured
from each row's own end), so finding them costs a few bytes compared per row and no second pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..io.dataset import is_integer_target
from ..io.errors import InputError
from ..io.rows import BAD_TARGET, EMPTY_SEQUENCE, INVALID_SYMBOL, OK, REASONS, TOO_LONG, WRONG_COLUMNS, Rows
from ..sequence import INPUT_CODES_BYTES, INVALID, N, Layout

__all__ = ["_Stats", "_gather_codes", "_process", "_assemble_codes"]


_ERRORS = (WRONG_COLUMNS, EMPTY_SEQUENCE, INVALID_SYMBOL, BAD_TARGET)  # too_long is a filter
_EXAMPLES_SHOWN = 5


def _gather_codes(buffer: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sequences ``buffer[start:start+length]`` as a padded code matrix.

    Returns
    -------
    np.ndarray
        uint8 ``(m, max(length))``, padded with ``N``; ``INVALID`` marks symbols outside ACGTN.
    """
    width = int(length.max(initial=0))
    if not width:
        return np.zeros((len(start), 0), dtype=np.uint8)
    # bytes.translate runs the lookup table at memory speed, several times faster than numpy
    # fancy indexing with uint8 indices; it also makes the copy that the padding below needs.
    translated = buffer.tobytes().translate(INPUT_CODES_BYTES)
    if len(translated) < int(start.max()) + width:
        translated += bytes(width)
    # One fixed-width window per row, copied straight out of the buffer (no per-row loop);
    # positions past a row's end hold the next field's bytes and are overwritten with N.
    codes = sliding_window_view(np.frombuffer(translated, dtype=np.uint8), width)[start]
    small = np.int16 if width < 2**15 else np.int64  # a narrower compare is several times faster
    codes[np.arange(width, dtype=small) >= length.astype(small)[:, None]] = N
    return codes


@dataclass
class _Stats:
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    examples: list[str] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    integer: list[np.ndarray] = field(default_factory=list)
    chunk_files: list[tuple[Path, int, int]] = field(default_factory=list)  # (file, rows, width)
    # With flanks=True: the codes every kept row so far starts / ends with (None before the first).
    prefix: np.ndarray | None = None
    suffix: np.ndarray | None = None


def _shared_run(same: np.ndarray) -> int:
    """How many leading entries of the bool vector ``same`` are True."""
    return len(same) if same.all() else int(np.argmin(same))


def _update_flanks(stats: _Stats, codes: np.ndarray, lengths: np.ndarray) -> None:
    """Shorten ``stats.prefix``/``suffix`` to what every row of ``codes`` (kept rows, ``(m, width)``
    padded with N beyond ``lengths``) also starts / ends with. A row's suffix is measured from its own
    end, so rows of different lengths share one."""
    shortest = int(lengths.min())
    prefix = codes[0, :shortest] if stats.prefix is None else stats.prefix[:shortest]
    same = (codes[:, : len(prefix)] == prefix).all(axis=0)
    stats.prefix = prefix[: _shared_run(same)].copy()

    if stats.suffix is None:
        first = int(lengths[0])
        suffix = codes[0, first - shortest : first]
    else:
        suffix = stats.suffix[len(stats.suffix) - min(len(stats.suffix), shortest) :]
    s = len(suffix)
    same = np.ones(s, dtype=bool)
    if s:
        # One slice per distinct length, not per row; stop once even the last base differs.
        order = np.argsort(lengths, kind="stable")
        for group in np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1):
            length = int(lengths[group[0]])
            same &= (codes[group, length - s : length] == suffix).all(axis=0)
            if not same[-1]:
                break
    stats.suffix = suffix[s - _shared_run(same[::-1]) :].copy()


def _process(
    rows: Rows,
    stats: _Stats,
    *,
    display: str,
    on_bad: str,
    head: int,
    tail: int,
    limit: int | None,
    tmp_dir: Path,
    advise: Callable[[int, int, bool], str],
    flanks: bool = False,
) -> None:
    """Classify, encode and store one chunk of rows (or raise on the first bad one).

    ``advise(reason, line, some_kept)`` is what the error tells the user to do about a bad row;
    ``some_kept`` says whether any row read so far is good, i.e. whether skipping bad rows would
    leave anything. ``flanks``: also shorten the shared prefix and suffix (:func:`_update_flanks`).
    """
    n = len(rows.line)
    stats.rows_read += n
    reason = rows.reason.copy()
    if limit is not None:
        # The layout's own rule for rows longer than the window (Layout's docstring).
        fits = Layout(head=head, tail=tail, length=limit).fits(rows.length)
        reason[(reason == OK) & ~fits] = TOO_LONG
    candidates = np.flatnonzero(reason == OK)
    codes = _gather_codes(rows.buffer, rows.start[candidates], rows.length[candidates])
    invalid = (codes == INVALID).any(axis=1)
    reason[candidates[invalid]] = INVALID_SYMBOL
    reason[(reason == OK) & rows.bad_target] = BAD_TARGET

    bad = np.flatnonzero(np.isin(reason, _ERRORS))
    if bad.size and on_bad == "error":
        first = int(bad[0])
        line, text = rows.describe(first, int(reason[first]))
        some_kept = bool(stats.chunk_files) or bool((reason == OK).any())
        raise InputError(f"{display}:{line}: {text}. {advise(int(reason[first]), line, some_kept)}")
    for row in bad[: max(0, _EXAMPLES_SHOWN - len(stats.examples))]:
        line, text = rows.describe(int(row), int(reason[row]))
        stats.examples.append(f"{display}:{line}: {text}")
    counts = np.bincount(reason, minlength=len(REASONS) + 1)
    for code, name in enumerate(REASONS, start=1):
        stats.dropped[name] += int(counts[code])

    kept_in_candidates = reason[candidates] == OK
    kept = candidates[kept_in_candidates]
    if not kept.size:
        return
    lengths = rows.length[kept]
    width = int(lengths.max())
    codes = np.ascontiguousarray(codes[kept_in_candidates, :width])
    if flanks:
        _update_flanks(stats, codes, lengths)
    path = tmp_dir / f"codes-{len(stats.chunk_files):05d}.u8"
    codes.tofile(path)
    stats.chunk_files.append((path, len(kept), width))
    stats.lengths.append(lengths.astype(np.int32))
    values = rows.values[kept]
    stats.targets.append(values.astype(np.float32))
    if values.shape[1]:
        stats.integer.append(is_integer_target(values))
    else:
        stats.integer.append(np.zeros(len(kept), dtype=bool))


def _assemble_codes(path: Path, chunk_files: list[tuple[Path, int, int]], width: int,
                    keep: np.ndarray | None = None) -> None:
    """Write ``codes.npy`` of shape ``(rows, width)`` from the chunk files, one chunk in memory.

    Each chunk file holds uint8 ``(rows, chunk_width)``; the columns beyond a chunk's width are
    padding (N). ``keep``: bool ``(all chunk rows,)``, the rows to write (the others were dropped
    after they were stored); ``width`` is at least the length of every row written, so columns of
    a wider chunk beyond it are padding.
    """
    n = sum(rows for _, rows, _ in chunk_files) if keep is None else int(keep.sum())
    codes = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, width))
    start = read = 0
    for chunk_path, rows, chunk_width in chunk_files:
        chunk = np.fromfile(chunk_path, dtype=np.uint8).reshape(rows, chunk_width)[:, :width]
        if keep is not None:
            chunk = chunk[keep[read : read + rows]]
        read += rows
        block = codes[start : start + len(chunk)]
        block[:, : chunk.shape[1]] = chunk
        block[:, chunk.shape[1] :] = N
        start += len(chunk)
        chunk_path.unlink()
    codes.flush()
    del codes  # close the map before the file is moved into place
