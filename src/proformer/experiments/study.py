"""A sweep's Optuna study: where it is stored, its cells as trials, and its results::

    OUT/study.db              the study (unless --storage names another database or a journal file)
    OUT/results.csv           its export, a row per finished or failed cell (and fold), by each worker as it ends
    OUT/cells/ID[/fold-K]/    each cell's run directory (``proformer train``'s layout)
    OUT/data/                 data-fraction and fold subsets, written once, read by every cell

The study is named after the sweep directory (``runs/yeast`` -> ``yeast``); its user attribute
``settings`` holds what the sweep was started with. Each (cell, fold) is a trial whose user
attributes hold the cell's id, fold, overrides and model columns from the start and its metrics
once trained: a ``COMPLETE`` trial is a finished cell, a ``FAIL`` trial a failed one (``error``).
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

from ..io.atomic import atomic_write

STUDY_FILE = "study.db"
RESULTS = "results.csv"
#: Times a cell whose worker went silent (killed) is queued again before it stays failed: an
#: out-of-memory kill would otherwise take down every worker in turn.
RETRIES = 2

#: Model fields written for every cell, whether or not the grid varies them.
MODEL_COLUMNS = ("dim", "heads", "blocks", "readout", "activation", "mask_ratio", "kmer", "block_order", "head_dim")
ID_COLUMNS = ("cell", "fold", "row", "column")
METRIC_COLUMNS = (
    "best_epoch", "epochs_run", "val_pearson", "val_spearman", "val_mse", "val_prediction_std",
    "n_train", "n_valid", "seconds", "collapsed", "status", "error",
)

#: A best epoch whose predictions vary less than this fraction of the targets' standard
#: deviation is a collapsed (near-constant) predictor. The poster's collapsed cells have
#: Pearson r 0.01-0.09; a model that learned anything spreads its predictions far more than 5 %.
COLLAPSE_RATIO = 0.05


def columns_for(extra_keys: Iterable[str]) -> list[str]:
    """results.csv header: ids, the model columns, other keys the grid varies, metrics."""
    extra = [key for key in extra_keys if not (key.startswith("model.") and key[6:] in MODEL_COLUMNS)]
    extra = [key.removeprefix("model.") for key in extra]
    return [*ID_COLUMNS, *MODEL_COLUMNS, *extra, *METRIC_COLUMNS]


def is_collapsed(val_pearson, val_prediction_std, target_std: float = 1.0, ratio: float = COLLAPSE_RATIO) -> bool:
    """True when the best epoch predicts (almost) one value: Pearson undefined, or the spread of
    the predictions below ``ratio`` times the targets' standard deviation (same units)."""
    try:
        r, spread = float(val_pearson), float(val_prediction_std)
    except (TypeError, ValueError):
        return True
    return not math.isfinite(r) or not math.isfinite(spread) or spread < ratio * target_std


# -- storage -----------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet():
    """Optuna's log lines and warnings about its experimental heartbeat off, for the block only
    (a sweep prints its own lines)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def describe(out: str | Path, storage: str | None) -> str:
    """Where the study is, for messages (a URL without its password)."""
    if storage is None:
        return str(Path(out) / STUDY_FILE)
    if "://" in storage:
        from sqlalchemy.engine import make_url

        storage = make_url(storage).render_as_string(hide_password=True)
    return f"study {Path(out).resolve().name} in {storage}"


def open_study(out: str | Path, storage: str | None = None, heartbeat: int | None = None, create: bool = True):
    """Create (``create=False``: only load) the study of the sweep in ``out``, named after its folder.

    Parameters
    ----------
    storage : str or None
        None: the SQLite file ``out/study.db``; a path ending ``.log``: Optuna's journal file;
        otherwise an SQLAlchemy URL (``postgresql://...``).
    heartbeat : int or None
        Seconds between a worker's heartbeats: a running trial silent for four times as long is
        failed by the next worker that looks and queued again (at most :data:`RETRIES` times).
    """
    import optuna

    name, where = Path(out).resolve().name, describe(out, storage)
    missing = FileNotFoundError(f"{where} does not exist: {out} is not a sweep (a study is named after its sweep "
                                f"directory; run proformer sweep --out {out} first)")
    journal = storage is not None and "://" not in storage and storage.endswith(".log")
    if not create and (journal or storage is None) and not Path(storage if journal else Path(out) / STUDY_FILE).exists():
        raise missing
    if journal:
        store = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    else:
        store = _rdb(storage or f"sqlite:///{Path(out).resolve() / STUDY_FILE}", heartbeat, where)
    if create:
        return optuna.create_study(study_name=name, storage=store, direction="maximize", load_if_exists=True)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        raise missing from None


def _rdb(url: str, heartbeat: int | None, where: str):
    import optuna
    import sqlalchemy

    sqlite = url.startswith("sqlite:")
    # SQLAlchemy 2.0 reads postgresql:// as psycopg2, 2.1 as psycopg 3: the postgres extra's.
    url = "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url
    # pysqlite opens no transaction for a SELECT, so Optuna's pop of a waiting trial (read its
    # state, then write RUNNING) is not atomic and two workers can take one cell (Optuna issue
    # #4002). With the driver's transactions off and each one opened BEGIN IMMEDIATE, every
    # read-then-write is one transaction; the timeout lets a worker wait its turn.
    kwargs = {"connect_args": {"timeout": 600, "isolation_level": None}} if sqlite else {}
    for attempt in range(6):
        try:
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES) if heartbeat else None
            store = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat,
                                               grace_period=4 * heartbeat if heartbeat else None,
                                               heartbeat_stale_trial_callback=retry)
            break
        except ImportError as error:
            raise ImportError(f"{where}: {error} (PostgreSQL: pip install 'proformer[postgres]')") from None
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
            # Workers started together on a new database race to create its tables: the losers retry.
            if attempt == 5:
                raise RuntimeError(f"{where}: cannot open the study's storage: {error}") from None
            time.sleep(0.2 * (attempt + 1))
    if sqlite:
        sqlalchemy.event.listen(store.engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return store


# -- cells as trials ---------------------------------------------------------------------------


def _key(attrs: dict) -> tuple:
    return attrs.get("cell"), attrs.get("fold")


def _trials(study, *states: str) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=tuple(TrialState[state] for state in states) or None)


def enqueue(study, units: Iterable[dict]) -> None:
    """Queue a trial for every unit (a cell and fold's user attributes) that has none waiting,
    running or finished: on a new study every cell, on a rerun the failed ones."""
    live = {_key(trial.user_attrs) for trial in _trials(study, "WAITING", "RUNNING", "COMPLETE")}
    for attrs in units:
        if _key(attrs) not in live:
            study.enqueue_trial({}, user_attrs=attrs)


def taken(study, trial) -> bool:
    """True when the unit of ``trial`` is finished, or queued in a trial numbered before it.

    Two workers starting together may both queue a unit. Optuna hands each waiting trial to one
    worker only, so the unit's first live trial is trained and later copies are skipped.
    """
    return any(_key(other.user_attrs) == _key(trial.user_attrs) and other.number != trial.number
               and (other.number < trial.number or other.state.name == "COMPLETE")
               for other in _trials(study, "WAITING", "RUNNING", "COMPLETE"))


def work(study, objective, catch: tuple, heartbeat: int | None) -> None:
    """Run ``objective`` on waiting trials until none waits or runs anywhere.

    While other workers train the last cells, wait (looking every second): when one of them
    dies, Optuna fails its silent trial and queues it again, and it is trained here. Journal
    storage has no heartbeat (``heartbeat`` None), so the worker ends instead.
    """
    import optuna

    others = False  # another worker's trial was running at the last look
    while True:
        states = {trial.state.name for trial in _trials(study, "WAITING", "RUNNING")}
        if "WAITING" in states:
            others = "RUNNING" in states
            study.optimize(objective, n_trials=1, catch=catch)
            continue
        if not heartbeat or not (others or "RUNNING" in states):
            return
        # Optuna fails a dead worker's trial, then queues it again: a worker that looks in between
        # sees neither, so it ends only when a second look finds nothing either.
        others = "RUNNING" in states
        time.sleep(1)
        optuna.storages.fail_stale_trials(study)


def study_rows(study, settings: dict) -> list[dict]:
    """One row per (cell, fold) that finished or failed, in the grid's order.

    A finished trial wins over failed ones; otherwise the unit's latest trial decides, so a cell
    being retried has no row (the report shows ``-``).
    """
    latest: dict[tuple, dict] = {}
    for trial in sorted(_trials(study), key=lambda t: t.number):
        key, state = _key(trial.user_attrs), trial.state.name
        if key[0] is None or state == "PRUNED" or latest.get(key, {}).get("status") == "done":
            continue
        latest[key] = {"error": "", **trial.user_attrs, "status": {"COMPLETE": "done", "FAIL": "failed"}.get(state)}
        if state == "FAIL" and not latest[key]["error"]:
            latest[key]["error"] = "its worker stopped (killed, or lost the storage) before the cell finished"
    order = [(cell["id"], fold) for cell in settings["cells"] for fold in range(settings["folds"])]
    return [latest[key] for key in order if key in latest and latest[key]["status"]]


def read_results(out: str | Path, storage: str | None = None) -> list[dict]:
    """The rows of the sweep in ``out`` (:func:`study_rows` of its study), for scripts."""
    study = open_study(out, storage, create=False)
    return study_rows(study, study.user_attrs["settings"])


def write_results(out: Path, rows: list[dict], columns: list[str]) -> Path:
    """Write ``out/results.csv`` (the study's rows) atomically."""
    path = Path(out) / RESULTS
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def check_settings(study, settings: dict, identity: Iterable[str], where: str) -> None:
    """Record ``settings`` in a new study; refuse a study started with other ones."""
    previous = study.user_attrs.get("settings")
    if previous is None:
        study.set_user_attr("settings", settings)
        return
    for key in identity:
        if previous.get(key) != settings[key]:
            was, now = previous.get(key), settings[key]
            if key == "cells":
                was, now = f"{len(was or [])} cells", f"{len(now)} cells (or other overrides)"
            raise ValueError(f"{where}: this sweep was started with {key}={was!r}, now {key}={now!r}; "
                             f"rerun with the same settings to resume it, or use another --out")
