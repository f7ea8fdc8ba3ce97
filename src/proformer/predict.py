"""Batched, streaming prediction from a run directory (``config.json`` + ``weights.pt``).

Input is read in chunks, laid out exactly as in training (the run's trim/pad/RC), predicted in
batches and written out chunk by chunk, so memory does not grow with the input.
"""

from __future__ import annotations

import gzip
import itertools
import json
import sys
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .device import check_bf16, resolve_device
from .model import ModelConfig, Proformer, swap_strands
from .sequence import Layout, encode_padded


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Proformer, dict]:
    """The best model of a run directory, in eval mode, and its ``config.json``."""
    model_dir = Path(model_dir)
    config_path, weights_path = model_dir / "config.json", model_dir / "weights.pt"
    for path in (config_path, weights_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: --model must be a run directory written by proformer train")
    info = json.loads(config_path.read_text())
    model = Proformer(ModelConfig.from_dict(info["model"]))
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return model.to(device).eval(), info


def read_sequences(path: str | Path, chunk_rows: int = 100_000) -> Iterator[list[str]]:
    """Stream sequences from FASTA, one sequence per line, or a TSV whose first column is the sequence.

    Plain or ``.gz``. Yields lists of up to ``chunk_rows`` sequences in file order. A first line
    whose first field is not DNA (e.g. ``sequence``) is taken as a header and skipped; blank
    lines are skipped. Symbols are checked when the chunk is encoded.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input file {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as handle:
            first = handle.readline()
            if first.startswith(">"):
                yield from _batched(_fasta_records(handle), chunk_rows)
            else:
                is_header = first.split("\t")[0].strip().upper().strip("ACGTN") != ""
                lines = itertools.chain([] if is_header else [first], handle)
                sequences = (line.split("\t", 1)[0].strip() for line in lines)
                yield from _batched((s for s in sequences if s), chunk_rows)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"{path}: truncated or corrupt gzip file ({error}); download or compress it again") from None


def _fasta_records(handle) -> Iterator[str]:
    """Sequences of a FASTA file whose first header line was already read."""
    parts: list[str] = []
    for line in handle:
        if line.startswith(">"):
            yield "".join(parts)
            parts = []
        else:
            parts.append(line.strip())
    yield "".join(parts)


def _batched(items: Iterator[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


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
            y = model(batch).float()
            if rc_average:
                y = (y + model(swap_strands(batch)).float()) / 2
        out.append(y.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.float32)


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
    layout = Layout(**info["layout"])
    if rc_average is None:
        rc_average = bool(info.get("rc_average", False))
    mean, std = np.asarray(info["target"]["mean"], np.float32), np.asarray(info["target"]["std"], np.float32)
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
