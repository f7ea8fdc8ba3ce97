"""Interpretation of a trained model: which bases drive a prediction (:func:`ism`,
:func:`attribute`), what a variant does (:func:`variant_effect`), which sequence would reach a
wanted level (:func:`design`). Each takes what :func:`proformer.load` returns (a run or an
ensemble), ``target=`` and ``standardized=``, and predicts through the scorers of
:mod:`~proformer.interpret.scorer`, as ``proformer predict`` does."""

from .attribute import AttributionResult, attribute, write_attributions
from .design import Design, design, write_designs
from .ism import IsmResult, ism, substitution_predictions, write_ism
from .scorer import Scorer, scorers
from .variants import Effects, pair_effects, snv_effects, variant_effect, vcf_effects, write_effects

__all__ = ["AttributionResult", "Design", "Effects", "IsmResult", "Scorer", "attribute", "design", "ism",
           "pair_effects", "scorers", "snv_effects", "substitution_predictions", "variant_effect", "vcf_effects",
           "write_attributions", "write_designs", "write_effects", "write_ism"]
