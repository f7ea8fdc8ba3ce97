"""The ``proformer`` command line: argument parsing only, every command calls the Python API.

Heavy modules (torch, lightning, matplotlib) are imported inside the command functions so
that ``proformer --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys


def _add_preset_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--preset", default=default, required=default is None,
                        help="named configuration (dream2022, grid)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field, e.g. --set dim=256 --set readout=pool (repeatable)")


def _model_config(args: argparse.Namespace):
    from .config import apply_overrides
    from .model.config import model_preset

    return apply_overrides(model_preset(args.preset), args.overrides)


def cmd_model(args: argparse.Namespace) -> None:
    """Print the architecture summary with per-module and total parameter counts."""
    from .model import Proformer, parameter_counts

    config = _model_config(args)
    model = Proformer(config)
    fields = ", ".join(f"{k}={v}" for k, v in config.to_dict().items())
    print(f"Proformer (preset {args.preset}): {fields}")
    print(f"tokens: {config.n_heads_readout} expression heads + {2 * config.length} sequence positions; "
          f"attention key_dim {config.key_dim}")
    rows = parameter_counts(model)
    width = max(len(name) for name, _ in rows) + 2
    print(f"{'module':<{width}}{'parameters':>14}")
    for name, count in rows:
        indent = "  " if name.count(".") > 1 else ""
        if name == "total":
            print("-" * (width + 14))
        print(f"{indent + name:<{width}}{count:>14,}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proformer",
        description="Proformer: predict a number (expression, accessibility) from a short DNA sequence.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"proformer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    model = commands.add_parser("model", help="print a model's architecture and parameter counts")
    _add_preset_arguments(model)
    model.set_defaults(func=cmd_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"proformer {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
