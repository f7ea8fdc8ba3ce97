"""How long and in what batches a run trains: the ``auto`` rule and step budgets.

The ``auto`` recipe (the default of ``proformer train`` without a preset) picks the batch size and
the number of epochs from the number of training rows, so that a library of a few thousand rows
gets thousands of updates (the faithful recipe's batch of 512 gives it fewer than 200) and the
full DREAM set keeps the original's batch and epochs. docs/recipes.md has the evidence.
One home for the arithmetic of steps, epochs and rows, shared by ``train`` and the docs' tables.
"""

from __future__ import annotations

import dataclasses
import math

from ..config.run import TrainConfig, is_from_data

#: (most training rows, batch size) of the auto rule, in order; above the last, the original's 512.
AUTO_BATCH_SIZES = ((20_000, 64), (100_000, 128), (1_000_000, 256))
#: The original's and the grids' epochs, kept at every size...
AUTO_EPOCHS = 20
#: ...unless that is fewer optimizer steps than this (small libraries: more epochs, up to AUTO_MAX_EPOCHS).
AUTO_MIN_STEPS = 1_500
AUTO_MAX_EPOCHS = 100


def auto_recipe(n_train: int, rc_rows: bool = False) -> dict[str, int]:
    """The auto rule: ``{"batch_size", "epochs"}`` for ``n_train`` training rows.

    Batch 64 up to 20,000 rows, 128 up to 100,000, 256 up to 1,000,000, then 512 (the original's);
    20 epochs, raised to reach at least 1,500 optimizer steps (at most 100 epochs). With
    ``rc_rows`` an epoch holds twice the rows and so twice the steps. The learning rate (1e-3,
    Adam) and the warmup (one epoch) are the grids' at every size.
    """
    if n_train < 1:
        raise ValueError(f"the auto recipe needs at least one training row, got {n_train}")
    batch_size = next((batch for most, batch in AUTO_BATCH_SIZES if n_train <= most), 512)
    per_epoch = steps_per_epoch(n_train, batch_size, rc_rows)
    epochs = min(max(AUTO_EPOCHS, math.ceil(AUTO_MIN_STEPS / per_epoch)), AUTO_MAX_EPOCHS)
    return {"batch_size": batch_size, "epochs": epochs}


def resolve_recipe(train: TrainConfig, n_train: int, rc_rows: bool = False) -> tuple[TrainConfig, str | None]:
    """``train`` with the fields it leaves to the data (the auto recipe's) filled in, and a line
    saying what was chosen; unchanged, with no line, when every field was set."""
    chosen = {name: value for name, value in auto_recipe(n_train, rc_rows).items() if is_from_data(getattr(train, name))}
    if not chosen:
        return train, None
    train = dataclasses.replace(train, **chosen)
    per_epoch = steps_per_epoch(n_train, train.batch_size, rc_rows)
    chosen_text = ", ".join(f"{name}={value}" for name, value in chosen.items())
    note = (f"auto recipe for {n_train:,} training rows: {chosen_text} ({train.epochs} epochs of batch "
            f"{train.batch_size}: {train.epochs * per_epoch:,} optimizer steps, lr={train.lr:g}); set "
            f"{' / '.join(f'train.{name}' for name in chosen)} to choose yourself")
    return train, note


def epoch_rows(n_train: int, rc_rows: bool = False) -> int:
    """Rows in one epoch of ``n_train`` training sequences: twice as many with ``data.rc_rows``."""
    return n_train * (2 if rc_rows else 1)


def steps_per_epoch(n_train: int, batch_size: int, rc_rows: bool = False) -> int:
    """Optimizer steps in one epoch of ``n_train`` rows (twice the rows with ``rc_rows``)."""
    return math.ceil(epoch_rows(n_train, rc_rows) / batch_size)


def budget_epochs(train: TrainConfig, n_train: int, rc_rows: bool = False) -> tuple[TrainConfig, str | None]:
    """``train`` with ``epochs`` set from its ``steps`` budget, and a line saying so.

    The budget is rounded to whole epochs (at least one), so every epoch ends in a validation
    and the schedule's length, ``epochs x steps per epoch``, is what is trained. Without a
    ``steps`` budget ``train`` comes back unchanged with no line.
    """
    if train.steps is None:
        return train, None
    per_epoch = steps_per_epoch(n_train, min(train.batch_size, epoch_rows(n_train, rc_rows)), rc_rows)
    epochs = max(1, round(train.steps / per_epoch))
    note = (f"budget of {train.steps:,} optimizer steps: {epochs} epoch(s) of {per_epoch:,} steps "
            f"({epochs * per_epoch:,} steps, batch {train.batch_size}, {n_train:,} training rows"
            f"{' and their reverse complements' if rc_rows else ''})")
    return dataclasses.replace(train, epochs=epochs), note
