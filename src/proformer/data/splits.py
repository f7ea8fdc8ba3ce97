"""Training/validation splits and the one sequence hash behind every stable split.

``random:F`` shuffles with a seed; ``hash:F`` decides by a hash of each sequence, so a sequence
lands on the same side on every run and machine, whatever the file order. The same hash picks
the quickstart's held-out tenth, sweep subsets and cross-validation folds. numpy only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..sequence import encode_padded

if TYPE_CHECKING:
    from .dataset import Dataset

# Bits 20.. of the 53-bit hash; fold/split decisions use the top bits.
_LOW_BITS_SCALE = float(1 << 20)


def split_indices(dataset: "Dataset", strategy: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices.

    Parameters
    ----------
    strategy : str
        ``random:F``: one seeded shuffle, the first F of it trains (as the original's 95/5);
        ``hash:F``: a row trains when a hash of its sequence falls below F, so a sequence lands
        in the same part on every run and machine, whatever the file order.

    Returns
    -------
    train, valid : np.ndarray
        Sorted int64 indices.
    """
    name, _, value = strategy.partition(":")
    fraction = float(value)
    n = len(dataset)
    if name == "random":
        order = np.random.default_rng(seed).permutation(n)
        cut = int(round(fraction * n))
        train, valid = order[:cut], order[cut:]
    elif name == "hash":
        keep = sequence_hash(dataset.codes, dataset.lengths) < fraction
        train, valid = np.flatnonzero(keep), np.flatnonzero(~keep)
    else:
        raise ValueError(f"split {strategy!r}: use random:F or hash:F")
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
