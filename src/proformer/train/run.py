"""``train()``: a run config + a prepared dataset -> a run directory holding the best model.

Run directory::

    RUN_DIR/config.yaml           the resolved run config (model length and n_targets as taken from the data)
    RUN_DIR/config.json           what predict needs: model shape, layout, target mean/std, best epoch
    RUN_DIR/weights.safetensors   the best model's state_dict, tensors only (with train.ema, the average's)
    RUN_DIR/metrics.csv           one row per epoch (with several targets, a Pearson and Spearman per target)
    RUN_DIR/learning_curve.png
    RUN_DIR/checkpoints/last.ckpt Lightning's full state, for --resume (replaced atomically: AtomicCheckpointIO)
    RUN_DIR/valid_data/           with data.valid naming a file: that file, prepared as data.path was (rundir.py)
    RUN_DIR/tensorboard/          with train.logger=tensorboard: the same per-epoch figures as metrics.csv
    RUN_DIR/.train.lock           while a train writes the directory: the lock it holds (filelock; removed at exit)

An ensemble run is a directory of K such runs and ``RUN_DIR/members.json`` (written last) naming
them: ``proformer.load(RUN_DIR)`` reads them as one ensemble. A K-fold run (``data.split=folds:K``,
and ``auto`` below 2,500 rows) holds ``RUN_DIR/fold-0`` ... ``fold-{K-1}``, each validated on its
fold; ``train.members=K`` holds ``RUN_DIR/member-0`` ... ``member-{K-1}``, seeds seed ... seed + K - 1
(:mod:`proformer.train.members`).

metrics.csv and the loggers of ``train.logger`` are Lightning loggers (:mod:`proformer.train.loggers`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from .. import __version__
from ..config import RunConfig, save_run_config
from ..config.run import is_from_data
from ..data.dataset import (
    BatchBuilder,
    Dataset,
    ShardedBatchSampler,
    check_layout,
    check_targets,
    loader,
    target_statistics,
    with_rc_rows,
)
from ..data.augment import parse_augmentations
from ..data.splits import auto_split, split_indices
from ..device import check_bf16
from ..io.run import CONFIG, WEIGHTS, RunInfo, TableColumns, TargetInfo, read_run_info
from ..model.config import ModelConfig
from ..sequence import Layout
from . import memory as memory_model
from .checkpoint import AtomicCheckpointIO
from .loggers import check_loggers, run_loggers
from .memory import BatchPlan, NotEnoughMemory
from .module import EMAWeights, ProformerModule, TrainingDiverged, TrainingFailed
from .recipe import budget_epochs, epoch_rows, resolve_recipe
from .report import EpochLines
from .resume import ResumeMismatch, check_resume, dataset_identity
from .rundir import (VALID_DATA, RunDirectory, RunDirectoryError, RunLocked, is_secondary_process, keep_validation,
                     run_lock, say, validation_file)
from .stop import StopNow, StopSignals, TrainingStopped

# The errors train() raises are importable from here.
__all__ = ["NotEnoughMemory", "ResumeMismatch", "RunDirectoryError", "RunLocked", "TrainingDiverged",
           "TrainingFailed", "TrainingStopped", "resolve_shape", "train"]


class _DropLines(logging.Filter):
    """Lightning's lines with nothing to act on: its advertising, its device banner ("GPU
    available: ...", "TPU available: ...", "LOCAL_RANK: ...": the run's memory line names the
    device), its note of a SIGTERM (the run's own line says it stopped, as for SIGINT) and its
    "`Trainer.fit` stopped: `max_epochs=N` reached" (the last epoch line says the run ended)."""

    BANNER = ("GPU available:", "TPU available:", "HPU available:", "IPU available:", "LOCAL_RANK:")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("litlogger" in message or message.startswith(self.BANNER) or "Received SIGTERM:" in message
                    or message.startswith("`Trainer.fit` stopped: `max_epochs="))


for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
              "lightning.pytorch.trainer.connectors.signal_connector"):
    logging.getLogger(_name).addFilter(_DropLines())
# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates; nothing for users to act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# The loggers get one row per epoch (RunDirectory), never per step, so log_every_n_steps is moot.
warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging interval")


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
          callbacks: Sequence[L.Callback] = ()) -> dict:
    """Train a Proformer on a prepared dataset and keep the best model by validation Pearson.

    The model's ``length`` and ``n_targets`` are the dataset's unless the config sets them
    (:func:`resolve_shape`). Before the first step, the memory of a training step is estimated
    and compared with what the machine has (``train.memory``; :func:`proformer.train.memory.plan_batches`):
    a batch that does not fit is run with gradient accumulation, a model that does not fit at
    all stops the run before it starts. Both are said in one line each on stderr.

    Parameters
    ----------
    config : RunConfig
        ``config.data.path`` names the dataset directory (``proformer prepare``). ``config.data.valid``
        names a validation dataset directory, or a table/FASTA file that is prepared with the
        training set's settings (its columns, trim and length, as its meta.json records them) into
        ``run_dir/valid_data``, which the run's config.yaml then names.
    run_dir : path
        Output directory; with ``resume=True`` training continues from
        ``run_dir/checkpoints/last.ckpt``.
    progress : bool
        Show progress within an epoch on stderr: Lightning's bar on a terminal; elsewhere (a log
        file, a pipe) a plain line at most every minute. Either way, one line per epoch gives its
        metrics, its time and the time left (:class:`proformer.train.report.EpochLines`).
        SIGTERM and SIGINT (Ctrl-C) stop the run after the current step, keeping the last
        checkpoint: :class:`TrainingStopped` says how to resume.
    callbacks : sequence of lightning.Callback
        More callbacks for the trainer (``proformer tune``'s Optuna pruning); an exception one
        raises ends the run as it would end ``trainer.fit``.

    Returns
    -------
    dict
        ``best``: the best epoch's validation metrics (with several targets, the means and each
        target's ``val_pearson_{name}`` / ``val_spearman_{name}``); ``target_names``;
        ``length`` and ``n_targets`` (the model's, as resolved); ``accumulate`` (the gradient
        accumulation used); ``run_dir``, ``n_train``, ``n_valid``, ``epochs_run``.
        :func:`proformer.train.report.best_summary` makes the end-of-training line from it.

    Raises
    ------
    NotEnoughMemory
        With ``train.memory=auto``: one sequence per step does not fit; with ``check``: the
        batch does not fit as configured. Raised before anything is written.

    Notes
    -----
    ``data.split=folds:K`` (or ``auto`` on fewer than 2,500 rows, :func:`proformer.data.splits.auto_split`)
    trains K runs, ``run_dir/fold-k`` validated on fold k (``fold:k/K``), one after the other,
    and writes ``run_dir/members.json``; ``train.members=K`` trains K runs ``run_dir/member-k``
    with seeds seed + k the same way. The result is then the mean over the members of each
    member's best epoch (``best``), with ``members`` holding each member's result and ``kind``
    ``folds`` or ``seeds``.
    """
    run_dir = Path(run_dir)
    split = chosen = config.data.split
    if split == "auto" and config.data.path is not None and not config.data.valid:
        split = auto_split(len(Dataset(config.data.path)))
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, split=split))
    folds = split.startswith("folds:") and not config.data.valid
    if folds and config.train.members > 1:
        how = " (auto's split below 2,500 rows)" if chosen == "auto" else ""
        raise ValueError(f"train.members={config.train.members} with data.split={split}{how}: a K-fold run already "
                         f"trains K models; choose one of the two (data.split=random:0.9, say, for seed members)")
    if folds or config.train.members > 1:
        from .members import train_members

        kind, count = ("folds", int(split.partition(":")[2])) if folds else ("seeds", config.train.members)
        return train_members(config, run_dir, resume, progress, kind, count, _train_one, callbacks)
    return _train_one(config, run_dir, resume, progress, callbacks)


def _train_one(config: RunConfig, run_dir: Path, resume: bool, progress: bool, callbacks: Sequence[L.Callback] = (),
               member: tuple[str, int, int] | None = None) -> dict:
    with StopSignals() as stop, contextlib.ExitStack() as cleanup:
        return _checked_train(config, run_dir, resume, progress, stop, cleanup, callbacks, member)


def resolve_shape(dataset: Dataset, model: ModelConfig, layout: Layout) -> tuple[ModelConfig, Layout, str | None]:
    """The model's ``length`` and ``n_targets`` for ``dataset``, and the layout its rows take.

    A field left to the data (a preset's placeholder, :class:`proformer.config.run.FromData`)
    becomes the dataset's: ``length`` = its longest row after trimming ``layout.head`` +
    ``layout.tail``, or meta.json's ``transforms.length`` when that is longer (DREAM files keep
    their 100 positions); ``n_targets`` = its target columns. A field set explicitly (``--set``,
    a config file) is checked instead: a ``length`` shorter than the longest trimmed row, or a
    target count other than the dataset's, is refused naming what to set; a longer ``length``
    pads more.

    Parameters
    ----------
    dataset : Dataset
        Training rows; ``dataset.n_targets`` must be >= 1.
    model : ModelConfig
    layout : Layout
        ``dataset.layout(head, tail, pad=pad)``: the trimming and padding of the run.

    Returns
    -------
    model : ModelConfig
        With plain-int ``length`` and ``n_targets``.
    layout : Layout
        ``layout`` with ``length == model.length``.
    note : str or None
        One line saying what was taken from the data; None when nothing was.
    """
    trimmed = np.maximum(np.asarray(dataset.lengths, dtype=np.int64) - layout.head - layout.tail, 0)
    longest = int(trimmed.max(initial=0))
    names = list(dataset.meta.get("target_names") or [f"target_{i}" for i in range(dataset.n_targets)])
    taken = []
    if is_from_data(model.length):
        length = max(layout.length, longest)
        source = "meta.json transforms.length" if layout.length > longest else "its longest row"
        taken.append(f"length={length} ({source} after trimming {layout.head} + {layout.tail} nt)")
    else:
        length = int(model.length)
        if length < longest:
            raise ValueError(_length_advice(dataset, layout, length, longest, trimmed))
    if is_from_data(model.n_targets):
        n_targets = dataset.n_targets
        taken.append(f"n_targets={n_targets} ({', '.join(names)})")
    else:
        n_targets = int(model.n_targets)
        if n_targets != dataset.n_targets:
            raise ValueError(
                f"{dataset.directory} has {dataset.n_targets} target column(s) {names} but model.n_targets={n_targets}; "
                f"leave n_targets unset to take it from the data (remove it from --set or the config file), or set "
                f"--set n_targets={dataset.n_targets}"
            )
    try:
        model = dataclasses.replace(model, length=int(length), n_targets=int(n_targets))
    except ValueError as error:  # e.g. loss=soft_bins, which predicts one target, on a two-target dataset
        raise ValueError(f"{dataset.directory} has {dataset.n_targets} target column(s) {names}: {error}") from None
    note = f"model shape from the data ({dataset.directory}): {', '.join(taken)}" if taken else None
    return model, dataclasses.replace(layout, length=int(length)), note


def _length_advice(dataset: Dataset, layout: Layout, length: int, longest: int, trimmed: np.ndarray) -> str:
    """The error for a model.length shorter than the data's rows, with the fixes that work."""
    message = (f"{dataset.directory}: rows are up to {longest} nt after trimming {layout.head} + {layout.tail} nt of "
               f"flanks, longer than model.length={length}; leave length unset to take it from the data (remove it "
               f"from --set or the config file), or set --set length={longest}")
    too_long = int((trimmed > length).sum())
    if 0 < too_long < len(trimmed):
        # Only where it keeps some rows: preparing with a length below every row drops them all.
        stored = dataset.meta.get("transforms", {})
        trim = ("" if (stored.get("head", 0), stored.get("tail", 0)) == (layout.head, layout.tail)
                else f" --trim {layout.head},{layout.tail}")
        message += (f"; or, to train on {length}-nt windows, prepare the data again with --length {length}{trim}, "
                    f"which drops the {too_long:,} of {len(trimmed):,} rows longer than that")
    return message


def _checked_train(config: RunConfig, run_dir: Path, resume: bool, progress: bool, stop: StopSignals,
                   cleanup: contextlib.ExitStack, callbacks: Sequence[L.Callback] = (),
                   member: tuple[str, int, int] | None = None) -> dict:
    """train(): everything is checked before anything is written, then _fit."""
    if config.data.path is None:
        raise ValueError("no training data: set data.path in the config or pass --data DATASET_DIR")
    check_loggers(config.train.logger)  # a logger's missing package stops the run before it reads the data
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
    if dataset.n_targets == 0:
        raise ValueError(
            f"{dataset.directory} has no targets (it was prepared from sequences alone) and training needs a "
            f"measured value per sequence: prepare it again from a file that has them, e.g. proformer prepare "
            f"TABLE.tsv --seq-col sequence --target-col expression --out {dataset.directory} (a DREAM file "
            f"carries them in its second column)"
        )
    model_cfg, layout, note = resolve_shape(dataset, model_cfg, layout)
    # The resolved config is the run's: config.yaml records the shape taken from the data.
    config = dataclasses.replace(config, model=model_cfg)

    staged = False  # a validation file prepared outside the run directory, moved in once it is locked
    if config.data.valid and Path(config.data.valid).is_file():
        scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="proformer-valid-")))
        valid_dir, staged, line = validation_file(Path(config.data.valid), dataset.directory, dataset.meta, run_dir,
                                                  resume, scratch)
        say(line)
        # The run's config.yaml names the prepared dataset.
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, valid=str(run_dir / VALID_DATA)))
    elif config.data.valid:
        valid_dir = Path(config.data.valid)
        if not valid_dir.exists():
            raise FileNotFoundError(f"data.valid (--valid) {valid_dir} does not exist; give a prepared dataset "
                                    f"directory or a table/FASTA file to prepare like data.path")
    if config.data.valid:
        valid_set = Dataset(valid_dir)
        check_layout(valid_set, layout, model_cfg.kmer)
        if valid_set.n_targets != dataset.n_targets:
            raise ValueError(
                f"data.valid={config.data.valid} has {valid_set.n_targets} target column(s) "
                f"{valid_set.meta.get('target_names')} but data.path={config.data.path} has {dataset.n_targets} "
                f"{dataset.meta.get('target_names')}; prepare both from the same target columns"
            )
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
    if staged:
        identity["valid"]["path"] = str((run_dir / VALID_DATA).resolve())  # where it will be
    if note:
        say(note)
    train_cfg, recipe = resolve_recipe(train_cfg, len(train_rows), config.data.rc_rows)
    train_cfg, budget = budget_epochs(train_cfg, len(train_rows), config.data.rc_rows)
    if config.data.augment and config.data.augment_finetune >= train_cfg.epochs:
        raise ValueError(f"data.augment_finetune={config.data.augment_finetune} leaves none of the run's "
                         f"{train_cfg.epochs} epochs augmented; give fewer fine-tune epochs (or no data.augment)")
    for line in filter(None, (recipe, budget)):
        say(line)
    # The run's config.yaml records the recipe as trained.
    config = dataclasses.replace(config, train=train_cfg)

    # The device and the number of processes decide the memory plan; a trainer writes nothing
    # until fit.
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)
    trainer = _trainer(config, run_dir, progress, member)
    check_bf16(trainer.strategy.root_device, train_cfg.precision)
    # data.rc_rows doubles the rows of an epoch (see _fit), which a batch may span.
    batch_size = min(train_cfg.batch_size, epoch_rows(len(train_rows), config.data.rc_rows))
    batch_size -= batch_size % trainer.world_size
    plan = _batch_plan(model_cfg, train_cfg, batch_size, trainer)
    say(f"{plan.describe()}; training on {_device_text(trainer)}")

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunDirectoryError(f"cannot create the run directory {run_dir} ({error.strerror}); choose another --out") from None
    with run_lock(run_dir):
        if resume:
            check_resume(run_dir, checkpoint, config, model_cfg, identity)
        if staged and not is_secondary_process():  # DDP's other processes validate on their scratch copy
            valid_set = Dataset(keep_validation(valid_dir, run_dir))
            cleanup.close()  # the scratch copy
        return _fit(config, run_dir, resume, trainer, plan, dataset, valid_set, model_cfg, layout, train_rows,
                    valid_rows, mean, std, identity, checkpoint, stop, callbacks)


#: Under DDP the launching process's gradient accumulation, for the processes it starts (they
#: inherit its environment): every process must run the same number of steps, and each would
#: otherwise see another amount of free memory.
ACCUMULATE_ENV = "PROFORMER_ACCUMULATE"


def _batch_plan(model_cfg, train_cfg, batch_size: int, trainer: L.Trainer) -> BatchPlan:
    """How each batch is run: the memory estimate against what this device has (``train.memory``)."""
    world = trainer.world_size
    inherited = os.environ.get(ACCUMULATE_ENV)
    if world > 1 and inherited and is_secondary_process():
        steps = int(inherited)
        return BatchPlan(batch_size, steps, math.ceil(batch_size // world / steps))
    device = trainer.strategy.root_device
    available = memory_model.available_memory(device) if train_cfg.memory != "off" else None
    plan = memory_model.plan_batches(
        model_cfg, batch_size, precision=train_cfg.precision, optimizer=train_cfg.optimizer, ema=train_cfg.ema > 0,
        accumulate=train_cfg.accumulate, mode=train_cfg.memory, world=world, available=available,
        # CPU processes of one machine share its RAM; each GPU has its own memory.
        processes_here=trainer.num_devices if device.type == "cpu" else 1,
    )
    if world > 1:
        os.environ[ACCUMULATE_ENV] = str(plan.accumulate)
    return plan


class AccumulationSteps(torch.utils.data.Sampler):
    """Each batch of ``sampler`` as ``steps`` consecutive smaller batches (gradient accumulation).

    A process's rows of each global batch are cut, in order, into ``steps`` parts whose sizes
    differ by at most one (``np.array_split``), so the optimizer steps see exactly the rows of
    the run without accumulation: the same global batches, wrap-around and DDP shards. Lightning
    scales each part's loss by 1 / ``steps``: the mean over the batch up to parts of unequal size.
    """

    def __init__(self, sampler: ShardedBatchSampler, steps: int):
        self.sampler, self.steps = sampler, steps

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler) * self.steps

    def __iter__(self):
        for epoch, rows in self.sampler:
            for part in np.array_split(rows, self.steps):
                yield epoch, part


def _fit(config, run_dir, resume, trainer, plan, dataset, valid_set, model_cfg, layout, train_rows, valid_rows, mean,
         std, identity, checkpoint, stop, callbacks=()) -> dict:
    train_cfg = config.train
    if not resume:
        save_run_config(config, run_dir / "config.yaml")
    target_names = list(dataset.meta.get("target_names") or [f"target_{i}" for i in range(dataset.n_targets)])
    # data.rc_rows: each training row's reverse complement is one more id (row + n, which the
    # builder lays out as the row with its strands swapped), shuffled, batched and sharded with
    # the others; so the epoch, its steps and the schedule below count twice the rows.
    train_ids = with_rc_rows(train_rows, len(dataset)) if config.data.rc_rows else train_rows
    train_sampler = ShardedBatchSampler(train_ids, plan.batch_size, shuffle=True, seed=train_cfg.seed)
    steps_per_epoch = len(train_sampler)  # optimizer steps: one per global batch
    if plan.accumulate > 1:
        train_sampler = AccumulationSteps(train_sampler, plan.accumulate)
        trainer.accumulate_grad_batches = plan.accumulate
    train_loader = loader(
        BatchBuilder(dataset, layout, mean, std, mask_ratio=model_cfg.mask_ratio, seed=train_cfg.seed,
                     shift=config.data.shift, singleton_flag="measured" if config.data.singleton_flag else "off",
                     rc_rows=config.data.rc_rows, augment=parse_augmentations(config.data.augment),
                     augment_until=train_cfg.epochs - config.data.augment_finetune),
        train_sampler,
        train_cfg.num_workers,
    )
    # Validation keeps no activations for a backward pass, so a batch of a training step's size fits.
    valid_batch = plan.step_batch if plan.accumulate > 1 else train_cfg.batch_size
    valid_loader = loader(
        BatchBuilder(valid_set, layout, mean, std, singleton_flag="zero" if config.data.singleton_flag else "off"),
        ShardedBatchSampler(valid_rows, valid_batch, shuffle=False),
        train_cfg.num_workers,
    )
    module = ProformerModule(model_cfg.to_dict(), dataclasses.asdict(train_cfg), steps_per_epoch=steps_per_epoch,
                             rc_average=config.data.rc_average, target_names=target_names)
    info = RunInfo(
        proformer_version=__version__,
        model=model_cfg,
        layout=layout,
        rc_average=bool(config.data.rc_average),
        target=TargetInfo(
            names=target_names,
            mean=[float(x) for x in np.atleast_1d(mean)],
            std=[float(x) for x in np.atleast_1d(std)],
            standardized=bool(config.data.standardize and model_cfg.loss != "soft_bins"),
        ),
        data={"train": str(Path(config.data.path).resolve()), "split": config.data.split if not config.data.valid else None,
              "valid": str(Path(config.data.valid).resolve()) if config.data.valid else None,
              "n_train": int(len(train_rows)), "n_valid": int(len(valid_rows)),
              "columns": TableColumns.record(dataset.meta),  # the training table's columns, or None
              "atac": _placement(dataset.meta)},  # where the windows sit on a genome (predict --fasta), or None
    )
    directory = RunDirectory(run_dir, info, identity)
    if resume:
        directory.pending_config = config
    trainer.callbacks.append(directory)
    # The loggers are made now that the run directory is locked (wandb and mlflow may write on creation).
    trainer.loggers = run_loggers(train_cfg.logger, run_dir, directory.metrics)
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    trainer.callbacks.append(stop)  # SIGINT ends the run as SIGTERM does: after the current step
    trainer.callbacks.extend(callbacks)  # after the run directory's: an epoch that ends the run is recorded first
    stop.hand_over()
    try:
        trainer.fit(module, train_loader, valid_loader, ckpt_path=str(checkpoint) if resume else None)
    except (SIGTERMException, StopNow):
        # Lightning stops after the current step on SIGTERM and raises SystemExit (status 0).
        if checkpoint.exists():
            saved = (f"the last checkpoint ({checkpoint}) holds the last finished epoch; continue the run with "
                     f"`proformer train --out {run_dir} --resume` and the same config and data")
        else:
            saved = "no epoch had finished, so there is nothing to resume: start the run again"
        raise TrainingStopped(f"training was stopped by {stop.received or 'SIGTERM'} in epoch "
                              f"{trainer.current_epoch + 1} at step {trainer.global_step}; {saved}") from None
    except TrainingDiverged as error:
        kept = (f"; the best model of the epochs before is still in {run_dir} (config.json + {WEIGHTS})"
                if (run_dir / CONFIG).exists() else f"; no model was written to {run_dir}")
        raise TrainingDiverged(f"{error}{kept}") from None

    # Only the launching process (rank 0) keeps the best score; the others find its config.json.
    if directory.best == -math.inf and trainer.is_global_zero:
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
            "epochs_run": trainer.current_epoch, "target_names": target_names, "length": model_cfg.length,
            "n_targets": model_cfg.n_targets, "accumulate": plan.accumulate}


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


def _device_text(trainer: L.Trainer) -> str:
    """``"cpu"``, ``"cuda:0 (NVIDIA H100 80GB HBM3)"``; with several processes, how many."""
    device = trainer.strategy.root_device
    text = str(device)
    if device.type == "cuda":
        text += f" ({torch.cuda.get_device_name(device)})"
    if trainer.world_size > 1:
        text += f", {trainer.world_size} processes"
    return text


class _LastCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint without its warning that the checkpoint directory is not empty:
    --resume continues from the checkpoint there, and a new run writes over it."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            super().setup(trainer, pl_module, stage)

    @property
    def state_key(self) -> str:
        # ModelCheckpoint's own key, under which last.ckpt has always kept its state (for --resume).
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)


def _trainer(config: RunConfig, run_dir: Path, progress: bool, member: tuple[str, int, int] | None = None) -> L.Trainer:
    train_cfg = config.train
    # Only last.ckpt, for --resume: the best model is RunDirectory's weights.safetensors, written once.
    # (No monitor and top 1: the latest epoch, written over the one before.)
    callbacks = [_LastCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1, enable_version_counter=False)]
    if train_cfg.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_pearson", mode="max", patience=train_cfg.early_stopping))
    if train_cfg.ema:
        # Validation (so val_pearson, the best model and early stopping) sees the average.
        callbacks.append(EMAWeights(train_cfg.ema))
    # The bar rewrites its line with \r: right on a terminal, thousands of lines in a log file
    # (there, a line at most every minute instead). A line per epoch whatever the setting.
    bar = progress and sys.stderr.isatty()
    callbacks.append(EpochLines(steps=progress and not bar, member=member))
    return L.Trainer(
        default_root_dir=run_dir,
        max_epochs=train_cfg.epochs,
        max_time={"minutes": train_cfg.max_time} if train_cfg.max_time else None,
        accelerator=train_cfg.accelerator,
        devices=train_cfg.devices,
        num_nodes=train_cfg.num_nodes,
        precision="bf16-mixed" if train_cfg.precision == "bf16" else "32-true",
        callbacks=callbacks,
        # last.ckpt written beside itself and renamed: a failed save keeps the last good one.
        plugins=[AtomicCheckpointIO(run_dir)],
        logger=False,  # set in _fit: metrics.csv and train.logger's (proformer.train.loggers)
        enable_progress_bar=bar,
        enable_model_summary=False,
        # Clipping is done in ProformerModule.configure_gradient_clipping (the original's scheme).
        gradient_clip_val=None,
        use_distributed_sampler=False,  # ShardedBatchSampler shards the data itself
        num_sanity_val_steps=0,
        deterministic=False,
    )


def _placement(meta: dict) -> dict | None:
    """An ATAC dataset's window, target span and transform (``meta.json`` ``atac``), for
    ``config.json`` ``data.atac``: a genome track places the run's windows with them."""
    atac = meta.get("atac") if isinstance(meta, dict) else None
    if not isinstance(atac, dict) or "target_span" not in atac:
        return None
    return {key: atac[key] for key in ("window", "target_span", "transform")}
