"""Check that the measured bf16 matmul peak is a peak for the model: MFU of bf16 inference < 1.

MFU is a fraction: the grid model's bf16 inference must not run faster than the measured bf16
peak. On CPUs without bf16 instructions a ``torch.mm`` peak (a fallback ~20x slower than
linear's oneDNN kernel) once put this model at ~8x its "peak"; ``proformer.bench.matmul_peak``
times ``F.linear`` since. A ratio of two timings, so it lives here rather than in the test suite
(tests/test_bench.py checks the figures' arithmetic on a fixed clock).

    python benchmarks/bench_bf16_peak.py [--size 1024] [--batch-size 32] [--steps 2]

Prints the figures and PASS, or FAIL with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import torch

from proformer.bench import benchmark, matmul_peak
from proformer.device import resolve_device
from proformer.model import model_preset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="square matmul of the peak (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    peak = matmul_peak(torch.bfloat16, size=args.size, repeats=2, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the emulated-bf16 warning of check_bf16
        result = benchmark(model_preset("grid"), mode="predict", precision="bf16", batch_size=args.batch_size,
                           steps=args.steps, warmup=1, device=device, peak_flops=peak)
    print(f"{result['device']}, {result['threads']} threads: bf16 peak {peak / 1e9:,.1f} GFLOP/s "
          f"({args.size} matmul), grid model bf16 inference {result['achieved_flops'] / 1e9:,.1f} GFLOP/s, "
          f"MFU {100 * result['mfu']:.1f}%")
    if 0 < result["mfu"] < 1:
        print("PASS")
        return 0
    print("FAIL: the model ran faster than the measured peak, so the peak is not a peak")
    return 1


if __name__ == "__main__":
    sys.exit(main())
