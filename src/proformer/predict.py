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
from .limits import MAX_DEVICES, whole

__all__ = ["predict", "processes"]


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
    devices: int = 1,
    num_nodes: int = 1,
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
    devices, num_nodes : int
        Processes per node, and nodes (machines): more than one process predicts through
        Lightning's ``Trainer.predict`` with DDP (:mod:`proformer.parallel`; on CPUs the gloo
        backend, ``device`` then ``auto``, ``cpu`` or ``cuda``), and the output is the same file,
        byte for byte, as one process writes. Lightning starts the other processes by running
        the command line again, so call it from a script or the command line, not from an
        interactive session; each process reads ``input`` (a file or a dataset directory, not a
        pipe) and global rank 0 alone writes ``out``.

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
    if devices != 1 and os.path.exists(input) and not (os.path.isfile(input) or os.path.isdir(input)):
        raise ValueError(f"--devices {devices}: every process reads --input {input}; give a file or a dataset "
                         f"directory, not a pipe")
    trainer, lead = processes(device, devices, num_nodes)
    target = check_output(out, input, sample_submission(data_dir) if data_dir else None)
    to_stdout = target.to_stdout  # "-", or a link to standard output
    wanted: list[str] = []
    if format == "dream-json":
        if data_dir is None:
            raise ValueError("--format dream-json needs --data-dir (the DREAM 2022 folder holding public_leaderboard/)")
        wanted = public_indices(data_dir)
    if seq_col is None:  # the run's training table's columns, when this table has them
        columns = run_columns(input, recorded_columns(model))
        if columns is not None:
            if id_col is not None:  # the id column given wins over the recorded one
                columns = dataclasses.replace(columns, id_col=None)
            seq_col, id_col = columns.seq_col, id_col if id_col is not None else columns.id_col
            if lead:
                print(columns_line(input, columns, runs=1 if isinstance(model, (str, os.PathLike)) else len(model)),
                      file=sys.stderr)
    chunks = read_input(input, seq_col=seq_col, id_col=id_col)  # checks the options before the model loads
    runner = load(model, device if trainer is None else trainer.strategy.root_device, batch_size=batch_size,
                  precision=precision, rc_average=rc_average)
    if not lead:  # another process of --devices N: predicts its shares, rank 0 writes
        from .parallel import predict_chunks_ddp

        predict_chunks_ddp(trainer, runner, chunks, None, standardized)
        return {"rows": 0, "out": None, "format": format, "units": units_text(standardized),
                "too_long": runner.too_long, "runs": len(runner.members), "rank": trainer.global_rank}
    with atomic_write(out) as handle:
        write = _Writer(handle, format, runner.target_names, wanted)
        if trainer is None:
            for chunk, values in runner.predict_chunks(chunks, standardized=standardized, progress=progress):
                write(chunk, values)
        else:
            from .parallel import predict_chunks_ddp

            predict_chunks_ddp(trainer, runner, chunks, write, standardized, progress)
        write.finish(input)
    n = write.n
    warning = runner.too_long_warning(input)
    if warning:
        print(warning, file=sys.stderr)
    return {"rows": n, "out": "-" if to_stdout else os.fspath(out), "format": format, "units": units_text(standardized),
            "too_long": runner.too_long, "runs": len(runner.members) if isinstance(runner, Ensemble) else 1, "rank": 0}


def processes(device: str, devices: int, num_nodes: int = 1, **inputs) -> tuple[object | None, bool]:
    """The processes of ``--devices N --num-nodes M``: Lightning's Trainer (None for one process)
    and whether this process is the lead, global rank 0, which writes the output and speaks.
    ``inputs`` (option name -> path) are files every process reads: a pipe is refused."""
    devices, num_nodes = whole("devices", devices, 1, MAX_DEVICES), whole("num_nodes", num_nodes, 1, MAX_DEVICES)
    if devices * num_nodes == 1:
        return None, True
    from .parallel import check_ddp_inputs, ddp_trainer

    check_ddp_inputs(devices, **inputs)
    trainer = ddp_trainer(device, devices, num_nodes)
    return trainer, trainer.is_global_zero


class _Writer:
    """predict's one writer: ``write(chunk, values)`` for each predicted chunk, in input order (a
    TSV's rows, or the DREAM public-leaderboard values kept), then :meth:`finish`."""

    def __init__(self, handle, format: str, names: list[str], wanted: list[str]):
        self.handle, self.format, self.names, self.wanted = handle, format, names, wanted
        self.needed, self.kept, self.n, self.header = {int(k) for k in wanted}, {}, 0, False

    def __call__(self, chunk, values) -> None:
        handle, n = self.handle, self.n
        if self.format == "tsv":
            if not self.header:
                self.header = True
                id_column = ["id"] if chunk.ids is not None else []
                handle.write("\t".join(id_column + ["sequence"] + self.names) + "\n")
            sequences = chunk.text()
            prefixes = [f"{i}\t{s}" for i, s in zip(chunk.ids, sequences)] if chunk.ids is not None else sequences
            handle.writelines(
                prefix + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n" for prefix, row in zip(prefixes, values)
            )
        else:
            for index in range(n, n + len(chunk)):
                if index in self.needed:
                    self.kept[index] = float(values[index - n, 0])
        self.n += len(chunk)

    def finish(self, input) -> None:
        """Refuse an input without sequences; write the DREAM JSON (every value is known now)."""
        n, wanted = self.n, self.wanted
        if n == 0:
            raise InputError(f"{input}: no sequences (the file is empty, blank or only a header)")
        if self.format == "dream-json":
            missing = [k for k in wanted if int(k) not in self.kept]
            if missing:
                raise ValueError(
                    f"{input} has {n:,} sequences but the submission needs test indices up to "
                    f"{max(int(k) for k in wanted):,} (e.g. {missing[0]}); pass the 71,103 DREAM test sequences in official order"
                )
            json.dump({k: self.kept[int(k)] for k in wanted}, self.handle)
