"""The optional packages of the ATAC-seq inputs (pyfaidx, pyBigWig, pysam), imported on first use."""

from __future__ import annotations


def require(module: str, package: str):
    """Import ``module``, or raise an ImportError that says how to install ``package``."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"prepare_atac needs {package}: pip install {package} (or pip install 'proformer[atac]')") from None
