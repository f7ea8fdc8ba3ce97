"""Where a run's per-epoch metrics go: Lightning's loggers, chosen by ``train.logger``.

metrics.csv is one of them (:class:`MetricsCSV`, always on); ``tensorboard``, ``wandb`` and
``mlflow`` add Lightning's own. :class:`proformer.train.rundir.RunDirectory` hands every logger
the same row once per epoch, after validation, at the epoch's last optimizer step (rank 0 only
under DDP); the LightningModule's own ``self.log`` values stay out of the loggers (progress bar,
early stopping and checkpointing only), so each logger holds exactly metrics.csv's figures.

Lightning's own ``CSVLogger`` is not used for metrics.csv: it sorts its columns alphabetically,
appends rows in place (a reader can see half a row) and deletes an existing metrics.csv when it
starts, which ``--resume`` must keep.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Mapping

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from ..config.run import LOGGERS
from .history import METRIC_COLUMNS, read_metrics, write_metrics

__all__ = ["LOGGERS", "METRICS", "MetricsCSV", "check_loggers", "run_loggers"]

#: The file :class:`MetricsCSV` writes in the run directory.
METRICS = "metrics.csv"

#: What each logger needs installed: (modules, any of which will do; the package to pip install).
_PACKAGES = {"tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"), "wandb": (("wandb",), "wandb"),
             "mlflow": (("mlflow",), "mlflow")}


class MetricsCSV(Logger):
    """metrics.csv as a Lightning logger: one row per epoch with ``columns``, the whole file
    rewritten atomically on every row (:func:`proformer.train.history.write_metrics`).

    A row logged for an epoch that the file holds already replaces it; :meth:`drop_from`
    forgets the epochs a resumed run trains again.
    """

    def __init__(self, run_dir: str | Path, columns: tuple[str, ...] = METRIC_COLUMNS):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.columns = tuple(columns)

    @property
    def path(self) -> Path:
        return self.run_dir / METRICS

    @property
    def name(self) -> str:
        return "metrics"

    @property
    def version(self) -> str:
        return ""  # no version: the progress bar shows no v_num

    @property
    def save_dir(self) -> str:
        return str(self.run_dir)

    @property
    def log_dir(self) -> str:
        return str(self.run_dir)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # config.yaml holds the run's settings

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Write ``metrics`` (one epoch's, with its ``epoch``) as the row of that epoch; values
        without an epoch (none of proformer's) are not metrics.csv's and are left out."""
        if "epoch" not in metrics:
            return
        row = {**metrics, "step": step if step is not None else metrics.get("step")}
        rows = [r for r in self.rows() if int(r["epoch"]) != int(row["epoch"])]
        write_metrics(self.path, rows + [row], self.columns)

    @rank_zero_only
    def drop_from(self, epoch: int) -> None:
        """Forget the rows of ``epoch`` and later ones (on ``--resume``: the epochs that run again)."""
        if self.path.exists():
            write_metrics(self.path, [r for r in self.rows() if int(r["epoch"]) < epoch], self.columns)

    def rows(self) -> list[dict]:
        """The file's rows so far (strings), oldest epoch first; none before the first epoch."""
        return read_metrics(self.path) if self.path.exists() else []


def check_loggers(names: str) -> list[str]:
    """The loggers of ``train.logger`` (comma-separated :data:`LOGGERS`) besides metrics.csv,
    checked before anything is written: an unknown name is a ValueError listing the valid ones,
    a logger whose package is not installed an ImportError naming what to pip install."""
    wanted = [name for name in names.split(",") if name and name != "csv"]
    unknown = [name for name in wanted if name not in LOGGERS]
    if unknown:
        raise ValueError(f"train.logger: unknown logger {', '.join(unknown)}; valid loggers are {', '.join(LOGGERS)}")
    for name in wanted:
        modules, package = _PACKAGES[name]
        if not any(_importable(module) for module in modules):
            raise ImportError(f"train.logger={name} needs the {package} package, which is not installed: pip install "
                              f"{package} (or leave {name} out of train.logger)")
    return wanted


def run_loggers(names: str, run_dir: Path, metrics: MetricsCSV) -> list[Logger]:
    """``metrics`` (metrics.csv, always first) and the other loggers of ``train.logger``
    (:func:`check_loggers`), writing into ``run_dir``."""
    return [metrics, *(_make(name, run_dir) for name in check_loggers(names))]


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _make(name: str, run_dir: Path) -> Logger:
    if name == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        # RUN/tensorboard/ itself (no version_N below it); no "hp_metric" placeholder scalar.
        return TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
    if name == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        # WANDB_PROJECT (and wandb's other variables) choose the project; the run is named after RUN.
        return WandbLogger(name=run_dir.name, save_dir=str(run_dir), project=os.environ.get("WANDB_PROJECT", "proformer"))
    if name == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        # MLFLOW_TRACKING_URI chooses the server; without it, a file store in RUN/mlruns.
        uri = os.environ.get("MLFLOW_TRACKING_URI") or (run_dir.resolve() / "mlruns").as_uri()
        return MLFlowLogger(experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", "proformer"),
                            run_name=run_dir.name, tracking_uri=uri)
    raise ValueError(f"train.logger: unknown logger {name}; valid loggers are {', '.join(LOGGERS)}")
