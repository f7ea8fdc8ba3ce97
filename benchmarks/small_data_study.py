"""The small-data study of docs/recipes.md ("How much validation"): the `auto` recipe before and
after its validation rule (500 rows or 5-fold runs, early stopping after 5 epochs), judged on
rows no run saw.

    python benchmarks/small_data_study.py --out runs/small_data            # prepare, train, evaluate
    python benchmarks/small_data_study.py --out runs/small_data --report   # the table of docs/recipes.md

Fixed before any figure (docs/recipes.md): the data (the lentiMPRA and DeepSTARR samples of
../shared/data/mpra: train on the sample's train file, 1,000 rows, evaluate on its test file,
1,000 rows, seeds 0 and 1; the DREAM sample, 7,366 rows, in 3 outer folds by the MD5 of the
sequence: train on two, evaluate on the third, seed 0), the two recipes (`previous`: the auto
recipe as it was, `data.split=random:0.95 train.early_stopping=0`; `auto`: the default now, no
flags), the metric (Pearson of `proformer evaluate` on the held-out rows, per target) and the
decision: the new rule is the default unless it is worse than the previous one on 2 of the 3
datasets by more than the spread over seeds or folds. Every run trains on one torch thread,
two at a time. Nothing here reads the public leaderboard.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MPRA = {"lenti": "human_lentimpra_sample", "starr": "drosophila_deepstarr_sample"}
RECIPES = {"previous": ["data.split=random:0.95", "train.early_stopping=0"], "auto": []}
SEEDS = (0, 1)
OUTER_FOLDS = 3


def datasets(out: Path) -> list[tuple[str, Path, Path, int]]:
    """``(name, prepared training set, held-out file, seed)`` of every cell, prepared once."""
    cells = []
    for name, stem in MPRA.items():
        data = out / "data" / name
        if not data.exists():
            run(["prepare", SHARED / "mpra" / f"{stem}_train.txt", "--out", data])
        cells += [(f"{name}-s{seed}", data, SHARED / "mpra" / f"{stem}_test.txt", seed) for seed in SEEDS]
    lines = [line for line in (SHARED / "dream2022" / "train_sample.txt").read_text().splitlines() if line.strip()]
    fold = [int(hashlib.md5(line.split("\t")[0].encode()).hexdigest(), 16) % OUTER_FOLDS for line in lines]
    for k in range(OUTER_FOLDS):
        train_file, test_file = out / "data" / f"dream{k}_train.txt", out / "data" / f"dream{k}_test.txt"
        if not (out / "data" / f"dream{k}").exists():
            train_file.parent.mkdir(parents=True, exist_ok=True)
            train_file.write_text("".join(f"{line}\n" for line, f in zip(lines, fold) if f != k))
            test_file.write_text("".join(f"{line}\n" for line, f in zip(lines, fold) if f == k))
            run(["prepare", train_file, "--out", out / "data" / f"dream{k}"])
        cells.append((f"dream-fold{k}", out / "data" / f"dream{k}", test_file, 0))
    return cells


def run(args: list, log: Path | None = None) -> None:
    """``proformer ARGS`` on one torch thread; its output to ``log`` (or inherited)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "a") if log else open(os.devnull, "w") as handle:
        subprocess.run([sys.executable, "-m", "proformer.cli", *map(str, args)], check=True, env=env,
                       stdout=handle if log else None, stderr=handle if log else None)


def train_and_evaluate(out: Path, cell: tuple, recipe: str) -> None:
    name, data, test, seed = cell
    run_dir, result = out / "runs" / f"{name}-{recipe}", out / "results" / f"{name}-{recipe}.json"
    if result.exists():
        return
    result.parent.mkdir(parents=True, exist_ok=True)
    log = out / "logs" / f"{name}-{recipe}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sets = [part for setting in [f"train.seed={seed}", *RECIPES[recipe]] for part in ("--set", setting)]
    resume = ["--resume"] if (run_dir / "fold-0").exists() or (run_dir / "checkpoints").exists() else []
    started = time.monotonic()
    run(["train", "--data", data, "--out", run_dir, "--no-progress", *sets, *resume], log)
    seconds = time.monotonic() - started
    evaluation = out / "results" / f"{name}-{recipe}.evaluate.json"
    with open(evaluation, "w") as handle:
        subprocess.run([sys.executable, "-m", "proformer.cli", "evaluate", "--model", str(run_dir), "--data", str(test),
                        "--json", "--no-progress"], check=True, stdout=handle)
    metrics = json.loads(evaluation.read_text())
    curves = [run_dir / "metrics.csv", *sorted(run_dir.glob("fold-*/metrics.csv"))]
    epochs = sum(len(path.read_text().splitlines()) - 1 for path in curves if path.exists())
    result.write_text(json.dumps({"cell": name, "recipe": recipe, "train_seconds": seconds, "epochs": epochs,
                                  "pearson": {t: m["pearson"] for t, m in metrics["targets"].items()}}))


def report(out: Path) -> None:
    rows = [json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json")) if not p.name.endswith(".evaluate.json")]
    by = {(r["cell"], r["recipe"]): r for r in rows}
    # Training time is not compared here: the runs share the cores (two at a time, often more).
    print("| data | recipe | held-out Pearson, mean (per seed or fold) | paired Δ (auto − previous) | epochs trained |")
    print("|---|---|---|---|---|")
    for data in ("lenti", "starr", "dream"):
        cells = sorted({cell for cell, _ in by if cell.startswith(data)})
        targets = sorted({t for (cell, _), r in by.items() if cell in cells for t in r["pearson"]})
        for target in targets:
            for recipe in RECIPES:
                values = [by[(c, recipe)]["pearson"][target] for c in cells if (c, recipe) in by]
                if not values:
                    continue
                epochs = ", ".join(str(by[(c, recipe)].get("epochs", "?")) for c in cells if (c, recipe) in by)
                deltas = [by[(c, "auto")]["pearson"][target] - by[(c, "previous")]["pearson"][target]
                          for c in cells if (c, "auto") in by and (c, "previous") in by]
                delta = ", ".join(f"{d:+.4f}" for d in deltas) if recipe == "auto" else ""
                print(f"| {data} {target} | `{recipe}` | {statistics.mean(values):.4f} "
                      f"({', '.join(f'{v:.4f}' for v in values)}) | {delta} | {epochs} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2, help="runs at a time, one torch thread each")
    parser.add_argument("--report", action="store_true", help="print the table of the finished runs")
    args = parser.parse_args()
    if args.report:
        return report(args.out)
    cells = datasets(args.out)
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(lambda job: train_and_evaluate(args.out, *job),
                      [(cell, recipe) for cell in cells for recipe in RECIPES]))
    report(args.out)


if __name__ == "__main__":
    main()
