"""Run directories: the best model as ``config.json`` (a :class:`RunInfo`) + ``weights.safetensors``.

``config.json`` carries everything prediction needs: the model's shape, the layout that turns a
sequence into model input, the training targets' names and statistics, and where the data came
from. Training writes it, and predict, export, sweeps and tests read it, all through
:class:`RunInfo`, so its keys are spelled in one place.

The weights are a safetensors file (tensors and nothing else: reading one runs no code). A run
written before safetensors has ``weights.pt`` instead, a state_dict that :func:`read_weights`
loads with ``torch.load(weights_only=True)``. A run directory is checked as a whole when read:
``config.json``'s fields against each other (:func:`read_run_info`) and the weights' tensors
against the model ``config.json`` describes (:func:`read_weights` with ``info``), each mismatch
one line naming the file(s), the field and the values. torch is imported only to read or write
the weights.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import shutil
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..limits import size_text
from ..model.config import ModelConfig
from ..sequence import PAD_MODES, Layout

__all__ = ["CONFIG", "LEGACY_WEIGHTS", "MEMBERS", "RunInfo", "RunWriteError", "TableColumns", "TargetInfo", "WEIGHTS",
           "check_weights", "member_runs", "read_run_info", "read_weights", "weights_path", "write_error", "write_run_model"]

CONFIG = "config.json"
#: An ensemble run (``data.split=folds:K``, ``train.members=K``): the member runs it holds
#: (``fold-0``, ... or ``member-0``, ...), which together are its model, and their validation
#: figures; rewritten as each member finishes (:mod:`proformer.train.members`).
MEMBERS = "members.json"
#: The weights of a run: a safetensors file of the model's state_dict.
WEIGHTS = "weights.safetensors"
#: The weights of a run written before safetensors: a torch.save'd state_dict, still read.
LEGACY_WEIGHTS = "weights.pt"


class RunWriteError(OSError):
    """A file of a run directory could not be written (a full disk, ...); the previous one is kept.

    ``filename`` is the file of the run directory (never a temporary), ``strerror`` says what
    happened and what to do, ``errno`` is the cause's.
    """

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"




def write_error(path: str | Path, error: OSError, needed: int | None, what: str, then: str) -> RunWriteError:
    """The one-line error for a failed write of ``path`` (a file of a run directory).

    ``what`` names the file in words (``"the checkpoint"``), ``needed`` is the bytes it takes
    (None: unknown), ``then`` says how to go on once fixed. On a full disk the message gives
    the space needed and free (:func:`shutil.disk_usage` of the file's folder), unless the
    error (one of :func:`proformer.io.atomic.atomic_write`'s) says so already.
    """
    path = Path(path)
    reason = error.strerror or (str(error).splitlines() or [type(error).__name__])[0]
    details = []
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        if needed:
            details.append(f"it needs about {size_text(needed)}")
        if " free in " not in reason:
            try:
                details.append(f"{size_text(shutil.disk_usage(path.parent).free)} free in {path.parent}")
            except OSError:
                pass
    detail = f"{reason}; {', '.join(details)}" if details else reason
    return RunWriteError(error.errno or errno.EIO,
                         f"cannot write {what} ({detail}); the previous {path.name}, if any, is kept as it was: "
                         f"free some space (or fix the cause) and {then}", str(path))


@dataclass(frozen=True)
class TargetInfo:
    """The training targets: a name per column, and the statistics predictions are scaled by.

    ``mean`` and ``std`` have one value per target; with ``standardized`` the model predicts
    ``(y - mean) / std`` and ``prediction * std + mean`` is in the measured units.
    """

    names: list[str]
    mean: list[float]
    std: list[float]
    standardized: bool


@dataclass(frozen=True)
class TableColumns:
    """How ``prepare`` read the run's training table: its column names.

    Stored in ``config.json`` as ``data.columns``; predict and evaluate read a headed table with
    them when ``--seq-col`` is not given. ``id_col`` is None when the table was read without one.
    """

    seq_col: str
    target_cols: list[str]
    id_col: str | None = None

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"seq_col": self.seq_col, "target_cols": list(self.target_cols)}
        if self.id_col is not None:
            values["id_col"] = self.id_col
        return values

    @classmethod
    def from_meta(cls, meta: dict) -> "TableColumns | None":
        """The columns a dataset's ``meta.json`` records (its ``table`` section, written when
        prepare read a table), or None (a FASTA, a DREAM TSV, a dataset of an older prepare)."""
        table = meta.get("table") if isinstance(meta, dict) else None
        if not isinstance(table, dict) or not isinstance(table.get("seq_col"), str) or not table["seq_col"]:
            return None
        targets = table.get("target_cols") or []
        id_col = table.get("id_col")
        return cls(table["seq_col"], [str(name) for name in targets], id_col if isinstance(id_col, str) else None)

    @classmethod
    def record(cls, meta: dict) -> dict[str, Any] | None:
        """``config.json``'s ``data.columns`` for a run trained on the dataset of ``meta``:
        :meth:`from_meta` as a dict, or None."""
        columns = cls.from_meta(meta)
        return None if columns is None else columns.to_dict()


@dataclass(frozen=True)
class RunInfo:
    """What a run directory's ``config.json`` holds.

    Attributes
    ----------
    model : ModelConfig
        The model's shape.
    layout : Layout
        How a stored sequence becomes model input (trim, pad, reverse complement).
    target : TargetInfo
    data : dict
        Provenance: the training and validation datasets, the split, row counts, and
        ``columns`` (:class:`TableColumns`, a dict) when the training data was read from a table.
    rc_average : bool
        Predict the mean over each sequence and its reverse complement (``data.rc_average``).
    best : dict or None
        The best epoch's validation metrics (absent until an epoch has been validated).
    proformer_version : str
    """

    model: ModelConfig
    layout: Layout
    target: TargetInfo
    data: dict = field(default_factory=dict)
    rc_average: bool = False
    best: dict | None = None
    proformer_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        values = {
            "proformer_version": self.proformer_version,
            "model": self.model.to_dict(),
            "layout": asdict(self.layout),
            "rc_average": self.rc_average,
            "target": asdict(self.target),
            "data": self.data,
        }
        if self.best is not None:
            values["best"] = self.best
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = CONFIG) -> "RunInfo":
        """Parse a ``config.json`` dict; ``source`` names the file in error messages.

        The fields are checked against each other too (:meth:`check`): a file whose parts
        disagree is refused here, in one line naming the field and its value, not wherever a
        prediction would first go wrong.
        """
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected a JSON object, found {type(values).__name__}; "
                             f"it is not a run's config.json (train a model with proformer train)")
        missing = [key for key in ("model", "layout", "target") if key not in values]
        if missing:
            raise ValueError(f"{source} has no {', '.join(repr(k) for k in missing)} section; it was not written "
                             f"by proformer train (or is damaged): train the model again")
        layout = _layout(values["layout"], source)
        try:
            target = values["target"]
            info = cls(
                model=ModelConfig.from_dict(values["model"]),
                layout=layout,
                target=TargetInfo(names=list(target["names"]), mean=[float(x) for x in target["mean"]],
                                  std=[float(x) for x in target["std"]], standardized=bool(target["standardized"])),
                data=dict(values.get("data", {})),
                rc_average=bool(values.get("rc_average", False)),
                best=values.get("best"),
                proformer_version=str(values.get("proformer_version", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: {error}; the file is damaged or from another program: train the model again") from None
        info.check(source)
        return info

    @property
    def columns(self) -> TableColumns | None:
        """The training table's column names (``data.columns``); None for a run trained on a
        FASTA or a DREAM TSV, or written before runs recorded them."""
        values = self.data.get("columns")
        if values is None:
            return None
        return TableColumns(values["seq_col"], list(values["target_cols"]), values.get("id_col"))

    def check(self, source: str = CONFIG) -> None:
        """Raise a one-line ValueError naming ``source``, the field and its value where the fields
        disagree: a target name, mean and std per target (``model.n_targets``), finite statistics
        with ``std > 0``, ``layout.length == model.length``, and a well-formed ``data.columns``."""
        def refuse(problem: str) -> None:
            raise ValueError(f"{source}: {problem}; the file is damaged or was edited: restore the run's own "
                             f"config.json or train the model again")

        n_targets = self.model.n_targets
        for name, values in (("names", self.target.names), ("mean", self.target.mean), ("std", self.target.std)):
            if len(values) != n_targets:
                refuse(f"target.{name} has {len(values)} value(s) ({_short(values)}) but model.n_targets is {n_targets}")
        if not all(isinstance(name, str) and name for name in self.target.names):
            refuse(f"target.names is {_short(self.target.names)}; every target needs a name (a non-empty string)")
        if len(set(self.target.names)) != len(self.target.names):
            refuse(f"target.names is {_short(self.target.names)}; a name is given twice")
        for i, (mean, std) in enumerate(zip(self.target.mean, self.target.std)):
            if not math.isfinite(mean):
                refuse(f"target.mean[{i}] is {mean!r}; it must be a finite number")
            if not (math.isfinite(std) and std > 0):
                refuse(f"target.std[{i}] is {std!r}; it must be a finite number > 0")
        if self.layout.length != self.model.length:
            refuse(f"layout.length is {self.layout.length} but model.length is {self.model.length}; the model "
                   f"takes the window the layout makes, so the two are equal")
        columns = self.data.get("columns")
        if columns is not None:
            def named(value: Any) -> bool:
                return isinstance(value, str) and bool(value)

            if (not isinstance(columns, dict) or not named(columns.get("seq_col"))
                    or not isinstance(columns.get("target_cols"), list)
                    or not all(map(named, columns["target_cols"]))
                    or columns.get("id_col") is not None and not named(columns["id_col"])):
                refuse(f"data.columns is {_short([columns])[1:-1]}; it must be an object with a seq_col name, a "
                       f"target_cols list of names and, optionally, an id_col name")

    def with_best(self, best: dict) -> "RunInfo":
        """A copy that records ``best`` as the best epoch's metrics."""
        return RunInfo(self.model, self.layout, self.target, self.data, self.rc_average, best, self.proformer_version)


def _short(values: list) -> str:
    text = repr(list(values))
    return text if len(text) <= 80 else text[:77] + "...]"


def _layout(values: Any, source: str) -> Layout:
    """``config.json``'s layout section as a :class:`Layout`, every field checked (one line naming
    ``source``, the field and its value)."""
    if not isinstance(values, dict):
        raise ValueError(f"{source}: layout is {values!r}, not a JSON object with head, tail, length and pad; "
                         f"the file is damaged or was edited: restore it or train the model again")
    names = [f.name for f in dataclasses.fields(Layout)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{source}: layout has unknown field(s) {', '.join(unknown)} (valid: {', '.join(names)}); "
                         f"the file is damaged or from another program: restore it or train the model again")
    for name, least in (("head", 0), ("tail", 0), ("length", 1)):
        if name in values:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{source}: layout.{name} is {value!r}; it must be a whole number >= {least}: the "
                                 f"file is damaged or was edited: restore it or train the model again")
    if "pad" in values and values["pad"] not in PAD_MODES:
        raise ValueError(f"{source}: layout.pad is {values['pad']!r}; valid values are {', '.join(PAD_MODES)}: the "
                         f"file is damaged or was edited: restore it or train the model again")
    return Layout(**values)


def member_runs(run_dir: str | Path) -> list[str]:
    """The runs whose models are ``run_dir``'s: itself, or the member runs that an ensemble run's
    ``members.json`` names (in order), to be loaded as an ensemble."""
    path = Path(run_dir) / MEMBERS
    if (Path(run_dir) / CONFIG).exists() or not path.is_file():
        return [str(run_dir)]
    try:
        record = json.loads(path.read_text())
        runs, count = record["runs"], record["members"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not an ensemble run's record ({type(error).__name__}: {error}); train the run "
                         f"again") from None
    if isinstance(runs, list) and runs and len(runs) != count:
        raise FileNotFoundError(f"{run_dir} is an ensemble run of {count} with {len(runs)} member(s) finished: continue "
                                f"it with `proformer train --out {run_dir} --resume` and the same config and data")
    if not isinstance(runs, list) or not runs or not all(isinstance(name, str) and "/" not in name for name in runs):
        raise ValueError(f"{path}: 'runs' must list the member directories inside {run_dir}, got {runs!r}; train the "
                         f"run again")
    return [str(Path(run_dir) / name) for name in runs]


def read_run_info(run_dir: str | Path) -> RunInfo:
    """The :class:`RunInfo` of a run directory, with errors that name the file."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        if (Path(run_dir) / MEMBERS).is_file():
            raise ValueError(f"{run_dir} is an ensemble run: its models are the runs {MEMBERS} names; load it with "
                             f"proformer.load, which reads them as one ensemble")
        if (Path(run_dir) / "fold-0").is_dir() or (Path(run_dir) / "member-0").is_dir():
            raise FileNotFoundError(f"{run_dir} is an ensemble run that has not finished (no {MEMBERS}): continue it "
                                    f"with `proformer train --out {run_dir} --resume` and the same config and data")
        raise FileNotFoundError(f"{path} does not exist: expected a run directory written by proformer train")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); train the model again") from None
    return RunInfo.from_dict(values, source=str(path))


def write_run_model(run_dir: str | Path, state_dict: dict, info: RunInfo) -> None:
    """Write ``weights.safetensors`` (the state_dict's tensors) and ``config.json``.

    Each file is written beside its target, fsynced and renamed into place
    (:func:`proformer.io.atomic.atomic_write`), so a kill or a full disk leaves the previous best
    model whole, never a truncated one; a failed write is a :class:`RunWriteError` naming the
    file. A ``weights.pt`` of a run trained before safetensors is removed once the new weights
    are in place (it holds an older model, and readers prefer ``weights.safetensors``).
    """
    import torch  # noqa: F401 (safetensors.torch needs it)
    from safetensors.torch import save

    from .atomic import atomic_write

    run_dir = Path(run_dir)
    info.check(str(run_dir / CONFIG))  # never write a config.json that reading would refuse
    state = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    data = save(state, metadata={"format": "pt"})
    config = json.dumps(info.to_dict(), indent=2) + "\n"
    for name, payload, mode in ((WEIGHTS, data, "wb"), (CONFIG, config, "w")):
        try:
            with atomic_write(run_dir / name, mode) as handle:
                handle.write(payload)
        except OSError as error:
            size = len(payload) if mode == "wb" else len(payload.encode())
            raise write_error(run_dir / name, error, size, f"the best model's {name}",
                              "train again (with --resume to continue the run)") from None
    legacy = run_dir / LEGACY_WEIGHTS
    if legacy.is_file():
        legacy.unlink()


def weights_path(run_dir: str | Path) -> Path:
    """The weights file of a run: ``weights.safetensors``, else (a run trained before
    safetensors) ``weights.pt``; FileNotFoundError naming the run when it has neither."""
    run_dir = Path(run_dir)
    for name in (WEIGHTS, LEGACY_WEIGHTS):
        if (run_dir / name).is_file():
            return run_dir / name
    raise FileNotFoundError(f"{run_dir / WEIGHTS} does not exist: expected a run directory written by proformer "
                            f"train (config.json + {WEIGHTS})")


def read_weights(run_dir: str | Path, info: RunInfo | None = None) -> dict:
    """The state_dict of a run's weights (:func:`weights_path`); no code runs.

    ``weights.safetensors`` holds tensors only; a ``weights.pt`` is loaded with
    ``torch.load(weights_only=True)``, and one that is anything but a plain state_dict (a pickle
    that would build other objects or run code) is refused. With ``info`` (the run's
    ``config.json``) the tensors are checked against the model it describes (:func:`check_weights`).
    """
    path = weights_path(run_dir)
    state = _read_safetensors(path) if path.name == WEIGHTS else _read_legacy(path)
    if info is not None:
        check_weights(state, info, path, Path(run_dir) / CONFIG)
    return state


def _damaged(path: Path, error: BaseException) -> ValueError:
    first = (str(error).splitlines() or [type(error).__name__])[0][:200]
    return ValueError(f"{path} cannot be read ({first}); it is truncated or damaged: restore the file or train the "
                      f"model again")


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(path.read_bytes())
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _damaged(path, error) from None


def _read_legacy(path: Path) -> dict:
    import pickle

    import torch

    not_plain = (f"{path} is not a plain state_dict (tensors by name): it holds other objects, which proformer never "
                 f"loads (that could run code); restore the run's own weights file or train the model again")
    try:
        with warnings.catch_warnings():  # torch's note on a pickle protocol: nothing for a user to act on
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower() or "weights_only" in str(error):
            raise ValueError(not_plain) from None
        raise _damaged(path, error) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise _damaged(path, error) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ValueError(not_plain)
    return state


#: Model fields that change the shapes of the weights, tried one at a time to name the field of
#: ``config.json`` that disagrees with the weights.
_SHAPE_FIELDS = ("dim", "blocks", "kmer", "length", "n_targets", "readout", "ffn_mult", "kernel_size",
                 "stem_kernel", "stem_blocks")


def _shapes(model: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of a Proformer of ``model``, built on the meta device (no memory)."""
    import torch

    from ..model import Proformer

    with torch.device("meta"):
        built = Proformer(model)
    return {k: tuple(v.shape) for k, v in built.state_dict().items()}


def _shape(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"


def check_weights(state: dict, info: RunInfo, weights: str | Path, config: str | Path) -> None:
    """Refuse weights that are not those of the model ``config.json`` describes, in one line naming
    both files, the field of ``config.json`` that disagrees (when one field explains every
    difference: ``model.dim is 16 but the weights hold 32``) and the first tensor that differs;
    never a state_dict listing."""
    expected = _shapes(info.model)
    held = {k: tuple(v.shape) for k, v in state.items()}
    if held == expected:
        return
    mismatched = [k for k in expected if k in held and held[k] != expected[k]]
    unexpected = [k for k in held if k not in expected]
    missing = [k for k in expected if k not in held]
    if mismatched:
        key = mismatched[0]
        evidence = f"{key}: {_shape(held[key])} in the weights, {_shape(expected[key])} by the config"
    elif unexpected:
        evidence = f"the weights hold {unexpected[0]}, which the config's model lacks"
    else:
        evidence = f"the weights lack {missing[0]}, which the config's model has"
    others = len(mismatched) + len(unexpected) + len(missing) - 1
    if others:
        evidence += f"; {others} more differ"
    found = _explaining_field(info.model, held, mismatched + unexpected)
    if found:
        name, value = found
        what = f"model.{name} is {getattr(info.model, name)} but the weights hold {value} ({evidence})"
    else:
        what = evidence
    raise ValueError(f"{weights} does not match {config}: {what}; the files are from different runs: restore the "
                     f"run's own files or train the model again")


def _explaining_field(model: ModelConfig, held: dict, differing: list[str]) -> tuple[str, int] | None:
    """The one model field, and its value, whose change makes the model's shapes those held."""
    numbers: set[int] = set()
    for key in differing[:4]:
        for n in held[key]:
            numbers |= {n} | {n // d for d in (2, 6) if n % d == 0}
    indices = {int(k.split(".")[1]) for k in held if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    tries = 0
    for name in _SHAPE_FIELDS:
        current = getattr(model, name)
        if isinstance(current, bool) or not isinstance(current, int):
            continue
        values = {max(indices) + 1} if name == "blocks" and indices else numbers
        for value in sorted(values):
            if value == current or value < 1:
                continue
            tries += 1
            if tries > 60:
                return None
            try:
                candidate = dataclasses.replace(model, **{name: value})
                if _shapes(candidate) == held:
                    return name, value
            except (ValueError, RuntimeError):
                continue
    return None
