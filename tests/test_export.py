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


def _run(path, seed: int, mean: float, std: float, rc_average: bool = False):
    path.mkdir()
    config = model_preset("grid")
    config.dim, config.readout, config.blocks = 16, 4, 1
    torch.manual_seed(seed)
    model = Proformer(config).eval()
    info = RunInfo(model=config, layout=Layout(), rc_average=rc_average,
                   target=TargetInfo(names=["y"], mean=[mean], std=[std], standardized=True))
    write_run_model(path, model.state_dict(), info)
    return path


def test_the_graph_predicts_as_predict_does_in_training_units_or_z_scores_and_for_an_ensemble(tmp_path):
    """The ONNX graph is what proformer.load(...).predict_codes gives: training units by default
    (mean 5, std 2 here), z-scores with --standardized, the run's RC averaging, and for two runs
    the mean of their predictions."""
    import onnxruntime

    import proformer

    a = _run(tmp_path / "a", seed=1, mean=5.0, std=2.0, rc_average=True)
    b = _run(tmp_path / "b", seed=2, mean=5.0, std=2.0)
    codes = torch.randint(0, 5, (6, 200)).numpy()

    def onnx(path):
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"codes": codes.astype(np.int64)})[0]

    # Two exports cover the three properties: one run (default units, RC averaging), and the
    # ensemble in z-scores (the runs share their statistics, so the mean of z-scores is defined).
    cases = [([str(a)], [], False), ([str(a), str(b)], ["--standardized"], True)]
    for i, (runs, flags, standardized) in enumerate(cases):
        out = tmp_path / f"m{i}.onnx"
        models = [arg for run in runs for arg in ("--model", run)]
        assert main(["export", *models, "--onnx", str(out), *flags, "--no-check"]) == 0
        expected = proformer.load(runs[0] if len(runs) == 1 else runs, "cpu")
        want = np.mean([run.predict_codes(codes, standardized)[:, 0] for run in expected.members], axis=0)
        np.testing.assert_allclose(onnx(out), want, rtol=1e-4, atol=1e-4)
    single_z = proformer.load(str(a), "cpu").predict_codes(codes, standardized=True)[:, 0]
    np.testing.assert_allclose(onnx(tmp_path / "m0.onnx"), single_z * 2.0 + 5.0, rtol=1e-4, atol=1e-4)  # training units


def test_runs_with_different_layouts_are_refused(tmp_path, capsys):
    a = _run(tmp_path / "a", seed=1, mean=0.0, std=1.0)
    config = model_preset("grid")
    config.dim, config.readout, config.blocks, config.length = 16, 4, 1, 80
    info = RunInfo(model=config, layout=Layout(length=80), target=TargetInfo(names=["y"], mean=[0.0], std=[1.0],
                                                                             standardized=True))
    (tmp_path / "b").mkdir()
    write_run_model(tmp_path / "b", Proformer(config).state_dict(), info)
    assert main(["export", "--model", str(a), "--model", str(tmp_path / "b"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "lay sequences out differently" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
