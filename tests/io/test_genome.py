"""Tests of :mod:`proformer.io.genome`."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    TINY_RUN_LENGTH,
    one_line,
    random_dna,
    tiny_run_info,
)

from proformer.cli import main

WIDTH = TINY_RUN_LENGTH  # the genomic run: no flanks, 20 positions


@pytest.fixture
def genome(tmp_path) -> dict:
    """A 200-nt chr1, a genomic run (no flanks) and a VCF of one SNV in the middle."""
    pytest.importorskip("pyfaidx")
    import torch

    from proformer.io.run import write_run_model
    from proformer.model import Proformer
    from proformer.sequence import Layout

    chr1 = random_dna(np.random.default_rng(4), 1, 200)[0]
    text = ">chr1\n" + "".join(chr1[i : i + 60] + "\n" for i in range(0, 200, 60))
    fasta = tmp_path / "genome.fa"
    fasta.write_text(text)
    vcf = tmp_path / "variants.vcf"
    alt = "ACGT"[("ACGT".index(chr1[99]) + 1) % 4]
    vcf.write_text(f"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchr1\t100\tsnv\t{chr1[99]}\t{alt}\n")
    info = dataclasses.replace(tiny_run_info(), layout=Layout(head=0, tail=0, length=WIDTH))
    torch.manual_seed(5)
    run = tmp_path / "genomic_run"
    run.mkdir()
    write_run_model(run, Proformer(info.model).state_dict(), info)
    return {"fasta": fasta, "text": text, "vcf": vcf, "run": run}


def variant_effect(genome: dict, fasta: Path, out: Path) -> int:
    return main(["variant-effect", "--model", str(genome["run"]), "--vcf", str(genome["vcf"]), "--fasta", str(fasta),
                 "--out", str(out), "--device", "cpu", "--no-progress"])


def test_a_plain_gzip_genome_says_bgzip_it_or_decompress_it(genome, tmp_path, capsys):
    """Old code: pyfaidx's or Biopython's own message about compression."""
    plain_gzip = tmp_path / "genome.fa.gz"
    plain_gzip.write_bytes(gzip.compress(genome["text"].encode()))
    assert variant_effect(genome, plain_gzip, tmp_path / "effects.tsv") == 2
    err = one_line(capsys)
    assert "not with bgzip" in err and "bgzip it" in err and "decompress it" in err and str(plain_gzip) in err, err
    assert not (tmp_path / "effects.tsv").exists()


def test_bgzip_is_told_apart_from_plain_gzip(genome, tmp_path):
    pysam = pytest.importorskip("pysam")
    from proformer.io.genome import is_bgzip

    pysam.tabix_compress(str(genome["fasta"]), str(tmp_path / "genome.fa.bgz"))
    assert is_bgzip((tmp_path / "genome.fa.bgz").read_bytes()[:64])
    assert not is_bgzip(gzip.compress(b">chr1\nACGT\n"))
    assert not is_bgzip(b">chr1\nACGT\n")


def test_an_index_older_than_its_fasta_is_rebuilt_and_said_so(genome, tmp_path, capsys):
    """An index of another genome left beside the FASTA: one line saying the .fai is older than the
    FASTA and is rebuilt, then the right sequence. Old code: nothing said (pyfaidx rebuilt silently)."""
    import pyfaidx

    fasta = genome["fasta"]
    stale = tmp_path / "stale.fa"
    stale.write_text(">chr1\n" + "A" * 30 + "\n")
    pyfaidx.Fasta(str(stale)).close()
    os.replace(tmp_path / "stale.fa.fai", tmp_path / "genome.fa.fai")  # the index of another, shorter genome
    when = fasta.stat().st_mtime
    os.utime(tmp_path / "genome.fa.fai", (when - 100, when - 100))
    assert variant_effect(genome, fasta, tmp_path / "effects.tsv") == 0
    err = one_line(capsys)
    assert "genome.fa.fai" in err and "older than" in err and "rebuild" in err, err
    assert (tmp_path / "genome.fa.fai").stat().st_mtime >= when
    assert "chr1\t200\t" in (tmp_path / "genome.fa.fai").read_text()
    # Now current: used without a word.
    assert variant_effect(genome, fasta, tmp_path / "effects2.tsv") == 0
    assert capsys.readouterr().err == ""
