"""Which test rows each DREAM 2022 subset scores, read from the data directory and cached.

The public split comes from ``public_leaderboard/*.json`` (indices with their measured truth),
the private split from ``test_subsets/*.csv`` minus everything public. numpy only.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.submission import N_TEST, PathLike

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
PUBLIC_DIR = "public_leaderboard"
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
# Subset definitions (cached per data directory)
# --------------------------------------------------------------------------------------------


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: pass the dream2022 data directory, the one that contains "
            f"{PUBLIC_DIR}/ and {_SUBSETS_DIR}/."
        )
    return path


def _read_json_items(path: Path) -> tuple[tuple[str, Any], ...]:
    """Key/value pairs of a JSON object in file order, duplicates included."""
    with open(_require_file(path), encoding="utf-8") as handle:
        try:
            items = json.load(handle, object_pairs_hook=tuple)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}: line {error.lineno}: not valid JSON ({error.msg}); the file is truncated or "
                "corrupt: restore it from the challenge data (proformer download)."
            ) from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); restore it "
                             "from the challenge data (proformer download).") from None
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
    board = Path(data_dir) / PUBLIC_DIR
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
                    f"{path}: the split column disagrees with {PUBLIC_DIR}/{name}_exp_indices."
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
