"""Tests of :mod:`proformer.io.fasta`."""

from __future__ import annotations

import pytest
from helpers import run_prepare, write_prepare

from proformer.data.prepare import InputError


def test_fasta_invalid_symbol_names_its_line(tmp_path):
    path = write_prepare(tmp_path / "x.fa", ">a 1\nACGT\nACXT\n")
    with pytest.raises(InputError, match=r"x\.fa:3: invalid symbol 'X' at position 7 \(line 3, column 3\)"):
        run_prepare(path, tmp_path / "ds")
