"""Tests of :mod:`proformer.io.track`: bigWig and bedGraph by suffix, under the output rule."""

from __future__ import annotations

import numpy as np
import pytest

from proformer.io.track import track_format, write_track

pyBigWig = pytest.importorskip("pyBigWig")

CHROMS = [("chr1", 1_000), ("chr2", 500)]


@pytest.mark.parametrize("name, kind", [("a.bw", "bigwig"), ("a.bigWig", "bigwig"), ("a.bedGraph", "bedgraph"),
                                        ("a.BG", "bedgraph")])
def test_the_suffix_picks_the_format(name, kind):
    assert track_format(name) == kind


def test_another_suffix_is_refused_naming_the_ones_taken():
    with pytest.raises(ValueError, match=r"\.bw.*\.bedGraph"):
        track_format("a.wig")


def test_a_bigwig_lists_every_chromosome_and_holds_float32_values(tmp_path):
    values = np.array([0.1, 1 / 3, 2.5])
    with write_track(tmp_path / "t.bw", CHROMS) as track:
        track.add("chr1", np.array([10, 20, 40]), np.array([20, 30, 60]), values)
        track.add("chr2", np.array([0]), np.array([5]), np.array([7.0]))
    with pyBigWig.open(str(tmp_path / "t.bw")) as bw:
        assert bw.chroms() == dict(CHROMS)
        assert bw.intervals("chr1") == tuple((s, e, float(np.float32(v))) for s, e, v in zip([10, 20, 40], [20, 30, 60], values))


def test_a_bedgraph_gives_back_the_same_float32(tmp_path):
    values = np.array([1 / 3, 1e-7, 12345.678])
    with write_track(tmp_path / "t.bedGraph", CHROMS) as track:
        track.add("chr1", np.array([0, 1, 2]), np.array([1, 2, 3]), values)
    lines = (tmp_path / "t.bedGraph").read_text().splitlines()
    assert [line.split("\t")[:3] for line in lines] == [["chr1", "0", "1"], ["chr1", "1", "2"], ["chr1", "2", "3"]]
    assert np.array([float(line.split("\t")[3]) for line in lines], dtype=np.float32).tolist() == values.astype(np.float32).tolist()


@pytest.mark.parametrize("name", ["t.bw", "t.bedGraph"])
def test_a_failure_while_writing_leaves_the_existing_track(tmp_path, name):
    (tmp_path / name).write_bytes(b"old track")
    with pytest.raises(RuntimeError, match="stopped"):
        with write_track(tmp_path / name, CHROMS) as track:
            track.add("chr1", np.array([0]), np.array([1]), np.array([1.0]))
            raise RuntimeError("stopped")
    assert (tmp_path / name).read_bytes() == b"old track" and [p.name for p in tmp_path.iterdir()] == [name]
