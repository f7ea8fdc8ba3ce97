"""Fixtures shared by the tests under tests/score/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from proformer.score import (
    N_TEST,
    load_predictions,
)


@pytest.fixture(scope="session")
def autosome(dream_dir: Path) -> np.ndarray:
    """The winning team's predictions for all 71,103 test rows, as an array."""
    predictions = load_predictions(dream_dir / "peer_predictions" / "autosome.org_all.json")
    assert isinstance(predictions, dict) and len(predictions) == N_TEST
    return np.array([predictions[i] for i in range(N_TEST)])


@pytest.fixture(scope="session")
def private_truth(autosome: np.ndarray) -> np.ndarray:
    """A stand-in truth for all rows: autosome's predictions plus seeded noise."""
    rng = np.random.default_rng(2022)
    return autosome + rng.normal(0.0, 0.5, size=N_TEST)
