"""``proformer export``: a trained model (or an ensemble) as ONNX, for serving without PyTorch.

The exported graph takes the model-ready codes ``(batch, 2 * length)`` (int64, the run's
:class:`proformer.sequence.Layout` applied as training and predict apply it:
``Layout(**config["layout"]).apply(codes, lengths)``) and returns what ``proformer predict``
returns for them: the run's reverse-complement averaging included, in training units by default
(z-scores with ``standardized``), ``(batch,)`` or ``(batch, n_targets)``; for several runs the
mean of their predictions (the runs must share one layout, since the graph has one input). The
batch dimension is dynamic. Needs the optional extra: ``pip install "proformer[onnx]"``.

The ``.onnx`` file follows the output rule of :mod:`proformer.io.atomic`: written beside its
target and renamed into place once written (and checked), so a failed export leaves nothing
behind (a symbolic link's target is written, the link stays; a pipe, a device or ``-`` gets the
bytes straight through; a directory is refused); a target that is the run's ``config.json``,
its weights (``weights.safetensors``, or a run's older ``weights.pt``) or its
``checkpoints/last.ckpt`` is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .inference import Run, load
from .io.atomic import atomic_path, output_target, same_file
from .io.run import CONFIG, LEGACY_WEIGHTS, WEIGHTS
from .model import swap_strands
from .sequence import N


class Served(torch.nn.Module):
    """The runs' mean prediction of model codes, in the units asked for: what gets exported."""

    def __init__(self, runs: Sequence[Run], standardized: bool = False):
        super().__init__()
        self.models = torch.nn.ModuleList(run.model for run in runs)
        self.rc_average = [run.rc_average for run in runs]
        self.length = runs[0].layout.length
        for i, run in enumerate(runs):
            scale = [1.0] * run.n_targets if standardized else run.info.target.std
            shift = [0.0] * run.n_targets if standardized else run.info.target.mean
            self.register_buffer(f"scale{i}", torch.tensor(scale, dtype=torch.float32))
            self.register_buffer(f"shift{i}", torch.tensor(shift, dtype=torch.float32))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        total = None
        for i, model in enumerate(self.models):
            y = model(codes).float()
            if self.rc_average[i]:
                y = (y + model(swap_strands(codes)).float()) / 2
            y = y * getattr(self, f"scale{i}") + getattr(self, f"shift{i}")
            total = y if total is None else total + y
        return total / len(self.models)


def export_onnx(model: str | os.PathLike | Sequence[str | os.PathLike], out: str | Path, *,
                standardized: bool = False, opset: int = 18, check: bool = True) -> dict:
    """Write the best model of a run (a list of runs: their mean) as ONNX and, with ``check``,
    compare onnxruntime with torch.

    Returns
    -------
    dict
        ``out`` and, when checked, ``max_abs_difference`` on a batch of random sequences.
    """
    try:
        import onnx  # noqa: F401 (the exporter needs it)
    except ImportError:
        raise ImportError('ONNX export needs the optional extra: pip install "proformer[onnx]"') from None
    runs = [model] if isinstance(model, (str, os.PathLike)) else list(model)
    for run in runs:
        check_target(run, out)
    loaded = load(runs, "cpu")
    layouts = {run.layout for run in loaded.members}
    if len(layouts) > 1:
        raise ValueError(f"the runs lay sequences out differently ({'; '.join(map(str, layouts))}): an ONNX graph "
                         f"takes one layout's codes; export runs trained with the same layout")
    served = Served(loaded.members, standardized).eval()
    example = torch.randint(0, N, (2, 2 * served.length))  # A C G T
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        served, (example,), dynamo=True, opset_version=opset, dynamic_shapes=({0: batch},),
        input_names=["codes"], output_names=["prediction"],
    )
    result = {"out": str(out)}
    with atomic_path(out, suffix=".onnx", flag="--onnx") as temporary:
        program.save(str(temporary), external_data=False)  # one file, so the rename moves all of it
        if check:
            result["max_abs_difference"] = onnx_parity(served, temporary)
    return result


def check_target(model_dir: str | Path, out: str | Path) -> None:
    """Refuse an ONNX target that is a directory or a file of the run: config.json and the weights
    (safetensors, or a run's older weights.pt) that predict needs, last.ckpt that --resume needs."""
    output_target(out, flag="--onnx")  # the output rule: a directory or a link to nothing is refused
    out = Path(out)
    for name in (CONFIG, WEIGHTS, LEGACY_WEIGHTS, "checkpoints/last.ckpt"):
        needed = Path(model_dir) / name
        if same_file(out, needed):
            raise ValueError(f"--onnx {out} is the run's {name}: exporting there would destroy the model; "
                             f"give another file name, e.g. {Path(model_dir) / 'model.onnx'}")


def onnx_parity(model: torch.nn.Module, path: str | Path, batch_size: int = 16, seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime and torch on random sequences."""
    import onnxruntime

    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, N + 1, (batch_size, 2 * model.length), generator=generator)  # A C G T N
    with torch.no_grad():
        expected = model(codes).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: codes.numpy().astype(np.int64)})[0]
    return float(np.abs(got - expected).max())
