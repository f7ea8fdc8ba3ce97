"""Time the DREAM input layout on 1,000,000 sequences of 110 nt.

Encoding to uint8, trimming the 17/13-nt flanks, the length filter, centre padding to 100 and
appending the reverse complement: the whole ``proformer.sequence.dream_layout`` call.

    python benchmarks/bench_encode.py [--n 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from proformer.sequence import DREAM_HEAD, DREAM_TAIL, dream_layout


def dream_like(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, (n, 80))]
    head, tail = DREAM_HEAD.encode(), DREAM_TAIL.encode()
    return [(head + row.tobytes() + tail).decode() for row in letters]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sequences = dream_like(args.n)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        codes, keep = dream_layout(sequences)
        times.append(time.perf_counter() - start)
    assert codes.shape == (args.n, 200) and codes.dtype == np.uint8 and keep.all()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, numpy {np.__version__}")
    print(f"dream_layout on {args.n:,} sequences of 110 nt -> {codes.shape} uint8")
    print(f"best of {args.repeats}: {min(times):.2f} s ({args.n / min(times):,.0f} sequences/s); all: "
          + ", ".join(f"{t:.2f}" for t in times))


if __name__ == "__main__":
    main()
