import dataclasses
import warnings

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from proformer.bench import benchmark, forward_flops, training_flops
from proformer.cli import main
from proformer.model import Proformer, model_preset

CONFIGS = {
    "grid": model_preset("grid"),
    "grid-d256-8-blocks": dataclasses.replace(model_preset("grid"), dim=256, heads=8, blocks=8, readout=32),
    "pool-split": dataclasses.replace(model_preset("grid"), readout="pool", head_dim="split", kmer=10),
}


def counted(model, run) -> dict[str, float]:
    # The math SDPA backend decomposes attention into matmuls the counter sees (it has no
    # formula for the CPU flash kernel).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        run()
    return {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}


@pytest.mark.parametrize("name", CONFIGS)
def test_analytic_flops_agree_with_the_flop_counter(name):
    config = CONFIGS[name]
    model = Proformer(config).eval()
    codes = torch.randint(0, 4, (2, 200))
    forward = counted(model, lambda: model(codes))
    assert sum(forward.values()) / 2 == pytest.approx(forward_flops(config), rel=0.05)

    model.train()
    mask = torch.zeros(2, 200, dtype=torch.bool)
    mask[:, :: round(1 / config.mask_ratio)] = True  # exactly the expected share of positions

    def step():
        loss, _ = model.loss(codes, torch.zeros(2), mask=mask)
        loss.backward()

    train = counted(model, step)
    # torch's counter ignores `groups` in convolution backward (it counts the depthwise conv's
    # gradient as a dense conv): replace it with twice the forward convolution.
    total = sum(train.values()) - train.get("aten.convolution_backward", 0) + 2 * train["aten.convolution"]
    assert total / 2 == pytest.approx(training_flops(config), rel=0.05)


def test_bench_reports_mfu(capsys, monkeypatch):
    import proformer.bench

    peak = proformer.bench.matmul_peak
    # A 4096 matmul takes seconds on a loaded 2-core machine; the formula is what is tested here.
    monkeypatch.setattr(proformer.bench, "matmul_peak", lambda dtype, **kw: peak(dtype, size=512, repeats=2))
    assert main(["bench", "train", "--preset", "grid", "--set", "dim=16", "--batch-size", "8", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("MFU ") and out.strip().endswith("%")
    result = benchmark(dataclasses.replace(model_preset("grid"), dim=16), mode="predict", batch_size=8, steps=2)
    assert result["mfu"] == pytest.approx(result["achieved_flops"] / result["peak_flops"])
    assert len(result["step_seconds"]) == 2 and all(t > 0 for t in result["step_seconds"])
    assert result["seconds_per_step"] == pytest.approx(sum(result["step_seconds"]) / 2)
    assert result["sequences_per_second"] == pytest.approx(8 / result["seconds_per_step"])
    assert "fastest" in out and "slowest" in out
    assert result["achieved_flops"] == pytest.approx(result["sequences_per_second"] * forward_flops(dataclasses.replace(model_preset("grid"), dim=16)))
    # A peak measured once by the caller (benchmarks/bench_presets.py) is used as given.
    given = benchmark(dataclasses.replace(model_preset("grid"), dim=16), mode="predict", batch_size=8, steps=2, peak_flops=2e9)
    assert given["peak_flops"] == 2e9 and given["mfu"] == pytest.approx(given["achieved_flops"] / 2e9)


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--steps", "0")])
def test_bench_refuses_an_empty_measurement(option, value, capsys):
    assert main(["bench", "predict", "--preset", "grid", "--set", "dim=16", option, value]) == 2
    assert f"{option[2:].replace('-', '_')}=0: must be at least 1" in capsys.readouterr().err


def test_bf16_peak_is_a_peak_for_the_model(monkeypatch):
    """MFU is a fraction: the grid model's bf16 inference must not run faster than the measured
    bf16 peak. On CPUs without bf16 instructions a torch.mm peak (a fallback ~20x slower than
    linear's oneDNN kernel) put this model at ~8x its "peak"."""
    import proformer.bench

    peak = proformer.bench.matmul_peak
    monkeypatch.setattr(proformer.bench, "matmul_peak", lambda dtype, **kw: peak(dtype, size=1024, repeats=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the emulated-bf16 warning of check_bf16
        result = benchmark(model_preset("grid"), mode="predict", precision="bf16", batch_size=32, steps=2, warmup=1)
    assert 0 < result["mfu"] < 1, result


def test_bf16_on_a_cpu_without_bf16_instructions_warns(monkeypatch):
    from proformer.device import check_bf16

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with pytest.warns(RuntimeWarning, match="bf16 matmuls are emulated"):
        check_bf16("cpu", "bf16")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_bf16("cpu", "bf16")  # AMX: real bf16, no warning
        check_bf16("cpu", "32")
