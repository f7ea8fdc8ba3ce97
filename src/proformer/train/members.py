"""Ensemble runs: K member runs trained one after the other in one run directory and recorded in
``RUN/members.json``, which makes ``RUN`` one ensemble for :func:`proformer.load`
(:func:`proformer.io.run.member_runs`). Two kinds:

- ``folds``: K-fold cross-validation (``data.split=folds:K``; ``auto`` below 2,500 rows), members
  ``fold-k``, each validated on its fold (``data.split=fold:k/K``);
- ``seeds``: ``train.members=K``, members ``member-k`` with ``train.seed`` = seed + k and the
  same data options, so each draws its own initial weights, batches and (with a random split)
  validation rows.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..data.dataset import Dataset
from ..io.atomic import atomic_write
from ..io.run import MEMBERS
from .rundir import say
from .stop import TrainingStopped

__all__ = ["MEMBER_NAMES", "train_members"]

#: Each kind's member directories: ``fold-0`` ... or ``member-0`` ...
MEMBER_NAMES = {"folds": "fold", "seeds": "member"}


def train_members(config: RunConfig, run_dir: Path, resume: bool, progress: bool, kind: str, count: int,
                  train_one: Callable[..., dict], callbacks: Sequence = ()) -> dict:
    """The ``count`` member runs of ``kind`` (``folds`` or ``seeds``) one after the other, each
    recorded in ``members.json`` when it ends (the run is finished when all are).

    With ``--resume`` a finished member is kept and an unfinished one continues from its
    checkpoint. ``train.max_time`` is the whole run's: each member gets an equal share of what
    is left when it starts. The time estimate of each epoch line counts the members still to come.
    """
    name = MEMBER_NAMES[kind]
    what = f"{count}-fold run" if kind == "folds" else f"{count}-member run"
    if config.train.devices not in (1, "auto") or config.train.num_nodes != 1:
        fix = "data.split=random:0.8" if kind == "folds" else "train.members=1"
        raise ValueError(f"a {what} trains its members one at a time in one process; set train.devices=1, or "
                         f"{fix} to train one model on several devices")
    record = run_dir / MEMBERS
    if not resume and record.exists():
        raise FileExistsError(f"{run_dir} already holds an ensemble run; use --resume to continue it, or another --out")
    if not resume and (run_dir / f"{name}-0").exists():
        raise FileExistsError(f"{run_dir} holds an unfinished {what}; continue it with --resume, or choose another --out")
    if resume and not (run_dir / f"{name}-0").exists():
        raise FileNotFoundError(f"--resume: {run_dir / f'{name}-0'} does not exist; start the run without --resume")
    done = json.loads(record.read_text())["results"] if resume and record.exists() else []
    if done and len(done) >= count:
        raise FileExistsError(f"{run_dir} already holds a finished {what}; train into another --out")
    if kind == "folds":
        n_rows = len(Dataset(config.data.path))
        say(f"validation: {count}-fold cross-validation of {n_rows:,} rows (data.split=folds:{count}): {count} models, "
            f"each validated on its {n_rows // count:,} rows, saved in {run_dir} as one ensemble")
    else:
        say(f"ensemble: {count} models (train.members={count}), seeds {config.train.seed} ... "
            f"{config.train.seed + count - 1}, saved in {run_dir} as one ensemble")
    train_cfg = dataclasses.replace(config.train, devices=1, members=1)
    started, results = time.monotonic(), list(done)
    for k in range(len(done), count):
        member_dir = run_dir / f"{name}-{k}"
        member_train = train_cfg if kind == "folds" else dataclasses.replace(train_cfg, seed=train_cfg.seed + k)
        if train_cfg.max_time:
            left = train_cfg.max_time - (time.monotonic() - started) / 60
            member_train = dataclasses.replace(member_train, max_time=max(left, 0.01) / (count - k))
        data = dataclasses.replace(config.data, split=f"fold:{k}/{count}") if kind == "folds" else config.data
        say(f"{name} {k + 1}/{count}: {member_dir}")
        try:
            result = train_one(dataclasses.replace(config, train=member_train, data=data), member_dir,
                               resume and (member_dir / "checkpoints" / "last.ckpt").exists(), progress, callbacks,
                               member=(name, k, count))
        except TrainingStopped as error:
            # The run to resume is the ensemble run, which continues this member from its checkpoint.
            raise TrainingStopped(f"{name} {k + 1}/{count}: " + str(error).replace(f"--out {member_dir}", f"--out {run_dir}")) from None
        results.append({key: result[key] for key in ("best", "n_train", "n_valid", "epochs_run")})
        with atomic_write(record) as handle:
            json.dump({"kind": kind, "members": count, "runs": [f"{name}-{i}" for i in range(len(results))],
                       "results": results}, handle, indent=2)
    return _summary(run_dir, kind, results, result)


def _summary(run_dir: Path, kind: str, results: list[dict], last: dict) -> dict:
    """train()'s result for an ensemble run: each ``best`` figure the mean over the members."""
    keys = [key for key in results[0]["best"] if key != "epoch" and all(key in r["best"] for r in results)]
    best = {key: float(np.mean([r["best"][key] for r in results])) for key in keys}
    n_valid = [r["n_valid"] for r in results]
    return {**last, "run_dir": str(run_dir), "best": best, "kind": kind, "members": results,
            "n_train": sum(r["n_train"] for r in results) // len(results),
            # K folds validate every row once; seed members may validate the same rows.
            "n_valid": sum(n_valid) if kind == "folds" else n_valid[0],
            "epochs_run": sum(r["epochs_run"] for r in results)}
