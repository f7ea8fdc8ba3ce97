"""The run directory while ``train`` writes it: the callback that hands each epoch's metrics to the
loggers (metrics.csv, :mod:`proformer.train.loggers`) and keeps the learning curve and the best
model up to date, and the lock that keeps a second ``train`` out.

The layout of the directory is in :mod:`proformer.train.run`'s docstring; ``config.json`` and
``weights.safetensors`` are written by :func:`proformer.io.run.write_run_model`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import filelock
import lightning as L
import torch

from ..config import RunConfig, save_run_config
from ..io.run import RunInfo, write_run_model
from ..plots import plot_learning_curve
from .history import metric_columns
from .loggers import MetricsCSV
from .module import ProformerModule, validated_weights

__all__ = ["LOCK", "RunDirectory", "RunDirectoryError", "RunLocked", "is_secondary_process", "run_lock"]

LOCK = ".train.lock"


class RunLocked(FileExistsError):
    """Another ``proformer train`` is writing the run directory."""


class RunDirectoryError(RuntimeError):
    """The run directory cannot be written."""


class RunDirectory(L.Callback):
    """After every validation: the epoch's row (metrics.csv's columns) to every logger of the
    trainer, metrics.csv (:attr:`metrics`, a :class:`MetricsCSV`) always among them; the
    learning curve from metrics.csv; and the best model, the weights validation judged (with
    ``train.ema``, the average; :func:`validated_weights`)."""

    def __init__(self, run_dir: Path, info: RunInfo, identity: dict | None = None):
        self.run_dir = run_dir
        self.info = info
        self.identity = identity or {}
        self.columns = metric_columns(info.target.names)
        #: metrics.csv; train() gives it to the Trainer as its first logger.
        self.metrics = MetricsCSV(run_dir, self.columns)
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
        if trainer.is_global_zero and self.pending_config is not None:
            save_run_config(self.pending_config, self.run_dir / "config.yaml")
            self.pending_config = None
        if trainer.is_global_zero:
            # On --resume, forget rows of epochs that will run again.
            self.metrics.drop_from(trainer.current_epoch)

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
        # Every logger gets the same figures once per epoch, at the epoch's last optimizer step.
        loggers = list(trainer.loggers)
        if not any(logger is self.metrics for logger in loggers):
            loggers.insert(0, self.metrics)
        figures = {k: v for k, v in row.items() if k != "step"}
        for logger in loggers:
            logger.log_metrics(figures, step=row["step"])
            logger.save()
        plot_learning_curve(self.metrics.rows(), self.run_dir / "learning_curve.png", self.run_dir.name)
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


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold ``run_dir/.train.lock`` (a :class:`filelock.FileLock`) for the block.

    Taken without waiting: held by another process, it raises :class:`RunLocked` at once. The
    operating system releases it when its process ends, however it ends, so a lock file left by
    a killed run blocks nothing. Only the launching process takes it; the DDP processes it
    starts run under its lock (:func:`is_secondary_process`).

    The file is removed at the end while still held, so a run leaves none behind (and a refused
    one changes nothing on disk): a process that opened it just before takes no lock on the
    removed file (filelock refuses a lock on a file with no name left) and is refused as if the
    lock were held.
    """
    if is_secondary_process():
        yield
        return
    path = run_dir / LOCK
    lock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
        held = path.stat()
    except filelock.Timeout:
        raise RunLocked(f"{run_dir} is being written by another proformer train (it holds {path}); wait for it to "
                        f"finish or use another --out") from None
    except OSError as error:
        if lock.is_locked:
            lock.release()
        raise RunDirectoryError(f"cannot write to the run directory {run_dir} ({error.strerror or error}); "
                                f"choose another --out") from None
    try:
        yield
    finally:
        try:
            if os.path.samestat(path.stat(), held):
                path.unlink()
        except OSError:
            pass
        finally:
            lock.release()
