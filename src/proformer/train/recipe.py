"""How long a run trains: a budget in optimizer steps turned into whole epochs.

One home for the arithmetic of steps, epochs and rows, shared by ``train`` and the docs' tables.
"""

from __future__ import annotations

import dataclasses
import math

from ..config.run import TrainConfig


def steps_per_epoch(n_train: int, batch_size: int, rc_rows: bool = False) -> int:
    """Optimizer steps in one epoch of ``n_train`` rows (twice the rows with ``rc_rows``)."""
    return math.ceil(n_train * (2 if rc_rows else 1) / batch_size)


def budget_epochs(train: TrainConfig, n_train: int, rc_rows: bool = False) -> tuple[TrainConfig, str | None]:
    """``train`` with ``epochs`` set from its ``steps`` budget, and a line saying so.

    The budget is rounded to whole epochs (at least one), so every epoch ends in a validation
    and the schedule's length, ``epochs x steps per epoch``, is what is trained. Without a
    ``steps`` budget ``train`` comes back unchanged with no line.
    """
    if train.steps is None:
        return train, None
    per_epoch = steps_per_epoch(n_train, min(train.batch_size, n_train * (2 if rc_rows else 1)), rc_rows)
    epochs = max(1, round(train.steps / per_epoch))
    note = (f"budget of {train.steps:,} optimizer steps: {epochs} epoch(s) of {per_epoch:,} steps "
            f"({epochs * per_epoch:,} steps, batch {train.batch_size}, {n_train:,} training rows"
            f"{' and their reverse complements' if rc_rows else ''})")
    return dataclasses.replace(train, epochs=epochs), note
