"""``checkpoints/last.ckpt`` written so that the last good one survives any failure.

Lightning's own checkpoint IO serialises to memory, writes a temporary in the system's temp
folder and moves it over the target: across file systems that move copies into ``last.ckpt`` in
place (a full disk truncates it where ``--resume`` looks), nothing is fsynced, and an error names
the temporary. :class:`AtomicCheckpointIO`, given to the Trainer as a plugin, writes beside the
target instead (:func:`proformer.io.atomic.atomic_write`: a temporary in ``checkpoints/``,
fsynced, renamed over ``last.ckpt`` only once complete), and a failed write is one
:class:`~proformer.io.run.RunWriteError` naming ``RUN/checkpoints/last.ckpt`` and, on a full
disk, the space needed and free.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..io.atomic import atomic_write
from ..io.run import write_error

__all__ = ["AtomicCheckpointIO"]


def _tensor_bytes(value: Any) -> int:
    """The bytes of the tensors in a checkpoint (nested dicts, lists, tuples): its size, about."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` whose saves replace the checkpoint atomically.

    Parameters
    ----------
    run_dir : path
        The run directory, for the advice of a failed write (``--resume`` continues it).
    """

    def __init__(self, run_dir: str | Path):
        super().__init__()
        self.run_dir = Path(run_dir)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        buffer = io.BytesIO()
        try:
            # Serialised first (as Lightning does), so that an error while writing is the disk's.
            torch.save(checkpoint, buffer)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "wb") as handle:
                handle.write(buffer.getbuffer())
        except OSError as error:
            needed = max(buffer.tell(), _tensor_bytes(checkpoint))
            raise write_error(path, error, needed, "the checkpoint",
                              f"continue the run with `proformer train --out {self.run_dir} --resume`") from None
