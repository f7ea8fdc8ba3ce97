"""``proformer export``: a trained model as ONNX, for serving without PyTorch.

The exported graph takes the model-ready codes ``(batch, 2 * length)`` (int64, the run's
:class:`proformer.sequence.Layout` applied as training and predict apply it:
``Layout(**config["layout"]).apply(codes, lengths)``) and returns the predictions in
standardised units, ``(batch,)`` or ``(batch, n_targets)``. The batch dimension is dynamic.
Needs the optional extra: ``pip install "proformer[onnx]"``.

The ``.onnx`` file is written beside its target and renamed into place once written (and
checked), so a failed export leaves nothing behind; a target that is the run's ``config.json``
or ``weights.pt`` is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .io.atomic import atomic_path, same_file
from .io.run import CONFIG, WEIGHTS
from .inference import load
from .sequence import N


def export_onnx(model_dir: str | Path, out: str | Path, opset: int = 18, check: bool = True) -> dict:
    """Write the best model of ``model_dir`` as ONNX and, with ``check``, compare onnxruntime to torch.

    Returns
    -------
    dict
        ``out`` and, when checked, ``max_abs_difference`` on a batch of random sequences.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ImportError('ONNX export needs the optional extra: pip install "proformer[onnx]"') from None
    check_target(model_dir, out)
    model = load(model_dir, "cpu").model
    length = model.config.length
    example = torch.randint(0, N, (2, 2 * length))  # A C G T
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        model, (example,), dynamo=True, opset_version=opset, dynamic_shapes=({0: batch},),
        input_names=["codes"], output_names=["prediction"],
    )
    result = {"out": str(out)}
    with atomic_path(out, suffix=".onnx") as temporary:
        program.save(str(temporary), external_data=False)  # one file, so the rename moves all of it
        if check:
            result["max_abs_difference"] = onnx_parity(model, temporary)
    return result


def check_target(model_dir: str | Path, out: str | Path) -> None:
    """Refuse an ONNX target that is a directory or a file of the run that predict needs."""
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(21, "is a directory (--onnx takes a file name such as model.onnx)", str(out))
    for name in (CONFIG, WEIGHTS, CONFIG + ".tmp", WEIGHTS + ".tmp"):
        needed = Path(model_dir) / name
        if same_file(out, needed):
            raise ValueError(f"--onnx {out} is the run's {name}: exporting there would destroy the model; "
                             f"give another file name, e.g. {Path(model_dir) / 'model.onnx'}")


def onnx_parity(model: torch.nn.Module, path: str | Path, batch_size: int = 16, seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime and torch on random sequences."""
    import onnxruntime

    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, N + 1, (batch_size, 2 * model.config.length), generator=generator)  # A C G T N
    with torch.no_grad():
        expected = model(codes).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: codes.numpy().astype(np.int64)})[0]
    return float(np.abs(got - expected).max())
