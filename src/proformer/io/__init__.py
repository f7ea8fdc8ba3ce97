"""File formats, one small module per format: its file names, version, reader, writer and checks.

Modules here import numpy and the standard library only, so that preparing data and checking a
dataset never need torch.

:mod:`proformer.io.dataset`
    The prepared-dataset directory (``docs/dataset-format.md``).
:mod:`proformer.io.sequences`
    Sequence files, the one reader for prepare, predict and the quickstart: FASTA, one per line,
    DREAM TSV, CSV/TSV tables; gzip by magic bytes; the header rule; :class:`InputError`.
:mod:`proformer.io.peaks`
    Summits from narrowPeak or BED, blacklist intervals from BED (``docs/atac.md``).
:mod:`proformer.io.genome`
    A genome FASTA, one chromosome at a time (pyfaidx, imported when a file is opened).
:mod:`proformer.io.signal`
    Accessibility per base from a bigWig (pyBigWig) or Tn5 insertions in a BAM (pysam), imported
    when a file is opened.
"""
