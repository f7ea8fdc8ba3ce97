"""Tests of proformer.data.synthetic: the simulated DREAM-like library and its grammar.

Grammar effects are measured by planting sites into a fixed background of sequences that
contain no site of any motif, and comparing log-activities (the scale in which the documented
effects add up) or activities before and after. The vectorised scanner is checked against a
plain-Python transcription of the documented formulas.
"""


from __future__ import annotations

import math
import time

import numpy as np
import pytest

from proformer.data.synthetic import (
    BASELINE,
    INTERACTIONS,
    MISMATCH_AFFINITY,
    MOTIFS,
    SyntheticLibrary,
    count_sites,
    grammar_activity,
    grammar_log_activity,
    noise_ceiling,
    simulate_library,
    write_tsv,
)
from proformer.sequence import DREAM_HEAD, DREAM_TAIL

HEAD, TAIL = len(DREAM_HEAD), len(DREAM_TAIL)


MOTIF = {motif.name: motif for motif in MOTIFS}


# Concrete instances of the consensuses (IUPAC resolved by hand; N keeps the background base).
SITES = {
    "REB1": "TTACCCG",
    "ABF1": "ATCACNNNNNACG",
    "TATA": "TATAAATG",  # not TATAAAAG: its ATAAAA is also a one-mismatch poly-A site
    "GCN4": "TGACTCA",
    "POLYT": "TTTTTT",
    "MIG1": "GCGGGG",
}


def reverse_complement(site: str) -> str:
    return site.translate(str.maketrans("ACGTN", "TGCAN"))[::-1]


def plant(sequences: list[str], site: str, start: int) -> list[str]:
    """Write ``site`` into the random region at ``start`` (0..79); ``N`` keeps the background."""
    assert 0 <= start <= 80 - len(site)
    out = []
    for sequence in sequences:
        chars = list(sequence)
        for offset, symbol in enumerate(site):
            if symbol != "N":
                chars[HEAD + start + offset] = symbol
        out.append("".join(chars))
    return out


@pytest.fixture(scope="module")
def background() -> list[str]:
    """A fixed set of sequences without any site (exact or one-mismatch) of any motif."""
    sequences = simulate_library(4000, seed=12345).sequences
    counts = count_sites(sequences)
    empty = np.all([counts[name] == 0 for name in counts], axis=0)
    kept = [s for s, keep in zip(sequences, empty) if keep]
    assert len(kept) >= 200
    return kept


@pytest.fixture(scope="module")
def library() -> SyntheticLibrary:
    return simulate_library(20_000, seed=0)


def delta(background: list[str], planted: list[str]) -> np.ndarray:
    """Per-sequence change of log-activity caused by planting."""
    return grammar_log_activity(planted) - grammar_log_activity(background)


def clean_delta(background: list[str], planted: list[str], n_sites: int) -> np.ndarray:
    """:func:`delta` on the rows where planting made exactly ``n_sites`` sites in all.

    A planted site can form extra one-mismatch sites with the background bases next to it
    (that is the grammar working, but it blurs exact comparisons with the documented values).
    """
    counts = count_sites(planted)
    total = np.sum([counts[name] for name in counts], axis=0)
    keep = total == n_sites
    assert keep.sum() >= 50
    return delta(background, planted)[keep]


def occupancy(s: float) -> float:
    """Documented saturation: one perfect site gives 1."""
    return (1 - math.exp(-s)) / (1 - math.exp(-1))


def position_weight(name: str, start: int) -> float:
    """Documented position profile of a site of motif ``name`` starting at ``start`` (0..79)."""
    motif = MOTIF[name]
    if math.isinf(motif.width):
        return 1.0
    d = 80 - (start + len(motif.consensus) / 2)
    return motif.floor + (1 - motif.floor) * math.exp(-0.5 * ((d - motif.peak) / motif.width) ** 2)


def single_effect(name: str, start: int, orientation: float = 1.0) -> float:
    """Documented change of log-activity for one exact site on an empty background."""
    return MOTIF[name].effect * occupancy(position_weight(name, start) * orientation)


_IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
    "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}


def _iupac_rc(consensus: str) -> str:
    return consensus.translate(str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN"))[::-1]


def reference_log_activity(sequence: str) -> float:
    region = sequence[HEAD:HEAD + 80]
    occupancies = {}
    for motif in MOTIFS:
        length = len(motif.consensus)
        strands = [(motif.consensus, motif.forward)]
        if _iupac_rc(motif.consensus) != motif.consensus:
            strands.append((_iupac_rc(motif.consensus), motif.reverse))
        total = 0.0
        for pattern, orientation in strands:
            for start in range(80 - length + 1):
                window = region[start:start + length]
                mismatches = sum(base not in _IUPAC[p] for base, p in zip(window, pattern))
                if mismatches > motif.max_mismatches:
                    continue
                affinity = 1.0 if mismatches == 0 else MISMATCH_AFFINITY
                d = 80 - (start + length / 2)
                if math.isinf(motif.width):
                    position = 1.0
                else:
                    bump = math.exp(-0.5 * ((d - motif.peak) / motif.width) ** 2)
                    position = motif.floor + (1 - motif.floor) * bump
                total += affinity * position * orientation
        occupancies[motif.name] = occupancy(total)
    log_activity = BASELINE + sum(m.effect * occupancies[m.name] for m in MOTIFS)
    for pair in INTERACTIONS:
        log_activity += pair.weight * occupancies[pair.a] * occupancies[pair.b]
    return log_activity


def test_same_seed_same_library_and_different_seed_differs():
    a, b = simulate_library(500, seed=3), simulate_library(500, seed=3)
    assert a.sequences == b.sequences
    np.testing.assert_array_equal(a.activity, b.activity)
    np.testing.assert_array_equal(a.expression, b.expression)
    np.testing.assert_array_equal(a.n_cells, b.n_cells)
    c = simulate_library(500, seed=4)
    assert sum(x != y for x, y in zip(a.sequences, c.sequences)) == 500
    assert not np.array_equal(a.expression, c.expression)


def test_layout_flanks_lengths_alphabet_and_dtypes():
    lib = simulate_library(2000, seed=1)
    assert len(lib) == 2000 and isinstance(lib.sequences, list)
    assert all(len(s) == 110 for s in lib.sequences)
    assert all(s.startswith(DREAM_HEAD) and s.endswith(DREAM_TAIL) for s in lib.sequences)
    random_part = "".join(s[HEAD:-TAIL] for s in lib.sequences)
    assert len(random_part) == 2000 * 80 and set(random_part) == set("ACGT")
    # Uniform bases: 160,000 draws, so each frequency is 0.25 within a few thousandths.
    for base in "ACGT":
        assert abs(random_part.count(base) / len(random_part) - 0.25) < 0.006
    assert lib.activity.dtype == np.float64 and lib.activity.shape == (2000,)
    assert lib.expression.dtype == np.float32 and lib.expression.shape == (2000,)
    assert np.issubdtype(lib.n_cells.dtype, np.integer) and lib.n_cells.min() >= 1
    # The activity stored is the grammar applied to the stored sequences.
    np.testing.assert_allclose(grammar_activity(lib.sequences), lib.activity)


def test_grammar_functions_reject_sequences_of_the_wrong_length():
    with pytest.raises(ValueError, match="110"):
        grammar_log_activity(["ACGT" * 20])


def test_expression_range_single_cells_integers_and_integer_fraction(library):
    e = library.expression
    assert e.min() >= 0 and e.max() <= 17
    single = library.n_cells == 1
    np.testing.assert_array_equal(e[single], np.round(e[single]))
    # P(one cell) is the default single_cell_fraction 0.5 (20,000 rows: +-0.02 is > 5 sd).
    assert abs(single.mean() - 0.5) < 0.02
    # Integers: all single-cell rows plus multi-cell rows whose bins happen to average to an
    # integer. Documented range for the defaults: 0.62-0.76 (measured 0.69 at n=20,000).
    integer = np.mean(e == np.round(e))
    assert integer >= single.mean()
    assert 0.62 <= integer <= 0.76


def test_expression_is_the_mean_of_rounded_clipped_cells():
    # Without noise every cell of a sequence lands in the bin nearest its activity.
    lib = simulate_library(3000, seed=2, noise=0.0)
    np.testing.assert_array_equal(lib.expression, np.clip(np.rint(lib.activity), 0, 17))
    # With noise the mean bin is unbiased for the activity away from the clipped edges.
    lib = simulate_library(20_000, seed=2, noise=2.5)
    middle = (lib.activity > 5) & (lib.activity < 12)
    assert abs(np.mean(lib.expression[middle] - lib.activity[middle])) < 0.1
    # More cells, less scatter: the residual variance falls like 1 / n_cells.
    residual = lib.expression - lib.activity
    var_one = residual[middle & (lib.n_cells == 1)].var()
    var_many = residual[middle & (lib.n_cells >= 4)].var()
    assert var_many < 0.45 * var_one


def test_bins_spread_over_most_of_the_scale(library):
    histogram = np.histogram(library.expression, bins=np.arange(19) - 0.5)[0] / len(library)
    assert (histogram >= 0.01).sum() >= 15
    assert histogram.max() < 0.15
    assert 7.0 < library.expression.mean() < 10.5


def test_motifs_are_frequent_enough_to_learn(library):
    counts = count_sites(library.sequences)
    for name, count in counts.items():
        assert 0.15 <= np.mean(count > 0) <= 0.45, name


def test_noise_ceiling_in_unit_interval_and_decreasing_with_noise(library):
    ceiling = noise_ceiling(library)
    assert 0.8 <= ceiling <= 0.9  # the documented calibration of the defaults
    noises = (0.0, 1.0, 2.5, 5.0)
    ceilings = [noise_ceiling(simulate_library(5000, seed=7, noise=s)) for s in noises]
    assert all(0.0 < c < 1.0 for c in ceilings)
    assert all(a > b + 0.02 for a, b in zip(ceilings, ceilings[1:]))


def test_noise_ceiling_is_pearson_between_activity_and_expression():
    lib = SyntheticLibrary(
        sequences=["A"] * 4,
        activity=np.array([1.0, 2.0, 3.0, 4.0]),
        expression=np.array([1.0, 3.0, 2.0, 4.0], dtype=np.float32),
        n_cells=np.ones(4, dtype=np.int64),
    )
    assert noise_ceiling(lib) == pytest.approx(0.8)


def test_activator_raises_activity(background):
    planted = plant(background, SITES["REB1"], 73)  # 3' end
    assert np.mean(grammar_activity(planted) - grammar_activity(background)) > 2.0
    # One exact REB1 site at its best position adds about its documented effect (2.0) to L.
    effect = clean_delta(background, planted, 1)
    np.testing.assert_allclose(effect, single_effect("REB1", 73), rtol=1e-5)
    assert single_effect("REB1", 73) == pytest.approx(MOTIF["REB1"].effect, rel=0.01)
    # Every activator raises activity on average, and by its documented amount when clean.
    for name in ("ABF1", "TATA", "GCN4", "POLYT"):
        planted = plant(background, SITES[name], 31)
        assert np.mean(delta(background, planted)) > 0.2, name
        if name != "POLYT":  # a poly-T hexamer always has one-mismatch neighbours, see below
            np.testing.assert_allclose(
                clean_delta(background, planted, 1), single_effect(name, 31), rtol=1e-5
            )


def test_repressor_lowers_activity(background):
    planted = plant(background, SITES["MIG1"], 74)
    assert np.mean(grammar_activity(planted) - grammar_activity(background)) < -2.0
    assert np.mean(delta(background, planted)) < -1.5
    np.testing.assert_allclose(
        clean_delta(background, planted, 1), single_effect("MIG1", 74), rtol=1e-5
    )
    assert single_effect("MIG1", 74) == pytest.approx(MOTIF["MIG1"].effect, rel=0.01)


def test_orientation_weights(background):
    # ABF1 is documented ~3x weaker on the reverse strand (weights 1.0 vs 0.35).
    forward_sites = plant(background, SITES["ABF1"], 31)
    reverse_sites = plant(background, reverse_complement(SITES["ABF1"]), 31)
    mean_forward = np.mean(delta(background, forward_sites))
    assert 0 < np.mean(delta(background, reverse_sites)) < 0.6 * mean_forward
    forward = clean_delta(background, forward_sites, 1)
    reverse = clean_delta(background, reverse_sites, 1)
    np.testing.assert_allclose(forward, MOTIF["ABF1"].effect, rtol=1e-5)
    np.testing.assert_allclose(reverse, MOTIF["ABF1"].effect * occupancy(0.35), rtol=1e-5)
    # Poly-T activates more than poly-A (weights 1.0 vs 0.3). Each planted hexamer also makes
    # two one-mismatch sites (shifted by one nt), on the same strand, so the ratio holds.
    poly_t = np.median(delta(background, plant(background, "TTTTTT", 50)))
    poly_a = np.median(delta(background, plant(background, "AAAAAA", 50)))
    assert 0 < poly_a < 0.7 * poly_t
    # REB1 is orientation-independent: the reverse complement has the same effect.
    forward = clean_delta(background, plant(background, SITES["REB1"], 73), 1)
    reverse = clean_delta(background, plant(background, reverse_complement(SITES["REB1"]), 73), 1)
    both = np.concatenate([forward, reverse])
    np.testing.assert_allclose(both, single_effect("REB1", 73), rtol=1e-5)


def test_position_effects(background):
    # REB1 is TSS-proximal: a site at the 3' end beats the same site at the 5' end.
    near = np.mean(delta(background, plant(background, SITES["REB1"], 73)))
    far = np.mean(delta(background, plant(background, SITES["REB1"], 0)))
    assert 0 < far < 0.5 * near
    np.testing.assert_allclose(
        clean_delta(background, plant(background, SITES["REB1"], 0), 1),
        single_effect("REB1", 0), rtol=1e-5,
    )
    # TATA prefers a window 45 nt upstream of the 3' end (start 31 centres it there).
    peak = np.mean(delta(background, plant(background, SITES["TATA"], 31)))
    upstream = np.mean(delta(background, plant(background, SITES["TATA"], 0)))
    downstream = np.mean(delta(background, plant(background, SITES["TATA"], 72)))
    assert max(upstream, downstream) < 0.4 * peak
    assert single_effect("TATA", 31) == pytest.approx(MOTIF["TATA"].effect, rel=0.01)
    # GCN4 is position-independent.
    ends = [clean_delta(background, plant(background, SITES["GCN4"], s), 1) for s in (0, 73)]
    np.testing.assert_allclose(np.concatenate(ends), MOTIF["GCN4"].effect, rtol=1e-5)


def test_saturation_of_repeated_sites(background):
    one = np.mean(delta(background, plant(background, SITES["GCN4"], 60)))
    planted_two = plant(plant(background, SITES["GCN4"], 60), SITES["GCN4"], 10)
    two = np.mean(delta(background, planted_two))
    assert one < two < 1.6 * one
    clean_two = clean_delta(background, planted_two, 2)
    np.testing.assert_allclose(clean_two, MOTIF["GCN4"].effect * occupancy(2.0), rtol=1e-5)


def test_pair_interactions_differ_from_the_sum_of_singles(background):
    def pair_excess(a, start_a, b, start_b, clean):
        """Effect of the pair minus the effects of the two singles, per sequence."""
        one = plant(background, SITES[a], start_a)
        two = plant(background, SITES[b], start_b)
        both = plant(one, SITES[b], start_b)
        if not clean:
            return delta(background, both) - delta(background, one) - delta(background, two)
        # Rows where each planting made exactly its intended sites.
        counts = [count_sites(x) for x in (one, two, both)]
        totals = [np.sum([c[name] for name in c], axis=0) for c in counts]
        keep = (totals[0] == 1) & (totals[1] == 1) & (totals[2] == 2)
        assert keep.sum() >= 50
        excess = delta(background, both) - delta(background, one) - delta(background, two)
        return excess[keep]

    weights = {(pair.a, pair.b): pair.weight for pair in INTERACTIONS}
    # ABF1 + TATA cooperate: the pair adds more than the sum of the singles.
    assert np.mean(pair_excess("ABF1", 0, "TATA", 31, clean=False)) > 0.8
    np.testing.assert_allclose(
        pair_excess("ABF1", 0, "TATA", 31, clean=True),
        weights[("ABF1", "TATA")] * occupancy(position_weight("TATA", 31)), rtol=1e-5,
    )
    # MIG1 cancels most of REB1: the pair is well below the sum of the singles.
    assert np.mean(pair_excess("REB1", 73, "MIG1", 60, clean=False)) < -1.0
    expected = (
        weights[("REB1", "MIG1")]
        * occupancy(position_weight("REB1", 73))
        * occupancy(position_weight("MIG1", 60))
    )
    np.testing.assert_allclose(pair_excess("REB1", 73, "MIG1", 60, clean=True), expected, rtol=1e-5)
    # A pair without a documented interaction is additive.
    np.testing.assert_allclose(pair_excess("REB1", 73, "GCN4", 20, clean=True), 0.0, atol=1e-5)


def test_vectorised_grammar_matches_plain_reference():
    sequences = simulate_library(40, seed=9).sequences
    # Add sequences with exact and overlapping sites so every branch is exercised.
    sequences += plant(sequences[:10], SITES["ABF1"], 5)
    sequences += plant(plant(sequences[10:20], SITES["TATA"], 31), "TTTTTTTTT", 60)
    sequences += plant(
        plant(sequences[20:30], SITES["MIG1"], 70), reverse_complement(SITES["REB1"]), 40
    )
    expected = np.array([reference_log_activity(s) for s in sequences])
    np.testing.assert_allclose(grammar_log_activity(sequences), expected, rtol=1e-5, atol=1e-5)


def test_count_sites_matches_plain_counts():
    sequences = simulate_library(30, seed=11).sequences
    counts = count_sites(sequences)
    exact = count_sites(sequences, exact=True)
    for motif in MOTIFS:
        patterns = {motif.consensus, _iupac_rc(motif.consensus)}
        length = len(motif.consensus)
        for i, sequence in enumerate(sequences):
            region = sequence[HEAD:HEAD + 80]
            near = hits = 0
            for pattern in patterns:
                for start in range(80 - length + 1):
                    window = region[start:start + length]
                    mm = sum(b not in _IUPAC[p] for b, p in zip(window, pattern))
                    hits += mm == 0
                    near += mm <= motif.max_mismatches
            assert counts[motif.name][i] == near and exact[motif.name][i] == hits


def test_write_tsv_round_trip(tmp_path):
    lib = simulate_library(500, seed=5)
    path = write_tsv(lib, tmp_path / "synthetic.txt")
    with open(path, encoding="ascii") as handle:
        lines = handle.read().split("\n")
    assert lines[-1] == "" and len(lines) == 501  # one line per row, no header
    sequences, values, texts = [], [], []
    for line in lines[:-1]:
        sequence, text = line.split("\t")
        sequences.append(sequence)
        texts.append(text)
        values.append(float(text))
    assert sequences == lib.sequences
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), lib.expression)
    # Integers are written one way only, e.g. "7.0".
    for text, value in zip(texts, lib.expression):
        if value == int(value):
            assert text == f"{int(value)}.0"


@pytest.mark.slow
def test_speed_100k_under_two_seconds():
    simulate_library(1000)  # warm-up
    start = time.perf_counter()
    lib = simulate_library(100_000, seed=1)
    assert time.perf_counter() - start < 2.0
    assert len(lib) == 100_000
