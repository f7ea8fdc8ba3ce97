"""What training tells the person running it: plain per-epoch progress lines for a log file
(:class:`EpochLines`, used where Lightning's bar would fill the log) and the end-of-training
summary line (:func:`best_summary`, printed by ``proformer train``).
"""

from __future__ import annotations

import math
import sys
import time

import lightning as L

from .module import ProformerModule, target_keys

__all__ = ["EpochLines", "best_summary"]


class EpochLines(L.Callback):
    """Progress for a log file: plain lines on stderr instead of Lightning's bar, whose thousands
    of ``\\r`` updates a log file keeps.

    Within an epoch, a :class:`proformer.progress.Progress` line at most every ``every``
    seconds; after each validation, one line with the epoch's training loss and validation
    metrics (with several targets, each target's Pearson too).
    """

    def __init__(self, every: float = 60.0):
        self.every = every
        self.progress = None
        self.started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, module: ProformerModule) -> None:
        from ..progress import Progress

        if trainer.is_global_zero:
            total = trainer.num_training_batches
            self.progress = Progress(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}",
                                     total=total if math.isfinite(total) else None, unit="steps", every=self.every)

    def on_train_batch_end(self, trainer: L.Trainer, module: ProformerModule, outputs, batch, batch_idx: int) -> None:
        if self.progress is not None:
            self.progress.update(batch_idx + 1)

    def on_validation_end(self, trainer: L.Trainer, module: ProformerModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not module.val_history:
            return
        latest, train_loss = module.val_history[-1], module.train_means()["train_loss"]
        keys = target_keys(module.target_names)
        each = ""
        if len(keys) > 1:
            each = " (mean; " + ", ".join(f"{name} {latest[f'val_pearson_{k}']:.4f}"
                                          for name, k in zip(module.target_names, keys)) + ")"
        print(f"epoch {latest['epoch'] + 1}/{trainer.max_epochs}: train loss {train_loss:.4f}, validation MSE "
              f"{latest['val_mse']:.4f}, Pearson {latest['val_pearson']:.4f}{each}, Spearman "
              f"{latest['val_spearman']:.4f} ({time.monotonic() - self.started:.0f} s)", file=sys.stderr, flush=True)


def best_summary(result: dict) -> str:
    """The end-of-training summary of :func:`proformer.train.train`'s result: the best epoch's validation
    correlations (with several targets, the mean and each target's) and the row counts."""
    best, names = result["best"], result.get("target_names") or []
    line = (f"best epoch {best['epoch'] + 1}: validation Pearson {best['val_pearson']:.4f}, Spearman "
            f"{best['val_spearman']:.4f}")
    keys = target_keys(names)
    if len(names) > 1 and all(f"val_pearson_{k}" in best for k in keys):
        each = ", ".join(f"{name} {best[f'val_pearson_{k}']:.4f} / {best[f'val_spearman_{k}']:.4f}"
                         for name, k in zip(names, keys))
        line += f" (means of {len(names)} targets; Pearson / Spearman per target: {each})"
    return line + f" ({result['n_train']:,} training / {result['n_valid']:,} validation rows)"
