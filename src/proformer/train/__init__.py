"""Training: the LightningModule (losses, schedules, clipping, metrics) and ``train()``."""

from .run import train

__all__ = ["train"]
