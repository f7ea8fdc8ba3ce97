"""The run directory while ``train`` writes it: the callback that keeps metrics.csv, the learning
curve and the best model up to date, and the lock that keeps a second ``train`` out.

The layout of the directory is in :mod:`proformer.train.run`'s docstring; ``config.json`` and
``weights.pt`` are written by :func:`proformer.io.run.write_run_model`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import lightning as L
import torch

from ..config import RunConfig, save_run_config
from ..io.atomic import process_alive
from ..io.run import RunInfo, write_run_model
from ..plots import plot_learning_curve
from .history import metric_columns, read_metrics, write_metrics
from .module import ProformerModule, validated_weights

__all__ = ["LOCK", "RunDirectory", "RunDirectoryError", "RunLocked", "is_secondary_process", "run_lock"]

LOCK = ".train.lock"


class RunLocked(FileExistsError):
    """Another ``proformer train`` is writing the run directory."""


class RunDirectoryError(RuntimeError):
    """The run directory cannot be written."""


class RunDirectory(L.Callback):
    """Writes metrics.csv and the learning curve every epoch, and exports the best model: the
    weights validation judged (with ``train.ema``, the average; :func:`validated_weights`)."""

    def __init__(self, run_dir: Path, info: RunInfo, identity: dict | None = None):
        self.run_dir = run_dir
        self.info = info
        self.identity = identity or {}
        self.columns = metric_columns(info.target.names)
        self.best = -math.inf
        #: A config to write to config.yaml once training has started (on --resume: after the
        #: checkpoint was restored, so a resume that fails leaves the run's own config.yaml).
        self.pending_config: RunConfig | None = None
        self.started = time.time()

    def state_dict(self) -> dict:
        # "data": which datasets the run trains on, for --resume to refuse another one.
        # "rng": torch's random state (dropout) at the end of the epoch, so that a resumed run
        # draws what the uninterrupted one would have (the masks, shifts and shuffles are keyed
        # by seed and epoch already). Under DDP every rank has the same state (one seed, the
        # same number of draws), so rank 0's is every rank's.
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"best": self.best, "data": self.identity, "rng": rng}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
        rng = state.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def on_train_start(self, trainer: L.Trainer, module: ProformerModule) -> None:
        # On --resume, forget rows of epochs that will run again.
        path = self.run_dir / "metrics.csv"
        if trainer.is_global_zero and self.pending_config is not None:
            save_run_config(self.pending_config, self.run_dir / "config.yaml")
            self.pending_config = None
        if trainer.is_global_zero and path.exists():
            rows = [row for row in read_metrics(path) if int(row["epoch"]) < trainer.current_epoch]
            write_metrics(path, rows, self.columns)

    def on_validation_end(self, trainer: L.Trainer, module: ProformerModule) -> None:
        if trainer.sanity_checking or not module.val_history:
            return
        means = module.train_means()
        if trainer.world_size > 1:
            means = {k: float(trainer.strategy.reduce(torch.tensor(v, device=module.device), reduce_op="mean")) for k, v in means.items()}
        if not trainer.is_global_zero:
            return
        latest = module.val_history[-1]
        row = {
            "epoch": latest["epoch"],
            "step": trainer.global_step,
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            **means,
            **{k: latest[k] for k in self.columns if k.startswith("val_")},
            "seconds": round(time.time() - self.started, 1),
        }
        path = self.run_dir / "metrics.csv"
        rows = read_metrics(path) if path.exists() else []
        write_metrics(path, [r for r in rows if int(r["epoch"]) != row["epoch"]] + [row], self.columns)
        plot_learning_curve(read_metrics(path), self.run_dir / "learning_curve.png", self.run_dir.name)
        # An epoch without a Pearson (constant or non-finite predictions) is never the best model.
        score = latest["val_pearson"]
        if math.isfinite(score) and score > self.best:
            self.best = score
            write_run_model(self.run_dir, validated_weights(trainer, module), self.info.with_best(latest))


# -- the run directory's lock ----------------------------------------------------------------


def is_secondary_process() -> bool:
    """A DDP process other than the launching one (its train() shares the launcher's lock)."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        try:
            if int(os.environ.get(name, "0")) > 0:
                return True
        except ValueError:
            pass
    return False


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold ``run_dir/.train.lock`` (created with O_EXCL, holding this PID) for the block.

    A lock whose process is gone (a killed run) is taken over; one held by a live process
    raises :class:`RunLocked` at once.
    """
    if is_secondary_process():
        yield
        return
    path = run_dir / LOCK
    for attempt in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            pid = _lock_owner(path)
            if pid is None:
                try:
                    young = time.time() - path.stat().st_mtime < 10
                except FileNotFoundError:
                    continue
                if young:  # being written by a train that has just started
                    pid = -1
            if pid is not None and (pid == -1 or process_alive(pid)):
                who = f"PID {pid}" if pid > 0 else "a process that has just started"
                raise RunLocked(f"{run_dir} is being written by another proformer train ({who}, lock file {path}); "
                                f"wait for it to finish or use another --out (if no such process runs, remove "
                                f"{path})") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale: its process is gone
        except OSError as error:
            raise RunDirectoryError(f"cannot write to the run directory {run_dir} ({error.strerror}); "
                                    f"choose another --out") from None
    else:
        raise RunLocked(f"{run_dir}: could not take the lock {path}; another train may be starting; try again")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        if _lock_owner(path) == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()
