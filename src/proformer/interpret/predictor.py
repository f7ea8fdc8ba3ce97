"""A run's model as one batched function of sequences: the base of every analysis here.

:class:`Predictor` loads a run directory once and predicts model-ready codes in batches, in the
units asked for (training units with ``destandardize=True``, which the command line passes unless
``--standardized``; else the run's standardised units), for one target, with the run's
reverse-complement averaging. ISM, attribution, variant effects and design all predict through
it, and it through :func:`proformer.predict.predict_batch`, so each of them predicts exactly as
``proformer predict`` does. For every target at once, use :func:`proformer.load`.

:meth:`Predictor.lay_out` turns sequence strings into :class:`LaidOut`: the model codes plus, for
every input position, the forward-strand window index that shows it to the model (or -1). That
map is how results are reported over the positions of the sequence as the user gave it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..io.run import RunInfo
from ..io.sequences import InputError
from ..predict import TrainedModel, check_not_only_flanks, check_symbols, predict_batch, read_chunks
from ..sequence import Layout, encode_padded

__all__ = ["LaidOut", "Predictor", "read_input"]


@dataclass
class LaidOut:
    """Sequences laid out for a run.

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


def read_input(path: str | os.PathLike, seq_col: str | None = None,
               layout: Layout | None = None) -> tuple[list[str], list[str], list[str]]:
    """``(ids, sequences, where)`` of a sequence file under predict's input rules.

    ``ids`` are the FASTA record ids, or the 0-based row numbers (``"0"``, ``"1"``, ...) for
    other formats (row i of the DREAM test file is test index i); ``where`` is each sequence's
    ``file:line``, for errors. With the run's ``layout``, a sequence that its flanks would empty
    is an error naming ``file:line`` here, before any model is run.
    """
    ids: list[str] = []
    sequences: list[str] = []
    where: list[str] = []
    for chunk in read_chunks(path, seq_col=seq_col):
        if chunk.ids is not None:
            ids.extend(chunk.ids)
        else:
            ids.extend(str(i) for i in range(len(sequences), len(sequences) + len(chunk.sequences)))
        if layout is not None:
            lengths = np.fromiter(map(len, chunk.sequences), dtype=np.int64, count=len(chunk.sequences))
            check_not_only_flanks(lengths, layout, lambda row: f"{path}:{int(chunk.lines[row])}")
        sequences.extend(chunk.sequences)
        where.extend(f"{os.fspath(path)}:{int(line)}" for line in chunk.lines)
    if not sequences:
        raise InputError(f"{path}: no sequences (the file is empty, blank or only a header)")
    return ids, sequences, where


class Predictor(TrainedModel):
    """One value per sequence from a trained run, batched: a :class:`~proformer.predict.TrainedModel`
    (the run's layout, RC averaging, precision and batching) narrowed to one target.

    Parameters
    ----------
    model, info
        From :func:`proformer.predict.load_model`.
    target : str or int, optional
        Which target of a multi-target run (its name or index); the first by default.
    destandardize : bool
        Values in training units (``y * std + mean``, as ``proformer predict`` writes by default)
        instead of the standardised units (z-scores of the training targets). The Python default
        stays False; the command line passes True unless ``--standardized``.
    batch_size : int
        Sequences per forward pass.
    precision : "32" or "bf16"
        bf16 autocast for the forward pass.
    rc_average : bool, optional
        Average each sequence's prediction with its reverse complement's; None: the run's setting.
    """

    def __init__(self, model: torch.nn.Module, info: RunInfo, *, target: str | int | None = None,
                 destandardize: bool = False, batch_size: int = 256, precision: str = "32",
                 rc_average: bool | None = None):
        super().__init__(model, info, standardized=not destandardize, batch_size=batch_size, precision=precision,
                         rc_average=rc_average)
        self.target_index = self._target_index(target, self.target_names)
        self.target_name = self.target_names[self.target_index]
        self.destandardize = bool(destandardize)
        self.scale = float(info.target.std[self.target_index]) if destandardize else 1.0
        self.shift = float(info.target.mean[self.target_index]) if destandardize else 0.0

    def _target_index(self, target: str | int | None, names: list[str]) -> int:
        n_targets = self.n_targets
        if target is None:
            return 0
        if isinstance(target, str) and target in names:
            return names.index(target)
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= target < n_targets:
            return int(target)
        raise ValueError(f"target={target!r}: this run predicts {', '.join(names)}; give one of those names "
                         f"(or an index 0..{n_targets - 1})")

    # -- sequences -> model codes ------------------------------------------------------------

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
            layout = self.layout
            warnings.warn(
                f"{int(too_long.sum()):,} sequence(s) are longer than the model's window ({layout.length} nt after "
                f"trimming {layout.head} + {layout.tail} nt; the first is {name(int(np.argmax(too_long)))}, "
                f"{int(lengths[too_long][0]):,} nt): each was cut to its centre, as predict does, and the cut "
                f"positions are reported as not seen", RuntimeWarning, stacklevel=2)
        return LaidOut(sequences, self.layout.apply(codes, lengths), lengths,
                       self.layout.window_positions(lengths, codes.shape[1]))

    # -- prediction --------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        """Model codes ``(n, 2 * length)`` -> float64 ``(n,)`` in this predictor's units."""
        out = [self.predict_batch(codes[start : start + self.batch_size]) for start in range(0, len(codes), self.batch_size)]
        return np.concatenate(out) if out else np.zeros(0)

    @torch.no_grad()
    def predict_batch(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        """One forward pass (or two with RC averaging): ``(batch, 2 * length)`` -> ``(batch,)``."""
        if isinstance(codes, np.ndarray):
            codes = torch.from_numpy(np.ascontiguousarray(codes))
        codes = codes.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            y = predict_batch(self.model, codes, rc_average=self.rc_average)
        if y.dim() > 1:
            y = y[:, self.target_index]
        return y.double().cpu().numpy() * self.scale + self.shift

    def predict(self, sequences: Sequence[str]) -> np.ndarray:
        """float64 ``(n,)`` predictions of this predictor's target for sequence strings, in its units."""
        return self(self.lay_out(sequences).codes)

    def one_hot_model(self) -> torch.nn.Module:
        """The model as a function of the one-hot forward strand ``(batch, 4, length)`` (A C G T;
        an all-zero column is N) -> ``(batch,)`` in this predictor's units, for gradient-based
        attribution. The model builds the reverse complement itself; with RC averaging the
        prediction of the flipped one-hot (the reverse complement) is averaged in."""
        return _OneHotModel(self)


class _OneHotModel(torch.nn.Module):
    def __init__(self, predictor: Predictor):
        super().__init__()
        self.model = predictor.model
        self.target_index, self.rc_average = predictor.target_index, predictor.rc_average
        self.scale, self.shift = predictor.scale, predictor.shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._one(self.model(x))
        if self.rc_average:
            y = (y + self._one(self.model(x.flip(1, 2)))) / 2  # A C G T reversed = complement
        return y * self.scale + self.shift

    def _one(self, y: torch.Tensor) -> torch.Tensor:
        return (y[:, self.target_index] if y.dim() > 1 else y).float()

