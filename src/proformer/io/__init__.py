"""File formats, one small module per format: its file names, version, reader, writer and checks.

Modules here import numpy and the standard library only, so that preparing data and checking a
dataset never need torch.

:mod:`proformer.io.dataset`
    The prepared-dataset directory (``docs/dataset-format.md``).
"""
