"""Tests of proformer.data.atac_windows: drawing, filtering and gathering candidate windows,
on an in-memory genome and signal (tests/data/test_atac.py runs the whole of prepare_atac).

With ``flank = window / 2`` a summit has one window, ``[summit - flank, summit + flank)``, so
each candidate's fate follows from its summit alone, whatever the draw.
"""

import numpy as np
import pytest

from proformer.data.atac_windows import (
    MAX_ROUNDS,
    OK,
    REASONS,
    Options,
    count_dropped,
    counts_text,
    draw_until,
)
from proformer.io.errors import InputError
from proformer.io.peaks import Peaks
from proformer.sequence import GENOME_CODES

OFF, BLACKLIST, TOO_MANY_N, MISSING = range(1, 5)


class Chromosomes:
    """What draw_until reads of a genome and a signal: ``chromosome(name[, length])``, ``display``."""

    def __init__(self, display, arrays):
        self.display, self.arrays = display, arrays

    def chromosome(self, name, length=None):
        return self.arrays[name]


def genome_text() -> dict[str, bytes]:
    """chr1: 200 nt, soft-masked with an IUPAC R at 56..64; chr2: 60 nt, Ns at 28..39."""
    chr1 = bytearray(b"ACGT" * 50)
    chr1[56:64] = b"acgRacgt"
    chr2 = bytearray(b"TTGCA" * 12)
    chr2[28:40] = b"N" * 12
    return {"chr1": bytes(chr1), "chr2": bytes(chr2)}


#: (chromosome index, summit, reason with missing="skip") for window 10, flank 5.
SUMMITS = [
    (0, 20, OK),
    (0, 3, OFF),  # starts at -2
    (0, 197, OFF),  # ends past 200
    (0, 100, BLACKLIST),  # [95, 105) meets the blacklisted [104, 110)
    (0, 150, MISSING),  # NaN signal at 150, in the centre [148, 152)
    (1, 30, TOO_MANY_N),  # also NaN signal: the N filter comes first
    (0, 60, OK),  # soft-masked and IUPAC: kept
]


def inputs(summits=SUMMITS, genome=None):
    """``(peaks, lengths, blacklist, genome, signal)`` as prepare_atac passes them."""
    text = genome or genome_text()
    peaks = Peaks(names=["chr1", "chr2"], chrom=np.array([c for c, _, _ in summits], dtype=np.int32),
                  summit=np.array([s for _, s, _ in summits], dtype=np.int64),
                  line=np.arange(1, len(summits) + 1), format="bed", sha256="", display="peaks.bed")
    lengths = np.array([len(text["chr1"]), len(text["chr2"])], dtype=np.int64)
    blacklist = {0: (np.array([104]), np.array([110]))}
    arrays = {name: np.frombuffer(sequence, dtype=np.uint8) for name, sequence in text.items()}
    signal = {"chr1": np.arange(200, dtype=np.float32), "chr2": np.zeros(60, dtype=np.float32)}
    signal["chr1"][150] = signal["chr2"][30] = np.nan
    return peaks, lengths, blacklist, Chromosomes("genome.fa", arrays), Chromosomes("signal.bw", signal)


def options(**changes) -> Options:
    settings = {"window": 10, "flank": 5, "center": 4, "max_n_frac": 0.5, "missing": "skip", "transform": "log1p"}
    return Options(**{**settings, **changes})


def draw(n, seed=0, summits=SUMMITS, **changes):
    return draw_until(n, np.random.default_rng(seed), *inputs(summits), options(**changes), progress=False)


def test_center_offset_starts_the_central_region():
    assert options().center_offset == 3
    assert options(window=11).center_offset == 3
    assert options(center=10).center_offset == 0


def test_each_filter_drops_the_window_it_should():
    """Reasons in filter order; the stream stops at the n-th kept candidate."""
    stream, rounds = draw(20)
    assert rounds == 1
    expected = {summit: reason for _, summit, reason in SUMMITS}
    assert [int(r) for r in stream.reason] == [expected[int(s)] for s in stream.summit]
    assert (stream.reason == OK).sum() == 20 and stream.reason[-1] == OK
    np.testing.assert_array_equal(stream.start, stream.summit - 5)
    assert set(np.unique(stream.reason).tolist()) == {OK, OFF, BLACKLIST, MISSING, TOO_MANY_N}


def test_kept_windows_hold_their_codes_and_central_mean():
    """Codes of the genome (lower case as upper, IUPAC as N); target the mean signal of the centre."""
    stream, _ = draw(10)
    text = genome_text()["chr1"]
    for row in np.flatnonzero(stream.reason == OK):
        start = int(stream.start[row])
        window = np.frombuffer(text[start : start + 10], dtype=np.uint8)
        np.testing.assert_array_equal(stream.codes[row], GENOME_CODES[window])
        assert stream.target[row] == np.mean(np.arange(start + 3, start + 7))
    masked = stream.codes[np.flatnonzero(stream.summit == 60)[0]]
    assert masked.tolist() == [3, 0, 1, 2, 4, 0, 1, 2, 3, 0]  # T acgRacgt A and stream.target.dtype == np.float64


def test_missing_zero_keeps_the_window_and_counts_no_data_as_zero():
    stream, _ = draw(10, missing="zero")
    rows = np.flatnonzero(stream.summit == 150)
    assert rows.size and (stream.reason[rows] == OK).all()
    np.testing.assert_array_equal(stream.target[rows], (148 + 149 + 0 + 151) / 4)
    assert (stream.reason[stream.summit == 30] == TOO_MANY_N).all()


def test_max_n_frac_bounds_the_share_of_n():
    """The chr2 window holds 7 N of 10: kept at max_n_frac 0.7, dropped below it."""
    kept, _ = draw(5, summits=[(1, 30, OK)], max_n_frac=0.7, missing="zero")
    assert (kept.reason == OK).all()
    with pytest.raises(InputError, match="too_many_n"):
        draw(5, summits=[(1, 30, OK)], max_n_frac=0.69, missing="zero")


def test_the_stream_is_reproducible_from_the_seed():
    one, two = draw(30, seed=3), draw(30, seed=3)
    np.testing.assert_array_equal(one[0].summit, two[0].summit)
    assert not np.array_equal(one[0].summit[:20], draw(30, seed=4)[0].summit[:20])


def test_more_rounds_when_the_first_falls_short():
    """A low keep rate takes more rounds; the n-th kept candidate still ends the stream."""
    stream, rounds = draw(300)
    assert 1 < rounds <= MAX_ROUNDS
    assert (stream.reason == OK).sum() == 300 and stream.reason[-1] == OK


def test_no_window_passes_is_an_error_naming_the_counts():
    """A round that keeps none ends the drawing: the error gives kept, drawn and drops by reason."""
    with pytest.raises(InputError, match=r"peaks\.bed: only 0 of 66 candidate windows passed the filters after "
                                         r"1 round\(s\) \(dropped: off_chromosome 66\), fewer than n=1"):
        draw(1, summits=[(0, 3, OFF), (0, 197, OFF)])


def test_a_byte_that_is_no_nucleotide_names_its_position():
    text = genome_text()
    text["chr1"] = text["chr1"][:70] + b"-" + text["chr1"][71:]
    with pytest.raises(InputError, match=r"genome\.fa: chr1:70 \(0-based\) holds '-', not a nucleotide"):
        draw_until(1, np.random.default_rng(0), *inputs([(0, 72, OK)], text), options(), progress=False)


def test_progress_lines_name_chromosomes_and_rounds(capsys):
    draw_until(3, np.random.default_rng(0), *inputs(), options(), progress=True)
    err = capsys.readouterr().err
    assert "prepare-atac: chr1: " in err and "prepare-atac: chr2: " in err
    assert "prepare-atac: round 1: 68 candidates" in err and "(3 of 3 kept)" in err


def test_count_dropped_and_counts_text():
    """Counts per reason in REASONS order (OK not counted); the text lists only nonzero ones."""
    dropped = count_dropped(np.array([OK, BLACKLIST, BLACKLIST, MISSING, OK], dtype=np.uint8))
    assert list(dropped) == list(REASONS)
    assert dropped == {"off_chromosome": 0, "blacklist": 2, "too_many_n": 0, "missing_signal": 1}
    assert counts_text(dropped) == "blacklist 2, missing_signal 1"
    assert counts_text(count_dropped(np.array([OK], dtype=np.uint8))) == "none"
    assert counts_text({"blacklist": 12_345}) == "blacklist 12,345"
