"""``train()``: a run config + a prepared dataset -> a run directory holding the best model.

Run directory::

    RUN_DIR/config.yaml           the resolved run config
    RUN_DIR/config.json           what predict needs: model shape, layout, target mean/std, best epoch
    RUN_DIR/weights.pt            the best model's state_dict (torch.load(weights_only=True))
    RUN_DIR/metrics.csv           one row per epoch
    RUN_DIR/learning_curve.png
    RUN_DIR/checkpoints/last.ckpt Lightning's full state, for --resume
    RUN_DIR/.train.lock           while a train writes the directory: its PID (removed at exit)
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .. import __version__
from ..config import RunConfig, save_run_config
from ..data.dataset import (BatchBuilder, Dataset, ShardedBatchSampler, check_layout, check_targets, loader,
                            target_statistics)
from ..data.splits import split_indices
from ..device import check_bf16
from ..io.atomic import atomic_path, atomic_write, process_alive
from ..io.run import CONFIG, RunInfo, TargetInfo, read_run_info, write_run_model
from .module import ProformerModule, TrainingDiverged, TrainingFailed

__all__ = ["LOCK", "ResumeMismatch", "RunLocked", "TrainingDiverged", "TrainingFailed", "TrainingStopped",
           "plot_learning_curve", "train"]

LOCK = ".train.lock"


class TrainingStopped(TrainingFailed):
    """Training was stopped by SIGTERM before it finished; ``--resume`` continues it."""


@contextlib.contextmanager
def _sigterm_until_fit():
    """Until ``trainer.fit`` starts, SIGTERM raises :class:`TrainingStopped`.

    While the data are read and checked, Python's default handler would end the process with
    no word. Lightning sets its own handler in ``fit`` (stop after the current step), but it
    also calls any handler already set, so ours must be gone by then: the context yields a
    ``hand_over()`` that restores the previous handler, called just before ``fit``.
    """
    if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
        yield lambda: None
        return

    def stop(signum, frame):
        raise TrainingStopped("training was stopped by SIGTERM before its first step (while the data were read "
                              "and checked); nothing was trained, so there is nothing to resume: start the run again")

    previous = signal.signal(signal.SIGTERM, stop)

    def hand_over():
        if signal.getsignal(signal.SIGTERM) is stop:
            signal.signal(signal.SIGTERM, previous)

    try:
        yield hand_over
    finally:
        hand_over()


class RunLocked(FileExistsError):
    """Another ``proformer train`` is writing the run directory."""


class ResumeMismatch(ValueError):
    """``--resume`` with another dataset or model shape than the run was started with."""

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

    def __init__(self, run_dir: Path, info: RunInfo, identity: dict | None = None):
        self.run_dir = run_dir
        self.info = info
        self.identity = identity or {}
        self.best = -math.inf
        #: A config to write to config.yaml once training has started (on --resume: after the
        #: checkpoint was restored, so a resume that fails leaves the run's own config.yaml).
        self.pending_config: RunConfig | None = None
        self.started = time.time()

    def state_dict(self) -> dict:
        # "data": which datasets the run trains on, for --resume to refuse another one.
        # "rng": torch's random state (dropout) at the end of the epoch, so that a resumed run
        # draws what the uninterrupted one would have (the masks, shifts and shuffles are keyed
        # by seed and epoch already). Under DDP every rank has the same state (one seed, the
        # same number of draws), so rank 0's is every rank's.
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"best": self.best, "data": self.identity, "rng": rng}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
        rng = state.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def on_train_start(self, trainer: L.Trainer, module: ProformerModule) -> None:
        # On --resume, forget rows of epochs that will run again.
        path = self.run_dir / "metrics.csv"
        if trainer.is_global_zero and self.pending_config is not None:
            save_run_config(self.pending_config, self.run_dir / "config.yaml")
            self.pending_config = None
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
        # An epoch without a Pearson (constant or non-finite predictions) is never the best model.
        score = latest["val_pearson"]
        if math.isfinite(score) and score > self.best:
            self.best = score
            write_run_model(self.run_dir, module.model.state_dict(), self.info.with_best(latest))


def _read_metrics(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_write(path, newline="") as handle:
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
    try:
        with atomic_path(out, suffix=".png") as temporary:
            fig.savefig(temporary, dpi=100, format="png")
    finally:
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
    with _sigterm_until_fit() as hand_over_sigterm:
        return _checked_train(config, Path(run_dir), resume, progress, hand_over_sigterm)


def _checked_train(config: RunConfig, run_dir: Path, resume: bool, progress: bool, hand_over_sigterm) -> dict:
    """train(): everything is checked before anything is written, then _fit."""
    if config.data.path is None:
        raise ValueError("no training data: set data.path in the config or pass --data DATASET_DIR")
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if resume and not checkpoint.exists():
        raise FileNotFoundError(f"--resume: {checkpoint} does not exist; start the run without --resume")
    if not resume and (run_dir / "config.json").exists():
        raise FileExistsError(f"{run_dir} already holds a trained model; use --resume to continue it, or another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"--out {run_dir} is a file, not a run directory; choose another --out")

    # Everything is checked before anything is written (a refused run, resumed or not, changes
    # nothing on disk).
    dataset = Dataset(config.data.path)
    model_cfg, train_cfg = config.model, config.train
    if config.data.singleton_flag != model_cfg.singleton_flag:
        model_cfg = dataclasses.replace(model_cfg, singleton_flag=config.data.singleton_flag)
    layout = dataset.layout(config.data.head, config.data.tail, pad=config.data.pad)
    check_layout(dataset, layout, model_cfg.kmer)
    if layout.length != model_cfg.length:
        raise ValueError(
            f"{dataset.directory}: rows are up to {layout.length} nt after trimming (meta.json transforms) but "
            f"model.length={model_cfg.length}; set --set length={layout.length} (or prepare with --length {model_cfg.length})"
        )
    if dataset.n_targets == 0:
        raise ValueError(
            f"{dataset.directory} has no targets (it was prepared from sequences alone) and training needs a "
            f"measured value per sequence: prepare it again from a file that has them, e.g. proformer prepare "
            f"TABLE.tsv --seq-col sequence --target-col expression --out {dataset.directory} (a DREAM file "
            f"carries them in its second column)"
        )
    if dataset.n_targets != model_cfg.n_targets:
        raise ValueError(
            f"{dataset.directory} has {dataset.n_targets} target column(s) {dataset.meta.get('target_names')} "
            f"but model.n_targets={model_cfg.n_targets}; set --set n_targets={dataset.n_targets}"
        )

    if config.data.valid:
        valid_set = Dataset(config.data.valid)
        check_layout(valid_set, layout, model_cfg.kmer)
        train_rows, valid_rows = np.arange(len(dataset)), np.arange(len(valid_set))
    else:
        valid_set = dataset
        train_rows, valid_rows = split_indices(dataset, config.data.split, seed=train_cfg.seed)
    check_targets(dataset, train_rows, "training")
    check_targets(valid_set, valid_rows, "validation")
    if model_cfg.loss == "soft_bins":
        for part, rows in ((dataset, train_rows), (valid_set, valid_rows)):
            check_bin_targets(part, rows)
    if config.data.standardize and model_cfg.loss != "soft_bins":
        mean, std = target_statistics(dataset, train_rows)
    else:
        mean, std = np.zeros(dataset.n_targets), np.ones(dataset.n_targets)

    identity = {"train": dataset_identity(dataset), "valid": dataset_identity(valid_set) if config.data.valid else None}

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunDirectoryError(f"cannot create the run directory {run_dir} ({error.strerror}); choose another --out") from None
    with run_lock(run_dir):
        if resume:
            check_resume(run_dir, checkpoint, config, model_cfg, identity)
        return _fit(config, run_dir, resume, progress, dataset, valid_set, model_cfg, layout, train_rows, valid_rows,
                    mean, std, identity, checkpoint, hand_over_sigterm)


class RunDirectoryError(RuntimeError):
    """The run directory cannot be written."""


def _fit(config, run_dir, resume, progress, dataset, valid_set, model_cfg, layout, train_rows, valid_rows, mean, std,
         identity, checkpoint, hand_over_sigterm) -> dict:
    train_cfg = config.train
    if not resume:
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
    directory = RunDirectory(run_dir, info, identity)
    if resume:
        directory.pending_config = config
    trainer.callbacks.append(directory)
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    hand_over_sigterm()
    try:
        trainer.fit(module, train_loader, valid_loader, ckpt_path=str(checkpoint) if resume else None)
    except SIGTERMException:
        # Lightning stops after the current step on SIGTERM and raises SystemExit (status 0).
        if checkpoint.exists():
            saved = (f"the last checkpoint ({checkpoint}) holds the last finished epoch; continue the run with "
                     f"`proformer train --out {run_dir} --resume` and the same config and data")
        else:
            saved = "no epoch had finished, so there is nothing to resume: start the run again"
        raise TrainingStopped(f"training was stopped by SIGTERM in epoch {trainer.current_epoch + 1} at step "
                              f"{trainer.global_step}; {saved}") from None
    except TrainingDiverged as error:
        kept = (f"; the best model of the epochs before is still in {run_dir} (config.json + weights.pt)"
                if (run_dir / CONFIG).exists() else f"; no model was written to {run_dir}")
        raise TrainingDiverged(f"{error}{kept}") from None

    if directory.best == -math.inf:
        if module.val_history:
            raise TrainingFailed(
                f"every validation epoch ({len(module.val_history)}) gave a NaN Pearson correlation (the model predicts "
                f"a constant or non-finite values: see val_prediction_std in {run_dir / 'metrics.csv'}); no model was "
                f"written to {run_dir}. Train longer, with another learning rate, or check the targets"
            )
        raise TrainingFailed(f"training finished without a validation epoch; no model was written to {run_dir}")
    if not (run_dir / CONFIG).exists():
        raise TrainingFailed(f"training finished without a validation epoch; no model was written to {run_dir}")
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


# -- resume ----------------------------------------------------------------------------------

#: Run settings a resumed run must keep: they fix the data, its split and layout, and the model.
RESUME_FIXED = ("data.split", "data.head", "data.tail", "data.pad", "data.standardize", "data.singleton_flag",
                "train.seed")


def dataset_identity(dataset: Dataset) -> dict:
    """Where a dataset is and which one it is: path, rows, and meta.json's source checksum and time."""
    source = dataset.meta.get("source") or {}
    return {"path": str(dataset.directory.resolve()), "rows": int(len(dataset)),
            "sha256": source.get("sha256") if isinstance(source, dict) else None, "created": dataset.meta.get("created")}


def check_resume(run_dir: Path, checkpoint: Path, config: RunConfig, model_cfg, identity: dict) -> None:
    """Raise :class:`ResumeMismatch` naming every difference between the run as started (its
    checkpoint and config.yaml) and ``config``: another dataset, split, layout or model shape."""
    import yaml

    from ..model.config import ModelConfig

    try:
        # Memory-mapped: only the few entries compared here are read (Lightning reads the whole
        # checkpoint again when it restores it; a dream2022 checkpoint is about 0.6 GB).
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
        raise ValueError(f"--resume: {checkpoint} cannot be read ({str(error).splitlines()[0][:200]}); it is truncated "
                         f"or damaged: start the run again in another --out") from None
    changes = []
    old_model = (state.get("hyper_parameters") or {}).get("model")
    if isinstance(old_model, dict):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            old = ModelConfig.from_dict(dict(old_model)).to_dict()
        new = model_cfg.to_dict()
        changes += [f"model.{k}: {old[k]!r} -> {new[k]!r}" for k in new if old.get(k) != new[k]]
    old_identity = None
    for key, value in (state.get("callbacks") or {}).items():
        if str(key).startswith("RunDirectory") and isinstance(value, dict):
            old_identity = value.get("data")
    recorded = {}
    if (run_dir / "config.yaml").is_file():
        try:
            recorded = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            recorded = {}
    current = config.to_dict()
    for key in RESUME_FIXED:
        section, name = key.split(".")
        before = (recorded.get(section) or {}).get(name, current[section][name]) if isinstance(recorded, dict) else current[section][name]
        if before != current[section][name]:
            changes.append(f"{key}: {before!r} -> {current[section][name]!r}")
    if old_identity:
        for part in ("train", "valid"):
            was, now = old_identity.get(part), identity.get(part)
            if (was is None) != (now is None):
                changes.append(f"data.{'path' if part == 'train' else 'valid'}: {was and was['path']!r} -> {now and now['path']!r}")
                continue
            for field in ("path", "rows", "sha256", "created") if was else ():
                if was.get(field) != now.get(field):
                    what = "data.path" if part == "train" else "data.valid"
                    label = what if field == "path" else f"{what} ({now['path']}) {'meta.json ' if field != 'rows' else ''}{field}"
                    changes.append(f"{label}: {was.get(field)!r} -> {now.get(field)!r}")
    elif isinstance(recorded, dict) and (recorded.get("data") or {}).get("path") is not None:
        # A checkpoint from before datasets were recorded: compare config.yaml's paths.
        for key, now in (("path", identity["train"]), ("valid", identity.get("valid"))):
            was = (recorded.get("data") or {}).get(key)
            was = str(Path(was).resolve()) if was else None
            if was != (now["path"] if now else None):
                changes.append(f"data.{key}: {was!r} -> {now['path'] if now else None!r}")
    if changes:
        raise ResumeMismatch(
            f"--resume: {run_dir} was started with other settings than given now; nothing was changed. "
            f"Changed: {'; '.join(changes)}. Resume with the run's own config ({run_dir / 'config.yaml'}) and data, "
            f"or start a new run in another --out"
        )


# -- the run directory's lock ----------------------------------------------------------------


def _is_secondary_process() -> bool:
    """A DDP process other than the launching one (its train() shares the launcher's lock)."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        try:
            if int(os.environ.get(name, "0")) > 0:
                return True
        except ValueError:
            pass
    return False


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold ``run_dir/.train.lock`` (created with O_EXCL, holding this PID) for the block.

    A lock whose process is gone (a killed run) is taken over; one held by a live process
    raises :class:`RunLocked` at once.
    """
    if _is_secondary_process():
        yield
        return
    path = run_dir / LOCK
    for attempt in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            pid = _lock_owner(path)
            if pid is None:
                try:
                    young = time.time() - path.stat().st_mtime < 10
                except FileNotFoundError:
                    continue
                if young:  # being written by a train that has just started
                    pid = -1
            if pid is not None and (pid == -1 or process_alive(pid)):
                who = f"PID {pid}" if pid > 0 else "a process that has just started"
                raise RunLocked(f"{run_dir} is being written by another proformer train ({who}, lock file {path}); "
                                f"wait for it to finish or use another --out (if no such process runs, remove "
                                f"{path})") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale: its process is gone
        except OSError as error:
            raise RunDirectoryError(f"cannot write to the run directory {run_dir} ({error.strerror}); "
                                    f"choose another --out") from None
    else:
        raise RunLocked(f"{run_dir}: could not take the lock {path}; another train may be starting; try again")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        if _lock_owner(path) == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()

