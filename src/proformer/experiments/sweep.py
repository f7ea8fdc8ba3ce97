"""``run_sweep``: train every cell (and fold) of a grid as a trial of the sweep's Optuna study.

Any number of workers started with the same arguments share the study
(:mod:`proformer.experiments.study`, which also gives the layout of ``OUT``): each takes the next
waiting trial, heaviest model first, and stays until no cell waits or runs anywhere, so that the
cell of a killed worker (failed by Optuna's heartbeat check and queued again) is finished by
another. Finished cells are never trained again; a rerun retries failed ones. An interrupted
cell resumes from its last epoch checkpoint (written atomically, so it is whole); without one its
directory is deleted and it starts again.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..config import parse_override
from ..data.dataset import Dataset
from ..io.run import read_run_info
from .grids import Cell, Grid, full_key, load_grid
from .study import (ID_COLUMNS, METRIC_COLUMNS, check_settings, columns_for, describe, enqueue, is_collapsed,
                    open_study, quiet, study_rows, taken, work, write_results)
from .subsets import sweep_datasets

#: Settings that must match when a sweep's study is reused: results trained with other
#: settings would be mixed into one table.
_IDENTITY = ("grid", "preset", "set", "cells", "data", "epochs", "data_fraction", "folds", "overrides")
_CLOCK = "sweep_cell.json"


class CellFailed(Exception):
    """One cell raised: its trial is failed and the worker goes on with the next cell."""


def run_sweep(grid: str | Path | Grid, data: str | Path | None, out: str | Path, *, epochs: int = 20,
              data_fraction: float = 1.0, folds: int = 1, dry_run: bool = False, base: str | None = None,
              overrides: Sequence[str] = (), progress: bool = True, storage: str | None = None,
              heartbeat: int = 60) -> list[dict]:
    """Train every cell of a grid and keep each cell's best validation Pearson within ``epochs``.

    Parameters
    ----------
    grid : str, path or Grid
        A built-in grid (``poster-yeast``, ``poster-atac``, ``ablation``, ``cpu-study``) or a
        YAML grid file.
    data : path
        Prepared dataset directory (``proformer prepare``); may be None with ``dry_run``.
    out : path
        Sweep directory; rerunning with the same arguments resumes it, and any number of
        workers started with them share it.
    epochs : int
        Epoch budget of every cell; the best epoch within it is kept.
    data_fraction : float
        Train (and validate) on this share of the rows, chosen by sequence hash (the poster's
        yeast grid used 0.1).
    folds : int
        1: each cell's ``data.split``; K > 1: K-fold cross-validation by sequence hash, every
        cell trained K times (a trial per fold; reports show mean and spread).
    dry_run : bool
        Print the cells, one line each, and return them without training.
    base : str or None
        A run preset or run-config YAML replacing the grid's base preset.
    overrides : sequence of str
        ``key=value`` applied to every cell after its own (e.g. ``train.batch_size=128``).
    progress : bool
        Lightning's progress bar for each cell.
    storage : str or None
        Where the study lives: None for ``out/study.db``, an SQLAlchemy URL
        (``postgresql://user@host/db``), or a path ending ``.log`` (Optuna's journal file).
    heartbeat : int
        Seconds between this worker's heartbeats; a cell whose worker is silent for four times
        as long is failed and trained again by another worker.

    Returns
    -------
    list of dict
        With ``dry_run``: one per cell (``cell``, ``row``, ``column``, ``label``,
        ``overrides``); otherwise the study's rows (results.csv), every worker's cells.

    Raises
    ------
    ValueError
        For an override that the grid varies or the sweep sets itself, a bad cell config, or an
        ``out`` started with different settings.
    """
    for name, value in (("epochs", epochs), ("folds", folds), ("heartbeat", heartbeat)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= 1")
    grid = load_grid(grid)
    overrides = list(overrides)
    _check_overrides(grid, overrides, folds)
    if not 0.0 < data_fraction <= 1.0:
        raise ValueError(f"data fraction {data_fraction!r}: must be in (0, 1], e.g. 0.1 for 10 % of the rows")
    configs = {cell.id: _cell_config(grid, cell, base, overrides, epochs, data) for cell in grid.cells}
    if dry_run:
        return _dry_run(grid, configs, base or grid.preset, epochs, data_fraction, folds)
    if data is None:
        raise ValueError("no data: pass the prepared dataset directory (--data DIR)")
    Dataset(data)  # fail now, naming the directory, rather than in the first cell

    from ..bench import training_flops

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    columns = columns_for(grid.varied_keys())
    settings = sweep_settings(grid, base, overrides, data, epochs, data_fraction, folds,
                              splits=[config.data.split for config in configs.values()])
    with quiet():  # Optuna's own lines and warnings, for this sweep only
        study = open_study(out, storage, heartbeat)
        check_settings(study, settings, _IDENTITY, describe(out, storage))
        datasets = sweep_datasets(data, out / "data", data_fraction, folds)
        # (cell, fold) -> the cell, its config and the trial's first user attributes, in grid order.
        units = {}
        for cell, part in ((cell, part) for cell in grid.cells for part in datasets):
            config = _with_data(configs[cell.id], part)
            units[(cell.id, part["fold"])] = (cell, config, _attrs(cell, part["fold"], config, columns))
        numbers = {key: number for number, key in enumerate(units, 1)}
        # Heaviest models first, so that the last cells to finish are short ones and workers end together.
        enqueue(study, [attrs for _, _, attrs in sorted(units.values(), key=lambda u: -training_flops(u[1].model))])
        from ..train.stop import TrainingStopped  # (before a heartbeat thread competes with the import for the GIL)

        def objective(trial) -> float:
            import optuna

            if "cell" not in trial.user_attrs:
                raise optuna.TrialPruned("no cell: another worker took the last one")  # Optuna made a new trial
            if taken(study, trial):
                raise optuna.TrialPruned("another worker has this cell")
            cell, config, attrs = units[(trial.user_attrs["cell"], trial.user_attrs["fold"])]
            run_dir = out / "cells" / cell.id / (f"fold-{attrs['fold']}" if folds > 1 else "")
            name = cell.id + (f" fold {attrs['fold']}" if folds > 1 else "")
            at = f"[{numbers[(cell.id, attrs['fold'])]}/{len(units)}] {name}"
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            print(f"{at}: training ({' '.join(cell.overrides)})", file=sys.stderr, flush=True)
            try:
                result, seconds = _train_cell(config, run_dir, progress)
            except Exception as error:  # noqa: BLE001 - one failed cell must not end a 72-cell sweep
                trial.set_user_attr("error", _one_line(error))
                print(f"{at}: FAILED: {_one_line(error)}", file=sys.stderr, flush=True)
                if isinstance(error, TrainingStopped):
                    # SIGTERM: the user (or a scheduler) asked the sweep to stop, not just this cell.
                    raise type(error)(f"sweep {out} stopped (SIGTERM or Ctrl-C) in cell {name}; run the same command "
                                      f"again to resume it (finished cells are kept)") from None
                raise CellFailed(str(error)) from None
            row = _metrics_row(result, seconds)
            for key, value in row.items():
                trial.set_user_attr(key, value)
            print(f"{at}: val Pearson {row['val_pearson']:.4f} at epoch {row['best_epoch']}"
                  f"{' (collapsed)' if row['collapsed'] else ''}, {seconds:.0f} s", file=sys.stderr, flush=True)
            # Optuna fails a trial whose value is NaN: an undefined Pearson r is the worst value instead.
            return row["val_pearson"] if math.isfinite(row["val_pearson"]) else -math.inf

        try:
            work(study, objective, (CellFailed,), None if str(storage).endswith(".log") else heartbeat)  # journal: none
        finally:
            rows = study_rows(study, settings)
            write_results(out, rows, columns)
        return rows


def _one_line(error: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line (results.csv keeps one row per cell), cut to ``limit`` characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def failed_cells(rows: Sequence[dict]) -> list[str]:
    """``cell`` (``cell fold K`` with folds) of every results row that is not ``done``."""
    folds = len({row.get("fold") for row in rows}) > 1
    return [row["cell"] + (f" fold {row['fold']}" if folds else "") for row in rows if row.get("status") != "done"]


# -- configs -----------------------------------------------------------------------------------


def _check_overrides(grid: Grid, overrides: list[str], folds: int) -> None:
    varied = set(grid.varied_keys())
    reserved = {"data.path": "pass the dataset as --data DIR", "train.epochs": "use --epochs N"}
    if folds > 1:
        reserved["data.valid"] = "--folds builds each fold's validation set itself"
        reserved["data.split"] = "--folds replaces the split by hash folds"
    for item in overrides:
        key = full_key(parse_override(item)[0])
        if key in reserved:
            raise ValueError(f"--set {item}: the sweep sets {key} itself; {reserved[key]}")
        if key in varied:
            raise ValueError(f"--set {item}: grid {grid.name} varies {key} from cell to cell; overriding it would make "
                             f"cells identical. Write a YAML grid instead (docs/sweep.md)")


def _cell_config(grid: Grid, cell: Cell, base, overrides, epochs, data):
    extra = [f"train.epochs={epochs}"] + ([f"data.path={data}"] if data is not None else [])
    try:
        return grid.config(cell, base, [*overrides, *extra])
    except ValueError as error:
        raise ValueError(f"{grid.source} grid {grid.name}, cell {cell.id}: {error}") from None


def _with_data(config, part: dict):
    from ..config import apply_overrides

    values = {"data.path": part["path"]}
    if part["valid"] is not None:
        values["data.valid"] = part["valid"]
    return apply_overrides(config, values)


def sweep_settings(grid: Grid, base, overrides, data, epochs, data_fraction, folds, splits=()) -> dict:
    """What the study's ``settings`` attribute records: the grid, the recipe, the data and the machine.

    ``splits`` are the cells' ``data.split`` values (for the report; unused with folds > 1).
    """
    cells = [{"id": c.id, "overrides": list(c.overrides), "row": c.row, "column": c.column, "label": c.label}
             for c in grid.cells]
    return {"grid": grid.name, "source": grid.source, "description": grid.description, "preset": base or grid.preset,
            "set": list(grid.set), "cells": cells, "rows": list(grid.rows), "columns": list(grid.columns),
            "row_header": grid.row_header, "data": str(Path(data).resolve()), "epochs": epochs,
            "data_fraction": data_fraction, "folds": folds, "overrides": list(overrides), "splits": sorted(set(splits)),
            # Not checked on resume: where the first worker measured its cells' time, for the report.
            "machine": _machine()}


def _machine() -> dict:
    import platform

    import torch

    return {"host": platform.node(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "accelerator": "cuda" if torch.cuda.is_available() else "cpu"}


def _dry_run(grid: Grid, configs: dict, preset: str, epochs: int, data_fraction: float, folds: int) -> list[dict]:
    print(f"grid {grid.name} ({grid.source}): {len(grid.cells)} cells, preset {preset}"
          f"{', set ' + ' '.join(grid.set) if grid.set else ''}; {epochs} epochs, data fraction {data_fraction:g}"
          f"{f', {folds} folds' if folds > 1 else ''}", file=sys.stderr)
    width = max(len(cell.id) for cell in grid.cells)
    cells = []
    for cell in grid.cells:
        print(f"{cell.id:<{width}}  {' '.join(cell.overrides)}")
        cells.append({"cell": cell.id, "row": cell.row, "column": cell.column, "label": cell.label,
                      "overrides": list(cell.overrides), "config": configs[cell.id]})
    return cells


# -- one cell ----------------------------------------------------------------------------------


def _train_cell(config, run_dir: Path, progress: bool) -> tuple[dict, float]:
    """Train (or resume) one cell; returns train()'s result and the seconds spent on it overall."""
    from ..train import train

    resume = (run_dir / "checkpoints" / "last.ckpt").exists()
    if run_dir.exists() and not resume:
        # Killed before its first checkpoint: nothing worth keeping, and train() refuses a
        # directory that already holds config.json.
        shutil.rmtree(run_dir)
    prior = _start_clock(run_dir, resume)
    started = time.time()
    with warnings.catch_warnings():
        # Resuming writes into the cell's own checkpoint directory, which Lightning warns about.
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        result = train(config, run_dir, resume=resume, progress=progress)
    return result, prior + time.time() - started


def _start_clock(run_dir: Path, resume: bool) -> float:
    """Seconds this cell already spent in earlier, interrupted sessions (up to its checkpoint).

    Each session records when it started in ``sweep_cell.json``; the time an interrupted session
    spent before its last checkpoint is ``mtime(last.ckpt) - started``. Work after that
    checkpoint was lost and is redone, so it is not counted twice.
    """
    clock, prior = run_dir / _CLOCK, 0.0
    if resume and clock.exists():
        state = json.loads(clock.read_text())
        saved = (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime
        prior = state["prior_seconds"] + max(0.0, saved - state["started"])
    run_dir.mkdir(parents=True, exist_ok=True)
    clock.write_text(json.dumps({"started": time.time(), "prior_seconds": prior}) + "\n")
    return prior


def _metrics_row(result: dict, seconds: float) -> dict:
    best = result["best"]
    info = read_run_info(result["run_dir"])
    # val_prediction_std is in the units the model was trained in: z-units (target std 1) when
    # targets were standardised, raw units otherwise.
    target_std = 1.0
    if not info.target.standardized:
        target_std = float(Dataset(info.data["train"]).meta.get("target_std", [1.0])[0])
    return {
        "best_epoch": int(best["epoch"]) + 1,
        "epochs_run": int(result["epochs_run"]),
        "val_pearson": float(best["val_pearson"]),
        "val_spearman": float(best["val_spearman"]),
        "val_mse": float(best["val_mse"]),
        "val_prediction_std": float(best["val_prediction_std"]),
        "n_train": int(result["n_train"]),
        "n_valid": int(result["n_valid"]),
        "seconds": round(seconds, 1),
        "collapsed": is_collapsed(best["val_pearson"], best["val_prediction_std"], target_std),
    }


def _attrs(cell: Cell, fold: int, config, columns: list[str]) -> dict:
    """A trial's first user attributes: the cell's ids, overrides and config columns."""
    attrs = {"cell": cell.id, "fold": fold, "row": cell.row or "", "column": cell.column or cell.label or "",
             "overrides": list(cell.overrides)}
    for column in columns[len(ID_COLUMNS):-len(METRIC_COLUMNS)]:
        # Bare names are model fields (columns_for strips "model."), dotted ones other sections.
        section, _, name = column.rpartition(".")
        attrs[column] = getattr(getattr(config, section or "model"), name)
    return attrs
