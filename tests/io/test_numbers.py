"""Tests of :mod:`proformer.io.numbers`."""

from __future__ import annotations


def test_plain_numbers_still_read_in_bulk_and_one_by_one():
    from proformer.io.numbers import parse_number, parse_numbers

    texts = [b"12", b" 1.5 ", b"-1.25e-1", b"+.5", b"5.", b"1E3", b"nan", b"-inf"]
    values, bad = parse_numbers(texts)
    assert values[:6].tolist() == [12.0, 1.5, -0.125, 0.5, 5.0, 1000.0]
    assert bad.tolist() == [False] * 6 + [True, True]
    for text in (b"1_000", "\uff11", b"0x10", b"1d5", b"--1", b"", b"."):
        assert parse_number(text) is None, text
