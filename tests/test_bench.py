"""Tests of :mod:`proformer.bench`."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from proformer.bench import benchmark, forward_flops, training_flops
from proformer.cli import build_parser, main
from proformer.config import RUN_PRESETS, load_run_config
from proformer.model import Proformer, model_preset

CONFIGS = {
    "grid": model_preset("grid"),
    "grid-d256-8-blocks": dataclasses.replace(model_preset("grid"), dim=256, heads=8, blocks=8, readout=32),
    "pool-split": dataclasses.replace(model_preset("grid"), readout="pool", head_dim="split", kmer=10),
    "conv-stem-3-blocks": dataclasses.replace(model_preset("grid"), stem="conv", stem_blocks=3, stem_kernel=9),
    "dream_attn": model_preset("dream_attn"),
}


def counted(model, run) -> dict[str, float]:
    # The math SDPA backend decomposes attention into matmuls the counter sees (it has no
    # formula for the CPU flash kernel).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        run()
    return {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}


class StepClock:
    """A stand-in for the ``time`` module of proformer.bench on which every timed interval
    (a ``perf_counter()`` start, then its stop) lasts exactly ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, 0

    def perf_counter(self) -> float:
        self.calls += 1
        interval, is_stop = divmod(self.calls - 1, 2)
        return 100.0 * interval + is_stop * self.seconds


@pytest.mark.parametrize("name", CONFIGS)
def test_analytic_flops_agree_with_the_flop_counter(name):
    config = CONFIGS[name]
    model = Proformer(config).eval()
    codes = torch.randint(0, 4, (2, 200))
    forward = counted(model, lambda: model(codes))
    assert sum(forward.values()) / 2 == pytest.approx(forward_flops(config), rel=0.05)

    model.train()
    mask = torch.zeros(2, 200, dtype=torch.bool)
    if config.mask_ratio:
        mask[:, :: round(1 / config.mask_ratio)] = True  # exactly the expected share of positions

    def step():
        loss, _ = model.loss(codes, torch.zeros(2), mask=mask)
        loss.backward()

    train = counted(model, step)
    # torch's counter ignores `groups` in convolution backward (it counts the depthwise conv's
    # gradient as a dense conv): replace it with twice the forward convolution.
    total = sum(train.values()) - train.get("aten.convolution_backward", 0) + 2 * train["aten.convolution"]
    assert total / 2 == pytest.approx(training_flops(config), rel=0.05)


def test_bench_figures_follow_from_the_timed_steps(capsys, monkeypatch):
    """With every timed step lasting 0.25 s the figures are known by hand: a batch of 8 in 0.25 s
    is 32 sequences/s; achieved FLOP/s are 32 x the analytic FLOPs per sequence (forward for
    predict, forward + backward for train; checked against the FLOP counter above); a peak given
    by the caller is used as given, and one measured on the same clock is a 512 matmul
    (2 x 512^3 FLOPs) in 0.25 s."""
    import proformer.bench

    config = dataclasses.replace(model_preset("grid"), dim=16)
    monkeypatch.setattr(proformer.bench, "time", StepClock(0.25))
    # A peak measured once by the caller (benchmarks/bench_presets.py) is used as given.
    result = benchmark(config, mode="predict", batch_size=8, steps=2, peak_flops=2e9)
    assert result["step_seconds"] == [0.25, 0.25] and result["seconds_per_step"] == 0.25
    assert result["sequences_per_second"] == 32.0 and result["peak_flops"] == 2e9
    assert result["flops_per_sequence"] == forward_flops(config)
    assert result["achieved_flops"] == pytest.approx(32 * forward_flops(config))
    assert result["mfu"] == pytest.approx(32 * forward_flops(config) / 2e9)
    train = benchmark(config, mode="train", batch_size=8, steps=3, peak_flops=2e9)
    assert train["step_seconds"] == [0.25] * 3 and train["sequences_per_second"] == 32.0
    assert train["flops_per_sequence"] == training_flops(config)
    assert train["mfu"] == pytest.approx(32 * training_flops(config) / 2e9)

    # Through the CLI, with the peak measured (a 4096 matmul takes seconds on a loaded 2-core
    # machine: 512 here).
    peak = proformer.bench.matmul_peak
    monkeypatch.setattr(proformer.bench, "matmul_peak", lambda dtype, **kw: peak(dtype, size=512, repeats=2))
    assert main(["bench", "train", "--preset", "grid", "--set", "dim=16", "--batch-size", "8", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("MFU ") and out.strip().endswith("%")
    assert "fastest" in out and "slowest" in out
    mfu = 32 * training_flops(config) / (2 * 512**3 / 0.25)
    assert "sequences/s            32.0\n" in out and out.strip().splitlines()[-1] == f"MFU {100 * mfu:.1f}%"


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--steps", "0")])
def test_bench_refuses_an_empty_measurement(option, value, capsys):
    # The command line refuses it while parsing (one line naming the flag and its limit); the
    # Python API refuses it too.
    with pytest.raises(SystemExit) as stop:
        main(["bench", "predict", "--preset", "grid", "--set", "dim=16", option, value])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"argument {option}: 0 is below the limit, 1" in err and len(err.splitlines()) == 1
    with pytest.raises(ValueError, match=f"{option[2:].replace('-', '_')}=0: must be at least 1"):
        benchmark(model_preset("grid"), mode="predict", **{option[2:].replace("-", "_"): 0})


@pytest.mark.parametrize("preset", RUN_PRESETS)
def test_model_and_bench_take_every_preset_train_lists(preset, capsys):
    from proformer.cli import _model_config

    for argv in (["model", "--preset", preset], ["bench", "train", "--preset", preset, "--set", "dim=32"]):
        config = _model_config(build_parser().parse_args(argv))
        assert config == load_run_config(None, preset, [a for a in argv[3:] if "=" in a]).model
    if preset != "dream2022":  # 47M parameters: the summary alone takes seconds
        assert main(["model", "--preset", preset]) == 0
        assert f"Proformer (preset {preset})" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["model"], ["bench", "train"]])
def test_model_and_bench_refuse_an_unknown_preset_listing_the_valid_ones(command, capsys):
    assert main([*command, "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and all(name in err for name in RUN_PRESETS) and "Traceback" not in err


def test_bench_with_cuda_on_a_machine_without_it_is_one_line(capsys):
    """The device rule lives in proformer.device.resolve_device: bench gets it as predict does."""
    import torch

    from proformer.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["bench", "predict", "--preset", "grid", "--device", "cuda", "--steps", "1", "--batch-size", "1"]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available on this machine" in err and "Traceback" not in err
