"""One number per sequence from a loaded model: the base of every analysis here.

The analyses take what :func:`proformer.load` returns, a :class:`~proformer.inference.Run` or an
:class:`~proformer.inference.Ensemble`, plus ``target`` (which of its targets) and
``standardized`` (the units). :func:`scorers` turns that into one :class:`Scorer` per run; an
analysis runs on each and averages the results in input coordinates, which for an ensemble is
the analysis of the ensemble's mean prediction: ISM effects, variant effects and design
predictions are means of predictions, and the gradient methods are linear in the function they
explain. Each scorer predicts through :func:`proformer.inference.predict_batch`, as
``proformer predict`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..inference import Ensemble, LaidOut, Run, units_text

__all__ = ["Scorer", "mean_over", "scorers"]


class Scorer:
    """One run's prediction of one target, in the units asked for, batched over model codes.

    Parameters
    ----------
    run : Run
    target : str or int, optional
        Which target of a multi-target run (its name or index); the first by default.
    standardized : bool
        False: training units (``y * std + mean``); True: z-scores of the training targets.
    """

    def __init__(self, run: Run, target: str | int | None = None, standardized: bool = False):
        self.run = run
        self.target_index = run.target_index(target)
        self.target_name = run.target_names[self.target_index]
        self.standardized = bool(standardized)
        self.units = units_text(self.standardized)
        self.scale = 1.0 if standardized else float(run.info.target.std[self.target_index])
        self.shift = 0.0 if standardized else float(run.info.target.mean[self.target_index])
        self.device, self.batch_size, self.layout = run.device, run.batch_size, run.layout
        self.rc_average = run.rc_average

    def lay_out(self, sequences: Sequence[str], where: Sequence[str] | None = None) -> LaidOut:
        """:meth:`Run.lay_out`: check the sequences and lay them out with the run's layout."""
        return self.run.lay_out(sequences, where)

    def __call__(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        """Model codes ``(n, 2 * length)`` -> float64 ``(n,)``, in batches of :attr:`batch_size`."""
        out = [self.predict_batch(codes[start : start + self.batch_size]) for start in range(0, len(codes), self.batch_size)]
        return np.concatenate(out) if out else np.zeros(0)

    def predict_batch(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        """One forward pass (two with RC averaging): ``(batch, 2 * length)`` -> float64 ``(batch,)``."""
        y = self.run.model_output(codes)[:, self.target_index]
        return y.double().cpu().numpy() * self.scale + self.shift

    def predict(self, sequences: Sequence[str], where: Sequence[str] | None = None) -> np.ndarray:
        """float64 ``(n,)`` predictions of this scorer's target for sequence strings."""
        return self(self.lay_out(sequences, where).codes)

    def one_hot_model(self) -> torch.nn.Module:
        """The model as a function of the one-hot forward strand ``(batch, 4, length)`` (A C G T;
        an all-zero column is N) -> ``(batch,)`` in this scorer's units, for gradient-based
        attribution. The model builds the reverse complement itself; with RC averaging the
        prediction of the flipped one-hot (the reverse complement) is averaged in."""
        return _OneHotModel(self)


class _OneHotModel(torch.nn.Module):
    def __init__(self, scorer: Scorer):
        super().__init__()
        self.model = scorer.run.model
        self.target_index, self.rc_average = scorer.target_index, scorer.rc_average
        self.scale, self.shift = scorer.scale, scorer.shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._one(self.model(x))
        if self.rc_average:
            y = (y + self._one(self.model(x.flip(1, 2)))) / 2  # A C G T reversed = complement
        return y * self.scale + self.shift

    def _one(self, y: torch.Tensor) -> torch.Tensor:
        return (y[:, self.target_index] if y.dim() > 1 else y).float()


def scorers(model: Run | Ensemble, target: str | int | None = None, standardized: bool = False) -> list[Scorer]:
    """One :class:`Scorer` per run of ``model`` (a run or an ensemble), all of one target and units.

    z-scores of an ensemble need runs with the same target statistics
    (:func:`proformer.inference.check_ensemble`); a ``target`` the model lacks is an error
    naming the targets it has.
    """
    if not isinstance(model, (Run, Ensemble)):
        raise TypeError(f"model is a {type(model).__name__}; give what proformer.load(RUN_DIR) returns (a run or a "
                        f"list of runs)")
    model.check_units(standardized)
    model.target_index(target)
    return [Scorer(run, target, standardized) for run in model.members]


def mean_over(values: list[np.ndarray]) -> np.ndarray:
    """The mean of the runs' results (one run: its own array, untouched). NaN where any run has
    NaN: a position counts as seen only when every run sees it."""
    if len(values) == 1:
        return values[0]
    return np.mean(values, axis=0).astype(values[0].dtype)
