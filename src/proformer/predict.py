"""Batched, streaming prediction from a run directory (``config.json`` + ``weights.pt``).

Inputs (:func:`input_chunks`)
    A sequence file: FASTA, one sequence per line, DREAM TSV (``sequence<TAB>value``), or a
    CSV/TSV table with a header (``seq_col`` names the sequence column, ``id_col`` an id column);
    plain or gzip. Or a prepared dataset directory (``proformer prepare``): its rows, ids = the
    0-based row numbers; its targets are not needed.
Layout
    Input is read in chunks, laid out exactly as in training (the run's trim/pad/RC), predicted in
    batches and written out chunk by chunk, so memory does not grow with the input. Every
    prediction is made by :func:`predict_batch`, the function validation uses during training.
Units
    Training units by default (``prediction * std + mean`` with the run's target statistics,
    computed in float64); ``standardized=True`` gives the model's own output, the z-scores of
    the training targets (for a run trained with ``data.standardize``, the default).

Input rules are prepare's: ``A C G T N`` in either case (the mask token ``M`` is refused), no
empty FASTA record, no sequence that the run's flanks would empty; each error names
``file:line`` (a dataset's row). A sequence longer than the model's window after trimming is cut
to its centre, as :meth:`proformer.sequence.Layout.apply` does, and counted: one warning on
stderr gives how many and the longest length. The output is written beside its target and
renamed into place (:mod:`proformer.io.atomic`), so a failed or killed predict leaves an
existing ``out`` untouched and never a complete-looking partial file; ``out`` may not be the
input file.

Ensembles
    Several run directories (``proformer predict --model A --model B``, ``load([A, B])``) make
    an :class:`Ensemble`: every run predicts each chunk in its own way (its layout, its
    ``rc_average``) and the output is the mean of their predictions, target by target, in
    training units. The runs must predict the same targets in the same order. ``standardized``
    needs runs with the same target statistics: fold models (trained on different rows) each
    standardise by their own mean and std, so their z-scores are not in one unit
    (:func:`check_ensemble`).

Python: :func:`load` (also ``proformer.load``) gives a :class:`TrainedModel` (one run) or an
:class:`Ensemble` (a list of runs) that predicts a list of sequence strings.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .device import check_bf16, resolve_device
from .io import sequences as sequence_io
from .io.atomic import atomic_write, same_file
from .io.dataset import CODES, META, read_dataset
from .io.run import RunInfo, read_run_info, read_weights
from .model import Proformer, swap_strands
from .progress import Progress
from .sequence import Layout, decode, encode_padded

__all__ = ["Ensemble", "InputChunk", "TrainedModel", "check_ensemble", "check_input_options", "check_output",
           "input_chunks", "load", "load_model", "load_runs", "predict", "predict_batch", "predict_codes", "read_chunks",
           "read_sequences", "run_target_names", "table_header", "target_names"]

TRAINING_UNITS = "training units"
STANDARDIZED_UNITS = "standardised units (z-scores of the training targets)"


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Proformer, RunInfo]:
    """The best model of a run directory, in eval mode, and its :class:`~proformer.io.run.RunInfo`
    (``config.json``: model shape, layout, target statistics, best epoch)."""
    info = read_run_info(model_dir)
    model = Proformer(info.model)
    model.load_state_dict(read_weights(model_dir))
    return model.to(device).eval(), info


# -- reading ---------------------------------------------------------------------------------


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


def read_chunks(path: str | Path, chunk_rows: int = 100_000, seq_col: str | None = None,
                values: bool = False) -> Iterator[sequence_io.SequenceChunk]:
    """The chunks of :func:`proformer.io.sequences.read_sequences` under predict's input rules
    (those of prepare: no mask token, no empty sequence); ``values``: also the value column of a
    DREAM TSV."""
    for chunk in sequence_io.read_sequences(path, chunk_rows, seq_col=seq_col, values=values, allow_mask=False):
        for row, sequence in enumerate(chunk.sequences):
            if not sequence:
                record = f" {chunk.ids[row]!r}" if chunk.ids is not None else ""
                raise sequence_io.InputError(
                    f"{path}:{int(chunk.lines[row])}: the FASTA record{record} has no sequence lines. Give "
                    "each record its sequence or remove the record"
                )
        yield chunk


@dataclass
class InputChunk:
    """Consecutive rows of a prediction input (a sequence file or a dataset directory), in order.

    Attributes
    ----------
    codes : np.ndarray
        uint8 ``(n, width)``: the sequences as stored (flanks included), N past each row's end.
    lengths : np.ndarray
        int64 ``(n,)``.
    sequences : list of str or None
        The sequences as written in the file; None for a dataset directory (:meth:`text` decodes).
    ids : list of str or None
        FASTA record ids, the values of the table's id column, or a dataset's 0-based row
        numbers; None for inputs without ids (one per line, DREAM TSV, a table without ``id_col``).
    where : callable
        ``where(i)`` names row ``i`` in messages: ``file:line``, or ``DIR row R``.
    targets : np.ndarray or None
        float64 ``(n, n_columns)`` measured values, NaN where a table's field is empty or NA;
        only when asked for (:func:`input_chunks` ``target_cols`` / ``values``).
    """

    codes: np.ndarray
    lengths: np.ndarray
    sequences: list[str] | None
    ids: list[str] | None
    where: Callable[[int], str]
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def text(self) -> list[str]:
        """The sequences as strings (a dataset's are decoded from its codes, upper case)."""
        return self.sequences if self.sequences is not None else decode(self.codes, self.lengths)


def is_dataset_dir(path: str | os.PathLike) -> bool:
    """Is ``path`` a directory (then it must be a prepared dataset: :func:`input_chunks` checks it)?"""
    return Path(path).is_dir()


def table_header(path: str | os.PathLike) -> tuple[list[str], str]:
    """``(column names, delimiter)`` of a table's header line (line 1), split as the sequence
    reader splits it (:func:`proformer.io.sequences.table_delimiter`: by suffix, else sniffed)."""
    display = os.fspath(path)
    sequence_io.check_input(Path(path), display)
    source = sequence_io.Source(Path(path), display, hash_it=False)
    try:
        lines = source.read_lines(1)
    finally:
        source.close()
    if not lines or sequence_io.is_blank(lines[0]):
        raise sequence_io.InputError(f"{display}:1: no header line (the file is empty or starts with a blank line); "
                                     "a table needs a header naming its columns")
    text = lines[0].decode("utf-8", errors="replace").rstrip("\r\n")
    delimiter = sequence_io.table_delimiter(Path(path), text)
    return [name.strip() for name in next(csv.reader([text], delimiter=delimiter))], delimiter


def _first_line_fields(path: Path) -> list[str]:
    """The fields of the first line of a headerless file (split at tabs, commas or semicolons)."""
    source = sequence_io.Source(path, os.fspath(path), hash_it=False)
    try:
        lines = source.read_lines(1)
    finally:
        source.close()
    if not lines:
        return []
    text = lines[0].decode("utf-8", errors="replace").strip()
    delimiter = sequence_io.table_delimiter(path, text)
    return [field.strip().strip('"').strip() for field in text.split(delimiter)]


def check_columns(path: str | os.PathLike, wanted: Sequence[tuple[str, str]]) -> list[str]:
    """Check that the table ``path`` has each column of ``wanted`` (``(flag, column)`` pairs);
    return its header. The error names the flag, the value and the columns there are."""
    names, delimiter = table_header(path)
    for flag, column in wanted:
        if column not in names:
            kind = "tab" if delimiter == "\t" else repr(delimiter)
            raise sequence_io.InputError(
                f"{flag} {column!r}: {os.fspath(path)} has no such column; its {kind}-separated header has "
                f"{', '.join(map(repr, names))}. Give {flag} one of those"
            )
        if names.count(column) > 1:
            raise sequence_io.InputError(f"{flag} {column!r}: the header of {os.fspath(path)} names that column "
                                         f"{names.count(column)} times; rename one of them")
    return names


def input_format(path: str | os.PathLike, seq_col: str | None = None) -> str:
    """``"dataset"`` (a directory), ``"fasta"``, ``"table"`` (with ``seq_col``) or ``"dream"``
    (one sequence per line or ``sequence<TAB>value``)."""
    if is_dataset_dir(path):
        return "dataset"
    sequence_io.check_input(Path(path), os.fspath(path))
    return sequence_io.detect_format(Path(path), seq_col)


def check_input_options(input: str | os.PathLike, seq_col: str | None = None, id_col: str | None = None,
                        target_cols: Sequence[str] = (), input_flag: str = "--input") -> str:
    """Check the column options against the input before any model is loaded; return its format
    (:func:`input_format`). Errors name the flag, the value and what to do."""
    kind = input_format(input, seq_col)
    columns = [("--seq-col", seq_col), ("--id-col", id_col)] + [("--target-col", name) for name in target_cols]
    given = [(flag, value) for flag, value in columns if value is not None]
    if kind == "dataset":
        if given:
            raise ValueError(f"{given[0][0]} applies to tables; {input_flag} {input} is a prepared dataset directory, "
                             f"whose rows need no column names: drop {given[0][0]}")
        return kind
    if kind == "fasta" and given:
        raise ValueError(f"{given[0][0]} applies to tables with a header; {input_flag} {input} is FASTA (ids are the "
                         f"record names): drop {given[0][0]}")
    if kind == "table":
        check_columns(input, given)
        return kind
    if given:  # --id-col or --target-col without --seq-col
        raise ValueError(f"{given[0][0]} needs --seq-col: name the sequence column of the table {input} too "
                         "(a table is read by its header)")
    # A header such as "id<TAB>sequence<TAB>value" would be read as data and fail at line 1:
    # say which flag reads it instead.
    fields = _first_line_fields(Path(input))
    named = [f for f in fields[1:] if f.casefold() in sequence_io.HEADER_NAMES]
    if fields and fields[0].casefold() not in sequence_io.HEADER_NAMES and named:
        raise sequence_io.InputError(
            f"{input}:1 is a table header ({', '.join(fields)}): give --seq-col {named[0]} to read the table "
            f"(and --id-col NAME to keep an id column)"
        )
    return kind


class _TableColumns:
    """Named columns of a table (the id, measured values), read in step with :func:`read_chunks`.

    The sequence reader returns a table's sequence column only; this second pass over the same
    file picks other fields from the lines the reader reported, chunk by chunk, so memory does
    not grow with the file. The reader has already checked every row's field count.
    """

    def __init__(self, path: Path, columns: Sequence[str]):
        names, self.delimiter = table_header(path)
        self.index = [names.index(column) for column in columns]
        self.source = sequence_io.Source(path, os.fspath(path), hash_it=False)
        self.source.read_lines(1)
        self.line = 1  # the last line read

    def take(self, lines: np.ndarray) -> list[list[str]]:
        """The wanted fields of ``lines`` (1-based, ascending, after the lines taken before)."""
        if not len(lines):
            return []
        first = self.line + 1
        block = self.source.read_lines(int(lines[-1]) - self.line)
        self.line = int(lines[-1])
        texts = [block[int(n) - first].decode("utf-8", errors="replace").rstrip("\r\n") for n in lines]
        return [[fields[i].strip() for i in self.index] for fields in csv.reader(texts, delimiter=self.delimiter)]

    def close(self) -> None:
        self.source.close()


#: Fields of a measured-value column that mean "not measured": the row is left out for that target.
MISSING = ("", "na", "n/a", "nan", "null", "none", ".")


def _parse_targets(fields: list[list[str]], names: Sequence[str], where: Callable[[int], str]) -> np.ndarray:
    """float64 ``(n, len(names))`` from table fields; NaN for :data:`MISSING`, other non-numbers
    and infinities are errors naming ``file:line``."""
    values = np.full((len(fields), len(names)), np.nan)
    for i, row in enumerate(fields):
        for j, text in enumerate(row):
            if text.casefold() in MISSING:
                continue
            problem = sequence_io.target_problem(text, names[j])
            if problem:
                raise sequence_io.InputError(f"{where(i)}: {problem}. Give a number, or leave the field empty "
                                             "(or NA) where nothing was measured")
            values[i, j] = float(text)
    return values


def input_chunks(input: str | os.PathLike, chunk_rows: int = 100_000, *, seq_col: str | None = None,
                 id_col: str | None = None, target_cols: Sequence[str] = (), values: bool = False,
                 input_flag: str = "--input") -> Iterator[InputChunk]:
    """The rows of a prediction input in chunks of ``chunk_rows`` (the last one shorter).

    Parameters
    ----------
    input : path
        A sequence file (FASTA, one per line, DREAM TSV, a table with ``seq_col``; plain or gzip)
        or a prepared dataset directory.
    seq_col, id_col : str, optional
        A table's sequence and id columns (its header names them).
    target_cols : list of str
        A table's measured-value columns, returned as :attr:`InputChunk.targets` in this order.
    values : bool
        Also the measured values of a DREAM TSV (its second column) or a dataset (every column of
        ``targets.npy``).
    input_flag : str
        How errors name the input (``--input``, ``--data``).

    The options are checked against the input when this is called (before any model is loaded);
    the rows are read as the result is iterated.
    """
    kind = check_input_options(input, seq_col, id_col, target_cols, input_flag)
    if kind == "dataset":
        return _dataset_chunks(Path(input), chunk_rows, values, input_flag)
    if values and kind != "dream":
        raise ValueError(f"values=True reads a DREAM TSV's value column or a dataset's targets; {input} is {kind}")
    return _file_chunks(os.fspath(input), chunk_rows, seq_col, id_col, list(target_cols), values)


def _file_chunks(display: str, chunk_rows: int, seq_col: str | None, id_col: str | None, target_cols: list[str],
                 values: bool) -> Iterator[InputChunk]:
    path = Path(display)
    extra = ([id_col] if id_col is not None else []) + target_cols
    side = _TableColumns(path, extra) if extra else None
    try:
        for chunk in read_chunks(display, chunk_rows, seq_col=seq_col, values=values):
            codes, lengths = encode_padded(chunk.sequences)
            where = (lambda row, lines=chunk.lines: f"{display}:{int(lines[row])}")
            ids, targets = chunk.ids, None
            if side is not None:
                fields = side.take(chunk.lines)
                if id_col is not None:
                    ids = [row[0] for row in fields]
                    fields = [row[1:] for row in fields]
                if target_cols:
                    targets = _parse_targets(fields, target_cols, where)
            elif values:
                targets = chunk.values.reshape(-1, 1)
            yield InputChunk(codes, lengths.astype(np.int64), chunk.sequences, ids, where, targets)
    finally:
        if side is not None:
            side.close()


def _dataset_chunks(directory: Path, chunk_rows: int, values: bool, input_flag: str) -> Iterator[InputChunk]:
    """Open the dataset now (a directory that is not one is an error before any model loads) and
    return the generator of its rows."""
    if not (directory / META).exists() and not (directory / CODES).exists():
        raise sequence_io.InputError(
            f"{input_flag} {directory} is a directory but not a prepared dataset (no {META}, no {CODES}); give a "
            f"sequence file (FASTA, one per line, DREAM TSV, a table with --seq-col) or a directory written by "
            f"proformer prepare"
        )
    data = read_dataset(directory)
    if len(data.lengths) == 0:
        raise sequence_io.InputError(f"{directory}: the dataset has no rows")

    def rows() -> Iterator[InputChunk]:
        n = len(data.lengths)
        for start in range(0, n, chunk_rows):
            stop = min(n, start + chunk_rows)
            lengths = np.asarray(data.lengths[start:stop], dtype=np.int64)
            codes = np.asarray(data.codes[start:stop])
            where = (lambda row, start=start: f"{directory} row {start + row:,} (0-based)")
            targets = np.asarray(data.targets[start:stop], dtype=np.float64) if values else None
            yield InputChunk(codes, lengths, None, [str(i) for i in range(start, stop)], where, targets)

    return rows()


# -- prediction ------------------------------------------------------------------------------


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
        batch = torch.from_numpy(np.ascontiguousarray(codes[start : start + batch_size]))
        if device.type == "cuda":
            batch = batch.pin_memory()
        batch = batch.to(device, non_blocking=True)
        with autocast:
            out.append(predict_batch(model, batch, rc_average=rc_average).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.float32)


def predict_batch(model: Proformer, codes: torch.Tensor, singleton: torch.Tensor | None = None,
                  rc_average: bool = False) -> torch.Tensor:
    """One batch of model-ready codes ``(batch, 2L)`` -> float32 ``(batch,)`` or ``(batch, n_targets)``.

    The one place a prediction is made: validation during training, :func:`predict_codes`
    (:func:`predict`, :class:`TrainedModel`, ``proformer evaluate``) and the interpretation
    Predictor all call it, so a run is validated exactly as it will predict. ``rc_average``: the
    mean of the predictions for each sequence and its reverse complement (strands swapped).
    """
    y = model(codes, singleton).float()
    if rc_average:
        y = (y + model(swap_strands(codes), singleton).float()) / 2
    return y


def target_names(info: RunInfo) -> list[str]:
    """One name per target of a run: its dataset's target names, else ``prediction`` (one
    target) or ``prediction_0``, ``prediction_1``, ..."""
    n_targets = int(info.model.n_targets)
    names = list(info.target.names)
    if len(names) == n_targets:
        return names
    return ["prediction"] if n_targets == 1 else [f"prediction_{i}" for i in range(n_targets)]


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: give a whole number of sequences per forward pass, at least 1")


class _Predicting:
    """What a run and an ensemble of runs share: predictions for sequence strings and for the
    chunks of :func:`input_chunks`, both over one :meth:`predict_stored`, and the note on rows
    cut to the window. A subclass gives ``n_targets``, ``predict_stored``, ``_window_text`` and
    ``_cut_text``."""

    too_long: int = 0  # rows cut to the window by the last predict_chunks
    longest: int = 0  # and the longest of them, in nt

    def predict_stored(self, codes: np.ndarray, lengths: np.ndarray,
                       where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
        """Stored codes ``(n, width)`` and lengths ``(n,)`` -> float64 ``(n, n_targets)``
        predictions and the bool ``(n,)`` mask of rows cut to the window."""
        raise NotImplementedError

    def predict(self, sequences: Sequence[str] | str) -> np.ndarray:
        """Predictions for sequence strings, laid out as in training (the run's flanks trimmed).

        Parameters
        ----------
        sequences : list of str, or one str
            DNA over ``A C G T N``, either case, each given whole (flanks included, as the
            training file held it). A sequence longer than the window after trimming is cut to
            its centre (one RuntimeWarning says how many).

        Returns
        -------
        np.ndarray
            float64 ``(n,)`` for one target, ``(n, n_targets)`` otherwise (columns in the
            order of :attr:`target_names`), in :attr:`units`.
        """
        if isinstance(sequences, str):
            sequences = [sequences]
        sequences = list(sequences)
        out = [np.zeros((0, self.n_targets))]
        too_long = 0
        for start in range(0, len(sequences), 1 << 16):  # bounded memory for long lists
            part = sequences[start : start + (1 << 16)]
            name = (lambda i, start=start: f"sequence {start + i}")
            check_symbols(part, name)
            codes, lengths = encode_padded(part)
            values, cut = self.predict_stored(codes, lengths, name)
            too_long += int(cut.sum())
            out.append(values)
        if too_long:
            warnings.warn(f"{too_long:,} sequence(s) are longer than {self._window_text()}): {self._cut_text()}, as "
                          f"predict does", RuntimeWarning, stacklevel=2)
        values = np.concatenate(out)
        return values[:, 0] if self.n_targets == 1 else values

    def predict_chunks(self, chunks: Iterator[InputChunk], progress: bool = False) -> Iterator[tuple[InputChunk, np.ndarray]]:
        """``(chunk, float64 (n, n_targets) predictions)`` for each chunk of :func:`input_chunks`.

        Rows cut to the window are counted in :attr:`too_long` (rows) and :attr:`longest`.
        """
        self.too_long, self.longest, done = 0, 0, 0
        with Progress("predicted", unit="sequences", enabled=progress) as line:
            for chunk in chunks:
                values, cut = self.predict_stored(chunk.codes, chunk.lengths, chunk.where)
                if cut.any():
                    self.too_long += int(cut.sum())
                    self.longest = max(self.longest, int(chunk.lengths[cut].max()))
                yield chunk, values
                done += len(chunk)
                line.update(done)

    def too_long_warning(self, input: str | os.PathLike) -> str | None:
        """The one-line warning about rows of ``input`` cut to the window by :meth:`predict_chunks`."""
        if not self.too_long:
            return None
        return (f"warning: {self.too_long:,} sequence(s) of {input} are longer than {self._window_text()}; longest "
                f"{self.longest:,} nt): {self._cut_text()}, as Layout.apply does")


class TrainedModel(_Predicting):
    """A trained run loaded once: sequences in, predictions of every target out, batched.

    Parameters
    ----------
    model, info
        From :func:`load_model`.
    standardized : bool
        False (default): predictions in training units, ``y * std + mean`` with the run's target
        statistics. True: the model's own output, z-scores of the training targets.
    batch_size : int
        Sequences per forward pass.
    precision : "32" or "bf16"
        bf16 autocast for the forward pass.
    rc_average : bool, optional
        Average each sequence's prediction with its reverse complement's; None: the run's setting.

    Examples
    --------
    >>> model = proformer.load("runs/grid")           # doctest: +SKIP
    >>> model.predict(["TGCATTTTTTTCACATC...", ...])  # doctest: +SKIP
    array([11.2, 9.8, ...])
    """

    def __init__(self, model: torch.nn.Module, info: RunInfo, *, standardized: bool = False, batch_size: int = 256,
                 precision: str = "32", rc_average: bool | None = None):
        _check_batch_size(batch_size)
        if precision not in ("32", "bf16"):
            raise ValueError(f"precision={precision!r}: use 32 or bf16")
        self.model, self.info = model, info
        self.device = next(model.parameters()).device
        check_bf16(self.device, precision)
        self.layout: Layout = info.layout
        self.standardized = bool(standardized)
        self.batch_size, self.precision = int(batch_size), precision
        self.rc_average = info.rc_average if rc_average is None else bool(rc_average)
        self.too_long, self.longest = 0, 0  # rows cut to the window by predict_chunks, the longest

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, device: str | torch.device = "auto", **options) -> TrainedModel:
        """Load the best model of ``run_dir`` on ``device`` (``auto``: CUDA, then MPS, else CPU)."""
        model, info = load_model(run_dir, resolve_device(device) if isinstance(device, str) else device)
        return cls(model, info, **options)

    @property
    def n_targets(self) -> int:
        return int(self.info.model.n_targets)

    @property
    def target_names(self) -> list[str]:
        """One name per target (:func:`target_names`), in the order of the prediction columns."""
        return target_names(self.info)

    @property
    def units(self) -> str:
        return STANDARDIZED_UNITS if self.standardized else TRAINING_UNITS

    def to_units(self, output: np.ndarray) -> np.ndarray:
        """The model's output ``(n,)`` or ``(n, n_targets)`` -> float64, same shape, in this model's units.

        float64, so that distinct outputs stay distinct and in order (a rank correlation, the
        DREAM score's Spearman, is exactly that of the model's output).
        """
        values = np.asarray(output, dtype=np.float64)
        if self.standardized:
            return values
        mean = np.asarray(self.info.target.mean, dtype=np.float64)
        std = np.asarray(self.info.target.std, dtype=np.float64)
        return values * std[0] + mean[0] if values.ndim == 1 else values * std + mean

    def model_codes(self, codes: np.ndarray, lengths: np.ndarray,
                    where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
        """Stored codes ``(n, width)`` and lengths ``(n,)`` -> model codes ``(n, 2 * length)`` and
        the bool ``(n,)`` mask of rows cut to the window. A row the flanks would empty is an error
        naming ``where(row)``."""
        check_not_only_flanks(lengths, self.layout, where)
        return self.layout.apply(codes, lengths), ~self.layout.fits(lengths)

    def predict_model_codes(self, codes: np.ndarray) -> np.ndarray:
        """Model codes ``(n, 2 * length)`` -> float64 ``(n, n_targets)`` in this model's units."""
        output = predict_codes(self.model, codes, self.batch_size, self.precision, self.rc_average)
        return self.to_units(output.reshape(len(codes), -1))

    def predict_stored(self, codes: np.ndarray, lengths: np.ndarray,
                       where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
        model_codes, cut = self.model_codes(codes, lengths, where)
        return self.predict_model_codes(model_codes), cut

    def _window_text(self) -> str:
        return f"the model's window ({_window(self.layout)}"

    def _cut_text(self) -> str:
        return "each was cut to its centre"

def _window(layout: Layout) -> str:
    return f"{layout.length} nt after trimming {layout.head} + {layout.tail} nt"


def check_ensemble(runs: Sequence[str], infos: Sequence[RunInfo], standardized: bool = False) -> None:
    """Refuse runs that cannot be averaged into one prediction, before any weights load.

    Parameters
    ----------
    runs : list of str
        The run directories, as given (they name the runs in errors).
    infos : list of RunInfo
        Their ``config.json``, in the same order.
    standardized : bool
        z-scores were asked for: every run must then share the target statistics.

    Every run must predict the same targets (the same names in the same order), since the
    ensemble averages column j of every member's prediction. z-scores are averaged only when
    the runs share the target mean and std: a z-score is ``(y - mean) / std`` with the run's own
    statistics, so z-scores of runs trained on different rows (the folds of ``proformer sweep
    --folds K``) are in different units, and their mean is no z-score of anything. In training
    units the mean is always well defined. A run given twice is refused (it would count twice).
    """
    if not runs:
        raise ValueError("no run directories: an ensemble needs at least one run (give --model RUN_DIR)")
    seen: dict[Path, str] = {}
    for run in runs:
        key = Path(run).resolve()
        if key in seen:
            raise ValueError(f"run {run} is given twice (as {seen[key]} and {run}); each run counts once in the "
                             f"mean: give every run directory once")
        seen[key] = run
    first, first_names = runs[0], target_names(infos[0])
    for run, info in zip(runs[1:], infos[1:]):
        names = target_names(info)
        if names != first_names:
            raise ValueError(
                f"run {first} predicts {len(first_names)} target(s) ({', '.join(first_names)}) but run {run} "
                f"predicts {len(names)} ({', '.join(names)}): an ensemble averages each target over its runs, so "
                f"every run must predict the same targets in the same order; give runs trained on the same targets"
            )
    if standardized:
        statistics = [(list(info.target.mean), list(info.target.std)) for info in infos]
        for run, (mean, std) in zip(runs[1:], statistics[1:]):
            if (mean, std) != statistics[0]:
                raise ValueError(
                    f"standardized (z-score) predictions of an ensemble need runs with the same target statistics; "
                    f"run {first} has mean {statistics[0][0]} and std {statistics[0][1]}, run {run} has mean {mean} "
                    f"and std {std} (runs trained on different rows, such as the folds of a sweep, standardise "
                    f"differently, and their z-scores are not comparable): drop --standardized (training units)"
                )


class Ensemble(_Predicting):
    """Several trained runs as one model: the mean of their predictions, target by target.

    Each member predicts as it would alone (:class:`TrainedModel`: its own layout, its own
    ``rc_average`` unless overridden, the precision asked for) in the units asked for; the
    ensemble's prediction is the mean over members, in float64. It has
    :class:`TrainedModel`'s prediction surface (:attr:`target_names`, :attr:`n_targets`,
    :attr:`units`, :meth:`predict`, :meth:`predict_chunks`, :meth:`too_long_warning`,
    :attr:`too_long`), so ``proformer predict`` and ``proformer evaluate`` use either one.

    Parameters
    ----------
    members : list of TrainedModel
        At least one, checked with :func:`check_ensemble` (same targets; same statistics for
        z-scores), all in the same units.
    runs : list of str, optional
        The members' run directories, for messages; default ``run 0``, ``run 1``, ...

    Examples
    --------
    >>> ensemble = proformer.load(["runs/cv/fold-0", "runs/cv/fold-1"])  # doctest: +SKIP
    >>> ensemble.predict(["TGCATTTTTTTCACATC...", ...])                  # doctest: +SKIP
    array([11.0, 9.9, ...])
    """

    def __init__(self, members: Sequence[TrainedModel], runs: Sequence[str] | None = None):
        members = list(members)
        runs = [f"run {i}" for i in range(len(members))] if runs is None else [os.fspath(r) for r in runs]
        if len(runs) != len(members):
            raise ValueError(f"{len(members)} members but {len(runs)} run names: give one name per member")
        if len({member.standardized for member in members}) > 1:
            raise ValueError("the members predict in different units (some standardized, some not): load every "
                             "member with the same standardized=")
        self.standardized = bool(members) and members[0].standardized
        check_ensemble(runs, [member.info for member in members], self.standardized)
        self.members, self.runs = members, runs
        self.too_long, self.longest = 0, 0  # rows cut to the window of any member by predict_chunks, the longest

    @classmethod
    def from_runs(cls, run_dirs: Sequence[str | os.PathLike], device: str | torch.device = "auto", *,
                  standardized: bool = False, **options) -> Ensemble:
        """Load every run of ``run_dirs`` on ``device``; the runs are checked (:func:`check_ensemble`,
        ``config.json`` only) before any weights load. ``options``: as :class:`TrainedModel`."""
        runs = [os.fspath(run) for run in run_dirs]
        check_ensemble(runs, [read_run_info(run) for run in runs], standardized)
        device = resolve_device(device) if isinstance(device, str) else device
        return cls([TrainedModel.from_run(run, device, standardized=standardized, **options) for run in runs], runs)

    @property
    def n_targets(self) -> int:
        return self.members[0].n_targets

    @property
    def target_names(self) -> list[str]:
        """One name per target, the same for every member (:func:`check_ensemble`)."""
        return self.members[0].target_names

    @property
    def units(self) -> str:
        return self.members[0].units

    def predict_stored(self, codes: np.ndarray, lengths: np.ndarray,
                        where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
        """Stored codes ``(n, width)`` and lengths ``(n,)`` -> the mean of the members' float64
        ``(n, n_targets)`` predictions, and the bool ``(n,)`` mask of rows cut to the window of
        at least one member (each member lays the rows out with its own layout)."""
        total = np.zeros((len(lengths), self.n_targets))
        cut = np.zeros(len(lengths), dtype=bool)
        for member in self.members:
            values, member_cut = member.predict_stored(codes, lengths, where)
            total += values
            cut |= member_cut
        return total / len(self.members), cut

    def _cut_text(self) -> str:
        return "each member cut them to the centre of its window"

    def _window_text(self) -> str:
        """The members' windows: one, or each run's when their layouts differ."""
        layouts = [member.layout for member in self.members]
        if all(layout == layouts[0] for layout in layouts):
            return f"the runs' window ({_window(layouts[0])}"
        each = "; ".join(f"{run}: {_window(layout)}" for run, layout in zip(self.runs, layouts))
        return f"the window of at least one run ({each}"

def load_runs(model_dir: str | os.PathLike | Sequence[str | os.PathLike], device: str = "auto",
              **options) -> TrainedModel | Ensemble:
    """One run directory -> :class:`TrainedModel`; a list or tuple of them -> :class:`Ensemble`
    (even of one run). ``options``: ``standardized``, ``batch_size``, ``precision``, ``rc_average``."""
    if isinstance(model_dir, (str, os.PathLike)):
        return TrainedModel.from_run(model_dir, device, **options)
    return Ensemble.from_runs(list(model_dir), device, **options)


def run_target_names(model_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The target names of a run, or of an ensemble's runs after :func:`check_ensemble`;
    ``config.json`` only (no weights load)."""
    if isinstance(model_dir, (str, os.PathLike)):
        return target_names(read_run_info(model_dir))
    runs = [os.fspath(run) for run in model_dir]
    infos = [read_run_info(run) for run in runs]
    check_ensemble(runs, infos)
    return target_names(infos[0])


def load(run_dir: str | os.PathLike | Sequence[str | os.PathLike], device: str = "auto", *,
         standardized: bool = False, batch_size: int = 256, precision: str = "32",
         rc_average: bool | None = None) -> TrainedModel | Ensemble:
    """A trained run as a function of sequence strings: ``load(run).predict(["ACGT...", ...])``.

    Parameters
    ----------
    run_dir : path, or list of paths
        A run directory (``config.json`` + ``weights.pt``); a list or tuple of them loads an
        :class:`Ensemble` that predicts the mean of the runs' predictions (e.g. the fold models
        of ``proformer sweep --folds K``).
    device : str
        ``auto`` (CUDA if present, then MPS, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
    standardized : bool
        False: predictions in training units; True: z-scores of the training targets.
    batch_size, precision, rc_average
        As :class:`TrainedModel`.

    Returns
    -------
    TrainedModel or Ensemble
        ``.predict(sequences)`` -> float64 ``(n,)`` (one target) or ``(n, n_targets)``.
    """
    return load_runs(run_dir, device, standardized=standardized, batch_size=batch_size, precision=precision,
                     rc_average=rc_average)


def standardized_option(standardized: bool, destandardize: bool | None, stacklevel: int = 3) -> bool:
    """The units asked for, with the deprecated ``destandardize`` (the old name, whose default
    was z-scores) still honoured for one release, with a DeprecationWarning."""
    if destandardize is None:
        return bool(standardized)
    warnings.warn("destandardize= is deprecated and will be removed in the next release: predictions are in "
                  "training units by default now; pass standardized=True for z-scores", DeprecationWarning,
                  stacklevel=stacklevel)
    if standardized and destandardize:
        raise ValueError("standardized=True and destandardize=True contradict each other: give standardized only")
    return not destandardize


def predict(
    model_dir: str | Path | Sequence[str | Path],
    input: str | Path,
    out: str | Path,
    format: str = "tsv",
    data_dir: str | Path | None = None,
    destandardize: bool | None = None,
    batch_size: int = 256,
    device: str = "auto",
    precision: str = "32",
    progress: bool = True,
    rc_average: bool | None = None,
    *,
    standardized: bool = False,
    seq_col: str | None = None,
    id_col: str | None = None,
) -> dict:
    """Predict every sequence of ``input`` with the best model of ``model_dir``.

    Parameters
    ----------
    model_dir : path, or list of paths
        A run directory; a list or tuple of them predicts the mean of the runs' predictions
        (:class:`Ensemble`: each run with its own layout and ``rc_average``; the runs must
        predict the same targets, and ``standardized`` needs the same target statistics).
    input : path
        FASTA, one sequence per line, DREAM TSV, a CSV/TSV table with a header (``seq_col``),
        plain or gzip; or a prepared dataset directory (its rows; ids are the 0-based row numbers).
    format : "tsv" or "dream-json"
        ``tsv``: a header line, then ``[id<TAB>]sequence<TAB>prediction`` (one column per target,
        named by the run's target names) for every input row; ``id`` is the FASTA record id, the
        table's ``id_col`` or a dataset's row number, absent for other inputs.
        ``dream-json``: ``{"index": value}`` for the 9,045 public-leaderboard indices in the
        order of ``data_dir/public_leaderboard/sample_submission.json``; the input must be the
        71,103 DREAM test sequences in official order (row i = test index i). Its values follow
        ``standardized`` like the TSV's; the DREAM score (Pearson r^2, Spearman) is the same in
        either unit, as ``y * std + mean`` (std > 0, float64) keeps every correlation and rank.
    out : path or "-"
        The output file, written atomically; ``-`` writes to stdout (messages go to stderr).
        A directory or the input file itself is refused.
    standardized : bool
        False (default): predictions in training units (``y * std + mean``). True: the model's
        own output, z-scores of the training targets (the default of earlier versions).
    destandardize : bool, optional
        Deprecated (DeprecationWarning): ``destandardize=True`` is the default now,
        ``destandardize=False`` means ``standardized=True``.
    seq_col, id_col : str, optional
        A table's sequence column, and a column written as the output's first column ``id``.
    rc_average : bool or None
        Average the predictions for each sequence and its reverse complement; None takes the
        run's ``data.rc_average``.

    Returns
    -------
    dict
        Rows predicted, the output path, the format, the units, ``too_long`` (rows cut to the
        window; of any run's window for an ensemble) and ``runs`` (how many runs were averaged).

    Input rules are prepare's (see the module docstring): ``M``, an empty FASTA record, a header-only
    FASTA, an empty file and a sequence no longer than the run's flanks are errors naming
    ``file:line``. A sequence longer than the window after trimming is cut to its centre and
    counted: one warning on stderr says how many and the longest length.
    """
    standardized = standardized_option(standardized, destandardize)
    if format not in ("tsv", "dream-json"):
        raise ValueError(f"format={format!r}: use tsv or dream-json")
    _check_batch_size(batch_size)
    to_stdout = str(out) == "-"
    if not to_stdout:
        check_output(out, input, Path(data_dir) / "public_leaderboard" / "sample_submission.json" if data_dir else None)
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
    chunks = input_chunks(input, seq_col=seq_col, id_col=id_col)  # checks the options before the model loads
    runner = load_runs(model_dir, device, standardized=standardized, batch_size=batch_size, precision=precision,
                       rc_average=rc_average)
    n = 0
    opened = contextlib.nullcontext(sys.stdout) if to_stdout else atomic_write(out)
    with opened as handle:
        header_written = False
        for chunk, values in runner.predict_chunks(chunks, progress):
            if format == "tsv":
                if not header_written:
                    id_column = ["id"] if chunk.ids is not None else []
                    handle.write("\t".join(id_column + ["sequence"] + runner.target_names) + "\n")
                    header_written = True
                sequences = chunk.text()
                prefixes = [f"{i}\t{s}" for i, s in zip(chunk.ids, sequences)] if chunk.ids is not None else sequences
                handle.writelines(
                    prefix + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n" for prefix, row in zip(prefixes, values)
                )
            else:
                for index in range(n, n + len(chunk)):
                    if index in needed:
                        kept[index] = float(values[index - n, 0])
            n += len(chunk)
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
    warning = runner.too_long_warning(input)
    if warning:
        print(warning, file=sys.stderr)
    return {"rows": n, "out": "-" if to_stdout else str(out), "format": format, "units": runner.units,
            "too_long": runner.too_long, "runs": len(runner.members) if isinstance(runner, Ensemble) else 1}


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


def check_symbols(sequences: Sequence[str], where: Callable[[int], str]) -> None:
    """Refuse a sequence that is not a str or holds a symbol outside ``A C G T N`` (either case),
    the input rule of prepare; ``where(i)`` names sequence i (``file:line`` or ``sequence i``)."""
    for i, sequence in enumerate(sequences):
        if not isinstance(sequence, str):
            raise TypeError(f"{where(i)} is a {type(sequence).__name__}; give sequences as str")
        raw = sequence.encode("utf-8")
        position = sequence_io.first_invalid(raw)
        if position is not None:
            raise sequence_io.InputError(f"{where(i)}: {sequence_io.invalid_message(raw, position)}")


def check_output(out: str | Path, *inputs: str | Path) -> None:
    """Refuse an output path that is a directory or one of ``inputs`` (it would be emptied)."""
    if Path(out).is_dir():
        raise IsADirectoryError(21, "is a directory (--out takes a file name)", str(out))
    for source in inputs:
        if source is not None and Path(source).exists() and same_file(out, source):
            raise ValueError(f"--out {out} is the input file {source}: writing it would destroy the input; "
                             f"choose another output path")
