"""``OUT/results.csv`` and ``OUT/sweep.json``: what a sweep has finished, and with which settings.

results.csv has one row per finished (or failed) cell and fold, in the grid's order. It is
rewritten whole after every cell, through :mod:`proformer.io.atomic` (a temporary beside it, renamed), so a sweep killed
at any moment leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path

from ..io.atomic import atomic_write

RESULTS = "results.csv"
SETTINGS = "sweep.json"

#: Model fields written for every cell, whether or not the grid varies them.
MODEL_COLUMNS = ("dim", "heads", "blocks", "readout", "activation", "mask_ratio", "kmer", "block_order", "head_dim")
ID_COLUMNS = ("cell", "fold", "row", "column")
METRIC_COLUMNS = (
    "best_epoch", "epochs_run", "val_pearson", "val_spearman", "val_mse", "val_prediction_std",
    "n_train", "n_valid", "seconds", "collapsed", "status", "error",
)

#: A best epoch whose predictions vary less than this fraction of the targets' standard
#: deviation is a collapsed (near-constant) predictor. The poster's collapsed cells have
#: Pearson r 0.01-0.09; a model that learned anything spreads its predictions far more than 5 %.
COLLAPSE_RATIO = 0.05


def columns_for(extra_keys: Iterable[str]) -> list[str]:
    """results.csv header: ids, the model columns, other keys the grid varies, metrics."""
    extra = [key for key in extra_keys if not (key.startswith("model.") and key[6:] in MODEL_COLUMNS)]
    extra = [key.removeprefix("model.") for key in extra]
    return [*ID_COLUMNS, *MODEL_COLUMNS, *extra, *METRIC_COLUMNS]


def is_collapsed(val_pearson, val_prediction_std, target_std: float = 1.0, ratio: float = COLLAPSE_RATIO) -> bool:
    """True when the best epoch predicts (almost) one value: Pearson undefined, or the spread of
    the predictions below ``ratio`` times the targets' standard deviation (same units)."""
    try:
        r, spread = float(val_pearson), float(val_prediction_std)
    except (TypeError, ValueError):
        return True
    return not math.isfinite(r) or not math.isfinite(spread) or spread < ratio * target_std


def write_results(out: Path, rows: list[dict], columns: list[str]) -> Path:
    """Write ``out/results.csv`` atomically."""
    path = Path(out) / RESULTS
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_results(out: Path) -> list[dict]:
    """Rows of ``out/results.csv`` with numbers and booleans parsed ([] when there is none)."""
    path = Path(out) / RESULTS
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [_parse_row(row) for row in csv.DictReader(handle)]


def _parse_row(row: dict) -> dict:
    parsed = dict(row)
    for key in ("fold", "best_epoch", "epochs_run", "n_train", "n_valid"):
        if parsed.get(key) not in (None, ""):
            parsed[key] = int(float(parsed[key]))
    for key in ("val_pearson", "val_spearman", "val_mse", "val_prediction_std", "seconds"):
        value = parsed.get(key)
        parsed[key] = float(value) if value not in (None, "") else float("nan")
    parsed["collapsed"] = str(parsed.get("collapsed", "")).lower() == "true"
    return parsed


def read_settings(out: Path) -> dict | None:
    path = Path(out) / SETTINGS
    return json.loads(path.read_text()) if path.exists() else None


def write_settings(out: Path, settings: dict) -> None:
    with atomic_write(Path(out) / SETTINGS) as handle:
        handle.write(json.dumps(settings, indent=2) + "\n")
