"""The command line's shared options, declared once: the model(s), inference, units, devices,
progress, presets and ``--set``; and what several commands do with them."""

from __future__ import annotations

import argparse
import sys

from ..limits import MAX_BATCH, MAX_DEVICES, bounded

__all__ = ["Parser", "add_devices_arguments", "add_genome_arguments", "add_inference_arguments", "add_model_argument",
           "add_overrides_argument", "add_preset_arguments", "add_progress_argument", "add_units_argument", "genome_mode",
           "models", "summary_stream"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as every other error of the command line (the usage: --help)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_progress_argument(parser: argparse.ArgumentParser, still: str = "errors and results") -> None:
    parser.add_argument("--no-progress", action="store_true", help=f"no progress bar ({still} still print)")


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set dim=256 --set train.lr=5e-4 (repeatable)")


def add_preset_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--preset", required=required,
                        help="named configuration (auto, dream2022, grid, proformer-plus, dream_attn, atac); a run's "
                             "default is auto: the grid model with batch size and epochs scaled to the training rows")
    add_overrides_argument(parser)


def add_units_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--standardized", action="store_true",
                        help=f"{what} as z-scores of the training targets (the model's own output) instead of "
                             f"training units (the default)")


def add_devices_arguments(parser: argparse.ArgumentParser) -> None:
    """Several processes (predict, ism, attribute, variant-effect): each computes its share, rank 0 writes."""
    parser.add_argument("--devices", type=bounded(1, MAX_DEVICES), default=1, help="processes per node (DDP through Lightning: one device each, CPU processes on a CPU; the same output; default: 1, this process)")
    parser.add_argument("--num-nodes", type=bounded(1, MAX_DEVICES), default=1, help="machines, each running --devices processes (default: 1)")


def add_inference_arguments(parser: argparse.ArgumentParser, rc_average: bool = True) -> None:
    """How a model predicts: the options of every command that loads one."""
    parser.add_argument("--batch-size", type=bounded(1, MAX_BATCH), default=256, help=f"sequences per forward pass (1 to {MAX_BATCH:,}; default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    if rc_average:
        parser.add_argument("--rc-average", action=argparse.BooleanOptionalAction, default=None,
                            help="average each sequence's prediction with its reverse complement's (default: the "
                                 "run's data.rc_average)")
    add_progress_argument(parser)


def summary_stream(out) -> object:
    """Where a command's summary line goes: stderr when its output went to standard output."""
    from ..io.atomic import output_target

    return sys.stderr if output_target(out).to_stdout else sys.stdout


def models(args: argparse.Namespace):
    """``--model``: one run directory as given, or the list of several (an ensemble)."""
    from ..io.sources import check_links

    check_links(args.model, "--model")  # a link loop or a dangling link: said so, not "config.json does not exist"
    return args.model[0] if len(args.model) == 1 else args.model


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    # extend + nargs: "--model A --model B" and "--model A B" (a shell glob such as
    # OUT/cells/ID/fold-*) both give the list [A, B].
    parser.add_argument("--model", required=True, action="extend", nargs="+", metavar="RUN_DIR",
                        help="run directory (config.json + weights.safetensors); several (repeat --model, or list them, e.g. "
                             "a shell glob over a sweep's fold-* directories) give the mean of their predictions")


def add_genome_arguments(parser: argparse.ArgumentParser, evaluate: bool = False) -> None:
    """Along a genome (``predict --fasta``, ``evaluate --fasta``): intervals, or regions tiled at a stride."""
    genome = parser.add_argument_group(f"along a genome (instead of {'--data' if evaluate else '--input'}; docs/atac.md)")
    genome.add_argument("--fasta", metavar="GENOME", help="genome FASTA (plain or bgzip; pyfaidx writes a .fai index beside it)")
    if evaluate:
        genome.add_argument("--signal", metavar="BIGWIG", help="the measured signal (bigWig) that --fasta windows are compared with")
    genome.add_argument("--bed", help="intervals (BED; column 4 names them, column 6 gives the strand): one window "
                                      "centred on each, longer ones tiled" + ("" if evaluate else "; the output is a TSV"))
    genome.add_argument("--region", action="append", default=[], metavar="CHROM[:START-END]",
                        help="a region to tile (1-based, inclusive, commas allowed, e.g. chr8:127,700,001-127,900,000; "
                             "repeatable); default: every chromosome" + ("" if evaluate else "; --out .bw/.bigWig or .bedGraph/.bg"))
    genome.add_argument("--chrom", action="append", default=[], metavar="CHROM", help="a whole chromosome to tile (repeatable)")
    genome.add_argument("--stride", type=bounded(1, 10**9), metavar="BP",
                        help="bp between windows (default: the run's target length for regions, the window for long intervals)")
    genome.add_argument("--target", help="the target a track holds (or that is compared), when the run predicts several")
    genome.add_argument("--max-n-frac", type=bounded(0, 1, float), default=0.1,
                        help="windows with more N than this share are left out (0 to 1; default: %(default)s)")


def genome_mode(args: argparse.Namespace, main: str) -> bool:
    """Whether the command works along a genome (``--fasta``), with the options of that mode and
    of the other (``main``: ``--input`` or ``--data``) checked not to mix. One line for each mistake."""
    flags = {"--bed": args.bed, "--region": args.region, "--chrom": args.chrom, "--stride": args.stride, "--target": args.target,
             "--signal": getattr(args, "signal", None)}
    given = [flag for flag, value in flags.items() if value]
    if args.fasta is None:
        if given:
            raise ValueError(f"{given[0]} works along a genome: give --fasta GENOME (and not {main})")
        if getattr(args, main[2:]) is None:
            raise ValueError(f"give {main}, or --fasta GENOME to work along a genome")
        return False
    if getattr(args, main[2:]) is not None:
        raise ValueError(f"give {main} or --fasta, not both")
    if args.bed and (args.region or args.chrom):
        raise ValueError("give --bed (intervals) or --region/--chrom (tiled regions), not both")
    if hasattr(args, "signal") and args.signal is None:
        raise ValueError("--fasta needs --signal BIGWIG: the measured signal the windows are compared with")
    return True
