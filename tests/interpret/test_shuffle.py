"""Tests of :mod:`proformer.interpret.shuffle`."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from helpers import (
    attribute_module,
    random_dna,
)

from proformer.interpret.shuffle import dinucleotide_shuffle
from proformer.sequence import encode


def dinucleotides(codes: np.ndarray) -> Counter:
    return Counter(zip(codes[:-1].tolist(), codes[1:].tolist()))


@pytest.mark.usefixtures("one_thread")
def test_dinucleotide_shuffle_keeps_counts_and_ends_and_differs_by_seed():
    sequence = encode(random_dna(np.random.default_rng(1), 1, 80, "ACGTN"))[0]
    shuffles = [dinucleotide_shuffle(sequence, np.random.default_rng(seed)) for seed in (0, 0, 1)]
    for shuffled in shuffles:
        assert dinucleotides(shuffled) == dinucleotides(sequence)
        assert shuffled[0] == sequence[0] and shuffled[-1] == sequence[-1]
    assert (shuffles[0] == shuffles[1]).all()  # a seed is a shuffle
    assert (shuffles[0] != shuffles[2]).any() and (shuffles[0] != sequence).any()


@pytest.mark.usefixtures("one_thread")
def test_dinucleotide_shuffle_draws_every_sequence_with_the_same_counts_evenly():
    # Altschul-Erikson draws uniformly among the sequences with the same dinucleotide counts (which
    # fixes the first and last symbol). A fixed last-exit tree, a common shortcut, misses some.
    sequence = encode("AACAGCAGAC")
    target = dinucleotides(sequence)
    every = {p for p in set(itertools.permutations(sequence.tolist())) if dinucleotides(np.array(p)) == target}
    rng = np.random.default_rng(0)
    drawn = Counter(tuple(dinucleotide_shuffle(sequence, rng).tolist()) for _ in range(3000))
    assert set(drawn) == every
    expected = 3000 / len(every)
    assert all(abs(count - expected) < 5 * expected**0.5 for count in drawn.values()), (len(every), drawn)


@pytest.mark.usefixtures("one_thread")
def test_references_shuffle_only_the_seen_region():
    forward = encode(["NNNACGTTGCAGGATNCCAN", "GATTACAGATTACAGATTAC"])
    seen = np.zeros(forward.shape, dtype=bool)
    seen[0, 3:19], seen[1] = True, True
    references = attribute_module.shuffled_references(forward, seen, 5, seed=0)
    assert references.shape == (2, 5, 20)
    assert (references[0, :, :3] == 4).all() and (references[0, :, 19] == 4).all()  # padding as laid out
    for row in range(2):
        region = forward[row][seen[row]]
        for reference in references[row]:
            assert dinucleotides(reference[seen[row]]) == dinucleotides(region)
        assert len({reference.tobytes() for reference in references[row]}) > 1
