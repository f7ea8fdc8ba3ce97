"""Batched, streaming prediction from a run directory (``config.json`` + ``weights.pt``).

Input is read in chunks, laid out exactly as in training (the run's trim/pad/RC), predicted in
batches and written out chunk by chunk, so memory does not grow with the input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .device import check_bf16, resolve_device
from .io import sequences as sequence_io
from .io.run import RunInfo, read_run_info, read_weights
from .model import Proformer, swap_strands
from .sequence import encode_padded


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Proformer, RunInfo]:
    """The best model of a run directory, in eval mode, and its :class:`~proformer.io.run.RunInfo`
    (``config.json``: model shape, layout, target statistics, best epoch)."""
    info = read_run_info(model_dir)
    model = Proformer(info.model)
    model.load_state_dict(read_weights(model_dir))
    return model.to(device).eval(), info


def read_sequences(path: str | Path, chunk_rows: int = 100_000, seq_col: str | None = None) -> Iterator[list[str]]:
    """Stream the sequences of ``path`` as lists of ``chunk_rows`` (the last one shorter), in file order.

    The one sequence-file reader, :func:`proformer.io.sequences.read_sequences` (FASTA, one per
    line, DREAM TSV, a CSV/TSV table with ``seq_col``; plain or gzip), with the symbols the model
    takes: ``A C G T N`` and the mask token ``M``, either case. A first line is skipped as a header
    only when its first field is a column name such as ``sequence``; anything else is data, so
    a bad first line is an error naming ``file:line`` and never shifts the rows. That reader's
    chunks also carry each row's line and the FASTA record ids.
    """
    for chunk in sequence_io.read_sequences(path, chunk_rows, seq_col=seq_col, allow_mask=True):
        yield chunk.sequences


@torch.no_grad()
def predict_codes(model: Proformer, codes: np.ndarray, batch_size: int = 256, precision: str = "32",
                  rc_average: bool = False) -> np.ndarray:
    """Predictions for model-ready codes ``(n, 2L)`` -> ``(n,)`` or ``(n, n_targets)`` float32.

    ``rc_average``: the mean of the predictions for each sequence and its reverse complement.
    """
    device = next(model.parameters()).device
    out = []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    for start in range(0, len(codes), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(codes[start : start + batch_size])).to(device)
        with autocast:
            out.append(predict_batch(model, batch, rc_average=rc_average).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.float32)


def predict_batch(model: Proformer, codes: torch.Tensor, singleton: torch.Tensor | None = None,
                  rc_average: bool = False) -> torch.Tensor:
    """One batch of model-ready codes ``(batch, 2L)`` -> float32 ``(batch,)`` or ``(batch, n_targets)``.

    The one place a prediction is made: validation during training and :func:`predict_codes`
    both call it, so a run is validated exactly as it will predict. ``rc_average``: the mean of
    the predictions for each sequence and its reverse complement (strands swapped).
    """
    y = model(codes, singleton).float()
    if rc_average:
        y = (y + model(swap_strands(codes), singleton).float()) / 2
    return y


def predict(
    model_dir: str | Path,
    input: str | Path,
    out: str | Path,
    format: str = "tsv",
    data_dir: str | Path | None = None,
    destandardize: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "32",
    progress: bool = True,
    rc_average: bool | None = None,
) -> dict:
    """Predict every sequence of ``input`` with the best model of ``model_dir``.

    Parameters
    ----------
    format : "tsv" or "dream-json"
        ``tsv``: ``sequence<TAB>prediction`` (one column per target) for every input row.
        ``dream-json``: ``{"index": value}`` for the 9,045 public-leaderboard indices in the
        order of ``data_dir/public_leaderboard/sample_submission.json``; the input must be the
        71,103 DREAM test sequences in official order (row i = test index i).
    destandardize : bool
        Convert predictions back to training units (``y * std + mean``); otherwise they stay in
        the standardised units the model was trained on.
    rc_average : bool or None
        Average the predictions for each sequence and its reverse complement; None takes the
        run's ``data.rc_average``.

    Returns
    -------
    dict
        Rows predicted and the output path.
    """
    if format not in ("tsv", "dream-json"):
        raise ValueError(f"format={format!r}: use tsv or dream-json")
    model, info = load_model(model_dir, resolve_device(device))
    check_bf16(next(model.parameters()).device, precision)
    layout = info.layout
    if rc_average is None:
        rc_average = info.rc_average
    mean, std = np.asarray(info.target.mean, np.float32), np.asarray(info.target.std, np.float32)
    wanted: list[str] = []
    if format == "dream-json":
        if data_dir is None:
            raise ValueError("--format dream-json needs --data-dir (the DREAM 2022 folder holding public_leaderboard/)")
        template = Path(data_dir) / "public_leaderboard" / "sample_submission.json"
        if not template.exists():
            raise FileNotFoundError(f"{template} does not exist; --data-dir must hold public_leaderboard/sample_submission.json")
        wanted = list(json.loads(template.read_text()))
        needed = {int(k) for k in wanted}
        kept: dict[int, float] = {}
    out = Path(out)
    n = 0
    with open(out, "w") as handle:
        for chunk in read_sequences(input):
            codes, lengths = encode_padded(chunk)
            prediction = predict_codes(model, layout.apply(codes, lengths), batch_size, precision, rc_average)
            if destandardize:
                prediction = prediction * (std if prediction.ndim > 1 else std[0]) + (mean if prediction.ndim > 1 else mean[0])
            if format == "tsv":
                values = prediction.reshape(len(chunk), -1)
                handle.writelines(
                    seq + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n" for seq, row in zip(chunk, values)
                )
            else:
                values = prediction.reshape(len(chunk), -1)[:, 0]
                for index in range(n, n + len(chunk)):
                    if index in needed:
                        kept[index] = float(values[index - n])
            n += len(chunk)
            if progress:
                print(f"\rpredicted {n:,} sequences", end="", file=sys.stderr, flush=True)
        if format == "dream-json":
            missing = [k for k in wanted if int(k) not in kept]
            if missing:
                raise ValueError(
                    f"{input} has {n:,} sequences but the submission needs test indices up to "
                    f"{max(int(k) for k in wanted):,} (e.g. {missing[0]}); pass the 71,103 DREAM test sequences in official order"
                )
            json.dump({k: kept[int(k)] for k in wanted}, handle)
    if progress:
        print(file=sys.stderr)
    return {"rows": n, "out": str(out), "format": format}
