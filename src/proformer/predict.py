"""Batched, streaming prediction from a run directory (``config.json`` + ``weights.pt``).

Input is read in chunks, laid out exactly as in training (the run's trim/pad/RC), predicted in
batches and written out chunk by chunk, so memory does not grow with the input.

Input rules are prepare's: ``A C G T N`` in either case (the mask token ``M`` is refused), no
empty FASTA record, no sequence that the run's flanks would empty; each error names
``file:line``. A sequence longer than the model's window after trimming is cut to its centre, as
:meth:`proformer.sequence.Layout.apply` does, and counted: one warning on stderr gives how many
and the longest length. The output is written beside its target and renamed into place
(:mod:`proformer.io.atomic`), so a failed or killed predict leaves an existing ``out`` untouched
and never a complete-looking partial file; ``out`` may not be the input file.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .device import check_bf16, resolve_device
from .io import sequences as sequence_io
from .io.atomic import atomic_write, same_file
from .io.run import RunInfo, read_run_info, read_weights
from .model import Proformer, swap_strands
from .sequence import Layout, encode_padded


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
    line, DREAM TSV, a CSV/TSV table with ``seq_col``; plain or gzip), with prepare's symbols:
    ``A C G T N``, either case (the mask token ``M`` is refused). A first line is skipped as a
    header only when its first field is a column name such as ``sequence``; anything else is
    data, so a bad first line is an error naming ``file:line`` and never shifts the rows. An
    empty FASTA record is an error naming its header line. :func:`read_chunks` gives the
    reader's chunks themselves (each row's line and the FASTA record ids).
    """
    for chunk in read_chunks(path, chunk_rows, seq_col=seq_col):
        yield chunk.sequences


def read_chunks(path: str | Path, chunk_rows: int = 100_000,
                seq_col: str | None = None) -> Iterator[sequence_io.SequenceChunk]:
    """The chunks of :func:`proformer.io.sequences.read_sequences` under predict's input rules
    (those of prepare: no mask token, no empty sequence)."""
    for chunk in sequence_io.read_sequences(path, chunk_rows, seq_col=seq_col, allow_mask=False):
        for row, sequence in enumerate(chunk.sequences):
            if not sequence:
                record = f" {chunk.ids[row]!r}" if chunk.ids is not None else ""
                raise sequence_io.InputError(
                    f"{path}:{int(chunk.lines[row])}: the FASTA record{record} has no sequence lines. Give "
                    "each record its sequence or remove the record"
                )
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
        ``tsv``: a header line, then ``sequence<TAB>prediction`` (one column per target, named
        by the run's target names) for every input row; FASTA input adds the record id as a
        first column ``id``.
        ``dream-json``: ``{"index": value}`` for the 9,045 public-leaderboard indices in the
        order of ``data_dir/public_leaderboard/sample_submission.json``; the input must be the
        71,103 DREAM test sequences in official order (row i = test index i).
    out : path or "-"
        The output file, written atomically; ``-`` writes to stdout (messages go to stderr).
        A directory or the input file itself is refused.
    destandardize : bool
        Convert predictions back to training units (``y * std + mean``); otherwise they stay in
        the standardised units the model was trained on.
    rc_average : bool or None
        Average the predictions for each sequence and its reverse complement; None takes the
        run's ``data.rc_average``.

    Returns
    -------
    dict
        Rows predicted, the output path, the format and ``too_long`` (rows cut to the window).

    Input rules are prepare's (see the module docstring): ``M``, an empty FASTA record, a header-only
    FASTA, an empty file and a sequence no longer than the run's flanks are errors naming
    ``file:line``. A sequence longer than the window after trimming is cut to its centre and
    counted: one warning on stderr says how many and the longest length.
    """
    if format not in ("tsv", "dream-json"):
        raise ValueError(f"format={format!r}: use tsv or dream-json")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: give a whole number of sequences per forward pass, at least 1")
    to_stdout = str(out) == "-"
    if not to_stdout:
        check_output(out, input, Path(data_dir) / "public_leaderboard" / "sample_submission.json" if data_dir else None)
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
    n = 0
    long_rows, longest = 0, 0
    names = list(info.target.names) or ["prediction"]
    opened = contextlib.nullcontext(sys.stdout) if to_stdout else atomic_write(out)
    with opened as handle:
        header_written = False
        for chunk in read_chunks(input):
            sequences = chunk.sequences
            codes, lengths = encode_padded(sequences)
            check_not_only_flanks(lengths, layout, lambda row: f"{input}:{int(chunk.lines[row])}")
            too_long = ~layout.fits(lengths)
            if too_long.any():
                long_rows += int(too_long.sum())
                longest = max(longest, int(lengths[too_long].max()))
            prediction = predict_codes(model, layout.apply(codes, lengths), batch_size, precision, rc_average)
            if destandardize:
                prediction = prediction * (std if prediction.ndim > 1 else std[0]) + (mean if prediction.ndim > 1 else mean[0])
            if format == "tsv":
                values = prediction.reshape(len(sequences), -1)
                if not header_written:
                    columns = names if len(names) == values.shape[1] else [f"prediction_{i}" for i in range(values.shape[1])]
                    handle.write("\t".join((["id"] if chunk.ids is not None else []) + ["sequence"] + columns) + "\n")
                    header_written = True
                prefixes = [f"{i}\t{seq}" for i, seq in zip(chunk.ids, sequences)] if chunk.ids is not None else sequences
                handle.writelines(
                    prefix + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n" for prefix, row in zip(prefixes, values)
                )
            else:
                values = prediction.reshape(len(sequences), -1)[:, 0]
                for index in range(n, n + len(sequences)):
                    if index in needed:
                        kept[index] = float(values[index - n])
            n += len(sequences)
            if progress:
                print(f"\rpredicted {n:,} sequences", end="", file=sys.stderr, flush=True)
        if n == 0:
            raise sequence_io.InputError(f"{input}: no sequences (the file is empty, blank or only a header)")
        if format == "dream-json":
            missing = [k for k in wanted if int(k) not in kept]
            if missing:
                raise ValueError(
                    f"{input} has {n:,} sequences but the submission needs test indices up to "
                    f"{max(int(k) for k in wanted):,} (e.g. {missing[0]}); pass the 71,103 DREAM test sequences in official order"
                )
            json.dump({k: kept[int(k)] for k in wanted}, handle)
        if to_stdout:
            handle.flush()
    if progress:
        print(file=sys.stderr)
    if long_rows:
        print(f"warning: {long_rows:,} sequence(s) of {input} are longer than the model's window "
              f"({layout.length} nt after trimming {layout.head} + {layout.tail} nt; longest {longest:,} nt): "
              f"each was cut to its centre, as Layout.apply does", file=sys.stderr)
    return {"rows": n, "out": "-" if to_stdout else str(out), "format": format, "too_long": long_rows}


def check_not_only_flanks(lengths: np.ndarray, layout: Layout, where: Callable[[int], str]) -> None:
    """Refuse a row that the run's flanks would empty; ``where(row)`` names it (``file:line``)."""
    short = np.flatnonzero(np.asarray(lengths) <= layout.head + layout.tail)
    if len(short):
        row = int(short[0])
        raise sequence_io.InputError(
            f"{where(row)}: the sequence has {int(lengths[row])} nt, not more than the run's flanks "
            f"({layout.head} + {layout.tail} nt trimmed): nothing would be left to predict. Give the whole "
            f"sequence, flanks included"
        )


def check_output(out: str | Path, *inputs: str | Path) -> None:
    """Refuse an output path that is a directory or one of ``inputs`` (it would be emptied)."""
    if Path(out).is_dir():
        raise IsADirectoryError(21, "is a directory (--out takes a file name)", str(out))
    for source in inputs:
        if source is not None and Path(source).exists() and same_file(out, source):
            raise ValueError(f"--out {out} is the input file {source}: writing it would destroy the input; "
                             f"choose another output path")
