"""Tests of :mod:`proformer.io.vcf`."""

from __future__ import annotations

import pytest

from proformer.io.errors import InputError
from proformer.io.vcf import read_vcf


def test_vcf_reader_multi_allelic_and_symbolic(genome_files):
    _, vcf, _ = genome_files
    variants = read_vcf(vcf)
    assert len(variants) == 9
    assert [v.id for v in variants[3:5]] == ["multi", "multi"] and variants[3].alt != variants[4].alt
    assert variants[3].where == variants[4].where == f"{vcf}:6"
    assert [v.symbolic for v in variants].count(True) == 1 and variants[5].alt == "<DEL>"
    assert variants[2].name == f"chr1:120:{variants[2].ref}:{variants[2].alt}"


@pytest.mark.parametrize("line, message", [
    ("chr1\t0\tx\tA\tC", r":2: POS '0' is not a whole number >= 1"),
    ("chr1 5 x A C", r":2: expected at least 5 tab-separated columns"),
    ("chr1\t5\tx\tA\tC,", r":2: an empty ALT allele"),
    ("chr1\t5\tx\tAZ\tC", r":2: REF 'AZ' holds 'Z'"),
])
def test_vcf_reader_errors_name_the_line(tmp_path, line, message):
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(f"#CHROM\tPOS\tID\tREF\tALT\n{line}\n")
    with pytest.raises(InputError, match=rf"{vcf}{message}"):
        read_vcf(vcf)
