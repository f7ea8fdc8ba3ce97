"""``proformer distill``: a dataset whose targets are a model's predictions, for training one model
on what an ensemble (seeds, folds) predicts.

Distillation trains a single model on an ensemble's predictions, for near the ensemble's quality
at one model's cost. :func:`distill` predicts every row of a prepared dataset with the model
(:func:`proformer.load`: one run or the mean of several) and, for ``copies`` > 0, as many
mutated copies of each row (EvoAug's augmentations, :mod:`proformer.data.augment`, inside the
trimmed region: flanks and lengths kept), and writes them as a new dataset directory whose
targets are those predictions in training units. Then ``proformer train --data OUT`` trains the
student as any other run. The dataset is written under the dataset rule (staged, published
whole: :func:`proformer.io.dataset.publish`); memory is one block of rows.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import __version__
from .data.augment import augment, parse_augmentations
from .data.dataset import Dataset
from .inference import load
from .io.dataset import CODES, INTEGER_TARGET, LENGTHS, TARGETS, publish, write_meta
from .limits import whole
from .progress import Progress

__all__ = ["distill"]

#: Rows predicted at once: bounds memory whatever the dataset's size.
BLOCK = 1 << 15


def distill(
    model: str | os.PathLike | Sequence[str | os.PathLike],
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    copies: int = 0,
    augmentations: str = "evoaug",
    seed: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "32",
    progress: bool = True,
) -> dict:
    """Write ``out``: the rows of ``data`` (and ``copies`` mutated copies of each) with ``model``'s
    predictions as their targets.

    Parameters
    ----------
    model : path, or list of paths
        The teacher: a run, a K-fold run, or several runs (the mean of their predictions).
    data : path
        A prepared dataset directory (the student's training rows; its targets are not read).
    out : path
        The new dataset directory; an existing dataset there is replaced whole, on success.
    copies : int
        Mutated copies of each row (0: the rows alone). Copy ``c`` of row ``r`` is
        :func:`proformer.data.augment.augment` keyed by (``seed``, ``c``, ``r``).
    augmentations : str
        ``data.augment``'s names for the copies (default: all five).
    seed : int
        Keys the copies' draws.
    batch_size, device, precision
        As :func:`proformer.load`.
    progress : bool
        A progress line on stderr.

    Returns
    -------
    dict
        The new dataset's ``meta.json`` (``distilled`` records the teacher, copies, augmentations
        and seed; rows ``len(data) * (1 + copies)``, in order: every row, then copy 1 of every
        row, ...).
    """
    copies = whole("copies", copies, 0, 100)
    names = parse_augmentations(augmentations)
    if copies and not names:
        raise ValueError("copies > 0 needs augmentations to mutate them with (e.g. evoaug)")
    source = Dataset(data)
    runner = load(model, device, batch_size=batch_size, precision=precision)
    layouts = {(member.layout.head, member.layout.tail) for member in runner.members}
    if len(layouts) > 1:
        raise ValueError(f"the runs trim different flanks ({sorted(layouts)}): the copies are mutated between the "
                         f"flanks, so distil from runs of one layout")
    head, tail = layouts.pop()
    n, width = len(source), source.codes.shape[1]
    total = n * (1 + copies)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.distill-", dir=out.parent))
    try:
        codes = np.lib.format.open_memmap(staging / CODES, mode="w+", dtype=np.uint8, shape=(total, width))
        targets = np.lib.format.open_memmap(staging / TARGETS, mode="w+", dtype=np.float32,
                                            shape=(total, runner.n_targets))
        lengths = np.tile(np.asarray(source.lengths, dtype=np.int32), 1 + copies)
        with Progress("distilled", total=total, unit="rows", enabled=progress) as line:
            for copy in range(1 + copies):
                for start in range(0, n, BLOCK):
                    rows = np.arange(start, min(n, start + BLOCK))
                    block, block_lengths = np.asarray(source.codes[rows]), np.asarray(source.lengths[rows])
                    if copy:
                        block = augment(block, block_lengths, rows, copy, seed, names, head, tail)
                    at = copy * n + start
                    values, _ = runner.predict_stored(block, block_lengths, lambda i, s=start: f"{data} row {s + i}")
                    codes[at : at + len(rows)] = block
                    targets[at : at + len(rows)] = values
                    line.update(at + len(rows))
        codes.flush()
        targets.flush()
        np.save(staging / LENGTHS, lengths)
        np.save(staging / INTEGER_TARGET, np.zeros(total, dtype=bool))  # predictions: no row was measured once
        as64 = np.asarray(targets, dtype=np.float64)
        meta = {key: value for key, value in source.meta.items() if key not in ("subset_of", "dropped")}
        meta.update({
            "rows_read": total, "rows_kept": total, "dropped": {},
            "target_names": runner.target_names,
            "target_mean": [float(x) for x in as64.mean(axis=0)], "target_std": [float(x) for x in as64.std(axis=0)],
            "distilled": {"from": os.fspath(Path(data).resolve()), "models": list(runner.runs), "copies": copies,
                          "augmentations": list(names) if copies else [], "seed": seed},
            "proformer_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })
        del codes, targets  # the memmaps are closed before the files move
        write_meta(staging, meta)
        return publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
