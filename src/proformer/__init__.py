"""proformer: train, evaluate and apply Proformer models on DNA sequence-to-number data.

The package follows the way a sequence travels, each step a function the CLI calls::

    from proformer.data.prepare import prepare      # file -> dataset directory
    from proformer.config import load_run_config    # preset/YAML + overrides -> RunConfig
    from proformer.train import train               # RunConfig -> run directory (best model)
    from proformer.predict import predict           # run directory + sequences -> predictions
    from proformer.evaluate import evaluate         # run directory + labelled rows -> metrics
    from proformer.score import score               # predictions -> official DREAM 2022 score

A trained run as a function of sequence strings::

    import proformer
    model = proformer.load("runs/grid")             # device="auto": CUDA if present
    model.predict(["TGCATTTTTTTCACATC...", ...])    # (n,) or (n, n_targets), training units
    folds = proformer.load(["runs/cv/fold-0", "runs/cv/fold-1"])  # a list: the mean of the runs

:mod:`proformer.sequence` holds the encoding and the DREAM layout, :mod:`proformer.model` the
network (torch only). ``import proformer`` itself loads nothing heavy: :func:`load` imports
torch when it is called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .predict import Ensemble, TrainedModel

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir: str | os.PathLike | Sequence[str | os.PathLike], device: str = "auto", *,
         standardized: bool = False, batch_size: int = 256, precision: str = "32",
         rc_average: bool | None = None) -> TrainedModel | Ensemble:
    """Load a trained run for prediction: ``proformer.load(run).predict(["ACGT...", ...])``.

    Parameters
    ----------
    run_dir : path, or list of paths
        A run directory (``config.json`` + ``weights.pt``, as ``proformer train`` writes it).
        A list or tuple of run directories (e.g. the ``fold-*`` runs of ``proformer sweep
        --folds K``) loads them as one ensemble, whose prediction is the mean of the runs'
        predictions, target by target; the runs must predict the same targets in the same order.
    device : str
        ``auto`` (CUDA if present, then MPS, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
    standardized : bool
        False (default): predictions in training units; True: z-scores of the training targets
        (for an ensemble only when its runs share the target mean and std, as z-scores of runs
        standardised differently are not in one unit).
    batch_size : int
        Sequences per forward pass.
    precision : "32" or "bf16"
        bf16 autocast for the forward pass (a GPU that supports it).
    rc_average : bool, optional
        Average each sequence's prediction with its reverse complement's; None: the run's setting.

    Returns
    -------
    proformer.predict.TrainedModel or proformer.predict.Ensemble
        ``.predict(sequences)`` -> float64 ``(n,)`` for a one-target run, ``(n, n_targets)``
        otherwise (columns: ``.target_names``). Sequences are given whole, flanks included, and
        laid out with the run's own layout (each run's own, in an ensemble), exactly as
        ``proformer predict`` does. A list gives an Ensemble even of one run.
    """
    # torch is imported here, not at ``import proformer``
    from .predict import load as _load

    return _load(run_dir, device, standardized=standardized, batch_size=batch_size, precision=precision,
                 rc_average=rc_average)
