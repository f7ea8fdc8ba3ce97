"""A trained run, or several, as one function of sequences: the package's one way to predict.

:func:`load` is the one loader: a run directory gives a :class:`Run`, a list of them an
:class:`Ensemble` (the mean of the runs' predictions, target by target). Both predict sequence
strings (:meth:`Run.predict`) and the chunks of :func:`proformer.io.reader.read_input`
(:meth:`Run.predict_chunks`), and every prediction, in validation during training too, goes
through :func:`predict_batch`, so a run is validated exactly as it predicts.

Units
    One flag, ``standardized``, on every call that returns predictions: False (the default) gives
    training units, the targets as the training file gave them (``y * std + mean`` with the run's
    statistics, in float64); True gives the model's own output, the z-scores it was trained on.
    An ensemble averages in training units always; its z-scores need runs that share the target
    statistics (:func:`check_ensemble`).
Layout
    Sequences are given whole (flanks included, as the training file held them) and laid out with
    each run's own :class:`~proformer.sequence.Layout`. A sequence longer than the window after
    trimming is cut to its centre and counted (:meth:`Run.predict` warns, ``predict_chunks``
    counts in ``too_long``); one that the flanks would empty is an error naming it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .device import check_bf16, resolve_device
from .io.errors import InputError, first_invalid, invalid_message
from .io.run import RunInfo, TableColumns, member_runs, read_run_info, read_weights
from .limits import MAX_BATCH, whole
from .model import Proformer, swap_strands
from .progress import Progress
from .sequence import Layout, encode_padded

__all__ = ["Ensemble", "LaidOut", "Run", "check_ensemble", "load", "predict_batch", "read_target_names",
           "recorded_columns", "target_names", "units_text"]


def units_text(standardized: bool) -> str:
    """The units of predictions, in words, for outputs and messages."""
    return "standardised units (z-scores of the training targets)" if standardized else "training units"


def predict_batch(model: Proformer, codes: torch.Tensor, singleton: torch.Tensor | None = None,
                  rc_average: bool = False) -> torch.Tensor:
    """One batch of model codes ``(batch, 2L)`` -> float32 ``(batch,)`` or ``(batch, n_targets)``.

    The one place a prediction is made: validation during training, :meth:`Run.predict_codes`
    (predict, evaluate) and the interpretation scorers all call it. ``rc_average``: the mean of
    the predictions for each sequence and its reverse complement (strands swapped).
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


def read_target_names(run_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The target names of a run, or of a list of runs after :func:`check_ensemble`, from
    ``config.json`` alone (no weights load): for checks before the model is loaded."""
    runs = _runs(run_dir)
    infos = [read_run_info(run) for run in runs]
    check_ensemble(runs, infos)
    return target_names(infos[0])


def _runs(run_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The run directories behind ``run_dir`` (one path or several): a K-fold run gives its folds."""
    given = [run_dir] if isinstance(run_dir, (str, os.PathLike)) else list(run_dir)
    return [run for path in given for run in member_runs(os.fspath(path))]


def recorded_columns(run_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[tuple[str, TableColumns | None]]:
    """``(run, its training table's columns or None)`` for a run or each run of a list, from
    ``config.json`` alone, for reading a table before the model loads
    (:func:`proformer.io.inputs.run_columns`). A run whose ``config.json`` cannot be read gives
    None here: loading it reports that, after the input's own checks."""
    recorded = []
    for run in _runs(run_dir):
        try:
            recorded.append((run, read_run_info(run).columns))
        except (OSError, ValueError):
            recorded.append((run, None))
    return recorded


def _check_options(batch_size, precision) -> int:
    batch_size = whole("batch_size", batch_size, 1, MAX_BATCH)  # the bound of --batch-size
    if precision not in ("32", "bf16"):
        raise ValueError(f"precision={precision!r}: use 32 or bf16")
    return batch_size


def _window(layout: Layout) -> str:
    return f"{layout.length} nt after trimming {layout.head} + {layout.tail} nt"


@dataclass
class LaidOut:
    """Sequences laid out for one run.

    Attributes
    ----------
    sequences : list of str
        As given (upper-cased).
    codes : np.ndarray
        uint8 ``(n, 2 * length)``: the model input (forward strand, then its reverse complement).
    lengths : np.ndarray
        int64 ``(n,)``: the input lengths.
    window : np.ndarray
        int64 ``(n, width)``, ``width`` the longest input: the forward-strand window index of each
        input position, -1 where the model does not see it (:meth:`Layout.window_positions`).
    """

    sequences: list[str]
    codes: np.ndarray
    lengths: np.ndarray
    window: np.ndarray

    @property
    def input_codes(self) -> np.ndarray:
        """uint8 ``(n, width)``: the input sequences' own codes, N past each row's end."""
        return encode_padded(self.sequences, self.window.shape[1])[0]


def check_symbols(sequences: Sequence[str], where: Callable[[int], str]) -> None:
    """Refuse a sequence that is not a str or holds a symbol outside ``A C G T N`` (either case),
    the input rule of prepare; ``where(i)`` names sequence i (``file:line`` or ``sequence i``)."""
    for i, sequence in enumerate(sequences):
        if not isinstance(sequence, str):
            raise TypeError(f"{where(i)} is a {type(sequence).__name__}; give sequences as str")
        raw = sequence.encode("utf-8")
        position = first_invalid(raw)
        if position is not None:
            raise InputError(f"{where(i)}: {invalid_message(raw, position)}")


def check_not_only_flanks(lengths: np.ndarray, layout: Layout, where: Callable[[int], str]) -> None:
    """Refuse a row that the run's flanks would empty; ``where(row)`` names it (``file:line``)."""
    short = np.flatnonzero(np.asarray(lengths) <= layout.head + layout.tail)
    if len(short):
        row = int(short[0])
        raise InputError(
            f"{where(row)}: the sequence has {int(lengths[row])} nt, not more than the run's flanks "
            f"({layout.head} + {layout.tail} nt trimmed): nothing would be left to predict. Give the whole "
            f"sequence, flanks included"
        )


class _Predicting:
    """What a run and an ensemble share: predictions for sequence strings and for the chunks of
    :func:`proformer.io.reader.read_input`, both over one :meth:`predict_stored`, and the note on
    rows cut to the window. A subclass gives ``members``, ``runs``, ``predict_stored`` and
    ``_window_text``."""

    members: list[Run]
    runs: list[str]
    too_long: int = 0  # rows cut to the window by the last predict_chunks
    longest: int = 0  # and the longest of them, in nt

    @property
    def n_targets(self) -> int:
        return int(self.members[0].info.model.n_targets)

    @property
    def target_names(self) -> list[str]:
        """One name per target (:func:`target_names`), in the order of the prediction columns."""
        return target_names(self.members[0].info)

    def target_index(self, target: str | int | None) -> int:
        """The column of ``target`` (a name or an index; None: the first)."""
        names = self.target_names
        if target is None:
            return 0
        if isinstance(target, str) and target in names:
            return names.index(target)
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= target < len(names):
            return int(target)
        raise ValueError(f"target={target!r}: the model predicts {', '.join(names)}; give one of those names "
                         f"(or an index 0..{len(names) - 1})")

    def check_units(self, standardized: bool) -> None:
        """z-scores of several runs are averaged only when the runs share the target statistics."""
        if standardized and len(self.members) > 1:
            check_ensemble(self.runs, [member.info for member in self.members], standardized=True)

    def predict_stored(self, codes: np.ndarray, lengths: np.ndarray, where: Callable[[int], str],
                       standardized: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Stored codes ``(n, width)`` and lengths ``(n,)`` -> float64 ``(n, n_targets)``
        predictions and the bool ``(n,)`` mask of rows cut to the window."""
        raise NotImplementedError

    def predict(self, sequences: Sequence[str] | str, standardized: bool = False) -> np.ndarray:
        """Predictions for sequence strings, laid out as in training (the run's flanks trimmed).

        Parameters
        ----------
        sequences : list of str, or one str
            DNA over ``A C G T N``, either case, each given whole (flanks included, as the
            training file held it). A sequence longer than the window after trimming is cut to
            its centre (one RuntimeWarning says how many).
        standardized : bool
            False: training units; True: z-scores of the training targets.

        Returns
        -------
        np.ndarray
            float64 ``(n,)`` for one target, ``(n, n_targets)`` otherwise (columns in the
            order of :attr:`target_names`).
        """
        self.check_units(standardized)
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
            values, cut = self.predict_stored(codes, lengths, name, standardized)
            too_long += int(cut.sum())
            out.append(values)
        if too_long:
            warnings.warn(f"{too_long:,} sequence(s) are longer than {self._window_text()}): each was cut to the "
                          f"centre of its window, as predict does", RuntimeWarning, stacklevel=2)
        values = np.concatenate(out)
        return values[:, 0] if self.n_targets == 1 else values

    def predict_chunks(self, chunks: Iterator, *, standardized: bool = False, progress: bool = False,
                       total: int | None = None, unit: str = "sequences") -> Iterator[tuple[object, np.ndarray]]:
        """``(chunk, float64 (n, n_targets) predictions)`` for each chunk of
        :func:`proformer.io.reader.read_input` (or anything with ``codes``, ``lengths``, ``where``
        and a length). Rows cut to the window are counted in :attr:`too_long` (rows) and
        :attr:`longest` (nt). ``total`` rows, when known, give the progress line an estimate."""
        self.check_units(standardized)
        self.too_long, self.longest, done = 0, 0, 0
        with Progress("predicted", total=total, unit=unit, enabled=progress) as line:
            for chunk in chunks:
                values, cut = self.predict_stored(chunk.codes, chunk.lengths, chunk.where, standardized)
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
                f"{self.longest:,} nt): each was cut to the centre of its window, as Layout.apply does")

    def _window_text(self) -> str:
        raise NotImplementedError


class Run(_Predicting):
    """A trained model: sequences in, predictions of every target out, batched.

    :func:`load` builds one from a run directory; a model of your own (any module that takes
    model codes ``(batch, 2 * length)`` and returns ``(batch,)`` or ``(batch, n_targets)``) with
    a :class:`~proformer.io.run.RunInfo` makes one too.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode, on the device to predict on.
    info : RunInfo
        ``config.json``: model shape, layout, target statistics, best epoch.
    name : str
        Names the run in messages (its directory).
    batch_size : int
        Sequences per forward pass.
    precision : "32" or "bf16"
        bf16 autocast for the forward pass.
    rc_average : bool, optional
        Average each sequence's prediction with its reverse complement's; None: the run's setting.
    """

    def __init__(self, model: torch.nn.Module, info: RunInfo, *, name: str = "run", batch_size: int = 256,
                 precision: str = "32", rc_average: bool | None = None):
        self.batch_size = _check_options(batch_size, precision)
        self.model, self.info, self.precision = model, info, precision
        self.device = next(model.parameters()).device
        check_bf16(self.device, precision)
        self.layout: Layout = info.layout
        self.rc_average = info.rc_average if rc_average is None else bool(rc_average)
        self.members, self.runs = [self], [name]
        self.too_long, self.longest = 0, 0

    def to_units(self, output: np.ndarray, standardized: bool = False) -> np.ndarray:
        """The model's output ``(n,)`` or ``(n, n_targets)`` -> float64, same shape.

        float64, so that distinct outputs stay distinct and in order (a rank correlation, the
        DREAM score's Spearman, is exactly that of the model's output).
        """
        values = np.asarray(output, dtype=np.float64)
        if standardized:
            return values
        mean = np.asarray(self.info.target.mean, dtype=np.float64)
        std = np.asarray(self.info.target.std, dtype=np.float64)
        return values * std[0] + mean[0] if values.ndim == 1 else values * std + mean

    def lay_out(self, sequences: Sequence[str], where: Sequence[str] | None = None) -> LaidOut:
        """Check and lay out ``sequences`` as training and predict do.

        ``where[i]`` names sequence i in errors (``file:line``); by default ``sequence i``.
        Symbols must be ``A C G T N`` (either case) and a sequence must be longer than the
        run's flanks; a sequence longer than the window is cut to its centre (the cut positions
        are reported as not seen).
        """
        sequences = [s.upper() for s in sequences]
        if not sequences:
            raise InputError("no sequences to analyse")
        name = (lambda i: where[i]) if where is not None else (lambda i: f"sequence {i}")
        check_symbols(sequences, name)
        codes, lengths = encode_padded(sequences)
        check_not_only_flanks(lengths, self.layout, name)
        too_long = ~self.layout.fits(lengths)
        if too_long.any():
            warnings.warn(
                f"{int(too_long.sum()):,} sequence(s) are longer than the model's window ({_window(self.layout)}; "
                f"the first is {name(int(np.argmax(too_long)))}, {int(lengths[too_long][0]):,} nt): each was cut to "
                f"its centre, as predict does, and the cut positions are reported as not seen",
                RuntimeWarning, stacklevel=2)
        return LaidOut(sequences, self.layout.apply(codes, lengths), lengths,
                       self.layout.window_positions(lengths, codes.shape[1]))

    @torch.no_grad()
    def model_output(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """One batch of model codes ``(batch, 2 * length)`` -> float32 ``(batch, n_targets)`` on the
        run's device, the model's own output: :func:`predict_batch` with the run's precision and
        reverse-complement averaging."""
        if isinstance(codes, np.ndarray):
            codes = torch.from_numpy(np.ascontiguousarray(codes))
            if self.device.type == "cuda":
                codes = codes.pin_memory()
        codes = codes.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            y = predict_batch(self.model, codes, rc_average=self.rc_average)
        return y.reshape(len(codes), -1)

    def predict_codes(self, codes: np.ndarray, standardized: bool = False) -> np.ndarray:
        """Model codes ``(n, 2 * length)`` -> float64 ``(n, n_targets)``, in batches of
        :attr:`batch_size`."""
        out = [self.model_output(codes[start : start + self.batch_size]).cpu().numpy()
               for start in range(0, len(codes), self.batch_size)]
        output = np.concatenate(out) if out else np.zeros((0, self.n_targets), dtype=np.float32)
        return self.to_units(output, standardized)

    def predict_stored(self, codes: np.ndarray, lengths: np.ndarray, where: Callable[[int], str],
                       standardized: bool = False) -> tuple[np.ndarray, np.ndarray]:
        check_not_only_flanks(lengths, self.layout, where)
        return self.predict_codes(self.layout.apply(codes, lengths), standardized), ~self.layout.fits(lengths)

    def _window_text(self) -> str:
        return f"the model's window ({_window(self.layout)}"


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

    Each member predicts as it would alone (:class:`Run`: its own layout, its own
    ``rc_average``, the precision asked for); the ensemble's prediction is the mean over members,
    in float64, in the units asked for. It has :class:`Run`'s prediction surface
    (:attr:`target_names`, :attr:`n_targets`, :meth:`predict`, :meth:`predict_chunks`,
    :meth:`too_long_warning`), so every command and analysis takes either.

    Parameters
    ----------
    members : list of Run
        At least one, checked with :func:`check_ensemble` (same targets).

    Examples
    --------
    >>> ensemble = proformer.load(["runs/cv/fold-0", "runs/cv/fold-1"])  # doctest: +SKIP
    >>> ensemble.predict(["TGCATTTTTTTCACATC...", ...])                  # doctest: +SKIP
    array([11.0, 9.9, ...])
    """

    def __init__(self, members: Sequence[Run]):
        self.members = list(members)
        self.runs = [run for member in self.members for run in member.runs]
        check_ensemble(self.runs, [member.info for member in self.members])
        self.too_long, self.longest = 0, 0

    def predict_stored(self, codes: np.ndarray, lengths: np.ndarray, where: Callable[[int], str],
                       standardized: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The mean of the members' predictions, and the rows cut to the window of at least one member."""
        total = np.zeros((len(lengths), self.n_targets))
        cut = np.zeros(len(lengths), dtype=bool)
        for member in self.members:
            values, member_cut = member.predict_stored(codes, lengths, where, standardized)
            total += values
            cut |= member_cut
        return total / len(self.members), cut

    def _window_text(self) -> str:
        """The members' windows: one, or each run's when their layouts differ."""
        layouts = [member.layout for member in self.members]
        if all(layout == layouts[0] for layout in layouts):
            return f"the runs' window ({_window(layouts[0])}"
        each = "; ".join(f"{run}: {_window(layout)}" for run, layout in zip(self.runs, layouts))
        return f"the window of at least one run ({each}"


def load(run_dir: str | os.PathLike | Sequence[str | os.PathLike], device: str = "auto", *,
         batch_size: int = 256, precision: str = "32", rc_average: bool | None = None) -> Run | Ensemble:
    """A trained run as a function of sequence strings: ``load(run).predict(["ACGT...", ...])``.

    Parameters
    ----------
    run_dir : path, or list of paths
        A run directory (``config.json`` + ``weights.safetensors``, or ``weights.pt`` for a run
        trained before safetensors; a K-fold run, ``data.split=folds:K``, is its fold runs as an
        :class:`Ensemble`); a list or tuple of them loads an :class:`Ensemble` (even of
        one run) that predicts the mean of the runs' predictions (e.g. the fold models of
        ``proformer sweep --folds K``). Each run is checked as a whole (``config.json``'s fields
        against each other, :func:`proformer.io.run.read_run_info`; its weights against the model
        it describes, :func:`proformer.io.run.read_weights`), and the runs against each other
        (:func:`check_ensemble`, ``config.json`` only) before any weights load.
    device : str
        ``auto`` (CUDA if present, then MPS, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
    batch_size : int
        Sequences per forward pass.
    precision : "32" or "bf16"
        bf16 autocast for the forward pass (a GPU or CPU that supports it).
    rc_average : bool, optional
        Average each sequence's prediction with its reverse complement's; None: each run's setting.

    Returns
    -------
    Run or Ensemble
        ``.predict(sequences, standardized=False)`` -> float64 ``(n,)`` (one target) or
        ``(n, n_targets)``; the interpretation verbs (:func:`proformer.ism`, ...) take it too.
    """
    _check_options(batch_size, precision)  # before anything is read
    options = {"batch_size": batch_size, "precision": precision, "rc_average": rc_average}
    runs = _runs(run_dir)
    single = isinstance(run_dir, (str, os.PathLike)) and len(runs) == 1
    infos = [read_run_info(run) for run in runs]
    check_ensemble(runs, infos)
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    members = []
    for run, info in zip(runs, infos):
        model = Proformer(info.model)
        model.load_state_dict(read_weights(run, info))  # checked against config.json first: one line, no dump
        members.append(Run(model.to(device).eval(), info, name=run, **options))
    return members[0] if single else Ensemble(members)
