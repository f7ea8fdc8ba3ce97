"""Work on several processes: Lightning's ``Trainer.predict`` with DDP (``--devices N``,
``--num-nodes M``), for ``predict`` and the interpretation commands (``variant-effect``, ``ism``,
``attribute``).

Lightning starts the other processes by running the command line again, as for training. Every
process reads the whole input and builds the same stream of chunks in the same order (``predict``:
the chunks of :func:`proformer.io.inputs.read_input`; an analysis: slices of its batched passes,
:mod:`proformer.interpret.passes`) and, of each chunk, computes its share: consecutive whole
batches of the one-process run (:func:`share`), so every row is computed in the same batch as by
one process, and its value is the same to the bit. The shares are gathered on global rank 0,
which alone hands each chunk's values, in input order, to the caller's writer (under the output
rule of :mod:`proformer.io.atomic`). Memory is one chunk per process, whatever the input's size.
:func:`map_chunks_ddp` is the one engine; :func:`predict_chunks_ddp` is ``predict``'s use of it.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from .device import resolve_device
from .inference import check_not_only_flanks
from .progress import Progress

__all__ = ["check_ddp_inputs", "ddp_trainer", "map_chunks_ddp", "predict_chunks_ddp", "share"]

_BANNER = ("GPU available:", "TPU available:", "HPU available:", "IPU available:", "LOCAL_RANK:", "Initializing distributed",
           "distributed_backend=", "----")
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: not record.getMessage().startswith(_BANNER)
                                                                       and "litlogger" not in record.getMessage())
logging.getLogger("lightning.fabric.utilities.distributed").addFilter(lambda record: not record.getMessage().startswith(_BANNER))
warnings.filterwarnings("ignore", message=r".*does not have many workers")
warnings.filterwarnings("ignore", message=r"predict returned None")  # the shares go to rank 0's writer instead
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def ddp_trainer(device: str, devices: int, num_nodes: int = 1) -> L.Trainer:
    """A Trainer that predicts on ``devices`` processes per node on ``num_nodes`` nodes (DDP; on
    CPUs the gloo backend). ``device``: ``auto`` (CUDA if present, else CPU), ``cpu`` or ``cuda``."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device {device} with --devices {devices}: give auto, cpu or cuda (each process takes "
                         f"a device of its own)")
    accelerator = resolve_device(device).type  # CUDA asked for on a machine without it: one line
    if accelerator == "cuda" and devices > torch.cuda.device_count():
        raise ValueError(f"--devices {devices}: this machine has {torch.cuda.device_count()} CUDA device(s); give at "
                         f"most that many, or --device cpu")
    return L.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp", logger=False,
                     precision="32-true", enable_progress_bar=False, enable_model_summary=False,
                     enable_checkpointing=False, use_distributed_sampler=False)


def share(rows: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a chunk of ``rows`` that process ``rank`` of ``world`` predicts:
    whole batches of ``batch_size`` counted from the chunk's first row, the same number for each
    process (the last ones may get fewer rows, or none)."""
    per = math.ceil(math.ceil(rows / batch_size) / world) * batch_size
    return min(rows, rank * per), min(rows, (rank + 1) * per)


class _Chunks(IterableDataset):
    def __init__(self, chunks: Iterator):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)


class _Mapper(L.LightningModule):
    """One step per chunk on every process: its share computed, the shares gathered on rank 0."""

    def __init__(self, models: list[torch.nn.Module], compute: Callable, write: Callable | None, line: Progress):
        super().__init__()
        self.models = torch.nn.ModuleList(models)  # moved by Lightning
        self.compute, self.write, self.line, self.done = compute, write, line, 0

    def on_predict_start(self) -> None:
        """SIGTERM stops the run (Lightning's own handler only notes it while predicting): rank 0
        passes it on to the processes it started, each process raises SystemExit, and rank 0's
        output is never renamed into place. Lightning puts the handlers back when predict ends."""
        def stop(signum, frame):
            if self.trainer.strategy.launcher is not None:
                self.trainer.strategy.launcher.kill(signum)
            raise SystemExit(128 + signum)

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, stop)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch  # the chunk, as built: each computation lays out and moves its own batches

    def predict_step(self, chunk, batch_idx):
        values = self.compute(chunk, self.global_rank, self.trainer.world_size)
        parts = [None] * self.trainer.world_size if self.global_rank == 0 else None
        torch.distributed.gather_object(values, parts, dst=0)
        if self.global_rank == 0:
            self.write(chunk, np.concatenate(parts))
            self.done += len(chunk)
            self.line.update(self.done)


def map_chunks_ddp(trainer: L.Trainer, models: list[torch.nn.Module], chunks: Iterator, compute: Callable,
                   write: Callable | None, progress: bool = False, what: str = "predicted", unit: str = "sequences",
                   total: int | None = None) -> None:
    """The engine: each chunk of ``chunks`` computed in shares on the processes of ``trainer``
    (:func:`ddp_trainer`), gathered on global rank 0 in rank order.

    Parameters
    ----------
    trainer : Trainer
        From :func:`ddp_trainer`; one call per command (a second ``Trainer.predict`` would start
        the other processes again).
    models : list of torch.nn.Module
        The models the computation uses, already on ``trainer.strategy.root_device``.
    chunks : iterator
        The same chunks, in the same order, on every process; each has ``len``.
    compute : callable
        ``compute(chunk, rank, world) -> np.ndarray``: the rows of the chunk that process
        ``rank`` of ``world`` computes (its :func:`share`, in whole batches of the one-process
        run), stacked on the first axis; the same trailing shape on every process, an empty share
        included, so that the shares concatenate into the chunk's rows in order.
    write : callable or None
        ``write(chunk, values)`` on global rank 0, for each chunk in input order; None elsewhere.
    progress, what, unit, total
        A progress line on rank 0 (:class:`~proformer.progress.Progress`), counting rows of chunks.
    """
    threads = torch.get_num_threads()
    if trainer.strategy.root_device.type == "cpu":  # this node's cores shared among its processes, not oversubscribed
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // trainer.num_devices))
    try:
        with Progress(what, total=total, unit=unit, enabled=progress and trainer.is_global_zero) as line:
            module = _Mapper(models, compute, write, line)
            loader = DataLoader(_Chunks(chunks), batch_size=None, collate_fn=lambda chunk: chunk)
            trainer.predict(module, dataloaders=loader, return_predictions=False)
    finally:
        torch.set_num_threads(threads)


def predict_chunks_ddp(trainer: L.Trainer, runner, chunks: Iterator, write: Callable | None,
                       standardized: bool = False, progress: bool = False, total: int | None = None,
                       unit: str = "sequences") -> None:
    """Predict the chunks of :func:`proformer.io.inputs.read_input` on the processes of
    ``trainer`` (:func:`ddp_trainer`) with ``runner`` (:func:`proformer.inference.load`'s, on
    ``trainer.strategy.root_device``); on global rank 0, ``write(chunk, float64 (n, n_targets))``
    for each chunk in input order (as :meth:`~proformer.inference.Run.predict_chunks` yields them;
    ``progress``, ``total`` and ``unit`` as there).
    Rows cut to the window are counted in ``runner.too_long`` and ``runner.longest``."""
    runner.check_units(standardized)
    runner.too_long, runner.longest = 0, 0

    def compute(chunk, rank: int, world: int) -> np.ndarray:
        n, cut = len(chunk), np.zeros(len(chunk), dtype=bool)
        for member in runner.members:  # every process refuses the same chunk at once
            check_not_only_flanks(chunk.lengths, member.layout, chunk.where)
            cut |= ~member.layout.fits(chunk.lengths)
        if cut.any():
            runner.too_long += int(cut.sum())
            runner.longest = max(runner.longest, int(chunk.lengths[cut].max()))
        start, stop = share(n, runner.members[0].batch_size, rank, world)
        if stop == start:
            return np.zeros((0, runner.n_targets))
        return runner.predict_stored(chunk.codes[start:stop], chunk.lengths[start:stop],
                                     lambda i: chunk.where(start + i), standardized)[0]

    map_chunks_ddp(trainer, [member.model for member in runner.members], chunks, compute, write, progress,
                   unit=unit, total=total)


def check_ddp_inputs(devices: int, **inputs) -> None:
    """Every process of ``--devices N`` reads the inputs itself: refuse a pipe (one reader would
    take what the others need). ``inputs``: option name (``snv_scan``) -> path, or None."""
    for name, path in inputs.items():
        if path is not None and os.path.exists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
            raise ValueError(f"--devices {devices}: every process reads --{name.replace('_', '-')} {path}; give a "
                             f"file, not a pipe")
