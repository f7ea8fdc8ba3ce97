"""A trained run along a genome: BED intervals scored, regions tiled into bigWig or bedGraph
tracks, and tracks compared with a measured signal (``proformer predict --fasta``,
``proformer evaluate --fasta``). :mod:`.windows` places the windows; :mod:`.predict` and
:mod:`.evaluate` run the model over them."""

from .evaluate import GenomeEvaluation, evaluate_genome
from .predict import predict_intervals, predict_track
from .windows import Placement

__all__ = ["GenomeEvaluation", "Placement", "evaluate_genome", "predict_intervals", "predict_track"]
