"""The variant columns of a VCF file: CHROM POS ID REF ALT, one row per ALT allele.

Plain or gzip text (bgzip included, detected by magic bytes). Lines starting with ``#`` (the
``##`` meta lines and the ``#CHROM`` header) and blank lines are skipped; QUAL, FILTER, INFO
and the sample columns are not read. A multi-allelic record (``ALT`` ``A,C``) gives one
:class:`Variant` per allele, each with the record's line. Every error names ``file:line``, the
value and what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, show_value
from .sources import Source, check_input, line_chunks

__all__ = ["Variant", "read_vcf"]

_BASES = frozenset("ACGTN")


@dataclass(frozen=True)
class Variant:
    """One ALT allele of a VCF record.

    Attributes
    ----------
    where : str
        ``file:line`` of the record, for messages.
    chrom : str
    pos : int
        1-based position of the first REF base, as in the VCF.
    id : str
        The ID column (``"."`` when the record has none).
    ref : str
        Upper-case A C G T N.
    alt : str
        Upper-case A C G T N, or a symbolic allele as written (see :attr:`symbolic`).
    """

    where: str
    chrom: str
    pos: int
    id: str
    ref: str
    alt: str

    @property
    def symbolic(self) -> bool:
        """No sequence to put in the genome: ``<DEL>``-style alleles, ``*`` (an overlapping
        deletion), ``.`` (no ALT) and breakends (``G]17:198982]``)."""
        return _is_symbolic(self.alt)

    @property
    def name(self) -> str:
        """The ID, or ``chrom:pos:ref:alt`` where the VCF gives none."""
        return self.id if self.id not in ("", ".") else f"{self.chrom}:{self.pos}:{self.ref}:{self.alt}"


def read_vcf(path: str | os.PathLike) -> list[Variant]:
    """Every ALT allele of a VCF, in file order.

    Parameters
    ----------
    path : str or path
        A VCF, plain or gzip/bgzip. Only the first five tab-separated columns are read.

    Returns
    -------
    list of Variant
        One per allele; symbolic alleles are kept (callers skip and count them).

    Raises
    ------
    InputError
        With ``file:line``: fewer than 5 columns, an empty CHROM, a POS that is not a whole
        number >= 1, a REF or a sequence ALT with a symbol outside A C G T N, an empty allele;
        also a file without any variant line.
    FileNotFoundError
        When ``path`` does not exist.
    """
    display = os.fspath(path)
    path = Path(path)
    check_input(path, display)
    source = Source(path, display, hash_it=False)
    variants: list[Variant] = []
    try:
        for first_line, lines in line_chunks(source, 100_000, 1):
            for offset, raw in enumerate(lines):
                if raw.startswith(b"#") or not raw.strip():
                    continue
                variants.extend(_parse(raw, f"{display}:{first_line + offset}"))
    finally:
        source.close()
    if not variants:
        raise InputError(f"{display}: no variant lines (only '#' header lines or blank lines); give a VCF with "
                         "at least one record (CHROM POS ID REF ALT, tab-separated)")
    return variants


def _parse(raw: bytes, where: str) -> list[Variant]:
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    fields = text.split("\t")
    if len(fields) < 5:
        raise InputError(f"{where}: expected at least 5 tab-separated columns (CHROM POS ID REF ALT), found "
                         f"{len(fields)}: {show_value(text)}. VCF columns are separated by tabs, not spaces")
    chrom, pos, id_, ref, alts = (field.strip() for field in fields[:5])
    if not chrom:
        raise InputError(f"{where}: the CHROM column is empty: {show_value(text)}. Give the chromosome name")
    if not (pos.isascii() and pos.isdigit()) or int(pos) < 1:
        raise InputError(f"{where}: POS {pos!r} is not a whole number >= 1 (VCF positions are 1-based): "
                         f"{show_value(text)}. Fix the line")
    ref = ref.upper()
    _check_bases(ref, "REF", where, text)
    variants = []
    for alt in alts.split(","):
        alt = alt.strip()
        variant = Variant(where, chrom, int(pos), id_, ref, alt if _is_symbolic(alt) else alt.upper())
        if not variant.symbolic:
            _check_bases(variant.alt, "ALT", where, text)
        variants.append(variant)
    return variants


def _is_symbolic(alt: str) -> bool:
    return alt.startswith("<") or alt in ("*", ".") or "[" in alt or "]" in alt


def _check_bases(allele: str, column: str, where: str, text: str) -> None:
    if not allele:
        raise InputError(f"{where}: an empty {column} allele: {show_value(text)}. Every allele needs at least one "
                         "base (VCF writes an indel with its preceding base, e.g. REF A ALT AT)")
    bad = next((char for char in allele if char not in _BASES), None)
    if bad is not None:
        raise InputError(f"{where}: {column} {show_value(allele)} holds {bad!r}; alleles are bases A C G T N (either "
                         "case) or, for ALT only, a symbolic allele such as <DEL> or *. Fix the line")
