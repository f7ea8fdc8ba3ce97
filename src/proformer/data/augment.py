"""Evolution-inspired training augmentations (EvoAug; Lee et al., Genome Biology 2023), ``data.augment``.

Each training row, each epoch, gets :data:`MAX_PER_SEQUENCE` of the augmentations asked for
(all of them when fewer are asked; drawn at random, keyed by (seed, epoch, row) as the masks are, so one and several
processes see the same sequences), applied in this order to the part of the stored sequence
the model reads after trimming the flanks (``[head, length - tail)``); the flanks and every
row's length are kept:

``substitution``
    Each base is replaced, with probability :data:`SUBSTITUTION_RATE`, by one of the three
    others (an N stays N).
``insertion``
    1 to :data:`MAX_INSERTION` random bases inserted at a random position; the region keeps its
    length by losing as many bases at its 3' end.
``deletion``
    1 to :data:`MAX_DELETION` bases deleted at a random position; random bases fill the 3' end.
``inversion``
    A random segment of 1 to :data:`MAX_INVERSION` bases replaced by its reverse complement.
``translocation``
    The region rolled by 1 to :data:`MAX_TRANSLOCATION` bases either way (circularly).

EvoAug then fine-tunes on the unchanged sequences; here the last ``data.augment_finetune``
epochs of the run train without augmentation (:class:`proformer.data.dataset.BatchBuilder`).
numpy only.
"""

from __future__ import annotations

import numpy as np

from ..sequence import COMPLEMENT, N

__all__ = ["AUGMENTATIONS", "augment", "parse_augmentations"]

AUGMENTATIONS = ("substitution", "insertion", "deletion", "inversion", "translocation")
SUBSTITUTION_RATE = 0.05
MAX_INSERTION = MAX_DELETION = MAX_TRANSLOCATION = 10
MAX_INVERSION = 20
MAX_PER_SEQUENCE = 2


def parse_augmentations(text: str) -> tuple[str, ...]:
    """``"insertion,deletion"`` (or ``evoaug``: all five, or empty: none) -> the names, checked."""
    names = tuple(part.strip() for part in str(text).split(",") if part.strip())
    if names == ("evoaug",):
        return AUGMENTATIONS
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"data.augment={text!r}: give evoaug, or a comma-separated subset of "
                         f"{', '.join(AUGMENTATIONS)} (each once)")
    return names


def _random_bases(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 4, size=n, dtype=np.uint8)


def _augment_region(region: np.ndarray, chosen: list[str], rng: np.random.Generator) -> np.ndarray:
    """One row's trimmed region ``(m,)`` with ``chosen`` applied in :data:`AUGMENTATIONS` order."""
    m = len(region)
    for name in AUGMENTATIONS:
        if name not in chosen or m == 0:
            continue
        if name == "substitution":
            hit = (rng.random(m) < SUBSTITUTION_RATE) & (region != N)
            # a different base: the old one plus 1..3, modulo 4
            region = np.where(hit, (region + rng.integers(1, 4, size=m)) % 4, region).astype(np.uint8)
        elif name == "insertion":
            k, at = int(rng.integers(1, MAX_INSERTION + 1)), int(rng.integers(0, m + 1))
            region = np.concatenate([region[:at], _random_bases(rng, k), region[at:]])[:m]
        elif name == "deletion":
            k = min(int(rng.integers(1, MAX_DELETION + 1)), m)
            at = int(rng.integers(0, m - k + 1))
            region = np.concatenate([region[:at], region[at + k :], _random_bases(rng, k)])
        elif name == "inversion":
            k = min(int(rng.integers(1, MAX_INVERSION + 1)), m)
            at = int(rng.integers(0, m - k + 1))
            region = region.copy()
            region[at : at + k] = COMPLEMENT[region[at : at + k][::-1]]
        else:  # translocation
            shift = int(rng.integers(1, MAX_TRANSLOCATION + 1)) * (1 if rng.random() < 0.5 else -1)
            region = np.roll(region, shift)
    return region


def augment(codes: np.ndarray, lengths: np.ndarray, rows: np.ndarray, epoch: int, seed: int, names: tuple[str, ...],
            head: int, tail: int) -> np.ndarray:
    """Augmented copies of stored rows.

    Parameters
    ----------
    codes : np.ndarray
        uint8 ``(n, width)``: stored sequences (flanks included), N past each row's end.
    lengths : np.ndarray
        ``(n,)``: each row's length; kept.
    rows : np.ndarray
        ``(n,)``: the rows' ids, which key the draws with ``epoch`` and ``seed``.
    names : tuple of str
        The augmentations to draw from (:func:`parse_augmentations`).
    head, tail : int
        Flank lengths the layout trims: bases outside ``[head, length - tail)`` are kept.

    Returns
    -------
    np.ndarray
        uint8 ``(n, width)``.
    """
    out = np.array(codes, dtype=np.uint8, copy=True)
    for i, (row, length) in enumerate(zip(rows.tolist(), lengths.tolist())):
        rng = np.random.default_rng([seed, epoch, row, 0xE70A])
        picked = list(rng.choice(len(names), size=min(MAX_PER_SEQUENCE, len(names)), replace=False))
        start, stop = head, max(head, length - tail)
        out[i, start:stop] = _augment_region(out[i, start:stop], [names[j] for j in picked], rng)
    return out
