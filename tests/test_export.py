import numpy as np
import pytest
import torch

from proformer.cli import main
from proformer.model import Proformer, model_preset
from proformer.io.run import RunInfo, TargetInfo, write_run_model
from proformer.sequence import Layout

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_onnx_export_matches_torch_on_any_batch_size(tmp_path, capsys):
    import onnxruntime

    config = model_preset("grid")
    config.dim, config.readout = 16, 4
    torch.manual_seed(0)
    model = Proformer(config).eval()
    info = RunInfo(model=config, layout=Layout(), target=TargetInfo(names=["y"], mean=[0.0], std=[1.0], standardized=True))
    write_run_model(tmp_path, model.state_dict(), info)
    assert main(["export", "--model", str(tmp_path), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "max |difference|" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        codes = torch.randint(0, 5, (batch, 200))
        got = session.run(None, {"codes": codes.numpy().astype(np.int64)})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, model(codes).numpy(), rtol=1e-4, atol=1e-5)
