"""Sequence design: the few single-nucleotide edits that move a prediction where it is wanted.

A search over substitutions, greedy (``beam=1``) or beam search, with at most ``max_edits``
edits per sequence. Each step predicts every single substitution of every candidate in the beam
(:func:`~proformer.interpret.ism.substitution_predictions`, batched over the candidates of many
sequences at once), keeps the ``beam`` best distinct children that improve on their parent, and
stops when none improves. So along a design's path the objective improves strictly with every
edit, and a position is edited again only when that improves it too.

Only positions the model sees are edited (:attr:`LaidOut.window` ``>= 0``): the constant flanks
that the run's layout trims, the ends cut from a sequence longer than the window, stay as given
(for a DREAM run the 80 random nt are designed, the 17 + 13 nt flanks kept). Lengths never change.

The goal is ``high`` (maximise the prediction), ``low`` (minimise it) or a number ``v``
(minimise ``|prediction - v|``), in the units asked for. An ensemble designs on the mean of its
runs' predictions. A design is only as good as the model that scores it: an ``oracle`` (an
independently trained run or ensemble) predicts every step's sequence too, so that a design that
wins by exploiting its own model's errors shows up as a gap between the two.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..inference import Ensemble, Run
from ..io.atomic import atomic_write, check_output
from ..limits import MAX_BEAM, MAX_EDITS, check_memory, whole
from ..progress import Progress
from .ism import mean_substitutions
from .scorer import Scorer, mean_over, scorers

__all__ = ["Design", "check_oracle", "design", "parse_goal", "run_design", "write_designs"]

BASES = "ACGT"
#: Input sequences searched together: their candidates share the batches of one step, and the
#: per-step ``(candidates, 4, width)`` prediction array stays a few MB.
CHUNK = 256


@dataclass
class Design:
    """One designed sequence and the path that led to it.

    Attributes
    ----------
    id : str
    input : str
        The sequence as given (upper-cased).
    edits : list of (int, str, str)
        In the order made: 0-based position in ``input`` (flanks included), the base there before
        the edit, the new base.
    predictions : np.ndarray
        float64 ``(len(edits) + 1,)``: the prediction at each step, step 0 being ``input``.
    oracle_predictions : np.ndarray or None
        float64 ``(len(edits) + 1,)``: the oracle's prediction of the same sequences, if any.
    """

    id: str
    input: str
    edits: list[tuple[int, str, str]]
    predictions: np.ndarray
    oracle_predictions: np.ndarray | None = None

    def steps(self) -> list[str]:
        """The sequence after each step: ``len(edits) + 1`` strings, the first the input."""
        out = [self.input]
        for position, _, new in self.edits:
            current = out[-1]
            out.append(current[:position] + new + current[position + 1 :])
        return out

    @property
    def sequence(self) -> str:
        """The designed sequence: the input with every edit applied."""
        return self.steps()[-1]


@dataclass
class _Candidate:
    """A node of the search: a sequence, the edits and predictions that reached it, its loss
    (lower is better), and whether it lies on the greedy path."""

    sequence: str
    edits: tuple[tuple[int, str, str], ...] = ()
    predictions: tuple[float, ...] = ()
    loss: float = math.inf
    greedy: bool = True


def parse_goal(goal: str | float) -> str | float:
    """``"high"``, ``"low"`` or a finite float; a numeric string (a command line's) is a number."""
    if isinstance(goal, str) and goal.strip().lower() in ("high", "low"):
        return goal.strip().lower()
    if not isinstance(goal, bool):
        try:
            value = float(goal)
        except (TypeError, ValueError):
            value = math.nan
        if math.isfinite(value):
            return value
    raise ValueError(f"goal={goal!r}: give high (maximise the prediction), low (minimise it) or a finite "
                     f"number to aim for, in the model's units")


#: Bytes per candidate and input position in one search step, roughly: the substitution
#: predictions (float64, 4 bases) and their losses, the mutant index arrays in numpy and torch
#: (3 substitutions x 17 bytes, twice), and the Python tuples of the improving children (up to 3).
#: Measured: about 530 bytes (a tiny run, 256 sequences of 23 nt, beam 50, goal high).
STEP_BYTES_PER_POSITION = 600


def _check_design_memory(runs: int, oracle: bool, n: int, width: int, max_edits: int, beam: int) -> None:
    """Refuse (:class:`~proformer.limits.NotEnoughMemory`) before the search when a step's candidates
    (``min(n, CHUNK) x beam``, each ``width`` positions) would not fit in the machine's memory, nor
    the oracle's sequences (every step of every design: ``n x (max_edits + 1)`` strings)."""
    candidates = min(n, CHUNK) * beam
    need = candidates * width * (STEP_BYTES_PER_POSITION + 32 * runs)
    lower = f"--beam (beam={beam})"
    if oracle:
        need += n * (max_edits + 1) * (width + 80)
        lower += f", --max-edits (max_edits={max_edits}) or the number of sequences (split the input)"
    check_memory(need, f"design of {n:,} sequences of up to {width:,} nt with beam {beam:,}", lower)


def _loss(goal: str | float) -> Callable[[np.ndarray], np.ndarray]:
    """The goal as a loss to minimise: predictions (any shape) -> same shape; NaN stays NaN."""
    if goal == "high":
        return np.negative
    if goal == "low":
        return np.positive
    return lambda y: np.abs(y - goal)


def design(model: Run | Ensemble, sequences: Sequence[str], goal: str | float, max_edits: int, *, beam: int = 1,
           target: str | int | None = None, standardized: bool = False, ids: Sequence[str] | None = None,
           oracle: Run | Ensemble | None = None, where: Sequence[str] | None = None,
           progress: bool = False) -> list[Design]:
    """Design each sequence by at most ``max_edits`` single-nucleotide substitutions.

    Parameters
    ----------
    model : Run or Ensemble
        What :func:`proformer.load` returns: the model that scores the search (an ensemble: the
        mean of its runs).
    sequences : sequence of str
        ``n`` sequences, A C G T N, as the run takes them (flanks included).
    goal : "high", "low" or float
        Maximise, minimise, or bring the prediction as close as possible to the number.
    max_edits : int
        At most this many edits per sequence, >= 1.
    beam : int
        Candidates kept per sequence at each step; 1 is greedy. The beam always keeps the greedy
        path's candidate, so a wider beam never ends worse than greedy.
    target : str or int, optional
        Which target of a multi-target model (name or index), of the oracle too; the first by default.
    standardized : bool
        False: predictions (and a numeric goal) in training units; True: z-scores.
    ids : sequence of str, optional
        Names for the designs; default ``"0"``, ``"1"``, ...
    oracle : Run or Ensemble, optional
        A second model that predicts every step's sequence too (it lays the strings out itself,
        so its layout may differ). It must predict the design's target (by name; :func:`check_oracle`)
        and see whole every sequence the model sees whole: an oracle whose window would cut one is
        refused, naming the sequence.
    where : sequence of str, optional
        ``file:line`` of each sequence, for errors.
    progress : bool
        Progress on stderr (:class:`proformer.progress.Progress`: in place on a terminal, plain lines in a log).

    Returns
    -------
    list of Design
        ``n``, in input order. A sequence that no single substitution improves has no edits.
    """
    goal = parse_goal(goal)
    max_edits, beam = whole("max_edits", max_edits, 1, MAX_EDITS), whole("beam", beam, 1, MAX_BEAM)
    members = scorers(model, target, standardized)
    judges = []
    if oracle is not None:
        # The oracle judges the same target, found by name (its columns may be in another order).
        judges = scorers(oracle, check_oracle(model, oracle, target, oracle_names=_names(oracle)), standardized)
    laid = members[0].lay_out(sequences, where)  # checks every symbol and length up front
    if judges:
        _check_oracle_window(members, judges, laid.lengths, where, oracle)
    for scorer in members[1:] + judges:
        scorer.lay_out(laid.sequences, where)  # another run's flanks may refuse a sequence: before the search
    n = len(laid.sequences)
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} sequences; give one id per sequence")
    _check_design_memory(len(members), bool(judges), n, laid.window.shape[1], max_edits, beam)
    loss = _loss(goal)

    best: list[_Candidate] = []
    chunks = range(0, n, CHUNK)
    total = len(chunks) * max_edits
    with Progress("design steps", total=total, enabled=progress) as progress_bar:
        for number, start in enumerate(chunks):
            def report(step: int, done: int = number * max_edits) -> None:
                progress_bar.update(done + step)

            part = slice(start, start + CHUNK)
            best.extend(_search(members, laid.sequences[part], loss, max_edits, beam, report))

    designs = [Design(ids[i], laid.sequences[i], list(found.edits), np.array(found.predictions))
               for i, found in enumerate(best)]
    if judges:
        steps = [d.steps() for d in designs]
        flat = [sequence for path in steps for sequence in path]
        scores = mean_over([judge.predict(flat) for judge in judges])
        ends = np.cumsum([len(path) for path in steps])
        for d, values in zip(designs, np.split(scores, ends[:-1])):
            d.oracle_predictions = values
    return designs


def _names(model: Run | Ensemble) -> list[str]:
    if not isinstance(model, (Run, Ensemble)):
        raise TypeError(f"oracle is a {type(model).__name__}; give what proformer.load(RUN_DIR) returns (a run or a "
                        f"list of runs)")
    return model.target_names


def _label(runs: str | os.PathLike | Sequence[str | os.PathLike] | Run | Ensemble) -> str:
    if isinstance(runs, (Run, Ensemble)):
        runs = runs.runs
    if isinstance(runs, (str, os.PathLike)):
        return str(runs)
    return ", ".join(map(str, runs))


def check_oracle(model: Run | Ensemble, oracle: str | os.PathLike | Sequence | Run | Ensemble,
                 target: str | int | None, oracle_names: Sequence[str]) -> str:
    """The name of the design's target, which the oracle must predict too.

    The ensemble rule where it applies: an oracle judges the model's predictions, so it must
    predict the same target, matched by name (an index picks the model's column; the oracle's
    column of that name is used). ``oracle_names`` are the oracle's target names (from its
    ``config.json`` before its weights load). A one-line ValueError names the targets of both
    and, when they share some, says that ``--target-name`` picks one of those.
    """
    name = model.target_names[model.target_index(target)]
    if name in oracle_names:
        return name
    shared = [n for n in model.target_names if n in oracle_names]
    fix = (f"give --target-name (target=) one both predict: {', '.join(shared)}" if shared else
           "give an oracle trained on the same target")
    raise ValueError(
        f"the oracle ({_label(oracle)}) predicts {len(oracle_names)} target(s) ({', '.join(oracle_names)}) but the "
        f"design's target is {name!r} (of the model, {_label(model)}, which predicts {', '.join(model.target_names)}): "
        f"an oracle judges the same target as the model; {fix}"
    )


def _check_oracle_window(members: list[Scorer], judges: list[Scorer], lengths: np.ndarray,
                         where: Sequence[str] | None, oracle: Run | Ensemble) -> None:
    """Refuse an oracle whose window would cut a sequence the model sees whole (a different
    window length): it would judge another sequence than the one designed."""
    seen_whole = np.logical_and.reduce([member.layout.fits(lengths) for member in members])
    for judge, run in zip(judges, oracle.runs):
        cut = seen_whole & ~judge.layout.fits(lengths)
        if cut.any():
            row = int(np.argmax(cut))
            name = where[row] if where is not None else f"sequence {row}"
            layout, own = judge.layout, members[0].layout
            raise ValueError(
                f"the oracle {run} takes sequences up to {layout.head + layout.tail + layout.length} nt (a "
                f"{layout.length}-nt window after trimming {layout.head} + {layout.tail} nt) but {name} has "
                f"{int(lengths[row])} nt, which the model sees whole (its window: {own.length} nt after trimming "
                f"{own.head} + {own.tail} nt): the oracle would judge the sequence cut to its window; give an oracle "
                f"trained on the same sequence length"
            )


def _search(members: list[Scorer], sequences: list[str], loss: Callable, max_edits: int, beam: int,
            report: Callable[[int], None]) -> list[_Candidate]:
    """The best candidate found for each of ``sequences``, searched together."""
    beams = [[_Candidate(sequence)] for sequence in sequences]
    best = [candidate for (candidate,) in beams]
    for step in range(max_edits):
        flat = [(row, candidate) for row, candidates in enumerate(beams) for candidate in candidates]
        if not flat:
            break
        # Edits keep every length, so each candidate's layout shows the model the input's positions
        # (substitution_predictions mutates exactly those): flanks and padding never change.
        candidates = [candidate.sequence for _, candidate in flat]
        reference, values = mean_substitutions(members, [member.lay_out(candidates) for member in members])
        families: list[list] = [[] for _ in beams]
        for k, (row, candidate) in enumerate(flat):
            if step == 0:
                candidate.predictions, candidate.loss = (float(reference[k]),), float(loss(reference[k]))
            # Compare with the parent's recorded prediction, not this pass's re-prediction of it, so
            # that the recorded path improves strictly whatever a batch's rounding does.
            losses = loss(values[k]).T  # (width, 4): ties go to the earlier position, then A C G T
            positions, bases = np.nonzero(losses < candidate.loss)  # NaN (not mutated) never improves
            families[row].append((candidate, [(float(losses[p, b]), float(values[k, b, p]), int(p), int(b))
                                              for p, b in zip(positions, bases)]))
        beams = [_next_beam(family, beam) for family in families]
        for row, candidates in enumerate(beams):
            for candidate in candidates:
                if candidate.loss < best[row].loss:  # strict: of equal losses the fewer edits win
                    best[row] = candidate
        report(step + 1)
    report(max_edits)  # a search that stopped early is done too
    return best


def _next_beam(family: list[tuple[_Candidate, list]], beam: int) -> list[_Candidate]:
    """The ``beam`` best distinct children of a sequence's candidates, best first.

    ``family`` pairs each candidate with its improving children ``(loss, prediction, position,
    base)``. The child that greedy search would take from the greedy path's candidate is always
    kept (in the last place when the beam is full without it): so beam search ends at least as
    well as greedy, for no extra predictions.
    """
    children = [(loss, rank, child) for rank, (_, found) in enumerate(family) for loss, *child in found]
    children.sort(key=lambda item: (item[0], item[1]))  # stable: ties keep candidate, position, base order
    chosen: dict[str, _Candidate] = {}  # sequence -> child; distinct sequences, best first
    greedy: str | None = None
    for loss, rank, (prediction, position, base) in children:
        parent = family[rank][0]
        greedy_child = parent.greedy and greedy is None
        if len(chosen) >= beam and not greedy_child:
            continue
        sequence = parent.sequence[:position] + BASES[base] + parent.sequence[position + 1 :]
        if sequence not in chosen:
            if len(chosen) >= beam:
                chosen.popitem()  # the worst gives its place to the greedy path's child
            edit = (position, parent.sequence[position], BASES[base])
            chosen[sequence] = _Candidate(sequence, parent.edits + (edit,), parent.predictions + (prediction,), loss,
                                          greedy=False)
        if greedy_child:
            greedy = sequence
        if len(chosen) >= beam and greedy is not None:
            break
    if greedy is not None:
        chosen[greedy].greedy = True
    return list(chosen.values())


def write_designs(designs: Sequence[Design], out: str | os.PathLike) -> str:
    """Write the designs as a TSV, one row per step of every design, under the output rule of
    :mod:`proformer.io.atomic` (a file appears only when complete; a symbolic link's target is
    written; a pipe, a device or ``-`` is written straight through).

    Columns: ``id``; ``step`` (0 is the input, k the sequence after k edits); ``edit``, the
    edit made at this step as ``POSITION:REF>NEW`` (0-based position in the input sequence,
    flanks included; empty at step 0); ``prediction``, the model's prediction of this step's
    sequence; ``oracle_prediction``, the oracle's (only when the designs have one); ``sequence``,
    the whole sequence at this step (the last step of an id is its design).

    Returns
    -------
    str
        The path written.
    """
    with_oracle = bool(designs) and designs[0].oracle_predictions is not None
    if any((d.oracle_predictions is not None) != with_oracle for d in designs):
        raise ValueError("some designs have oracle predictions and some not; design them all with the same oracle")
    columns = ["id", "step", "edit", "prediction"] + (["oracle_prediction"] if with_oracle else []) + ["sequence"]
    with atomic_write(out) as handle:
        handle.write("\t".join(columns) + "\n")
        for d in designs:
            edits = [""] + [f"{position}:{ref}>{new}" for position, ref, new in d.edits]
            for step, sequence in enumerate(d.steps()):
                row = [d.id, str(step), edits[step], f"{d.predictions[step]:.6g}"]
                if with_oracle:
                    row.append(f"{d.oracle_predictions[step]:.6g}")
                handle.write("\t".join(row + [sequence]) + "\n")
    return str(out)


def run_design(model: str | os.PathLike | Sequence[str | os.PathLike], input: str | os.PathLike,
               out: str | os.PathLike, goal: str | float, max_edits: int, *, beam: int = 1,
               oracle: str | os.PathLike | Sequence[str | os.PathLike] | None = None, target: str | int | None = None,
               standardized: bool = False, batch_size: int = 256, device: str = "auto", precision: str = "32",
               seq_col: str | None = None, progress: bool = True) -> dict:
    """``proformer design``: design every sequence of ``input`` and write ``out`` (:func:`write_designs`).

    ``model`` and ``oracle`` are run directories (a list: an ensemble), loaded with the same
    options. ``target`` picks the target of a multi-target run (both models; the first by
    default). Everything is computed before ``out`` is written: bad input or options write nothing.

    Returns
    -------
    dict
        ``designs`` (how many), ``out``, ``goal``, ``target``, ``units``, ``mean_edits``,
        ``prediction_before``/``prediction_after`` (means over the designs), and
        ``oracle_before``/``oracle_after`` (None without an oracle).
    """
    from ..inference import load, units_text
    from ..io.inputs import read_all_sequences

    goal = parse_goal(goal)
    whole("max_edits", max_edits, 1, MAX_EDITS)  # checked before the models load
    whole("beam", beam, 1, MAX_BEAM)
    check_output(out, input)
    ids, sequences, where = read_all_sequences(input, seq_col)
    options = {"batch_size": batch_size, "precision": precision}
    loaded = load(model, device, **options)
    judge = None
    if oracle is not None:
        # The oracle's targets are checked from its config.json, before its weights load.
        from ..inference import read_target_names

        check_oracle(loaded, oracle, target, oracle_names=read_target_names(oracle))
        judge = load(oracle, device, **options)
    designs = design(loaded, sequences, goal, max_edits, beam=beam, target=target, standardized=standardized, ids=ids,
                     oracle=judge, where=where, progress=progress)
    write_designs(designs, out)

    def mean(values) -> float:
        return float(np.mean(values))

    return {
        "designs": len(designs), "out": str(Path(out)), "goal": goal,
        "target": loaded.target_names[loaded.target_index(target)], "units": units_text(standardized),
        "mean_edits": mean([len(d.edits) for d in designs]),
        "prediction_before": mean([d.predictions[0] for d in designs]),
        "prediction_after": mean([d.predictions[-1] for d in designs]),
        "oracle_before": mean([d.oracle_predictions[0] for d in designs]) if judge else None,
        "oracle_after": mean([d.oracle_predictions[-1] for d in designs]) if judge else None,
    }
