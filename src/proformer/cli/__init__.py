"""The ``proformer`` command line: argument parsing only, every command calls the Python API.

Heavy modules (torch, lightning, matplotlib) are imported inside the command functions so
that ``proformer --help`` starts fast.
"""

from __future__ import annotations

import argparse
import errno
import sys

from ..limits import MAX_BATCH, MAX_POSITION, MAX_SEED, bounded
from .interpret import add_interpret_commands
from .options import (Parser, add_devices_arguments, add_genome_arguments, add_inference_arguments, add_model_argument,
                      add_overrides_argument, add_preset_arguments, add_progress_argument, add_units_argument,
                      genome_mode, models, summary_stream)


def _model_config(args: argparse.Namespace):
    """The model of ``--preset`` (any preset ``train`` takes: a run preset's model section) + ``--set``."""
    from ..config import apply_overrides, run_preset

    return apply_overrides(run_preset(args.preset).model, args.overrides)


def cmd_model(args: argparse.Namespace) -> None:
    """Print the architecture summary with per-module and total parameter counts."""
    from ..config import run_preset
    from ..model import Proformer, parameter_counts
    from ..train.memory import estimate_training_memory

    config = _model_config(args)
    model = Proformer(config)
    fields = ", ".join(f"{k}={v}" for k, v in config.to_dict().items())
    print(f"Proformer (preset {args.preset}): {fields}")
    strands = "both strands" if config.strands == "joint" else "one strand: each strand is its own example"
    print(f"tokens per example: {config.n_expression_heads} expression heads + {config.sequence_tokens} sequence "
          f"positions ({strands}); attention key_dim {config.key_dim}")
    batch = run_preset(args.preset).train.batch_size
    print(f"training memory at train.batch_size={batch}: {estimate_training_memory(config, batch).describe()}")
    rows = parameter_counts(model)
    width = max(len(name) for name, _ in rows) + 2
    print(f"{'module':<{width}}{'parameters':>14}")
    for name, count in rows:
        indent = "  " if name.count(".") > 1 else ""
        if name == "total":
            print("-" * (width + 14))
        print(f"{indent + name:<{width}}{count:>14,}")


def cmd_prepare(args: argparse.Namespace) -> None:
    """Read a sequence file into a dataset directory."""
    from ..data.prepare import prepare
    from ..sequence import DREAM_HEAD, DREAM_TAIL

    trim = None
    if args.trim is not None:
        try:
            head, tail = (int(x) for x in args.trim.split(","))
        except ValueError:
            raise ValueError(f"--trim {args.trim!r}: expected HEAD,TAIL, e.g. --trim "
                             f"{len(DREAM_HEAD)},{len(DREAM_TAIL)} for DREAM files") from None
        trim = (head, tail)
    meta = prepare(args.input, args.out, format=args.format, seq_col=args.seq_col, target_cols=args.target_col,
                   on_bad=args.on_bad, trim=trim, length=args.length, keep_flanks=args.keep_flanks, progress=not args.no_progress)
    dropped = ", ".join(f"{k} {v:,}" for k, v in meta["dropped"].items() if v) or "none"
    print(f"{args.out}: {meta['rows_kept']:,} of {meta['rows_read']:,} rows kept (dropped: {dropped}); "
          f"targets {meta['target_names'] or 'none'}; layout {meta['transforms']}")


def cmd_quickstart(args: argparse.Namespace) -> None:
    """Simulate (or read) data, prepare, train, predict, score, report."""
    from ..quickstart import quickstart

    metrics = quickstart(args.out, data=args.data, n_train=args.n, seed=args.seed, overrides=args.overrides,
                         progress=not args.no_progress)
    print(f"\nheld-out Pearson r {metrics['test_pearson']:.4f}, Spearman rho {metrics['test_spearman']:.4f}", end="")
    if metrics["noise_ceiling"] is not None:
        print(f" (noise ceiling {metrics['noise_ceiling']:.4f}: {metrics['fraction_of_ceiling']:.0%} of it)", end="")
    print(f"\nreport: {args.out}/report/report.md ({metrics['seconds']['total']:.0f} s)")


def cmd_train(args: argparse.Namespace) -> None:
    """Train a Proformer from a run config (YAML or preset) on a prepared dataset."""
    from ..config import load_run_config
    from ..train import train
    from ..train.report import best_summary, saved_line

    given = {"data.path": args.data, "data.valid": args.valid}
    overrides = list(args.overrides) + [f"{key}={value}" for key, value in given.items() if value]
    config = load_run_config(args.config, args.preset, overrides)  # neither: the default preset, auto
    result = train(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(best_summary(result))
    print(saved_line(result))


def cmd_predict(args: argparse.Namespace) -> None:
    from ..predict import predict

    if genome_mode(args, "--input"):
        return _predict_genome(args)
    result = predict(models(args), args.input, args.out, format=args.format, data_dir=args.data_dir,
                     standardized=args.standardized, seq_col=args.seq_col, id_col=args.id_col,
                     batch_size=args.batch_size, device=args.device, precision=args.precision,
                     progress=not args.no_progress, rc_average=args.rc_average, devices=args.devices, num_nodes=args.num_nodes)
    if result["rank"]:  # another process of --devices N: rank 0 wrote out and says so
        return
    ensemble = f", the mean of {result['runs']} runs" if result["runs"] > 1 else ""
    print(f"wrote {'stdout' if result['out'] == '-' else result['out']} ({result['format']}, {result['rows']:,} input rows, "
          f"{result['units']}{ensemble})", file=sys.stderr if result["out"] == "-" else sys.stdout)


def _predict_genome(args: argparse.Namespace) -> None:
    """``predict --fasta``: BED intervals into a TSV, or regions tiled into a track."""
    from ..tracks import predict_intervals, predict_track

    options = dict(stride=args.stride, standardized=args.standardized, max_n_frac=args.max_n_frac, batch_size=args.batch_size,
                   device=args.device, precision=args.precision, rc_average=args.rc_average, progress=not args.no_progress,
                   devices=args.devices, num_nodes=args.num_nodes)
    if args.bed:
        if args.target is not None:
            raise ValueError("--target picks the target of a track; --bed writes every target")
        result = predict_intervals(models(args), args.fasta, args.bed, args.out, **options)
        what = f"{result.get('intervals', 0):,} intervals, {result.get('windows', 0):,} windows"
    else:
        result = predict_track(models(args), args.fasta, args.out, regions=args.region + args.chrom, target=args.target,
                               **options)
        what = f"{result.get('format')}, {result.get('windows', 0):,} windows at stride {result.get('stride')}, {result.get('target')}"
    if not result["rank"]:
        print(f"wrote {'stdout' if result['out'] == '-' else result['out']} ({what}, {result['units']})",
              file=sys.stderr if result["out"] == "-" else sys.stdout)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Predict labelled rows and compare: per target n, Pearson, Spearman, MSE, R^2."""
    import json

    if genome_mode(args, "--data"):
        from ..tracks import evaluate_genome

        result = evaluate_genome(models(args), args.fasta, args.signal, bed=args.bed, regions=args.region + args.chrom,
                                 stride=args.stride, target=args.target, max_n_frac=args.max_n_frac, out_dir=args.out_dir,
                                 batch_size=args.batch_size, device=args.device, precision=args.precision,
                                 rc_average=args.rc_average, progress=not args.no_progress)
        print(json.dumps(result.to_dict(), indent=2) if args.json else result.to_table())
        return
    from ..evaluate import evaluate

    result = evaluate(models(args), args.data, seq_col=args.seq_col, target_cols=args.target_col or (),
                      id_col=args.id_col, out_dir=args.out_dir, batch_size=args.batch_size, device=args.device,
                      precision=args.precision, rc_average=args.rc_average, progress=not args.no_progress)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.to_table())


def cmd_score(args: argparse.Namespace) -> None:
    import json

    from ..score import score

    result = score(args.predictions, args.data_dir, split=args.split, truth=args.truth)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.to_table())


def cmd_download(args: argparse.Namespace) -> None:
    from ..download import download_dream2022

    if args.dataset != "dream2022":
        raise ValueError(f"unknown dataset {args.dataset!r}; available: dream2022")
    paths = download_dream2022(args.out, files=args.files or None, progress=not args.no_progress)
    print(f"{len(paths)} file(s) in {args.out}")


def cmd_bench(args: argparse.Namespace) -> None:
    """Throughput, analytic FLOPs, the measured matmul peak and MFU."""
    from ..bench import benchmark, describe

    config = _model_config(args)
    if args.batch_size is None:
        # A training step keeps every block's activations for the backward pass: 256 sequences
        # of a d256 / 8-block model need ~25 GB, so training defaults to a batch a laptop holds.
        args.batch_size = 32 if args.mode == "train" else 256
    result = benchmark(config, mode=args.mode, batch_size=args.batch_size, precision=args.precision,
                       steps=args.steps, device=args.device, compile=args.compile)
    print(f"{args.mode} preset {args.preset} ({', '.join(args.overrides) or 'no overrides'}), {describe(result)}")


def cmd_distill(args: argparse.Namespace) -> None:
    from ..distill import distill

    meta = distill(models(args), args.data, args.out, copies=args.copies, augmentations=args.augment, seed=args.seed,
                   batch_size=args.batch_size, device=args.device, precision=args.precision, progress=not args.no_progress)
    teacher, copies = meta["distilled"]["models"], meta["distilled"]["copies"]
    rows = f"{meta['rows_kept']:,} rows"
    if copies:
        rows += (f" (the {meta['rows_kept'] // (1 + copies):,} rows and {copies} mutated "
                 f"{'copy' if copies == 1 else 'copies'} of each)")
    print(f"{args.out}: {rows}, targets predicted by "
          f"{teacher[0] if len(teacher) == 1 else f'the mean of {len(teacher)} runs'}; train on it with "
          f"proformer train --data {args.out}")


def cmd_export(args: argparse.Namespace) -> None:
    from ..export import export_onnx

    result = export_onnx(models(args), args.onnx, standardized=args.standardized, check=not args.no_check)
    check = f"; onnxruntime vs torch max |difference| {result['max_abs_difference']:.2e}" if "max_abs_difference" in result else ""
    print(f"wrote {result['out']}{check}", file=summary_stream(args.onnx))


_STORAGE = "the sweep's Optuna study: DIR/study.db unless a database URL (postgresql://...) or a journal FILE.log"


def cmd_sweep(args: argparse.Namespace) -> None:
    """Train every cell of a grid (resumable) and record each cell's best validation Pearson."""
    from ..experiments import run_sweep

    rows = run_sweep(args.grid, args.data, args.out, epochs=args.epochs, data_fraction=args.data_fraction,
                     folds=args.folds, dry_run=args.dry_run, base=args.base, overrides=args.overrides,
                     progress=not args.no_progress, storage=args.storage, heartbeat=args.heartbeat)
    from ..experiments.sweep import failed_cells

    failed = [] if args.dry_run else failed_cells(rows)
    if failed:
        from ..train.module import TrainingFailed  # a failure (exit 1), not a usage error

        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        raise TrainingFailed(f"{len(failed)} cell(s) failed: {', '.join(failed[:10])}{more} (reasons in the error "
                             f"column of {args.out}/results.csv); run the same command again to retry them")


def cmd_tune(args: argparse.Namespace) -> None:
    """Optuna's sampler over a recipe's settings; the best trial is a run directory."""
    from ..experiments.tune import run_tune

    summary = run_tune(args.data, args.out, args.trials, space=args.space, storage=args.storage, folds=args.folds,
                       preset=args.preset, overrides=args.overrides, seed=args.seed, heartbeat=args.heartbeat,
                       progress=not args.no_progress)
    best, baseline = summary["best"], summary["baseline"]
    line = f"best trial {best['number']}: validation Pearson {best['value']:.4f} ({best['run_dir']})"
    if baseline is not None:
        line += f"; the auto recipe's settings {baseline['value']:.4f} ({best['value'] - baseline['value']:+.4f})"
    print(f"{line}; report: {summary['report']}")


def cmd_sweep_report(args: argparse.Namespace) -> None:
    from ..experiments import sweep_report

    print(sweep_report(args.dir, compare=args.compare, dream_dir=args.dream_dir, storage=args.storage))


def cmd_atac_prepare(args: argparse.Namespace) -> None:
    """Genome + signal (bigWig or BAM) + summits -> train/ and test/ dataset directories."""
    from ..data.atac import prepare_atac

    meta = prepare_atac(args.fasta, args.out, signal=args.signal, bam=args.bam, peaks=args.peaks, n=args.n,
                        window=args.window, flank=args.flank, center=args.center, seed=args.seed, split=args.split,
                        blacklist=args.blacklist, transform=args.transform, max_n_frac=args.max_n_frac,
                        missing=args.missing, peak_format=args.peak_format, progress=not args.no_progress)
    dropped = ", ".join(f"{k} {v:,}" for k, v in meta.get("dropped", {}).items() if v) or "none"
    print(f"{args.out}: {meta['rows_kept']:,} windows (dropped: {dropped}) in {args.out}/train and {args.out}/test")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="proformer",
        description="Proformer: predict a number (expression, accessibility) from a short DNA sequence.",
    )
    from .. import __version__
    from ..data.atac import CENTER, FLANK, WINDOW  # numpy only (its readers import on use)
    from ..sequence import DREAM_HEAD, DREAM_LENGTH, DREAM_TAIL  # numpy only: the parser stays light

    parser.add_argument("--version", action="version", version=f"proformer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    model = commands.add_parser("model", help="print a model's architecture and parameter counts")
    add_preset_arguments(model)
    model.set_defaults(func=cmd_model)

    quick = commands.add_parser("quickstart", help="the whole path on built-in data in a few minutes (no download)")
    quick.add_argument("--out", default="proformer-quickstart", help="output directory (default: %(default)s)")
    quick.add_argument("--data", help="a DREAM-format file (sequence<TAB>expression) instead of the built-in library")
    quick.add_argument("--n", type=bounded(100, 10_000_000), default=20_000, help="simulated training sequences (100 to 10,000,000; default: %(default)s)")
    quick.add_argument("--seed", type=bounded(0, MAX_SEED - 1), default=0, help=f"0 to {MAX_SEED - 1:,} (default: %(default)s)")
    add_overrides_argument(quick)
    add_progress_argument(quick)
    quick.set_defaults(func=cmd_quickstart)

    prep = commands.add_parser("prepare", help="read DREAM TSV, FASTA or CSV/TSV into a dataset directory")
    prep.add_argument("input", help="DREAM TSV (sequence<TAB>expression), FASTA, or a CSV/TSV with a header; plain or .gz")
    prep.add_argument("--out", required=True, help="dataset directory to write")
    prep.add_argument("--format", choices=["auto", "dream", "fasta", "table"], default="auto")
    prep.add_argument("--seq-col", help="table input: the sequence column")
    prep.add_argument("--target-col", action="append", help="table input: a target column (repeat for several)")
    prep.add_argument("--on-bad", choices=["error", "skip"], default="error",
                      help="bad rows stop with an error (default) or are skipped and counted")
    prep.add_argument("--trim", help=f"HEAD,TAIL flank lengths the model never sees (default: DREAM {len(DREAM_HEAD)},{len(DREAM_TAIL)}, else flanks every row shares)")
    prep.add_argument("--keep-flanks", action="store_true", help="keep flanks every row shares in the model's input")
    prep.add_argument("--length", type=bounded(1, MAX_POSITION), help=f"positions per strand after trimming, 1 to {MAX_POSITION:,}; longer rows are dropped (DREAM default {DREAM_LENGTH})")
    add_progress_argument(prep)
    prep.set_defaults(func=cmd_prepare)

    atac = commands.add_parser("atac", help="the ATAC-seq accessibility task")
    atac_commands = atac.add_subparsers(dest="atac_command", metavar="COMMAND")
    atac_commands.required = True
    atac_prep = atac_commands.add_parser("prepare", help="sample windows around summits from a genome and a signal")
    atac_prep.add_argument("--fasta", required=True, help="genome FASTA (indexed or indexable by pyfaidx)")
    source = atac_prep.add_mutually_exclusive_group(required=True)
    source.add_argument("--signal", help="signal bigWig")
    source.add_argument("--bam", help="aligned reads; Tn5 insertions counted with the +4/-5 shift")
    atac_prep.add_argument("--peaks", required=True, help="narrowPeak (summit = start + column 10) or a BED of summits")
    atac_prep.add_argument("--out", required=True)
    atac_prep.add_argument("--n", type=bounded(2, 20_000_000), default=100_000, help="windows to keep (2 to 20,000,000; default: %(default)s)")
    atac_prep.add_argument("--window", type=bounded(1, 100_000), default=WINDOW, help="window length (1 to 100,000; default: %(default)s)")
    atac_prep.add_argument("--flank", type=bounded(0, 1_000_000), default=FLANK, help="windows lie within summit +- flank (0 to 1,000,000; default: %(default)s)")
    atac_prep.add_argument("--center", type=bounded(1, 100_000), default=CENTER, help="target = mean signal over the central bp (1 to 100,000, at most --window; default: %(default)s)")
    atac_prep.add_argument("--seed", type=bounded(0, MAX_SEED), default=0, help=f"0 to {MAX_SEED:,} (default: %(default)s)")
    atac_prep.add_argument("--split", default="random:0.8", help="random:F or chrom:chr8,chr9 (held out)")
    atac_prep.add_argument("--blacklist", help="BED of regions to avoid")
    atac_prep.add_argument("--transform", choices=["none", "log1p"], default="none")
    atac_prep.add_argument("--max-n-frac", type=bounded(0, 1, float), default=0.1, help="drop windows with a larger fraction of N (0 to 1; default: %(default)s)")
    atac_prep.add_argument("--missing", choices=["zero", "skip"], default="zero", help="bigWig positions without data")
    atac_prep.add_argument("--peak-format", choices=["auto", "narrowpeak", "bed"], default="auto")
    add_progress_argument(atac_prep)
    atac_prep.set_defaults(func=cmd_atac_prepare)

    train = commands.add_parser("train", help="train on a prepared dataset (Lightning)")
    train.add_argument("--config", help="run config YAML with sections model, data, train (may name a preset)")
    train.add_argument("--data", help="prepared dataset directory (same as --set data.path=DIR)")
    train.add_argument("--valid", metavar="FILE|DIR", help="validation set instead of a split of --data (by default at least 500 rows of it; below 2,500 rows, 5-fold cross-validation saved as one ensemble run; --set data.split=random:0.9, folds:5, ...): a prepared dataset directory, or a table/FASTA file prepared like --data (same columns, trim, length) into OUT/valid_data")
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt (a K-fold run: keep its finished folds, continue the others)")
    add_progress_argument(train, "errors, results and a line per epoch with the time left")
    add_preset_arguments(train, required=False)
    train.set_defaults(func=cmd_train)

    predict = commands.add_parser("predict", help="predict sequences with a trained model (or the mean of several)")
    add_model_argument(predict)
    predict.add_argument("--input",
                         help="FASTA, one sequence per line, DREAM TSV (sequence first), a CSV/TSV table with a header "
                              "(with --seq-col), plain or .gz; or a prepared dataset directory (ids: its row numbers)")
    predict.add_argument("--out", required=True, help="output file (written atomically), or - for stdout")
    predict.add_argument("--seq-col", help="a table's sequence column (default: the run's, if the table has it)")
    predict.add_argument("--id-col", help="a table's id column, written as the first output column id")
    predict.add_argument("--format", choices=["tsv", "dream-json"], default="tsv")
    predict.add_argument("--data-dir", help="DREAM 2022 folder (for --format dream-json: public_leaderboard/sample_submission.json)")
    add_units_argument(predict, "predictions")
    add_inference_arguments(predict)
    add_devices_arguments(predict)
    add_genome_arguments(predict)
    predict.set_defaults(func=cmd_predict)

    evaluate = commands.add_parser("evaluate", help="a trained model against measured values: Pearson, Spearman, MSE, R^2")
    add_model_argument(evaluate)
    evaluate.add_argument("--data",
                          help="labelled rows: a CSV/TSV table with a header (--seq-col, --target-col), a DREAM TSV "
                               "(sequence<TAB>value), plain or .gz, or a prepared dataset directory with targets")
    evaluate.add_argument("--seq-col", help="a table's sequence column (default: the run's, if the table has it)")
    evaluate.add_argument("--id-col", help="a table's id column (never a measured column)")
    evaluate.add_argument("--target-col", action="append", metavar="NAME",
                          help="a measured column of a table (repeat for several; default: the columns named after the "
                               "run's targets, or the one value column of a one-target run)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument("--out-dir", help="also write metrics.json and a hexbin scatter PNG per target here")
    add_inference_arguments(evaluate)
    add_genome_arguments(evaluate, evaluate=True)
    evaluate.set_defaults(func=cmd_evaluate)

    score = commands.add_parser("score", help="the official DREAM 2022 score of a submission")
    score.add_argument("predictions", help="JSON {index: value}, a 71,103-row TSV sequence<TAB>prediction, or one value per line")
    score.add_argument("--data-dir", required=True, help="the DREAM 2022 folder (public_leaderboard/, test_subsets/)")
    score.add_argument("--split", choices=["public", "private"], default="public")
    score.add_argument("--truth", help="private split: 71,103 rows sequence<TAB>expression")
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score.set_defaults(func=cmd_score)

    tune = commands.add_parser("tune", help="search a recipe's settings with Optuna (pruning, importances); the best trial is a run")
    tune.add_argument("--data", required=True, help="prepared dataset directory")
    tune.add_argument("--out", required=True, help="tune directory (study.db, trials/, best, report.md)")
    tune.add_argument("--trials", type=bounded(1, 10_000), required=True, help="trials in the study, the auto recipe's settings first (1 to 10,000; shared by every worker)")
    tune.add_argument("--space", metavar="FILE", help="YAML search space (default: docs/tune.md's: lr, batch size, dropout, weight decay, width, blocks, stem, step budget)")
    tune.add_argument("--folds", type=bounded(1, 100), default=1, help="K > 1: each trial a K-fold run, judged by the mean of its folds, not pruned (default: one split)")
    tune.add_argument("--seed", type=bounded(0, MAX_SEED), default=0, help="the sampler's seed (default: %(default)s)")
    tune.add_argument("--storage", metavar="URL", help=_STORAGE + "; workers started with the same arguments share it")
    tune.add_argument("--heartbeat", type=bounded(1, 3600), default=60, metavar="S", help="seconds between a worker's heartbeats (default: %(default)s)")
    add_preset_arguments(tune, required=False)
    add_progress_argument(tune)
    tune.set_defaults(func=cmd_tune)

    sweep = commands.add_parser("sweep", help="train a grid of models (the poster's grids, an ablation, or a YAML grid)")
    sweep.add_argument("--grid", required=True, help="poster-yeast, poster-atac, ablation, cpu-study, or a grid YAML file")
    sweep.add_argument("--data", help="prepared dataset directory (not needed with --dry-run)")
    sweep.add_argument("--out", required=True, help="sweep directory (study.db, results.csv, a run directory per cell)")
    sweep.add_argument("--epochs", type=bounded(1, 10_000), default=20, help="epoch budget per cell (1 to 10,000; default: %(default)s)")
    sweep.add_argument("--data-fraction", type=bounded(0, 1, float, above=True), default=1.0, help="train on this stable fraction of the rows (more than 0, at most 1)")
    sweep.add_argument("--folds", type=bounded(1, 100), default=1, help="K-fold cross-validation by sequence hash (1 to 100; default: one split)")
    sweep.add_argument("--base", help="preset or run YAML replacing the grid's base preset")
    add_overrides_argument(sweep)
    sweep.add_argument("--storage", metavar="URL", help=_STORAGE + "; workers started with the same arguments share it")
    sweep.add_argument("--heartbeat", type=bounded(1, 3600), default=60, metavar="S", help="seconds between a worker's "
                       "heartbeats; the cell of a worker silent for 4x as long is retried by another (default: %(default)s)")
    sweep.add_argument("--dry-run", action="store_true", help="print the cells, one line each, and exit")
    add_progress_argument(sweep)
    sweep.set_defaults(func=cmd_sweep)

    sweep_report = commands.add_parser("sweep-report", help="a sweep's table in the poster's layout and a heatmap")
    sweep_report.add_argument("dir", help="the sweep directory")
    sweep_report.add_argument("--compare", choices=["poster-yeast", "poster-atac", "ablation"],
                              help="print the poster's value and the difference beside each cell")
    sweep_report.add_argument("--dream-dir", help="DREAM 2022 folder: score cells that hold test_predictions.json")
    sweep_report.add_argument("--storage", metavar="URL", help=_STORAGE)
    sweep_report.set_defaults(func=cmd_sweep_report)

    add_interpret_commands(commands)

    bench = commands.add_parser("bench", help="time training or prediction and report model FLOPs utilisation")
    bench.add_argument("mode", choices=["train", "predict"])
    add_preset_arguments(bench)
    bench.add_argument("--batch-size", type=bounded(1, MAX_BATCH), default=None, help=f"1 to {MAX_BATCH:,} (default: 32 for train, 256 for predict)")
    bench.add_argument("--precision", choices=["32", "bf16"], default="32")
    bench.add_argument("--steps", type=bounded(1, 10_000), default=10, help="timed steps after 3 warm-up steps (1 to 10,000; default: %(default)s)")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--compile", action="store_true", help="torch.compile the model first")
    bench.set_defaults(func=cmd_bench)

    distill = commands.add_parser("distill", help="a dataset whose targets are a model's (an ensemble's) predictions, "
                                                  "to train one model on")
    add_model_argument(distill)
    distill.add_argument("--data", required=True, help="prepared dataset directory (the rows to predict; its targets are not read)")
    distill.add_argument("--out", required=True, help="the new dataset directory")
    distill.add_argument("--copies", type=bounded(0, 100), default=0,
                         help="mutated copies of each row, predicted too (0 to 100; default: %(default)s)")
    distill.add_argument("--augment", default="evoaug", help="the copies' mutations, as data.augment (default: %(default)s)")
    distill.add_argument("--seed", type=bounded(0, MAX_SEED), default=0, help="keys the copies' mutations")
    add_inference_arguments(distill, rc_average=False)
    distill.set_defaults(func=cmd_distill)

    export = commands.add_parser("export", help="export a trained model as ONNX")
    add_model_argument(export)
    export.add_argument("--onnx", required=True, help="output .onnx file")
    add_units_argument(export, "the graph's predictions")
    export.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    export.set_defaults(func=cmd_export)

    download = commands.add_parser("download", help="fetch a public data set (dream2022: Zenodo 10.5281/zenodo.10633252)")
    download.add_argument("dataset", help="dream2022")
    download.add_argument("--out", required=True)
    download.add_argument("--files", nargs="*", help="only these file names of the record")
    add_progress_argument(download)
    download.set_defaults(func=cmd_download)
    return parser


def _os_message(error: OSError) -> str:
    """One line for an OSError: the path, what is wrong and what to do."""
    advice = {
        PermissionError: "check its permissions or choose another path",
        IsADirectoryError: "give a file, not a directory",
        NotADirectoryError: "a part of the path is a file, not a directory",
    }.get(type(error), "check the path and the disk")
    reason = error.strerror or (str(error).splitlines() or [type(error).__name__])[0]
    if error.errno == errno.ELOOP:  # "Too many levels of symbolic links"
        reason, advice = "a symbolic link loop (ELOOP): its links lead back to themselves", "point the link at a real file"
    if error.filename is None:
        return f"{reason}; {advice}"
    return f"{error.filename}: {reason}; {advice}"


def _broken_pipe() -> int:
    """stdout's reader went away (``proformer score ... | head``): exit quietly.

    Python's recipe (docs: signal, "Note on SIGPIPE"): point stdout at devnull so the
    interpreter's final flush does not raise again.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 1


def _training_failed(error: BaseException) -> bool:
    """A run that diverged, was stopped or had no usable epoch: a failure (exit 1), not a usage
    error. Looked up in sys.modules so that other commands never import lightning."""
    module = sys.modules.get("proformer.train.module")
    return module is not None and isinstance(error, module.TrainingFailed)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _broken_pipe()
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, ImportError) as error:
        if isinstance(error, OSError) and error.filename is not None and error.strerror:
            error = f"{error.filename}: {error.strerror}"  # not "[Errno 2] ...: 'path'"
        print(f"proformer {args.command}: error: {error}", file=sys.stderr)
        return 1 if _training_failed(error) else 2
    except (IsADirectoryError, NotADirectoryError) as error:
        print(f"proformer {args.command}: error: {_os_message(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # PermissionError, a full disk, ...: the command failed; a link loop: a bad path
        print(f"proformer {args.command}: error: {_os_message(error)}", file=sys.stderr)
        return 2 if error.errno == errno.ELOOP else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
