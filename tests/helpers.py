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


# -- interpretation: a run directory in a second, and a model with a known answer ---------------

#: The tiny run of :func:`write_tiny_run`: 20 positions per strand, flanks of 2 + 1 nt trimmed.
TINY_RUN_LENGTH, TINY_RUN_HEAD, TINY_RUN_TAIL = 20, 2, 1


def tiny_run_info(n_targets: int = 1, rc_average: bool = False, mean: list[float] | None = None,
                  std: list[float] | None = None):
    """The RunInfo of a random 20-position Proformer (dim 8, one block) with flanks 2 + 1; the
    target statistics are mean 1, std 2 for every target unless ``mean`` / ``std`` (one value
    per target) say otherwise."""
    from proformer.io.run import RunInfo, TargetInfo
    from proformer.model import ModelConfig
    from proformer.sequence import Layout

    names = ["expr"] if n_targets == 1 else [f"target{i}" for i in range(n_targets)]
    mean = [1.0] * n_targets if mean is None else [float(value) for value in mean]
    std = [2.0] * n_targets if std is None else [float(value) for value in std]
    if len(mean) != n_targets or len(std) != n_targets:
        raise ValueError(f"give one mean and one std per target ({n_targets})")
    return RunInfo(model=ModelConfig(kmer=3, dim=8, heads=1, blocks=1, readout=2, length=TINY_RUN_LENGTH,
                                     n_targets=n_targets),
                   layout=Layout(head=TINY_RUN_HEAD, tail=TINY_RUN_TAIL, length=TINY_RUN_LENGTH, pad="n"),
                   target=TargetInfo(names=names, mean=mean, std=std, standardized=True),
                   rc_average=rc_average, proformer_version="test")


def write_tiny_run(path: Path, seed: int = 0, **info_options) -> Path:
    """A run directory (config.json + weights.pt) of a randomly initialised tiny Proformer: the
    shapes, layout and units of a real run, written in well under a second."""
    import torch

    from proformer.io.run import write_run_model
    from proformer.model import Proformer

    info = tiny_run_info(**info_options)
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    write_run_model(path, Proformer(info.model).state_dict(), info)
    return path


def planted_motif_model(motif: str = "GATA", length: int = TINY_RUN_LENGTH):
    """A model with planted weights and a known answer: one convolution whose filter is the
    one-hot ``motif``, then ``relu(score - (len(motif) - 1))`` summed over positions, i.e. the
    number of exact ``motif`` matches on the forward strand (1 per match).

    It takes what a Proformer takes: codes ``(batch, 2 * length)`` (the forward half is read) or
    a one-hot forward strand ``(batch, 4, length)`` (differentiable, for attribution), and
    returns ``(batch,)``. Wrap it as ``proformer.inference.Run(planted_motif_model(), tiny_run_info())``.
    """
    import torch
    import torch.nn.functional as F

    class PlantedMotif(torch.nn.Module):
        def __init__(self):
            super().__init__()
            weight = torch.zeros(1, 4, len(motif))
            for offset, base in enumerate(motif):
                weight[0, "ACGT".index(base), offset] = 1.0
            self.filter = torch.nn.Parameter(weight)

        def forward(self, x: torch.Tensor, singleton=None) -> torch.Tensor:
            if not x.is_floating_point():
                forward = x[:, :length].long()
                x = F.one_hot(forward.clamp(max=4), 5)[..., :4].permute(0, 2, 1).float()  # N -> all zero
            score = F.conv1d(x.float(), self.filter)
            return F.relu(score - (len(motif) - 1)).sum(dim=(1, 2))

    return PlantedMotif().eval()
