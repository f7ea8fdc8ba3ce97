"""How a bad input is reported: :class:`InputError` and the pieces of its messages.

Every reader of a user's file raises :class:`InputError` (a ``ValueError``) with a message of the
form ``file:line: what is wrong: the value. What to do``; :func:`show_value` writes the value,
:func:`first_invalid` and :func:`invalid_message` name a symbol outside the alphabet. numpy and
the standard library only.
"""

from __future__ import annotations

import numpy as np

from ..sequence import INPUT_CODES, INVALID

__all__ = ["InputError", "show_value", "first_invalid", "invalid_message"]


class InputError(ValueError):
    """An input file cannot be read as asked; the message names ``file:line`` and the value."""


def show_value(value: bytes | str, limit: int = 80) -> str:
    """A value for a message: repr, shortened in the middle when long."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if len(value) > limit:
        value = value[: limit - 25] + " ... " + value[-20:]
    return repr(value)


def first_invalid(sequence: bytes, table: np.ndarray = INPUT_CODES) -> int | None:
    """0-based position of the first symbol outside ``table`` (default ACGTN), or None."""
    codes = table[np.frombuffer(sequence, dtype=np.uint8)]
    bad = np.flatnonzero(codes == INVALID)
    return int(bad[0]) if bad.size else None


def invalid_message(sequence: bytes, position: int, where: str = "", allowed: str = "A C G T N") -> str:
    # The whole character (a non-ASCII one takes several bytes), not its first byte.
    char = sequence[position : position + 4].decode("utf-8", errors="replace")[:1]
    context = sequence[max(0, position - 10) : position + 11]
    return (
        f"invalid symbol {char!r} at position {position + 1}{where} of the sequence (allowed: "
        f"{allowed}, either case): {show_value(context)}"
    )
