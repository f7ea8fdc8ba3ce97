"""Tests of :mod:`proformer.io.signal`."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import LENGTHS, _write_bam

from proformer.io.signal import BamInsertions, tn5_insertions

pyBigWig = pytest.importorskip("pyBigWig")
pysam = pytest.importorskip("pysam")
pytest.importorskip("pyfaidx")


def test_tn5_shift_on_hand_made_reads(tmp_path):
    reads = [
        ("chr1", 100, 30, 0),  # + strand: insertion 100 + 4 = 104
        ("chr1", 200, 30, 16),  # - strand: reference_end 230, insertion 230 - 1 - 5 = 224
        ("chr1", 300, 36, 16 | 1 | 2 | 64),  # paired, first mate, - strand: 336 - 6 = 330
        ("chr1", 400, 30, 256),  # secondary: skipped
        ("chr1", 410, 30, 1024),  # duplicate: skipped
        ("chr1", 420, 30, 512),  # QC fail: skipped
        ("chr1", 430, 30, 2048),  # supplementary: skipped
        ("chr1", 440, 30, 4),  # unmapped (placed): skipped
        ("chr1", 0, 30, 16),  # - strand at the chromosome start: insertion 24
        ("chr1", 19_990, 10, 0),  # + strand: insertion 19,994
    ]
    path = tmp_path / "reads.bam"
    _write_bam(path, reads)
    source = BamInsertions(path, str(path))
    counts = source.chromosome("chr1", LENGTHS["chr1"])
    source.close()
    assert np.flatnonzero(counts).tolist() == [24, 104, 224, 330, 19_994]
    assert counts.dtype == np.float32 and counts.sum() == 5
    assert tn5_insertions(np.array([100, 200]), np.array([130, 230]), np.array([False, True])).tolist() == [104, 224]
