"""A simulated genome whose accessibility is a known function of its sequence.

:func:`simulate_atac` writes the inputs of :func:`proformer.data.atac.prepare_atac` without any
download: a genome FASTA, a bigWig of accessibility, a narrowPeak of summits and optionally a
BAM of Tn5-shifted reads. It serves the tests and the end-to-end example of ``docs/atac.md``.

The model of the genome (all constants below):

* **Sequence.** Uniform random A/C/G/T. "Enhancers" are spread over each chromosome, one per
  equal segment (centre jittered by up to a quarter segment); each carries
  :data:`SITES_PER_ENHANCER` planted motif instances (:data:`MOTIFS`, chosen with
  :data:`MOTIF_PROBABILITY`) within +-:data:`SITE_SPREAD` bp of its centre, in a random
  orientation, the consensus's ambiguous positions filled at random.
* **Sites.** After planting, every exact match of a consensus on either strand is a site
  (planted or by chance); a palindromic match counts once.
* **Accessibility.** ``clean(x) = BASELINE + sum over sites of height_m * exp(-0.5 * ((x - c) /
  SIGMA) ** 2)`` with ``c`` the centre of the site (start + (len - 1) / 2), bumps cut at 4 SIGMA.
* **Signal.** ``observed(x) = max(0, clean(x) + Normal(0, NOISE_SD))`` per base; the bigWig
  holds it per base or as means over ``bin_size``-bp bins.
* **Peaks.** Each enhancer's summit is the argmax of ``clean`` within +-SITE_SPREAD bp of its centre; the
  ``n_peaks`` enhancers with the highest summit value become narrowPeak lines
  (``summit +- 250`` bp, column 10 the summit offset).
* **Reads (optional).** Insertions drawn with probability proportional to ``clean``; each gives
  one 50-bp read on a random strand, placed so that :func:`proformer.data.atac.tn5_insertions`
  maps it back to the insertion.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..sequence import CODE_LETTERS, IUPAC_BASES, IUPAC_COMPLEMENT

__all__ = ["MOTIFS", "clean_accessibility", "motif_sites", "simulate_atac", "write_bigwig", "write_fasta"]

#: name -> (IUPAC consensus, bump height): a CTCF-like core and an AP-1 (TRE) site.
MOTIFS = {"CTCF": ("CCGCGNGGNGGCAG", 3.0), "AP1": ("TGASTCA", 2.0)}
MOTIF_PROBABILITY = {"CTCF": 0.4, "AP1": 0.6}
SIGMA = 20.0
BASELINE = 0.1
NOISE_SD = 0.2
READ_LENGTH = 50
#: Planted sites per enhancer (uniform over this inclusive range) and their spread (bp) around
#: its centre: several sites spread over the +-450 bp where window centres fall, so that many
#: windows hold a site near their centre and the target varies with the sequence.
SITES_PER_ENHANCER = (2, 4)
SITE_SPREAD = 300


def _allowed(consensus: str) -> np.ndarray:
    """bool ``(len, 4)``: which of A C G T each consensus position accepts."""
    return np.array([[base in IUPAC_BASES[symbol] for base in "ACGT"] for symbol in consensus])


def _reverse_complement(consensus: str) -> str:
    return consensus.translate(IUPAC_COMPLEMENT)[::-1]


def motif_sites(codes: np.ndarray, consensus: str) -> np.ndarray:
    """Start positions of exact matches of an IUPAC consensus on either strand.

    Parameters
    ----------
    codes : np.ndarray
        uint8 ``(length,)``, A C G T = 0..3 (N = 4 matches nothing).
    consensus : str
        IUPAC motif.

    Returns
    -------
    np.ndarray
        int64 ``(s,)``, sorted, each start once (a palindrome is found on both strands).
    """
    k = len(consensus)
    if len(codes) < k:
        return np.zeros(0, dtype=np.int64)
    found = np.zeros(len(codes) - k + 1, dtype=bool)
    for motif in {consensus, _reverse_complement(consensus)}:
        # Column 4 (N) is never allowed, so a site never spans an N.
        allowed = np.hstack([_allowed(motif), np.zeros((k, 1), bool)])
        match = np.ones(len(found), dtype=bool)
        for j in range(k):  # one vectorised pass over the chromosome per motif position
            match &= allowed[j][codes[j : j + len(found)]]
        found |= match
    return np.flatnonzero(found)


def clean_accessibility(length: int, sites: dict[str, np.ndarray]) -> np.ndarray:
    """Noise-free accessibility ``(length,)`` float64 from motif sites (module docstring)."""
    signal = np.full(length, BASELINE)
    reach = int(4 * SIGMA)
    offsets = np.arange(-reach, reach + 1)
    for name, starts in sites.items():
        consensus, height = MOTIFS[name]
        centre = starts + (len(consensus) - 1) / 2.0
        positions = np.floor(centre).astype(np.int64)[:, None] + offsets
        bump = height * np.exp(-0.5 * ((positions - centre[:, None]) / SIGMA) ** 2)
        inside = (positions >= 0) & (positions < length)
        np.add.at(signal, positions[inside], bump[inside])
    return signal


def write_fasta(path: str | os.PathLike, chromosomes: dict[str, np.ndarray], line_width: int = 60) -> None:
    """Write codes (A C G T N = 0..4, uint8 per chromosome) as a FASTA with fixed-width lines."""
    with open(path, "wb") as handle:
        for name, codes in chromosomes.items():
            letters = CODE_LETTERS[codes]
            full = len(letters) // line_width * line_width
            lines = np.hstack([letters[:full].reshape(-1, line_width), np.full((full // line_width, 1), ord("\n"), np.uint8)])
            handle.write(f">{name}\n".encode())
            handle.write(lines.tobytes())
            if full < len(letters):
                handle.write(letters[full:].tobytes() + b"\n")


def write_bigwig(path: str | os.PathLike, values: dict[str, np.ndarray], bin_size: int = 1) -> None:
    """Write per-base values (NaN = no data) as a bigWig, per base or as ``bin_size``-bp means.

    A bin holding any NaN is left out (no data); every chromosome length must be a multiple of
    ``bin_size``.
    """
    import pyBigWig

    bw = pyBigWig.open(os.fspath(path), "w")
    try:
        bw.addHeader([(name, len(v)) for name, v in values.items()], maxZooms=0)
        for name, v in values.items():
            if len(v) % bin_size:
                raise ValueError(f"{name}: length {len(v)} is not a multiple of bin_size={bin_size}")
            binned = np.asarray(v, dtype=np.float64).reshape(-1, bin_size).mean(axis=1)
            present = np.flatnonzero(~np.isnan(binned))
            if not present.size:
                continue
            # One fixed-step run per stretch of bins with data (gaps split the runs).
            breaks = np.flatnonzero(np.diff(present) > 1) + 1
            for run in np.split(present, breaks):
                bw.addEntries(name, int(run[0]) * bin_size, values=binned[run], span=bin_size, step=bin_size)
    finally:
        bw.close()


def _plant(rng: np.random.Generator, codes: np.ndarray, centres: np.ndarray) -> None:
    """Plant SITES_PER_ENHANCER motif instances within +-SITE_SPREAD bp of each enhancer centre (in place)."""
    low, high = SITES_PER_ENHANCER
    per_enhancer = rng.integers(low, high + 1, size=len(centres))
    anchor = np.repeat(centres, per_enhancer)
    names = list(MOTIFS)
    which = rng.choice(len(names), size=len(anchor), p=[MOTIF_PROBABILITY[name] for name in names])
    for m, name in enumerate(names):
        consensus = MOTIFS[name][0]
        k = len(consensus)
        rows = anchor[which == m]
        starts = rows + rng.integers(-SITE_SPREAD, SITE_SPREAD - k + 1, size=len(rows))
        starts = starts[(starts >= 0) & (starts + k <= len(codes))]
        reverse = rng.random(len(starts)) < 0.5
        for motif, chosen in ((consensus, ~reverse), (_reverse_complement(consensus), reverse)):
            allowed = _allowed(motif)
            # A random admissible base per position: random scores, forbidden bases excluded.
            scores = rng.random((int(chosen.sum()), k, 4)) * allowed
            codes[starts[chosen][:, None] + np.arange(k)] = scores.argmax(axis=2).astype(np.uint8)


def _summits(clean: np.ndarray, centres: np.ndarray, reach: int = SITE_SPREAD) -> tuple[np.ndarray, np.ndarray]:
    """Argmax of ``clean`` within +-reach of each centre: positions and values."""
    low = np.clip(centres - reach, 0, len(clean) - 2 * reach - 1)
    block = clean[low[:, None] + np.arange(2 * reach + 1)]
    best = block.argmax(axis=1)
    return low + best, block[np.arange(len(low)), best]


def _write_narrowpeak(path: Path, rows: list[tuple[str, int, float, int]]) -> None:
    """rows of (chrom, summit, value, chrom_length) -> narrowPeak sorted as given."""
    lines = []
    for i, (chrom, summit, value, length) in enumerate(rows):
        start, end = max(0, summit - 250), min(length, summit + 250)
        score = min(1000, int(value * 100))
        lines.append(f"{chrom}\t{start}\t{end}\tpeak_{i}\t{score}\t.\t{value:.4f}\t-1\t-1\t{summit - start}\n")
    path.write_text("".join(lines))


def _write_bam(path: Path, rng: np.random.Generator, genome: dict[str, np.ndarray], clean: dict[str, np.ndarray], n_reads: int) -> None:
    """Reads whose Tn5 insertions follow ``clean``; coordinate-sorted and indexed."""
    import pysam

    from .atac import TN5_MINUS_SHIFT, TN5_PLUS_SHIFT

    names = list(genome)
    totals = np.array([clean[name].sum() for name in names])
    per_chrom = rng.multinomial(n_reads, totals / totals.sum())
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": name, "LN": len(genome[name])} for name in names]}
    with pysam.AlignmentFile(os.fspath(path), "wb", header=header) as bam:
        for tid, name in enumerate(names):
            length = len(genome[name])
            weights = clean[name] / clean[name].sum()
            insertion = rng.choice(length, size=per_chrom[tid], p=weights)
            reverse = rng.random(len(insertion)) < 0.5
            # Invert tn5_insertions: + strand start = insertion - 4; - strand end = insertion + 1 + 5.
            start = np.where(reverse, insertion + 1 + TN5_MINUS_SHIFT - READ_LENGTH, insertion - TN5_PLUS_SHIFT)
            inside = (start >= 0) & (start + READ_LENGTH <= length)
            start, reverse = start[inside], reverse[inside]
            order = np.argsort(start, kind="stable")
            letters = CODE_LETTERS[genome[name]].tobytes().decode("ascii")
            for i in order:  # pysam writes one record at a time
                read = pysam.AlignedSegment(bam.header)
                read.query_name = f"{name}_{i}"
                read.flag = 16 if reverse[i] else 0
                read.reference_id = tid
                read.reference_start = int(start[i])
                read.mapping_quality = 60
                read.cigartuples = [(0, READ_LENGTH)]
                read.query_sequence = letters[start[i] : start[i] + READ_LENGTH]
                bam.write(read)
    pysam.index(os.fspath(path))


def simulate_atac(
    out_dir: str | os.PathLike,
    *,
    chromosomes: int = 3,
    chrom_length: int = 2_000_000,
    n_peaks: int | None = None,
    seed: int = 0,
    bin_size: int = 1,
    bam: bool = False,
    n_reads: int = 100_000,
) -> dict:
    """Write a simulated genome, its accessibility and peaks (module docstring) to ``out_dir``.

    Parameters
    ----------
    out_dir : str or path
        Created if needed; receives ``genome.fa``, ``signal.bw``, ``peaks.narrowPeak``,
        ``sites.bed`` (every motif site: chrom, start, end, motif) and, with ``bam=True``,
        ``reads.bam`` + ``reads.bam.bai``.
    chromosomes : int
        Named ``chr1``, ``chr2``, ...
    chrom_length : int
        Length of each chromosome (bp); a multiple of ``bin_size``.
    n_peaks : int, optional
        Summits written; default one per 2 kb of genome. 1.25 times as many enhancers are
        planted, so the peaks are the strongest of them.
    seed : int
        Seeds everything.
    bin_size : int
        Resolution of the bigWig (1 = per base).
    bam : bool
        Also write a BAM of ``n_reads`` reads.

    Returns
    -------
    dict
        Paths (``fasta``, ``signal``, ``peaks``, ``sites``, ``bam``; ``bam`` is None without
        ``bam=True``), ``n_peaks``, and ``motif_sites``: the number of sites per motif.
    """
    if n_peaks is None:
        n_peaks = chromosomes * chrom_length // 2000
    per_chrom = math.ceil(1.25 * n_peaks / chromosomes)
    segment = chrom_length // max(per_chrom, 1)
    if segment < 400:
        # Enhancers closer than this would mostly share their sites (spread +-SITE_SPREAD bp).
        raise ValueError(f"n_peaks={n_peaks} is too many for {chromosomes} x {chrom_length:,} bp (enhancers need >= 400 bp each)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genome, clean, observed, sites, candidates = {}, {}, {}, {}, []
    counts = {name: 0 for name in MOTIFS}
    for c in range(chromosomes):
        name = f"chr{c + 1}"
        codes = rng.integers(0, 4, size=chrom_length, dtype=np.uint8)
        centres = np.arange(per_chrom) * segment + segment // 2 + rng.integers(-(segment // 4), segment // 4 + 1, size=per_chrom)
        _plant(rng, codes, centres)
        found = {motif: motif_sites(codes, MOTIFS[motif][0]) for motif in MOTIFS}
        clean[name] = clean_accessibility(chrom_length, found)
        observed[name] = np.maximum(clean[name] + rng.normal(0.0, NOISE_SD, size=chrom_length), 0.0)
        summit, value = _summits(clean[name], centres)
        candidates += [(name, int(s), float(v), chrom_length) for s, v in zip(summit, value)]
        genome[name], sites[name] = codes, found
        for motif, starts in found.items():
            counts[motif] += len(starts)

    strongest = sorted(range(len(candidates)), key=lambda i: -candidates[i][2])[:n_peaks]
    chosen = sorted((candidates[i] for i in strongest), key=lambda row: (int(row[0][3:]), row[1]))
    paths = {"fasta": out / "genome.fa", "signal": out / "signal.bw", "peaks": out / "peaks.narrowPeak", "sites": out / "sites.bed"}
    write_fasta(paths["fasta"], genome)
    write_bigwig(paths["signal"], observed, bin_size)
    _write_narrowpeak(paths["peaks"], chosen)
    with open(paths["sites"], "w") as handle:
        for name, found in sites.items():
            for motif, starts in found.items():
                k = len(MOTIFS[motif][0])
                handle.write("".join(f"{name}\t{s}\t{s + k}\t{motif}\n" for s in starts))
    paths["bam"] = None
    if bam:
        paths["bam"] = out / "reads.bam"
        _write_bam(paths["bam"], rng, genome, clean, n_reads)
    return {**{key: (str(value) if value is not None else None) for key, value in paths.items()}, "n_peaks": len(chosen), "motif_sites": counts}
