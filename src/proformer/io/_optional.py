"""Optional packages, imported on first use: the ATAC-seq inputs (pyfaidx, pyBigWig, pysam) and
interpretation (captum, logomaker, modisco)."""

from __future__ import annotations


def require(module: str, package: str, extra: str = "atac", needed_by: str = "prepare_atac"):
    """Import ``module``, or raise an ImportError that says how to install ``package``."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{needed_by} needs {package}: pip install {package} (or pip install 'proformer[{extra}]')") from None
