"""ATAC-seq windows around peak summits -> train/test dataset directories (docs/model.md section 7).

:func:`prepare_atac` turns a genome FASTA, an accessibility signal (a bigWig, or Tn5 insertions
counted from a BAM) and peak summits (narrowPeak or BED) into the task of the talk: ``n``
windows of ``window`` bp drawn at random from the ``2 * flank`` bp around the summits, each
with the mean signal over its central ``center`` bp as the target. The result is two dataset
directories in the layout of ``docs/dataset-format.md`` (``out/train`` and ``out/test``), each
with a ``windows.tsv`` of genomic coordinates, and ``out/meta.json`` describing the whole run.
The inputs are read by :mod:`proformer.io.genome` (FASTA), :mod:`proformer.io.signal` (bigWig,
BAM) and :mod:`proformer.io.peaks` (narrowPeak, BED, blacklist); :mod:`proformer.data.atac_windows`
draws the windows, filters them and computes the targets; this module checks the inputs, splits
the windows and writes the datasets. ``docs/atac.md`` is the user's guide; the conventions in short:

Coordinates
    0-based, half-open, as in BED. A window is ``[start, start + window)`` with
    ``start = c - window // 2`` for a centre ``c``.
Summits
    narrowPeak (10 columns): ``start + column 10`` (0-based offset of the summit from the peak
    start), or the midpoint ``(start + end) // 2`` when column 10 is ``-1``. BED of summits
    (3 or more columns, any other column count): ``start`` when ``end - start <= 1`` (a 1-bp
    summit record), else the midpoint ``(start + end) // 2``. ``peak_format`` forces either.
Windows
    A candidate draws a summit uniformly with replacement, then a start offset uniformly among
    the integers that keep the window entirely inside ``[summit - flank, summit + flank)``
    (with 100/500: starts ``summit - 500 .. summit + 400``, centres ``summit +- 450``).
Target
    The mean over the central ``center`` bp, ``[start + (window - center) // 2, ... + center)``
    (an odd surplus goes to the right, as in :func:`proformer.sequence.center_pad`), in float64,
    then ``transform`` (``none`` or ``log1p``), stored as float32. The mean is computed by
    gathering those ``center`` values per window straight from the chromosome's array: exact,
    and no chromosome-long cumulative sum in memory.
Filters
    Checked in this order; the first that applies names the reason in ``meta["dropped"]``:
    ``off_chromosome`` (the window starts before 0 or ends past the chromosome end),
    ``blacklist`` (overlaps a blacklist interval by at least 1 bp), ``too_many_n`` (more than
    ``max_n_frac`` of the window is N; IUPAC ambiguity codes count as N), ``missing_signal``
    (``missing="skip"`` and some base of the central region has no bigWig data).
Drawing until ``n`` are kept
    Candidates form one seeded stream; the first ``n`` that pass the filters are kept, in
    drawing order. The stream is evaluated in rounds (each round reads the chromosomes once);
    a round draws enough candidates for the keep rate seen so far (the first ``1.1 n + 64``).
    Candidates drawn after the ``n``-th kept one are discarded uncounted, so
    ``rows_read == rows_kept + sum(dropped)``. When 10 rounds do not reach ``n`` (or a round
    keeps nothing), :class:`InputError` says how many windows could be kept.
"""

from __future__ import annotations

import datetime
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..io.dataset import CODES, FILES, INTEGER_TARGET, LENGTHS, META, TARGETS, WINDOWS, publish, write_meta
from ..io.errors import InputError
from ..io.sources import check_links
from ..io.genome import Genome
from ..io.peaks import Peaks, read_blacklist, read_peaks
from ..io.signal import BAM_SKIP_FLAGS, TN5_MINUS_SHIFT, TN5_PLUS_SHIFT, BamInsertions, BigWigSignal, tn5_insertions
from .atac_windows import OK, REASONS, Options, Round, count_dropped, counts_text, draw_until

__all__ = ["REASONS", "TN5_MINUS_SHIFT", "TN5_PLUS_SHIFT", "prepare_atac", "read_blacklist", "read_peaks", "tn5_insertions"]

#: The talk's ATAC-seq setup (docs/model.md section 7): 100-nt windows within summit +- 500 bp,
#: the target the mean signal over the central 20 bp.
WINDOW, FLANK, CENTER = 100, 500, 20

TRANSFORMS = ("none", "log1p")
MISSING = ("zero", "skip")
TARGET_NAME = "atac_signal"

_EXAMPLES = 5


# --------------------------------------------------------------------------------------------
# Chromosome names across files.
# --------------------------------------------------------------------------------------------


def _examples(names) -> str:
    names = list(names)
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _EXAMPLES else "")


def _naming_hint(missing: list[str], available) -> str:
    available = set(available)
    if any(name.startswith("chr") and name[3:] in available for name in missing):
        return " The files differ by a 'chr' prefix ('chr1' here, '1' there): remove it from one file (e.g. sed 's/^chr//')."
    if any("chr" + name in available for name in missing):
        return " The files differ by a 'chr' prefix ('1' here, 'chr1' there): add it to one file (e.g. sed 's/^/chr/')."
    return " Use files of the same genome build with the same chromosome names."


def _check_names(what: str, display: str, names: list[str], other_what: str, other_display: str, other_names, also: str = "") -> None:
    """Raise InputError when some of ``names`` (from ``display``) are absent from ``other_names``."""
    other = set(other_names)
    missing = [name for name in names if name not in other]
    if missing:
        raise InputError(
            f"{display}: {len(missing)} of the {len(names)} chromosomes of the {what} are not in the "
            f"{other_what} {other_display}: {_examples(missing)}. Chromosomes in the {what}: "
            f"{_examples(names)}; in the {other_what}: {_examples(other_names)}{also}.{_naming_hint(missing, other)}"
        )


def _check_chromosomes(peaks: Peaks, genome: Genome, source) -> None:
    """Peak chromosomes must exist in the FASTA and in the signal; the message shows all three files."""
    _check_names("peaks", peaks.display, peaks.names, "FASTA", genome.display, list(genome.lengths),
                 also=f"; in the {source.kind} {source.display}: {_examples(source.lengths)}")
    _check_names("peaks", peaks.display, peaks.names, source.kind, source.display, list(source.lengths),
                 also=f"; in the FASTA {genome.display}: {_examples(genome.lengths)}")


def _check_lengths(names: list[str], genome: Genome, signal) -> None:
    """The genome and the signal must agree on each used chromosome's length (same build)."""
    differ = [name for name in names if signal.lengths[name] != genome.lengths[name]]
    if differ:
        shown = ", ".join(f"{name} ({genome.lengths[name]:,} bp in the FASTA, {signal.lengths[name]:,} in the {signal.kind})" for name in differ[:_EXAMPLES])
        raise InputError(
            f"{signal.display}: chromosome lengths differ from the FASTA {genome.display}: {shown}; the files "
            "come from different genome builds (e.g. hg19 and hg38): use one build for all inputs"
        )


def _check_summits(peaks: Peaks, lengths: np.ndarray) -> None:
    """Every summit must lie on its chromosome (else peaks and genome are of different builds)."""
    outside = np.flatnonzero(peaks.summit >= lengths[peaks.chrom])
    if outside.size:
        i = int(outside[0])
        name = peaks.names[peaks.chrom[i]]
        raise InputError(
            f"{peaks.display}:{peaks.line[i]}: summit {name}:{peaks.summit[i]} lies past the end of {name} "
            f"({lengths[peaks.chrom[i]]:,} bp in the FASTA); {outside.size} summit(s) do. Peaks and genome "
            "must come from the same build"
        )


# --------------------------------------------------------------------------------------------
# Split and output.
# --------------------------------------------------------------------------------------------


def _parse_split(split: str, peaks: Peaks, genome: Genome) -> tuple[str, object]:
    """``("random", F)`` or ``("chrom", [names])``, checked before any heavy work."""
    strategy, _, value = split.partition(":")
    if strategy == "random":
        try:
            fraction = float(value)
        except ValueError:
            fraction = math.nan
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"split={split!r}: the training fraction after 'random:' must be a number in (0, 1), e.g. random:0.8")
        return "random", fraction
    if strategy == "chrom":
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError(f"split={split!r}: name the held-out chromosomes, e.g. chrom:chr8,chr9")
        unknown = [name for name in names if name not in genome.lengths]
        if unknown:
            raise ValueError(f"split={split!r}: {', '.join(unknown)} not in the FASTA {genome.display} (it has {_examples(genome.lengths)})")
        without = [name for name in names if name not in peaks.names]
        if without:
            raise ValueError(f"split={split!r}: no peaks on {', '.join(without)} in {peaks.display} (peaks lie on {_examples(peaks.names)})")
        if set(names) >= set(peaks.names):
            raise ValueError(f"split={split!r}: every chromosome with peaks is held out, so nothing is left for training")
        return "chrom", names
    raise ValueError(f"split={split!r}: use random:F (e.g. random:0.8) or chrom:NAME,NAME (e.g. chrom:chr8,chr9)")


def _split_rows(kept: Round, parsed: tuple[str, object], peaks: Peaks, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices of the training and test parts."""
    strategy, value = parsed
    n = len(kept.start)
    if strategy == "random":
        # Its own stream, so the split does not shift the windows drawn (and vice versa).
        order = np.random.default_rng([seed, 1]).permutation(n)
        cut = round(value * n)
        train, test = np.sort(order[:cut]), np.sort(order[cut:])
    else:
        held = np.isin(kept.chrom, [peaks.names.index(name) for name in value])
        train, test = np.flatnonzero(~held), np.flatnonzero(held)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"split {strategy}:{value} of {n:,} windows leaves {len(train):,} training and {len(test):,} test windows; draw more windows (n)")
    return train, test


def _fingerprint(path: Path) -> dict:
    """Path, size and mtime: enough to notice a changed genome or signal without hashing GBs."""
    stat = path.stat()
    mtime = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc)
    return {"path": str(path), "size": stat.st_size, "mtime": mtime.isoformat(timespec="seconds")}


def _write_windows(path: Path, part: Round, names: list[str], window: int, targets: np.ndarray) -> None:
    """``windows.tsv``: ``chrom start end summit target``, 0-based half-open, row order of the arrays."""
    columns = [
        np.asarray(names, dtype=object)[part.chrom],
        part.start.astype(str),
        (part.start + window).astype(str),
        part.summit.astype(str),
        np.char.mod("%.9g", targets),  # 9 significant digits round-trip a float32
    ]
    body = "".join(f"{line}\n" for line in map("\t".join, zip(*columns)))
    path.write_text("chrom\tstart\tend\tsummit\ttarget\n" + body)


def _write_part(directory: Path, part: Round, targets: np.ndarray, names: list[str], common: dict, label: str) -> dict:
    """One dataset directory (docs/dataset-format.md) plus ``windows.tsv``; returns its meta."""
    directory.mkdir()
    window = part.codes.shape[1]
    np.save(directory / CODES, np.ascontiguousarray(part.codes, dtype=np.uint8))
    np.save(directory / LENGTHS, np.full(len(targets), window, dtype=np.int32))
    np.save(directory / TARGETS, targets[:, None])
    np.save(directory / INTEGER_TARGET, np.zeros(len(targets), dtype=bool))
    _write_windows(directory / WINDOWS, part, names, window, targets)
    as64 = targets.astype(np.float64)  # statistics of the stored float32 values
    meta = {
        "source": common["source"],
        "rows_read": len(targets),
        "rows_kept": len(targets),
        # Windows are dropped before the split; the counts by reason are in ../meta.json.
        "dropped": {},
        "target_names": [TARGET_NAME],
        "target_mean": [float(as64.mean())],
        "target_std": [float(as64.std())],
        "min_length": window,
        "max_length": window,
        "transforms": {"head": 0, "tail": 0, "length": window},
        # What a genome track needs to place the run's windows (proformer.tracks.windows.Placement).
        "atac": {"part": label, "split": common["split"], "preparation": "../meta.json", "window": window,
                 "target_span": list(common["target_span"]), "transform": common["transform"]},
        "proformer_version": common["proformer_version"],
        "created": common["created"],
    }
    return write_meta(directory, meta)


def _check_replaceable(directory: Path) -> None:
    """Refuse to replace a directory that holds anything but a dataset (someone else's files)."""
    if directory.exists():
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in FILES)
        if not directory.is_dir() or foreign:
            raise FileExistsError(
                f"{directory} exists and holds files that are not part of a dataset ({', '.join(foreign[:5]) or 'not a directory'}); "
                "choose another output directory or remove it"
            )


def _write_output(out: Path, kept: Round, targets: np.ndarray, train: np.ndarray, test: np.ndarray, names: list[str], common: dict, summary: dict) -> dict:
    """Write ``out/train``, ``out/test`` and ``out/meta.json`` in a temporary directory, then move
    them in; returns the summary as written to ``out/meta.json``."""
    for label in ("train", "test"):
        _check_replaceable(out / label)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".prepare-atac-", dir=out))
    try:
        for label, rows in (("train", train), ("test", test)):
            _write_part(tmp / label, kept[rows], targets[rows], names, common, label)
        summary = write_meta(tmp, summary)
        # Move into place only once everything is written: a failed run leaves the old output.
        for label in ("train", "test"):
            publish(tmp / label, out / label)
        os.replace(tmp / META, out / META)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


# --------------------------------------------------------------------------------------------
# The public function.
# --------------------------------------------------------------------------------------------


def _check_options(n, window, flank, center, transform, missing, max_n_frac, signal, bam) -> None:
    if (signal is None) == (bam is None):
        raise ValueError("give exactly one source of accessibility: signal=BIGWIG (--signal) or bam=BAM (--bam)")
    for name, value, low in (("n", n, 2), ("window", window, 1), ("center", center, 1), ("flank", flank, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}={value!r}: must be an integer >= {low}")
    if center > window:
        raise ValueError(f"center={center} is wider than window={window}; the target region lies inside the window")
    if window > 2 * flank:
        raise ValueError(f"window={window} does not fit in summit +- flank ({2 * flank} bp with flank={flank}); use flank >= {math.ceil(window / 2)}")
    if transform not in TRANSFORMS:
        raise ValueError(f"transform={transform!r}: use one of {', '.join(TRANSFORMS)}")
    if missing not in MISSING:
        raise ValueError(f"missing={missing!r}: use 'zero' (no data counts as 0) or 'skip' (drop such windows)")
    if not 0.0 <= max_n_frac <= 1.0:
        raise ValueError(f"max_n_frac={max_n_frac!r}: must be in [0, 1]")


def _transform(mean: np.ndarray, transform: str, kept: Round, names: list[str], source) -> np.ndarray:
    """float32 targets from float64 window means."""
    if transform == "log1p":
        below = np.flatnonzero(mean < -1.0)
        if below.size:
            i = int(below[0])
            raise InputError(
                f"{source.display}: the mean signal {mean[i]:.6g} of window {names[kept.chrom[i]]}:{kept.start[i]}-"
                f"{kept.start[i] + kept.codes.shape[1]} is below -1, where log1p is undefined ({below.size} window(s)); "
                "use transform='none' for signed signals such as log fold changes"
            )
        mean = np.log1p(mean)
    return mean.astype(np.float32)


def prepare_atac(
    fasta: str | os.PathLike,
    out: str | os.PathLike,
    *,
    signal: str | os.PathLike | None = None,
    bam: str | os.PathLike | None = None,
    peaks: str | os.PathLike,
    n: int = 100_000,
    window: int = WINDOW,
    flank: int = FLANK,
    center: int = CENTER,
    seed: int = 0,
    split: str = "random:0.8",
    blacklist: str | os.PathLike | None = None,
    transform: str = "none",
    max_n_frac: float = 0.1,
    missing: str = "zero",
    peak_format: str = "auto",
    progress: bool = True,
) -> dict:
    """Draw ATAC-seq windows around peak summits into ``out/train`` and ``out/test``.

    Parameters
    ----------
    fasta : str or path
        Genome FASTA, plain (pyfaidx reads bgzip only with Biopython installed); pyfaidx
        writes a .fai beside it on first use.
    out : str or path
        Output directory: ``out/train/`` and ``out/test/`` (dataset directories, each with a
        ``windows.tsv``) and ``out/meta.json``. Earlier output there is replaced.
    signal : str or path, optional
        bigWig of accessibility. Exactly one of ``signal`` and ``bam``.
    bam : str or path, optional
        Coordinate-sorted, indexed BAM: Tn5 insertions (see :func:`tn5_insertions`) counted per
        base stand in for the signal. Unmapped, secondary, supplementary, duplicate and
        QC-fail reads are skipped (``BAM_SKIP_FLAGS``); each remaining read (either mate of a
        pair) is one insertion.
    peaks : str or path
        narrowPeak or BED of summits, plain or gzip (summit rules in the module docstring).
    n : int
        Windows to keep (``rows_kept == n`` unless too few candidates pass the filters).
    window : int
        Window width (bp); ``model.length`` must equal it.
    flank : int
        Windows lie entirely inside ``[summit - flank, summit + flank)``.
    center : int
        The target is the mean signal over the central ``center`` bp.
    seed : int
        Seeds the draws and the random split.
    split : str
        ``random:F`` (seeded, by window; F trains) or ``chrom:chr8,chr9`` (windows on those
        chromosomes form the test part).
    blacklist : str or path, optional
        BED of regions a window must not overlap.
    transform : {"none", "log1p"}
        Applied to the window mean.
    max_n_frac : float
        Windows with a larger fraction of N are dropped (``too_many_n``).
    missing : {"zero", "skip"}
        bigWig bases without data count as 0, or drop the window (``missing_signal``).
    peak_format : {"auto", "narrowpeak", "bed"}
        How to read ``peaks``.
    progress : bool
        Report chromosomes and rounds on stderr.

    Returns
    -------
    dict
        The contents of ``out/meta.json``.

    Raises
    ------
    InputError
        Malformed peaks or blacklist (naming ``file:line``), chromosome names or lengths that
        differ between files, or fewer than ``n`` windows passing the filters.
    ValueError
        Invalid options.
    """
    from .. import __version__

    began = time.perf_counter()
    _check_options(n, window, flank, center, transform, missing, max_n_frac, signal, bam)
    options = Options(int(window), int(flank), int(center), float(max_n_frac), missing, transform)
    check_links([fasta], "--fasta")  # before resolve(), whose loop message names no option
    check_links([signal if signal is not None else bam], "--signal" if signal is not None else "--bam")
    check_links([p for p in (peaks, blacklist) if p is not None], "--peaks/--blacklist")
    fasta_path = Path(fasta).resolve()
    source_path = Path(signal if signal is not None else bam).resolve()
    for path, given in ((fasta_path, fasta), (source_path, signal if signal is not None else bam)):
        if not path.is_file():
            raise FileNotFoundError(f"file not found: {os.fspath(given)}")

    parsed_peaks = read_peaks(peaks, peak_format)
    blacklist_by_name, blacklist_sha, blacklist_count = read_blacklist(blacklist) if blacklist is not None else ({}, None, 0)
    genome = Genome(fasta_path, os.fspath(fasta))
    source = None
    try:
        source = (BigWigSignal if signal is not None else BamInsertions)(source_path, os.fspath(signal if signal is not None else bam))
        _check_chromosomes(parsed_peaks, genome, source)
        _check_lengths(parsed_peaks.names, genome, source)
        if blacklist_by_name and not set(blacklist_by_name) & set(genome.lengths):
            _check_names("blacklist", os.fspath(blacklist), list(blacklist_by_name), "FASTA", genome.display, list(genome.lengths))
        lengths = np.array([genome.lengths[name] for name in parsed_peaks.names], dtype=np.int64)
        _check_summits(parsed_peaks, lengths)
        parsed_split = _parse_split(split, parsed_peaks, genome)
        index = {name: i for i, name in enumerate(parsed_peaks.names)}
        blacklist_by_index = {index[name]: value for name, value in blacklist_by_name.items() if name in index}

        rng = np.random.default_rng(seed)
        stream, rounds = draw_until(n, rng, parsed_peaks, lengths, blacklist_by_index, genome, source, options, progress)
    finally:
        genome.close()
        if source is not None:
            source.close()

    kept = stream[stream.reason == OK]
    targets = _transform(kept.target, transform, kept, parsed_peaks.names, source)
    train, test = _split_rows(kept, parsed_split, parsed_peaks, seed)
    dropped = count_dropped(stream.reason)
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    peaks_path = Path(peaks).resolve()
    common = {
        "source": {"path": str(peaks_path), "sha256": parsed_peaks.sha256, "format": "atac"},
        "split": split,
        "target_span": [options.center_offset, options.center_offset + options.center],
        "transform": transform,
        "proformer_version": __version__,
        "created": created,
    }
    per_chrom = np.bincount(kept.chrom, minlength=len(parsed_peaks.names))
    as64 = targets.astype(np.float64)
    summary = {
        "task": "atac",
        "sources": {
            "fasta": _fingerprint(fasta_path),
            source.kind: _fingerprint(source_path),
            "peaks": {"path": str(peaks_path), "sha256": parsed_peaks.sha256, "format": parsed_peaks.format,
                      "summits": len(parsed_peaks.summit)},
            "blacklist": None if blacklist is None else {"path": str(Path(blacklist).resolve()), "sha256": blacklist_sha, "intervals": blacklist_count},
        },
        "options": {"n": int(n), "window": options.window, "flank": options.flank, "center": options.center, "seed": int(seed),
                    "split": split, "transform": transform, "max_n_frac": options.max_n_frac, "missing": missing,
                    "peak_format": parsed_peaks.format},
        "coordinates": "0-based half-open; target = mean over [start + (window - center) // 2, + center)",
        "rows_read": len(stream.start),
        "rows_kept": len(kept.start),
        "dropped": dropped,
        "rounds": rounds,
        "parts": {"train": len(train), "test": len(test)},
        "windows_per_chromosome": {name: int(count) for name, count in zip(parsed_peaks.names, per_chrom) if count},
        "target_names": [TARGET_NAME],
        "target_mean": [float(as64.mean())],
        "target_std": [float(as64.std())],
        "transforms": {"head": 0, "tail": 0, "length": options.window},
        "proformer_version": __version__,
        "created": created,
    }
    if source.kind == "bam":
        used, skipped = (sum(counts) for counts in zip(*source.reads.values())) if source.reads else (0, 0)
        summary["bam_reads"] = {"used": used, "skipped_by_flag": skipped, "skip_flags": BAM_SKIP_FLAGS,
                                "note": "reads on the chromosomes that had windows"}
    summary = _write_output(Path(out), kept, targets, train, test, parsed_peaks.names, common, summary)
    if progress:
        print(
            f"prepare-atac: {len(kept.start):,} windows kept of {len(stream.start):,} drawn (dropped: {counts_text(dropped)}); "
            f"train {len(train):,}, test {len(test):,} -> {out} ({time.perf_counter() - began:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return summary
