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

from __future__ import annotations

import csv
import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .metrics import pearson, spearman

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

#: Number of test sequences (rows of ``test_sequences.txt``; row i is test index i).
N_TEST = 71_103

#: Official weight of each subset, in the order of the challenge's formula.
SUBSET_WEIGHTS: dict[str, float] = {
    "all": 1.0,
    "high": 0.3,
    "low": 0.3,
    "yeast": 0.3,
    "random": 0.3,
    "challenging": 0.5,
    "SNVs": 1.25,
    "motif_perturbation": 0.3,
    "motif_tiling": 0.4,
}

#: Subsets scored on the values of single sequences.
SINGLE_SUBSETS = ("all", "high", "low", "yeast", "random", "challenging")
#: Subsets scored on within-pair differences ``x[alt] - x[ref]``.
PAIRED_SUBSETS = ("SNVs", "motif_perturbation", "motif_tiling")

# File names inside the data directory. Single subsets of the public leaderboard are
# ``{name}_exp_indices.json``; "all" is ground.json.
_PUBLIC_DIR = "public_leaderboard"
_SUBSETS_DIR = "test_subsets"
_GROUND = "ground.json"
_SINGLE_CSV = {
    "high": "high_exp_seqs.csv",
    "low": "low_exp_seqs.csv",
    "yeast": "yeast_seqs.csv",
    "random": "all_random_seqs.csv",
    "challenging": "challenging_seqs.csv",
}
_PAIRED_CSV = {
    "SNVs": "snv_pairs_reconstructed.csv",
    "motif_perturbation": "motif_perturbation_seqs.csv",
    "motif_tiling": "motif_tiling_seqs.csv",
}

Predictions = Union[Mapping[Any, float], np.ndarray, Sequence[float]]
PathLike = Union[str, Path]


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


@dataclass(frozen=True)
class SubsetDefinition:
    """Which test rows one subset scores (arrays are read-only and shared by the cache).

    Attributes
    ----------
    name : str
        Subset name, a key of :data:`SUBSET_WEIGHTS`.
    indices : numpy.ndarray
        Single subsets: sorted distinct test indices, shape ``(n,)``. Paired subsets: distinct
        ``(alt, ref)`` pairs sorted by alt then ref, shape ``(n, 2)``.
    truth : numpy.ndarray or None
        Public split only: the measured values from the leaderboard JSON, shaped like
        ``indices`` (``[alt_truth, ref_truth]`` per pair). ``None`` for the private split,
        whose truth the caller supplies.
    """

    name: str
    indices: np.ndarray
    truth: np.ndarray | None = field(default=None)

    @property
    def paired(self) -> bool:
        """True for a subset of ``(alt, ref)`` pairs."""
        return self.indices.ndim == 2

    @property
    def n(self) -> int:
        """Number of distinct indices or pairs."""
        return int(self.indices.shape[0])


# --------------------------------------------------------------------------------------------
# Reading predictions and truth
# --------------------------------------------------------------------------------------------


def _finite_float(value: Any) -> float | None:
    """``float(value)`` for a finite real number (Python or numpy), else None."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _json_key_line(text: str, key: str, occurrence: int = 1) -> int:
    """Line number (1-based) of the ``occurrence``-th ``"key":`` in JSON ``text`` (0 if absent)."""
    pattern = re.compile('"' + re.escape(key) + r'"\s*:')
    for count, match in enumerate(pattern.finditer(text), start=1):
        if count == occurrence:
            return text.count("\n", 0, match.start()) + 1
    return 0


def _load_prediction_json(path: Path, text: str, n_test: int) -> dict[int, float]:
    """Parse a ``{"index": value}`` JSON object, naming file and line of any bad entry."""
    try:
        pairs = json.loads(text, object_pairs_hook=tuple)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}). A JSON submission must be "
            'one object {"index": value, ...}.'
        ) from None
    if not isinstance(pairs, tuple):
        raise ValueError(
            f'{path}: line 1: expected a JSON object {{"index": value, ...}}, '
            f"found {type(pairs).__name__}."
        )
    result: dict[int, float] = {}
    for position, (key, value) in enumerate(pairs):
        problem = _json_entry_problem(key, value, result, n_test)
        if problem is None:
            result[int(key)] = _finite_float(value)
            continue
        # The line is looked up only for a bad entry: searching the text for every key would
        # be quadratic on a 71,103-key file.
        occurrence = sum(1 for earlier, _ in pairs[: position + 1] if earlier == key)
        line = _json_key_line(text, key, occurrence)
        raise ValueError(f"{path}: line {line if line else '?'}: {problem}")
    return result


def _json_entry_problem(key: str, value: Any, seen: Mapping[int, float], n_test: int) -> str | None:
    """What is wrong with one ``"key": value`` entry of a JSON submission, or None."""
    if not re.fullmatch(r"\d+", key):
        return (
            f"key {key!r} is not a test index; keys must be integers written as strings, "
            f'e.g. "0" .. "{n_test - 1}".'
        )
    index = int(key)
    if index >= n_test:
        return f"index {index} is out of range; test indices run from 0 to {n_test - 1}."
    if index in seen:
        return (
            f"duplicate key {key!r} (index {index} appears more than once); keep exactly one "
            "prediction per index."
        )
    if _finite_float(value) is None:
        return (
            f"value {value!r} for index {index} is not a finite number; every prediction must "
            "be a real number (no NaN, Infinity, null or strings)."
        )
    return None


def _load_table_lines(
    path: Path, text: str, n_test: int, what: str, tsv_only: bool = False
) -> np.ndarray:
    """Parse one value per line, or ``sequence<TAB>value`` per line, into an array."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # final newline
    if not lines:
        raise ValueError(f"{path}: the file is empty; expected {n_test} rows of {what}s.")
    tsv = "\t" in lines[0]
    if tsv_only and not tsv:
        raise ValueError(
            f"{path}: line 1: expected two tab-separated columns (sequence, {what}), "
            f"found {lines[0][:60]!r}."
        )
    layout = f"sequence<TAB>{what}" if tsv else f"one {what} per line"
    values = np.empty(len(lines), dtype=np.float64)
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if tsv:
            fields = line.split("\t")
            if len(fields) != 2:
                raise ValueError(
                    f"{path}: line {number}: expected 2 tab-separated columns (sequence, {what}), "
                    f"found {len(fields)}; every row must be {layout}."
                )
            raw = fields[1]
        else:
            raw = line
        try:
            value = float(raw)
        except ValueError:
            hint = " (files have no header line)" if number == 1 else ""
            raise ValueError(
                f"{path}: line {number}: non-numeric {what} {raw!r}{hint}; every row must be "
                f"{layout} with a real number."
            ) from None
        if not math.isfinite(value):
            raise ValueError(
                f"{path}: line {number}: {what} {raw!r} is not finite; replace NaN/inf by a "
                "real number."
            )
        values[number - 1] = value
    if len(lines) != n_test:
        if len(lines) > n_test:
            where = f"line {n_test + 1} is an extra row"
        else:
            where = f"the file ends at line {len(lines)}"
        raise ValueError(
            f"{path}: {where}: found {len(lines)} rows but expected {n_test} ({layout}, row i = "
            "test index i, in the order of test_sequences.txt). Write one row per test sequence."
        )
    return values


def load_predictions(path: PathLike, n_test: int = N_TEST) -> dict[int, float] | np.ndarray:
    """Read a submission in any of the three accepted formats.

    Parameters
    ----------
    path : str or Path
        One of

        * a JSON object ``{"index": value}`` (keys are test indices written as strings), e.g.
          a public-leaderboard submission over the 9,045 indices of ``sample_submission.json``;
        * a TSV ``sequence<TAB>prediction`` with one row per test sequence, no header;
        * one value per line, one row per test sequence.

        For the two line formats, row i holds the prediction of test index i.
    n_test : int, default 71,103
        Number of test rows; the line formats must have exactly this many rows and JSON keys
        must lie in ``0 .. n_test - 1``.

    Returns
    -------
    dict of int to float, or numpy.ndarray
        A dict for JSON input (only the indices given), otherwise a float64 array of length
        ``n_test``. Both are accepted by :func:`score_public` and :func:`score_private`.

    Raises
    ------
    ValueError
        On a malformed file; the message names the file, the line and the bad value (non-numeric
        or non-finite value, duplicate key, wrong number of rows or columns).
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _load_prediction_json(path, text, n_test)
    return _load_table_lines(path, text, n_test, what="prediction")


def load_truth(path: PathLike, n_test: int = N_TEST) -> np.ndarray:
    """Read measured expression for every test row from a ``sequence<TAB>expression`` file.

    Parameters
    ----------
    path : str or Path
        TSV without header, one row per test sequence in test order (row i = test index i).
    n_test : int, default 71,103
        Expected number of rows.

    Returns
    -------
    numpy.ndarray
        float64 array of length ``n_test``, ready for :func:`score_private`.

    Raises
    ------
    ValueError
        If a row is malformed or the row count is wrong (the message names file and line).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return _load_table_lines(path, text, n_test, what="expression", tsv_only=True)


# --------------------------------------------------------------------------------------------
# Subset definitions (cached per data directory)
# --------------------------------------------------------------------------------------------


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: pass the dream2022 data directory, the one that contains "
            f"{_PUBLIC_DIR}/ and {_SUBSETS_DIR}/."
        )
    return path


def _read_json_items(path: Path) -> tuple[tuple[str, Any], ...]:
    """Key/value pairs of a JSON object in file order, duplicates included."""
    with open(_require_file(path), encoding="utf-8") as handle:
        items = json.load(handle, object_pairs_hook=tuple)
    if not isinstance(items, tuple):
        raise ValueError(f"{path}: expected a JSON object.")
    return items


def _public_items(path: Path, paired: bool) -> dict[Any, Any]:
    """Distinct keys of a public-leaderboard JSON (an index, or an ``(alt, ref)`` tuple)."""
    result: dict[Any, Any] = {}
    for key, value in _read_json_items(path):
        if paired:
            alt, ref = (int(part) for part in key.split(","))
            parsed, truth = (alt, ref), (float(value[0]), float(value[1]))
        else:
            parsed, truth = int(key), float(value)
        if parsed in result and result[parsed] != truth:
            raise ValueError(f"{path}: key {key!r} appears twice with different values.")
        result[parsed] = truth
    return result


def _read_csv_columns(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with open(_require_file(path), newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in columns if name not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}.")
        return list(reader)


def _csv_int(path: Path, row: dict[str, str], column: str, line: int, n_test: int) -> int:
    raw = row[column]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{path}: line {line}: {column} {raw!r} is not an integer.") from None
    if not 0 <= value < n_test:
        raise ValueError(f"{path}: line {line}: {column} {value} is outside 0..{n_test - 1}.")
    return value


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _pair_array(pairs: set[tuple[int, int]] | list[tuple[int, int]]) -> np.ndarray:
    ordered = sorted(set(pairs))
    return _readonly(np.array(ordered, dtype=np.int64).reshape(len(ordered), 2))


@functools.lru_cache(maxsize=8)
def _load_public(data_dir: str) -> dict[str, SubsetDefinition]:
    board = Path(data_dir) / _PUBLIC_DIR
    definitions: dict[str, SubsetDefinition] = {}
    for name in SUBSET_WEIGHTS:
        paired = name in PAIRED_SUBSETS
        filename = _GROUND if name == "all" else f"{name}_exp_indices.json"
        items = _public_items(board / filename, paired)
        keys = sorted(items)
        if paired:
            indices = _pair_array(keys)
            truth = np.array([items[key] for key in keys], dtype=np.float64).reshape(-1, 2)
        else:
            indices = np.array(keys, dtype=np.int64)
            truth = np.array([items[key] for key in keys], dtype=np.float64)
        definitions[name] = SubsetDefinition(name, _readonly(indices), _readonly(truth))
    return definitions


@functools.lru_cache(maxsize=8)
def _load_private(data_dir: str) -> dict[str, SubsetDefinition]:
    root = Path(data_dir)
    public = _load_public(data_dir)
    public_indices = public["all"].indices
    definitions = {
        "all": SubsetDefinition(
            "all", _readonly(np.setdiff1d(np.arange(N_TEST, dtype=np.int64), public_indices))
        )
    }
    for name, filename in _SINGLE_CSV.items():
        path = root / _SUBSETS_DIR / filename
        rows = _read_csv_columns(path, ("pos",))
        positions = np.array(
            [_csv_int(path, row, "pos", line, N_TEST) for line, row in enumerate(rows, start=2)],
            dtype=np.int64,
        )
        # np.setdiff1d returns the sorted distinct values: duplicates count once.
        definitions[name] = SubsetDefinition(
            name, _readonly(np.setdiff1d(positions, public_indices))
        )
    for name, filename in _PAIRED_CSV.items():
        path = root / _SUBSETS_DIR / filename
        public_pairs = {tuple(int(i) for i in pair) for pair in public[name].indices}
        public_either = public_pairs | {(ref, alt) for alt, ref in public_pairs}
        rows = _read_csv_columns(path, ("alt_pos", "ref_pos"))
        private: set[tuple[int, int]] = set()
        flagged_public: set[tuple[int, int]] = set()
        for line, row in enumerate(rows, start=2):
            pair = (
                _csv_int(path, row, "alt_pos", line, N_TEST),
                _csv_int(path, row, "ref_pos", line, N_TEST),
            )
            if "split" in row:
                if row["split"] not in ("public", "private"):
                    raise ValueError(
                        f"{path}: line {line}: split {row['split']!r} is neither 'public' nor "
                        "'private'."
                    )
                (flagged_public if row["split"] == "public" else private).add(pair)
            elif pair not in public_either:
                private.add(pair)
        if rows and "split" in rows[0]:
            # The reconstructed SNV list carries its own split: it must agree with the JSON.
            wrongly_private = {pair for pair in private if pair in public_either}
            wrongly_public = {pair for pair in flagged_public if pair not in public_either}
            if wrongly_private or wrongly_public:
                raise ValueError(
                    f"{path}: the split column disagrees with {_PUBLIC_DIR}/{name}_exp_indices."
                    f"json: {len(wrongly_private)} pair(s) marked private are public, "
                    f"{len(wrongly_public)} marked public are not in the public JSON."
                )
        definitions[name] = SubsetDefinition(name, _pair_array(private))
    return {name: definitions[name] for name in SUBSET_WEIGHTS}


def _cache_key(data_dir: PathLike) -> str:
    return str(Path(data_dir).expanduser().resolve())


def subset_definitions(data_dir: PathLike, split: str = "public") -> dict[str, SubsetDefinition]:
    """Return the subsets scored on one split, parsed once per data directory.

    Parameters
    ----------
    data_dir : str or Path
        The ``dream2022`` directory holding ``public_leaderboard/`` and ``test_subsets/``.
    split : {"public", "private"}
        Which split.

    Returns
    -------
    dict of str to SubsetDefinition
        Keyed and ordered as :data:`SUBSET_WEIGHTS`. The arrays are read-only and shared
        between calls (``functools.lru_cache`` per resolved directory).
    """
    if split == "public":
        return dict(_load_public(_cache_key(data_dir)))
    if split == "private":
        return dict(_load_private(_cache_key(data_dir)))
    raise ValueError(f"unknown split {split!r}; use 'public' or 'private'.")


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
            number = _finite_float(value)
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
    return pearson(pred, truth), spearman(pred, truth)


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


def _values(vector: np.ndarray, subset: SubsetDefinition) -> np.ndarray:
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
    subsets = _load_public(_cache_key(data_dir))
    vector = _prediction_vector(predictions)
    _check_present(
        vector,
        subsets["all"].indices,
        "predictions are",
        "a public submission needs one value for every index of "
        f"{_PUBLIC_DIR}/sample_submission.json.",
    )
    r, rho, n = {}, {}, {}
    for name, subset in subsets.items():
        pred = _values(vector, subset)
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
    subsets = _load_private(_cache_key(data_dir))
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
        pred = _values(vector, subset)
        r[name], rho[name] = _correlations(pred, _values(truth_vector, subset), name, "private")
        n[name] = subset.n
    return _combine("private", r, rho, n)


def score(predictions: PathLike | Predictions, data_dir: PathLike, split: str = "public", truth: PathLike | np.ndarray | None = None) -> ScoreResult:
    """Score a submission file (or loaded predictions) on the public or private split.

    ``predictions`` may be a path (JSON ``{index: value}``, a 71,103-row TSV, or one value per
    line; see :func:`load_predictions`) or already loaded values. The private split needs
    ``truth``: a 71,103-row ``sequence<TAB>expression`` file or an array.
    """
    if isinstance(predictions, (str, Path)):
        predictions = load_predictions(predictions)
    if split == "public":
        return score_public(predictions, data_dir)
    if split == "private":
        if truth is None:
            raise ValueError(
                "the private split needs --truth: a file of the 71,103 test rows as sequence<TAB>expression "
                "(no private truth is distributed with the challenge data)"
            )
        truth_values = load_truth(truth) if isinstance(truth, (str, Path)) else np.asarray(truth)
        return score_private(predictions, truth_values, data_dir)
    raise ValueError(f"split={split!r}: use public or private")
