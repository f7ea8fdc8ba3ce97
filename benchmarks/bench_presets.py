"""The `bench` figures of the three reference models, fp32 and bf16, training and inference.

Models: grid d64 / 2 heads / 1 block / H8 (the preset's default), grid d256 / 8 heads /
8 blocks / H32, and dream2022 (the submitted model). The matmul peak of each dtype is measured
once, in this process, and every MFU is relative to it.

    python benchmarks/bench_presets.py [--batch-size B] [--steps 2] [--precision 32 bf16] [--mode train predict]

Prints a markdown table for docs/benchmarks.md. On a CPU without bf16 instructions bf16 is
emulated and warns; there bf16 training of the large models takes many minutes per step (the
backward pass's bf16 matrix products are slower still), so time bf16 inference only:
``--precision bf16 --mode predict``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import torch

from proformer.bench import benchmark, matmul_peak
from proformer.device import check_bf16, resolve_device
from proformer.model import model_preset

# name -> (model, default batch): the small model needs a real batch to be timed at all; the large
# ones take seconds per sequence in emulated bf16.
MODELS = {
    "grid d64/2/1/H8": (model_preset("grid"), 128),
    "grid d256/8/8/H32": (dataclasses.replace(model_preset("grid"), dim=256, heads=8, blocks=8, readout=32), 8),
    "dream2022": (model_preset("dream2022"), 8),
}
DTYPES = {"32": torch.float32, "bf16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, help="for every model (default: 128 for grid d64, 8 for the others)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument("--mode", nargs="+", choices=["train", "predict"], default=["train", "predict"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    print(f"{device}, {torch.get_num_threads()} threads, {args.warmup} warm-up + {args.steps} timed steps per row\n")
    print("| model | precision | mode | batch | sequences/s | GFLOP/s | peak GFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|---|")
    for precision in args.precision:
        check_bf16(device, precision)  # warn once, not per row
        peak = matmul_peak(DTYPES[precision], device=device)
        for name, (config, default_batch) in MODELS.items():
            batch_size = args.batch_size or default_batch
            for mode in args.mode:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    r = benchmark(config, mode=mode, batch_size=batch_size, precision=precision,
                                  steps=args.steps, warmup=args.warmup, device=device, peak_flops=peak)
                print(f"| {name} | {precision} | {mode} | {batch_size} | {r['sequences_per_second']:.2f} | "
                      f"{r['achieved_flops'] / 1e9:.1f} | {peak / 1e9:.1f} | {100 * r['mfu']:.1f} % |"
                      f"  <!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
