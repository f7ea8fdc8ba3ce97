"""Window placement on a genome (proformer.tracks.windows), checked against brute-force enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from proformer.io.errors import InputError
from proformer.tracks.windows import Placement, Region, centred_windows, parse_region, tile, tiled_count

ATAC = Placement(window=100, target=(40, 60))  # the ATAC recipe: 100-bp windows, central 20 bp


def brute_force(region: Region, length: int, placement: Placement, stride: int) -> list[tuple[int, int, int]]:
    """Every window of the documented rule, one by one: range starts a, a + S, ... below b; the
    range is the target's central min(S, target) bases; windows leaving the chromosome dropped."""
    width = min(stride, placement.target[1] - placement.target[0])
    centre_skip = (placement.target[1] - placement.target[0] - width) // 2
    found = []
    position = region.start
    while position < region.end:
        window_start = position - placement.target[0] - centre_skip
        if window_start >= 0 and window_start + placement.window <= length:
            found.append((window_start, position, min(position + width, region.end)))
        position += stride
    return found


def tiled(region, length, placement, stride, block=7):
    parts = list(tile(region, length, placement, stride, block=block))
    if not parts:
        return []
    starts, begins, ends = (np.concatenate(column) for column in zip(*parts))
    return list(zip(starts.tolist(), begins.tolist(), ends.tolist()))


@pytest.mark.parametrize("stride", [1, 20, 100, 7, 33])
def test_tiling_a_whole_chromosome_places_every_window_by_the_rule(stride):
    length = 1_037  # not a multiple of any stride: the last window is a trap
    region = Region("chr1", 0, length, "chr1")
    expected = brute_force(region, length, ATAC, stride)
    assert tiled(region, length, ATAC, stride) == expected
    assert tiled_count(region, length, ATAC, stride) == len(expected)
    # Both ends: no window starts before 0 or ends past the chromosome, and the grid's next
    # window on either side would.
    first, last = expected[0], expected[-1]
    assert first[0] >= 0 and first[0] - stride < 0
    assert last[0] + 100 <= length and last[0] + stride + 100 > length


def test_stride_1_writes_the_target_centre_base_from_the_window_at_0_to_the_one_at_the_end():
    windows = tiled(Region("c", 0, 300, "c"), 300, ATAC, 1)
    # window [0, 100): its target is bases 40..59, whose centre base is 49 (an odd surplus of the
    # target over the range goes to the right, as atac prepare centres its target in the window)
    assert windows[0] == (0, 49, 50)
    assert windows[-1] == (200, 249, 250)  # window [200, 300) ends exactly at the chromosome end
    assert len(windows) == 201


def test_stride_20_ranges_are_contiguous_targets_and_stride_100_leaves_gaps():
    twenty = tiled(Region("c", 0, 400, "c"), 400, ATAC, 20)
    assert [w[1:] for w in twenty[:3]] == [(40, 60), (60, 80), (80, 100)]
    assert all(begin - start == 40 for start, begin, _ in twenty)
    hundred = tiled(Region("c", 0, 400, "c"), 400, ATAC, 100)
    assert hundred == [(60, 100, 120), (160, 200, 220), (260, 300, 320)]  # range 0..20 would need a window at -40


@pytest.mark.parametrize("stride", [1, 3, 20, 50])
def test_a_region_inside_a_chromosome_is_tiled_from_its_start_and_cut_at_its_end(stride):
    region = Region("c", 95, 533, "c:96-533")
    expected = brute_force(region, 600, ATAC, stride)
    assert tiled(region, 600, ATAC, stride) == expected
    assert expected[0][1] == 95 and all(end <= 533 for _, _, end in expected)
    assert tiled_count(region, 600, ATAC, stride) == len(expected)


def test_random_regions_strides_and_placements_agree_with_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        window = int(rng.integers(1, 60))
        a = int(rng.integers(0, window))
        target = (a, int(rng.integers(a + 1, window + 1)))
        placement = Placement(window, target)
        length = int(rng.integers(1, 400))
        start = int(rng.integers(0, length))
        region = Region("c", start, int(rng.integers(start + 1, length + 1)), "c")
        stride = int(rng.integers(1, 40))
        expected = brute_force(region, length, placement, stride)
        assert tiled(region, length, placement, stride, block=int(rng.integers(1, 20))) == expected
        assert tiled_count(region, length, placement, stride) == len(expected)


def test_a_chromosome_shorter_than_the_window_has_no_window():
    assert tiled(Region("c", 0, 99, "c"), 99, ATAC, 1) == []
    assert tiled_count(Region("c", 0, 99, "c"), 99, ATAC, 1) == 0


def test_intervals_are_centred_and_long_ones_tiled_as_a_centred_group():
    count, starts = centred_windows(np.array([1_000, 1_000, 1_000, 1_001, 500]),
                                    np.array([1_100, 1_001, 1_350, 1_100, 761]), 100, 100)
    assert count.tolist() == [1, 1, 4, 1, 3]
    assert starts[0] == 1_000  # an interval of the window's size is the window
    assert starts[1] == 950  # a 1-bp summit record: centre 1000, window 950..1050 (atac prepare's rule)
    assert starts[2:6].tolist() == [975, 1_075, 1_175, 1_275]  # 350 bp -> 4 windows spanning 400, centred on 1175
    assert starts[6] == 1_000  # 99 bp: centre (1001 + 1100) // 2 = 1050
    assert starts[7:].tolist() == [480, 580, 680]  # 261 bp -> 3 windows spanning 300, centred on 630


def test_a_long_interval_is_tiled_at_the_stride_given():
    count, starts = centred_windows(np.array([0]), np.array([150]), 100, 25)
    assert count.tolist() == [3] and starts.tolist() == [0, 25, 50]  # 3 windows span 150: the interval


def test_regions_are_read_1_based_and_inclusive_as_samtools_writes_them():
    lengths = {"chr8": 1_000_000, "chrX": 500}
    assert parse_region("chr8:127,001-128,000", lengths, "g.fa") == Region("chr8", 127_000, 128_000, "chr8:127,001-128,000")
    assert parse_region("chrX", lengths, "g.fa") == Region("chrX", 0, 500, "chrX")
    assert parse_region("chrX:1-500", lengths, "g.fa") == Region("chrX", 0, 500, "chrX:1-500")


@pytest.mark.parametrize("text, words", [
    ("chr9", ["chr9", "g.fa", "chr8"]),
    ("chrX:1-501", ["outside", "chrX", "500"]),
    ("chrX:0-10", ["outside"]),
    ("chrX:20-10", ["before it starts"]),
    ("chrX:10", ["CHROM:START-END"]),
])
def test_a_bad_region_is_one_error_naming_it(text, words):
    with pytest.raises(InputError) as error:
        parse_region(text, {"chr8": 1_000_000, "chrX": 500}, "g.fa")
    assert "\n" not in str(error.value) and all(word in str(error.value) for word in words)


def test_a_run_without_an_atac_record_predicts_its_whole_window():
    from helpers import tiny_run_info

    info = tiny_run_info()
    assert Placement.of(info) == Placement(2 + 20 + 1, (0, 23))
