"""The talk's published numbers (``seed-poster.txt``), as reference data for sweep reports.

Slide 4 (yeast, 10 % of the DREAM training pairs) and slide 6 (GM12878 ATAC-seq) give the best
validation Pearson r within 20 epochs for each (dim, attention heads, Macaron blocks) row and
readout column; slide 9 gives the ablation's scores on the public leaderboard.

Keys are ``(dim, heads, blocks, readout)`` with ``readout`` as in ``ModelConfig.readout``
(``"pool"`` or the number of expression heads H), so a sweep's cells are matched to the poster
by their configuration, not by labels.
"""

from __future__ import annotations

#: Readout columns of slides 4 and 6, in the poster's order.
READOUTS: tuple = ("pool", 1, 8, 16, 32, 64)

_YEAST_ROWS = {
    (64, 2, 1): (0.7026, 0.7046, 0.7011, 0.6977, 0.6977, 0.6943),
    (64, 2, 2): (0.7094, 0.7086, 0.7122, 0.7119, 0.7136, 0.7088),
    (64, 2, 4): (0.7140, 0.7196, 0.7162, 0.7184, 0.7190, 0.7200),
    (64, 2, 8): (0.7151, 0.7198, 0.7223, 0.7138, 0.7191, 0.7214),
    (128, 4, 1): (0.7033, 0.7153, 0.7137, 0.7075, 0.7069, 0.7047),
    (128, 4, 2): (0.7164, 0.7209, 0.7142, 0.7197, 0.7147, 0.7175),
    (128, 4, 4): (0.7189, 0.7224, 0.7207, 0.7218, 0.7139, 0.7192),
    (128, 4, 8): (0.0145, 0.6627, 0.7223, 0.7200, 0.7207, 0.7226),
    (256, 8, 1): (0.7109, 0.7177, 0.7104, 0.7124, 0.7058, 0.7152),
    (256, 8, 2): (0.7157, 0.7219, 0.7197, 0.7185, 0.7207, 0.7177),
    (256, 8, 4): (0.6406, 0.6616, 0.7210, 0.7186, 0.7213, 0.7211),
    (256, 8, 8): (0.0165, 0.0603, 0.7188, 0.7194, 0.7222, 0.7173),
}

_ATAC_ROWS = {
    (64, 2, 1): (0.4726, 0.4497, 0.4450, 0.4570, 0.4467, 0.4528),
    (64, 2, 2): (0.4832, 0.4353, 0.4739, 0.4677, 0.4660, 0.4626),
    (64, 2, 4): (0.4434, 0.4871, 0.4823, 0.4855, 0.4834, 0.4783),
    (64, 2, 8): (0.4222, 0.4888, 0.4767, 0.4828, 0.4875, 0.4848),
    (128, 4, 1): (0.4434, 0.4451, 0.4660, 0.4651, 0.4627, 0.4574),
    (128, 4, 2): (0.4177, 0.4711, 0.4889, 0.4802, 0.4847, 0.4850),
    (128, 4, 4): (0.2346, 0.3977, 0.4964, 0.4868, 0.4880, 0.4882),
    (128, 4, 8): (0.0155, 0.0858, 0.0335, 0.4946, 0.4910, 0.4915),
}


def _by_cell(rows: dict) -> dict:
    return {(*shape, readout): value for shape, values in rows.items() for readout, value in zip(READOUTS, values)}


#: Slide 4: validation Pearson r, keyed by (dim, heads, blocks, readout).
YEAST_PEARSON: dict = _by_cell(_YEAST_ROWS)
#: Slide 6: validation Pearson r on ATAC-seq, keyed by (dim, heads, blocks, readout).
ATAC_PEARSON: dict = _by_cell(_ATAC_ROWS)
#: Row order of the two grids: (dim, heads, blocks).
YEAST_SHAPES: tuple = tuple(_YEAST_ROWS)
ATAC_SHAPES: tuple = tuple(_ATAC_ROWS)

#: Slide 9, public leaderboard. Keyed by (readout, mask filling on, activation); values are
#: (Score PearsonR^2, Score Spearman, PearsonR^2 over all public sequences, Spearman rho).
#: The poster's "PearsonR" column is r^2 (docs/model.md section 6), hence the name.
ABLATION_COLUMNS: tuple = ("Score PearsonR^2", "Score Spearman", "r^2", "rho")
ABLATION: dict = {
    ("pool", False, "swiglu"): (0.766, 0.819, 0.918, 0.961),
    (1, True, "swiglu"): (0.765, 0.817, 0.921, 0.964),
    (32, True, "swiglu"): (0.781, 0.827, 0.926, 0.965),
    (32, True, "glu"): (0.765, 0.810, 0.929, 0.967),
}

#: Reference tables a report can be compared with (``sweep_report(compare=...)``).
PEARSON_TABLES: dict = {"poster-yeast": YEAST_PEARSON, "poster-atac": ATAC_PEARSON}
COMPARISONS: tuple = ("poster-yeast", "poster-atac", "ablation")


def readout_label(readout) -> str:
    """Column header of the poster: ``AvgPool`` or ``H=8``."""
    return "AvgPool" if readout == "pool" else f"H={readout}"
