"""The run directory while ``train`` writes it: the callback that hands each epoch's metrics to the
loggers (metrics.csv, :mod:`proformer.train.loggers`) and keeps the learning curve and the best
model up to date, the lock that keeps a second ``train`` out, and ``valid_data/``, a validation
file prepared like the training set (``data.valid`` naming a file: ``proformer train --valid FILE``).

The layout of the directory is in :mod:`proformer.train.run`'s docstring; ``config.json`` and
``weights.safetensors`` are written by :func:`proformer.io.run.write_run_model`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import sys
import time
from pathlib import Path

import lightning as L
import torch

from ..config import RunConfig, save_run_config
from ..io.lock import exclusive
from ..io.run import RunInfo, write_run_model
from ..plots import plot_learning_curve
from .history import metric_columns
from .loggers import MetricsCSV
from .module import ProformerModule, validated_weights

__all__ = ["LOCK", "VALID_DATA", "RunDirectory", "RunDirectoryError", "RunLocked", "is_secondary_process", "say",
           "keep_validation", "prepared_like", "run_lock", "validation_file"]

LOCK = ".train.lock"
#: Where a run keeps the validation file it prepared (``data.valid`` naming a file).
VALID_DATA = "valid_data"


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


def say(line: str) -> None:
    """One line for the person running train (stderr; the launching process only under DDP)."""
    if not is_secondary_process():
        print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold ``run_dir/.train.lock`` for the block (:func:`proformer.io.lock.exclusive`): held by
    another process, :class:`RunLocked` at once. Only the launching process takes it; the DDP
    processes it starts run under its lock (:func:`is_secondary_process`)."""
    if is_secondary_process():
        yield
        return
    path = run_dir / LOCK
    refused = lambda _: RunLocked(f"{run_dir} is being written by another proformer train (it holds {path}); "  # noqa: E731
                                  f"wait for it to finish or use another --out")
    unwritable = lambda error: RunDirectoryError(f"cannot write to the run directory {run_dir} "  # noqa: E731
                                                 f"({error.strerror or error}); choose another --out")
    with exclusive([path], refused, unwritable):
        yield


# -- a validation file, prepared like the training set -------------------------------------------

#: meta.json's drop reasons that only ``on_bad="skip"`` drops (too_long is the length filter).
_BAD_ROWS = ("wrong_columns", "empty_sequence", "invalid_symbol", "bad_target")


def prepared_like(meta: dict, directory: Path) -> dict:
    """The :func:`proformer.data.prepare.prepare` arguments that made the dataset whose meta.json
    is ``meta``: its format, a table's sequence and target columns, its trim and length, and
    ``on_bad="skip"`` where it dropped bad rows. ValueError for a dataset prepare did not make."""
    source = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    format = source.get("format")
    if format not in ("dream", "fasta", "table"):
        raise ValueError(f"data.valid names a file, which is prepared like data.path, but {directory} was not made by "
                         f"proformer prepare from a sequence file (meta.json source format {format!r}); prepare the "
                         f"validation file yourself (proformer prepare FILE --out DIR) and give that directory")
    transforms = meta.get("transforms") or {}
    settings = {"format": format, "trim": (int(transforms.get("head", 0)), int(transforms.get("tail", 0))),
                "length": transforms.get("length")}
    table = meta.get("table") or {}
    if format == "table" and table.get("seq_col"):
        settings.update(seq_col=table["seq_col"], target_cols=list(table.get("target_cols") or []))
    if any((meta.get("dropped") or {}).get(reason) for reason in _BAD_ROWS):
        settings["on_bad"] = "skip"
    return settings


def _settings_text(settings: dict) -> str:
    parts = [f"{settings['format']} format"]
    if "seq_col" in settings:
        parts.append(f"columns {settings['seq_col']} -> {', '.join(settings['target_cols']) or 'no targets'}")
    head, tail = settings["trim"]
    parts.append(f"trim {head},{tail}, length {settings['length']}")
    if settings.get("on_bad") == "skip":
        parts.append("bad rows skipped")
    return ", ".join(parts)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def validation_file(source: Path, train_dir: Path, train_meta: dict, run_dir: Path, resume: bool,
                    scratch: Path) -> tuple[Path, bool, str]:
    """The dataset to validate on for the validation file ``source``, and a line saying so.

    On ``--resume`` (and in the processes DDP starts, after the launching one prepared it), the
    run's own ``run_dir/valid_data`` when it was prepared from a file with the same bytes
    (meta.json's sha256). Otherwise ``source`` is prepared into ``scratch/valid_data`` as the
    training set in ``train_dir`` was (:func:`prepared_like`), so that nothing is written to the
    run directory before the run is checked and locked; :func:`keep_validation` moves it there
    then (the launching process only).

    Returns
    -------
    directory : Path
    staged : bool
        ``directory`` is in ``scratch``, for :func:`keep_validation`.
    line : str
    """
    from ..data.prepare import prepare

    kept = run_dir / VALID_DATA
    if (resume or is_secondary_process()) and (kept / "meta.json").is_file():
        from ..io.dataset import read_meta

        try:
            stored = (read_meta(kept).get("source") or {}).get("sha256")
        except (OSError, ValueError):
            stored = None
        if stored is not None and stored == _sha256(source):
            return kept, False, f"validation data: {kept}, prepared from {source} when the run started"
    settings = prepared_like(train_meta, train_dir)
    try:
        meta = prepare(source, scratch / VALID_DATA, progress=False, **settings)
    except ValueError as error:  # the file does not read as the training set's did
        raise ValueError(f"validation file {source}, read as {train_dir} was ({_settings_text(settings)}): "
                         f"{error}") from None
    return scratch / VALID_DATA, True, (f"validation data: {source} prepared as {train_dir} was "
                                        f"({_settings_text(settings)}): {meta['rows_kept']:,} rows, kept in {kept}")


def keep_validation(staged: Path, run_dir: Path) -> Path:
    """Move the dataset :func:`validation_file` prepared into ``run_dir/valid_data``, whole or not at
    all (replacing one there: :func:`proformer.io.dataset.publish`); returns that directory."""
    from ..io.dataset import publish

    kept, copy = run_dir / VALID_DATA, run_dir / f".{VALID_DATA}.staging"
    shutil.rmtree(copy, ignore_errors=True)
    try:
        shutil.copytree(staged, copy)  # a sibling of the final directory: publish renames it in
        publish(copy, kept)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return kept
