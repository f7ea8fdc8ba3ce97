"""Sequence logos of per-base scores (logomaker), one PNG each."""

from __future__ import annotations

import os

import numpy as np

from ..io._optional import require
from ..io.atomic import atomic_path


def plot_logo(scores: np.ndarray, path: str | os.PathLike, title: str = "", seen: np.ndarray | None = None) -> None:
    """Draw ``scores`` ``(4, length)`` (A C G T rows; letters above 0 point up) as a logo PNG.

    ``seen`` ``(length,)`` bool: positions the model sees; the others are shaded grey. NaN scores
    are drawn as 0. Positions on the x axis are 0-based input positions.
    """
    logomaker = require("logomaker", "logomaker", extra="interpret", needed_by="logo plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64))
    length = scores.shape[1]
    frame = pd.DataFrame(scores.T, columns=list("ACGT"))
    figure, axis = plt.subplots(figsize=(min(max(length / 6, 6), 40), 2.6))
    try:
        logomaker.Logo(frame, ax=axis, color_scheme="classic")
        if seen is not None:
            for position in np.flatnonzero(~np.asarray(seen)):
                axis.axvspan(position - 0.5, position + 0.5, color="0.9", zorder=-1, lw=0)
        axis.axhline(0, color="0.5", lw=0.5)
        axis.set_xlabel("position in the input sequence (0-based; grey: not seen by the model)")
        axis.set_ylabel("score")
        axis.set_title(title, fontsize=8)
        figure.tight_layout()
        with atomic_path(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=110)
    finally:
        plt.close(figure)
