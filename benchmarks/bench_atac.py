"""Time ``proformer.data.atac.prepare_atac`` at the size of the talk's ATAC-seq task.

Builds the inputs with :func:`proformer.data.genome_sim.simulate_atac` in a temporary directory
(timed separately): a 50-Mb genome (5 chromosomes of 10 Mb), a bigWig with one value per
``--bin-size`` bp (10 by default; 1 = per base) and 80,000 summits. Then runs ``prepare_atac``
for 100,000 windows (100 bp, summit +- 500, central 20 bp) in a child process and reports its
wall time (interpreter start-up included) and peak resident memory
(``getrusage(RUSAGE_CHILDREN)`` read in a small launcher process: a child forked straight from
this process, which holds the generated inputs, would inherit its high-water mark).
Acceptance: <= 60 s on a 2-core machine.

    python benchmarks/bench_atac.py [--bin-size 10] [--bam] [--keep DIR]

``--bam`` also writes 2,000,000 reads and times the BAM path (Tn5 insertions) as well.
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

from proformer.data.genome_sim import simulate_atac

LIMIT_SECONDS = 60.0
CHILD = """
import sys
from proformer.data.atac import prepare_atac
kind, path = sys.argv[1], sys.argv[2]
prepare_atac(sys.argv[3], sys.argv[4], peaks=sys.argv[5], n=int(sys.argv[6]), progress=False, **{kind: path})
"""
LAUNCHER = """
import json, resource, subprocess, sys, time
began = time.perf_counter()
subprocess.run([sys.executable, "-c"] + sys.argv[1:], check=True)
seconds = time.perf_counter() - began
print(json.dumps([seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))
"""


def _prepare_in_child(kind: str, source: str, paths: dict, out: Path, n: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of prepare_atac run in a fresh interpreter."""
    args = [CHILD, kind, source, paths["fasta"], str(out), paths["peaks"], str(n)]
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, *args], check=True, capture_output=True, text=True)
    seconds, peak_mib = json.loads(launched.stdout.strip().splitlines()[-1])
    return seconds, peak_mib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromosomes", type=int, default=5)
    parser.add_argument("--chrom-length", type=int, default=10_000_000)
    parser.add_argument("--peaks", type=int, default=80_000)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--bin-size", type=int, default=10)
    parser.add_argument("--bam", action="store_true", help="also time the BAM path (2,000,000 reads)")
    parser.add_argument("--keep", help="write the inputs and outputs here and keep them")
    args = parser.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-atac-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        began = time.perf_counter()
        paths = simulate_atac(work / "inputs", chromosomes=args.chromosomes, chrom_length=args.chrom_length,
                              n_peaks=args.peaks, bin_size=args.bin_size, bam=args.bam, n_reads=2_000_000)
        generate = time.perf_counter() - began
        results = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "genome_bp": args.chromosomes * args.chrom_length,
            "summits": paths["n_peaks"],
            "bigwig_bin_bp": args.bin_size,
            "generate_seconds": round(generate, 1),
        }
        seconds, peak = _prepare_in_child("signal", paths["signal"], paths, work / "out-bigwig", args.n)
        meta = json.loads((work / "out-bigwig" / "meta.json").read_text())
        results.update(windows=meta["rows_kept"], prepare_bigwig_seconds=round(seconds, 1), prepare_bigwig_peak_mib=round(peak),
                       dropped=meta["dropped"], within_limit=seconds <= LIMIT_SECONDS)
        if args.bam:
            seconds, peak = _prepare_in_child("bam", paths["bam"], paths, work / "out-bam", args.n)
            results.update(prepare_bam_seconds=round(seconds, 1), prepare_bam_peak_mib=round(peak))
        print(json.dumps(results, indent=2))
        return 0 if results["within_limit"] else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
