"""Interpretation of a trained run: which bases drive a prediction (:func:`ism`,
:func:`attribute`), what a variant does (:mod:`~proformer.interpret.variants`), which sequence
would reach a wanted level (:func:`design`). Every analysis predicts through one batched
:class:`Predictor`, as ``proformer predict`` does."""

from .attribute import AttributionResult, attribute, write_attributions
from .design import Design, design, write_designs
from .ism import IsmResult, ism, substitution_predictions, write_ism
from .predictor import LaidOut, Predictor, read_input
from .variants import pair_effects, snv_effects, vcf_effects, write_effects

__all__ = ["AttributionResult", "Design", "IsmResult", "LaidOut", "Predictor", "attribute", "design", "ism",
           "pair_effects", "read_input", "snv_effects", "substitution_predictions", "vcf_effects",
           "write_attributions", "write_designs", "write_effects", "write_ism"]
