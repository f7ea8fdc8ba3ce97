"""The CPU-sized sweep study on real DREAM data: does the poster's collapse show on a small sample?

Grid ``cpu-study`` (24 cells): dim/heads 64/2 and 128/4 x Macaron blocks 1, 2, 4, 8 x readouts
AvgPool, H=8, H=32, with the poster's recipe (preset ``grid``: k-mer 5, 5 % masking, Adam 1e-3,
one epoch of warmup then cosine decay) on ``train_sample.txt`` (7,366 usable rows) and a 90/10
split by sequence hash (``data.split=hash:0.9``).

Deviations from the poster, and why:

- batch 64, not 512: with 512, a 128/4/8 cell needs about 22 GB of activations (it was
  OOM-killed on this 23 GB machine) and an epoch of 6.6k rows would be 13 optimizer steps;
- 3 epochs, not 20 (``--epochs``): the conventions allow cutting epochs, the poster's
  collapse shows within 2 epochs;
- one thread per process (``OMP_NUM_THREADS=1``): on a 2-core machine shared with other work,
  two threads made small models about 4x slower, not faster.

``--folds 5`` runs 5-fold cross-validation by sequence hash instead of the single 90/10 split
(5x the time); the report then gives the mean and spread across folds.

Time on the shared 2-core machine (docs/sweep.md, "Cost"): about 1 min per epoch for a 64/2/1
cell, about 40 min per epoch for 128/4/8; about 13 h for the whole study at 3 epochs.

Usage (resumable: rerun the same command after an interruption)::

    nice -n 10 python benchmarks/cpu_sweep_study.py                 # the study, report in docs/
    python benchmarks/cpu_sweep_study.py --dry-run                  # list the 24 cells
    python benchmarks/cpu_sweep_study.py --cells 2 --epochs 1       # time the first 2 cells
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = ROOT.parent / "shared" / "data" / "dream2022" / "train_sample.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-file", default=str(DATA_FILE), help="DREAM TSV to prepare (default: %(default)s)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "cpu-sweep-study"),
                        help="prepared data and sweep directory (default: %(default)s, git-ignored)")
    parser.add_argument("--epochs", type=int, default=3, help="epoch budget per cell (default: %(default)s)")
    parser.add_argument("--folds", type=int, default=1, help="1: the 90/10 hash split; 5: 5-fold CV (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cells", type=int, help="only the first N cells (timing runs); no report")
    parser.add_argument("--report", default=str(ROOT / "docs" / "cpu-sweep-study.md"),
                        help="where the report goes (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    # Must be set before torch is imported (see the module docstring).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from proformer.data.prepare import prepare
    from proformer.experiments import load_grid, run_sweep, sweep_report

    work = Path(args.work)
    data = work / "dream_sample"
    if not (data / "meta.json").exists() and not args.dry_run:
        prepare(args.data_file, data, progress=False)
    grid = load_grid("cpu-study")
    out = work / "sweep"
    if args.cells:
        # A separate directory: a timing run must not be mistaken for part of the study.
        grid = dataclasses.replace(grid, name=f"cpu-study-first-{args.cells}", cells=grid.cells[: args.cells])
        out = work / f"timing-{args.cells}-cells-{args.epochs}-epochs"
    started = time.time()
    rows = run_sweep(grid, data, out, epochs=args.epochs, folds=args.folds, dry_run=args.dry_run,
                     overrides=[f"train.batch_size={args.batch_size}"], progress=False)
    if args.dry_run:
        return 0
    for row in rows:
        if row["status"] != "done":
            print(f"{row['cell']} fold {row['fold']}: {row['status']}: {row['error']}")
            continue
        print(f"{row['cell']} fold {row['fold']}: val r {row['val_pearson']:.4f}, {row['seconds']:.0f} s "
              f"({row['seconds'] / max(row['epochs_run'], 1):.0f} s per epoch)")
    print(f"{len(rows)} runs in {time.time() - started:.0f} s (this session)")
    if args.cells:
        return 0
    text = sweep_report(out, compare="poster-yeast")
    report = Path(args.report)
    image = report.with_suffix(".png")
    image.write_bytes((out / "heatmap.png").read_bytes())
    report.write_text(text.replace("(heatmap.png)", f"({image.name})"))
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
