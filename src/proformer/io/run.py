"""Run directories: the best model as ``config.json`` (a :class:`RunInfo`) + ``weights.pt``.

``config.json`` carries everything prediction needs: the model's shape, the layout that turns a
sequence into model input, the training targets' names and statistics, and where the data came
from. Training writes it, and predict, export, sweeps and tests read it, all through
:class:`RunInfo`, so its keys are spelled in one place. torch is imported only to read or write
the weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..model.config import ModelConfig
from ..sequence import Layout

CONFIG = "config.json"
WEIGHTS = "weights.pt"


@dataclass(frozen=True)
class TargetInfo:
    """The training targets: a name per column, and the statistics predictions are scaled by.

    ``mean`` and ``std`` have one value per target; with ``standardized`` the model predicts
    ``(y - mean) / std`` and ``prediction * std + mean`` is in the measured units.
    """

    names: list[str]
    mean: list[float]
    std: list[float]
    standardized: bool


@dataclass(frozen=True)
class RunInfo:
    """What a run directory's ``config.json`` holds.

    Attributes
    ----------
    model : ModelConfig
        The model's shape.
    layout : Layout
        How a stored sequence becomes model input (trim, pad, reverse complement).
    target : TargetInfo
    data : dict
        Provenance: the training and validation datasets, the split, row counts.
    rc_average : bool
        Predict the mean over each sequence and its reverse complement (``data.rc_average``).
    best : dict or None
        The best epoch's validation metrics (absent until an epoch has been validated).
    proformer_version : str
    """

    model: ModelConfig
    layout: Layout
    target: TargetInfo
    data: dict = field(default_factory=dict)
    rc_average: bool = False
    best: dict | None = None
    proformer_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        values = {
            "proformer_version": self.proformer_version,
            "model": self.model.to_dict(),
            "layout": asdict(self.layout),
            "rc_average": self.rc_average,
            "target": asdict(self.target),
            "data": self.data,
        }
        if self.best is not None:
            values["best"] = self.best
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = CONFIG) -> "RunInfo":
        """Parse a ``config.json`` dict; ``source`` names the file in error messages."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected a JSON object, found {type(values).__name__}; "
                             f"it is not a run's config.json (train a model with proformer train)")
        missing = [key for key in ("model", "layout", "target") if key not in values]
        if missing:
            raise ValueError(f"{source} has no {', '.join(repr(k) for k in missing)} section; it was not written "
                             f"by proformer train (or is damaged): train the model again")
        try:
            target = values["target"]
            return cls(
                model=ModelConfig.from_dict(values["model"]),
                layout=Layout(**values["layout"]),
                target=TargetInfo(names=list(target["names"]), mean=[float(x) for x in target["mean"]],
                                  std=[float(x) for x in target["std"]], standardized=bool(target["standardized"])),
                data=dict(values.get("data", {})),
                rc_average=bool(values.get("rc_average", False)),
                best=values.get("best"),
                proformer_version=str(values.get("proformer_version", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: {error}; the file is damaged or from another program: train the model again") from None

    def with_best(self, best: dict) -> "RunInfo":
        """A copy that records ``best`` as the best epoch's metrics."""
        return RunInfo(self.model, self.layout, self.target, self.data, self.rc_average, best, self.proformer_version)


def read_run_info(run_dir: str | Path) -> RunInfo:
    """The :class:`RunInfo` of a run directory, with errors that name the file."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: expected a run directory written by proformer train")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); train the model again") from None
    return RunInfo.from_dict(values, source=str(path))


def write_run_model(run_dir: str | Path, state_dict: dict, info: RunInfo) -> None:
    """Write ``weights.pt`` (a plain state_dict, loadable with ``weights_only=True``) and ``config.json``.

    Each file is written beside its target and renamed into place, so a kill leaves the previous
    best model whole, never a truncated one.
    """
    import torch

    run_dir = Path(run_dir)
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    torch.save(state, run_dir / (WEIGHTS + ".tmp"))
    os.replace(run_dir / (WEIGHTS + ".tmp"), run_dir / WEIGHTS)
    (run_dir / (CONFIG + ".tmp")).write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    os.replace(run_dir / (CONFIG + ".tmp"), run_dir / CONFIG)


def read_weights(run_dir: str | Path) -> dict:
    """The state_dict of ``weights.pt``, loaded with ``weights_only=True`` (no code runs)."""
    import pickle

    import torch

    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: expected a run directory written by proformer train")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path} cannot be read ({str(error).splitlines()[0]}); it is truncated or damaged: "
                         f"train the model again or restore the file") from None
