"""The official DREAM 2022 challenge score, with numpy and scipy only (no torch).

The challenge scored a submission on nine subsets of the 71,103 test sequences: all of them,
five single-sequence subsets (high, low, native yeast, random, challenging) and three paired
subsets (SNVs, motif perturbation, motif tiling). A paired subset is scored on within-pair
differences, ``pred[alt] - pred[ref]`` against ``truth[alt] - truth[ref]``. Two weighted means
combine the per-subset correlations (weights in :data:`SUBSET_WEIGHTS`, total 4.65)::

    Score PearsonR^2 = sum(w_s * r_s ** 2) / 4.65     (r = Pearson)
    Score Spearman   = sum(w_s * rho_s) / 4.65        (rho = Spearman, not squared)

Duplicates count once: a single subset is a *set* of test indices and a paired subset a *set*
of ``(alt, ref)`` pairs.

Two splits are supported, both read from the ``dream2022`` data directory:

``public``
    The 9,045 public-leaderboard indices and pairs with their measured truth, all taken from
    ``public_leaderboard/*.json`` (:func:`score_public`). This reproduces the leaderboard.
``private``
    Everything else (:func:`score_private`): "all" is every test row outside the public
    leaderboard, single subsets come from ``test_subsets/*.csv`` minus the public indices, and
    paired subsets from the CSV pair lists minus the public pairs (a pair is public when it is
    listed in the public JSON in either orientation; for SNVs the ``split`` column of
    ``snv_pairs_reconstructed.csv`` says the same, which is checked). The truth is a full array
    of 71,103 values supplied by the caller. Note that a private pair may have one member
    on the public leaderboard (e.g. a private variant of a public reference sequence), so the
    private score reads the truth and the prediction of those public members too.

Example
-------
>>> from proformer.score import load_predictions, score_public
>>> preds = load_predictions("submission.json")                  # doctest: +SKIP
>>> print(score_public(preds, "shared/data/dream2022").to_table())  # doctest: +SKIP
"""

from ..io.submission import N_TEST, load_predictions, load_truth
from .official import ScoreResult, score, score_private, score_public
from .subsets import (
    PAIRED_SUBSETS,
    SINGLE_SUBSETS,
    SUBSET_WEIGHTS,
    SubsetDefinition,
    subset_definitions,
)

__all__ = [
    "N_TEST",
    "SUBSET_WEIGHTS",
    "SINGLE_SUBSETS",
    "PAIRED_SUBSETS",
    "ScoreResult",
    "SubsetDefinition",
    "load_predictions",
    "load_truth",
    "subset_definitions",
    "score_public",
    "score_private",
    "score",
]
