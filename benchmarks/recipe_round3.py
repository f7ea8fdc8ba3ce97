"""Round 3 of the small-data recipe (docs/recipes.md, "Third round"): LegNet's levers on `auto`'s model.

    python benchmarks/recipe_round3.py --out runs/round3 --folds 0 1      # train every cell on folds 0, 1
    python benchmarks/recipe_round3.py --out runs/round3 --folds 2 --cells b64-conv adamw-wd0.05
    python benchmarks/recipe_round3.py --out runs/round3 --report         # the table of docs/recipes.md

The data and folds are the earlier rounds': ../shared/data/dream2022/train_sample.txt (7,366
usable rows), 3 folds by sequence hash (:func:`proformer.experiments.subsets.sweep_datasets`,
the folds of ``proformer sweep --folds 3``), each run trained on about 4,900 rows and validated
on the other 2,400 (best epoch's validation Pearson, as each run keeps it). Every cell has the
baseline's budget, 1,540 optimizer steps of batch 64 (the ``auto`` recipe at this size, without
its early stopping, so that every cell trains the same steps), and changes one thing. Runs go
fold-major (every cell of the first fold before the next fold), ``--workers`` at a time on one
thread each; a finished run (its ``config.json`` and ``metrics.csv``) is kept, so a rerun resumes.
Nothing here reads the public leaderboard.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "dream2022" / "train_sample.txt"
FOLDS = 3
BASE = ["train.batch_size=64", "train.steps=1540", "stem=conv"]
#: Fixed before any figure of this round (docs/recipes.md, "Third round").
CELLS = {
    "b64-conv": [],
    "adamw-wd0.05": ["train.optimizer=adamw", "train.weight_decay=0.05"],
    "legnet-optim": ["train.optimizer=adamw", "train.weight_decay=0.01", "train.schedule=one_cycle", "train.lr=5e-3"],
    "lion": ["train.optimizer=lion", "train.lr=3e-4", "train.weight_decay=0.1"],
    "rc-average": ["data.rc_average=true"],
    "singleton": ["data.singleton_flag=true"],
    "plasmid-shift": ["length=100", "data.pad=plasmid", "data.shift=10"],
    "drop0.2": ["dropout=0.2"],
    # Added at 08:50 UTC, before any figure of this round: the soft bins already are LegNet's
    # (proformer.model.proformer.soft_bin_targets), so round 1's loss was not a construction bug.
    "soft-bins": ["loss=soft_bins"],
    # Added at 08:55 UTC, before any figure of this round, once data.augment existed: EvoAug's five
    # augmentations, two per row and epoch, and the last 5 of the 20 epochs on the unchanged rows.
    "evoaug": ["data.augment=evoaug", "data.augment_finetune=5"],
    # Added at 08:55 UTC, before any cell's result was read (only epoch lines in passing): the
    # distillation lever. Two more seeds of the baseline make, with it, the fold's 3-seed teacher;
    # the student is the baseline's recipe trained on the teacher's predictions over the fold's
    # training rows and 2 mutated copies of each (proformer distill --copies 2), at the same steps.
    "b64-conv-seed1": ["train.seed=1"],
    "b64-conv-seed2": ["train.seed=2"],
    "distilled": [],
}
#: The teacher of the "distilled" cell: these cells' runs of the same fold, averaged.
TEACHER = ["b64-conv", "b64-conv-seed1", "b64-conv-seed2"]


def folds_data(out: Path) -> list[dict]:
    from proformer.experiments.subsets import sweep_datasets

    data = out / "dream_train"
    if not data.exists():
        subprocess.run([sys.executable, "-m", "proformer.cli", "prepare", str(SAMPLE), "--out", str(data),
                        "--no-progress"], check=True)
    return sweep_datasets(data, out / "data", folds=FOLDS)


def done(run: Path) -> bool:
    """Whether ``run`` trained every epoch of its budget (a stopped run has config.json after its
    first epoch: its metrics.csv then holds fewer rows than the epochs config.yaml resolved)."""
    if not (run / "config.json").exists() or not (run / "metrics.csv").exists() or (run / ".train.lock").exists():
        return False
    epochs = yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"]
    with open(run / "metrics.csv") as handle:
        return sum(1 for _ in csv.DictReader(handle)) >= epochs


def train(out: Path, cell: str, fold: dict) -> str:
    run = out / "cells" / cell / f"fold-{fold['fold']}"
    if done(run):
        return f"{cell} fold {fold['fold']}: already trained"
    sets = [value for setting in BASE + CELLS[cell] for value in ("--set", setting)]
    data = fold["path"]
    if cell == "distilled":
        teacher = [out / "cells" / name / f"fold-{fold['fold']}" for name in TEACHER]
        if not all(done(run) for run in teacher):
            return f"{cell} fold {fold['fold']}: its teacher ({', '.join(TEACHER)}) is not trained yet"
        data = out / "distilled" / f"fold-{fold['fold']}"
        if not (data / "meta.json").exists():
            subprocess.run([sys.executable, "-m", "proformer.cli", "distill", "--model", *map(str, teacher), "--data",
                            fold["path"], "--out", str(data), "--copies", "2", "--no-progress"],
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True, capture_output=True)
    command = [sys.executable, "-m", "proformer.cli", "train", "--preset", "grid", *sets, "--data", str(data),
               "--set", f"data.valid={fold['valid']}", "--out", str(run), "--no-progress"]
    if (run / "checkpoints" / "last.ckpt").exists():
        command.append("--resume")
    elif run.exists():
        shutil.rmtree(run)  # stopped before its first epoch ended: nothing to resume
    began = time.perf_counter()
    result = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    if result.returncode:
        return f"{cell} fold {fold['fold']}: FAILED ({result.stderr.strip().splitlines()[-1:]})"
    return f"{cell} fold {fold['fold']}: {time.perf_counter() - began:.0f} s"


def best(run: Path) -> tuple[float, int, int, float]:
    """Best validation Pearson, its epoch (1-based), epochs run, minutes of training."""
    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    top = max(rows, key=lambda r: float(r["val_pearson"]))
    return float(top["val_pearson"]), int(top["epoch"]) + 1, len(rows), float(rows[-1]["seconds"]) / 60


def report(out: Path) -> str:
    """Markdown: each cell's best validation Pearson per fold, paired against b64-conv."""
    lines = ["| cell | settings | per fold: val Pearson (best epoch / epochs) | Δ vs b64-conv per fold | mean Δ | minutes |",
             "|---|---|---|---|---|---|"]
    base = {k: best(out / "cells" / "b64-conv" / f"fold-{k}")[0] for k in range(FOLDS)
            if done(out / "cells" / "b64-conv" / f"fold-{k}")}
    for cell, settings in CELLS.items():
        runs = {k: best(out / "cells" / cell / f"fold-{k}") for k in range(FOLDS) if done(out / "cells" / cell / f"fold-{k}")}
        if not runs:
            continue
        each = ", ".join(f"{r:.4f} ({e}/{n})" for r, e, n, _ in runs.values())
        deltas = [runs[k][0] - base[k] for k in runs if k in base]
        delta = ", ".join(f"{d:+.4f}" for d in deltas) if cell != "b64-conv" else ""
        mean = f"{statistics.mean(deltas):+.4f}" if deltas and cell != "b64-conv" else ""
        minutes = statistics.mean(m for *_, m in runs.values())
        lines.append(f"| `{cell}` | {' '.join(settings) or ' '.join(BASE)} | {each} | {delta} | {mean} | {minutes:.1f} |")
    return "\n".join(lines)


def teacher_report(out: Path) -> str:
    """Markdown: the 3-seed teacher (the mean of TEACHER's runs) on each fold's validation rows."""
    import json

    lines = ["| fold | teacher (3 seeds averaged) val Pearson | Δ vs b64-conv |", "|---|---|---|"]
    for k in range(FOLDS):
        runs = [out / "cells" / name / f"fold-{k}" for name in TEACHER]
        if not all(done(run) for run in runs):
            continue
        valid = out / "data" / f"fraction-1-fold-{k}-of-{FOLDS}" / "valid"
        result = subprocess.run([sys.executable, "-m", "proformer.cli", "evaluate", "--model", *map(str, runs), "--data",
                                 str(valid), "--json", "--no-progress"], check=True, capture_output=True, text=True)
        r = json.loads(result.stdout)["targets"]["expression"]["pearson"]
        lines.append(f"| {k} | {r:.4f} | {r - best(runs[0])[0]:+.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="study folder (prepared data, folds, one run per cell and fold)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1], help="folds to train (default: 0 1)")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS), help="cells to train (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time, one thread each (default: 2)")
    parser.add_argument("--report", action="store_true", help="print the table and train nothing")
    args = parser.parse_args(argv)
    if not args.report:
        if not SAMPLE.is_file():
            sys.exit(f"{SAMPLE} not found: this study needs ../shared beside the repository")
        folds = folds_data(args.out)
        jobs = [(cell, folds[k]) for k in args.folds for cell in args.cells]
        with ThreadPoolExecutor(args.workers) as pool:
            for line in pool.map(lambda job: train(args.out, *job), jobs):
                print(line, flush=True)
    print(report(args.out))
    print()
    print(teacher_report(args.out))


if __name__ == "__main__":
    main()
