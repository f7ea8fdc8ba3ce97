"""proformer: train, evaluate and apply Proformer models on DNA sequence-to-number data.

The package follows the way a sequence travels, each step a function the CLI calls::

    from proformer.data.prepare import prepare      # file -> dataset directory
    from proformer.config import load_run_config    # preset/YAML + overrides -> RunConfig
    from proformer.train import train               # RunConfig -> run directory (best model)
    from proformer.predict import predict           # run directory + sequence file -> predictions file
    from proformer.evaluate import evaluate         # run directory + labelled rows -> metrics
    from proformer.score import score               # predictions -> official DREAM 2022 score

A trained run (or several, an ensemble) as a function of sequence strings, and what it explains::

    import proformer
    model = proformer.load("runs/grid")             # device="auto": CUDA if present
    model.predict(["TGCATTTTTTTCACATC...", ...])    # (n,) or (n, n_targets), training units
    folds = proformer.load(["runs/cv/fold-0", "runs/cv/fold-1"])  # a list: the mean of the runs
    proformer.ism(model, ["TGCATTTTTTTCACATC..."])  # effects of every substitution
    proformer.attribute(model, sequences, "integrated_gradients")
    proformer.variant_effect(model, ref=[...], alt=[...])
    proformer.design(model, sequences, "high", max_edits=3)

Every function that returns predictions takes ``standardized=`` (default False: training units;
True: the z-scores the model was trained on). :mod:`proformer.sequence` holds the encoding and the
DREAM layout, :mod:`proformer.model` the network (torch only). ``import proformer`` itself loads
nothing heavy: each function here imports torch when it is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__version__ = "0.1.0"


def _on_first_call(module: str, name: str) -> Callable:
    """``module.name`` as a top-level function that imports its module when called, not when
    ``proformer`` is imported or the name looked up: torch loads only when it is needed."""

    def function(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``{module}.{name}`` (imported on first call); see its docstring for the parameters."
    function.calls = f"{module}.{name}"
    return function


load = _on_first_call("proformer.inference", "load")
ism = _on_first_call("proformer.interpret.ism", "ism")
attribute = _on_first_call("proformer.interpret.attribute", "attribute")
variant_effect = _on_first_call("proformer.interpret.variants", "variant_effect")
design = _on_first_call("proformer.interpret.design", "design")

__all__ = ["__version__", "attribute", "design", "ism", "load", "variant_effect"]
