"""Fixtures shared by the tests under tests/experiments/."""

from __future__ import annotations

import pytest
from helpers import LENGTH_SWEEP, planted_tsv

from proformer.data.prepare import prepare


@pytest.fixture(scope="session")
def tiny_data_sweep(tmp_path_factory):
    """400 rows of LENGTH nt whose target counts G and C, with noise: learnable in two epochs."""
    root = tmp_path_factory.mktemp("sweepdata")
    planted_tsv(root / "tiny.tsv", n=400, length=LENGTH_SWEEP, rule=lambda s: s.count("G") + 0.5 * s.count("C"),
                noise=0.3, seed=1, digits=4)
    prepare(root / "tiny.tsv", root / "tiny", trim=(0, 0), length=LENGTH_SWEEP, progress=False)
    return root / "tiny"
