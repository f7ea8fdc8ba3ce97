"""What training tells the person running it: one line per epoch on stderr (:class:`EpochLines`,
shown whatever the progress setting, with the time the rest of the run will take) and the
end-of-training summary line (:func:`best_summary`, printed by ``proformer train``).
"""

from __future__ import annotations

import math
import sys
import time

import lightning as L

from .members import MEMBER_NAMES
from .module import ProformerModule, target_keys

__all__ = ["EpochLines", "best_summary", "duration", "saved_line"]


def duration(seconds: float) -> str:
    """``seconds`` for a person: ``"0.4 s"``, ``"34 s"``, ``"9 min 40 s"``, ``"2 h 5 min"``."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class EpochLines(L.Callback):
    """After each validation, one line on stderr: the epoch (k/N), its training loss and validation
    metrics (with several targets, each target's Pearson too), its time, and an estimate of the
    time left: the mean epoch time so far (the epochs of this process) times the epochs to go.
    ``at most`` where the run may end sooner: early stopping, or ``train.max_time`` when it comes
    before the planned epochs are done.

    ``member`` ``(name, k, K)``: the run is member k of an ensemble run of K (``name`` ``fold``
    or ``member``, :mod:`proformer.train.members`), said in front of each line; the members after
    it, as many epochs each as this one plans, are counted in the time left.

    ``steps``: within an epoch, also a :class:`proformer.progress.Progress` line at most every
    ``every`` seconds (a log file in place of Lightning's bar). With the bar on (a terminal), the
    epoch line goes through the bar so that it does not break the bar's line.
    """

    def __init__(self, steps: bool = False, every: float = 60.0, member: tuple[str, int, int] | None = None):
        self.steps, self.every = steps, every
        self.member = member
        self.progress = None
        self.epoch_started: float | None = None
        self.epoch_seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: ProformerModule) -> None:
        self.epoch_started = time.monotonic()
        if self.steps and trainer.is_global_zero:
            from ..progress import Progress

            total = trainer.num_training_batches
            self.progress = Progress(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}",
                                     total=total if math.isfinite(total) else None, unit="steps", every=self.every)

    def on_train_batch_end(self, trainer: L.Trainer, module: ProformerModule, outputs, batch, batch_idx: int) -> None:
        if self.progress is not None:
            self.progress.update(batch_idx + 1)

    def on_validation_end(self, trainer: L.Trainer, module: ProformerModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not module.val_history:
            return
        seconds = time.monotonic() - self.epoch_started if self.epoch_started is not None else math.nan
        if math.isfinite(seconds):
            self.epoch_seconds.append(seconds)
        latest, train_loss = module.val_history[-1], module.train_means()["train_loss"]
        keys = target_keys(module.target_names)
        each = ""
        if len(keys) > 1:
            each = " (mean; " + ", ".join(f"{name} {latest[f'val_pearson_{k}']:.4f}"
                                          for name, k in zip(module.target_names, keys)) + ")"
        line = (("" if self.member is None else f"{self.member[0]} {self.member[1] + 1}/{self.member[2]} ") +
                f"epoch {latest['epoch'] + 1}/{trainer.max_epochs}: train loss {train_loss:.4f}, validation MSE "
                f"{latest['val_mse']:.4f}, Pearson {latest['val_pearson']:.4f}{each}, Spearman "
                f"{latest['val_spearman']:.4f}; {duration(seconds) if math.isfinite(seconds) else '?'}")
        left = self.time_left(trainer, latest["epoch"] + 1)
        if left:
            line += f"; {left}"
        bar = trainer.progress_bar_callback
        if bar is not None and bar.is_enabled:
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)  # above the bar's line, which is drawn again below it
        else:
            print(line, file=sys.stderr, flush=True)

    def time_left(self, trainer: L.Trainer, done: int) -> str | None:
        """``"about 9 min 40 s left"`` (``"at most about ..."``), or None after the last epoch."""
        from lightning.pytorch.callbacks import EarlyStopping, Timer

        later = 0 if self.member is None else (self.member[2] - self.member[1] - 1) * (trainer.max_epochs or 0)
        to_go = (trainer.max_epochs or 0) - done + later
        if to_go <= 0 or not self.epoch_seconds:
            return None
        estimate = to_go * sum(self.epoch_seconds) / len(self.epoch_seconds)
        at_most = any(isinstance(c, EarlyStopping) for c in trainer.callbacks)
        for timer in (c for c in trainer.callbacks if isinstance(c, Timer)):
            remaining = timer.time_remaining()
            if remaining is not None and remaining < estimate:
                estimate, at_most = max(remaining, 0.0), True
        return f"{'at most ' if at_most else ''}about {duration(estimate)} left"


def best_summary(result: dict) -> str:
    """The end-of-training summary of :func:`proformer.train.train`'s result: the best epoch's validation
    correlations (with several targets, the mean and each target's) and the row counts."""
    best, names = result["best"], result.get("target_names") or []
    if "members" in result:
        name = MEMBER_NAMES[result["kind"]]
        each = ", ".join(f"{member['best']['val_pearson']:.4f} (epoch {member['best']['epoch'] + 1})"
                         for member in result["members"])
        line = (f"{len(result['members'])}-{name} run: validation Pearson {best['val_pearson']:.4f}, Spearman "
                f"{best['val_spearman']:.4f} (means over the {name}s, each alone; Pearson per {name} at its best "
                f"epoch: {each})")
    else:
        line = (f"best epoch {best['epoch'] + 1}: validation Pearson {best['val_pearson']:.4f}, Spearman "
                f"{best['val_spearman']:.4f}")
    keys = target_keys(names)
    if len(names) > 1 and all(f"val_pearson_{k}" in best for k in keys):
        each = ", ".join(f"{name} {best[f'val_pearson_{k}']:.4f} / {best[f'val_spearman_{k}']:.4f}"
                         for name, k in zip(names, keys))
        line += f" (means of {len(names)} targets; Pearson / Spearman per target: {each})"
    if result.get("kind") == "folds":
        return line + f" ({result['n_valid']:,} rows, each validated once)"
    return line + f" ({result['n_train']:,} training / {result['n_valid']:,} validation rows)"


def saved_line(result: dict) -> str:
    """Where :func:`proformer.train.train`'s result put the model, and how commands take it."""
    run_dir = result["run_dir"]
    if "members" in result:
        name = MEMBER_NAMES[result["kind"]]
        return (f"models written to {run_dir} ({name}-0 ... {name}-{len(result['members']) - 1}, named by "
                f"members.json: predict, evaluate and the other commands take {run_dir} as one ensemble)")
    return f"model written to {run_dir} (config.json + weights.safetensors)"
