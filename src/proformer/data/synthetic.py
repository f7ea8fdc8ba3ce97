"""A synthetic DREAM-like promoter library whose expression follows an explicit grammar.

The DREAM 2022 challenge measured yeast promoters made of a constant head, 80 random
nucleotides and a constant tail (110 nt); the expression of a sequence is the mean sort bin
(0..17) of the cells that carried it. :func:`simulate_library` builds a library of the same
shape without any download: uniform random 80-mers between the real flanks, a noiseless
*activity* computed by a small, documented regulatory grammar, and a *measured* expression
obtained by sorting a few noisy cells per sequence into 18 bins.

The grammar (all constants below, explained in ``docs/synthetic-grammar.md``):

* **Sites.** Each motif of :data:`MOTIFS` is an IUPAC consensus. A window of the random region
  is a site when it differs from the consensus (or from its reverse complement) at no more
  than ``max_mismatches`` positions; an exact site has affinity 1, a one-mismatch site
  :data:`MISMATCH_AFFINITY`. Only the 80 random nucleotides are scanned: the flanks are the
  same in every sequence and would only add a constant.
* **Position.** A site's weight is multiplied by
  ``floor + (1 - floor) * exp(-0.5 * ((d - peak) / width) ** 2)``, where ``d`` is the distance
  (nt) from the centre of the site to the 3' end of the random region (the TSS side).
* **Orientation.** A site read on the given strand is multiplied by ``forward``, a site read on
  the reverse complement by ``reverse``.
* **Saturation.** The weighted sites of one motif add up to ``s``; the motif's occupancy is
  ``u = (1 - exp(-s)) / (1 - exp(-1))``: one perfect site gives 1, more sites give less than
  proportionally more (at most 1.58).
* **Log-activity.** ``L = BASELINE + sum_m effect_m * u_m + sum_(a, b) weight_ab * u_a * u_b``
  over the motifs and the pairs of :data:`INTERACTIONS`.
* **Link.** ``activity = N_BINS_MAX / (1 + exp(-L))``: the expected fluorescence of a cell, in
  sort-bin units (0..17).

Measurement: a sequence is carried by ``n_cells ~ Geometric(single_cell_fraction)`` cells
(``P(n_cells = 1) = single_cell_fraction``); each cell's fluorescence is
``activity + Normal(0, noise)``, rounded to the nearest bin and clipped to 0..17; the expression
is the mean bin of the cells, so single-cell rows are integers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..metrics import pearson
from ..sequence import ALPHABET, CODE_LETTERS, DREAM_HEAD, DREAM_TAIL, IUPAC_BASES, IUPAC_COMPLEMENT, encode

# ----------------------------------------------------------------------------------------------
# Layout and measurement constants
# ----------------------------------------------------------------------------------------------

#: Length of the random region between the DREAM flanks.
RANDOM_LENGTH = 80
#: Total length of a synthetic sequence (17 + 80 + 13 = 110 nt, as in DREAM 2022).
SEQUENCE_LENGTH = len(DREAM_HEAD) + RANDOM_LENGTH + len(DREAM_TAIL)
#: Highest sort bin; bins are 0..N_BINS_MAX (18 bins, as in DREAM 2022).
N_BINS_MAX = 17

#: Default standard deviation (in bins) of one cell's fluorescence around the activity.
DEFAULT_NOISE = 2.5
#: Default probability that a sequence is measured with a single cell (geometric cell counts).
DEFAULT_SINGLE_CELL_FRACTION = 0.5

# ----------------------------------------------------------------------------------------------
# The grammar
# ----------------------------------------------------------------------------------------------

#: Affinity of a site with one mismatch to the consensus (an exact site has affinity 1). Real
#: binding sites are graded; this makes the exact consensus matter more than its neighbours.
MISMATCH_AFFINITY = 0.4

#: Log-activity of a sequence without any site (sets where the library sits on the bin scale).
BASELINE = -0.3


# Allowed bases of each IUPAC symbol as a 4-bit mask over A, C, G, T (bit i for code i of
# proformer.sequence), so that a scan tests a base with one AND.
_IUPAC = {symbol: sum(1 << ALPHABET.index(base) for base in bases) for symbol, bases in IUPAC_BASES.items()}


def _iupac_reverse_complement(consensus: str) -> str:
    return consensus.translate(IUPAC_COMPLEMENT)[::-1]


@dataclass(frozen=True)
class Motif:
    """One motif of the grammar.

    Attributes
    ----------
    name : str
        Short name, used as the key of interactions and statistics.
    consensus : str
        IUPAC consensus (``ACGT`` plus ``RYSWKMBDHVN``) read 5' to 3' on the given strand.
    max_mismatches : int
        Windows within this Hamming distance of the consensus are sites (0 or 1).
    effect : float
        Log-activity added by one perfect site (exact, weight 1 in position and orientation);
        positive for an activator, negative for a repressor.
    forward, reverse : float
        Orientation weights of a site on the given strand and on the reverse complement.
    peak, width, floor : float
        Position profile over ``d``, the distance (nt) from the site's centre to the 3' end of
        the random region: ``floor + (1 - floor) * exp(-0.5 * ((d - peak) / width) ** 2)``.
        ``width = inf`` makes the motif position-independent.
    role : str
        One line for documentation.
    """

    name: str
    consensus: str
    max_mismatches: int
    effect: float
    forward: float
    reverse: float
    peak: float
    width: float
    floor: float
    role: str

    def __post_init__(self):
        unknown = set(self.consensus) - set(_IUPAC)
        if unknown:
            raise ValueError(f"motif {self.name}: non-IUPAC symbols {sorted(unknown)}")
        # The affinity model has two levels only (exact, one mismatch).
        if self.max_mismatches not in (0, 1):
            raise ValueError(f"motif {self.name}: max_mismatches must be 0 or 1")
        # A palindrome is scanned once, so it cannot have two orientation weights.
        if self.palindromic and self.forward != self.reverse:
            raise ValueError(f"motif {self.name} is palindromic: forward must equal reverse")

    @property
    def palindromic(self) -> bool:
        """True when the consensus equals its own reverse complement (one scan covers both)."""
        return self.consensus == _iupac_reverse_complement(self.consensus)


#: The motifs. Consensus lengths and mismatch tolerances are chosen so that each motif occurs
#: (exact or with one mismatch) in roughly 20-35 % of random 80-mers: an exact 7-mer would be in
#: only ~2 %, too rare for a model to learn it from a few ten thousand sequences.
MOTIFS: tuple[Motif, ...] = (
    Motif(
        name="REB1", consensus="TTACCCR", max_mismatches=1, effect=2.0,
        forward=1.0, reverse=1.0, peak=0.0, width=25.0, floor=0.25,
        role="Reb1-like general regulatory factor (core TTACCCG): strong activator, strongest "
        "next to the 3' end (TSS-proximal) and decaying upstream, same in both orientations",
    ),
    Motif(
        name="ABF1", consensus="RTCRYNNNNNACG", max_mismatches=1, effect=1.4,
        forward=1.0, reverse=0.35, peak=0.0, width=math.inf, floor=1.0,
        role="Abf1-like bipartite site: activator anywhere in the region, about three times "
        "weaker on the reverse strand",
    ),
    Motif(
        name="TATA", consensus="TATAWAWR", max_mismatches=1, effect=1.5,
        forward=1.0, reverse=0.5, peak=45.0, width=12.0, floor=0.15,
        role="TATA-box-like core element: activator with a preferred window 45 nt upstream "
        "of the 3' end, weaker reversed",
    ),
    Motif(
        name="GCN4", consensus="TGANTCA", max_mismatches=1, effect=1.2,
        forward=1.0, reverse=1.0, peak=0.0, width=math.inf, floor=1.0,
        role="Gcn4/AP-1-like palindromic activator (core TGASTCA): position- and "
        "orientation-independent",
    ),
    Motif(
        name="POLYT", consensus="TTTTTT", max_mismatches=1, effect=1.0,
        forward=1.0, reverse=0.3, peak=20.0, width=30.0, floor=0.3,
        role="poly(dT) tract (nucleosome-disfavouring): activator when poly-T is on the given "
        "strand, much weaker as poly-A; best 20 nt upstream of the 3' end",
    ),
    Motif(
        name="MIG1", consensus="SYGGRG", max_mismatches=0, effect=-2.0,
        forward=1.0, reverse=1.0, peak=0.0, width=40.0, floor=0.4,
        role="Mig1-like GC-box repressor (core SYGGGG): lowers activity, most near the 3' end; "
        "also cancels REB1 (see INTERACTIONS)",
    ),
)


@dataclass(frozen=True)
class Interaction:
    """A pairwise term ``weight * u_a * u_b`` added to the log-activity.

    Attributes
    ----------
    a, b : str
        Motif names.
    weight : float
        Positive: cooperation beyond the sum of the two effects; negative: antagonism.
    role : str
        One line for documentation.
    """

    a: str
    b: str
    weight: float
    role: str


#: Pairwise interactions between motif occupancies.
INTERACTIONS: tuple[Interaction, ...] = (
    Interaction(
        "ABF1", "TATA", 1.2,
        "cooperation: an Abf1-like factor and a TATA box together add 1.2 more than their sum",
    ),
    Interaction(
        "REB1", "MIG1", -1.6,
        "antagonism: the repressor also cancels 80 % of the REB1 activation when both are bound",
    ),
)

# ----------------------------------------------------------------------------------------------
# Scanning
# ----------------------------------------------------------------------------------------------


def _position_weights(motif: Motif) -> np.ndarray:
    """Position weight of each start of a motif in the random region.

    Returns
    -------
    np.ndarray
        float64, shape ``(RANDOM_LENGTH - len(consensus) + 1,)``.
    """
    length = len(motif.consensus)
    starts = np.arange(RANDOM_LENGTH - length + 1)
    distance = RANDOM_LENGTH - (starts + length / 2.0)  # centre of the site to the 3' end
    if math.isinf(motif.width):
        return np.ones(starts.shape)
    bump = np.exp(-0.5 * ((distance - motif.peak) / motif.width) ** 2)
    return motif.floor + (1.0 - motif.floor) * bump


class _Scanner:
    """Mismatch counts of IUPAC patterns against a block of random regions.

    The block is held position-major, ``(RANDOM_LENGTH, n)``, so that "position ``j`` of every
    sequence" is one contiguous row. One 0/1 plane per distinct IUPAC mask says where the
    base is allowed; a pattern's matches at every start are sums of shifted row ranges of those
    planes: a loop over pattern positions with whole-block numpy operations inside.
    """

    def __init__(self, codes_t: np.ndarray):
        self.codes_t = codes_t
        self._planes: dict[int, np.ndarray] = {}

    def _plane(self, mask: int) -> np.ndarray:
        if mask not in self._planes:
            # Lookup over all 256 byte values so N (4), M (5) or anything else never matches;
            # stored as uint8 0/1 so the sums below are plain integer additions.
            allowed = np.zeros(256, dtype=np.uint8)
            allowed[[b for b in range(4) if mask >> b & 1]] = 1
            self._planes[mask] = allowed[self.codes_t]
        return self._planes[mask]

    def mismatches(self, pattern: str) -> np.ndarray:
        """Mismatches of ``pattern`` at every start.

        Returns
        -------
        np.ndarray
            uint8, shape ``(RANDOM_LENGTH - len(pattern) + 1, n)``: start-major.
        """
        width = RANDOM_LENGTH - len(pattern) + 1
        matches = np.zeros((width, self.codes_t.shape[1]), dtype=np.uint8)
        specified = 0
        for offset, symbol in enumerate(pattern):
            mask = _IUPAC[symbol]
            if mask == 0b1111:  # N: always matches, no work
                continue
            specified += 1
            np.add(matches, self._plane(mask)[offset:offset + width], out=matches)
        return np.subtract(specified, matches, out=matches)


# Sequences scanned per block: the planes of a block (80 x 4096 bytes each) stay in cache.
_BLOCK = 4096


def _site_scores(
    codes: np.ndarray, with_counts: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Weighted site sums (and optionally site counts) of every motif.

    Parameters
    ----------
    codes : np.ndarray
        uint8, shape ``(n, RANDOM_LENGTH)``: the random regions.
    with_counts : bool
        Also count the sites (costs about as much as the scores).

    Returns
    -------
    scores : np.ndarray
        float64, shape ``(n, len(MOTIFS))``: ``s`` of each motif (affinity x position x
        orientation, summed over sites on both strands).
    counts : np.ndarray or None
        int64, shape ``(n, len(MOTIFS), 2)``: number of exact sites (``[..., 0]``) and of
        sites within the motif's mismatch tolerance (``[..., 1]``), both strands.
    """
    n = codes.shape[0]
    scores = np.zeros((n, len(MOTIFS)))
    counts = np.zeros((n, len(MOTIFS), 2), dtype=np.int64) if with_counts else None
    # Per motif and strand: the pattern, the affinity by mismatch count (exact 1, one mismatch
    # MISMATCH_AFFINITY, beyond 0) and the weight of each start (position x orientation).
    plans = []
    for index, motif in enumerate(MOTIFS):
        affinity = np.zeros(len(motif.consensus) + 1, dtype=np.float32)
        affinity[0] = 1.0
        if motif.max_mismatches >= 1:
            affinity[1] = MISMATCH_AFFINITY
        position = _position_weights(motif)
        forward = (position * motif.forward).astype(np.float32)
        plans.append((index, motif, motif.consensus, affinity, forward))
        if not motif.palindromic:  # a palindrome's reverse scan would find the same sites again
            reverse = (position * motif.reverse).astype(np.float32)
            pattern = _iupac_reverse_complement(motif.consensus)
            plans.append((index, motif, pattern, affinity, reverse))
    for first in range(0, n, _BLOCK):
        rows = slice(first, min(first + _BLOCK, n))
        scanner = _Scanner(np.ascontiguousarray(codes[rows].T))
        for index, motif, pattern, affinity, weights in plans:
            mismatches = scanner.mismatches(pattern)  # (starts, block)
            # A vector-matrix product sums the weighted sites of the whole block at once.
            scores[rows, index] += weights @ affinity[mismatches]
            if counts is not None:
                counts[rows, index, 0] += (mismatches == 0).sum(axis=0)
                counts[rows, index, 1] += (mismatches <= motif.max_mismatches).sum(axis=0)
    return scores, counts


def _occupancy(scores: np.ndarray) -> np.ndarray:
    """Saturating occupancy ``u = (1 - exp(-s)) / (1 - exp(-1))``; one perfect site gives 1."""
    return -np.expm1(-scores) / -math.expm1(-1.0)


def _log_activity_from_codes(codes: np.ndarray) -> np.ndarray:
    """Log-activity ``L`` of random regions, float64 ``(n,)``; see the module docstring."""
    occupancy = _occupancy(_site_scores(codes)[0])
    effects = np.array([motif.effect for motif in MOTIFS])
    log_activity = BASELINE + occupancy @ effects
    index = {motif.name: i for i, motif in enumerate(MOTIFS)}
    for pair in INTERACTIONS:
        log_activity += pair.weight * occupancy[:, index[pair.a]] * occupancy[:, index[pair.b]]
    return log_activity


def _link(log_activity: np.ndarray) -> np.ndarray:
    """Logistic link from log-activity to the bin scale ``(0, N_BINS_MAX)``."""
    return N_BINS_MAX / (1.0 + np.exp(-log_activity))


def _random_regions(sequences: str | Sequence[str]) -> np.ndarray:
    """Codes of the 80-nt random regions of DREAM-layout sequences, uint8 ``(n, 80)``."""
    if isinstance(sequences, str):
        sequences = [sequences]
    sequences = list(sequences)
    if not sequences:
        return np.zeros((0, RANDOM_LENGTH), dtype=np.uint8)
    codes = encode(sequences)
    if codes.shape[1] != SEQUENCE_LENGTH:
        raise ValueError(
            f"expected DREAM-layout sequences of {SEQUENCE_LENGTH} nt "
            f"({len(DREAM_HEAD)} nt head + {RANDOM_LENGTH} random + {len(DREAM_TAIL)} nt tail), "
            f"got {codes.shape[1]} nt"
        )
    return codes[:, len(DREAM_HEAD):len(DREAM_HEAD) + RANDOM_LENGTH]


def grammar_log_activity(sequences: str | Sequence[str]) -> np.ndarray:
    """Noiseless log-activity ``L`` of DREAM-layout sequences (before the link).

    Motif effects add up in this scale (apart from the documented saturation and pair terms),
    so the grammar is easiest to inspect here; :func:`grammar_activity` applies the link.

    Parameters
    ----------
    sequences : str or sequence of str
        Sequences of 110 nt (head + 80 random nt + tail); only the random region is scanned.

    Returns
    -------
    np.ndarray
        float64, shape ``(n,)``.
    """
    return _log_activity_from_codes(_random_regions(sequences))


def grammar_activity(sequences: str | Sequence[str]) -> np.ndarray:
    """Noiseless activity of DREAM-layout sequences in the sort-bin scale ``(0, 17)``.

    Parameters
    ----------
    sequences : str or sequence of str
        Sequences of 110 nt (head + 80 random nt + tail).

    Returns
    -------
    np.ndarray
        float64, shape ``(n,)``: ``17 / (1 + exp(-L))``.
    """
    return _link(grammar_log_activity(sequences))


def count_sites(sequences: str | Sequence[str], *, exact: bool = False) -> dict[str, np.ndarray]:
    """Number of sites of each motif (both strands) in the random region.

    Parameters
    ----------
    sequences : str or sequence of str
        Sequences of 110 nt.
    exact : bool
        Count only exact matches to the consensus instead of all sites within the motif's
        mismatch tolerance.

    Returns
    -------
    dict of str to np.ndarray
        Motif name to int64 counts, shape ``(n,)``.
    """
    counts = _site_scores(_random_regions(sequences), with_counts=True)[1][:, :, 0 if exact else 1]
    return {motif.name: counts[:, i] for i, motif in enumerate(MOTIFS)}


# ----------------------------------------------------------------------------------------------
# Library
# ----------------------------------------------------------------------------------------------


@dataclass
class SyntheticLibrary:
    """A simulated DREAM-like library.

    Attributes
    ----------
    sequences : list of str
        ``n`` sequences of 110 nt: DREAM head + 80 uniform random nt + DREAM tail.
    activity : np.ndarray
        float64, shape ``(n,)``: noiseless grammar output in the sort-bin scale (0..17).
    expression : np.ndarray
        float32, shape ``(n,)``: measured expression, the mean sort bin of the cells.
    n_cells : np.ndarray
        int64, shape ``(n,)``: number of cells measured for each sequence (at least 1).
    """

    sequences: list[str]
    activity: np.ndarray
    expression: np.ndarray
    n_cells: np.ndarray

    def __len__(self) -> int:
        return len(self.sequences)


def _sequences_from_codes(random_codes: np.ndarray) -> list[str]:
    """Strings of head + random region + tail, built as one byte matrix (no per-base loop)."""
    n = random_codes.shape[0]
    full = np.empty((n, SEQUENCE_LENGTH), dtype=np.uint8)
    head, tail = len(DREAM_HEAD), len(DREAM_TAIL)
    full[:, :head] = np.frombuffer(DREAM_HEAD.encode("ascii"), dtype=np.uint8)
    full[:, head:head + RANDOM_LENGTH] = CODE_LETTERS[random_codes]
    full[:, SEQUENCE_LENGTH - tail:] = np.frombuffer(DREAM_TAIL.encode("ascii"), dtype=np.uint8)
    buffer = full.tobytes().decode("ascii")
    return [buffer[i:i + SEQUENCE_LENGTH] for i in range(0, n * SEQUENCE_LENGTH, SEQUENCE_LENGTH)]


def _measure(
    activity: np.ndarray, rng: np.random.Generator, noise: float, single_cell_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sort a few noisy cells per sequence into bins; return (expression, n_cells).

    Parameters
    ----------
    activity : np.ndarray
        float64 ``(n,)``, expected fluorescence in bin units.

    Returns
    -------
    expression : np.ndarray
        float32 ``(n,)``, mean bin of the cells.
    n_cells : np.ndarray
        int64 ``(n,)``.
    """
    n = activity.shape[0]
    # Geometric counts: P(1) = single_cell_fraction exactly, with a tail of well-measured rows.
    n_cells = rng.geometric(single_cell_fraction, size=n).astype(np.int64)
    owner = np.repeat(np.arange(n), n_cells)  # (total cells,) sequence of each cell
    fluorescence = activity[owner] + rng.normal(0.0, noise, size=owner.shape[0])
    bins = np.clip(np.rint(fluorescence), 0, N_BINS_MAX)
    # Bin sums are small integers, exact in float64, so a single-cell mean is an exact integer.
    expression = np.bincount(owner, weights=bins, minlength=n) / n_cells
    return expression.astype(np.float32), n_cells


def simulate_library(
    n: int,
    seed: int = 0,
    *,
    noise: float = DEFAULT_NOISE,
    single_cell_fraction: float = DEFAULT_SINGLE_CELL_FRACTION,
) -> SyntheticLibrary:
    """Simulate a DREAM-like library whose expression follows the documented grammar.

    Parameters
    ----------
    n : int
        Number of sequences.
    seed : int
        Seed of the numpy generator; the same ``(n, seed, noise, single_cell_fraction)`` gives
        the same library.
    noise : float
        Standard deviation, in bins, of one cell's fluorescence around the activity. Larger
        noise lowers :func:`noise_ceiling`.
    single_cell_fraction : float
        Probability that a sequence is measured with one cell; cell counts are geometric with
        this success probability (mean ``1 / single_cell_fraction``).

    Returns
    -------
    SyntheticLibrary
        Sequences (110 nt), activity (float64 ``(n,)``), expression (float32 ``(n,)``) and
        n_cells (int64 ``(n,)``).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not 0.0 < single_cell_fraction <= 1.0:
        raise ValueError(f"single_cell_fraction must be in (0, 1], got {single_cell_fraction}")
    rng = np.random.default_rng(seed)
    random_codes = rng.integers(0, 4, size=(n, RANDOM_LENGTH), dtype=np.uint8)
    activity = _link(_log_activity_from_codes(random_codes))
    expression, n_cells = _measure(activity, rng, noise, single_cell_fraction)
    return SyntheticLibrary(
        sequences=_sequences_from_codes(random_codes),
        activity=activity,
        expression=expression,
        n_cells=n_cells,
    )


def noise_ceiling(library: SyntheticLibrary) -> float:
    """Pearson correlation between the noiseless activity and the measured expression.

    A model that predicted the activity perfectly would reach exactly this correlation with the
    measurements, so it is the best Pearson r any model can get on this library.

    Parameters
    ----------
    library : SyntheticLibrary

    Returns
    -------
    float
        In [-1, 1]; NaN when either array is constant.
    """
    return pearson(library.activity, library.expression)


def format_expression(value: float) -> str:
    """Shortest decimal text that reads back as the same float32 (integers as ``7.0``)."""
    return np.format_float_positional(np.float32(value), unique=True, trim="0")


def write_tsv(library: SyntheticLibrary, path: str | os.PathLike) -> Path:
    """Write ``sequence<TAB>expression`` lines, the DREAM 2022 training format (no header).

    Parameters
    ----------
    library : SyntheticLibrary
    path : str or path-like
        Output file; parent directories must exist.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    lines = (
        f"{sequence}\t{format_expression(value)}\n"
        for sequence, value in zip(library.sequences, library.expression)
    )
    with open(path, "w", encoding="ascii", newline="\n") as handle:
        handle.writelines(lines)
    return path
