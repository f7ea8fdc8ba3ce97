"""The model work of an analysis as batched passes, on one process or on several (``--devices N``).

An analysis (an SNV scan, ISM, attributions, variant pairs) plans its model work as
:class:`Pass` es: ``rows`` rows, each computed independently of the others' results, in batches of
``batch`` rows counted from the pass's first row. :func:`run_passes` computes them and returns
one array per pass; the analysis then assembles its result from them exactly as before.

On one process the passes run here, in slices of whole batches. With :class:`Processes`
(``--devices N``, ``--num-nodes M``) the slices are the chunks of
:func:`proformer.parallel.map_chunks_ddp`: every process plans the same passes, computes its
share of each slice (whole batches of the one-process run, :func:`proformer.parallel.share`), and
global rank 0 gathers them; each row is computed in the same batch as by one process, so rank 0
assembles, to the bit, the arrays one process would and writes the same output. The other
processes get None and write nothing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..limits import MAX_DEVICES, whole
from ..progress import Progress

__all__ = ["Pass", "Processes", "processes", "run_passes"]

#: Batches per slice: progress is said (and, on several processes, the shares gathered) after each.
SLICE_BATCHES = 16


@dataclass
class Pass:
    """Batched model work: ``compute(start, stop)`` -> the values of rows ``[start, stop)``,
    stacked on the first axis, in batches of ``batch`` rows from ``start`` (a multiple of
    ``batch``; ``stop`` is one too, or ``rows``). An empty range gives an empty array of the
    pass's trailing shape."""

    rows: int
    batch: int
    compute: Callable[[int, int], np.ndarray]


@dataclass
class _Slice:
    index: int  # of the pass
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


class Processes:
    """The processes of ``--devices N`` (N > 1, or several nodes): a DDP trainer
    (:func:`proformer.parallel.ddp_trainer`) and what each process needs to know of it."""

    def __init__(self, trainer):
        self.trainer = trainer

    @property
    def lead(self) -> bool:
        """Global rank 0: the process that writes the output and says what it did."""
        return self.trainer.is_global_zero

    @property
    def rank(self) -> int:
        return self.trainer.global_rank

    @property
    def device(self):
        """This process's device: where the model is loaded."""
        return self.trainer.strategy.root_device


def processes(device: str, devices: int, num_nodes: int, **inputs: str | os.PathLike | None) -> Processes | None:
    """None for one process (``devices * num_nodes == 1``: no Lightning import); otherwise
    :class:`Processes`, after refusing an input that is a pipe (every process reads each of
    ``inputs``, option name -> path) and a ``device`` the processes cannot share."""
    devices, num_nodes = whole("devices", devices, 1, MAX_DEVICES), whole("num_nodes", num_nodes, 1, MAX_DEVICES)
    if devices * num_nodes == 1:
        return None
    from ..parallel import check_ddp_inputs, ddp_trainer

    check_ddp_inputs(devices, **inputs)
    parallel = Processes(ddp_trainer(device, devices, num_nodes))
    if not parallel.lead:  # every process reads the same input: rank 0 says its warnings, once
        warnings.simplefilter("ignore")
    return parallel


def run_passes(passes: Sequence[Pass], what: str, progress: bool = False, parallel: Processes | None = None,
               models: Sequence = ()) -> list[np.ndarray] | None:
    """The values of every pass, ``[(rows, ...)]`` in the order of ``passes``.

    Parameters
    ----------
    passes : sequence of Pass
    what : str
        The progress line's label; it counts rows over all passes.
    progress : bool
        Progress on stderr (on rank 0 only, with ``parallel``).
    parallel : Processes, optional
        Compute on its processes (the same passes planned on every one); then only global rank 0
        gets the arrays, the others None.
    models : sequence of torch.nn.Module
        With ``parallel``: the models the passes use, for Lightning to hold.
    """
    total = sum(p.rows for p in passes)
    found: list[list[np.ndarray]] = [[] for _ in passes]
    if parallel is None:
        with Progress(what, total=total, enabled=progress) as line:
            done = 0
            for piece in _slices(passes, 1):
                found[piece.index].append(passes[piece.index].compute(piece.start, piece.stop))
                done += len(piece)
                line.update(done)
    else:
        from ..parallel import map_chunks_ddp, share

        def compute(piece: _Slice, rank: int, world: int) -> np.ndarray:
            start, stop = share(len(piece), passes[piece.index].batch, rank, world)
            return passes[piece.index].compute(piece.start + start, piece.start + stop)

        def write(piece: _Slice, values: np.ndarray) -> None:
            found[piece.index].append(values)

        world = parallel.trainer.world_size
        map_chunks_ddp(parallel.trainer, list(models), _slices(passes, world), compute,
                       write if parallel.lead else None, progress, what=what, unit="", total=total)
        if not parallel.lead:
            return None
    # A pass without rows still has its trailing shape, from an empty compute (no model work).
    return [np.concatenate(parts) if parts else p.compute(0, 0) for parts, p in zip(found, passes)]


def _slices(passes: Sequence[Pass], world: int):
    """Each pass in slices of whole batches, ``SLICE_BATCHES`` per process; lazily, as the
    engine reads them."""
    for index, p in enumerate(passes):
        step = p.batch * SLICE_BATCHES * world
        for start in range(0, p.rows, step):
            yield _Slice(index, start, min(start + step, p.rows))
