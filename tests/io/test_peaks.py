"""Tests of :mod:`proformer.io.peaks`."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers import (
    SUMMITS,
)

from proformer.data.atac import InputError
from proformer.io.peaks import merge_intervals, overlaps, read_intervals, read_peaks

pyBigWig = pytest.importorskip("pyBigWig")
pysam = pytest.importorskip("pysam")
pytest.importorskip("pyfaidx")


def test_peak_formats_and_summit_rules(inputs):
    narrow = read_peaks(inputs["peaks"])
    assert narrow.format == "narrowpeak"
    assert [narrow.names[c] for c in narrow.chrom] == [c for c, _ in SUMMITS]
    assert narrow.summit.tolist() == [s for _, s in SUMMITS]
    assert narrow.line.tolist() == list(range(2, 12))  # line 1 is the track line
    bed = read_peaks(inputs["bed"])  # gzip, 1-bp records and a 20-bp interval
    assert bed.format == "bed" and bed.summit.tolist() == [s for _, s in SUMMITS]


@pytest.mark.parametrize(
    "line, message",
    [
        ("chr1\tabc\t2100\tp\t1\t.\t1\t-1\t-1\t50\n", r"peaks.narrowPeak:3: start \(column 2\) is not an integer: 'abc'"),
        ("chr1\t2000\t2100\tp\t1\t.\t1\t-1\t-1\t100\n", r"peaks.narrowPeak:3: summit offset \(column 10\) 100 is outside the peak \[2000, 2100\)"),
        ("chr1\t2000\t2100\tp\t1\n", r"peaks.narrowPeak:3: a narrowPeak line has 10 columns, this one has 5"),
        ("chr1\t2100\t2000\tp\t1\t.\t1\t-1\t-1\t5\n", r"peaks.narrowPeak:3: need 0 <= start <= end"),
    ],
)
def test_bad_narrowpeak_line_names_file_and_line(tmp_path, line, message):
    good = "chr1\t1000\t1200\tp\t1\t.\t1\t-1\t-1\t100\n"
    path = tmp_path / "peaks.narrowPeak"
    path.write_text("# header\n" + good + line)
    with pytest.raises(InputError, match=message):
        read_peaks(path)


def test_blacklist_merge_and_overlap():
    starts, ends = merge_intervals(np.array([[50, 60], [10, 20], [15, 30], [30, 35], [40, 41]]))
    assert starts.tolist() == [10, 40, 50] and ends.tolist() == [35, 41, 60]
    start = np.array([0, 0, 35, 35, 41, 60, 59, 100])
    end = np.array([10, 11, 40, 41, 50, 70, 60, 200])
    assert overlaps((starts, ends), start, end).tolist() == [False, True, False, True, False, False, True, False]


def test_intervals_keep_file_order_names_and_strands(tmp_path):
    path = tmp_path / "r.bed.gz"
    path.write_bytes(gzip.compress(b"track name=x\nchr2\t10\t20\tb\t0\t-\nchr1\t5\t6\nchr1\t7\t9\t.\t0\t.\n"))
    intervals = read_intervals(path)
    assert intervals.chrom == ["chr2", "chr1", "chr1"]
    assert intervals.start.tolist() == [10, 5, 7] and intervals.end.tolist() == [20, 6, 9]
    assert intervals.name == ["b", "chr1:5-6", "chr1:7-9"]  # no name, or ".": chrom:start-end
    assert intervals.strand == ["-", ".", "."]
    assert intervals.where(1) == f"{path}:3"


def test_the_windows_table_of_atac_prepare_reads_as_intervals(tmp_path):
    path = tmp_path / "windows.tsv"
    path.write_text("chrom\tstart\tend\tsummit\ttarget\nchr1\t100\t200\t150\t0.5\n")
    intervals = read_intervals(path)
    assert len(intervals) == 1 and intervals.start.tolist() == [100] and intervals.line.tolist() == [2]
    assert intervals.name == ["chr1:100-200"]  # column 4 is the summit there, not a name


@pytest.mark.parametrize("text, words", [
    ("chr1\t10\t20\nchr1\t20\t20\n", ["r.bed:2", "end (20) <= start (20)"]),
    ("chr1\t10\t20\tn\t0\tx\n", ["r.bed:1", "strand", "'x'"]),
    ("chr1\tstart\tend\nchr1\tten\t20\n", ["r.bed:2", "not an integer", "'ten'"]),
    ("# nothing\n", ["no intervals"]),
    ("chr1\t0\t99999999999999999999\n", ["r.bed:1", "past any chromosome"]),
])
def test_a_bad_interval_names_file_and_line(tmp_path, text, words):
    (tmp_path / "r.bed").write_text(text)
    with pytest.raises(InputError) as error:
        read_intervals(tmp_path / "r.bed")
    assert all(word in str(error.value) for word in words), error.value
