"""In-silico saturation mutagenesis (ISM): the predicted effect of every single substitution.

Per sequence: one reference pass and one pass per substitution, 3 per A/C/G/T position (4 at an
N), never the identity; all mutants of all sequences stream through the model in full batches.
A mutant is built on the reference's model codes: base ``b`` at forward window index ``w`` and
its complement at the mirrored column ``2L - 1 - w`` of the reverse-complement half, so the model
sees one consistent molecule, exactly ``Layout.apply`` of the mutated string (tested).

Effects are reported over the positions of each sequence as the user gave it, ``(n, 4, width)``
with ``width`` the longest input: NaN where the run's layout hides the position from the model
(trimmed flanks, the ends cut from a sequence longer than the window, past a sequence's end) or
outside ``start``/``end``; 0 for the reference base.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..inference import Ensemble, LaidOut, Run
from ..io.atomic import atomic_path
from ..io.folders import check_output_folder, output_folder
from ..limits import MAX_POSITION, whole
from ..sequence import COMPLEMENT, one_hot
from .passes import Pass, Processes, processes, run_passes
from .scorer import Scorer, mean_over, scorers

__all__ = ["IsmResult", "ism", "mean_substitutions", "substitution_predictions", "write_ism"]


def _mutants(laid: LaidOut, mutable: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every substitution at the ``mutable`` ``(n, width)`` positions: ``(row, position, base)``
    arrays, each ``(m,)``, in row-major order (the bases other than the reference, in A C G T order)."""
    rows, positions = np.nonzero(mutable)
    reference = laid.input_codes[rows, positions]
    rows, positions = np.repeat(rows, 4), np.repeat(positions, 4)
    bases = np.tile(np.arange(4, dtype=np.uint8), len(reference))
    keep = bases != np.repeat(reference, 4)
    return rows[keep], positions[keep], bases[keep]


def substitution_predictions(scorer: Scorer, laid: LaidOut, mutable: np.ndarray | None = None,
                             progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Predictions of one run for every single substitution of every sequence.

    Parameters
    ----------
    scorer : Scorer
    laid : LaidOut
        From :meth:`Scorer.lay_out`.
    mutable : np.ndarray, optional
        bool ``(n, width)``: the input positions to mutate; default every position the model sees.
        Positions the model does not see are never mutated.
    progress : bool
        Progress on stderr (:class:`proformer.progress.Progress`: in place on a terminal, plain lines in a log).

    Returns
    -------
    reference : np.ndarray
        float64 ``(n,)``: the prediction for each sequence as given.
    values : np.ndarray
        float64 ``(n, 4, width)``: the prediction with base b (A C G T) at input position p; the
        reference prediction for the reference base; NaN where p was not mutated.
    """
    return mean_substitutions([scorer], [laid], mutable, progress)


class _Substitutions:
    """One run's substitutions of every sequence as two passes (:mod:`~proformer.interpret.passes`):
    the references, then every mutant; :meth:`values` assembles their predictions."""

    def __init__(self, scorer: Scorer, laid: LaidOut, mutable: np.ndarray | None):
        seen = laid.window >= 0
        self.laid, self.scorer = laid, scorer
        self.mutable = seen if mutable is None else (np.asarray(mutable, dtype=bool) & seen)
        self.rows, self.positions, self.bases = _mutants(laid, self.mutable)
        device = scorer.device
        self.codes = torch.from_numpy(laid.codes).to(device)
        self.forward = torch.from_numpy(laid.window[self.rows, self.positions]).to(device)
        self.reverse = self.codes.shape[1] - 1 - self.forward
        self.rows_t = torch.from_numpy(self.rows).to(device)
        self.bases_t = torch.from_numpy(self.bases).to(device)
        self.complements = torch.from_numpy(COMPLEMENT[self.bases]).to(device)

    def passes(self) -> list[Pass]:
        batch = self.scorer.batch_size
        return [Pass(len(self.laid.codes), batch, lambda start, stop: self.scorer(self.laid.codes[start:stop])),
                Pass(len(self.rows), batch, self._mutant_predictions)]

    def _mutant_predictions(self, start: int, stop: int) -> np.ndarray:
        """float64 ``(stop - start,)``: mutants built on the reference's model codes, a batch at a time."""
        predicted, step = np.empty(stop - start), self.scorer.batch_size
        for first in range(start, stop, step):
            part = slice(first, min(first + step, stop))
            batch = self.codes[self.rows_t[part]]  # advanced indexing copies: the reference rows stay as they are
            column = torch.arange(len(batch), device=batch.device)
            batch[column, self.forward[part]] = self.bases_t[part]
            batch[column, self.reverse[part]] = self.complements[part]
            predicted[first - start : part.stop - start] = self.scorer.predict_batch(batch)
        return predicted

    def values(self, reference: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`substitution_predictions`'s ``(reference, values)`` from the two passes' predictions."""
        n, width = self.laid.window.shape
        values = np.full((n, 4, width), np.nan)
        values[self.rows, self.bases, self.positions] = predicted
        ref_rows, ref_positions = np.nonzero(self.mutable)
        ref_bases = self.laid.input_codes[ref_rows, ref_positions]
        is_base = ref_bases < 4  # an N has no identity substitution
        values[ref_rows[is_base], ref_bases[is_base], ref_positions[is_base]] = reference[ref_rows[is_base]]
        return reference, values


def mean_substitutions(members: list[Scorer], laids: Sequence[LaidOut], mutable: np.ndarray | None = None,
                       progress: bool = False, parallel: Processes | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`substitution_predictions` of every run, each on the sequences as its own layout lays
    them out (``laids[i]`` from ``members[i].lay_out``), averaged in input coordinates: the
    ensemble's prediction of every substitution. A position is mutated where every run sees it.
    ``parallel``: on its processes (:func:`~proformer.interpret.passes.run_passes`); None on all
    but global rank 0."""
    plans = [_Substitutions(member, laid, mutable) for member, laid in zip(members, laids)]
    found = run_passes([p for plan in plans for p in plan.passes()], "ISM forward passes", progress, parallel,
                       [member.run.model for member in members])
    if found is None:
        return None
    found = [plan.values(*found[2 * i : 2 * i + 2]) for i, plan in enumerate(plans)]
    return mean_over([reference for reference, _ in found]), mean_over([values for _, values in found])


@dataclass
class IsmResult:
    """What :func:`ism` found.

    Attributes
    ----------
    ids : list of str
    sequences : list of str
    effects : np.ndarray
        float32 ``(n, 4, width)``: prediction(mutant) - prediction(reference) for base A C G T at
        each input position; 0 at the reference base; NaN where not mutated (see the module).
    one_hot : np.ndarray
        float32 ``(n, 4, width)``: the input sequences (N and past-the-end columns all zero).
    reference : np.ndarray
        float32 ``(n,)``: the reference predictions.
    lengths : np.ndarray
        int64 ``(n,)``.
    target, units : str
        The target analysed and the units of ``reference`` and ``effects``.
    evaluated : int
        Sequences predicted: the references and every mutant (3 per A/C/G/T position, 4 per N),
        by every run of an ensemble.
    """

    ids: list[str]
    sequences: list[str]
    effects: np.ndarray
    one_hot: np.ndarray
    reference: np.ndarray
    lengths: np.ndarray
    target: str
    units: str
    evaluated: int = 0

    def hypothetical(self) -> np.ndarray:
        """float32 ``(n, 4, width)``: the effects centred on their mean over the four bases at
        each position, i.e. how much each base would raise the prediction over an average base.
        NaN where not mutated. TF-MoDISco's hypothetical contributions, from ISM."""
        return (self.effects - self.effects.mean(axis=1, keepdims=True)).astype(np.float32)

    def importance(self) -> np.ndarray:
        """float32 ``(n, 4, width)``: :meth:`hypothetical` on the reference base, 0 for the other
        bases (and at N): the contribution of each base as given. What the logos show."""
        return (self.hypothetical() * self.one_hot).astype(np.float32)


def ism(model: Run | Ensemble, sequences: Sequence[str], *, target: str | int | None = None,
        standardized: bool = False, ids: Sequence[str] | None = None, start: int | None = None,
        end: int | None = None, where: Sequence[str] | None = None, progress: bool = False,
        parallel: Processes | None = None) -> IsmResult | None:
    """Saturation mutagenesis of every sequence.

    Parameters
    ----------
    model : Run or Ensemble
        What :func:`proformer.load` returns; an ensemble's effects are the mean of its runs'.
    sequences : sequence of str
        A C G T N, any lengths the run's layout takes.
    target : str or int, optional
        Which target of a multi-target model (name or index); the first by default.
    standardized : bool
        False: effects in training units; True: in z-scores of the training targets.
    ids : sequence of str, optional
        Names for the output; default ``"0"``, ``"1"``, ...
    start, end : int, optional
        Mutate only input positions ``start <= p < end`` (0-based, end exclusive, as in BED).
    where : sequence of str, optional
        ``file:line`` of each sequence, for errors.
    parallel : Processes, optional
        The processes of ``--devices N`` (:func:`~proformer.interpret.passes.processes`): each
        predicts its share of the forward passes, global rank 0 gets the result (the same to the
        bit as one process's), the others None.

    Returns
    -------
    IsmResult or None
    """
    members = scorers(model, target, standardized)
    laid = members[0].lay_out(sequences, where)
    n, width = laid.window.shape
    start = 0 if start is None else whole("start", start, 0, MAX_POSITION - 1)  # no 2.5, no True
    end = width if end is None else whole("end", end, 1, MAX_POSITION)
    if not 0 <= start < end:
        raise ValueError(f"--start {start} --end {end}: need 0 <= start < end (0-based positions, end exclusive)")
    mutable = np.zeros((n, width), dtype=bool)
    mutable[:, start:end] = True
    if not (mutable & (laid.window >= 0)).any():
        layout = members[0].layout
        raise ValueError(f"positions {start}..{end - 1} are not seen by the model in any sequence (the run's layout "
                         f"trims {layout.head} nt at the start and {layout.tail} at the end); "
                         f"choose --start/--end inside the sequences")
    laids = [laid, *(member.lay_out(laid.sequences, where) for member in members[1:])]
    found = mean_substitutions(members, laids, mutable, progress, parallel)
    if found is None:  # another process of --devices N: rank 0 has the result
        return None
    reference, values = found
    effects = (values - reference[:, None, None]).astype(np.float32)
    mutated = ~np.isnan(values).all(axis=1)  # (n, width): positions mutated (by every run)
    identities = int((mutated & (laid.input_codes < 4)).sum())
    evaluated = len(members) * (n + int((~np.isnan(values)).sum()) - identities)
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} sequences")
    return IsmResult(ids, laid.sequences, effects, one_hot(laid.input_codes), reference.astype(np.float32),
                     laid.lengths, members[0].target_name, members[0].units, evaluated)


#: The files ``ism`` writes in its folder (main file first): an earlier run's are replaced.
ISM_FILES = ("ism.npz", "logos/*.png")


def write_ism(result: IsmResult, out: str | os.PathLike, top: int = 0) -> dict:
    """Write ``out/ism.npz`` and, for the ``top`` sequences with the largest |effect|, a logo PNG each.

    ``ism.npz`` holds ``effects`` and ``one_hot`` ``(n, 4, width)``, ``reference`` ``(n,)``,
    ``lengths``, ``ids``, ``target`` and ``units``. The folder then holds this run's files only:
    they are staged and swapped in together (:func:`proformer.io.folders.output_folder`), an
    earlier run's ``ism.npz`` and ``logos/*.png`` are removed, other files (a user's notes) stay,
    and a failure (a full disk) leaves the folder as it was.

    Returns
    -------
    dict
        ``npz``: its path; ``logos``: the PNG paths, largest effect first.
    """
    out = Path(out)
    logos = []
    with output_folder(out, ISM_FILES, what="ism writes a folder (ism.npz, logos/)") as staging:
        with atomic_path(staging / "ism.npz", suffix=".npz") as path:  # a failed write names its file
            np.savez_compressed(path, effects=result.effects, one_hot=result.one_hot, reference=result.reference,
                                lengths=result.lengths, ids=np.array(result.ids), target=result.target,
                                units=result.units)
        if top:
            from .logos import plot_logo

            strength = np.nanmax(np.abs(np.where(np.isnan(result.effects), 0, result.effects)), axis=(1, 2))
            importance = result.importance()
            (staging / "logos").mkdir()
            for rank, row in enumerate(np.argsort(-strength, kind="stable")[:top], start=1):
                name = Path("logos") / f"{rank:03d}_{_file_name(result.ids[row])}.png"
                plot_logo(importance[row, :, : result.lengths[row]], staging / name,
                          title=f"{result.ids[row]}: ISM importance of each base ({result.target}, {result.units}); "
                                f"reference prediction {result.reference[row]:.3g}",
                          seen=~np.isnan(result.effects[row, :, : result.lengths[row]]).all(axis=0))
                logos.append(str(out / name))
    return {"npz": str(out / "ism.npz"), "logos": logos}


def _file_name(name: str, limit: int = 60) -> str:
    """A record id as a safe file-name part."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:limit]
    return safe.lstrip(".") or "sequence"


def run_ism(model: str | os.PathLike | Sequence[str | os.PathLike], input: str | os.PathLike,
            out: str | os.PathLike, *, start: int | None = None, end: int | None = None, top: int = 10,
            target: str | int | None = None, standardized: bool = False, batch_size: int = 256, device: str = "auto",
            precision: str = "32", seq_col: str | None = None, progress: bool = True, devices: int = 1,
            num_nodes: int = 1) -> dict:
    """``proformer ism``: ISM of every sequence of ``input`` with the run ``model`` (a list of runs:
    their mean), written to the folder ``out`` (:func:`write_ism`). Everything is computed before
    anything is written, so bad input leaves no output.

    ``devices``, ``num_nodes``: more than one process (DDP through Lightning, as ``predict
    --devices``; :mod:`~proformer.interpret.passes`) shares the forward passes; global rank 0
    alone writes ``out``, the same files as one process (the arrays byte for byte).

    Returns
    -------
    dict
        ``sequences``, ``evaluated``, ``seconds``, the paths written and ``rank`` (not 0: another
        process of ``devices``, which wrote nothing).
    """
    import time

    from ..inference import load
    from ..io.inputs import read_all_sequences

    began = time.perf_counter()
    check_output_folder(out, what="ism writes a folder (ism.npz, logos/)")  # before the work
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"top={top!r}: give how many sequences to draw logos for (0 for none)")
    parallel = processes(device, devices, num_nodes, input=input)
    ids, sequences, where = read_all_sequences(input, seq_col)
    loaded = load(model, device if parallel is None else parallel.device, batch_size=batch_size, precision=precision)
    result = ism(loaded, sequences, target=target, standardized=standardized, ids=ids, start=start, end=end,
                 where=where, progress=progress, parallel=parallel)
    if result is None:  # another process of --devices N: rank 0 writes
        return {"sequences": len(sequences), "rank": parallel.rank}
    written = write_ism(result, out, top)
    return {"sequences": len(sequences), "evaluated": result.evaluated, "seconds": time.perf_counter() - began,
            **written, "rank": 0}
