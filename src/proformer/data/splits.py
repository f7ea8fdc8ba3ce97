"""Training/validation splits and the one sequence hash behind every stable split.

``random:F`` shuffles with a seed; ``hash:F`` decides by a hash of each sequence, so a sequence
lands on the same side on every run and machine, whatever the file order. The same hash picks
the quickstart's held-out tenth, sweep subsets and cross-validation folds. ``fold:k/K`` is fold
k of a seeded K-fold partition; ``folds:K`` (a K-fold run, every fold trained) and ``auto``
(:func:`auto_split`) are decided by ``train``. numpy only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..sequence import encode_padded

if TYPE_CHECKING:
    from .dataset import Dataset

# Bits 20.. of the 53-bit hash; fold/split decisions use the top bits.
_LOW_BITS_SCALE = float(1 << 20)


#: The ``auto`` split (docs/recipes.md, "How much validation"): a validation set of at least
#: MIN_VALID_ROWS rows to choose the best epoch, never more than MAX_VALID_SHARE of the data;
#: where that cannot be, AUTO_FOLDS-fold cross-validation whose fold models are the run.
MIN_VALID_ROWS = 500
MAX_VALID_SHARE = 0.2
AUTO_FOLDS = 5


def auto_split(n_rows: int) -> str:
    """What ``data.split=auto`` is for ``n_rows`` rows: ``random:0.95`` where 5 % is at least
    :data:`MIN_VALID_ROWS` rows (10,000 rows and more); else a random split holding out that many
    rows where they are at most :data:`MAX_VALID_SHARE` of the data (2,500 rows and more); else
    ``folds:5``, a K-fold run."""
    if 0.05 * n_rows >= MIN_VALID_ROWS:
        return "random:0.95"
    if MIN_VALID_ROWS <= MAX_VALID_SHARE * n_rows:
        # Seven digits: round(F * n) is exactly n - MIN_VALID_ROWS for any n below 10,000.
        return f"random:{(n_rows - MIN_VALID_ROWS) / n_rows:.7f}"
    return f"folds:{AUTO_FOLDS}"


def check_split(strategy: str) -> None:
    """Raise ValueError naming the fix unless ``strategy`` is a split :func:`split_indices` (or
    ``train``: ``auto``, ``folds:K``) knows."""
    name, _, value = strategy.partition(":")
    if strategy == "auto":
        return
    if name in ("random", "hash"):
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"split={strategy!r}: the fraction after ':' must be a number in (0, 1)") from None
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"split={strategy!r}: the fraction must be in (0, 1)")
    elif name == "folds":
        if not value.isdigit() or int(value) < 2:
            raise ValueError(f"split={strategy!r}: folds:K needs a whole number of folds K >= 2, e.g. folds:5")
    elif name == "fold":
        k, _, folds = value.partition("/")
        if not (k.isdigit() and folds.isdigit() and int(k) < int(folds) and int(folds) >= 2):
            raise ValueError(f"split={strategy!r}: fold:k/K needs whole numbers 0 <= k < K and K >= 2, e.g. fold:0/5")
    else:
        raise ValueError(f"split={strategy!r}: use auto, random:F or hash:F with F the training fraction (e.g. "
                         f"random:0.95), folds:K (a K-fold run) or fold:k/K (one of its folds)")


def split_indices(dataset: "Dataset", strategy: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices.

    Parameters
    ----------
    strategy : str
        ``random:F``: one seeded shuffle, the first F of it trains (as the original's 95/5);
        ``hash:F``: a row trains when a hash of its sequence falls below F, so a sequence lands
        in the same part on every run and machine, whatever the file order; ``fold:k/K``: the
        same seeded shuffle dealt into K folds (sizes differ by at most one), fold k validates.

    Returns
    -------
    train, valid : np.ndarray
        Sorted int64 indices.
    """
    check_split(strategy)
    name, _, value = strategy.partition(":")
    n = len(dataset)
    if name == "random":
        order = np.random.default_rng(seed).permutation(n)
        cut = int(round(float(value) * n))
        train, valid = order[:cut], order[cut:]
    elif name == "hash":
        keep = sequence_hash(dataset.codes, dataset.lengths) < float(value)
        train, valid = np.flatnonzero(keep), np.flatnonzero(~keep)
    elif name == "fold":
        k, folds = (int(part) for part in value.split("/"))
        order = np.random.default_rng(seed).permutation(n)
        valid = order[k::folds]
        train = np.setdiff1d(order, valid)
    else:
        raise ValueError(f"split {strategy!r}: use random:F, hash:F or fold:k/K")
    if len(train) == 0 or len(valid) == 0:
        raise ValueError(f"split {strategy!r} of {n} rows leaves {len(train)} training and {len(valid)} validation rows")
    return np.sort(train), np.sort(valid)


def sequence_hash(codes: np.ndarray, lengths: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """A stable hash of each row's sequence mapped to [0, 1): FNV-1a over its codes and length."""
    out = np.empty(len(lengths), dtype=np.float64)
    prime, basis = np.uint64(1099511628211), np.uint64(14695981039346656037)
    with np.errstate(over="ignore"):
        for start in range(0, len(lengths), chunk):
            block = np.asarray(codes[start : start + chunk])
            size = lengths[start : start + chunk]
            h = np.full(len(block), basis, dtype=np.uint64)
            for column in range(block.shape[1]):
                inside = column < size
                h = np.where(inside, (h ^ block[:, column].astype(np.uint64)) * prime, h)
            h = (h ^ size.astype(np.uint64)) * prime
            out[start : start + chunk] = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return out


def string_hash(sequences: Sequence[str]) -> np.ndarray:
    """:func:`sequence_hash` of sequences given as strings: ``(n,)`` float64 in [0, 1)."""
    return sequence_hash(*encode_padded(sequences))


def fraction_key(hashes: np.ndarray) -> np.ndarray:
    """A second uniform [0, 1) value per row, independent of the top bits of ``hashes``."""
    return np.mod(hashes * _LOW_BITS_SCALE, 1.0)
