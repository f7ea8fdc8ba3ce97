"""``run_sweep``: train every cell of a grid, resumably, and tabulate the best validation scores.

Output directory::

    OUT/sweep.json              the settings the sweep was started with (checked on every rerun)
    OUT/results.csv             one row per finished cell (and fold), rewritten atomically
    OUT/cells/ID/               the cell's run directory (``proformer train``'s layout)
    OUT/cells/ID/fold-K/        ... one per fold with ``folds > 1``
    OUT/data/                   data-fraction and fold subsets, written once, read by every cell

A rerun skips every cell recorded as ``done`` in results.csv and does not touch its directory.
Several workers may share one sweep directory: ``shard=(k, n)`` (worker k of n takes every n-th
cell, e.g. one per GPU) or ``shard="auto"`` (each worker claims the next cell nobody holds, in
``OUT/claims/``, so cells of unequal cost spread evenly over any number of workers). A claim is
a ``CELL-foldK.json`` naming its worker and a ``CELL-foldK.lock`` (a :class:`filelock.FileLock`)
the worker holds while it trains the cell: a claim whose lock can be taken was left by a worker
that ended, and is taken over. results.csv is updated under a lock (``OUT/results.lock``), each
worker merging its row into what the others wrote.
A cell that was interrupted resumes from its last epoch checkpoint; without one (killed in its
first epoch) its directory is deleted and the cell starts again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock, Timeout

from ..config import parse_override
from ..data.dataset import Dataset
from ..io.run import read_run_info
from .grids import Cell, Grid, full_key, load_grid
from .results import (
    ID_COLUMNS,
    METRIC_COLUMNS,
    columns_for,
    is_collapsed,
    read_results,
    read_settings,
    write_results,
    write_settings,
)
from .subsets import sweep_datasets

#: Settings that must match when a sweep directory is reused: results trained with other
#: settings would be mixed into one table.
_IDENTITY = ("grid", "preset", "set", "cells", "data", "epochs", "data_fraction", "folds", "overrides")
_CLOCK = "sweep_cell.json"


def run_sweep(grid: str | Path | Grid, data: str | Path | None, out: str | Path, *, epochs: int = 20,
              data_fraction: float = 1.0, folds: int = 1, dry_run: bool = False, base: str | None = None,
              overrides: Sequence[str] = (), progress: bool = True,
              shard: tuple[int, int] | str | None = None) -> list[dict]:
    """Train every cell of a grid and keep each cell's best validation Pearson within ``epochs``.

    Parameters
    ----------
    grid : str, path or Grid
        A built-in grid (``poster-yeast``, ``poster-atac``, ``ablation``, ``cpu-study``) or a
        YAML grid file.
    data : path
        Prepared dataset directory (``proformer prepare``); may be None with ``dry_run``.
    out : path
        Sweep directory; rerunning with the same arguments resumes it.
    epochs : int
        Epoch budget of every cell; the best epoch within it is kept.
    data_fraction : float
        Train (and validate) on this share of the rows, chosen by sequence hash (the poster's
        yeast grid used 0.1).
    folds : int
        1: each cell's ``data.split``; K > 1: K-fold cross-validation by sequence hash, every
        cell trained K times (results.csv gets a row per fold, reports show mean and spread).
    dry_run : bool
        Print the cells, one line each, and return them without training.
    base : str or None
        A run preset or run-config YAML replacing the grid's base preset.
    overrides : sequence of str
        ``key=value`` applied to every cell after its own (e.g. ``train.batch_size=128``).
    progress : bool
        Lightning's progress bar for each cell.
    shard : (k, n), "auto" or None
        (k, n): train only every n-th cell (and fold), starting with the k-th (1-based), so that
        n workers started with k = 1..n on the same ``out`` share the sweep between them (one
        per GPU: ``CUDA_VISIBLE_DEVICES=k-1``). ``"auto"``: claim cells one at a time, heaviest
        model first, so any number of workers, started at any time, share the sweep and finish
        together. Each
        resumes like a single sweep.

    Returns
    -------
    list of dict
        With ``dry_run``: one per cell (``cell``, ``row``, ``column``, ``label``,
        ``overrides``); otherwise the results.csv rows.

    Raises
    ------
    ValueError
        For an override that the grid varies or the sweep sets itself, a bad cell config, or an
        ``out`` started with different settings.
    """
    for name, value in (("epochs", epochs), ("folds", folds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= 1")
    if shard is not None and shard != "auto":
        k, n = shard
        if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
            raise ValueError(f"shard {k}/{n}: must be K/N with 1 <= K <= N, e.g. 2/4 for the second of four workers")
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

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = sweep_settings(grid, base, overrides, data, epochs, data_fraction, folds,
                              splits=[config.data.split for config in configs.values()])
    with _locked(out):
        _check_settings(out, settings)
        write_settings(out, settings)
        datasets = sweep_datasets(data, out / "data", data_fraction, folds)

    columns = columns_for(grid.varied_keys())
    units = [(cell, part) for cell in grid.cells for part in datasets]
    done = {(row["cell"], row["fold"]) for row in read_results(out) if row["status"] == "done"}
    numbered = list(enumerate(units, start=1))
    if shard == "auto":
        # Heaviest cells first (model FLOPs per epoch), so that the last cells to finish are
        # short ones and the workers end together.
        numbered.sort(key=lambda item: -_cost(configs[item[1][0].id]))
    for number, (cell, part) in numbered:
        key = (cell.id, part["fold"])
        if key in done or (isinstance(shard, tuple) and (number - 1) % shard[1] != shard[0] - 1):
            continue
        claim = _claim(out, cell.id, part["fold"]) if shard == "auto" else None
        if shard == "auto" and claim is None:
            continue
        config = _with_data(configs[cell.id], part)
        run_dir = out / "cells" / cell.id / (f"fold-{part['fold']}" if folds > 1 else "")
        name = cell.id + (f" fold {part['fold']}" if folds > 1 else "")
        print(f"[{number}/{len(units)}] {name}: training ({' '.join(cell.overrides)})", file=sys.stderr, flush=True)
        row = {**_identity_row(cell, part["fold"]), **_config_row(config, columns)}
        try:
            result, seconds = _train_cell(config, run_dir, progress)
        except Exception as error:  # noqa: BLE001 - one failed cell must not end a 72-cell sweep
            row.update(status="failed", error=_one_line(error), collapsed="")
            print(f"[{number}/{len(units)}] {name}: FAILED: {row['error']}", file=sys.stderr, flush=True)
            if _stopped(error):
                # SIGTERM: the user (or a scheduler) asked the sweep to stop, not just this cell.
                _record(out, row, units, columns)
                _release(out, claim)
                raise type(error)(f"sweep {out} stopped (SIGTERM or Ctrl-C) in cell {name}; run the same command again to "
                                  f"resume it (finished cells are kept)") from None
        else:
            row.update(_metrics_row(result, seconds))
            print(f"[{number}/{len(units)}] {name}: val Pearson {row['val_pearson']:.4f} at epoch {row['best_epoch']}"
                  f"{' (collapsed)' if row['collapsed'] else ''}, {seconds:.0f} s", file=sys.stderr, flush=True)
        _record(out, row, units, columns)
        _release(out, claim)
    results = {(row["cell"], row["fold"]): row for row in read_results(out)}
    return [results[(c.id, p["fold"])] for c, p in units if (c.id, p["fold"]) in results]


def _one_line(error: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line (results.csv keeps one row per cell), cut to ``limit`` characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _stopped(error: BaseException) -> bool:
    """The cell's training was stopped by SIGTERM or Ctrl-C (:class:`proformer.train.run.TrainingStopped`)."""
    module = sys.modules.get("proformer.train.run")
    return module is not None and isinstance(error, module.TrainingStopped)


def failed_cells(rows: Sequence[dict]) -> list[str]:
    """``cell`` (``cell fold K`` with folds) of every results row that is not ``done``."""
    folds = len({row.get("fold") for row in rows}) > 1
    return [row["cell"] + (f" fold {row['fold']}" if folds else "") for row in rows if row.get("status") != "done"]


def parse_shard(text: str | None) -> tuple[int, int] | str | None:
    """``"2/4"`` -> ``(2, 4)``; ``"auto"`` and None unchanged (``--shard`` of the CLI and scripts)."""
    if text is None or text == "auto":
        return text
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"shard {text!r}: expected K/N (e.g. 2/4 for the second of four workers) or auto") from None
    if not 1 <= k <= n:
        raise ValueError(f"shard {text!r}: need 1 <= K <= N")
    return k, n


@contextlib.contextmanager
def _locked(out: Path):
    """Hold ``OUT/results.lock`` exclusively (workers of one sweep take turns writing)."""
    with FileLock(out / "results.lock"):
        yield


def _cost(config) -> float:
    """Training FLOPs per sequence of a cell's model: every cell of a sweep sees the same rows."""
    from ..bench import training_flops

    return training_flops(config.model)


def _claim_path(out: Path, cell: str, fold: int) -> Path:
    return out / "claims" / f"{cell}-fold{fold}.json"


def _claim(out: Path, cell: str, fold: int) -> FileLock | None:
    """Take (cell, fold) for this process unless it is done or held by a live worker.

    Returns the claim's lock, held until :func:`_release`, or None. A claim file whose lock
    can be taken was left by a worker that ended (killed): it is taken over.
    """
    path = _claim_path(out, cell, fold)
    path.parent.mkdir(exist_ok=True)
    with _locked(out):
        if any(r["cell"] == cell and r["fold"] == fold and r["status"] == "done" for r in read_results(out)):
            return None
        lock = FileLock(path.with_suffix(".lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return None  # a live worker trains the cell
        try:
            if path.exists():
                try:
                    holder = json.loads(path.read_text() or "{}")
                except (OSError, ValueError):
                    holder = {}
                print(f"{cell}: taking over the claim of process {holder.get('pid')} on {holder.get('host')}, "
                      f"which has ended", file=sys.stderr)
            path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}) + "\n")
        except BaseException:
            lock.release()
            raise
    return lock


def _release(out: Path, lock: FileLock | None) -> None:
    """Give a claim up once its cell is recorded: its files are removed, then its lock released.

    Under the results lock, which every worker holds while it opens a claim's lock, so that no
    worker is left holding a lock file that is gone."""
    if lock is None:
        return
    lock_path = Path(lock.lock_file)
    with _locked(out):
        lock_path.with_suffix(".json").unlink(missing_ok=True)
        lock_path.unlink(missing_ok=True)
        lock.release()


def _record(out: Path, row: dict, units, columns: list[str]) -> None:
    """Merge one finished cell's row into results.csv, keeping what other workers wrote."""
    with _locked(out):
        results = {(r["cell"], r["fold"]): r for r in read_results(out)}
        results[(row["cell"], row["fold"])] = row
        write_results(out, [results[(c.id, p["fold"])] for c, p in units if (c.id, p["fold"]) in results], columns)


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
    """What ``OUT/sweep.json`` records: the grid, the recipe, the data and the machine.

    ``splits`` are the cells' ``data.split`` values (for the report; unused with folds > 1).
    """
    return {
        "grid": grid.name,
        "source": grid.source,
        "description": grid.description,
        "preset": base or grid.preset,
        "set": list(grid.set),
        "cells": [{"id": c.id, "overrides": list(c.overrides), "row": c.row, "column": c.column, "label": c.label}
                  for c in grid.cells],
        "rows": list(grid.rows),
        "columns": list(grid.columns),
        "row_header": grid.row_header,
        "data": str(Path(data).resolve()),
        "epochs": epochs,
        "data_fraction": data_fraction,
        "folds": folds,
        "overrides": list(overrides),
        "splits": sorted(set(splits)),
        # Not checked on resume: where the time in results.csv was measured, for the report.
        "machine": _machine(),
    }


def _machine() -> dict:
    import os
    import platform

    import torch

    return {"host": platform.node(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "accelerator": "cuda" if torch.cuda.is_available() else "cpu"}


def _check_settings(out: Path, settings: dict) -> None:
    previous = read_settings(out)
    if previous is None:
        if (out / "results.csv").exists():
            raise ValueError(f"{out}/results.csv exists without sweep.json; this is not a sweep directory: use another --out")
        return
    for key in _IDENTITY:
        if previous.get(key) != settings[key]:
            was, now = previous.get(key), settings[key]
            if key == "cells":
                was, now = f"{len(was or [])} cells", f"{len(now)} cells (or other overrides)"
            raise ValueError(f"{out}/sweep.json: this sweep was started with {key}={was!r}, now {key}={now!r}; "
                             f"rerun with the same settings to resume it, or use another --out")


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

    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    resume = checkpoint.exists()
    if run_dir.exists() and not resume:
        # Killed before its first checkpoint: nothing worth keeping, and train() refuses a
        # directory that already holds config.json.
        shutil.rmtree(run_dir)
    prior = _start_clock(run_dir, resume)
    started = time.time()
    try:
        with warnings.catch_warnings():
            # Resuming writes into the cell's own checkpoint directory, which Lightning warns about.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            result = train(config, run_dir, resume=resume, progress=progress)
    except Exception as error:
        if not resume or _training_failed(error):
            raise  # a resumed cell that diverged again, or was stopped, is not a broken checkpoint
        # A checkpoint cut short by the kill (or from another version) cannot be loaded:
        # start the cell again rather than failing it.
        print(f"{run_dir}: cannot resume from {checkpoint} ({type(error).__name__}: {error}); "
              f"deleting the cell's directory and training it from scratch", file=sys.stderr, flush=True)
        shutil.rmtree(run_dir)
        prior = _start_clock(run_dir, False)
        started = time.time()
        result = train(config, run_dir, resume=False, progress=progress)
    return result, prior + time.time() - started


def _training_failed(error: BaseException) -> bool:
    module = sys.modules.get("proformer.train.module")
    return module is not None and isinstance(error, module.TrainingFailed)


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
        "status": "done",
        "error": "",
    }


def _identity_row(cell: Cell, fold: int) -> dict:
    return {"cell": cell.id, "fold": fold, "row": cell.row or "", "column": cell.column or cell.label or ""}


def _config_row(config, columns: list[str]) -> dict:
    row = {}
    for column in columns[len(ID_COLUMNS):-len(METRIC_COLUMNS)]:
        # Bare names are model fields (columns_for strips "model."), dotted ones other sections.
        section, _, name = column.rpartition(".")
        row[column] = getattr(getattr(config, section or "model"), name)
    return row
