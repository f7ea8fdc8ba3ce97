"""The Proformer network and its configuration (imports torch, nothing else of the package)."""

from .config import MODEL_PRESETS, ModelConfig, model_preset
from .proformer import (
    Proformer,
    mask_positions,
    parameter_counts,
    soft_bin_targets,
    swap_strands,
)

__all__ = ["MODEL_PRESETS", "ModelConfig", "Proformer", "mask_positions", "model_preset", "parameter_counts",
           "soft_bin_targets", "swap_strands"]
