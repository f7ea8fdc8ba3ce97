"""``proformer evaluate``: a trained run against measured values, per target.

The labelled rows are predicted exactly as ``proformer predict`` predicts them (the same reader,
:func:`proformer.io.inputs.read_input`, and the same model, :func:`proformer.load`), in training
units, and compared with the
measured values: n, Pearson r and Spearman rho (:mod:`proformer.metrics`, the package's one
definition), the mean squared error and the coefficient of determination R^2.

Labelled rows
    A CSV/TSV table with a header (``seq_col`` and the measured columns), a DREAM TSV
    (``sequence<TAB>value``), plain or gzip, or a prepared dataset directory with targets.
    Without ``seq_col``, a table whose header has the sequence column of the run's training
    table (``config.json`` ``data.columns``) is read with it, as ``proformer predict`` does.
Matching the run's targets to measured columns
    By name: the run's target names against the table's columns or the dataset's
    ``target_names`` (``target_cols`` narrows the table's columns to those named). A run with
    one target and data with one measured column match whatever their names. Anything else is an
    error naming both sides.
Missing values
    An empty, ``NA`` or ``NaN`` field of a table leaves that row out of that target's metrics
    (``missing`` counts them); any other non-number is an error naming ``file:line``.
Ensembles
    Several run directories are evaluated as one model: the metrics are those of the mean of the
    runs' predictions (:class:`proformer.inference.Ensemble`, as ``proformer predict --model A
    --model B`` writes it), not the mean of each run's metrics.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .inference import load, read_target_names, recorded_columns, units_text
from .io.atomic import atomic_write
from .io.folders import check_output_folder, output_folder
from .io.errors import InputError
from .io.inputs import check_input_options, columns_line, measured_columns, read_input, run_columns
from .metrics import pearson, spearman
from .plots import plot_scatter

__all__ = ["Evaluation", "TargetMetrics", "evaluate", "match_targets", "regression_metrics"]

#: The files ``evaluate --out-dir`` writes in its folder (main file first).
EVALUATE_FILES = ("metrics.json", "scatter_*.png")


@dataclass
class TargetMetrics:
    """One target's agreement with its measured column, in training units.

    Attributes
    ----------
    target, column : str
        The run's target and the data's measured column it was compared with.
    n : int
        Rows with a measured value (the rows the metrics use).
    missing : int
        Rows left out because the value was missing (empty, NA, NaN).
    pearson, spearman, mse, r2 : float
        NaN where undefined (fewer than two rows, a constant column).
    scatter : str or None
        The hexbin scatter PNG, when an output directory was given.
    """

    target: str
    column: str
    n: int
    missing: int
    pearson: float
    spearman: float
    mse: float
    r2: float
    scatter: str | None = None


@dataclass
class Evaluation:
    """What :func:`evaluate` measured: one :class:`TargetMetrics` per matched target.

    ``model`` is the run directory, or the list of an ensemble's run directories.
    """

    model: str | list[str]
    data: str
    rows: int
    units: str
    targets: list[TargetMetrics] = field(default_factory=list)
    too_long: int = 0

    def to_dict(self) -> dict:
        """JSON-ready: ``{"model", "data", "rows", "units", "too_long", "targets": {name: {"column",
        "n", "missing", "pearson", "spearman", "mse", "r2", "scatter"}}}`` (``model``: a list of
        run directories for an ensemble); NaN becomes null (JSON has no NaN)."""
        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        targets = {}
        for metrics in self.targets:
            values = asdict(metrics)
            name = values.pop("target")
            targets[name] = {key: clean(value) for key, value in values.items()}
        return {"model": self.model, "data": self.data, "rows": self.rows, "units": self.units,
                "too_long": self.too_long, "targets": targets}

    def model_text(self) -> str:
        """The run directory, or ``the mean of K runs (A, B, ...)`` for an ensemble."""
        if isinstance(self.model, str):
            return self.model
        return f"the mean of {len(self.model)} runs ({', '.join(self.model)})"

    def to_table(self) -> str:
        """A fixed-width table, one line per target, under a line naming the model and the data."""
        rows = [(m.target, m.column, f"{m.n:,}", f"{m.pearson:.4f}", f"{m.spearman:.4f}", f"{m.mse:.4g}",
                 f"{m.r2:.4f}") for m in self.targets]
        header = ("target", "column", "n", "pearson", "spearman", "mse", "r2")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = [f"{self.model_text()} on {self.data}: {self.rows:,} rows, metrics in {self.units}"]
        for row in [header, *rows]:
            lines.append("  ".join(value.ljust(w) if i < 2 else value.rjust(w) for i, (value, w) in enumerate(zip(row, widths))))
        missing = [f"{m.target} {m.missing:,}" for m in self.targets if m.missing]
        if missing:
            lines.append(f"rows without a measured value, left out: {', '.join(missing)}")
        scatters = [m.scatter for m in self.targets if m.scatter]
        if scatters:
            lines.append(f"scatter plots: {', '.join(scatters)}")
        return "\n".join(lines)


def regression_metrics(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Pearson r, Spearman rho, MSE and R^2 of ``(n,)`` predictions against ``(n,)`` measurements.

    R^2 is the coefficient of determination, ``1 - sum((y - p)^2) / sum((y - mean(y))^2)``: 1 for
    a perfect prediction, 0 for predicting the mean, negative for worse (unlike r^2 it sees a
    wrong scale or offset). NaN where undefined (no rows; a constant measurement for R^2).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    if len(measured) == 0:
        return {"pearson": math.nan, "spearman": math.nan, "mse": math.nan, "r2": math.nan}
    residual = float(np.sum((measured - predicted) ** 2))
    total = float(np.sum((measured - measured.mean()) ** 2))
    return {"pearson": pearson(predicted, measured), "spearman": spearman(predicted, measured),
            "mse": residual / len(measured), "r2": 1.0 - residual / total if total > 0 else math.nan}


def match_targets(run_names: Sequence[str], columns: Sequence[str], data: str, chosen: bool,
                  hint: str = "name the measured columns after the run's targets") -> list[tuple[int, str]]:
    """Pair the run's targets with measured columns: ``[(target index, column), ...]``.

    Parameters
    ----------
    run_names : list of str
        The run's target names, in its output order.
    columns : list of str
        The data's measured columns (a table's candidate columns, a dataset's ``target_names``,
        ``["value"]`` for a DREAM TSV).
    data : str
        Names the data in errors.
    chosen : bool
        ``columns`` were named with ``--target-col``: every one must match.
    hint : str
        What to do when nothing matches (it depends on the kind of data).

    By name first; a one-target run and one column match whatever their names. Raises
    ValueError naming both sides when that leaves nothing, or a chosen column, unmatched.
    """
    run_names, columns = list(run_names), list(columns)
    run_text = f"{len(run_names)} target(s) ({', '.join(run_names)})"
    column_text = f"{len(columns)} measured column(s) ({', '.join(columns) or 'none'})"
    if len(run_names) == 1 and len(columns) == 1:
        return [(0, columns[0])]
    matched = [(run_names.index(column), column) for column in columns if column in run_names]
    unmatched = [column for column in columns if column not in run_names]
    if chosen and unmatched:
        raise ValueError(f"--target-col {unmatched[0]!r} is not a target of the run, which predicts {run_text}; "
                         f"{data} gives {column_text}. Give --target-col the columns named after the run's targets "
                         f"(one column for a one-target run may have any name)")
    if not matched:
        raise ValueError(f"cannot match the run's {run_text} to {data}'s {column_text}: {hint}")
    return sorted(matched)


def _file_name(name: str) -> str:
    """A target name as a safe file-name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "target"


def evaluate(model_dir: str | os.PathLike | Sequence[str | os.PathLike], data: str | os.PathLike, *, seq_col: str | None = None,
             target_cols: Sequence[str] = (), id_col: str | None = None, out_dir: str | os.PathLike | None = None, batch_size: int = 256,
             device: str = "auto", precision: str = "32", rc_average: bool | None = None,
             progress: bool = True) -> Evaluation:
    """Predict the labelled rows of ``data`` with ``model_dir`` and compare, target by target.

    Parameters
    ----------
    model_dir : path, or list of paths
        A run directory (``config.json`` + ``weights.safetensors``); a list or tuple of them is evaluated
        as one ensemble: the mean of the runs' predictions (which must be of the same targets).
    data : path
        A table with a header (``seq_col``; measured columns by name or ``target_cols``), a DREAM
        TSV ``sequence<TAB>value``, plain or gzip, or a prepared dataset directory with targets.
    seq_col : str, optional
        The table's sequence column; default: the sequence column of the run's training table
        when the header has it (one line on stderr says so; an ensemble's runs must agree).
        Otherwise the file is read as a DREAM TSV (a first line is a header only when its first
        field is ``sequence``), and a header without the run's sequence column is an error
        naming the columns it has.
    target_cols : list of str
        The table's measured columns; default: those named after the run's targets (the target
        columns of its training table), or the one column besides ``seq_col`` and ``id_col``
        for a one-target run.
    id_col : str, optional
        The table's id column: checked to exist and never taken as a measured column
        (evaluate writes no per-row output).
    out_dir : path, optional
        Also write ``metrics.json`` (:meth:`Evaluation.to_dict`) and ``scatter_TARGET.png`` (a
        hexbin of predicted against measured, with a colour bar) per target. The folder then
        holds this run's files only (:func:`proformer.io.folders.output_folder`): they are staged
        and swapped in together, an earlier run's ``metrics.json`` and ``scatter_*.png`` are
        removed, other files stay, and a failure leaves the folder as it was.
    batch_size, device, precision, rc_average
        As ``proformer predict``.
    progress : bool
        A progress line on stderr.

    Returns
    -------
    Evaluation
        Per target: n, missing, Pearson, Spearman, MSE, R^2 (training units).
    """
    data = os.fspath(data)
    target_cols = list(target_cols)
    columns = run_columns(data, recorded_columns(model_dir), input_flag="--data") if seq_col is None else None
    if columns is not None:  # the run's training table's columns, which this table has
        if id_col is not None:  # the id column given wins over the recorded one
            columns = dataclasses.replace(columns, id_col=None)
        seq_col, id_col = columns.seq_col, id_col if id_col is not None else columns.id_col
    kind = check_input_options(data, seq_col, id_col, target_cols, input_flag="--data")
    # config.json only (an ensemble's runs are checked against each other): the weights load
    # once the data is known good.
    run_names = read_target_names(model_dir)
    candidates = measured_columns(data, kind, seq_col, target_cols, id_col)
    hint = {"table": "pick the measured columns with --target-col NAME: any one column for a one-target run, "
                     "columns named after the run's targets otherwise",
            "dream": "a DREAM TSV holds one value column, which fits a one-target run; give a table whose header "
                     "names the run's targets (--seq-col, --target-col)",
            "dataset": "its meta.json target_names must name the run's targets (any one column fits a one-target "
                       "run); prepare it from a table whose columns are named so"}[kind]
    pairs = match_targets(run_names, candidates, f"--data {data}", chosen=bool(target_cols), hint=hint)
    if columns is not None:
        # the measured columns matched to the run's targets, unless --target-col named them
        used = dataclasses.replace(columns, target_cols=[] if target_cols else [column for _, column in pairs])
        runs = 1 if isinstance(model_dir, (str, os.PathLike)) else len(model_dir)
        print(columns_line(data, used, runs), file=sys.stderr)
    if kind == "table":
        chunks = read_input(data, seq_col=seq_col, id_col=id_col, target_cols=[column for _, column in pairs],
                            input_flag="--data")
        picked = list(range(len(pairs)))
    else:
        chunks = read_input(data, values=True, input_flag="--data")
        picked = [candidates.index(column) for _, column in pairs]
    if out_dir is not None:
        out_dir = Path(out_dir)
        check_output_folder(out_dir, "--out-dir", "evaluate writes a folder")  # before minutes of prediction
    runner = load(model_dir, device, batch_size=batch_size, precision=precision, rc_average=rc_average)
    predicted, measured = [np.zeros((0, runner.n_targets))], [np.zeros((0, len(pairs)))]
    for chunk, values in runner.predict_chunks(chunks, progress=progress):
        predicted.append(values)
        measured.append(chunk.targets[:, picked])
    warning = runner.too_long_warning(data)
    if warning:
        print(warning, file=sys.stderr)
    predictions, truth = np.concatenate(predicted), np.concatenate(measured)
    if len(predictions) == 0:
        raise InputError(f"--data {data}: no rows (the file is empty, blank or only a header)")
    model = os.fspath(model_dir) if isinstance(model_dir, (str, os.PathLike)) else [os.fspath(m) for m in model_dir]
    result = Evaluation(model=model, data=data, rows=len(predictions), units=units_text(False),
                        too_long=runner.too_long)
    scatters = []  # (name, predicted, measured, entry, r2), drawn once every target is known
    for j, (index, column) in enumerate(pairs):
        known = np.isfinite(truth[:, j])
        metrics = regression_metrics(predictions[known, index], truth[known, j])
        entry = TargetMetrics(target=run_names[index], column=column, n=int(known.sum()),
                              missing=int((~known).sum()), **metrics)
        if out_dir is not None and entry.n:
            stem = _file_name(entry.target)
            if any(m.scatter and Path(m.scatter).name == f"scatter_{stem}.png" for m in result.targets):
                stem = f"{stem}_{index}"  # two names that differ only in unsafe characters
            entry.scatter = str(out_dir / f"scatter_{stem}.png")
            scatters.append((f"scatter_{stem}.png", predictions[known, index], truth[known, j], entry, metrics["r2"]))
        result.targets.append(entry)
    if out_dir is not None:
        # The folder holds this run's files only: staged, then swapped in together.
        with output_folder(out_dir, EVALUATE_FILES, flag="--out-dir", what="evaluate writes a folder") as staging:
            for name, predicted, measured, entry, r2 in scatters:
                plot_scatter(predicted, measured, staging / name, f"{Path(data).name}: {entry.target}",
                             f"measured {entry.target}", f"predicted {entry.target}", r2=r2)
            with atomic_write(staging / "metrics.json", flag="--out-dir") as handle:
                json.dump(result.to_dict(), handle, indent=2)
                handle.write("\n")
    return result
