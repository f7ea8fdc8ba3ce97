"""Tests of proformer.interpret.scorer: Scorer, scorers and mean_over, on planted models with a
known answer (tests/helpers.py: planted_motif_model counts exact GATA on the forward strand)."""

import numpy as np
import pytest
import torch
from helpers import (
    TINY_RUN_HEAD,
    TINY_RUN_LENGTH,
    TINY_RUN_TAIL,
    planted_motif_model,
    tiny_run_info,
)

from proformer.inference import Ensemble, Run, units_text
from proformer.interpret.scorer import Scorer, mean_over, scorers


class TwoTargets(torch.nn.Module):
    """The planted count and ten minus it: ``(batch, 2)``, the shape of a two-target model."""

    def __init__(self):
        super().__init__()
        self.count = planted_motif_model()

    def forward(self, x, singleton=None):
        y = self.count(x)
        return torch.stack([y, 10 - y], dim=1)


def whole(core: str) -> str:
    """A 20-nt model window with the run's flanks around it, as a sequence file holds it."""
    assert len(core) == TINY_RUN_LENGTH
    return "C" * TINY_RUN_HEAD + core + "C" * TINY_RUN_TAIL


#: Windows with 0, 1 and 2 forward GATA (and no TATC, the motif's reverse complement).
SEQUENCES = [whole("C" * 20), whole("GATA" + "C" * 16), whole("GATA" + "C" * 12 + "GATA")]
COUNTS = np.array([0.0, 1.0, 2.0])


def planted(**options) -> Run:
    """The planted model as a run: target mean 1 and std 2 unless ``options`` say otherwise."""
    rc_average = options.pop("rc_average", False)
    return Run(planted_motif_model(), tiny_run_info(**options), rc_average=rc_average)


def test_predict_in_training_units_and_z_scores():
    """Training units are ``count * std + mean``; standardized the model's own output."""
    scorer = Scorer(planted())
    assert scorer.target_index == 0 and scorer.target_name == "expr"
    assert scorer.units == units_text(False)
    values = scorer.predict(SEQUENCES)
    assert values.dtype == np.float64
    np.testing.assert_array_equal(values, COUNTS * 2 + 1)
    z = Scorer(planted(), standardized=True)
    assert z.units == units_text(True)
    np.testing.assert_array_equal(z.predict(SEQUENCES), COUNTS)


def test_call_batches_model_codes_and_handles_none():
    """The same numbers in batches of 2 as in one batch; no rows gives an empty array."""
    small = Run(planted_motif_model(), tiny_run_info(), batch_size=2)
    scorer = Scorer(small)
    codes = scorer.lay_out(SEQUENCES * 3).codes
    assert codes.shape == (9, 2 * TINY_RUN_LENGTH)
    np.testing.assert_array_equal(scorer(codes), np.tile(COUNTS * 2 + 1, 3))
    assert scorer(codes[:0]).shape == (0,)


def test_target_by_name_or_index_with_its_own_statistics():
    """The chosen column, scaled by that target's std and mean."""
    run = Run(TwoTargets(), tiny_run_info(n_targets=2, mean=[0.0, 100.0], std=[1.0, 3.0]))
    for target in ("target1", 1):
        scorer = Scorer(run, target)
        assert scorer.target_name == "target1" and (scorer.scale, scorer.shift) == (3.0, 100.0)
        np.testing.assert_array_equal(scorer.predict(SEQUENCES), (10 - COUNTS) * 3 + 100)
    np.testing.assert_array_equal(Scorer(run).predict(SEQUENCES), COUNTS)
    with pytest.raises(ValueError, match=r"target='expr': the model predicts target0, target1"):
        Scorer(run, "expr")


def test_one_hot_model_matches_predict_and_averages_the_reverse_complement():
    """The one-hot function gives predict's numbers, is differentiable, and with RC averaging
    adds the flipped strand's prediction (here none: no TATC), halving the count."""
    one_hot = torch.zeros(3, 4, TINY_RUN_LENGTH)
    for row, sequence in enumerate(SEQUENCES):
        for position, base in enumerate(sequence[TINY_RUN_HEAD : TINY_RUN_HEAD + TINY_RUN_LENGTH]):
            one_hot[row, "ACGT".index(base), position] = 1.0
    one_hot.requires_grad_(True)
    y = Scorer(planted()).one_hot_model()(one_hot)
    np.testing.assert_allclose(y.detach().numpy(), COUNTS * 2 + 1)
    y.sum().backward()
    assert one_hot.grad[2, "ACGT".index("G"), 0] > 0  # the first G of a GATA match
    rc = Scorer(planted(rc_average=True))
    assert rc.rc_average
    np.testing.assert_allclose(rc.one_hot_model()(one_hot).detach().numpy(), COUNTS / 2 * 2 + 1)
    np.testing.assert_allclose(rc.predict(SEQUENCES), COUNTS / 2 * 2 + 1)


def test_scorers_one_per_member():
    """A run gives one scorer; an ensemble one per run, each of the same target and units."""
    run = planted()
    assert [scorer.run for scorer in scorers(run)] == [run]
    a = Run(planted_motif_model(), tiny_run_info(), name="a")
    b = Run(planted_motif_model(), tiny_run_info(mean=[5.0]), name="b")
    found = scorers(Ensemble([a, b]), target="expr")
    assert [scorer.run for scorer in found] == [a, b]
    assert [scorer.shift for scorer in found] == [1.0, 5.0]


def test_scorers_errors():
    """Not a model, a target it lacks, z-scores of runs with different statistics."""
    with pytest.raises(TypeError, match=r"model is a PlantedMotif; give what proformer.load\(RUN_DIR\) returns"):
        scorers(planted_motif_model())
    with pytest.raises(ValueError, match=r"target=3: the model predicts expr"):
        scorers(planted(), target=3)
    a = Run(planted_motif_model(), tiny_run_info(), name="a")
    b = Run(planted_motif_model(), tiny_run_info(std=[4.0]), name="b")
    with pytest.raises(ValueError, match=r"standardized \(z-score\) predictions .*same target statistics"):
        scorers(Ensemble([a, b]), standardized=True)
    assert len(scorers(Ensemble([a, b]))) == 2  # training units average fine


def test_mean_over():
    """One run: its own array; several: the mean, NaN where any is NaN, in the first's dtype."""
    one = np.array([1.0, 2.0])
    assert mean_over([one]) is one
    mean = mean_over([np.array([1.0, np.nan, 3.0], dtype=np.float32), np.array([3.0, 0.0, 4.0], dtype=np.float32)])
    assert mean.dtype == np.float32
    np.testing.assert_array_equal(mean, [2.0, np.nan, 3.5])
