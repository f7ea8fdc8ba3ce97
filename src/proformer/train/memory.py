"""How much memory a training step takes, how much there is, and the batch plan that fits.

:func:`estimate_training_memory` adds up, for one process:

* the weights, their gradients and the optimizer's state: 4 + 4 + 8 bytes per parameter
  (Adam/AdamW keep two moments, Lion one: 4 + 4 + 4), + 2 for the bf16 copy of the weights
  that autocast keeps during a bf16-mixed step;
* the activations: the tensors autograd keeps for the backward pass of each block
  (:func:`saved_tensors`, per token ``10.75 d + 4.25 f + 4 heads key_dim + heads + 8`` values
  with ``f = ffn_mult d``, counted from the code and checked with
  ``torch.autograd.graph.saved_tensors_hooks``: each FFN keeps its input, its LayerNorm's
  output, the 2x-wide gate input, the gate and dropout outputs and the dropout masks; the conv
  module its four intermediates; attention Q, K, V and its output), each ``batch x tokens x
  width`` (``tokens = H + 2L``; ``2 (H + L)`` with separate strands), times ``blocks + BACKWARD_WORKSPACE`` (the gradients and
  temporaries of the block being differentiated). A tensor smaller than ``MMAP_THRESHOLD``
  counts ``HEAP_OVERHEAD`` times: the C allocator serves it from its heap, which after a few
  steps holds that much more than is live (freed blocks it cannot return); a larger one is
  mapped and unmapped by itself and counts once.

The attention matrices ``heads x tokens^2`` are never stored: SDPA's fused kernels (flash
attention on CPUs, flash/memory-efficient attention on CUDA) keep one log-sum-exp per head and
token instead (the ``+ heads``).

``HEAP_OVERHEAD`` and ``BACKWARD_WORKSPACE`` were fitted to the growth of the peak resident
memory (``ru_maxrss``) over three training steps on a CPU (the project's 2-core, 24 GiB
machine, torch 2.13, glibc malloc, 2 threads): 54 runs of 27 shapes (dims 32-512, 1-4
blocks, 2-8 heads, full and split key_dim, ffn_mult 4 and 8, 100 and 230 positions, pooling
and expression heads, batches of 8-512) land within 0.88-1.14x of the measured growth (median
0.99); e.g. the README's 128/4/4 model at batch 512: 11.1 GiB measured, 1.05x; dream2022 at
batch 8: 1.7 GiB, 1.12x. bf16-mixed steps measured 0.57-0.63x of float32's (2.5 bytes per
float value here). On CUDA the caching allocator differs; the same formula is used there.
tests/train/test_memory.py checks two sizes against a measured peak (within 30 %).

:func:`plan_batches` compares the estimate with :func:`available_memory` and picks the gradient
accumulation (``train.accumulate``) that fits, as ``train.memory`` asks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..limits import size_text
from ..model.config import ModelConfig

__all__ = [
    "BACKWARD_WORKSPACE",
    "HEADROOM",
    "HEAP_OVERHEAD",
    "MMAP_THRESHOLD",
    "BatchPlan",
    "MemoryEstimate",
    "NotEnoughMemory",
    "available_memory",
    "estimate_training_memory",
    "plan_batches",
    "saved_tensors",
]

#: Measured factors of the activation term (see the module docstring).
HEAP_OVERHEAD = 1.44
BACKWARD_WORKSPACE = 0.49
#: glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit): an allocation at least
#: this large gets its own mapping, returned to the system when freed.
MMAP_THRESHOLD = 32 * 2**20
#: Bytes per float activation value: float32, or bf16-mixed, where the matmuls' inputs and
#: outputs are bf16 but LayerNorms, residuals, the loss and the conv stay float32 (measured).
BYTES_PER_VALUE = {"32": 4.0, "bf16": 2.5}
#: The share of the available memory a run plans to use: the rest is for the data loader, the
#: validation pass, the checkpoint being written and whatever else runs on the machine.
HEADROOM = 0.85




def saved_tensors(config: ModelConfig) -> list[tuple[float, int]]:
    """What autograd keeps per token for one block's backward pass: ``(width, bytes per value)``
    of each saved tensor, float32 (4) or a bool dropout mask (1); the tensor holds ``batch x
    tokens x width`` values."""
    d, f, h = config.dim, config.ffn_mult * config.dim, config.heads
    qkv = h * config.key_dim
    # input, LayerNorm output, gate input (a|b), gate output, dropout output; masks; mean + rstd
    ffn = [(d, 4), (d, 4), (f, 4), (f / 2, 4), (f / 2, 4), (f / 2, 1), (d, 1), (2, 4)]
    # input, LayerNorm output (the conv's input), the pointwise layer's input, ReLU output; mask; stats
    conv = [(d, 4)] * 4 + [(d, 1), (2, 4)]
    # LayerNorm input and output, Q, K, V, SDPA output, its log-sum-exp, stats
    attention = [(d, 4), (d, 4)] + [(qkv, 4)] * 4 + [(h, 4), (2, 4)]
    return 2 * ffn + conv + attention




def parameter_count(config: ModelConfig) -> int:
    """Number of parameters of a Proformer of ``config`` (built on the meta device: no memory)."""
    import torch

    from ..model import Proformer

    with torch.device("meta"):
        return sum(p.numel() for p in Proformer(config).parameters())


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of one training step of one process, in bytes, by what holds it.

    Attributes
    ----------
    parameters, gradients, optimizer : int
        The weights (with their bf16 copy under bf16-mixed), their gradients, the optimizer state.
    averaged : int
        The moving average of the weights (``train.ema``), 0 when it is off.
    activations : int
        What the step's batch of ``batch_size`` sequences needs while it is differentiated.
    batch_size : int
        Sequences per step of this process.
    """

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    batch_size: int
    averaged: int = 0

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.averaged + self.activations

    def describe(self) -> str:
        """``"11.5 GiB (weights 181 MiB, gradients 181 MiB, optimizer state 362 MiB, activations
        10.8 GiB for 64 sequences per step)"``."""
        sequences = f"{self.batch_size:,} sequence{'s' if self.batch_size != 1 else ''}"
        average = f", weight average {size_text(self.averaged)}" if self.averaged else ""
        return (f"{size_text(self.total)} (weights {size_text(self.parameters)}, gradients "
                f"{size_text(self.gradients)}, optimizer state {size_text(self.optimizer)}{average}, activations "
                f"{size_text(self.activations)} for {sequences} per step)")


def estimate_training_memory(config: ModelConfig, batch_size: int, precision: str = "32", optimizer: str = "adam",
                             n_parameters: int | None = None, ema: bool = False) -> MemoryEstimate:
    """Estimate the peak memory of a training step (forward, backward, optimizer step).

    Parameters
    ----------
    config : ModelConfig
        The model's shape; the batch is ``(batch_size, 2 * config.length)`` codes.
    batch_size : int
        Sequences per step in this process (a DDP process's share of the global batch).
    precision : "32" or "bf16"
        ``train.precision``.
    optimizer : "adam", "adamw" or "lion"
        ``train.optimizer``: two moments per parameter, or one (Lion).
    n_parameters : int, optional
        The model's parameter count, when known (computed from ``config`` otherwise).
    ema : bool
        ``train.ema`` is on: a float32 copy of the weights (the moving average) is held too.

    Returns
    -------
    MemoryEstimate
    """
    if precision not in BYTES_PER_VALUE:
        raise ValueError(f"precision={precision!r}: valid values are {', '.join(BYTES_PER_VALUE)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ValueError(f"batch_size={batch_size!r}: must be an integer >= 0")
    n = parameter_count(config) if n_parameters is None else n_parameters
    # strands="separate": each sequence is two examples of H + L tokens
    tokens = (1 if config.strands == "joint" else 2) * (config.n_expression_heads + config.sequence_tokens)
    scale = BYTES_PER_VALUE[precision] / 4  # float tensors under bf16-mixed
    held = 0.0  # what one block's saved tensors hold, allocator overhead included
    for width, size in saved_tensors(config):
        nbytes = batch_size * tokens * width * (size * scale if size == 4 else size)
        held += nbytes * (HEAP_OVERHEAD if nbytes < MMAP_THRESHOLD else 1.0)
    moments = 1 if optimizer == "lion" else 2
    return MemoryEstimate(
        parameters=n * (4 + (2 if precision == "bf16" else 0)),
        gradients=n * 4,
        optimizer=n * 4 * moments,
        averaged=n * 4 if ema else 0,
        activations=math.ceil(held * (config.blocks + BACKWARD_WORKSPACE)),
        batch_size=batch_size,
    )


# -- what is available -----------------------------------------------------------------------


def _meminfo_available() -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes (what can be allocated without swapping), or the
    free physical pages where there is no /proc."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """Memory left under this process's cgroup limit (a container's), or None without a limit.

    The page cache is charged to the cgroup too but is reclaimed before the OOM killer runs, so
    the inactive file pages are not counted as used.
    """
    for limit_file, usage_file, stat_file, cache_key in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat", "inactive_file"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
         "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"),
    ):
        try:
            text = Path(limit_file).read_text().strip()
            if text == "max":
                return None
            limit, usage = int(text), int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:  # cgroup v1's "no limit"
            return None
        cache = 0
        try:
            for line in Path(stat_file).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == cache_key:
                    cache = int(value)
        except (OSError, ValueError):
            pass
        return max(limit - usage + cache, 0)
    return None


def available_memory(device="cpu") -> int | None:
    """Bytes a training step on ``device`` can still allocate, or None when it cannot be told.

    CPU: ``MemAvailable`` (/proc/meminfo), or what is left under a container's cgroup limit when
    that is less. CUDA: the free memory of the device (``torch.cuda.mem_get_info``). Other
    devices (MPS): None.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(values) if values else None


# -- the plan ----------------------------------------------------------------------------------


class NotEnoughMemory(RuntimeError):
    """A training step does not fit in the memory available (``train.memory``)."""


@dataclass(frozen=True)
class BatchPlan:
    """How each global batch is run.

    Attributes
    ----------
    batch_size : int
        Sequences per optimizer step, over all processes (``train.batch_size``).
    accumulate : int
        Steps per optimizer step (``train.accumulate``, or what ``memory=auto`` chose).
    step_batch : int
        The most sequences one step of one process holds: ``ceil(batch_size / world / accumulate)``.
    estimate : MemoryEstimate or None
        For ``step_batch`` (None with ``memory=off``).
    available : int or None
        The memory this process may use (bytes; None where unknown or not checked).
    asked : MemoryEstimate or None
        With ``chosen``: the estimate for the step as configured, which did not fit.
    """

    batch_size: int
    accumulate: int
    step_batch: int
    estimate: MemoryEstimate | None = None
    available: int | None = None
    asked: MemoryEstimate | None = None

    @property
    def chosen(self) -> bool:
        """``accumulate`` was raised by ``memory=auto`` (the run says so)."""
        return self.asked is not None

    def describe(self) -> str:
        """One line for the run's log."""
        if self.estimate is None:
            return f"memory: not checked (train.memory=off); {self._steps()}"
        where = f"{size_text(self.available)} available" if self.available is not None else "the memory available is unknown"
        if self.chosen:
            return (f"memory: a step of {self.asked.batch_size:,} sequences needs an estimated "
                    f"{size_text(self.asked.total)}, {where}: training with gradient accumulation, {self._steps()}, "
                    f"estimated {self.estimate.describe()} (train.accumulate={self.accumulate}; --set "
                    f"train.memory=off trains without)")
        return f"memory: estimated {self.estimate.describe()}, {where}; {self._steps()}"

    def _steps(self) -> str:
        if self.accumulate == 1:
            return f"one step per batch of {self.batch_size:,}"
        return (f"{self.accumulate} steps of up to {self.step_batch:,} sequences per process and optimizer step "
                f"(global batch {self.batch_size:,})")


def plan_batches(config: ModelConfig, batch_size: int, *, precision: str = "32", optimizer: str = "adam",
                 accumulate: int = 1, mode: str = "auto", world: int = 1, processes_here: int = 1,
                 available: int | None = None, n_parameters: int | None = None, ema: bool = False) -> BatchPlan:
    """The gradient accumulation with which a training step fits in ``available`` bytes.

    Parameters
    ----------
    config : ModelConfig
    batch_size : int
        Global sequences per optimizer step; each of ``world`` processes takes ``batch_size / world``.
    precision, optimizer, ema
        As in :func:`estimate_training_memory`.
    accumulate : int
        The accumulation asked for (``train.accumulate``); ``auto`` only ever raises it.
    mode : "auto", "check" or "off"
        ``train.memory``: raise ``accumulate`` until a step fits; stop when it does not fit as
        asked; do not check.
    world : int
        Processes in the run (DDP).
    processes_here : int
        Processes on this machine that share ``available`` (CPU DDP; 1 on GPUs, one each).
    available : int or None
        Bytes available (:func:`available_memory`); None: not checked.

    Raises
    ------
    NotEnoughMemory
        ``check``: the asked step does not fit (naming the ``accumulate`` that would);
        ``auto``: one sequence per step does not fit. The message has the estimate and what to change.
    ValueError
        ``accumulate`` is more than the sequences each process has per batch.
    """
    share = max(batch_size // max(world, 1), 1)
    if accumulate > share:
        raise ValueError(f"train.accumulate={accumulate} is more than the {share} sequence(s) each process has per batch "
                         f"(train.batch_size={batch_size} over {world} process(es)): every accumulated step needs at "
                         f"least one; set train.accumulate <= {share}")

    def step_batch(k: int) -> int:
        return math.ceil(share / k)

    if mode == "off" or available is None:
        return BatchPlan(batch_size, accumulate, step_batch(accumulate), available=available)
    n = parameter_count(config) if n_parameters is None else n_parameters
    budget = available * HEADROOM / max(processes_here, 1)

    def estimate(k: int) -> MemoryEstimate:
        return estimate_training_memory(config, step_batch(k), precision, optimizer, n_parameters=n, ema=ema)

    asked = estimate(accumulate)
    if asked.total <= budget:
        return BatchPlan(batch_size, accumulate, step_batch(accumulate), asked, available)
    # The fewest steps that fit: the estimate falls as the steps get smaller.
    k = next((k for k in _candidates(share, accumulate) if estimate(k).total <= budget), None)
    room = (f"{size_text(budget)} of the {size_text(available)} available"
            + (f" shared by {processes_here} processes" if processes_here > 1 else "")
            + f" (train.memory leaves {1 - HEADROOM:.0%} free)")
    if k is None:
        raise NotEnoughMemory(
            f"a training step of this model does not fit in memory even with one sequence per step: estimated "
            f"{estimate(share).describe()}, against {room}. Train a smaller model (--preset grid, or --set dim=..., "
            f"blocks=..., heads=..., head_dim=split), use a machine or GPU with more memory (on a GPU, --set "
            f"precision=bf16 needs less), or --set train.memory=off to try anyway"
        )
    if mode == "check":
        raise NotEnoughMemory(
            f"a training step of train.batch_size={batch_size} (train.accumulate={accumulate}) needs an estimated "
            f"{asked.describe()}, more than {room}. Set --set train.accumulate={k} (the same global batch in "
            f"{k} steps of up to {step_batch(k):,} sequences, estimated {size_text(estimate(k).total)}), or --set "
            f"train.batch_size={step_batch(k) * max(world, 1):,} (a smaller batch: another recipe), or --set "
            f"train.memory=auto to accumulate automatically"
        )
    return BatchPlan(batch_size, k, step_batch(k), estimate(k), available, asked=asked)


def _candidates(share: int, start: int) -> list[int]:
    """Accumulation counts from ``start`` to ``share`` that give distinct step sizes, ascending."""
    counts, k = [], start
    while k <= share:
        counts.append(k)
        size = math.ceil(share / k)
        if size == 1:
            break
        k = max(k + 1, math.ceil(share / (size - 1)))  # the next k whose step is smaller
    return counts
