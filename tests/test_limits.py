"""Tests of :mod:`proformer.limits`."""

from __future__ import annotations

import pytest
from helpers import (
    one_line,
    planted_motif_model,
    tiny_run_info,
)

from proformer.cli import main


@pytest.fixture
def small_machine(monkeypatch):
    """The machine has 1 MiB of memory (old code: there is no proformer.limits to patch)."""
    monkeypatch.setattr("proformer.limits.physical_memory", lambda: 1 << 20)


def test_the_python_api_refuses_the_same_values():
    """attribute's steps and n_shuffles, ism's start and end, design's max_edits and beam. Old
    code: steps=10**6 raised numpy's MemoryError, start=2.5 was truncated to 2, max_edits=10**6
    and beam=10**6 were searched: no ValueError naming the limit."""
    from proformer.inference import Run
    from proformer.interpret import attribute, design, ism

    model = Run(planted_motif_model(), tiny_run_info())
    sequence = "TT" + "C" * 8 + "GATA" + "C" * 8 + "T"
    for options, name in (({"steps": 10**6}, "steps"), ({"n_shuffles": 10**6}, "n_shuffles"),
                          ({"steps": True}, "steps")):
        with pytest.raises(ValueError, match=rf"{name}=.*1,000"):
            attribute(model, [sequence], "integrated_gradients", **options)
    for options, name in (({"start": 2.5}, "start"), ({"end": 4.0}, "end"), ({"start": -1}, "start")):
        with pytest.raises(ValueError, match=rf"{name}=.*whole number"):
            ism(model, [sequence], **options)
    with pytest.raises(ValueError, match=r"max_edits=1000000.*1,000"):
        design(model, [sequence], "high", 10**6)
    with pytest.raises(ValueError, match=r"beam=1000000.*1,000"):
        design(model, [sequence], "high", 2, beam=10**6)


@pytest.mark.parametrize("options, flag", [
    (["attribute", "--method", "deep_lift_shap", "--shuffles", "1000"], "--shuffles"),
    (["attribute", "--method", "integrated_gradients", "--steps", "1000"], "--steps"),
    (["design", "--target", "high", "--max-edits", "2", "--beam", "1000"], "--beam"),
])
def test_a_product_of_options_beyond_the_memory_is_refused_before_the_work(tiny_run_dir, sequences_file, tmp_path,
                                                                         capsys, small_machine, options, flag):
    """Within the bounds but too big for this (patched, 1 MiB) machine: exit 2, one line with what
    it would need, what the machine has and the flag to lower; nothing written."""
    command, *rest = options
    out = tmp_path / ("out.tsv" if command == "design" else "out")
    status = main([command, "--model", str(tiny_run_dir), "--input", str(sequences_file), "--out", str(out), *rest,
                   "--device", "cpu", "--no-progress"])
    err = one_line(capsys)
    assert status == 2
    assert "would need about" in err and "1.0 MiB" in err and "lower" in err and flag in err, err
    assert not out.exists()


def test_the_memory_refusal_is_a_value_error_of_its_own(small_machine):
    from proformer.inference import Run
    from proformer.interpret import attribute
    from proformer.limits import NotEnoughMemory

    model = Run(planted_motif_model(), tiny_run_info())
    with pytest.raises(NotEnoughMemory, match="n_shuffles=1000") as caught:
        attribute(model, ["TT" + "C" * 20 + "T"] * 50, "deep_lift_shap", n_shuffles=1000)
    assert isinstance(caught.value, ValueError)


def test_physical_memory_is_known_here():
    from proformer.limits import physical_memory

    assert physical_memory() > 100 * 2**20
