"""Tests of proformer.io.errors: the exception and the pieces of input-error messages."""

import pytest

from proformer.io.errors import InputError, first_invalid, invalid_message, show_value
from proformer.sequence import GENOME_CODES


def test_input_error_is_a_value_error():
    """Callers that catch ValueError also catch a bad input."""
    with pytest.raises(ValueError, match="data.tsv:3"):
        raise InputError("data.tsv:3: bad")


def test_show_value_short_is_repr_long_is_cut_in_the_middle_to_the_limit():
    """Up to ``limit`` characters: the repr; longer: head, ' ... ', the last 20, ``limit`` in all."""
    assert show_value("ACGT") == "'ACGT'"
    assert show_value("x" * 80) == repr("x" * 80)
    long = "A" * 30 + "G" * 70 + "T" * 20
    shown = show_value(long)
    assert len(shown) == 80 + 2  # the quotes of the repr
    assert shown.startswith("'" + "A" * 30) and shown.endswith("T" * 20 + "'")
    assert " ... " in shown
    assert len(show_value(long, limit=40)) == 40 + 2


def test_show_value_decodes_bytes_replacing_invalid_utf8():
    """Bytes are shown as text (not b'...'); undecodable bytes become U+FFFD."""
    assert show_value(b"ACGT") == "'ACGT'"
    assert show_value(b"\xffAC") == repr("\ufffdAC")


def test_first_invalid_position_or_none():
    """0-based position of the first symbol outside A C G T N (either case); M is refused."""
    assert first_invalid(b"acgtnACGTN") is None
    assert first_invalid(b"") is None
    assert first_invalid(b"ACGM") == 3
    assert first_invalid(b"AC-X") == 2


def test_first_invalid_with_another_table():
    """The genome table accepts IUPAC codes that the input table refuses."""
    assert first_invalid(b"ACGR") == 3
    assert first_invalid(b"ACGR", GENOME_CODES) is None


def test_invalid_message_names_symbol_1_based_position_and_context():
    """Position is 1-based; the context is 10 symbols either side; ``where`` follows the position."""
    sequence = b"A" * 30 + b"X" + b"C" * 30
    message = invalid_message(sequence, 30, where=" of line 3", allowed="A C G T")
    assert "invalid symbol 'X' at position 31 of line 3" in message
    assert "allowed: A C G T," in message
    assert message.endswith(repr("A" * 10 + "X" + "C" * 10))


def test_invalid_message_shows_a_whole_non_ascii_character():
    """A multi-byte UTF-8 symbol is named whole, not by its first byte."""
    sequence = "ACGTé".encode()
    position = first_invalid(sequence)
    assert position == 4
    assert "invalid symbol 'é' at position 5" in invalid_message(sequence, position)
