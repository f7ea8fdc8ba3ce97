"""Subsets of a prepared dataset for sweeps: a data fraction, and hash folds for cross-validation.

``train`` reads a whole dataset directory, so a sweep that trains on 10 % of the rows (the
poster's yeast grid) or on one cross-validation fold writes that subset once as a dataset
directory of its own, with the same files and layout (``docs/dataset-format.md``), and every
cell reads it. Rows are chosen by the hash of their sequence, so the choice is the same on
every run and machine whatever the file order, and every cell sees the same rows.

Two independent parts of one 53-bit hash are used: the top bits pick the fold (the same bits
``data.split=hash:F`` uses) and the low bits pick the fraction. Taking a fraction with the top
bits would keep only hashes below F, and ``hash:0.9`` would then put every kept row in training.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..data.splits import fraction_key, sequence_hash
from ..io.dataset import CODES, INTEGER_TARGET, LENGTHS, META, TARGETS, publish, write_meta

def fraction_rows(dataset: Dataset, fraction: float) -> np.ndarray:
    """Sorted indices of the rows kept by ``fraction`` (about ``fraction * n`` of them)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"data fraction {fraction!r}: must be in (0, 1], e.g. 0.1 for 10 % of the rows")
    if fraction == 1.0:
        return np.arange(len(dataset))
    keep = fraction_key(sequence_hash(dataset.codes, dataset.lengths)) < fraction
    return np.flatnonzero(keep)


def fold_of_rows(dataset: Dataset, rows: np.ndarray, folds: int) -> np.ndarray:
    """Fold number (0..folds-1) of each of ``rows``: ``floor(hash * folds)``."""
    hashes = sequence_hash(np.asarray(dataset.codes[rows]), dataset.lengths[rows])
    return np.minimum((hashes * folds).astype(np.int64), folds - 1)


def write_subset(dataset: Dataset, rows: np.ndarray, out: Path, note: dict) -> Path:
    """Write ``rows`` of ``dataset`` as a dataset directory at ``out`` (atomically: a directory
    appears complete or not at all, so a killed sweep never leaves a half-written subset)."""
    out = Path(out)
    # meta.json is published last, so its presence marks a complete subset.
    if (out / META).exists():
        return out
    if len(rows) < 2:
        raise ValueError(f"{dataset.directory}: the subset {note} keeps {len(rows)} row(s); use a larger data fraction")
    # A folder of this worker's own: the workers of a sweep may write one subset at the same time.
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex}"
    partial.mkdir(parents=True)
    try:
        _write_rows(dataset, np.sort(rows), partial, note)
        if not (out / META).exists():
            publish(partial, out)
    except OSError:
        if not (out / META).exists():
            raise  # not a worker that published first
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out


def _write_rows(dataset: Dataset, rows: np.ndarray, partial: Path, note: dict) -> None:
    lengths = dataset.lengths[rows]
    # Trim the padding to the widest kept row, as prepare does.
    width = int(lengths.max(initial=1))
    np.save(partial / CODES, np.ascontiguousarray(np.asarray(dataset.codes[rows])[:, :width]))
    np.save(partial / LENGTHS, lengths)
    targets = np.asarray(dataset.targets[rows])
    np.save(partial / TARGETS, targets)
    # The row-aligned optional file is subset too; windows.tsv (prepare-atac's coordinates) is
    # not carried over, as before: the subset's meta names its parent in "subset_of".
    if (dataset.directory / INTEGER_TARGET).exists():
        np.save(partial / INTEGER_TARGET, np.load(dataset.directory / INTEGER_TARGET, mmap_mode="r")[rows])
    meta = dict(dataset.meta)
    values = targets.astype(np.float64)
    meta.update({
        "rows_kept": len(rows),
        "target_mean": [float(x) for x in values.mean(axis=0)] if values.size else [],
        "target_std": [float(x) for x in values.std(axis=0)] if values.size else [],
        "min_length": int(lengths.min()),
        "max_length": int(lengths.max()),
        "subset_of": {"path": str(dataset.directory.resolve()), "rows": len(dataset), **note},
    })
    write_meta(partial, meta)


def sweep_datasets(data: str | Path, store: Path, fraction: float = 1.0, folds: int = 1) -> list[dict]:
    """The dataset directories each fold of a sweep trains on.

    Parameters
    ----------
    data : path
        The prepared dataset (``proformer prepare``).
    store : path
        Where subsets are written (``OUT/data``); existing complete subsets are reused.
    fraction : float
        Share of the rows to keep (1.0: all, no copy).
    folds : int
        1: one training set, split by the cell's own ``data.split``; K > 1: K train/valid pairs,
        fold k validating on the rows whose hash falls in [k/K, (k+1)/K).

    Returns
    -------
    list of dict
        One per fold: ``{"fold", "path", "valid"}`` (``valid`` is None when folds == 1).
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ValueError(f"folds={folds!r}: must be an integer >= 1 (1 = the config's own split, 5 = 5-fold CV)")
    dataset = Dataset(data)
    rows = fraction_rows(dataset, fraction)
    if folds == 1:
        if fraction == 1.0:
            return [{"fold": 0, "path": str(Path(data).resolve()), "valid": None}]
        path = write_subset(dataset, rows, store / f"fraction-{fraction:g}", {"fraction": fraction})
        return [{"fold": 0, "path": str(path), "valid": None}]
    if folds > len(rows):
        raise ValueError(f"folds={folds} is more than the {len(rows)} rows of {data} (fraction {fraction:g})")
    fold = fold_of_rows(dataset, rows, folds)
    out = []
    for k in range(folds):
        base = store / f"fraction-{fraction:g}-fold-{k}-of-{folds}"
        note = {"fraction": fraction, "fold": k, "folds": folds}
        train = write_subset(dataset, rows[fold != k], base / "train", {**note, "part": "train"})
        valid = write_subset(dataset, rows[fold == k], base / "valid", {**note, "part": "valid"})
        out.append({"fold": k, "path": str(train), "valid": str(valid)})
    return out
