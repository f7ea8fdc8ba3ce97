"""Variant effects: how much a run's prediction changes from a reference to an alternative sequence.

Three kinds of input give one kind of table, :class:`Effects`, ``effect = alt_prediction -
ref_prediction`` in the units asked for (an ensemble: the mean of its runs' predictions);
:func:`variant_effect` takes any of them:

pairs (:func:`proformer.io.pairs.read_pairs`, :func:`pair_effects`)
    A TSV ``id<TAB>ref_sequence<TAB>alt_sequence``. Each sequence is laid out on its own, as
    ``proformer predict`` lays it out, so ref and alt may differ in length (indels).
SNV scan (:func:`snv_effects`)
    Every single-nucleotide variant of each input sequence: in-silico mutagenesis
    (:func:`~proformer.interpret.ism.substitution_predictions`) as a table. Only positions the
    model sees are listed (not the flanks the run's layout trims, nor the ends cut from a
    sequence longer than its window).
VCF (:func:`vcf_effects`)
    Variants of a genome, for genomic runs (e.g. ATAC-seq, whose layout trims no flanks): a
    window of the run's input length around each variant, read from the genome FASTA, before
    and after the variant (:func:`plan_vcf`, :func:`vcf_windows` give the rules).

:func:`write_effects` writes the table, :func:`run_variant_effect` is ``proformer variant-effect``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..inference import Ensemble, Run, units_text
from ..io.atomic import atomic_write, check_output
from ..io.errors import InputError, show_value
from ..io.genome import Genome
from ..io.vcf import Variant, read_vcf
from ..sequence import CODE_LETTERS, GENOME_CODES, INVALID
from .ism import mean_substitutions
from .passes import Pass, Processes, processes, run_passes
from .scorer import Scorer, mean_over, scorers

__all__ = [
    "SKIP_REASONS", "Effects", "pair_effects", "plan_vcf", "run_variant_effect", "snv_effects", "variant_effect",
    "vcf_effects", "vcf_windows", "write_effects",
]

#: Why a VCF variant gets no row (the counts :func:`vcf_effects` returns).
SKIP_REASONS = ("symbolic_alt", "off_chromosome", "ref_mismatch")
ON_MISMATCH = ("error", "skip")
#: VCF variants whose windows are held in memory at once.
_VCF_CHUNK = 4096
_LETTERS = np.array(list("ACGTN"), dtype=object)


@dataclass
class Effects(Mapping):
    """A table of variant effects, one row per variant: a mapping of column names to columns.

    Attributes
    ----------
    columns : dict of str to np.ndarray
        Columns of equal length, in output order: the keys of the variant (``id``; ``position``,
        ``ref``, ``alt`` for an SNV scan; ``chrom``, ``pos``, ``id``, ``ref``, ``alt`` for a VCF),
        then ``ref_prediction``, ``alt_prediction`` and ``effect`` (float64).
    target : str
        The target predicted.
    standardized : bool
        The units: False, training units; True, z-scores of the training targets.
    skipped : dict of str to int
        VCF: alleles skipped, by reason (all :data:`SKIP_REASONS`); empty otherwise.

    ``effects["effect"]`` is ``effects.columns["effect"]``; ``list(effects)`` the column names.
    """

    columns: dict[str, np.ndarray]
    target: str
    standardized: bool
    skipped: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __iter__(self):
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def rows(self) -> int:
        return len(self.columns["effect"])

    @property
    def units(self) -> str:
        return units_text(self.standardized)


# --------------------------------------------------------------------------------------------
# Pairs of sequences
# --------------------------------------------------------------------------------------------


def pair_effects(model: Run | Ensemble, ids: Sequence[str], refs: Sequence[str], alts: Sequence[str], *,
                 target: str | int | None = None, standardized: bool = False, where: Sequence[str] | None = None,
                 progress: bool = False, parallel: Processes | None = None) -> Effects | None:
    """Predict both sequences of every pair; ``effect = alt - ref``.

    Each sequence is laid out on its own (:meth:`Run.lay_out`), so ref and alt may differ in
    length. A sequence given several times (a reference shared by many variants) is predicted once.

    Parameters
    ----------
    model : Run or Ensemble
        What :func:`proformer.load` returns.
    ids, refs, alts : sequence of str
        ``(n,)`` each.
    target, standardized
        Which target (name or index; the first by default), and the units (False: training units).
    where : sequence of str, optional
        ``(n,)``: ``file:line`` of each pair, for errors.
    progress : bool
        Progress on stderr (:class:`proformer.progress.Progress`: in place on a terminal, plain lines in a log).
    parallel : Processes, optional
        The processes of ``--devices N`` (:mod:`~proformer.interpret.passes`): each predicts its
        share; global rank 0 gets the table (the same to the bit as one process's), the others None.

    Returns
    -------
    Effects or None
        ``n`` rows: ``id`` (object), ``ref_prediction``, ``alt_prediction``, ``effect`` (float64).
    """
    members = scorers(model, target, standardized)
    n = len(ids)
    if not len(refs) == len(alts) == n:
        raise ValueError(f"{n} ids, {len(refs)} ref and {len(alts)} alt sequences: give one of each per pair")
    if not n:
        raise InputError("no pairs to predict")
    names = list(where) if where is not None else [f"pair {i} (id {ids[i]!r})" for i in range(n)]
    labels = [f"{name} ref_sequence" for name in names] + [f"{name} alt_sequence" for name in names]
    plans = [_distinct(member, [*refs, *alts], labels) for member in members]
    found = run_passes([_scoring(member, codes) for member, (codes, _) in zip(members, plans)], "sequences predicted",
                       progress, parallel, [member.run.model for member in members])
    if found is None:  # another process of --devices N: rank 0 has the table
        return None
    predictions = mean_over([values[inverse] for values, (_, inverse) in zip(found, plans)])
    return _table(members[0], {"id": np.asarray(list(ids), dtype=object)}, predictions[:n], predictions[n:])


def _distinct(scorer: Scorer, sequences: list[str], where: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The model codes of each distinct sequence, laid out once, and int64 ``(len(sequences),)``:
    the row of each sequence among them."""
    index: dict[str, int] = {}
    inverse = np.empty(len(sequences), dtype=np.int64)
    distinct, names = [], []
    for i, sequence in enumerate(sequences):
        key = sequence.upper()
        j = index.setdefault(key, len(distinct))
        if j == len(distinct):
            distinct.append(key)
            names.append(where[i])
        inverse[i] = j
    return scorer.lay_out(distinct, names).codes, inverse


def _scoring(scorer: Scorer, codes: np.ndarray) -> Pass:
    """``scorer(codes)`` as a pass: the same batches as one call."""
    return Pass(len(codes), scorer.batch_size, lambda start, stop: scorer(codes[start:stop]))


def _table(scorer: Scorer, keys: dict[str, np.ndarray], ref: np.ndarray, alt: np.ndarray,
           skipped: dict[str, int] | None = None) -> Effects:
    columns = {**keys, "ref_prediction": ref, "alt_prediction": alt, "effect": alt - ref}
    return Effects(columns, scorer.target_name, scorer.standardized, skipped or {})


# --------------------------------------------------------------------------------------------
# Every SNV of each sequence
# --------------------------------------------------------------------------------------------


def snv_effects(model: Run | Ensemble, ids: Sequence[str], sequences: Sequence[str], *,
                target: str | int | None = None, standardized: bool = False, where: Sequence[str] | None = None,
                progress: bool = False, parallel: Processes | None = None) -> Effects | None:
    """Every single-nucleotide variant of each sequence, one row each (ISM as a table).

    Rows come from :func:`~proformer.interpret.ism.substitution_predictions`: per sequence, per
    position the model sees, the 3 other bases (all 4 at an N), in A C G T order. Positions the
    model does not see (the flanks the run's layout trims, the ends cut from a sequence longer
    than the window; for an ensemble, positions some run does not see) are not listed: a variant
    there cannot change the prediction.

    Parameters
    ----------
    model : Run or Ensemble
    ids, sequences : sequence of str
        ``(n,)`` each.
    target, standardized
        Which target (name or index; the first by default), and the units (False: training units).
    where : sequence of str, optional
        ``file:line`` of each sequence, for errors.
    progress : bool
        Progress on stderr (:class:`proformer.progress.Progress`: in place on a terminal, plain lines in a log).
    parallel : Processes, optional
        As :func:`pair_effects`: on global rank 0 the table, on the other processes None.

    Returns
    -------
    Effects or None
        ``m`` rows (``m`` = 3 per seen A/C/G/T position + 4 per seen N): ``id``, ``position``
        (int64, 0-based in the sequence as given), ``ref`` and ``alt`` (one letter each),
        ``ref_prediction``, ``alt_prediction``, ``effect`` (float64).
    """
    members = scorers(model, target, standardized)
    ids = np.asarray([str(i) for i in ids], dtype=object)
    if len(ids) != len(sequences):
        raise ValueError(f"{len(ids)} ids for {len(sequences)} sequences")
    laids = [member.lay_out(sequences, where) for member in members]
    found = mean_substitutions(members, laids, progress=progress, parallel=parallel)
    if found is None:  # another process of --devices N: rank 0 has the table
        return None
    reference, values = found
    input_codes = laids[0].input_codes
    rows, positions = np.nonzero(~np.isnan(values).all(axis=1))  # the positions mutated
    refs = input_codes[rows, positions]
    rows, positions, refs = (np.repeat(a, 4) for a in (rows, positions, refs))
    alts = np.tile(np.arange(4, dtype=np.uint8), len(rows) // 4)
    keep = alts != refs
    rows, positions, refs, alts = rows[keep], positions[keep], refs[keep], alts[keep]
    return _table(members[0], {"id": ids[rows], "position": positions.astype(np.int64), "ref": _LETTERS[refs],
                               "alt": _LETTERS[alts]}, reference[rows], values[rows, alts, positions])


# --------------------------------------------------------------------------------------------
# VCF variants in a genome
# --------------------------------------------------------------------------------------------


def _span(variant: Variant, width: int) -> tuple[int, int, str, int]:
    """``(start, ref_end, alt, right)``: the window's first genome position (0-based), the
    position after REF, the ALT bases inside the window, and the genome bases after REF that
    fill the alt window up to ``width``."""
    left = width // 2
    first = variant.pos - 1
    alt = variant.alt[: width - left]
    return first - left, first + len(variant.ref), alt, width - left - len(alt)


def plan_vcf(variants: Sequence[Variant], genome: Genome, width: int,
             on_mismatch: str = "error") -> tuple[list[Variant], dict[str, int]]:
    """Check every variant against the genome: the ones that get windows, and skip counts.

    A variant is skipped and counted (``SKIP_REASONS``) when its ALT is symbolic
    (``symbolic_alt``: ``<DEL>``, ``*``, ``.``, breakends), when its ref or alt window would run
    off the chromosome (``off_chromosome``), or, with ``on_mismatch="skip"``, when its REF is not
    the genome's sequence at POS (``ref_mismatch``; case ignored). Counts are of ALT alleles.

    Raises
    ------
    InputError
        A CHROM the genome lacks (naming the VCF line and some of the genome's names), or a REF
        mismatch with ``on_mismatch="error"`` (naming the VCF line and both sequences).
    """
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch={on_mismatch!r}: use {' or '.join(ON_MISMATCH)}")
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    kept = []
    for variant in variants:
        if variant.chrom not in genome.lengths:
            raise InputError(_unknown_chromosome(variant, genome))
        if variant.symbolic:
            skipped["symbolic_alt"] += 1
            continue
        start, ref_end, _, right = _span(variant, width)
        if start < 0 or max(start + width, ref_end + right) > genome.lengths[variant.chrom]:
            skipped["off_chromosome"] += 1
            continue
        found = genome.fetch(variant.chrom, variant.pos - 1, ref_end).upper()
        if found != variant.ref:
            if on_mismatch == "skip":
                skipped["ref_mismatch"] += 1
                continue
            raise InputError(
                f"{variant.where}: REF does not match the genome at {variant.chrom}:{variant.pos}: the VCF has "
                f"{show_value(variant.ref)}, {genome.display} has {show_value(found)}. Use the genome build the "
                "VCF was called on, or skip and count such variants (on_mismatch='skip', --on-mismatch skip)"
            )
        kept.append(variant)
    return kept, skipped


def _unknown_chromosome(variant: Variant, genome: Genome) -> str:
    names = list(genome.lengths)
    shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
    hint = ""
    if variant.chrom.startswith("chr") and variant.chrom[3:] in genome.lengths:
        hint = f" The genome names it {variant.chrom[3:]!r}, without 'chr': remove the prefix from the VCF."
    elif "chr" + variant.chrom in genome.lengths:
        hint = f" The genome names it {'chr' + variant.chrom!r}: add the 'chr' prefix to the VCF's CHROM."
    return (f"{variant.where}: chromosome {variant.chrom!r} is not in the genome {genome.display}, which has: "
            f"{shown}.{hint or ' Use the genome build the VCF was called on.'}")


def vcf_windows(variants: Sequence[Variant], genome: Genome, width: int) -> tuple[list[str], list[str]]:
    """The ref and alt windows of checked variants (:func:`plan_vcf`), ``width`` nt each.

    The ref window is the genome from ``POS - 1 - width // 2`` (0-based), so the variant's first
    base sits at index ``width // 2``. The alt window keeps the same left context, then ALT, then
    the genome after REF re-filled up to ``width`` nt. Indels are handled by this re-anchoring:
    an insertion pushes right context out of the window, a deletion pulls more in. An ALT longer
    than the right half is cut at the window's end.

    Returns
    -------
    refs, alts : list of str
        ``(n,)`` each, upper case; IUPAC codes other than A C G T N (a genome's ambiguity codes)
        become N, as the model reads genomes.
    """
    refs, alts = [], []
    for variant in variants:
        start, ref_end, alt, right = _span(variant, width)
        ref = genome.fetch(variant.chrom, start, start + width)
        refs.append(ref)
        alts.append(ref[: width // 2] + alt + genome.fetch(variant.chrom, ref_end, ref_end + right))
    return _model_letters(refs, variants, genome, width), _model_letters(alts, variants, genome, width)


def _model_letters(windows: list[str], variants: Sequence[Variant], genome: Genome, width: int) -> list[str]:
    """Genome text -> A C G T N, in one pass over the joined windows (all ``width`` long)."""
    if not windows:
        return []
    codes = GENOME_CODES[np.frombuffer("".join(windows).encode("ascii", errors="replace"), dtype=np.uint8)]
    if (codes == INVALID).any():
        row, column = divmod(int(np.flatnonzero(codes == INVALID)[0]), width)
        variant = variants[row]
        raise InputError(f"{genome.display}: the window around {variant.chrom}:{variant.pos} ({variant.where}) holds "
                         f"{windows[row][column]!r}, not a nucleotide or IUPAC code; check that the file is a genome FASTA")
    text = CODE_LETTERS[codes].tobytes().decode("ascii")
    return [text[i : i + width] for i in range(0, len(text), width)]


def vcf_effects(model: Run | Ensemble, variants: Sequence[Variant], genome: Genome, *,
                target: str | int | None = None, standardized: bool = False, on_mismatch: str = "error",
                progress: bool = False, parallel: Processes | None = None) -> Effects | None:
    """Predict the ref and alt window of every VCF variant (:func:`plan_vcf`, :func:`vcf_windows`).

    Windows are the run's whole input, ``layout.head + layout.length + layout.tail`` nt: meant
    for genomic runs whose layout trims nothing (an ensemble's runs must share that width). Load
    the model with ``rc_average=True`` so both strands are averaged (a genome variant has no
    preferred strand); :func:`run_variant_effect` does. ``parallel``: as :func:`pair_effects`
    (every process reads the windows; each predicts its share).

    Returns
    -------
    Effects or None
        ``n`` rows, one per kept ALT allele in VCF order: ``chrom``, ``pos`` (int64, 1-based, as
        in the VCF), ``id`` (the VCF ID, or ``chrom:pos:ref:alt`` where it is ``.``), ``ref``,
        ``alt``, ``ref_prediction``, ``alt_prediction``, ``effect``; ``skipped``: alleles by
        reason (all :data:`SKIP_REASONS`, 0 included).
    """
    members = scorers(model, target, standardized)
    widths = {member.layout.head + member.layout.length + member.layout.tail for member in members}
    if len(widths) > 1:
        raise ValueError(f"the runs take inputs of different widths ({', '.join(map(str, sorted(widths)))} nt): a VCF "
                         f"window is one width; give runs trained on the same windows")
    width = widths.pop()
    kept, skipped = plan_vcf(variants, genome, width, on_mismatch)
    parts = [kept[start : start + _VCF_CHUNK] for start in range(0, len(kept), _VCF_CHUNK)]
    windows = _Windows(genome, width)
    found = run_passes([windows.scoring(member, part) for part in parts for member in members],
                       "variant windows predicted", progress, parallel, [member.run.model for member in members])
    if found is None:  # another process of --devices N: rank 0 has the table
        return None
    ref_prediction, alt_prediction = np.empty(len(kept)), np.empty(len(kept))
    for i, part in enumerate(parts):
        predicted = mean_over(found[i * len(members) : (i + 1) * len(members)])
        ref_prediction[i * _VCF_CHUNK : i * _VCF_CHUNK + len(part)] = predicted[: len(part)]
        alt_prediction[i * _VCF_CHUNK : i * _VCF_CHUNK + len(part)] = predicted[len(part) :]
    columns = {
        "chrom": np.asarray([variant.chrom for variant in kept], dtype=object),
        "pos": np.asarray([variant.pos for variant in kept], dtype=np.int64),
        "id": np.asarray([variant.name for variant in kept], dtype=object),
        "ref": np.asarray([variant.ref for variant in kept], dtype=object),
        "alt": np.asarray([variant.alt for variant in kept], dtype=object),
    }
    return _table(members[0], columns, ref_prediction, alt_prediction, skipped)


class _Windows:
    """The ref and alt windows of a chunk of variants as a pass per run: read from the genome and
    laid out when the pass is first computed (every process of ``--devices N`` reads them all, so
    a bad window stops each at once), one chunk held at a time."""

    def __init__(self, genome: Genome, width: int):
        self.genome, self.width, self.key, self.codes = genome, width, None, None

    def scoring(self, member: Scorer, part: list[Variant]) -> Pass:
        def compute(start: int, stop: int) -> np.ndarray:
            if self.key != (id(member), id(part)):
                refs, alts = vcf_windows(part, self.genome, self.width)
                where = [variant.where for variant in part]
                self.key, self.codes = (id(member), id(part)), member.lay_out(refs + alts, where + where).codes
            return member(self.codes[start:stop])

        return Pass(2 * len(part), member.batch_size, compute)


def variant_effect(model: Run | Ensemble, *, ref: Sequence[str] | None = None, alt: Sequence[str] | None = None,
                   sequences: Sequence[str] | None = None, vcf: str | os.PathLike | None = None,
                   fasta: str | os.PathLike | None = None, ids: Sequence[str] | None = None,
                   target: str | int | None = None, standardized: bool = False, on_mismatch: str = "error",
                   where: Sequence[str] | None = None, progress: bool = False) -> Effects:
    """Predicted effects of variants, from one of three inputs.

    - ``ref`` and ``alt``: pairs of whole sequences (:func:`pair_effects`);
    - ``sequences``: every single-nucleotide variant of each (:func:`snv_effects`);
    - ``vcf`` and ``fasta``: a VCF's variants in a genome (:func:`vcf_effects`).

    ``ids`` name the pairs or sequences (default ``"0"``, ``"1"``, ...). ``target`` picks the
    target (the first by default), ``standardized`` the units (default training units).

    Returns
    -------
    Effects
        The table (``effects["effect"]``, ...), its target, units and, for a VCF, skip counts.
    """
    given = [name for name, value in (("ref/alt", ref if ref is not None else alt), ("sequences", sequences),
                                      ("vcf", vcf)) if value is not None]
    if len(given) != 1:
        raise ValueError(f"give one input: ref= and alt= (pairs), sequences= (every SNV) or vcf= with fasta= "
                         f"(got {', '.join(given) or 'none'})")
    options = {"target": target, "standardized": standardized, "progress": progress}
    if vcf is not None:
        if fasta is None:
            raise ValueError("vcf= needs fasta=: the genome FASTA the VCF was called on")
        genome = Genome(Path(fasta), os.fspath(fasta))
        try:
            return vcf_effects(model, read_vcf(vcf), genome, on_mismatch=on_mismatch, **options)
        finally:
            genome.close()
    if sequences is not None:
        sequences = list(sequences)
        ids = [str(i) for i in range(len(sequences))] if ids is None else ids
        return snv_effects(model, ids, sequences, where=where, **options)
    if ref is None or alt is None:
        raise ValueError("pairs need both ref= and alt=, one sequence of each per variant")
    ids = [str(i) for i in range(len(ref))] if ids is None else ids
    return pair_effects(model, ids, ref, alt, where=where, **options)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def write_effects(effects: Effects, out: str | os.PathLike) -> bool:
    """Write an effect table as TSV under the output rule of :mod:`proformer.io.atomic` (a file
    appears only when complete; a pipe, a device or ``-`` is written straight through).

    Columns in the order of ``effects.columns``, numbers to 9 significant digits, then
    ``log2_ratio`` = ``log2(alt_prediction / ref_prediction)`` only where a ratio has a meaning:
    when the predictions are in training units and every ref and alt prediction is > 0.
    Standardised units (z-scores) have no zero, so no ratio.

    Returns
    -------
    bool
        Whether the ``log2_ratio`` column was written.
    """
    columns = dict(effects.columns)
    ref, alt = np.asarray(columns["ref_prediction"]), np.asarray(columns["alt_prediction"])
    log2 = bool(not effects.standardized and len(ref) and (ref > 0).all() and (alt > 0).all())
    if log2:
        columns["log2_ratio"] = np.log2(alt / ref)
    texts = [_formatted(np.asarray(values)) for values in columns.values()]
    with atomic_write(out, newline="\n") as handle:
        handle.write("\t".join(columns) + "\n")
        handle.writelines("\t".join(row) + "\n" for row in zip(*texts))
    return log2


def _formatted(values: np.ndarray) -> list[str]:
    if values.dtype.kind == "f":
        return [f"{value:.9g}" for value in values.tolist()]
    return [str(value) for value in values.tolist()]


# --------------------------------------------------------------------------------------------
# proformer variant-effect
# --------------------------------------------------------------------------------------------


def run_variant_effect(model: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike, *,
                       pairs: str | os.PathLike | None = None, snv_scan: str | os.PathLike | None = None,
                       vcf: str | os.PathLike | None = None, fasta: str | os.PathLike | None = None,
                       on_mismatch: str = "error", target: str | int | None = None, standardized: bool = False,
                       batch_size: int = 256, device: str = "auto", precision: str = "32",
                       seq_col: str | None = None, progress: bool = True, devices: int = 1, num_nodes: int = 1) -> dict:
    """``proformer variant-effect``: predict variant effects and write them as a TSV.

    ``model`` is a run directory (a list of them: their mean). Give exactly one input: ``pairs``
    (:func:`proformer.io.pairs.read_pairs`), ``snv_scan`` (a sequence file under predict's input
    rules, FASTA or table with ``seq_col``; :func:`snv_effects`) or ``vcf`` with ``fasta``
    (:func:`vcf_effects`; both strands averaged). Everything is computed before ``out`` is
    written, so bad input leaves no file.

    ``devices``, ``num_nodes``: more than one process (DDP through Lightning, as ``predict
    --devices``; :mod:`~proformer.interpret.passes`) shares the forward passes; every process
    reads the input (a file, not a pipe) and global rank 0 alone writes ``out``, byte for byte
    the file one process writes.

    Returns
    -------
    dict
        ``out``, ``mode`` (pairs, snv_scan or vcf), ``rows`` written, ``skipped`` (VCF: alleles
        by reason; otherwise empty), ``positions_not_seen`` (SNV scan: input positions the model
        does not see, hence not listed), ``log2_ratio`` (whether written), ``target``, ``units``,
        ``rc_average``, ``rank`` (not 0: another process of ``devices``, which wrote nothing and
        returns only ``mode`` and ``rank``).
    """
    from ..inference import load
    from ..io.pairs import read_pairs
    from ..io.inputs import read_all_sequences

    given = {name: value for name, value in (("pairs", pairs), ("snv_scan", snv_scan), ("vcf", vcf)) if value is not None}
    if len(given) != 1:
        raise ValueError(f"give exactly one input: --pairs FILE, --snv-scan FILE or --vcf FILE --fasta GENOME "
                         f"(got {', '.join(given) or 'none'})")
    if vcf is not None and fasta is None:
        raise ValueError("--vcf needs --fasta GENOME: the genome FASTA the VCF was called on, from which the window "
                         "around each variant is read")
    if fasta is not None and vcf is None:
        raise ValueError("--fasta is read only with --vcf (the genome of the VCF's variants)")
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"--on-mismatch {on_mismatch}: use {' or '.join(ON_MISMATCH)}")
    if seq_col is not None and snv_scan is None:
        raise ValueError("--seq-col names the sequence column of a --snv-scan table; pairs and VCF files have fixed columns")
    check_output(out, pairs, snv_scan, vcf, fasta)  # the output rule; a missing folder or an input is refused
    mode = next(iter(given))
    parallel = processes(device, devices, num_nodes, pairs=pairs, snv_scan=snv_scan, vcf=vcf, fasta=fasta)
    options = {"target": target, "standardized": standardized, "progress": progress, "parallel": parallel}

    # Inputs are read before the model is loaded: a bad file fails fast.
    genome = None
    if pairs is not None:
        table = read_pairs(pairs)
    elif snv_scan is not None:
        ids, sequences, where = read_all_sequences(snv_scan, seq_col)
    else:
        variants = read_vcf(vcf)
        genome = Genome(Path(fasta), os.fspath(fasta))
    try:
        loaded = load(model, device if parallel is None else parallel.device, batch_size=batch_size,
                      precision=precision, rc_average=True if vcf is not None else None)
        result: dict = {}
        if pairs is not None:
            effects = pair_effects(loaded, table.ids, table.refs, table.alts, where=table.where, **options)
        elif snv_scan is not None:
            effects = snv_effects(loaded, ids, sequences, where=where, **options)
            if effects is None:
                return {"mode": mode, "rank": parallel.rank}
            lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
            seen = sum(np.count_nonzero(run.layout.window_positions(lengths) >= 0) for run in loaded.members)
            result["positions_not_seen"] = int(lengths.sum() - seen // len(loaded.members))
        else:
            layout = loaded.members[0].layout
            if (layout.head or layout.tail) and (parallel is None or parallel.lead):  # said once
                warnings.warn(
                    f"--vcf with a run whose layout trims {layout.head} + {layout.tail} nt of flanks (a promoter run, "
                    f"not a genomic one): each window is {layout.head + layout.length + layout.tail} nt of genome with the "
                    f"variant at its centre, the model sees only the {layout.length} nt between the flanks, and it was "
                    f"trained on constructs, not genomic windows; VCF mode is meant for genomic runs (e.g. --preset atac)",
                    RuntimeWarning, stacklevel=2)
            effects = vcf_effects(loaded, variants, genome, on_mismatch=on_mismatch, **options)
    finally:
        if genome is not None:
            genome.close()
    if effects is None:  # another process of --devices N: rank 0 writes out
        return {"mode": mode, "rank": parallel.rank}
    log2 = write_effects(effects, out)
    return {"out": os.fspath(out), "mode": mode, "rows": effects.rows, "skipped": effects.skipped, **result,
            "log2_ratio": log2, "target": effects.target, "units": effects.units,
            "rc_average": loaded.members[0].rc_average, "rank": 0}
