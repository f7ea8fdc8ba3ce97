"""Read DREAM TSV, FASTA or CSV/TSV tables into a dataset directory (``docs/dataset-format.md``).

:func:`prepare` streams the input ``chunk_rows`` rows at a time, so memory does not grow with the
file. Opening (gzip by magic bytes, :mod:`proformer.io.sources`), format detection
(:mod:`proformer.io.sniff`) and the row parsers (:mod:`proformer.io.tables`,
:mod:`proformer.io.fasta`) are those of the sequence-file reader: each chunk is parsed with
numpy on one byte buffer (line ends and delimiters found with vectorised comparisons, targets
converted in bulk); here the sequences are gathered into a padded ``(rows, width)`` matrix and
translated through a lookup table. Per-line Python only runs for FASTA records, quoted CSV, and to
describe a bad row in an error message.

A table is read by the columns ``seq_col``/``target_cols`` name; without ``seq_col``, line 1 is
taken as a table's header when it names the columns over a line of data, and the sequence and
target columns are chosen by what the first rows hold (:func:`proformer.io.sniff.sniff_table`
and :func:`~proformer.io.sniff.choose_columns`: the one column of DNA; the columns of real
numbers, integer and text columns left out unless named). The choice is printed to stderr in one
line and kept in ``meta["table"]``. Errors name the command line's flags (``--seq-col``, ...)
beside the argument names, and suggest ``--on-bad skip`` only where some row read so far is good.

Encoded chunks go to temporary files; ``codes.npy`` is assembled at the end in a memory-mapped
``.npy`` of the final shape, one chunk padded to the final width at a time, so the full matrix is
never held in memory (:mod:`proformer.data.chunks`). A run writes into a staging directory and
publishes it whole (:mod:`proformer.data.staging`). The directory's files, names and
``meta.json`` writer are those of :mod:`proformer.io.dataset`. A second run on the same output
while one runs is refused at once (:class:`OutputLocked`, naming the lock ``OUT.lock``).

Every input row ends up kept or counted under one reason of ``meta["dropped"]``. Problems are
checked in this order and the first one found names the reason:

==================  ==========================================================  ===============
reason              meaning                                                     on_bad="error"
==================  ==========================================================  ===============
``wrong_columns``   wrong number of fields, or a blank line inside the file     raises
``empty_sequence``  the sequence field is empty                                 raises
``too_long``        longer than ``transforms.length`` after trimming            dropped, counted
``invalid_symbol``  a character outside ``ACGTN`` (either case) in the sequence raises
``bad_target``      target missing, non-numeric, NaN or infinite                raises
==================  ==========================================================  ===============

``too_long`` is the length filter of the DREAM layout, not an input error, so such rows are
dropped in both modes (their symbols and targets are not checked). With ``on_bad="skip"`` the
other rows are dropped too and counted; a summary goes to stderr. An empty input and a truncated
or corrupt ``.gz`` file are errors in both modes.

Constant flanks: without ``trim`` (and not for DREAM TSV, whose 17 + 13 nt are the default
``trim``), prepare finds the longest prefix and the longest suffix every kept row shares (the
suffix measured from each row's end), while it streams (:mod:`proformer.data.chunks`). One of at
least :data:`MIN_FLANK` nt becomes the layout's ``head``/``tail``, exactly as ``--trim`` would set
them: the model never sees it, and ``ism``/``design`` treat its positions as unseen. It is said in
one line on stderr and kept in ``meta["flanks"]``; ``keep_flanks=True`` (``--keep-flanks``) keeps
the flanks in the model's input (head 0, tail 0). With one row, or where the flanks would cover a
whole row (every row the same), nothing is a flank. With an explicit ``length`` the length filter
then runs after the flanks are found (rows it drops were checked like the others).
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..io.dataset import CODES, FORMAT_VERSION, INTEGER_TARGET, LENGTHS, TARGETS, aside, publish, write_meta
from ..io.dataset import read_meta as load_meta  # the checked reader, under the name prepare has always exported
from ..io.errors import InputError, show_value
from ..io.fasta import Fasta, header_number
from ..io.numbers import target_problem
from ..io.rows import BAD_TARGET, EMPTY_SEQUENCE, INVALID_SYMBOL, REASONS, WRONG_COLUMNS
from ..io.sniff import TableChoice, TableSniff, choose_columns, detect_format, sniff_table
from ..io.sources import Source, check_input, check_link, is_blank, line_chunks
from ..io.tables import Delimited, table_parser
from ..progress import Progress
from ..sequence import CODE_LETTERS, DREAM_HEAD, DREAM_LENGTH, DREAM_TAIL, Layout
from .chunks import _assemble_codes, _process, _Stats
from .staging import OutputLocked, _cleanup_on_signal, _make_staging, _output_lock, _remove_stale_staging

__all__ = ["InputError", "OutputLocked", "prepare", "load_meta", "FORMAT_VERSION", "REASONS", "MIN_FLANK"]

#: The fewest nt a prefix or suffix shared by every row needs to count as a constant flank: one to
#: three shared bases happen by chance (n random rows all start with the same base 1 time in 4^(n-1)).
MIN_FLANK = 4

_ADVICE = (
    "Fix the input, or pass --on-bad skip (prepare(..., on_bad='skip')) to drop such rows; "
    "they are then counted in meta.json 'dropped'"
)


# --------------------------------------------------------------------------------------------
# FASTA targets: a numeric last word in every header.
# --------------------------------------------------------------------------------------------


def _refuse_python_number(header: bytes, display: str, line: int) -> None:
    """A header whose last word Python reads as a number but a data file does not (``1_000``,
    full-width digits) is a mistyped target, not an id: refuse it rather than drop every target."""
    tokens = header[1:].split()
    if len(tokens) < 2:
        return
    try:
        float(tokens[-1].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return
    problem = target_problem(tokens[-1], "target")
    raise InputError(
        f"{display}:{line}: {problem} in header {show_value(header)}. Write the target with the "
        "ASCII digits 0-9 (sign, point and exponent allowed)"
    )


def _fasta_has_targets(path: Path, display: str) -> tuple[bool, str]:
    """One streaming pass: do all headers end in a number? Also the file's sha256."""
    source = Source(path, display)
    numeric, headers, lines_before = True, 0, 0
    try:
        while True:
            lines = source.read_lines(200_000)
            if not lines:
                break
            if numeric:
                for number, line in enumerate(lines, start=lines_before + 1):
                    if line[:1] == b">":
                        headers += 1
                        header = line.rstrip(b"\r\n")
                        if header_number(header) is None:
                            _refuse_python_number(header, display, number)
                            numeric = False
                            break
                lines_before += len(lines)
        return numeric and headers > 0, source.sha256()
    finally:
        source.close()


# --------------------------------------------------------------------------------------------
# The public functions.
# --------------------------------------------------------------------------------------------


def prepare(
    input: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "auto",
    seq_col: str | None = None,
    target_cols: str | Sequence[str] | None = None,
    on_bad: str = "error",
    trim: tuple[int, int] | None = None,
    length: int | None = None,
    keep_flanks: bool = False,
    chunk_rows: int = 200_000,
    progress: bool = True,
) -> dict:
    """Read an input file into a dataset directory (``docs/dataset-format.md``).

    Parameters
    ----------
    input : str or path
        DREAM TSV (``sequence<TAB>expression``, no header; a file without tabs is read as
        sequences without targets), FASTA (targets from a numeric last header token when every
        header has one), or a CSV/TSV table with a header. Plain or gzip-compressed.
    out : str or path
        Dataset directory; created if needed, dataset files in it are replaced.
    format : {"auto", "dream", "fasta", "table"}
        ``auto``: FASTA if the first non-blank character is ``>``; a table if ``seq_col`` is
        given or line 1 is a table's header (:func:`proformer.io.sniff.sniff_table`: names
        over a line of data with DNA in some column); else DREAM TSV. ``table``: line 1 is the
        header.
    seq_col : str, optional
        Table column holding the sequence (``--seq-col``). Without it, the one column of DNA
        (A C G T N), and the targets too unless ``target_cols`` names them
        (:func:`proformer.io.sniff.choose_columns`); what was chosen is printed to stderr
        and stored in ``meta["table"]``.
    target_cols : str or list of str, optional
        Table column(s) holding targets, in order (``--target-col``). With ``seq_col`` and
        without ``target_cols`` the dataset has no targets (``n_targets = 0``); with neither,
        the columns of real numbers (integer and text columns are not targets unless named).
    on_bad : {"error", "skip"}
        ``error`` raises :class:`InputError` at the first bad row; ``skip`` drops bad rows,
        counts them by reason in ``meta["dropped"]`` and prints a summary to stderr.
    trim : (int, int), optional
        ``(head, tail)`` for ``meta["transforms"]``; default ``(17, 13)`` for DREAM, else the
        constant flanks found: the longest prefix and suffix shared by every kept row, each at
        least :data:`MIN_FLANK` nt (else 0); the one line saying so goes to stderr, the sequences
        to ``meta["flanks"]``.
    length : int, optional
        Positions per strand after trimming; rows longer than this after trimming are dropped as
        ``too_long``. Default 100 for DREAM, else the longest trimmed row (nothing dropped).
    keep_flanks : bool
        Do not look for constant flanks (``--keep-flanks``): without ``trim``, head and tail are 0
        and the model sees every position. No effect with ``trim`` or on DREAM TSV.
    chunk_rows : int
        Rows parsed at a time; memory use scales with it, not with the file.
    progress : bool
        Show the rows read on stderr (:class:`proformer.progress.Progress`: in place on a
        terminal, a line now and then in a log) and the rows kept at the end.

    Returns
    -------
    dict
        The ``meta.json`` contents written.

    Raises
    ------
    InputError
        Bad rows (with ``on_bad="error"``), an empty or header-only input, a truncated or corrupt
        ``.gz``, unknown table columns, a table whose sequence or target columns cannot be told
        apart; the message names ``file:line``, the offending value and the flag to pass.
    ValueError
        Arguments that do not fit together or the input (named by flag and by argument).
    OutputLocked
        Another run is preparing ``out`` (it holds the lock ``OUT.lock``); raised at once.
    """
    if format not in ("auto", "dream", "fasta", "table"):
        raise ValueError(f"--format (format=) must be 'auto', 'dream', 'fasta' or 'table', got {format!r}")
    if on_bad not in ("error", "skip"):
        raise ValueError(f"--on-bad (on_bad=) must be 'error' or 'skip', got {on_bad!r}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if isinstance(target_cols, str):
        target_cols = [target_cols]
    target_cols = list(target_cols or [])
    display = os.fspath(input)
    check_input(Path(input), display)  # before resolve(), which reports a link loop as "Symlink loop from ..."
    path = Path(input).resolve()
    _check_out(Path(out), path)

    given = format
    sniff = None
    if format == "auto":
        format = detect_format(path, seq_col)
        if format == "dream":
            sniff = sniff_table(path, display)  # None: line 1 is data, the file is DREAM TSV
            if sniff is not None:
                format = "table"
    if format != "table" and (seq_col is not None or target_cols):
        raise ValueError(_not_a_table(display, format, given, seq_col, target_cols))
    choice = None
    if format == "table":
        if sniff is None:
            sniff = sniff_table(path, display, "required" if seq_col is None else "given")
        if seq_col is None and sniff.rows == 0:
            raise InputError(
                f"{display}:1: only a header line ({', '.join(sniff.names)}) and no data rows; nothing to prepare"
            )
        choice = choose_columns(sniff, display, seq_col, target_cols)
        seq_col, target_cols = choice.seq_col, choice.target_cols
        if choice.detected or (not target_cols and len(sniff.names) > 1):
            print(f"prepare: {choice.message}", file=sys.stderr, flush=True)

    dream = format == "dream"
    find_flanks = trim is None and not dream and not keep_flanks
    head, tail = trim if trim is not None else ((len(DREAM_HEAD), len(DREAM_TAIL)) if dream else (0, 0))
    head, tail = int(head), int(tail)
    if head < 0 or tail < 0:
        raise ValueError(f"--trim (trim=) values must be >= 0, got {head},{tail}")
    if length is None and dream:
        length = DREAM_LENGTH
    if length is not None and length < 1:
        raise ValueError(f"--length (length=) must be >= 1, got {length}")

    out = Path(out)
    with _output_lock(out), _cleanup_on_signal():
        _, recovered = _remove_stale_staging(out)
        if recovered == "restored":
            print(f"prepare: {out}: put back the dataset an interrupted run had moved aside to "
                  f"{aside(out.resolve())}", file=sys.stderr, flush=True)
        created_out = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        return _prepare_into(
            out, created_out, path, display, format, seq_col, target_cols, on_bad, head, tail, length,
            chunk_rows, progress, sniff, choice, find_flanks,
        )


def _check_out(out: Path, input: Path) -> None:
    """Refuse an ``out`` that is a file (the input itself, or any other) or a broken symbolic link
    before anything is written: prepare writes a dataset directory and never replaces a file."""
    check_link(out, f"--out (out=) {out}")
    if out.exists() and not out.is_dir():
        what = "the input file" if os.path.samefile(out, input) else "an existing file"
        raise FileExistsError(f"--out (out=) {out} names {what}; prepare writes a dataset directory (codes.npy, "
                              f"meta.json, ...) and never replaces a file: give a new directory name, e.g. "
                              f"--out {out.with_suffix('')}-dataset")


def _not_a_table(display: str, format: str, given: str, seq_col: str | None, target_cols: list[str]) -> str:
    """Why --seq-col/--target-col do not apply to this input, and what to do."""
    flags = " and ".join(
        flag for flag, used in (("--seq-col (seq_col=)", seq_col is not None), ("--target-col (target_cols=)", target_cols))
        if used
    )
    if format == "fasta":
        return (
            f"{flags} can only name columns of a table, but {display} is FASTA (its first character is '>'); leave them "
            "out (a FASTA file's targets are the numeric last word of every header)"
        )
    if given == "dream":
        return f"{flags} can only name columns of a table, but --format dream (format='dream') reads {display} as DREAM TSV; pass --format table or auto"
    return (
        f"{flags} can only name columns of a table, but line 1 of {display} is not a header naming columns (names, "
        "over a line with DNA in one of them), so it is read as DREAM TSV (sequence<TAB>value, no header); "
        "add a header line naming the columns, or leave the flag out"
    )


def _advice(format: str, parser: Delimited | Fasta | None, choice: TableChoice | None) -> Callable[[int, int, bool], str]:
    """What an error about a bad row tells the user to do (see :func:`_process`).

    ``--on-bad skip`` is suggested only where some row read so far is good: when every row is
    bad the file is misread (a header, a wrong column, a wrong delimiter), and skipping would
    drop them all.
    """

    def advise(reason: int, line: int, some_kept: bool) -> str:
        if some_kept:
            return _ADVICE
        if format == "dream":
            what = {
                WRONG_COLUMNS: "DREAM TSV, read when line 1 is not a table's header, has one or two tab-separated "
                "columns (sequence<TAB>value) and no header",
                INVALID_SYMBOL: "DREAM TSV holds the sequence, DNA over A C G T N, in the first field of each line",
                EMPTY_SEQUENCE: "DREAM TSV holds the sequence in the first field of each line",
                BAD_TARGET: "DREAM TSV holds the value, a number, in the second field of each line",
            }[reason]
            fix = (
                "a table needs a header line naming its columns on line 1: prepare then finds the sequence "
                "and target columns itself, or name them with --seq-col NAME and --target-col NAME "
                "(seq_col=, target_cols=)"
            )
            if line == 1 and reason == WRONG_COLUMNS:
                # The row's text already says what to do if line 1 is a header (Delimited.locate).
                fix = (
                    "if line 1 is data, add a header line naming the columns: prepare then finds the "
                    "sequence and target columns itself"
                )
            elif line == 1 and reason != EMPTY_SEQUENCE:
                fix = ""
        elif format == "table":
            if reason == WRONG_COLUMNS:
                what = (
                    f"the header has {parser.n_columns} {_delimiter_word(parser.delimiter)}-separated columns, "
                    "and no row read so far has as many fields"
                )
                fix = "check the delimiter (it comes from the suffix .csv/.tsv/.tab, else from the header line)"
            elif reason == BAD_TARGET:
                names = [parser.column_names[c] for c in parser.target_columns]
                what = f"the target column(s) {', '.join(map(repr, names))} hold no number in any row read so far"
                fix = "name the target columns with --target-col NAME (target_cols=)"
            else:
                seq = parser.column_names[parser.seq_column]
                what = f"the sequence column {seq!r} holds no DNA (A C G T N) in any row read so far"
                fix = "name the sequence column with --seq-col NAME (seq_col=)"
            if choice is not None and choice.detected:
                what += " (the columns were chosen by prepare)"
        else:
            what = "a FASTA file starts with a '>' header line and holds DNA over A C G T N"
            fix = "check that the file is FASTA, or pass --format (format=) to read it as something else"
        fix = f"; {fix}" if fix else ""
        return f"{what[0].upper()}{what[1:]}{fix}. No row read so far can be kept, so skipping bad rows would not help"

    return advise


def _delimiter_word(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon"}.get(delimiter, repr(delimiter))


def _prepare_into(out, created_out, path, display, format, seq_col, target_cols, on_bad, head, tail, length,
                  chunk_rows, progress, sniff: TableSniff | None, choice: TableChoice | None,
                  find_flanks: bool = False) -> dict:
    """:func:`prepare` after its arguments are checked: read, stage, publish."""
    from .. import __version__

    tmp_dir = _make_staging(out)
    stats = _Stats()
    began = time.perf_counter()
    # Looking for flanks, the length filter waits for them (it applies after trimming them).
    process = dict(display=display, on_bad=on_bad, head=head, tail=tail, limit=None if find_flanks else length,
                   tmp_dir=tmp_dir, flanks=find_flanks)
    source = None
    finished = False
    try:
        with Progress(f"prepare {display}", unit="rows read", enabled=progress) as meter:
            if format == "fasta":
                with_targets, sha256 = _fasta_has_targets(path, display)
                target_names = ["target"] if with_targets else []
                parser = Fasta(display, with_targets)
                advise = _advice(format, parser, choice)
                source = Source(path, display, hash_it=False)
                for records in parser.records(line_chunks(source, chunk_rows, 1), chunk_rows):
                    _process(parser.parse(records), stats, advise=advise, **process)
                    meter.update(stats.rows_read)
                empty_line = source.lines_read + 1
            else:
                source = Source(path, display)
                if format == "table":
                    parser = table_parser(source, display, seq_col, target_cols)
                    first_line = 2
                else:
                    parser = None  # DREAM: one or two columns, decided by the first data line
                    first_line = 1
                advise = _advice(format, parser, choice)
                for line_no, lines in line_chunks(source, chunk_rows, first_line):
                    if parser is None:
                        two = b"\t" in next(line for line in lines if not is_blank(line))
                        parser = Delimited(
                            display=display,
                            delimiter="\t",
                            column_names=["sequence", "expression"] if two else ["sequence"],
                            seq_column=0,
                            target_columns=[1] if two else [],
                            quoting=False,
                            header_hint=True,
                        )
                        advise = _advice(format, parser, choice)
                    _process(parser.parse(lines, line_no), stats, advise=advise, **process)
                    meter.update(stats.rows_read)
                target_names = [parser.column_names[c] for c in parser.target_columns] if parser else ["expression"]
                empty_line = source.lines_read + 1
                sha256 = source.sha256()

        if stats.rows_read == 0:
            what = "after the header" if format == "table" else "(the file is empty or holds only blank lines)"
            raise InputError(f"{display}:{empty_line}: no data rows {what}; nothing to prepare")
        flanks, keep = None, None
        if find_flanks and stats.chunk_files:
            flanks = _found_flanks(stats)
            head, tail = len(flanks["head"]), len(flanks["tail"])
            if "message" in flanks:
                print(f"prepare: {flanks['message']}", file=sys.stderr, flush=True)
            if length is not None:
                keep = Layout(head=head, tail=tail, length=length).fits(np.concatenate(stats.lengths))
                stats.dropped["too_long"] += int((~keep).sum())
        _print_summary(display, stats, on_bad)
        rows_kept = sum(rows for _, rows, _ in stats.chunk_files) if keep is None else int(keep.sum())
        if rows_kept == 0:
            raise InputError(
                f"{display}: none of the {stats.rows_read:,} rows was kept (dropped: "
                f"{_counts_text(stats.dropped)}); nothing to prepare. {_nothing_kept_advice(stats, head, tail, length)}"
            )

        lengths = np.concatenate(stats.lengths)
        targets = np.concatenate(stats.targets).reshape(len(lengths), len(target_names))
        integer = np.concatenate(stats.integer)
        if keep is not None:
            lengths, targets, integer = lengths[keep], targets[keep], integer[keep]
        width = int(lengths.max())
        if head + tail >= width:
            # Every sequence would be trimmed to nothing: the model would see only padding.
            raise InputError(
                f"{display}: --trim {head},{tail} removes {head + tail} positions, and the longest sequence has "
                f"{width}: every sequence would be empty; trim less (DREAM files: --trim "
                f"{len(DREAM_HEAD)},{len(DREAM_TAIL)}; other files usually need no trim)"
            )
        _assemble_codes(tmp_dir / CODES, stats.chunk_files, width, keep)
        np.save(tmp_dir / LENGTHS, lengths)
        np.save(tmp_dir / TARGETS, targets)
        np.save(tmp_dir / INTEGER_TARGET, integer)

        # Statistics of the stored float32 values, so they match what targets.npy gives back.
        as64 = targets.astype(np.float64)
        meta = {
            "source": {"path": str(path), "sha256": sha256, "format": format},
            "rows_read": stats.rows_read,
            "rows_kept": rows_kept,
            "dropped": stats.dropped,
            "target_names": target_names,
            "target_mean": as64.mean(axis=0).tolist(),
            "target_std": as64.std(axis=0).tolist(),
            "min_length": int(lengths.min()),
            "max_length": width,
            "transforms": {
                "head": head,
                "tail": tail,
                "length": length if length is not None else max(width - head - tail, 0),
            },
        }
        if flanks is not None:
            meta["flanks"] = flanks
        if choice is not None:
            # How the table was read: which columns, which were found rather than given, and why
            # the others were left out (the line prepare printed).
            meta["table"] = {
                "delimiter": sniff.delimiter,
                "columns": sniff.names,
                "seq_col": choice.seq_col,
                "target_cols": choice.target_cols,
                "ignored": choice.ignored,
                "detected": choice.detected,
                "message": choice.message,
            }
        meta["proformer_version"] = __version__
        meta["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        meta = write_meta(tmp_dir, meta)
        # Move into place only once everything is written: a failed run leaves no half dataset.
        publish(tmp_dir, out)
        if progress:
            print(
                f"prepare {display}: {rows_kept:,} of {stats.rows_read:,} rows kept -> {out} "
                f"({time.perf_counter() - began:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        finished = True
        return meta
    finally:
        if source is not None:
            source.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not finished and created_out and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # do not leave an empty dataset directory behind a failed run


def _found_flanks(stats: _Stats) -> dict:
    """``meta["flanks"]``: the constant flanks :func:`~proformer.data.chunks._process` found, as
    sequences (``""`` for none), with the rows they were found over and, when there are any, the
    line prepare prints.

    A prefix or suffix counts from :data:`MIN_FLANK` nt. Nothing is a flank with one row, or where
    prefix and suffix would cover a whole row (every row the same): the model would see nothing.
    """
    rows = sum(count for _, count, _ in stats.chunk_files)
    head, tail = len(stats.prefix), len(stats.suffix)
    shortest = int(min(lengths.min() for lengths in stats.lengths))
    if rows < 2 or head + tail >= shortest:
        head = tail = 0
    head, tail = (head if head >= MIN_FLANK else 0), (tail if tail >= MIN_FLANK else 0)
    found = {"head": _letters(stats.prefix[:head]), "tail": _letters(stats.suffix[len(stats.suffix) - tail :]),
             "rows": rows}
    if head or tail:
        ends = [f"{n} nt at the {end} ({_shown(seq)})" for n, end, seq in
                ((head, "start", found["head"]), (tail, "end", found["tail"])) if n]
        found["message"] = (
            f"found constant flanks shared by all {rows:,} rows: {' and '.join(ends)}; the model will not see them "
            "(--keep-flanks, keep_flanks=True, to keep them)"
        )
    return found


def _letters(codes: np.ndarray) -> str:
    return CODE_LETTERS[codes].tobytes().decode("ascii")


def _shown(sequence: str, most: int = 40) -> str:
    """A flank as the message shows it: whole, or its ends around '...' when longer than ``most``."""
    return sequence if len(sequence) <= most else f"{sequence[:most // 2]}...{sequence[-(most // 2):]}"


def _nothing_kept_advice(stats: _Stats, head: int, tail: int, length: int | None) -> str:
    """What to do when ``on_bad="skip"`` kept no row: the length filter, or a misread file."""
    dropped = stats.dropped
    if dropped["too_long"] and dropped["too_long"] >= max(v for k, v in dropped.items() if k != "too_long"):
        return (
            f"Rows longer than --length {length} after trimming {head} + {tail} nt of flanks (--trim {head},{tail}) are "
            "dropped: pass a larger --length (length=), or a --trim (trim=) that removes the flanks"
        )
    return (
        "Check that the file is read as intended: --format (format=), and for a table --seq-col and "
        "--target-col (seq_col=, target_cols=)"
    )


def _counts_text(dropped: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in dropped.items() if count) or "none"


def _print_summary(display: str, stats: _Stats, on_bad: str) -> None:
    """Tell the user about every dropped row: counts by reason and the first examples."""
    total = sum(stats.dropped.values())
    if not total:
        return
    print(
        f"prepare {display}: dropped {total:,} of {stats.rows_read:,} rows: {_counts_text(stats.dropped)}",
        file=sys.stderr,
    )
    if stats.dropped["too_long"]:
        print("  too_long: longer than transforms.length after trimming (the length filter)", file=sys.stderr)
    if on_bad == "skip" and stats.examples:
        print("  first skipped rows (on_bad='skip'):", file=sys.stderr)
        for example in stats.examples:
            print(f"    {example}", file=sys.stderr)
    sys.stderr.flush()
