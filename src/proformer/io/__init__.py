"""File formats, one small module per format or job: its file names, version, reader, writer and
checks (``docs/architecture.md`` lists them).

Modules here import numpy and the standard library only (pyfaidx, pyBigWig and pysam when a
genome, a bigWig or a BAM is opened), so that preparing data and checking a dataset never need
torch.
"""
