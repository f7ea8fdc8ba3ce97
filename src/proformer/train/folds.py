"""K-fold runs (``data.split=folds:K``; ``auto`` below 2,500 rows): K runs ``RUN/fold-k``, each
validated on its fold, trained one after the other and recorded in ``RUN/folds.json``, which
makes ``RUN`` one ensemble for :func:`proformer.load` (:func:`proformer.io.run.member_runs`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..config import RunConfig
from ..data.dataset import Dataset
from ..io.atomic import atomic_write
from ..io.run import FOLDS
from .rundir import say
from .stop import TrainingStopped

__all__ = ["train_folds"]


def train_folds(config: RunConfig, run_dir: Path, resume: bool, progress: bool, folds: int,
                train_one: Callable[..., dict], callbacks: Sequence = ()) -> dict:
    """``data.split=folds:K``: the K fold runs one after the other, each recorded in ``folds.json``
    when it ends (the run is finished when all K are).

    With ``--resume`` a finished fold is kept and an unfinished one continues from its
    checkpoint. ``train.max_time`` is the whole run's: each fold gets an equal share of what is
    left when it starts. The time estimate of each epoch line counts the folds still to come.
    """
    if config.train.devices not in (1, "auto") or config.train.num_nodes != 1:
        raise ValueError(f"data.split={config.data.split}: a K-fold run trains its folds one at a time in one process; "
                         f"set train.devices=1, or data.split=random:0.8 to train one model on several devices")
    record = run_dir / FOLDS
    if not resume and record.exists():
        raise FileExistsError(f"{run_dir} already holds a K-fold run; use --resume to continue it, or another --out")
    if not resume and (run_dir / "fold-0").exists():
        raise FileExistsError(f"{run_dir} holds an unfinished K-fold run; continue it with --resume, or choose another --out")
    if resume and not (run_dir / "fold-0").exists():
        raise FileNotFoundError(f"--resume: {run_dir / 'fold-0'} does not exist; start the run without --resume")
    done = json.loads(record.read_text())["results"] if resume and record.exists() else []
    if done and len(done) >= folds:
        raise FileExistsError(f"{run_dir} already holds a finished {folds}-fold run; train into another --out")
    n_rows = len(Dataset(config.data.path))
    say(f"validation: {folds}-fold cross-validation of {n_rows:,} rows (data.split=folds:{folds}): {folds} models, "
         f"each validated on its {n_rows // folds:,} rows, saved in {run_dir} as one ensemble")
    train_cfg = dataclasses.replace(config.train, devices=1)
    started, results = time.monotonic(), list(done)
    for k in range(len(done), folds):
        fold_dir = run_dir / f"fold-{k}"
        fold_train = train_cfg
        if train_cfg.max_time:
            left = train_cfg.max_time - (time.monotonic() - started) / 60
            fold_train = dataclasses.replace(train_cfg, max_time=max(left, 0.01) / (folds - k))
        fold_config = dataclasses.replace(config, train=fold_train,
                                          data=dataclasses.replace(config.data, split=f"fold:{k}/{folds}"))
        say(f"fold {k + 1}/{folds}: {fold_dir}")
        try:
            result = train_one(fold_config, fold_dir, resume and (fold_dir / "checkpoints" / "last.ckpt").exists(),
                                progress, callbacks, fold=(k, folds))
        except TrainingStopped as error:
            # The run to resume is the K-fold run, which continues this fold from its checkpoint.
            raise TrainingStopped(f"fold {k + 1}/{folds}: " + str(error).replace(f"--out {fold_dir}", f"--out {run_dir}")) from None
        results.append({key: result[key] for key in ("best", "n_train", "n_valid", "epochs_run")})
        with atomic_write(record) as handle:
            json.dump({"folds": folds, "runs": [f"fold-{i}" for i in range(len(results))], "results": results}, handle,
                      indent=2)
    return _fold_summary(run_dir, results, result)


def _fold_summary(run_dir: Path, results: list[dict], last: dict) -> dict:
    """train()'s result for a K-fold run: each ``best`` figure the mean over the folds."""
    keys = [key for key in results[0]["best"] if key != "epoch" and all(key in r["best"] for r in results)]
    best = {key: float(np.mean([r["best"][key] for r in results])) for key in keys}
    return {**last, "run_dir": str(run_dir), "best": best, "folds": results,
            "n_train": sum(r["n_train"] for r in results) // len(results),
            "n_valid": sum(r["n_valid"] for r in results),
            "epochs_run": sum(r["epochs_run"] for r in results)}
