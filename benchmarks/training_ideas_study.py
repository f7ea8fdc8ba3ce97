"""The training-ideas study on real DREAM data: which of the challenge's ideas help a Proformer?

Grid ``training-ideas`` (18 runs): the grid d64 model (k-mer 5, dim 64, 2 heads, 1 block, 8
expression heads, 5 % mask filling) with the faithful recipe, then each option alone (soft bins,
singleton flag, RC averaging, plasmid padding, shifts up to 10 nt, AdamW + one-cycle, Lion +
one-cycle) and all together, 2 seeds each, on ``train_sample.txt`` (7,366 usable rows) split
90/10 by sequence hash (6,630 training, 736 validation rows, the same for every run).

Budget: the same for every run, 3 epochs at batch 64 (312 optimizer steps). No option changes
the training cost per step by more than a few per cent (RC averaging doubles only the validation
pass), so equal epochs are equal wall-clock; the report lists each run's measured time.
Nothing here looks at the public leaderboard.

Usage (resumable: rerun the same command after an interruption)::

    OMP_NUM_THREADS=1 python benchmarks/training_ideas_study.py &   # two workers share the study
    OMP_NUM_THREADS=1 python benchmarks/training_ideas_study.py
    python benchmarks/training_ideas_study.py --report-only       # docs/training-ideas.md
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = ROOT.parent / "shared" / "data" / "dream2022" / "train_sample.txt"


def summarise(rows: list[dict]) -> list[dict]:
    """One line per option: mean and spread (half the range) over seeds, and the gain over baseline."""
    from proformer.experiments.grids import TRAINING_IDEAS

    by_option: dict[str, list[dict]] = {}
    for row in rows:
        if row["status"] == "done":
            by_option.setdefault(row["cell"].rsplit("-seed", 1)[0], []).append(row)
    lines = []
    for name, label, overrides in TRAINING_IDEAS:
        runs = by_option.get(name, [])
        if not runs:
            continue
        pearson = np.array([r["val_pearson"] for r in runs])
        spearman = np.array([r["val_spearman"] for r in runs])
        lines.append({"option": name, "label": label, "overrides": " ".join(overrides), "runs": len(runs),
                      "pearson": pearson.mean(), "pearson_spread": np.ptp(pearson) / 2,
                      "spearman": spearman.mean(), "spearman_spread": np.ptp(spearman) / 2,
                      "seconds": float(np.mean([r["seconds"] for r in runs])),
                      "values": ", ".join(f"{v:.4f}" for v in pearson)})
    base = next((line for line in lines if line["option"] == "baseline"), None)
    for line in lines:
        line["gain"] = line["pearson"] - base["pearson"] if base else math.nan
    return lines


def table(lines: list[dict]) -> str:
    out = ["| option | set | val Pearson (mean ± half-range) | per seed | Δ vs baseline | val Spearman | s per run |",
           "|---|---|---|---|---|---|---|"]
    for line in lines:
        out.append(f"| {line['label']} | `{line['overrides']}` | {line['pearson']:.4f} ± {line['pearson_spread']:.4f} | "
                   f"{line['values']} | {line['gain']:+.4f} | {line['spearman']:.4f} ± {line['spearman_spread']:.4f} | "
                   f"{line['seconds']:.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-file", default=str(DATA_FILE), help="DREAM TSV to prepare (default: %(default)s)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "training-ideas"),
                        help="prepared data and sweep directory (default: %(default)s, git-ignored)")
    parser.add_argument("--epochs", type=int, default=3, help="epoch budget per run (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true", help="print the table of the finished runs")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

    from proformer.data.prepare import prepare
    from proformer.experiments import run_sweep
    from proformer.experiments.study import read_results

    work = Path(args.work)
    data, out = work / "dream_sample", work / "sweep"
    if not args.report_only:
        if not (data / "meta.json").exists():
            prepare(args.data_file, data, progress=False)
        run_sweep("training-ideas", data, out, epochs=args.epochs, progress=False)
    print(table(summarise(read_results(out))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
