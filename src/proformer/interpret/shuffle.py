"""Dinucleotide shuffles (Altschul & Erikson 1985): random sequences with exactly the dinucleotide
counts of a given one, the usual references of DeepLIFT/SHAP on DNA.

A sequence of ``n`` symbols is a walk over ``n - 1`` edges (its dinucleotides) in the graph
whose vertices are the symbols. Every Eulerian walk of that multigraph from the same first symbol
is a sequence with the same dinucleotide counts, and each such walk is fixed by a last-exit
edge per vertex (a spanning tree into the final symbol) and an order of the remaining edges out
of each vertex. The shuffle draws the tree by rejection, as Altschul and Erikson do, and the
orders by permutation, so every sequence with the same counts, first and last symbol is equally
likely. The symbols are whatever the codes hold: N (code 4) is shuffled like a fifth base.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dinucleotide_shuffle", "dinucleotide_shuffles"]


def dinucleotide_shuffle(sequence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One dinucleotide shuffle of ``sequence``.

    Parameters
    ----------
    sequence : np.ndarray
        ``(n,)`` symbol codes (any integer dtype; e.g. uint8 A C G T N = 0..4).
    rng : np.random.Generator
        The source of randomness (``np.random.default_rng(seed)``).

    Returns
    -------
    np.ndarray
        ``(n,)``, same dtype: the same first and last symbol and the same count of every
        dinucleotide (``sequence[i], sequence[i + 1]``) as ``sequence``.
    """
    sequence = np.asarray(sequence)
    if sequence.ndim != 1:
        raise ValueError(f"dinucleotide_shuffle takes one sequence of shape (n,), got shape {sequence.shape}")
    if len(sequence) < 3:  # one dinucleotide (or none): nothing to reorder
        return sequence.copy()
    symbols, tokens = np.unique(sequence, return_inverse=True)
    k, last = len(symbols), int(tokens[-1])
    # The successors of each symbol, one per dinucleotide that starts with it: its out-edges.
    successors = [tokens[1:][tokens[:-1] == s] for s in range(k)]

    # A random last exit from every symbol but the final one, kept only when following the exits
    # from any symbol reaches the final symbol (a tree into it); otherwise the walk would strand
    # edges. Every symbol but the final one occurs before the end, so it has an out-edge.
    while True:
        exits = {s: int(rng.integers(len(successors[s]))) for s in range(k) if s != last}
        following = {s: int(successors[s][e]) for s, e in exits.items()}
        if all(_reaches(s, last, following, k) for s in exits):
            break

    orders = []
    for s in range(k):
        edges = successors[s]
        if s == last:
            orders.append(edges[rng.permutation(len(edges))])
        else:
            rest = np.delete(edges, exits[s])
            orders.append(np.append(rest[rng.permutation(len(rest))], edges[exits[s]]))

    walk = np.empty(len(tokens), dtype=np.int64)
    walk[0] = tokens[0]
    used = [0] * k
    for i in range(1, len(tokens)):
        s = walk[i - 1]
        walk[i] = orders[s][used[s]]
        used[s] += 1
    return symbols[walk]


def _reaches(start: int, last: int, following: dict[int, int], k: int) -> bool:
    """Does following the chosen exits from ``start`` reach ``last`` (within ``k`` steps, so a cycle fails)?"""
    s = start
    for _ in range(k):
        if s == last:
            return True
        s = following[s]
    return s == last


def dinucleotide_shuffles(sequence: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` independent dinucleotide shuffles of ``sequence`` ``(length,)``: ``(n, length)``."""
    return np.stack([dinucleotide_shuffle(sequence, rng) for _ in range(n)])
