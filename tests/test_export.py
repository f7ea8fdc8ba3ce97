"""Tests of :mod:`proformer.export`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    SEQUENCE,
    one_line_error,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.export import check_target
from proformer.io.run import (
    RunInfo,
    TargetInfo,
    write_run_model,
)
from proformer.model import Proformer, model_preset
from proformer.sequence import Layout

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


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


onnx_needed = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs the onnx extra",
)


def importlib_spec(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """Two runs and the two exports the tests below read (an export takes seconds): run ``a``
    (mean 5, std 2, RC averaging) alone in training units, checked (``single``, with what the
    command printed in ``single_out``), and ``a`` with ``b`` (the same statistics) as an ensemble
    in z-scores (``ensemble``)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("export")
    a = _run(root / "a", seed=1, mean=5.0, std=2.0, rc_average=True)
    b = _run(root / "b", seed=2, mean=5.0, std=2.0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--model", str(a), "--onnx", str(root / "single.onnx")]) == 0
    assert main(["export", "--model", str(a), "--model", str(b), "--onnx", str(root / "ensemble.onnx"), "--standardized",
                 "--no-check"]) == 0
    return {"a": a, "b": b, "single": root / "single.onnx", "single_out": printed.getvalue(),
            "ensemble": root / "ensemble.onnx"}


def _onnx(path, codes):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"codes": np.asarray(codes).astype(np.int64)})[0]


def test_onnx_export_matches_torch_on_any_batch_size(exported):
    """The checked export says how far onnxruntime is from torch, and the graph takes any batch."""
    assert "max |difference|" in exported["single_out"]
    run = proformer.load(exported["a"], "cpu")
    for batch in (1, 7):
        codes = torch.randint(0, 5, (batch, 200))
        np.testing.assert_allclose(_onnx(exported["single"], codes), run.predict_codes(codes)[:, 0], rtol=1e-4,
                                   atol=1e-4)


def test_the_graph_predicts_as_predict_does_in_training_units_or_z_scores_and_for_an_ensemble(exported):
    """The ONNX graph is what proformer.load(...).predict_codes gives: training units by default
    (mean 5, std 2 here), z-scores with --standardized, the run's RC averaging, and for two runs
    the mean of their predictions."""
    codes = torch.randint(0, 5, (6, 200)).numpy()
    # Two exports cover the three properties: one run (default units, RC averaging), and the
    # ensemble in z-scores (the runs share their statistics, so the mean of z-scores is defined).
    a, b = str(exported["a"]), str(exported["b"])
    for out, runs, standardized in ((exported["single"], [a], False), (exported["ensemble"], [a, b], True)):
        expected = proformer.load(runs[0] if len(runs) == 1 else runs, "cpu")
        want = np.mean([run.predict_codes(codes, standardized)[:, 0] for run in expected.members], axis=0)
        np.testing.assert_allclose(_onnx(out, codes), want, rtol=1e-4, atol=1e-4)
    single_z = proformer.load(a, "cpu").predict_codes(codes, standardized=True)[:, 0]
    np.testing.assert_allclose(_onnx(exported["single"], codes), single_z * 2.0 + 5.0, rtol=1e-4, atol=1e-4)  # training units


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


@onnx_needed
def test_export_refuses_the_run_files_and_writes_atomically(tiny_run, tmp_path, capsys, monkeypatch):
    import shutil

    import proformer.export as export_module

    tiny_run = Path(shutil.copytree(tiny_run, tmp_path / "run"))  # the old code overwrote the model: a copy
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    weights = (tiny_run / "weights.safetensors").read_bytes()
    config = (tiny_run / "config.json").read_text()
    for target in (tiny_run / "weights.safetensors", tiny_run / "config.json", tiny_run / "." / "weights.safetensors"):
        assert main(["export", "--model", str(tiny_run), "--onnx", str(target), "--no-check"]) == 2
        one_line_error(capsys.readouterr().err, "destroy the model")
    assert (tiny_run / "weights.safetensors").read_bytes() == weights and (tiny_run / "config.json").read_text() == config

    def failed_check(*args, **kwargs):
        raise RuntimeError("parity check failed")

    monkeypatch.setattr(export_module, "onnx_parity", failed_check)
    with pytest.raises(RuntimeError):
        export_module.export_onnx(tiny_run, out_dir / "m.onnx")
    assert list(out_dir.iterdir()) == []  # neither the .onnx nor a temporary


def test_a_directory_where_a_file_is_expected_is_one_line(tiny_run, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    commands = [
        ["predict", "--model", str(tiny_run), "--input", str(folder), "--out", str(tmp_path / "o.tsv"), "--no-progress"],
        ["predict", "--model", str(tiny_run), "--input", str(tmp_path / "in.txt"), "--out", str(folder), "--no-progress"],
        ["score", str(folder), "--data-dir", str(folder)],
        ["train", "--config", str(folder), "--out", str(tmp_path / "run")],
    ]
    if importlib_spec("onnx") and importlib_spec("onnxscript"):
        commands.append(["export", "--model", str(tiny_run), "--onnx", str(folder), "--no-check"])
    for command in commands:
        assert main(command) == 2, command
        one_line_error(capsys.readouterr().err, str(folder))
    assert list(folder.iterdir()) == []


def test_export_refuses_every_file_of_the_run_as_its_target(tmp_path):
    """(Old code: weights.safetensors and checkpoints/last.ckpt were not among the run's files, so
    an export there was not refused: pytest.raises fails for them.)"""
    run = write_tiny_run(tmp_path / "run")
    for name in ("config.json", "weights.safetensors", "weights.pt", "checkpoints/last.ckpt"):
        with pytest.raises(ValueError, match=rf"is the run's {name}: exporting there would destroy the model"):
            check_target(run, run / name)
    check_target(run, run / "model.onnx")
