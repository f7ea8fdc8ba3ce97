"""Where a model runs: device resolution and a warning for bf16 on CPUs that emulate it."""

from __future__ import annotations

import warnings

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> the first CUDA device if there is one, else the CPU; anything else as given.

    A name torch does not know, or a CUDA device on a machine without CUDA, is a ValueError with
    one line saying what to use instead (not torch's assertion deep inside the first copy).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r}: {str(error).splitlines()[0]}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine (torch {torch.__version__}); "
                         f"use --device cpu or auto")
    return resolved


def check_bf16(device: str | torch.device, precision: str) -> None:
    """Warn when bf16 is asked for on a CPU without bf16 instructions (AVX-512 BF16 or AMX).

    There torch emulates bf16 arithmetic: on the project's AVX2 machine (2 cores) a bf16 linear layer
    ran at 18-20 GFLOP/s against 130-180 GFLOP/s in fp32 (and ``torch.mm`` in bf16 at 1 GFLOP/s).
    """
    if str(precision) != "bf16" or torch.device(device).type != "cpu":
        return
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        return
    warnings.warn(
        f"precision=bf16 on a CPU without bf16 instructions ({torch.backends.cpu.get_cpu_capability()}): "
        f"bf16 matmuls are emulated and run several times slower than fp32 here; use precision 32 on this "
        f"machine, bf16 on a GPU or a CPU with AVX-512 BF16 / AMX",
        RuntimeWarning,
        stacklevel=2,
    )
