"""``train()``: a run config + a prepared dataset -> a run directory holding the best model.

Run directory::

    RUN_DIR/config.yaml           the resolved run config
    RUN_DIR/config.json           what predict needs: model shape, layout, target mean/std, best epoch
    RUN_DIR/weights.pt            the best model's state_dict (torch.load(weights_only=True))
    RUN_DIR/metrics.csv           one row per epoch
    RUN_DIR/learning_curve.png
    RUN_DIR/checkpoints/last.ckpt Lightning's full state, for --resume
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .. import __version__
from ..config import RunConfig, save_run_config
from ..data.dataset import BatchBuilder, Dataset, ShardedBatchSampler, loader, target_statistics
from ..data.splits import split_indices
from ..device import check_bf16
from ..io.run import CONFIG, RunInfo, TargetInfo, read_run_info, write_run_model
from .module import ProformerModule

class _DropAdvertising(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdvertising())
# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates; nothing for users to act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")

METRIC_COLUMNS = (
    "epoch", "step", "lr", "train_loss", "train_mse", "train_reconstruction",
    "val_mse", "val_pearson", "val_spearman", "val_prediction_std", "seconds",
)


class RunDirectory(L.Callback):
    """Writes metrics.csv and the learning curve every epoch, and exports the best model."""

    def __init__(self, run_dir: Path, info: RunInfo):
        self.run_dir = run_dir
        self.info = info
        self.best = -math.inf
        self.started = time.time()

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]

    def on_train_start(self, trainer: L.Trainer, module: ProformerModule) -> None:
        # On --resume, forget rows of epochs that will run again.
        path = self.run_dir / "metrics.csv"
        if trainer.is_global_zero and path.exists():
            rows = [row for row in _read_metrics(path) if int(row["epoch"]) < trainer.current_epoch]
            _write_metrics(path, rows)

    def on_validation_end(self, trainer: L.Trainer, module: ProformerModule) -> None:
        if trainer.sanity_checking or not module.val_history:
            return
        means = module.train_means()
        if trainer.world_size > 1:
            means = {k: float(trainer.strategy.reduce(torch.tensor(v, device=module.device), reduce_op="mean")) for k, v in means.items()}
        if not trainer.is_global_zero:
            return
        latest = module.val_history[-1]
        row = {
            "epoch": latest["epoch"],
            "step": trainer.global_step,
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            **means,
            **{k: latest[k] for k in ("val_mse", "val_pearson", "val_spearman", "val_prediction_std")},
            "seconds": round(time.time() - self.started, 1),
        }
        path = self.run_dir / "metrics.csv"
        rows = _read_metrics(path) if path.exists() else []
        _write_metrics(path, [r for r in rows if int(r["epoch"]) != row["epoch"]] + [row])
        plot_learning_curve(path, self.run_dir / "learning_curve.png")
        score = latest["val_pearson"] if math.isfinite(latest["val_pearson"]) else -1.0
        if score > self.best:
            self.best = score
            write_run_model(self.run_dir, module.model.state_dict(), self.info.with_best(latest))


def _read_metrics(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def plot_learning_curve(metrics_csv: Path, out: Path) -> None:
    """Training/validation loss and validation correlations per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _read_metrics(metrics_csv)
    epochs = [int(r["epoch"]) + 1 for r in rows]

    def column(name: str) -> list[float]:
        return [float(r[name]) if r[name] not in ("", None) else float("nan") for r in rows]

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, column("train_mse"), "o-", label="train MSE")
    left.plot(epochs, column("val_mse"), "o-", label="validation MSE")
    left.plot(epochs, column("train_reconstruction"), "o--", label="train mask filling")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    right.plot(epochs, column("val_pearson"), "o-", label="Pearson r")
    right.plot(epochs, column("val_spearman"), "o-", label="Spearman rho")
    right.set_xlabel("epoch")
    right.set_ylabel("validation correlation")
    right.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train a Proformer on a prepared dataset and keep the best model by validation Pearson.

    Parameters
    ----------
    config : RunConfig
        ``config.data.path`` names the dataset directory (``proformer prepare``).
    run_dir : path
        Output directory; with ``resume=True`` training continues from
        ``run_dir/checkpoints/last.ckpt``.
    progress : bool
        Show Lightning's progress bar.

    Returns
    -------
    dict
        The best epoch's validation metrics and the paths written.
    """
    run_dir = Path(run_dir)
    if config.data.path is None:
        raise ValueError("no training data: set data.path in the config or pass --data DATASET_DIR")
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if resume and not checkpoint.exists():
        raise FileNotFoundError(f"--resume: {checkpoint} does not exist; start the run without --resume")
    if not resume and (run_dir / "config.json").exists():
        raise FileExistsError(f"{run_dir} already holds a trained model; use --resume to continue it, or another --out")
    run_dir.mkdir(parents=True, exist_ok=True)

    dataset = Dataset(config.data.path)
    model_cfg, train_cfg = config.model, config.train
    if config.data.singleton_flag != model_cfg.singleton_flag:
        model_cfg = dataclasses.replace(model_cfg, singleton_flag=config.data.singleton_flag)
    layout = dataset.layout(config.data.head, config.data.tail, pad=config.data.pad)
    if layout.length != model_cfg.length:
        raise ValueError(
            f"{dataset.directory}: rows are up to {layout.length} nt after trimming (meta.json transforms) but "
            f"model.length={model_cfg.length}; set --set length={layout.length} (or prepare with --length {model_cfg.length})"
        )
    if dataset.n_targets != model_cfg.n_targets:
        raise ValueError(
            f"{dataset.directory} has {dataset.n_targets} target column(s) {dataset.meta.get('target_names')} "
            f"but model.n_targets={model_cfg.n_targets}; set --set n_targets={dataset.n_targets}"
        )

    if config.data.valid:
        valid_set = Dataset(config.data.valid)
        train_rows, valid_rows = np.arange(len(dataset)), np.arange(len(valid_set))
    else:
        valid_set = dataset
        train_rows, valid_rows = split_indices(dataset, config.data.split, seed=train_cfg.seed)
    if model_cfg.loss == "soft_bins":
        for part, rows in ((dataset, train_rows), (valid_set, valid_rows)):
            check_bin_targets(part, rows)
    if config.data.standardize and model_cfg.loss != "soft_bins":
        mean, std = target_statistics(dataset, train_rows)
    else:
        mean, std = np.zeros(dataset.n_targets), np.ones(dataset.n_targets)

    save_run_config(config, run_dir / "config.yaml")
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)
    trainer = _trainer(config, run_dir, progress)
    check_bf16(trainer.strategy.root_device, train_cfg.precision)
    world = trainer.world_size
    batch_size = min(train_cfg.batch_size, len(train_rows))
    batch_size -= batch_size % world
    train_loader = loader(
        BatchBuilder(dataset, layout, mean, std, mask_ratio=model_cfg.mask_ratio, seed=train_cfg.seed,
                     shift=config.data.shift, singleton_flag="measured" if config.data.singleton_flag else "off"),
        ShardedBatchSampler(train_rows, batch_size, shuffle=True, seed=train_cfg.seed),
        train_cfg.num_workers,
    )
    valid_loader = loader(
        BatchBuilder(valid_set, layout, mean, std, singleton_flag="zero" if config.data.singleton_flag else "off"),
        ShardedBatchSampler(valid_rows, train_cfg.batch_size, shuffle=False),
        train_cfg.num_workers,
    )
    module = ProformerModule(model_cfg.to_dict(), dataclasses.asdict(train_cfg), steps_per_epoch=len(train_loader),
                             rc_average=config.data.rc_average)
    info = RunInfo(
        proformer_version=__version__,
        model=model_cfg,
        layout=layout,
        rc_average=bool(config.data.rc_average),
        target=TargetInfo(
            names=dataset.meta.get("target_names", [f"target_{i}" for i in range(dataset.n_targets)]),
            mean=[float(x) for x in np.atleast_1d(mean)],
            std=[float(x) for x in np.atleast_1d(std)],
            standardized=bool(config.data.standardize and model_cfg.loss != "soft_bins"),
        ),
        data={"train": str(Path(config.data.path).resolve()), "split": config.data.split if not config.data.valid else None,
              "valid": str(Path(config.data.valid).resolve()) if config.data.valid else None,
              "n_train": int(len(train_rows)), "n_valid": int(len(valid_rows))},
    )
    directory = RunDirectory(run_dir, info)
    trainer.callbacks.append(directory)
    trainer.fit(module, train_loader, valid_loader, ckpt_path=str(checkpoint) if resume else None)

    if not (run_dir / CONFIG).exists():
        raise RuntimeError(f"training finished without a validation epoch; no model was written to {run_dir}")
    best = read_run_info(run_dir).best
    return {"run_dir": str(run_dir), "best": best, "n_train": len(train_rows), "n_valid": len(valid_rows),
            "epochs_run": trainer.current_epoch}


def check_bin_targets(dataset: Dataset, rows: np.ndarray) -> None:
    """Raise unless every target of ``rows`` is a mean sort bin in [0, 17] (``loss=soft_bins``)."""
    from ..model.config import N_BINS

    values = np.asarray(dataset.targets[np.sort(rows), 0], dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values > N_BINS - 1)
    if bad.any():
        row = int(np.sort(rows)[np.flatnonzero(bad)[0]])
        raise ValueError(
            f"{dataset.directory}: row {row} (0-based) has target {float(values[np.flatnonzero(bad)[0]])!r}, not a mean sort bin in "
            f"[0, {N_BINS - 1}]; loss=soft_bins needs DREAM-style bin values (use loss=mse for other targets)"
        )


def _trainer(config: RunConfig, run_dir: Path, progress: bool) -> L.Trainer:
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    train_cfg = config.train
    # Only last.ckpt, for --resume: the best model is RunDirectory's weights.pt, written once.
    # (No monitor and top 1: the latest epoch, written over the one before.)
    callbacks = [ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1, enable_version_counter=False)]
    if train_cfg.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_pearson", mode="max", patience=train_cfg.early_stopping))
    return L.Trainer(
        default_root_dir=run_dir,
        max_epochs=train_cfg.epochs,
        max_time={"minutes": train_cfg.max_time} if train_cfg.max_time else None,
        accelerator=train_cfg.accelerator,
        devices=train_cfg.devices,
        num_nodes=train_cfg.num_nodes,
        precision="bf16-mixed" if train_cfg.precision == "bf16" else "32-true",
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        # Clipping is done in ProformerModule.configure_gradient_clipping (the original's scheme).
        gradient_clip_val=None,
        use_distributed_sampler=False,  # ShardedBatchSampler shards the data itself
        num_sanity_val_steps=0,
        deterministic=False,
    )
