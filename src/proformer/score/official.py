"""The official DREAM 2022 score: per-subset Pearson r and Spearman rho, weighted and combined.

See :mod:`proformer.score` for the formula and the two splits. numpy and scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..io.submission import (
    N_TEST,
    PathLike,
    Predictions,
    finite_float,
    load_predictions,
    load_test_sequences,
    load_truth,
)
from ..metrics import pearson, spearman
from .subsets import PAIRED_SUBSETS, PUBLIC_DIR, SUBSET_WEIGHTS, SubsetDefinition, subset_definitions

# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreResult:
    """The official score of one submission on one split, with its per-subset parts.

    Attributes
    ----------
    split : str
        ``"public"`` or ``"private"``.
    r : dict of str to float
        Pearson r per subset, keyed and ordered as :data:`SUBSET_WEIGHTS`.
    rho : dict of str to float
        Spearman rho per subset.
    n : dict of str to int
        Number of distinct indices (single subsets) or distinct ``(alt, ref)`` pairs (paired
        subsets) that were scored.
    score_pearson_r2 : float
        Weighted mean of ``r ** 2`` ("Score PearsonR^2").
    score_spearman : float
        Weighted mean of ``rho`` ("Score Spearman").
    """

    split: str
    r: dict[str, float]
    rho: dict[str, float]
    n: dict[str, int]
    score_pearson_r2: float
    score_spearman: float

    @property
    def pearson_r2_all(self) -> float:
        """Squared Pearson r over the "all" subset (the leaderboard's "PearsonR^2" column)."""
        return self.r["all"] ** 2

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary (plain floats and ints).

        Returns
        -------
        dict
            ``{"split", "score_pearson_r2", "score_spearman", "subsets": {name: {"weight",
            "n", "pearson_r", "pearson_r2", "spearman_rho"}}}``.
        """
        subsets = {
            name: {
                "weight": SUBSET_WEIGHTS[name],
                "n": int(self.n[name]),
                "pearson_r": float(self.r[name]),
                "pearson_r2": float(self.r[name] ** 2),
                "spearman_rho": float(self.rho[name]),
            }
            for name in SUBSET_WEIGHTS
        }
        return {
            "split": self.split,
            "score_pearson_r2": float(self.score_pearson_r2),
            "score_spearman": float(self.score_spearman),
            "subsets": subsets,
        }

    def to_table(self) -> str:
        """Return a printable text table, figures to 4 decimals.

        Returns
        -------
        str
            One row per subset (weight, n, r, r^2, rho) followed by the two scores.
        """
        header = f"{'subset':<20}{'weight':>7}{'n':>8}{'r':>9}{'r^2':>9}{'rho':>9}"
        lines = [f"DREAM 2022 score, {self.split} split", header, "-" * len(header)]
        for name, weight in SUBSET_WEIGHTS.items():
            r, rho = self.r[name], self.rho[name]
            lines.append(
                f"{name:<20}{weight:>7.2f}{self.n[name]:>8d}{r:>9.4f}{r * r:>9.4f}{rho:>9.4f}"
            )
        lines.append("-" * len(header))
        lines.append(f"{'Score PearsonR^2':<20}{self.score_pearson_r2:>7.4f}")
        lines.append(f"{'Score Spearman':<20}{self.score_spearman:>7.4f}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def _prediction_vector(predictions: Predictions) -> np.ndarray:
    """Dense float64 vector over all test rows; NaN marks an index without a prediction."""
    if isinstance(predictions, Mapping):
        vector = np.full(N_TEST, np.nan)
        for key, value in predictions.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"prediction key {key!r} is not a test index.") from None
            if not 0 <= index < N_TEST:
                raise ValueError(f"prediction index {index} is outside 0..{N_TEST - 1}.")
            if not np.isnan(vector[index]):
                raise ValueError(f"index {index} has more than one prediction (key {key!r}).")
            number = finite_float(value)
            if number is None:
                raise ValueError(f"prediction {value!r} for index {index} is not a finite number.")
            vector[index] = number
        return vector
    vector = np.asarray(predictions, dtype=np.float64)
    if vector.ndim != 1 or vector.shape[0] != N_TEST:
        raise ValueError(
            f"an array of predictions must hold one value per test row ({N_TEST}), got shape "
            f"{vector.shape}; to score only some indices pass a dict {{index: value}}."
        )
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        raise ValueError(
            f"{bad.size} prediction(s) are not finite, e.g. index {bad[0]} = {vector[bad[0]]}."
        )
    return vector


def _check_present(vector: np.ndarray, needed: np.ndarray, what: str, hint: str) -> None:
    missing = needed[np.isnan(vector[needed])]
    if missing.size:
        raise ValueError(
            f"{what} missing for {missing.size} of the {needed.size} indices this split needs "
            f"(e.g. index {missing[0]}); {hint}"
        )


def _correlations(
    pred: np.ndarray, truth: np.ndarray, name: str, split: str
) -> tuple[float, float]:
    """Pearson r and Spearman rho, refusing input on which they are undefined."""
    kind = "pair differences" if name in PAIRED_SUBSETS else "values"
    if pred.size < 2:
        raise ValueError(f"the {split} '{name}' subset has {pred.size} item(s); need at least 2.")
    hints = {
        "predictions": "a constant prediction cannot be scored; check that the model does not "
        "predict one value for every sequence.",
        "truth": "check that the truth array holds the measured expression of each test row.",
    }
    for label, values in (("predictions", pred), ("truth", truth)):
        if np.all(values == values[0]):
            raise ValueError(
                f"Pearson correlation is undefined on the {split} '{name}' subset: the {label} "
                f"({kind}) are constant over its {pred.size} items (zero variance); "
                + hints[label]
            )
    r, rho = pearson(pred, truth), spearman(pred, truth)
    if not (math.isfinite(r) and math.isfinite(rho)):
        raise ValueError(
            f"the correlation on the {split} '{name}' subset is not a finite number (r={r}, "
            f"rho={rho}); check the predictions and truth for extreme values."
        )
    return r, rho


def _combine(
    split: str, r: dict[str, float], rho: dict[str, float], n: dict[str, int]
) -> ScoreResult:
    total = math.fsum(SUBSET_WEIGHTS.values())
    return ScoreResult(
        split=split,
        r=r,
        rho=rho,
        n=n,
        score_pearson_r2=math.fsum(w * r[s] ** 2 for s, w in SUBSET_WEIGHTS.items()) / total,
        score_spearman=math.fsum(w * rho[s] for s, w in SUBSET_WEIGHTS.items()) / total,
    )


def subset_values(vector: np.ndarray, subset: SubsetDefinition) -> np.ndarray:
    """Values of a single subset, or ``x[alt] - x[ref]`` of a paired one."""
    if subset.paired:
        return vector[subset.indices[:, 0]] - vector[subset.indices[:, 1]]
    return vector[subset.indices]


def score_public(predictions: Predictions, data_dir: PathLike) -> ScoreResult:
    """Score predictions on the public leaderboard (9,045 indices), as the challenge did.

    Parameters
    ----------
    predictions : dict or array
        A mapping ``{index: value}`` (int or str keys) covering at least the 9,045 public
        indices, or an array of 71,103 values (row i = test index i); see
        :func:`load_predictions`. Extra indices are ignored.
    data_dir : str or Path
        The ``dream2022`` directory; the truth is read from ``public_leaderboard/*.json``.

    Returns
    -------
    ScoreResult

    Raises
    ------
    ValueError
        If a needed index has no prediction (the message gives the count and an example), or if
        predictions are constant over a subset (Pearson undefined).
    """
    subsets = subset_definitions(data_dir, "public")
    vector = _prediction_vector(predictions)
    _check_present(
        vector,
        subsets["all"].indices,
        "predictions are",
        "a public submission needs one value for every index of "
        f"{PUBLIC_DIR}/sample_submission.json.",
    )
    r, rho, n = {}, {}, {}
    for name, subset in subsets.items():
        pred = subset_values(vector, subset)
        truth = subset.truth[:, 0] - subset.truth[:, 1] if subset.paired else subset.truth
        r[name], rho[name] = _correlations(pred, truth, name, "public")
        n[name] = subset.n
    return _combine("public", r, rho, n)


def score_private(predictions: Predictions, truth: np.ndarray, data_dir: PathLike) -> ScoreResult:
    """Score predictions on the private split (every test row outside the public leaderboard).

    Parameters
    ----------
    predictions : dict or array
        Predictions for all 71,103 test rows (an array, or a mapping covering every index the
        private subsets use; private pairs may reference public sequences).
    truth : array-like
        Measured expression of all 71,103 test rows (row i = test index i), e.g. from
        :func:`load_truth`. Values at indices no subset uses are ignored and may be NaN.
    data_dir : str or Path
        The ``dream2022`` directory (``public_leaderboard/`` and ``test_subsets/``).

    Returns
    -------
    ScoreResult

    Raises
    ------
    ValueError
        If ``truth`` has the wrong length or a needed value is missing (count and example
        index in the message), or if predictions or truth are constant over a subset.
    """
    subsets = subset_definitions(data_dir, "private")
    truth_vector = np.asarray(truth, dtype=np.float64)
    if truth_vector.ndim != 1 or truth_vector.shape[0] != N_TEST:
        raise ValueError(
            f"truth must hold one value per test row ({N_TEST}), got shape {truth_vector.shape}."
        )
    vector = _prediction_vector(predictions)
    needed = np.unique(np.concatenate([subset.indices.ravel() for subset in subsets.values()]))
    _check_present(
        vector,
        needed,
        "predictions are",
        f"the private split needs a prediction for every test row (a {N_TEST}-row TSV).",
    )
    truth_vector = np.where(np.isfinite(truth_vector), truth_vector, np.nan)
    _check_present(
        truth_vector, needed, "truth values are", "the truth must be finite at every used index."
    )
    r, rho, n = {}, {}, {}
    for name, subset in subsets.items():
        pred = subset_values(vector, subset)
        r[name], rho[name] = _correlations(pred, subset_values(truth_vector, subset), name, "private")
        n[name] = subset.n
    return _combine("private", r, rho, n)


def score(predictions: PathLike | Predictions, data_dir: PathLike, split: str = "public", truth: PathLike | np.ndarray | None = None) -> ScoreResult:
    """Score a submission file (or loaded predictions) on the public or private split.

    ``predictions`` may be a path (JSON ``{index: value}``, a 71,103-row TSV, or one value per
    line; see :func:`load_predictions`) or already loaded values. The private split needs
    ``truth``: a 71,103-row ``sequence<TAB>expression`` file or an array. When ``data_dir``
    holds ``test_sequences.txt``, the sequence column of a TSV (predictions or truth) must be
    the test sequences in test order.
    """
    sequences = None
    if isinstance(predictions, (str, Path)) or isinstance(truth, (str, Path)):
        sequences = load_test_sequences(data_dir)
    if isinstance(predictions, (str, Path)):
        predictions = load_predictions(predictions, sequences=sequences)
    if split == "public":
        return score_public(predictions, data_dir)
    if split == "private":
        if truth is None:
            raise ValueError(
                "the private split needs --truth: a file of the 71,103 test rows as sequence<TAB>expression "
                "(no private truth is distributed with the challenge data)"
            )
        truth_values = (
            load_truth(truth, sequences=sequences)
            if isinstance(truth, (str, Path))
            else np.asarray(truth)
        )
        return score_private(predictions, truth_values, data_dir)
    raise ValueError(f"split={split!r}: use public or private")
