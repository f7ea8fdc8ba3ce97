"""Tests of :mod:`proformer.data.genome_sim`."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    LENGTHS,
    SUMMITS,
    _narrowpeak_lines,
    run,
)

from proformer.data.atac import InputError
from proformer.data.genome_sim import write_bigwig

pyBigWig = pytest.importorskip("pyBigWig")
pysam = pytest.importorskip("pysam")
pytest.importorskip("pyfaidx")


def test_chromosome_name_mismatch_lists_examples(inputs, tmp_path):
    peaks = tmp_path / "renamed.narrowPeak"
    peaks.write_text(_narrowpeak_lines(SUMMITS, names={"chr1": "1", "chr2": "2", "chr3": "3"}))
    with pytest.raises(InputError) as error:
        run(inputs, tmp_path / "out", peaks=peaks)
    message = str(error.value)
    assert "not in the FASTA" in message and "1, 2, 3" in message and "chr1, chr2, chr3" in message
    assert "'chr' prefix" in message

    bw_path = tmp_path / "other.bw"
    write_bigwig(bw_path, {"chrX": np.ones(1_000)})
    with pytest.raises(InputError, match=r"not in the signal .*other.bw: chr1, chr2, chr3.*chrX"):
        run(inputs, tmp_path / "out", signal=bw_path)

    lengths = tmp_path / "lengths.bw"
    write_bigwig(lengths, {name: np.ones(length + 10) for name, length in LENGTHS.items()})
    with pytest.raises(InputError, match="different genome builds"):
        run(inputs, tmp_path / "out", signal=lengths)

    blacklist = tmp_path / "bl.bed"
    blacklist.write_text("1\t0\t100\n")
    with pytest.raises(InputError, match="chromosomes of the blacklist are not in the FASTA"):
        run(inputs, tmp_path / "out", blacklist=blacklist)
