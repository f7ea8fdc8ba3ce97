"""Two sweep workers on one Optuna study against one: the wall-clock ratio on a grid of equal cells.

A grid of 8 cells that differ only in their seed (so each costs the same) is trained twice on a
simulated dataset: by one ``proformer sweep`` worker, then by two workers started together on
one study (a fresh ``--out``), each with one torch thread (``OMP_NUM_THREADS=1``). The ratio
two / one is what sharing a study gives: 0.5 is perfect, process start-up and the study's
bookkeeping add to it. Issue 27 asks for <= 0.65 on the project's 2-core machine. Run it on a
quiet machine (another job on the cores changes the ratio)::

    python benchmarks/sweep_workers.py                 # prints both times and the ratio
    python benchmarks/sweep_workers.py --epochs 1      # a quick check of the script
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np


def simulated(path: Path, rows: int, length: int, seed: int = 0) -> Path:
    """``rows`` random sequences whose target counts G and C, with noise (learnable, like the tests')."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(rows, length))
    sequences = ["".join("ACGT"[c] for c in row) for row in codes]
    targets = (codes == 2).sum(axis=1) + 0.5 * (codes == 1).sum(axis=1) + rng.normal(0, 0.3, rows)
    path.write_text("".join(f"{s}\t{t:.4f}\n" for s, t in zip(sequences, targets)))
    return path


def grid_file(path: Path, cells: int, length: int) -> Path:
    """``cells`` cells of one model and recipe, one seed each: equal cost."""
    shared = [f"length={length}", "dim=32", "heads=2", "blocks=2", "kmer=3", "train.batch_size=64",
              "data.split=hash:0.9", "train.accelerator=cpu"]
    path.write_text(textwrap.dedent(f"""\
        name: equal-cells
        preset: grid
        set: [{", ".join(shared)}]
        cells:
        """) + "".join(f"  - {{id: seed{k}, set: [train.seed={k}]}}\n" for k in range(cells)))
    return path


def sweep(workers: int, grid: Path, data: Path, out: Path, epochs: int) -> float:
    """Seconds from starting ``workers`` processes on one study until the last has ended."""
    command = [sys.executable, "-m", "proformer.cli", "sweep", "--grid", str(grid), "--data", str(data),
               "--out", str(out), "--epochs", str(epochs), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    children = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(workers)]
    if any(child.wait() for child in children):
        sys.exit(f"a sweep worker failed: rerun `{' '.join(command)}` to see why")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=8, help="cells of equal cost (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=4000, help="simulated rows (default: %(default)s)")
    parser.add_argument("--length", type=int, default=80, help="sequence length (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per cell (default: %(default)s)")
    parser.add_argument("--work", help="working folder (default: a temporary one, removed at the end)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    from proformer.data.prepare import prepare

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sweep-workers-"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        data = work / "data"
        if not (data / "meta.json").exists():
            prepare(simulated(work / "simulated.tsv", args.rows, args.length), data, trim=(0, 0), length=args.length,
                    progress=False)
        grid = grid_file(work / "grid.yaml", args.cells, args.length)
        for name in ("one", "two"):
            shutil.rmtree(work / name, ignore_errors=True)  # fresh studies: nothing already done
        one = sweep(1, grid, data, work / "one", args.epochs)
        two = sweep(2, grid, data, work / "two", args.epochs)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    figures = {"cells": args.cells, "epochs": args.epochs, "rows": args.rows, "one_worker_s": round(one, 1),
               "two_workers_s": round(two, 1), "ratio": round(two / one, 3), "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.cells} equal cells, {args.epochs} epochs each: one worker {one:.1f} s, two workers {two:.1f} s; "
              f"ratio {two / one:.3f} (issue 27 asks <= 0.65)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
