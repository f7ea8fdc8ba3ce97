"""File formats, one small module per format: its file names, version, reader, writer and checks.

Modules here import numpy and the standard library only, so that preparing data and checking a
dataset never need torch.

:mod:`proformer.io.dataset`
    The prepared-dataset directory (``docs/dataset-format.md``).
:mod:`proformer.io.reader`
    Sequence files, the one reader for predict and the quickstart: FASTA, one per line, DREAM
    TSV, CSV/TSV tables, in chunks of rows, every symbol checked. Its parts, shared with prepare:
:mod:`proformer.io.errors`
    :class:`InputError` and how a bad value is shown (``file:line``, the value, what to do).
:mod:`proformer.io.sources`
    Opening a file: plain or gzip by magic bytes, hashed while read, in chunks of lines.
:mod:`proformer.io.numbers`
    The one number parser of data files and the one set of missing values.
:mod:`proformer.io.rows`
    Parsed rows of one chunk and the reasons a row is not kept.
:mod:`proformer.io.tables`
    Delimited rows (DREAM TSV, CSV/TSV): the delimiter, the header, the numpy row parser.
:mod:`proformer.io.fasta`
    FASTA records: multi-line sequences, ids, a target in the header.
:mod:`proformer.io.sniff`
    Format detection, the header rule, and the sequence/target columns of a table.
:mod:`proformer.io.peaks`
    Summits from narrowPeak or BED, blacklist intervals from BED (``docs/atac.md``).
:mod:`proformer.io.genome`
    A genome FASTA, one chromosome at a time (pyfaidx, imported when a file is opened).
:mod:`proformer.io.signal`
    Accessibility per base from a bigWig (pyBigWig) or Tn5 insertions in a BAM (pysam), imported
    when a file is opened.
"""
