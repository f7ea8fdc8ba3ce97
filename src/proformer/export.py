"""``proformer export``: a trained model as ONNX, for serving without PyTorch.

The exported graph takes the model-ready codes ``(batch, 2 * length)`` (int64, the run's
:class:`proformer.sequence.Layout` applied as training and predict apply it:
``Layout(**config["layout"]).apply(codes, lengths)``) and returns the predictions in
standardised units, ``(batch,)`` or ``(batch, n_targets)``. The batch dimension is dynamic.
Needs the optional extra: ``pip install "proformer[onnx]"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .predict import load_model
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
    model, info = load_model(model_dir)
    length = model.config.length
    example = torch.randint(0, N, (2, 2 * length))  # A C G T
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        model, (example,), dynamo=True, opset_version=opset, dynamic_shapes=({0: batch},),
        input_names=["codes"], output_names=["prediction"],
    )
    program.save(str(out))
    result = {"out": str(out)}
    if check:
        result["max_abs_difference"] = onnx_parity(model, out)
    return result


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
