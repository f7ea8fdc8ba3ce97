"""Per-base attributions of a run's predictions (captum, or ISM), and the TF-MoDISco inputs.

Every method explains one number: the prediction of one target of a loaded model, in the units
asked for, with each run's reverse-complement averaging, as a function of the one-hot forward
strand that the run's layout shows the model (:meth:`Scorer.one_hot_model`). An ensemble's
attributions are the mean of its runs' (every method here is linear in the function explained). Gradients run in
float32 whatever the run's ``precision``; ``ism`` predicts through the scorer itself.

Methods, and how exact they are for this architecture:

``saliency``
    The signed gradient at the input, for all four bases (captum ``Saliency(abs=False)``):
    exact, a local slope, not a decomposition of the prediction.
``input_x_gradient``
    Gradient x one-hot (captum ``InputXGradient``): the gradient of the base present, 0 at N.
    A first-order estimate against an all-N input, exact only for a linear model.
``integrated_gradients``
    captum ``IntegratedGradients`` from a baseline with every position the model sees set to N
    (an all-zero one-hot column; the layout's padding is kept, which with ``pad="n"`` makes the
    baseline the all-zero one-hot), ``steps`` Gauss-Legendre steps. The attributions sum to
    prediction(input) - prediction(baseline) up to the quadrature error (tested): the only
    method here that decomposes the prediction exactly.
``deep_lift_shap``
    captum ``DeepLift`` against ``n_shuffles`` dinucleotide shuffles of each sequence's own seen
    region (:mod:`~proformer.interpret.shuffle`), averaged over the references. Approximate:
    captum applies DeepLIFT's rescale rule only to nonlinearities that are ``nn.Module``
    instances of its supported list (``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.Softmax``,
    ...). Proformer has none: its ReLU, SiLU and sigmoid gates are functional calls, the softmax
    is inside ``scaled_dot_product_attention``, and LayerNorm and the products (gate x value,
    query x key, attention x value) have no DeepLIFT rule in captum. Plain gradients flow through
    all of them, so the multipliers are the gradient at the input and the result is
    gradient . (input - reference) averaged over the shuffles (tested): no summation-to-delta.
    (On a linear model, where DeepLIFT is exact, the attributions sum to prediction(input) - mean
    prediction(reference), tested; an N in the input gets 0, so its own share, -m . r, is not
    in the sum.)
``ism``
    :func:`proformer.interpret.ism.ism`: exact predicted effects of every substitution;
    attributions are :meth:`IsmResult.importance`.

Hypothetical contributions (``hypothetical=True``, what TF-MoDISco reads), ``(n, 4, width)``:
``saliency`` and ``input_x_gradient``: the gradient centred on its mean over the four bases at
each position. ``deep_lift_shap``: DeepLIFT's, from the multipliers ``m`` and each reference
``r``: ``hyp[b] = sum_c m_c (e_b - r)_c``, averaged over the references (the BPNet recipe).
``ism``: :meth:`IsmResult.hypothetical`. ``integrated_gradients`` has none (its path depends on
the base present). For ``deep_lift_shap`` and ``ism`` the attributions are exactly
hypothetical x one-hot (the contribution of the base present, 0 at N); for ``saliency`` and
``input_x_gradient`` they stay captum's own (the gradient at every base; gradient x one-hot),
which hypothetical x one-hot differs from by the mean gradient at each position.

Every array is in input coordinates, the positions of each sequence as the user gave it:
``(n, 4, width)`` with ``width`` the longest input, NaN where the model does not see the position
(the run's trimmed flanks, the ends cut from a sequence longer than the window, past a
sequence's end), as in ISM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..inference import Ensemble, LaidOut, Run
from ..io.atomic import atomic_path
from ..io.folders import check_output_folder, output_folder
from ..limits import MAX_SHUFFLES, MAX_STEPS, check_memory, whole
from ..sequence import one_hot
from .passes import Pass, Processes, processes, run_passes
from .scorer import Scorer, mean_over, scorers
from .shuffle import dinucleotide_shuffles

__all__ = [
    "HYPOTHETICAL_METHODS",
    "METHODS",
    "AttributionResult",
    "attribute",
    "modisco_crop",
    "run_attribute",
    "shuffled_references",
    "write_attributions",
]

METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "deep_lift_shap", "ism")
#: The methods with hypothetical contributions (integrated gradients integrates along a path that
#: depends on the base present, so there is no per-base counterfactual to report).
HYPOTHETICAL_METHODS = ("saliency", "input_x_gradient", "deep_lift_shap", "ism")


@dataclass
class AttributionResult:
    """What :func:`attribute` found.

    Attributes
    ----------
    ids : list of str
    sequences : list of str
        As given (upper-cased).
    method : str
        One of :data:`METHODS`.
    attributions : np.ndarray
        float32 ``(n, 4, width)``, ``width`` the longest input: the attribution of base A C G T
        at each input position (see the module for each method); NaN where the model does not
        see the position.
    hypothetical : np.ndarray or None
        float32 ``(n, 4, width)``: hypothetical contributions (NaN where unseen), or None when
        not asked for.
    one_hot : np.ndarray
        float32 ``(n, 4, width)``: the inputs (N and past-the-end columns all zero).
    lengths : np.ndarray
        int64 ``(n,)``: the input lengths.
    target, units : str
        The target explained and the units of its prediction.
    """

    ids: list[str]
    sequences: list[str]
    method: str
    attributions: np.ndarray
    hypothetical: np.ndarray | None
    one_hot: np.ndarray
    lengths: np.ndarray
    target: str
    units: str

    @property
    def seen(self) -> np.ndarray:
        """bool ``(n, width)``: the input positions the model sees."""
        return ~np.isnan(self.attributions).all(axis=1)


def _check_request(method: str, hypothetical: bool) -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r}: valid methods are {', '.join(METHODS)}")
    if hypothetical and method not in HYPOTHETICAL_METHODS:
        raise ValueError(f"{method} has no hypothetical contributions (its path from the all-N baseline depends on "
                         f"the base present); use one of {', '.join(HYPOTHETICAL_METHODS)} for --hypothetical "
                         f"and TF-MoDISco")


def attribute(model: Run | Ensemble, sequences: Sequence[str], method: str, *, target: str | int | None = None,
              standardized: bool = False, hypothetical: bool = False, ids: Sequence[str] | None = None,
              where: Sequence[str] | None = None, n_shuffles: int = 20, steps: int = 50, seed: int = 0,
              progress: bool = False, parallel: Processes | None = None) -> AttributionResult | None:
    """Per-base attributions of every sequence's prediction.

    Parameters
    ----------
    model : Run or Ensemble
        What :func:`proformer.load` returns; an ensemble's attributions are the mean of its runs'.
    sequences : sequence of str
        A C G T N, any lengths the run's layout takes.
    method : str
        One of :data:`METHODS` (see the module for what each computes and how exact it is).
    target : str or int, optional
        Which target of a multi-target model (name or index); the first by default.
    standardized : bool
        False: explain the prediction in training units; True: in z-scores of the training targets.
    hypothetical : bool
        Also hypothetical contributions (methods in :data:`HYPOTHETICAL_METHODS`).
    ids : sequence of str, optional
        Names for the output; default ``"0"``, ``"1"``, ...
    where : sequence of str, optional
        ``file:line`` of each sequence, for errors.
    n_shuffles : int
        ``deep_lift_shap``: dinucleotide-shuffled references per sequence.
    steps : int
        ``integrated_gradients``: quadrature steps from the baseline.
    seed : int
        ``deep_lift_shap``: seed of the shuffles (each sequence's own, from ``seed`` and its row:
        :func:`shuffled_references`).
    progress : bool
        Progress on stderr (:class:`proformer.progress.Progress`: in place on a terminal, plain lines in a log).
    parallel : Processes, optional
        The processes of ``--devices N`` (:mod:`~proformer.interpret.passes`): each computes its
        share of the sequences, in the batches of one process; global rank 0 gets the result (the
        same to the bit as one process's), the others None.

    Returns
    -------
    AttributionResult or None
    """
    _check_request(method, hypothetical)
    n_shuffles, steps = whole("n_shuffles", n_shuffles, 1, MAX_SHUFFLES), whole("steps", steps, 1, MAX_STEPS)
    if method != "ism":
        _check_attribution_memory(model, sequences, method, n_shuffles, steps)
    n = len(sequences)
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} sequences")
    if method == "ism":
        from .ism import ism

        found = ism(model, sequences, target=target, standardized=standardized, ids=ids, where=where,
                    progress=progress, parallel=parallel)
        if found is None:
            return None
        return AttributionResult(ids, found.sequences, method, found.importance(),
                                 found.hypothetical() if hypothetical else None, found.one_hot, found.lengths,
                                 found.target, found.units)
    members = scorers(model, target, standardized)
    plans = [_Plan(member, sequences, method, where, n_shuffles, steps, seed) for member in members]
    values = run_passes([plan.pass_ for plan in plans], _WHAT.get(method, "gradients"), progress, parallel,
                        [member.run.model for member in members])
    if values is None:  # another process of --devices N: rank 0 has the result
        return None
    found = [plan.finish(value) for plan, value in zip(plans, values)]
    laid, first = found[0][0], found[0][3]
    return AttributionResult(ids, laid.sequences, method, mean_over([actual for _, actual, _, _ in found]),
                             mean_over([hyp for _, _, hyp, _ in found]) if hypothetical else None,
                             one_hot(laid.input_codes), laid.lengths, first.target_name, first.units)


def _check_attribution_memory(model: Run | Ensemble, sequences: Sequence[str], method: str, n_shuffles: int,
                              steps: int) -> None:
    """Refuse (:class:`~proformer.limits.NotEnoughMemory`) before any work when the arrays would not
    fit in the machine's memory. float32 ``(n, 4, width)``: the results, one per run until averaged
    (inputs and outputs, about 5 on the model window); ``deep_lift_shap``: every reference at once
    (uint8 ``(n, n_shuffles, length)``) and a pass of ``max(batch_size, n_shuffles)`` rows (inputs,
    references, multipliers); ``integrated_gradients``: captum's Gauss-Legendre nodes (numpy's
    eigenvalue problem of ``steps x steps`` float64, about 3 such) and a pass of ``batch_size``
    rows. The model's own activations for one pass are what ``predict`` needs too and are not counted."""
    members = getattr(model, "members", None)
    if not members:
        return  # not what load returns: scorers() says so
    n, width = len(sequences), max(map(len, sequences), default=0)
    length = max(max(m.layout.length for m in members), width)
    batch = max(m.batch_size for m in members)
    need = 16 * n * ((2 * len(members) + 2) * width + 5 * length)
    if method == "deep_lift_shap":
        need += n * n_shuffles * length + 3 * 16 * max(batch, n_shuffles) * length
        lower = f"--shuffles (n_shuffles={n_shuffles}), --batch-size or the number of sequences (split the input)"
    elif method == "integrated_gradients":
        need += 3 * 8 * steps**2 + 3 * 16 * batch * length
        lower = f"--steps (steps={steps}), --batch-size or the number of sequences (split the input)"
    else:
        lower = "the number of sequences (split the input)"
    check_memory(need, f"attribute --method {method} of {n:,} sequences of up to {width:,} nt", lower)


class _Plan:
    """One run's attributions as a pass (:mod:`~proformer.interpret.passes`) of whole sequences:
    the gradients, integrated gradients or DeepLIFT hypothetical contributions, ``(rows, 4,
    length)`` on the model window; :meth:`finish` turns them into the method's arrays."""

    def __init__(self, scorer: Scorer, sequences: Sequence[str], method: str, where: Sequence[str] | None,
                 n_shuffles: int, steps: int, seed: int):
        self.scorer, self.method = scorer, method
        self.laid = laid = scorer.lay_out(sequences, where)
        forward = laid.codes[:, : scorer.layout.length]  # the forward strand the model reads
        self.x = x = one_hot(forward)
        seen = _seen_window(laid, x.shape[2])
        model = scorer.one_hot_model()
        batch = scorer.batch_size
        if method == "deep_lift_shap":
            # Each sequence's references come from its own row's generator, so a slice of rows
            # (one process's share) draws exactly what the whole run draws for them.
            def compute(start, stop):
                references = shuffled_references(forward[start:stop], seen[start:stop], n_shuffles, seed, first=start)
                return _deep_lift_shap(model, x[start:stop], references, scorer)

            batch = max(1, scorer.batch_size // n_shuffles)
        elif method == "integrated_gradients":
            baseline = x * ~seen[:, None, :]  # seen positions N, the padding as laid out

            def compute(start, stop):
                return _integrated_gradients(model, x[start:stop], baseline[start:stop], steps, scorer)
        else:
            def compute(start, stop):
                return _gradients(model, x[start:stop], scorer)
        self.pass_ = Pass(len(x), batch, compute)

    def finish(self, values: np.ndarray):
        """``(laid, attributions, hypothetical or None, scorer)``, the arrays float32 ``(n, 4,
        width)`` in input coordinates, from the pass's values."""
        x, laid = self.x, self.laid
        if self.method == "deep_lift_shap":
            actual, hyp = values * x, values
        elif self.method == "integrated_gradients":
            actual, hyp = values, None
        else:
            actual = values if self.method == "saliency" else values * x
            hyp = values - values.mean(axis=1, keepdims=True)
        return laid, _to_input(actual, laid), None if hyp is None else _to_input(hyp, laid), self.scorer


#: The progress line of each method's pass.
_WHAT = {"deep_lift_shap": "DeepLIFT/SHAP", "integrated_gradients": "integrated gradients"}


# -- model window <-> input positions ------------------------------------------------------------

def _seen_window(laid: LaidOut, length: int) -> np.ndarray:
    """bool ``(n, length)``: the forward-strand window positions that show an input position."""
    seen = np.zeros((len(laid.window), length), dtype=bool)
    rows, positions = np.nonzero(laid.window >= 0)
    seen[rows, laid.window[rows, positions]] = True
    return seen


def _to_input(values: np.ndarray, laid: LaidOut) -> np.ndarray:
    """``(n, 4, length)`` over the model window -> float32 ``(n, 4, width)`` over input positions, NaN unseen."""
    n, width = laid.window.shape
    out = np.full((n, 4, width), np.nan, dtype=np.float32)
    rows, positions = np.nonzero(laid.window >= 0)
    out[rows, :, positions] = values[rows, :, laid.window[rows, positions]]
    return out


def shuffled_references(forward: np.ndarray, seen: np.ndarray, n_shuffles: int, seed: int = 0,
                        first: int = 0) -> np.ndarray:
    """DeepLIFT references: each sequence's seen region dinucleotide-shuffled ``n_shuffles`` times.

    Parameters
    ----------
    forward : np.ndarray
        uint8 ``(n, length)``: the forward strands as laid out (``LaidOut.codes[:, :length]``).
    seen : np.ndarray
        bool ``(n, length)``: the window positions that show the input, one run per row.
    n_shuffles : int
    seed : int
        Row ``i`` (``first + i`` of the whole input) draws its shuffles from its own generator,
        ``np.random.default_rng([seed, first + i])``: a sequence's references depend on the seed
        and its row alone, not on which rows are drawn with it (a process's share of
        ``--devices N``, a slice of the input).
    first : int
        The row of ``forward[0]`` in the whole input.

    Returns
    -------
    np.ndarray
        uint8 ``(n, n_shuffles, length)``: the padding as laid out; within the seen region the
        same dinucleotide counts, N included (N is shuffled like a fifth base, never past the
        seen region).
    """
    references = np.repeat(forward[:, None, :], n_shuffles, axis=1)
    for row in range(len(forward)):
        positions = np.flatnonzero(seen[row])
        start, stop = positions[0], positions[-1] + 1
        rng = np.random.default_rng([seed, first + row])
        references[row, :, start:stop] = dinucleotide_shuffles(forward[row, start:stop], n_shuffles, rng)
    return references


# -- the methods, on the model window: (n, 4, length) float32 in, float32 out ---------------------

def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _tensor(array: np.ndarray, scorer: Scorer, grad: bool = False) -> torch.Tensor:
    """float32 on the scorer's device; ``grad``: an input to differentiate (captum warns otherwise)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(scorer.device).requires_grad_(grad)


# The methods run their own gradients inside Lightning's predict loop too (--devices N), which
# turns them off (no_grad, or inference mode on CUDA): inference_mode(False) and enable_grad
# turn them back on for this computation only.


def _gradients(model: torch.nn.Module, x: np.ndarray, scorer: Scorer) -> np.ndarray:
    from captum.attr import Saliency

    saliency, out = Saliency(model), np.empty_like(x)
    with torch.inference_mode(False), torch.enable_grad():
        for part in _chunks(len(x), scorer.batch_size):
            out[part] = saliency.attribute(_tensor(x[part], scorer, grad=True), abs=False).detach().cpu().numpy()
    return out


def _integrated_gradients(model: torch.nn.Module, x: np.ndarray, baseline: np.ndarray, steps: int,
                          scorer: Scorer) -> np.ndarray:
    from captum.attr import IntegratedGradients

    method, out = IntegratedGradients(model), np.empty_like(x)
    with torch.inference_mode(False), torch.enable_grad():
        # captum splits the steps x sequences of a chunk into forward passes of batch_size rows.
        for part in _chunks(len(x), scorer.batch_size):
            found = method.attribute(_tensor(x[part], scorer), baselines=_tensor(baseline[part], scorer),
                                     n_steps=steps, internal_batch_size=scorer.batch_size)
            out[part] = found.detach().cpu().numpy()
    return out


def _hypothetical_deeplift(multipliers, inputs, baselines):
    """captum's ``custom_attribution_func``: hypothetical contributions against each reference,
    ``hyp[b] = sum_c m_c (e_b - r)_c = m_b - sum_c m_c r_c`` (DeepLIFT / BPNet)."""
    return tuple(m - (m * r).sum(dim=1, keepdim=True) for m, r in zip(multipliers, baselines))


def _deep_lift_shap(model: torch.nn.Module, x: np.ndarray, references: np.ndarray, scorer: Scorer) -> np.ndarray:
    """The hypothetical contributions ``(n, 4, length)``, averaged over the references."""
    from captum.attr import DeepLift

    n, n_shuffles, length = references.shape
    method, hyp = DeepLift(model), np.empty_like(x)
    # captum's DeepLiftShap shares one set of references across the batch; each sequence needs its
    # own shuffles, so each input is repeated against its own references and the results averaged.
    with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*hooks.*", category=UserWarning)  # captum's notice per call
        for part in _chunks(n, max(1, scorer.batch_size // n_shuffles)):
            inputs = _tensor(np.repeat(x[part], n_shuffles, axis=0), scorer, grad=True)
            baselines = _tensor(one_hot(references[part].reshape(-1, length)), scorer)
            found = method.attribute(inputs, baselines=baselines, custom_attribution_func=_hypothetical_deeplift)
            hyp[part] = found.detach().cpu().numpy().reshape(-1, n_shuffles, 4, length).mean(axis=1)
    return hyp


# -- output --------------------------------------------------------------------------------------

def modisco_crop(result: AttributionResult) -> tuple[np.ndarray, int]:
    """Where TF-MoDISco's window starts in each sequence, and its width.

    Each sequence is cropped to its seen region and all to one width, the shortest seen region
    (centred in each), rounded down to even: modisco-lite keeps ``width // 2`` positions each
    side of the centre and refuses a window longer than what is left, so an odd width would lose
    a column. Nothing cropped is padding; an N inside a sequence stays an all-zero column.

    Returns
    -------
    starts : np.ndarray
        int64 ``(n,)``: input position of each crop's first column.
    width : int
    """
    seen = result.seen
    first, kept = seen.argmax(axis=1), seen.sum(axis=1)
    width = int(kept.min()) // 2 * 2
    if width < 2:
        row = int(kept.argmin())
        raise ValueError(f"sequence {result.ids[row]} shows the model {kept[row]} position(s); TF-MoDISco needs a "
                         f"common window of at least 2: leave out sequences that are hardly longer than the flanks")
    return (first + (kept - width) // 2).astype(np.int64), width


def _modisco_executable() -> str:
    executable = shutil.which("modisco")
    if executable is None:
        raise ImportError("--modisco runs the modisco command of TF-MoDISco, which is not installed: "
                          "pip install modisco-lite (or run it yourself on modisco_ohe.npz and modisco_hyp.npz)")
    return executable


#: The files ``attribute`` writes in its folder (main file first): an earlier run's are replaced.
ATTRIBUTE_FILES = ("attributions.npz", "modisco_*.npz", "modisco.h5")


def write_attributions(result: AttributionResult, out: str | os.PathLike, modisco: bool = False,
                       max_seqlets: int = 2000) -> dict:
    """Write ``out/attributions.npz`` and, with hypothetical contributions, the TF-MoDISco inputs.

    ``attributions.npz``: ``attributions``, ``one_hot`` (and ``hypothetical``) ``(n, 4, width)`` in
    input coordinates, NaN where unseen; ``lengths``, ``ids``, ``method``, ``target``, ``units``;
    with hypothetical contributions also ``modisco_start`` ``(n,)`` and ``modisco_width``, the crop
    of :func:`modisco_crop`. ``modisco_ohe.npz`` and ``modisco_hyp.npz``: that crop of ``one_hot``
    and ``hypothetical`` as ``arr_0``, float32 ``(n, 4, modisco_width)``, what
    ``modisco motifs -s modisco_ohe.npz -a modisco_hyp.npz -w modisco_width`` reads. ``modisco``
    runs that command (modisco-lite) into ``out/modisco.h5`` with ``-n max_seqlets``.

    The folder then holds this run's files only (:func:`proformer.io.folders.output_folder`): the
    arrays are staged and swapped in together, an earlier run's ``attributions.npz``,
    ``modisco_*.npz`` and ``modisco.h5`` are removed (an old ``modisco.h5`` described other
    attributions), other files (a user's notes) stay, and a failure (a full disk) leaves the
    folder as it was. ``modisco.h5`` is written afterwards, beside its name and renamed into
    place; a failing TF-MoDISco run leaves the new arrays (the error names the command to rerun).

    Returns
    -------
    dict
        ``npz``; with hypothetical contributions ``modisco_ohe_npz``, ``modisco_hyp_npz`` and
        ``modisco_width``; with ``modisco`` also ``modisco_h5``.
    """
    if modisco and result.hypothetical is None:
        raise ValueError("TF-MoDISco reads hypothetical contributions: compute them (hypothetical=True) with one of "
                         f"{', '.join(HYPOTHETICAL_METHODS)}")
    executable = _modisco_executable() if modisco else None
    out = Path(out)
    check_output_folder(out, what="attribute writes a folder")
    arrays = {"attributions": result.attributions, "one_hot": result.one_hot, "lengths": result.lengths,
              "ids": np.array(result.ids), "method": result.method, "target": result.target, "units": result.units}
    crops = {}
    if result.hypothetical is not None:
        starts, width = modisco_crop(result)
        columns = starts[:, None] + np.arange(width)
        rows = np.arange(len(starts))[:, None]
        # (n, width, 4) from the fancy index -> (n, 4, width)
        crops = {"modisco_ohe": result.one_hot.transpose(0, 2, 1)[rows, columns].transpose(0, 2, 1),
                 "modisco_hyp": result.hypothetical.transpose(0, 2, 1)[rows, columns].transpose(0, 2, 1)}
        arrays.update(hypothetical=result.hypothetical, modisco_start=starts, modisco_width=width)

    written = {"npz": str(out / "attributions.npz")}
    with output_folder(out, ATTRIBUTE_FILES, what="attribute writes a folder") as staging:
        with atomic_path(staging / "attributions.npz", suffix=".npz") as path:  # a failed write names its file
            np.savez_compressed(path, **arrays)
        for name, array in crops.items():
            with atomic_path(staging / f"{name}.npz", suffix=".npz") as path:
                np.savez_compressed(path, np.ascontiguousarray(array, dtype=np.float32))  # modisco reads arr_0
            written[f"{name}_npz"] = str(out / f"{name}.npz")
    if crops:
        written["modisco_width"] = width
    if modisco:
        written["modisco_h5"] = _run_modisco(executable, written, width, max_seqlets, out / "modisco.h5")
    return written


def _run_modisco(executable: str, written: dict, width: int, max_seqlets: int, target: Path) -> str:
    with atomic_path(target, suffix=".h5") as path:
        command = [executable, "motifs", "-s", written["modisco_ohe_npz"], "-a", written["modisco_hyp_npz"],
                   "-n", str(max_seqlets), "-w", str(width), "-o", str(path)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-3:]  # the exception, usually
            raise RuntimeError(f"modisco motifs failed (exit {done.returncode}) on a window of {width} positions: "
                               + " | ".join(detail) + f"\n  command: {' '.join(command)}")
    return str(target)


def run_attribute(model: str | os.PathLike | Sequence[str | os.PathLike], input: str | os.PathLike,
                  out: str | os.PathLike, method: str, *, hypothetical: bool = False, modisco: bool = False,
                  target: str | int | None = None, standardized: bool = False, batch_size: int = 256,
                  device: str = "auto", precision: str = "32", n_shuffles: int = 20, steps: int = 50, seed: int = 0,
                  seq_col: str | None = None, progress: bool = True, devices: int = 1, num_nodes: int = 1) -> dict:
    """``proformer attribute``: attributions of every sequence of ``input`` with the run ``model``
    (a list of runs: their mean), written to the folder ``out`` (:func:`write_attributions`).
    ``modisco`` implies ``hypothetical``. Everything is computed before anything is written, so
    bad input leaves no output; only a failing TF-MoDISco run comes after the arrays are written
    (they stay, and the error names the command to rerun).

    ``devices``, ``num_nodes``: more than one process (DDP through Lightning, as ``predict
    --devices``; :mod:`~proformer.interpret.passes`) shares the sequences; global rank 0 alone
    writes ``out`` (and runs TF-MoDISco), the arrays byte for byte those of one process.

    Returns
    -------
    dict
        ``sequences`` (how many), ``method``, ``target``, ``units``, the paths written and
        ``rank`` (not 0: another process of ``devices``, which wrote nothing).
    """
    from ..inference import load
    from ..io.inputs import read_all_sequences

    hypothetical = hypothetical or modisco
    _check_request(method, hypothetical)
    if modisco:
        _modisco_executable()  # before the work, not after it
    check_output_folder(out, what="attribute writes a folder")  # before the work
    parallel = processes(device, devices, num_nodes, input=input)
    ids, sequences, where = read_all_sequences(input, seq_col)
    loaded = load(model, device if parallel is None else parallel.device, batch_size=batch_size, precision=precision)
    result = attribute(loaded, sequences, method, target=target, standardized=standardized, hypothetical=hypothetical,
                       ids=ids, where=where, n_shuffles=n_shuffles, steps=steps, seed=seed, progress=progress,
                       parallel=parallel)
    if result is None:  # another process of --devices N: rank 0 writes
        return {"sequences": len(sequences), "method": method, "rank": parallel.rank}
    written = write_attributions(result, out, modisco)
    return {"sequences": len(sequences), "method": method, "target": result.target, "units": result.units,
            **written, "rank": 0}
