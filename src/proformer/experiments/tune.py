"""``proformer tune``: Optuna's sampler over a recipe's settings, maximising validation Pearson::

    OUT/study.db             the Optuna study (unless --storage names a database URL or a journal file)
    OUT/trials/trial-NNNN/   each trial's run directory (``proformer train``'s layout)
    OUT/best                 a link to the best trial's run directory (predict, evaluate, ism take it)
    OUT/report.md            the best settings beside the auto recipe's, every trial, the parameter
                             importances and OUT/history.png, the optimisation history

Every trial trains on the same rows and is validated on the same rows (the base config's split
and seed, which are not tuned), so their validation Pearson is comparable; the first trial is
the ``auto`` recipe's own settings, the baseline the report compares with. Trials are pruned
epoch by epoch through Optuna's Lightning integration (``optuna_integration``'s
``PyTorchLightningPruningCallback`` with a median pruner); with ``folds`` > 1 a trial is a K-fold
run, judged by the mean of its folds and not pruned. Any number of workers started with the
same command share the study (``--storage`` for several machines, as for ``proformer sweep``):
``trials`` is the study's total.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import yaml

from ..config import apply_overrides, load_run_config
from ..config.run import is_from_data
from .study import describe, open_study, quiet

__all__ = ["DEFAULT_SPACE", "load_space", "run_tune", "tune_report"]

#: The default search space (docs/tune.md): the small-data recipe's levers. Each key is a
#: ``--set`` key; ``low``/``high`` (``log`` for a log scale, ``step`` for integers) or ``choices``.
#: Every trial trains with AdamW, so ``train.weight_decay`` 0 is the auto recipe's Adam.
#: ``train.steps`` null is the auto rule's epochs (20, more for small data).
DEFAULT_SPACE = {
    "train.lr": {"low": 1e-4, "high": 3e-3, "log": True},
    "train.batch_size": {"choices": [32, 64, 128]},
    "dropout": {"low": 0.0, "high": 0.3},
    "train.weight_decay": {"low": 0.0, "high": 0.1},
    "dim": {"choices": [32, 64, 128]},
    "blocks": {"choices": [1, 2]},
    "stem": {"choices": ["kmer", "conv"]},
    "train.steps": {"choices": [None, 750, 1500, 3000]},
}
#: Set in every trial: decoupled weight decay, so the space can tune it.
TRIAL_SETTINGS = ("train.optimizer=adamw",)
BEST = "best"


def load_space(path: str | Path | None) -> dict:
    """The search space of ``--space FILE`` (YAML, keyed as :data:`DEFAULT_SPACE`), checked; None: the default."""
    if path is None:
        return DEFAULT_SPACE
    try:
        space = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"--space {path}: not YAML ({error})") from None
    if not isinstance(space, dict) or not space:
        raise ValueError(f"--space {path}: expected a mapping of --set keys to ranges, e.g. 'train.lr: {{low: 1.0e-4, "
                         f"high: 3.0e-3, log: true}}' or 'dim: {{choices: [32, 64]}}'")
    for key, spec in space.items():
        ok = isinstance(spec, dict) and (
            (set(spec) == {"choices"} and isinstance(spec["choices"], list) and spec["choices"])
            or ({"low", "high"} <= set(spec) <= {"low", "high", "log", "step"}
                and all(isinstance(spec[k], (int, float)) and not isinstance(spec[k], bool) for k in ("low", "high"))
                and spec["low"] < spec["high"]))
        if not ok:
            raise ValueError(f"--space {path}: {key}: {spec!r} is not a range ({{low, high}} with low < high, "
                             f"optionally log: true or step: N) nor {{choices: [...]}}")
    return space


def _suggest(trial, space: dict) -> dict:
    values = {}
    for key, spec in space.items():
        if "choices" in spec:
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif all(isinstance(spec[k], int) for k in ("low", "high")) and "step" in spec:
            values[key] = trial.suggest_int(key, spec["low"], spec["high"], step=spec["step"], log=spec.get("log", False))
        else:
            values[key] = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
    return values


def _auto_values(space: dict, base) -> dict | None:
    """The auto recipe's value of every key of ``space`` (None where the space cannot hold it)."""
    values = {}
    for key, spec in space.items():
        section, _, name = key.rpartition(".")
        holder = getattr(base, section or "model")
        value = getattr(holder, name, None)
        if key == "train.weight_decay" and base.train.optimizer == "adam":
            value = 0.0  # AdamW without decay is Adam
        value = int(value) if is_from_data(value) else value
        inside = value in spec["choices"] if "choices" in spec else (
            isinstance(value, (int, float)) and spec["low"] <= value <= spec["high"])
        if not inside:
            return None
        values[key] = value
    return values


def run_tune(data: str | Path, out: str | Path, trials: int, *, space: str | Path | None = None,
             storage: str | None = None, folds: int = 1, preset: str | None = None, overrides: list[str] = (),
             seed: int = 0, heartbeat: int = 60, progress: bool = True) -> dict:
    """Run trials of the study in ``out`` until it holds ``trials`` (this worker and any others).

    Parameters
    ----------
    data : path
        The prepared dataset (``proformer prepare``).
    trials : int
        The study's total number of trials, baseline included.
    space : path, optional
        A YAML search space (:func:`load_space`); default :data:`DEFAULT_SPACE`.
    folds : int
        1: one split (the base config's, ``auto``: at least 500 validation rows); K > 1: each
        trial a K-fold run (``data.split=folds:K``), judged by its folds' mean, not pruned.
    preset, overrides
        The base config (default: the ``auto`` recipe) and fixed ``--set`` settings.
    seed : int
        The sampler's seed.

    Returns
    -------
    dict
        :func:`tune_report`'s summary: ``best`` (number, value, params, run_dir), ``baseline``,
        ``trials`` by state, ``report`` (the report's path).
    """
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    from ..train import train

    out = Path(out)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials={trials!r}: must be an integer >= 1")
    chosen = load_space(space)
    fixed = [*TRIAL_SETTINGS, *overrides, f"data.path={data}"] + ([f"data.split=folds:{folds}"] if folds > 1 else [])
    base = load_run_config(preset=preset, overrides=fixed)  # a bad --set or preset: said before any training
    auto = _auto_values(chosen, load_run_config(preset=preset, overrides=list(overrides)))
    out.mkdir(parents=True, exist_ok=True)
    with quiet():
        study = open_study(out, storage, heartbeat)
        study.sampler = optuna.samplers.TPESampler(seed=seed)
        study.pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=3)
        if auto is not None and not study.trials:
            study.enqueue_trial(auto, user_attrs={"baseline": True})
    if auto is None:
        print(f"the auto recipe's settings are outside the search space: no baseline trial (give every key of the "
              f"space a range holding {preset or 'auto'}'s value to compare with it)", flush=True)

    def objective(trial) -> float:
        values = _suggest(trial, chosen)
        config = apply_overrides(base, [f"{key}={'null' if value is None else value}" for key, value in values.items()])
        run_dir = out / "trials" / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        print(f"trial {trial.number} ({len(study.trials)}/{trials}): "
              + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()),
              flush=True)
        started = time.monotonic()
        pruning = [] if folds > 1 else [PyTorchLightningPruningCallback(trial, monitor="val_pearson")]
        try:
            result = train(config, run_dir, progress=progress, callbacks=pruning)
        except optuna.TrialPruned:
            trial.set_user_attr("epochs_run", _epochs_run(run_dir))
            trial.set_user_attr("seconds", time.monotonic() - started)
            raise
        trial.set_user_attr("epochs_run", int(result["epochs_run"]))
        trial.set_user_attr("seconds", time.monotonic() - started)
        value = float(result["best"]["val_pearson"])
        if not math.isfinite(value):
            raise ValueError(f"trial {trial.number}: validation Pearson {value}")
        return value

    # The study's total (the queued baseline is one of them): a full study trains nothing more.
    left = trials - sum(t.state.name != "WAITING" for t in study.trials)
    if left > 0:
        with quiet():
            # MaxTrialsCallback: this worker stops when the others have filled the study too.
            study.optimize(objective, n_trials=left, catch=(ValueError, RuntimeError),
                           callbacks=[optuna.study.MaxTrialsCallback(trials, states=None)])
    return tune_report(out, storage)


def _epochs_run(run_dir: Path) -> int:
    """Epochs a run recorded in metrics.csv (a pruned trial's), counting folds' too."""
    files = [run_dir / "metrics.csv", *sorted(run_dir.glob("fold-*/metrics.csv"))]
    return sum(max(len(f.read_text().splitlines()) - 1, 0) for f in files if f.exists())


def tune_report(out: str | Path, storage: str | None = None) -> dict:
    """Write ``OUT/report.md`` and ``OUT/history.png`` from the study, link ``OUT/best`` to the best
    trial's run, and return the summary (see :func:`run_tune`)."""
    import optuna

    out = Path(out)
    with quiet():
        study = open_study(out, storage, create=False)
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not finished:
        raise RuntimeError(f"{describe(out, storage)}: no trial finished yet ({len(study.trials)} started); run "
                           f"proformer tune again")
    best = max(finished, key=lambda t: t.value)
    baseline = next((t for t in finished if t.user_attrs.get("baseline")), None)
    _link_best(out, Path(best.user_attrs["run_dir"]))
    states = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    importances = {}
    if len(finished) >= 2:
        with quiet():
            try:
                importances = optuna.importance.get_param_importances(study)
            except (RuntimeError, ValueError):  # every finished trial had the same settings
                importances = {}
    _history_plot(study, out / "history.png")
    lines = [f"# proformer tune: {out}", "",
             f"Best trial {best.number}: validation Pearson **{best.value:.4f}** ({best.user_attrs['run_dir']}, "
             f"linked as {out / BEST})."]
    if baseline is not None:
        lines.append(f"The auto recipe's settings (trial {baseline.number}, the same split): {baseline.value:.4f} "
                     f"({best.value - baseline.value:+.4f}).")
    lines += ["", "| setting | best | auto |", "|---|---|---|"]
    lines += [f"| `{key}` | {_text(value)} | {_text(baseline.params.get(key)) if baseline else ''} |"
              for key, value in best.params.items()]
    lines += ["", "Trials: " + ", ".join(f"{n} {state.lower()}" for state, n in sorted(states.items()))
              + f". Pruned trials stopped after {', '.join(str(t.user_attrs.get('epochs_run', '?')) for t in study.trials if t.state.name == 'PRUNED') or 'no'} epoch(s).",
              "", "| trial | state | validation Pearson | epochs | minutes | settings |", "|---|---|---|---|---|---|"]
    for t in study.trials:
        value = f"{t.value:.4f}" if t.value is not None else ""
        minutes = f"{t.user_attrs['seconds'] / 60:.1f}" if "seconds" in t.user_attrs else ""
        settings = ", ".join(f"{k}={_text(v)}" for k, v in t.params.items())
        lines.append(f"| {t.number} | {t.state.name.lower()} | {value} | {t.user_attrs.get('epochs_run', '')} | "
                     f"{minutes} | {settings} |")
    if importances:
        lines += ["", "Parameter importances (Optuna's fANOVA over the finished trials):", ""]
        lines += [f"- `{key}`: {value:.3f}" for key, value in importances.items()]
    lines += ["", "![optimisation history](history.png)", ""]
    from ..io.atomic import atomic_write

    with atomic_write(out / "report.md") as handle:
        handle.write("\n".join(lines))
    return {"best": {"number": best.number, "value": best.value, "params": best.params,
                     "run_dir": best.user_attrs["run_dir"]},
            "baseline": None if baseline is None else {"number": baseline.number, "value": baseline.value},
            "trials": states, "importances": importances, "report": str(out / "report.md")}


def _text(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "auto rule" if value is None else str(value)


def _link_best(out: Path, run_dir: Path) -> None:
    """``OUT/best`` -> the best trial's run directory (relative, replaced in one rename)."""
    link, temporary = out / BEST, out / f".{BEST}.{os.getpid()}"
    if temporary.is_symlink():
        temporary.unlink()
    os.symlink(os.path.relpath(run_dir.resolve(), out.resolve()), temporary)
    os.replace(temporary, link)


def _history_plot(study, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history

    from ..io.atomic import atomic_write

    with quiet():
        axes = plot_optimization_history(study)
    axes.set_ylabel("validation Pearson")
    with atomic_write(path, "wb") as handle:
        axes.figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")
    plt.close(axes.figure)

