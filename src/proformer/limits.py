"""Bounds on the numeric options, and the memory check made before long work starts.

One home for the limits that the command line (an argparse type, :func:`bounded`) and the
Python API (:func:`whole`) both enforce, so that ``proformer attribute --steps 1000000`` and
``attribute(..., steps=1_000_000)`` stop at once with one line naming the option and its limit
instead of failing deep inside numpy or captum. Where a product of options decides the memory
(the references of DeepLIFT/SHAP, the candidates of a beam search), the function estimates the
bytes before it starts and :func:`check_memory` refuses an estimate larger than the machine's
memory, saying what would be needed, what there is and what to lower. The standard library only.
"""

from __future__ import annotations

import argparse
import numbers
import os

__all__ = ["MAX_BATCH", "MAX_BEAM", "MAX_DEVICES", "MAX_EDITS", "MAX_POSITION", "MAX_SEED", "MAX_SHUFFLES", "MAX_STEPS",
           "NotEnoughMemory", "bounded", "check_memory", "physical_memory", "size_text", "whole"]

#: Sequences per forward pass: far beyond what a GPU holds for any model here.
MAX_BATCH = 65_536
#: Integrated-gradients steps: Gauss-Legendre quadrature has converged long before (captum's
#: default is 50), and its node computation alone grows with steps squared (memory) and cubed (time).
MAX_STEPS = 1_000
#: Dinucleotide-shuffled references per sequence for DeepLIFT/SHAP (BPNet uses 20 to 100).
MAX_SHUFFLES = 1_000
#: Design: substitutions per sequence, and the beam width (each step predicts 3 x width
#: substitutions of every candidate in the beam).
MAX_EDITS = 1_000
MAX_BEAM = 1_000
#: 0-based sequence positions (ism --start/--end): longer than any model window here.
MAX_POSITION = 10_000_000
#: Processes per node, and nodes, of a prediction on several processes (predict --devices, --num-nodes).
MAX_DEVICES = 4_096
#: Seeds: numpy, torch and Lightning all take 0 .. 2**31 - 1.
MAX_SEED = 2**31 - 1


class NotEnoughMemory(ValueError):
    """The work asked for would need more memory than the machine has."""


def bounded(lo: float, hi: float, kind: type = int, above: bool = False):
    """An argparse ``type``: a whole number (``kind=int``) or a number (``kind=float``) from ``lo``
    to ``hi`` inclusive (``above``: greater than ``lo``). argparse puts the flag before the error:
    ``argument --steps: 1000000 is more than 1,000, the limit``."""
    what = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value:  # NaN
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        if value < lo or (above and value == lo):
            limit = f"must be more than {lo:,}" if above else f"is below the limit, {lo:,}"
            raise argparse.ArgumentTypeError(f"{text} {limit}")
        if value > hi:
            raise argparse.ArgumentTypeError(f"{text} is above the limit, {hi:,}")
        return value

    parse.__name__ = what  # argparse's fallback message names the type
    return parse


def whole(name: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int, or a ValueError naming ``name`` and the limits (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo or (hi is not None and value > hi):
        limits = f"at least {lo:,}" if hi is None else f"from {lo:,} to {hi:,}"
        raise ValueError(f"{name}={value!r}: give a whole number, {limits}")
    return int(value)


def physical_memory() -> int | None:
    """Bytes of memory the machine has (psutil where installed, else sysconf), or None where unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or the name unknown
        return None
    return int(total) if total > 0 else None


def size_text(n_bytes: float) -> str:
    """Bytes for a person: ``"1,536 bytes"`` up to 1 MiB, then ``"133.0 MiB"``, ``"11.6 GiB"``."""
    if n_bytes < 2**20:
        return f"{n_bytes:,.0f} bytes"
    return f"{n_bytes / 2**20:,.1f} MiB" if n_bytes < 2**30 else f"{n_bytes / 2**30:,.1f} GiB"


def check_memory(need: float, what: str, lower: str) -> None:
    """Raise :class:`NotEnoughMemory` when ``need`` bytes exceed the machine's memory: one line
    with ``what`` would need it, what the machine has and what to ``lower``."""
    have = physical_memory()
    if have is not None and need > have:
        raise NotEnoughMemory(f"{what} would need about {size_text(need)} of memory, more than this machine has "
                              f"({size_text(have)}); lower {lower}")
