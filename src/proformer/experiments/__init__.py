"""Experiments over many runs: grid sweeps as Optuna studies (``run_sweep``) and their reports (``sweep_report``).

The poster's published numbers live in :mod:`proformer.experiments.poster`; see
``docs/sweep.md`` for the grids, the YAML schema and the output layout.
"""

from .grids import BUILTIN_GRIDS, Cell, Grid, load_grid
from .report import sweep_report
from .sweep import run_sweep

__all__ = ["BUILTIN_GRIDS", "Cell", "Grid", "load_grid", "run_sweep", "sweep_report"]
