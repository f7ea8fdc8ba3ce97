"""``proformer predict``: every sequence of a file through a run (or an ensemble), into a file.

The input is read by :func:`proformer.io.reader.read_input` (FASTA, one sequence per line, DREAM
TSV, a CSV/TSV table with a header, plain or gzip, or a prepared dataset directory), in chunks, so
memory does not grow with the input; the model is :func:`proformer.inference.load`'s, which lays
each chunk out exactly as training did and predicts it in batches. The output is a TSV or a DREAM
2022 JSON submission, written under the output rule of :mod:`proformer.io.atomic`: a file is
written beside its target and renamed into place, so a failed or killed predict leaves an
existing ``out`` untouched and never a complete-looking partial file; a pipe, a device or ``-`` is
written straight through.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence

from .inference import Ensemble, load, recorded_columns, units_text
from .io.atomic import atomic_write, check_output
from .io.errors import InputError
from .io.inputs import columns_line, read_input, run_columns
from .io.submission import public_indices, sample_submission

__all__ = ["predict"]


def predict(
    model: str | os.PathLike | Sequence[str | os.PathLike],
    input: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "tsv",
    data_dir: str | os.PathLike | None = None,
    standardized: bool = False,
    seq_col: str | None = None,
    id_col: str | None = None,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "32",
    rc_average: bool | None = None,
    progress: bool = True,
) -> dict:
    """Predict every sequence of ``input`` with the best model of ``model``.

    Parameters
    ----------
    model : path, or list of paths
        A run directory; a list or tuple of them predicts the mean of the runs' predictions
        (:class:`~proformer.inference.Ensemble`: each run with its own layout and
        ``rc_average``; the runs must predict the same targets, and ``standardized`` needs the
        same target statistics).
    input : path
        FASTA, one sequence per line, DREAM TSV, a CSV/TSV table with a header (``seq_col``),
        plain or gzip; or a prepared dataset directory (its rows; ids are the 0-based row numbers).
    out : path or "-"
        The output, under the output rule of :mod:`proformer.io.atomic`: a file is written beside
        itself and renamed into place (a symbolic link's target, the link stays); a named pipe, a
        character device or ``-`` (standard output; messages go to stderr) is written straight
        through. A directory, a link to nothing and the input file itself are refused; a full
        disk is one error naming ``out``.
    format : "tsv" or "dream-json"
        ``tsv``: a header line, then ``[id<TAB>]sequence<TAB>prediction`` (one column per target,
        named by the run's target names) for every input row; ``id`` is the FASTA record id, the
        table's ``id_col`` or a dataset's row number, absent for other inputs.
        ``dream-json``: ``{"index": value}`` for the 9,045 public-leaderboard indices in the
        order of ``data_dir/public_leaderboard/sample_submission.json``; the input must be the
        71,103 DREAM test sequences in official order (row i = test index i). Its values follow
        ``standardized`` like the TSV's; the DREAM score (Pearson r^2, Spearman) is the same in
        either unit, as ``y * std + mean`` (std > 0, float64) keeps every correlation and rank.
    data_dir : path, optional
        The DREAM 2022 folder, for ``dream-json``.
    standardized : bool
        False (default): predictions in training units (``y * std + mean``). True: the model's
        own output, z-scores of the training targets.
    seq_col, id_col : str, optional
        A table's sequence column, and a column written as the output's first column ``id``.
        Without ``seq_col``, a table whose header has the sequence column of the run's training
        table (``config.json`` ``data.columns``; an ensemble's runs must agree) is read with it,
        and one line on stderr says so; a header without it is an error naming the columns it
        has, and other inputs are read as they are without a record.
    batch_size, device, precision, rc_average
        As :func:`proformer.load`.
    progress : bool
        A progress line on stderr.

    Returns
    -------
    dict
        Rows predicted, the output path (``-`` when it was standard output, given as ``-`` or as
        a link to it), the format, the units, ``too_long`` (rows cut to the
        window; of any run's window for an ensemble) and ``runs`` (how many runs were averaged).

    Input rules are prepare's: ``M``, an empty FASTA record, a header-only FASTA, an empty file
    and a sequence no longer than the run's flanks are errors naming ``file:line``. A sequence
    longer than the window after trimming is cut to its centre and counted: one warning on
    stderr says how many and the longest length.
    """
    if format not in ("tsv", "dream-json"):
        raise ValueError(f"format={format!r}: use tsv or dream-json")
    target = check_output(out, input, sample_submission(data_dir) if data_dir else None)
    to_stdout = target.to_stdout  # "-", or a link to standard output
    wanted: list[str] = []
    if format == "dream-json":
        if data_dir is None:
            raise ValueError("--format dream-json needs --data-dir (the DREAM 2022 folder holding public_leaderboard/)")
        wanted = public_indices(data_dir)
        needed = {int(k) for k in wanted}
        kept: dict[int, float] = {}
    if seq_col is None:  # the run's training table's columns, when this table has them
        columns = run_columns(input, recorded_columns(model))
        if columns is not None:
            if id_col is not None:  # the id column given wins over the recorded one
                columns = dataclasses.replace(columns, id_col=None)
            seq_col, id_col = columns.seq_col, id_col if id_col is not None else columns.id_col
            print(columns_line(input, columns, runs=1 if isinstance(model, (str, os.PathLike)) else len(model)),
                  file=sys.stderr)
    chunks = read_input(input, seq_col=seq_col, id_col=id_col)  # checks the options before the model loads
    runner = load(model, device, batch_size=batch_size, precision=precision, rc_average=rc_average)
    n = 0
    with atomic_write(out) as handle:
        header_written = False
        for chunk, values in runner.predict_chunks(chunks, standardized, progress):
            if format == "tsv":
                if not header_written:
                    id_column = ["id"] if chunk.ids is not None else []
                    handle.write("\t".join(id_column + ["sequence"] + runner.target_names) + "\n")
                    header_written = True
                sequences = chunk.text()
                prefixes = [f"{i}\t{s}" for i, s in zip(chunk.ids, sequences)] if chunk.ids is not None else sequences
                handle.writelines(
                    prefix + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n" for prefix, row in zip(prefixes, values)
                )
            else:
                for index in range(n, n + len(chunk)):
                    if index in needed:
                        kept[index] = float(values[index - n, 0])
            n += len(chunk)
        if n == 0:
            raise InputError(f"{input}: no sequences (the file is empty, blank or only a header)")
        if format == "dream-json":
            missing = [k for k in wanted if int(k) not in kept]
            if missing:
                raise ValueError(
                    f"{input} has {n:,} sequences but the submission needs test indices up to "
                    f"{max(int(k) for k in wanted):,} (e.g. {missing[0]}); pass the 71,103 DREAM test sequences in official order"
                )
            json.dump({k: kept[int(k)] for k in wanted}, handle)
    warning = runner.too_long_warning(input)
    if warning:
        print(warning, file=sys.stderr)
    return {"rows": n, "out": "-" if to_stdout else os.fspath(out), "format": format, "units": units_text(standardized),
            "too_long": runner.too_long, "runs": len(runner.members) if isinstance(runner, Ensemble) else 1}
