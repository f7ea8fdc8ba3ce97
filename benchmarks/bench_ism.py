"""How fast is `proformer ism`? Against the model's own prediction rate and against tangermeme.

On the first ``--n`` DREAM test sequences (../shared/data/dream2022/test_sequences.txt) and the
``grid`` model at ``--dim`` (randomly initialised: the speed of a forward pass does not depend on
the weights), with the DREAM layout and ``--batch-size`` sequences per pass:

1. prediction rate: the run's :class:`~proformer.interpret.scorer.Scorer` (the one-target
   predictor every analysis uses) on the same sequences, as ``proformer predict`` runs them (real
   sequences), and ``proformer bench predict`` (random codes), sequences per second;
2. ISM: ``proformer.ism`` on the same sequences: wall time, sequences evaluated per
   second (references + 3 mutants per seen position) and its ratio to 1 (the issue's bar: the
   bookkeeping costs < 10 %, ratio >= 0.9);
3. tangermeme's ``saturation_mutagenesis`` on the same model through the one-hot adapter
   (``Scorer.one_hot_model``), same sequences, batch and threads, run on the same chunks of
   ``--chunk`` sequences as 2 in alternating order: wall time, and the largest
   difference between its attributions and ours on the positions the model sees (the two
   compute the same quantity: effects centred over the four bases, times the one-hot).

Prints a Markdown table and writes JSON::

    python benchmarks/bench_ism.py [--n 1000] [--dim 64] [--batch-size 256] [--threads 2] [--out ism.json]

tangermeme is optional (``pip install tangermeme``); without it step 3 is skipped and said so.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import proformer
from proformer.bench import benchmark
from proformer.config import apply_overrides, run_preset
from proformer.interpret import Scorer
from proformer.io.run import RunInfo, TargetInfo, write_run_model
from proformer.model import Proformer
from proformer.sequence import Layout

ROOT = Path(__file__).resolve().parent.parent
TEST_SEQUENCES = ROOT.parent / "shared" / "data" / "dream2022" / "test_sequences.txt"


def first_sequences(n: int) -> list[str]:
    sequences = []
    with open(TEST_SEQUENCES) as handle:
        for line in handle:
            if line.strip():
                sequences.append(line.split("\t")[0].strip())
            if len(sequences) == n:
                break
    return sequences


def tangermeme_ism(scorer: Scorer, laid, batch_size: int) -> tuple[float, np.ndarray, str]:
    """Seconds, attributions ``(n, 4, length)`` on the model window, and how it ran."""
    import warnings

    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    forward = torch.from_numpy(laid.codes[:, : scorer.layout.length].astype(np.int64))
    one_hot = torch.nn.functional.one_hot(forward.clamp(max=4), 5)[..., :4].permute(0, 2, 1).float()
    model = scorer.one_hot_model().eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        values = saturation_mutagenesis(model, one_hot, batch_size=batch_size, device="cpu", verbose=False)
        seconds = time.perf_counter() - start
    # tangermeme tries fastISM and falls back to full passes where that is not faster (a transformer).
    fell_back = any("fast=False" in str(w.message) for w in caught)
    how = "default fast=True" + ("; it fell back to full passes (fastISM was slower)" if fell_back else "")
    return seconds, np.asarray(values, dtype=np.float64), how


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=100, help="sequences per alternation of ISM and tangermeme")
    parser.add_argument("--skip-tangermeme", action="store_true")
    parser.add_argument("--out", help="JSON results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sequences = first_sequences(args.n)
    config = apply_overrides(run_preset("grid").model, [f"dim={args.dim}"])
    info = RunInfo(model=config, layout=Layout(), target=TargetInfo(names=["expression"], mean=[0.0], std=[1.0], standardized=True),
                   proformer_version="bench")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        write_run_model(tmp, Proformer(config).state_dict(), info)
        model = proformer.load(tmp, "cpu", batch_size=args.batch_size)  # reads the weights now
    # Target statistics mean 0, std 1: training units and z-scores are the same numbers.
    scorer = Scorer(model)
    laid = scorer.lay_out(sequences)

    # 1. The prediction rate on the same sequences, repeated to fill about as many passes.
    scorer(laid.codes[: args.batch_size])  # warm-up
    repeats = max(1, 20 * args.batch_size // len(sequences))
    codes = np.concatenate([laid.codes] * repeats)
    start = time.perf_counter()
    scorer(codes)
    predict_rate = len(codes) / (time.perf_counter() - start)
    # ... and `proformer bench predict` for the same model and batch (random codes).
    bench_rate = benchmark(config, mode="predict", batch_size=args.batch_size, steps=10, device="cpu",
                           peak_flops=1.0)["sequences_per_second"]

    # 2. ISM, and 3. tangermeme, on the same chunks of sequences in alternating order, so that
    # a drift of the machine's speed over the minutes of the run hits both alike.
    chunks = [slice(start, start + args.chunk) for start in range(0, len(sequences), args.chunk)]
    use_tangermeme = not args.skip_tangermeme
    if use_tangermeme:
        try:
            import tangermeme  # noqa: F401
        except ImportError:
            use_tangermeme = False
    ism_seconds, their_seconds, results, theirs, how = 0.0, 0.0, [], [], ""
    for index, part in enumerate(chunks):
        for turn in ((0, 1) if index % 2 == 0 else (1, 0)):
            if turn == 0:
                start = time.perf_counter()
                results.append(proformer.ism(model, sequences[part]))
                ism_seconds += time.perf_counter() - start
            elif use_tangermeme:
                seconds, values, how = tangermeme_ism(scorer, scorer.lay_out(sequences[part]), args.batch_size)
                their_seconds += seconds
                theirs.append(values)
    evaluated = sum(r.evaluated for r in results)
    ism_rate = evaluated / ism_seconds

    rows = {
        "machine": f"{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}",
        "model": f"grid dim {args.dim} ({sum(p.numel() for p in model.model.parameters()):,} parameters, random weights)",
        "sequences": len(sequences), "batch_size": args.batch_size,
        "bench_predict_sequences_per_second": bench_rate,
        "predict_sequences_per_second": predict_rate,
        "ism_seconds": ism_seconds, "ism_evaluated": evaluated, "ism_sequences_per_second": ism_rate,
        "ism_rate_over_predict_rate": ism_rate / predict_rate,
        "ism_rate_over_bench_predict_rate": ism_rate / bench_rate,
    }

    if args.skip_tangermeme or not use_tangermeme:
        rows["tangermeme"] = "skipped (--skip-tangermeme)" if args.skip_tangermeme else "not installed (pip install tangermeme)"
    else:
        theirs = np.concatenate(theirs)
        importance = np.concatenate([r.importance() for r in results])
        ours, mask = np.zeros_like(theirs), np.zeros(theirs.shape, dtype=bool)
        for row in range(len(sequences)):
            seen = np.flatnonzero(laid.window[row] >= 0)
            ours[row][:, laid.window[row, seen]] = importance[row][:, seen]
            mask[row][:, laid.window[row, seen]] = True
        rows.update({
            "tangermeme": how, "tangermeme_seconds": their_seconds, "speedup_over_tangermeme": their_seconds / ism_seconds,
            "max_abs_difference_on_seen_positions": float(np.abs(ours - theirs)[mask].max()),
            "largest_attribution": float(np.abs(theirs[mask]).max()),
        })

    print("| measure | value |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
