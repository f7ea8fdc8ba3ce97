"""Helpers shared by the test modules (fixtures that use them are in conftest.py).

Import as ``from helpers import ...``: pytest puts tests/ on ``sys.path`` (the rootdir has no
``__init__.py`` here). The committed data under tests/data/ is described in
tests/data/make_fixtures.py.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

#: The committed fixtures (tests/data/make_fixtures.py writes them).
DATA = Path(__file__).resolve().parent / "data"

#: A model small enough to train in seconds on a CPU: one block of width 16, 3-mers, 4 heads of
#: expression, no dropout. Settings as ``key=value`` strings come from :func:`as_overrides`.
TINY_MODEL = {"dim": 16, "heads": 2, "blocks": 1, "readout": 4, "kmer": 3, "dropout": 0}


def as_overrides(settings: dict) -> list[str]:
    """``{"dim": 16, "data.split": "hash:0.8"}`` -> ``["dim=16", "data.split=hash:0.8"]`` (``--set`` values)."""
    return [f"{key}={value}" for key, value in settings.items()]


def random_dna(rng: np.random.Generator, n: int, length: int, alphabet: str = "ACGT") -> list[str]:
    """``n`` random sequences of ``length`` symbols drawn uniformly from ``alphabet``."""
    letters = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    return [row.tobytes().decode() for row in letters[rng.integers(0, len(alphabet), (n, length))]]


def planted_tsv(path: Path, n: int, length: int, rule: Callable[[str], float], noise: float, seed: int,
                digits: int) -> Path:
    """Write ``n`` rows ``sequence<TAB>target`` of random ``length``-nt sequences whose target is
    ``rule(sequence)`` plus normal noise of sd ``noise``, written with ``digits`` decimals.

    Each row draws its sequence, then its noise, from one generator seeded with ``seed``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        sequence = random_dna(rng, 1, length)[0]
        rows.append(f"{sequence}\t{rule(sequence) + rng.normal(0, noise):.{digits}f}\n")
    path.write_text("".join(rows))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as dictionaries."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_predictions(path: Path, column: int = 1) -> np.ndarray:
    """One column (default: the first prediction) of a ``sequence<TAB>prediction...`` file
    (predict's TSV: its header line, ``sequence<TAB>TARGET...``, is skipped)."""
    lines = Path(path).read_text().splitlines()
    if lines and lines[0].split("\t")[0] in ("sequence", "id"):
        lines = lines[1:]
    return np.array([float(line.split("\t")[column]) for line in lines])


def weight_distance(a: dict, b: dict) -> float:
    """Euclidean distance between two state dicts with the same keys (in float64)."""
    return sum((a[key] - b[key]).double().pow(2).sum() for key in a).sqrt().item()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads. Tiny models train ~5x faster on one thread than on
    two on a shared 2-core machine: with two threads each small op waits for a busy core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
