"""The interpretation commands: ``ism``, ``attribute``, ``variant-effect`` and ``design``: a run
(or an ensemble) and sequences in, a table or arrays out; each calls :mod:`proformer.interpret`."""

from __future__ import annotations

import argparse

from ..limits import MAX_BEAM, MAX_EDITS, MAX_POSITION, MAX_SEED, MAX_SHUFFLES, MAX_STEPS, bounded
from .options import (add_devices_arguments, add_inference_arguments, add_model_argument, add_units_argument, models, summary_stream)

__all__ = ["add_interpret_commands"]


def _interpret_options(args: argparse.Namespace) -> dict:
    """The options every interpretation command passes on (training units unless ``--standardized``)."""
    return {"target": args.target_name, "standardized": args.standardized, "batch_size": args.batch_size,
            "device": args.device, "precision": args.precision, "progress": not args.no_progress,
            **{name: getattr(args, name) for name in ("devices", "num_nodes") if hasattr(args, name)}}


def cmd_ism(args: argparse.Namespace) -> None:
    """Saturation mutagenesis of every input sequence."""
    from ..interpret.ism import run_ism

    result = run_ism(models(args), args.input, args.out, start=args.start, end=args.end, top=args.top,
                     seq_col=args.seq_col, **_interpret_options(args))
    if result["rank"]:  # another process of --devices N: rank 0 wrote out and says so
        return
    print(f"{args.out}: ISM of {result['sequences']:,} sequences ({result['evaluated']:,} predicted, "
          f"{result['seconds']:.1f} s); {result['npz']}" + (f", {len(result['logos'])} logos" if result["logos"] else ""))


def cmd_attribute(args: argparse.Namespace) -> None:
    """Per-base attributions (captum, or ISM) and a TF-MoDISco export."""
    from ..interpret.attribute import run_attribute

    result = run_attribute(models(args), args.input, args.out, args.method, hypothetical=args.hypothetical,
                           modisco=args.modisco, n_shuffles=args.shuffles, steps=args.steps, seed=args.seed,
                           seq_col=args.seq_col, **_interpret_options(args))
    if result["rank"]:  # another process of --devices N: rank 0 wrote out and says so
        return
    written = ", ".join(str(v) for k, v in result.items() if k.endswith("npz") or k == "modisco_h5" and v)
    print(f"{args.out}: {args.method} attributions of {result['sequences']:,} sequences; {written}")


def cmd_variant_effect(args: argparse.Namespace) -> None:
    """Predicted effects of variants: sequence pairs, every SNV of a sequence, or a VCF on a genome."""
    from ..interpret.variants import run_variant_effect

    result = run_variant_effect(models(args), args.out, pairs=args.pairs, snv_scan=args.snv_scan, vcf=args.vcf,
                                fasta=args.fasta, on_mismatch=args.on_mismatch, seq_col=args.seq_col,
                                **_interpret_options(args))
    if result["rank"]:  # another process of --devices N: rank 0 wrote out and says so
        return
    skipped = ", ".join(f"{k} {v:,}" for k, v in result.get("skipped", {}).items() if v) or "none"
    print(f"{args.out}: {result['rows']:,} variant effects (skipped: {skipped})", file=summary_stream(args.out))


def cmd_design(args: argparse.Namespace) -> None:
    """Edit sequences towards a wanted prediction, by greedy or beam substitution."""
    from ..interpret.design import run_design

    oracle = None if args.oracle is None else args.oracle[0] if len(args.oracle) == 1 else args.oracle
    result = run_design(models(args), args.input, args.out, args.goal, args.max_edits, beam=args.beam,
                        oracle=oracle, seq_col=args.seq_col, **_interpret_options(args))
    line = (f"{args.out}: {result['designs']:,} designs, {result['mean_edits']:.1f} edits on average; mean prediction "
            f"{result['prediction_before']:.4g} -> {result['prediction_after']:.4g} ({result['units']})")
    if result["oracle_before"] is not None:
        line += f"; oracle {result['oracle_before']:.4g} -> {result['oracle_after']:.4g}"
    print(line, file=summary_stream(args.out))


def add_interpret_commands(commands) -> None:
    """ism, attribute, variant-effect and design: a run directory and sequences in, a table or arrays out."""
    def common(parser: argparse.ArgumentParser, devices: bool = True,
               input_help: str | None = "FASTA, one sequence per line, or a table (plain or .gz)") -> None:
        add_model_argument(parser)
        if input_help:
            parser.add_argument("--input", required=True, help=input_help)
        parser.add_argument("--seq-col", help="the sequence column of a table input with a header")
        parser.add_argument("--target-name", help="which target of a multi-target run (default: the first)")
        add_units_argument(parser, "predictions and effects")
        add_inference_arguments(parser, rc_average=False)
        if devices:
            add_devices_arguments(parser)

    ism = commands.add_parser("ism", help="in-silico saturation mutagenesis: the effect of every substitution")
    common(ism)
    ism.add_argument("--out", required=True, help="output folder: ism.npz and logos/")
    ism.add_argument("--start", type=bounded(0, MAX_POSITION - 1), help=f"first input position to mutate (0-based, at most {MAX_POSITION - 1:,}; default: the first seen)")
    ism.add_argument("--end", type=bounded(1, MAX_POSITION), help=f"mutate positions before this one (0-based, exclusive, at most {MAX_POSITION:,}; default: all)")
    ism.add_argument("--top", type=bounded(0, 10_000), default=10, help="logo PNGs for the K sequences with the largest |effect| (0 to 10,000; default: %(default)s; 0: none)")
    ism.set_defaults(func=cmd_ism)

    attribute = commands.add_parser("attribute", help="per-base attributions (saliency, integrated gradients, DeepLIFT/SHAP, ISM)")
    common(attribute)
    attribute.add_argument("--out", required=True, help="output folder: attributions.npz (+ TF-MoDISco inputs)")
    attribute.add_argument("--method", required=True,
                           choices=["saliency", "input_x_gradient", "integrated_gradients", "deep_lift_shap", "ism"])
    attribute.add_argument("--hypothetical", action="store_true",
                           help="also hypothetical contributions, and the TF-MoDISco inputs (modisco_ohe.npz, modisco_hyp.npz)")
    attribute.add_argument("--modisco", action="store_true", help="run TF-MoDISco motif discovery (needs modisco-lite; implies --hypothetical)")
    attribute.add_argument("--shuffles", type=bounded(1, MAX_SHUFFLES), default=20, help=f"deep_lift_shap: dinucleotide-shuffled references per sequence (1 to {MAX_SHUFFLES:,}; default: %(default)s)")
    attribute.add_argument("--steps", type=bounded(1, MAX_STEPS), default=50, help=f"integrated_gradients: steps from the all-N baseline (1 to {MAX_STEPS:,}; default: %(default)s)")
    attribute.add_argument("--seed", type=bounded(0, MAX_SEED), default=0, help=f"seed of the shuffled references (0 to {MAX_SEED:,}; default: %(default)s)")
    attribute.set_defaults(func=cmd_attribute)

    variant = commands.add_parser("variant-effect", help="predicted effect of variants: pairs, every SNV, or a VCF on a genome")
    common(variant, input_help=None)
    source = variant.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="TSV with header id, ref_sequence, alt_sequence")
    source.add_argument("--snv-scan", help="sequence file: every single-nucleotide variant of each sequence")
    source.add_argument("--vcf", help="VCF of variants (genomic models; needs --fasta)")
    variant.add_argument("--fasta", help="genome FASTA for --vcf")
    variant.add_argument("--on-mismatch", choices=["error", "skip"], default="error",
                         help="--vcf: a REF that does not match the genome stops (error) or is skipped and counted")
    variant.add_argument("--out", required=True, help="output TSV (written atomically)")
    variant.set_defaults(func=cmd_variant_effect)

    design = commands.add_parser("design", help="edit sequences towards a wanted prediction (greedy or beam substitution)")
    common(design, devices=False)
    design.add_argument("--target", dest="goal", required=True,
                        help="high, low, or a number to approach (in training units; z-scores with --standardized)")
    design.add_argument("--max-edits", type=bounded(1, MAX_EDITS), required=True, help=f"substitutions per sequence at most (1 to {MAX_EDITS:,})")
    design.add_argument("--beam", type=bounded(1, MAX_BEAM), default=1, help=f"beam width (1 to {MAX_BEAM:,}; 1: greedy; default: %(default)s)")
    design.add_argument("--oracle", action="extend", nargs="+", metavar="RUN_DIR",
                        help="a second, independently trained run (or several: their mean) that scores every design too")
    design.add_argument("--out", required=True, help="output TSV: one row per edit (written atomically)")
    design.set_defaults(func=cmd_design)
