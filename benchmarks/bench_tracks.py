"""Windows per second of a chromosome track against ``proformer bench predict`` of the same model.

Issue 28's throughput check: genome reading, window gathering and track writing must not be the
bottleneck, so a track's windows per second should be at least 0.9x the model's own forward
throughput. Both are measured in this one process, one after the other, on the same threads:

1. ``proformer.bench.benchmark(config, mode="predict")``: the forward pass alone on random codes
   (what ``proformer bench predict`` prints), ``--steps`` timed batches after 3 warm-up ones.
2. :func:`proformer.tracks.predict_track` of one simulated chromosome (``--length`` bp, random
   A/C/G/T) at ``--stride`` into a bigWig: from opening the FASTA to the renamed file.

The model is the ``atac`` preset's (the grid model on 100-nt windows, central 20 bp), randomly
initialised: the weights do not change the time. ``data.rc_average`` is off, as in the bench.

    python benchmarks/bench_tracks.py [--length 1000000] [--stride 20] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from proformer.bench import benchmark
from proformer.config import run_preset
from proformer.data.genome_sim import write_fasta
from proformer.io.run import RunInfo, TargetInfo, write_run_model
from proformer.model import Proformer
from proformer.sequence import Layout
from proformer.tracks import predict_track
from proformer.tracks.windows import Placement, Region, tiled_count

WINDOW, TARGET = 100, (40, 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1_000_000, help="bp of the chromosome (default: %(default)s)")
    parser.add_argument("--stride", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="timed batches of the bench (default: %(default)s)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    config = run_preset("atac").model
    config = type(config).from_dict({**config.to_dict(), "length": WINDOW, "n_targets": 1})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        write_fasta(root / "genome.fa", {"chr1": rng.integers(0, 4, size=args.length, dtype=np.uint8)})
        info = RunInfo(model=config, layout=Layout(head=0, tail=0, length=WINDOW, pad="n"),
                       target=TargetInfo(names=["atac_signal"], mean=[0.0], std=[1.0], standardized=True),
                       data={"atac": {"window": WINDOW, "target_span": list(TARGET), "transform": "none"}},
                       proformer_version="bench")
        torch.manual_seed(0)
        (root / "run").mkdir()
        write_run_model(root / "run", Proformer(config).state_dict(), info)

        bench = benchmark(config, mode="predict", batch_size=args.batch_size, steps=args.steps, device="cpu")
        windows = tiled_count(Region("chr1", 0, args.length, "chr1"), args.length, Placement(WINDOW, TARGET), args.stride)
        began = time.perf_counter()
        result = predict_track(root / "run", root / "genome.fa", root / "track.bw", stride=args.stride,
                               batch_size=args.batch_size, device="cpu", progress=False)
        seconds = time.perf_counter() - began
        assert result["windows"] == windows
    figures = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "chromosome_bp": args.length,
        "stride": args.stride,
        "batch_size": args.batch_size,
        "windows": windows,
        "track_seconds": round(seconds, 2),
        "track_windows_per_second": round(windows / seconds, 1),
        "bench_sequences_per_second": round(bench["sequences_per_second"], 1),
        # the bench's steps vary (the slowest ~1.5x the fastest here): its best step, a stricter reference
        "bench_fastest_step_sequences_per_second": round(args.batch_size / min(bench["step_seconds"]), 1),
        "ratio": round(windows / seconds / bench["sequences_per_second"], 3),
        "ratio_to_fastest_step": round(windows / seconds / (args.batch_size / min(bench["step_seconds"])), 3),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
