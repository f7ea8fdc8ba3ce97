"""Time ``proformer.data.prepare`` on a full-size DREAM 2022 training file (6,739,258 rows).

Writes a realistic synthetic file (the 17/13-nt DREAM flanks around random nt; lengths 87-150
with the sample's mix, so about 1,700 rows are too long for the 100-nt layout; a few N; targets
0-17 of which 58 % are integers) and runs ``prepare`` on it in a child process, reporting the
wall time (including interpreter start-up) and the child's peak resident memory
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``, taken in a small launcher process so that this
process's memory does not leak into the figure). Acceptance: <= 60 s and <= 2 GiB on a 2-core
machine.

    python benchmarks/bench_prepare.py [--rows 6739258] [--path FILE] [--keep]

An existing ``--path`` is reused instead of generated again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from proformer.sequence import DREAM_HEAD, DREAM_TAIL

FULL_ROWS = 6_739_258
LIMIT_SECONDS = 60.0
LIMIT_BYTES = 2 * 1024**3

# Length mix of the real training sample (train_sample.txt): mostly 110 nt, a tail of shorter
# rows, and ~0.025 % longer than 130 nt (1,690 of 6,739,258 in the full file).
_LENGTHS = np.array([87, 95, 100, 104, 106, 107, 108, 109, 110, 111, 115, 120, 128, 131, 135, 142, 150])
_WEIGHTS = np.array([4, 8, 14, 30, 34, 54, 179, 925, 6049, 35, 2, 2, 2, 0.6, 0.6, 0.3, 0.3])


def _rows_block(rng: np.random.Generator, n: int) -> bytes:
    """``n`` DREAM TSV lines as one byte string, built with numpy (no per-row Python)."""
    lengths = rng.choice(_LENGTHS, size=n, p=_WEIGHTS / _WEIGHTS.sum())
    width = int(lengths.max())
    seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, (n, width))]
    seq[:, : len(DREAM_HEAD)] = np.frombuffer(DREAM_HEAD.encode(), dtype=np.uint8)
    tail = np.frombuffer(DREAM_TAIL.encode(), dtype=np.uint8)
    for length in np.unique(lengths):
        seq[lengths == length, length - len(tail) : length] = tail
    # About 0.5 % of rows carry an N in the random part.
    with_n = np.flatnonzero(rng.random(n) < 0.005)
    seq[with_n, rng.integers(len(DREAM_HEAD), 80, len(with_n))] = ord("N")

    # Targets: mean sort bin 0-17, "12" for integers, "15.1823836007871" (13 decimals) otherwise.
    value = np.clip(np.rint(rng.normal(11.1, 2.3, n)), 0, 17).astype(np.int64)
    integer = rng.random(n) < 0.58
    target = np.empty((n, 18), dtype=np.uint8)
    target[:, 0] = ord("\t")
    target[:, 1] = ord("0") + value // 10
    target[:, 2] = ord("0") + value % 10
    target[:, 3] = ord(".")
    target[:, 4:17] = ord("0") + rng.integers(0, 10, (n, 13))
    target[:, 16] = ord("1") + rng.integers(0, 9, n)  # no trailing zero, like printed floats
    target[:, 17] = ord("\n")
    keep_target = np.ones((n, 18), dtype=bool)
    keep_target[:, 1] = value >= 10
    keep_target[integer, 3:17] = False
    keep_seq = np.arange(width) < lengths[:, None]
    # Row-major boolean selection concatenates each row's sequence, then its target field.
    return np.hstack([seq, target])[np.hstack([keep_seq, keep_target])].tobytes()


def generate(path: Path, rows: int, seed: int = 0, block: int = 500_000) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        for start in range(0, rows, block):
            out.write(_rows_block(rng, min(block, rows - start)))


# Runs in a small launcher process: ru_maxrss survives fork and exec, so a child started from
# this (large, data-generating) process would report this process's peak. The launcher is small,
# so RUSAGE_CHILDREN in it is the prepare process's own peak.
_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run([sys.executable, "-c", sys.argv[1]], check=True)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def measure(code: str) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes (Linux: ru_maxrss in KiB) of ``python -c code``."""
    result = subprocess.run([sys.executable, "-c", _LAUNCHER, code], check=True, stdout=subprocess.PIPE, text=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return figures["wall"], figures["peak_kib"] * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--path", type=Path, help="input file to write (or reuse when it exists)")
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_prepare-"))
    path = args.path or work / "train_sequences.txt"
    if path.exists():
        print(f"reusing {path} ({path.stat().st_size / 1e6:,.0f} MB)")
    else:
        start = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size / 1e6
        print(f"wrote {args.rows:,} rows to {path} ({size:,.0f} MB) in {time.perf_counter() - start:.1f} s")

    out = work / "dataset"
    wall, peak = measure(
        "from proformer.data.prepare import prepare; "
        f"prepare({str(path)!r}, {str(out)!r}, chunk_rows={args.chunk_rows}, progress=False)"
    )

    meta = json.loads((out / "meta.json").read_text())
    codes = np.load(out / "codes.npy", mmap_mode="r")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )
    dropped = {reason: count for reason, count in meta["dropped"].items() if count}
    print(f"rows read {meta['rows_read']:,}, kept {meta['rows_kept']:,}, dropped {dropped}, codes {codes.shape}")
    ok = wall <= LIMIT_SECONDS and peak <= LIMIT_BYTES
    print(f"prepare: wall {wall:.1f} s, peak RSS {peak / 2**20:,.0f} MiB "
          f"(limits {LIMIT_SECONDS:.0f} s, {LIMIT_BYTES / 2**30:.0f} GiB): {'PASS' if ok else 'FAIL'}")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)  # a --path input lives outside it and stays for the next run
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
