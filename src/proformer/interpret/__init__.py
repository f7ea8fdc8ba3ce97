"""Interpretation of a trained run: which bases drive a prediction, what a variant does, which
sequence would reach a wanted level. Every analysis predicts through one batched
:class:`Predictor`, as ``proformer predict`` does."""

from .ism import IsmResult, ism, substitution_predictions, write_ism
from .predictor import LaidOut, Predictor, read_input

__all__ = ["IsmResult", "LaidOut", "Predictor", "ism", "read_input", "substitution_predictions", "write_ism"]
