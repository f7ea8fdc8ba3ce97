"""Tests of :mod:`proformer.device`."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from proformer.model import ModelConfig, Proformer
from proformer.model.proformer import ConvModule

CASES = ["bfloat16", "float16", "autocast-bfloat16", "autocast-float16"]


DEADLINE_S = 120


# (dim, kernel): dim 8 and 16 with kernel 15 hung in oneDNN's bf16 channels-last depthwise conv
# on an AVX-512 BF16 CPU; 64 and an even kernel cover the other code paths.
SHAPES = [(8, 15), (16, 15), (64, 15), (16, 4)]


def run_case(case: str) -> None:
    """Forward + backward of the conv module and a tiny model in one dtype; compare with fp32."""
    dtype = getattr(torch, case.removeprefix("autocast-"))
    autocast = case.startswith("autocast-")
    for dim, kernel in SHAPES:
        torch.manual_seed(0)
        reference = ConvModule(dim, kernel, dropout=0.0)
        module = ConvModule(dim, kernel, dropout=0.0)
        module.load_state_dict(reference.state_dict())
        x = torch.randn(8, 203, dim)
        expected = reference(x)
        expected.sum().backward()
        if not autocast:
            module = module.to(dtype)
        with torch.autocast("cpu", dtype=dtype, enabled=autocast):
            got = module(x.to(dtype) if not autocast else x)
        got.float().sum().backward()
        torch.testing.assert_close(got.float(), expected, atol=0.1, rtol=0.05)
        grad, expected_grad = module.depthwise.weight.grad.float(), reference.depthwise.weight.grad
        assert (grad - expected_grad).norm() <= 0.05 * expected_grad.norm(), (case, dim, kernel)

    config = ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=100, dropout=0.1)
    model = Proformer(config).train()
    codes = torch.randint(0, 4, (8, 200))
    with torch.autocast("cpu", dtype=dtype):
        loss, _ = model.loss(codes, torch.randn(8))
    loss.backward()
    assert torch.isfinite(loss)


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


def test_reduced_precision_on_this_cpu_finishes_and_matches_fp32():
    """One child runs every case (one torch import, not four); it names each case as it starts,
    so a hang is reported with the dtype that hung."""
    try:
        done = subprocess.run([sys.executable, __file__, *CASES], capture_output=True, text=True, timeout=DEADLINE_S)
    except subprocess.TimeoutExpired as expired:
        started = (expired.stdout or b"").decode().split()
        pytest.fail(f"{started[-1] if started else CASES[0]} on this CPU ({torch.backends.cpu.get_cpu_capability()}) "
                    f"did not finish in {DEADLINE_S} s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == CASES  # every case ran


if __name__ == "__main__":
    for case in sys.argv[1:]:
        print(case, flush=True)
        run_case(case)
