"""Configuration: the ``--set key=value`` engine (:mod:`.overrides`) and the run schema with its presets (:mod:`.run`)."""

from .overrides import apply_overrides, parse_override
from .run import (
    CLIPPING,
    OPTIMIZERS,
    PRECISIONS,
    RUN_PRESETS,
    SCHEDULES,
    DataConfig,
    RunConfig,
    TrainConfig,
    load_run_config,
    run_preset,
    save_run_config,
)

__all__ = [
    "apply_overrides", "parse_override",
    "CLIPPING", "OPTIMIZERS", "PRECISIONS", "RUN_PRESETS", "SCHEDULES", "DataConfig", "RunConfig", "TrainConfig",
    "load_run_config", "run_preset", "save_run_config",
]
