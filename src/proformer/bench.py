"""``proformer bench``: throughput, analytic FLOPs and model FLOPs utilisation (MFU).

MFU = achieved model FLOP/s / the peak of this machine, where the peak is measured in the same
process as the best of several square 4096 matmuls in the same dtype (conventions.md). The
analytic count is checked against ``torch.utils.flop_counter.FlopCounterMode`` in the tests.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig
from .data.dataset import mask_draws
from .device import check_bf16, resolve_device
from .model import ModelConfig
from .sequence import N
from .train.module import ProformerModule


def forward_flops(config: ModelConfig, masked_fraction: float = 0.0) -> int:
    """Analytic FLOPs (2 per multiply-add) of one sequence's forward pass.

    Counts the matmuls, convolutions and attention products, i.e. what dominates; the
    element-wise work (norms, gates, residuals, softmax) is left out, as MFU conventions do.
    ``masked_fraction`` adds the reconstruction layer on that share of the sequence positions.
    """
    # With strands="separate" each strand is its own example of `length` tokens: twice the work
    # of one example, each with a shorter attention.
    examples = 1 if config.strands == "joint" else 2
    d, s = config.dim, config.sequence_tokens
    t = s + config.n_expression_heads
    inner = config.heads * config.key_dim
    f = config.ffn_mult * d
    if config.stem == "kmer":
        stem = 2 * s * d * 6 * config.kmer
    else:  # the first convolution reads six channels; each further conv-stem block is d -> d
        stem = 2 * s * d * 6 * config.stem_kernel
        if config.stem == "conv":
            stem += (config.stem_blocks - 1) * 2 * s * d * d * config.stem_kernel
    ffn = 2 * t * d * f + 2 * t * (f // 2) * d
    conv = 2 * t * d * config.kernel_size + 2 * t * d * d
    attention = 2 * t * d * 3 * inner + 2 * 2 * t * t * inner + 2 * t * inner * d
    block = 2 * ffn + conv + attention
    readout = 2 * max(config.n_expression_heads, 1) * d * config.n_targets
    reconstruction = 2 * masked_fraction * s * d * 6 if config.has_reconstruction else 0
    return int(examples * (stem + config.blocks * block + readout + reconstruction))


def training_flops(config: ModelConfig) -> int:
    """Forward + backward (twice the forward) with the expected share of masked positions."""
    return 3 * forward_flops(config, masked_fraction=config.mask_ratio)


def matmul_peak(dtype: torch.dtype = torch.float32, size: int = 4096, repeats: int = 5, device: str = "cpu") -> float:
    """Best FLOP/s of a square ``size`` matrix product in ``dtype`` over ``repeats`` runs.

    The product is ``F.linear`` (``a @ b.T``), the kernel the model's layers run. On a CPU
    without bf16 instructions, ``torch.mm`` in bf16 takes a fallback about 20x slower than
    linear's oneDNN kernel (1.0 against 18-20 GFLOP/s on the project's AVX2 machine), so a
    ``torch.mm`` peak would understate what the hardware gives the model.
    """
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    F.linear(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        F.linear(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def benchmark(
    config: ModelConfig,
    mode: str = "train",
    batch_size: int = 256,
    precision: str = "32",
    steps: int = 10,
    warmup: int = 3,
    device: str = "auto",
    compile: bool = False,
    peak_flops: float | None = None,
    train_config: TrainConfig | None = None,
) -> dict:
    """Time ``steps`` warmed-up training steps (or inference batches) on random sequences.

    ``peak_flops``: a peak already measured in this process with :func:`matmul_peak` (same dtype
    and device), for scripts that time many models; measured here when None. ``train_config``:
    the recipe whose step is timed (optimizer, clipping, loss weights); the defaults when None.

    Returns
    -------
    dict
        ``sequences_per_second``, ``seconds_per_step`` (mean) and ``step_seconds`` (each timed
        step), ``flops_per_sequence``, ``achieved_flops``, ``peak_flops`` (measured here, same
        dtype) and ``mfu``.
    """
    if mode not in ("train", "predict"):
        raise ValueError(f"mode={mode!r}: use train or predict")
    if precision not in ("32", "bf16"):
        raise ValueError(f"precision={precision!r}: use 32 or bf16")
    for name, value, least in (("batch_size", batch_size, 1), ("steps", steps, 1), ("warmup", warmup, 0)):
        if value < least:
            raise ValueError(f"{name}={value}: must be at least {least}")
    device = str(resolve_device(device))
    check_bf16(device, precision)
    torch.manual_seed(0)
    train_config = dataclasses.replace(train_config or TrainConfig(), compile=compile)
    # The training module itself: the same objective, optimizer, clipping and schedule as a run.
    module = ProformerModule(config.to_dict(), dataclasses.asdict(train_config), steps_per_epoch=warmup + steps).to(device)
    model = module.model
    codes = torch.randint(0, N, (batch_size, 2 * config.length), device=device)  # A C G T
    targets = torch.randn(batch_size, config.n_targets, device=device).squeeze(-1)
    rows = np.arange(batch_size)
    mask = torch.from_numpy(mask_draws(rows, 0, 0, codes.shape[1]) < config.mask_ratio).to(device)
    batch = {"codes": codes, "targets": targets, "mask": mask}
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")

    if mode == "train":
        optimization = module.configure_optimizers()
        optimizer, scheduler = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
        model.train()

        def step() -> None:
            # What Lightning does per batch: zero, objective, backward, clip, step, schedule.
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss, _ = module.objective(batch)
            loss.backward()
            module.configure_gradient_clipping(optimizer)
            optimizer.step()
            scheduler.step()
    else:
        model.eval()
        step_model = torch.compile(model) if compile else model

        @torch.no_grad()
        def step() -> None:
            with autocast:
                step_model(codes)

    for _ in range(warmup):
        step()
    # Each step timed on its own, so the spread shows how steady the machine was.
    step_seconds = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        step_seconds.append(time.perf_counter() - start)
    seconds = sum(step_seconds)
    per_sequence = training_flops(config) if mode == "train" else forward_flops(config)
    rate = steps * batch_size / seconds
    peak = matmul_peak(dtype, device=device) if peak_flops is None else peak_flops
    return {
        "mode": mode,
        "device": device,
        "precision": precision,
        "batch_size": batch_size,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "seconds_per_step": seconds / steps,
        "step_seconds": step_seconds,
        "sequences_per_second": rate,
        "flops_per_sequence": per_sequence,
        "achieved_flops": rate * per_sequence,
        "peak_flops": peak,
        "mfu": rate * per_sequence / peak,
    }


def describe(result: dict) -> str:
    """:func:`benchmark`'s result as the lines ``proformer bench`` prints."""
    dtype = "bf16" if result["precision"] == "bf16" else "fp32"
    fastest, slowest = min(result["step_seconds"]), max(result["step_seconds"])
    passes = "forward + backward" if result["mode"] == "train" else "forward"
    return "\n".join([
        f"batch {result['batch_size']}, {dtype}, {result['device']}, {result['threads']} threads, "
        f"{result['steps']} timed steps",
        f"sequences/s            {result['sequences_per_second']:,.1f}",
        f"seconds per step       {result['seconds_per_step']:.4f} (mean; fastest {fastest:.4f}, slowest {slowest:.4f})",
        f"model FLOPs/sequence   {result['flops_per_sequence']:,} ({passes})",
        f"achieved               {result['achieved_flops'] / 1e9:,.1f} GFLOP/s",
        f"{dtype} matmul peak      {result['peak_flops'] / 1e9:,.1f} GFLOP/s (square 4096 matmul, best of 5, measured now)",
        f"MFU {100 * result['mfu']:.1f}%",
    ])
