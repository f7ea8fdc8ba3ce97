"""``proformer quickstart``: the whole path on built-in data in a few minutes, no download.

simulate a DREAM-like library (``data/synthetic.py``) -> prepare -> train a small Proformer ->
predict a held-out set -> score it -> a report directory::

    OUT/data/{train,test}.tsv     the library, DREAM format (sequence<TAB>expression)
    OUT/data/train/               the prepared training dataset
    OUT/run/                      the training run (config, metrics.csv, best model)
    OUT/test_predictions.tsv      held-out predictions (training units)
    OUT/report/metrics.json       every figure of the report
    OUT/report/learning_curve.png losses and validation correlations per epoch
    OUT/report/scatter.png        predicted vs measured on the held-out set
    OUT/report/report.md          what was done, the figures, the noise ceiling

With ``data=FILE`` the same flow runs on a user's DREAM-format file: a stable 10 % of its
sequences (by hash) is held out for the test.

Each step says on stderr what it does when it starts and how long it took when it ends
(``quickstart: preparing the training set... 0.4 s``), so the first quiet seconds never look like
a hang; training adds Lightning's progress bar. ``progress=False`` (``--no-progress``) prints none
of it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from .config import apply_overrides, run_preset
from .data.prepare import prepare
from .data.splits import string_hash
from .data.synthetic import noise_ceiling, simulate_library, write_tsv
from .plots import plot_learning_curve, plot_scatter
from .train.history import read_metrics
from .io.atomic import atomic_path, atomic_write
from .io.reader import read_sequences
from .metrics import pearson, spearman

# A small model that learns the synthetic grammar within the time budget on 2 CPU cores.
# Dropout is off, as it effectively was when the original trained (docs/model.md section 5).
QUICKSTART_OVERRIDES = (
    "model.dim=64", "model.heads=2", "model.blocks=1", "model.readout=8", "model.kmer=5", "model.dropout=0",
    "train.batch_size=128", "train.epochs=3", "train.lr=2e-3", "data.split=random:0.9",
)


def _split_file(source: Path, train_path: Path, test_path: Path, test_fraction: float = 0.1,
                chunk_rows: int = 100_000) -> None:
    """Hold out a stable fraction of a DREAM-format file by the hash of each sequence
    (:func:`proformer.data.splits.string_hash`, the hash behind ``data.split=hash:F``)."""
    rows = kept = 0
    with open(source) as handle, atomic_write(train_path) as train, atomic_write(test_path) as test:
        first_line = 1
        while lines := list(itertools.islice(handle, chunk_rows)):
            sequences = [line.split("\t", 1)[0].strip() for line in lines]
            try:
                held_out = string_hash(sequences) < test_fraction
            except ValueError as error:
                bad = next(i for i, s in enumerate(sequences) if not _encodes(s))
                raise ValueError(f"{source}:{first_line + bad}: {error}") from None
            for line, test_row in zip(lines, held_out):
                (test if test_row else train).write(line)
                kept += not test_row and bool(line.strip())
            first_line += len(lines)
            rows += sum(bool(line.strip()) for line in lines)
        if rows == 0:
            raise ValueError(f"{source}: the file is empty (no sequence<TAB>expression rows); "
                             f"give a DREAM-format file with one sequence and its expression per line")
        if kept == 0:
            raise ValueError(f"{source}: all {rows} row(s) fell in the held-out {test_fraction:.0%}; "
                             f"the file is too small to train on (give more rows)")


def _encodes(sequence: str) -> bool:
    try:
        string_hash([sequence])
    except ValueError:
        return False
    return True


def _read_tsv(path: Path) -> tuple[list[str], np.ndarray]:
    """Sequences and values of a ``sequence<TAB>value`` file (the one sequence-file reader)."""
    sequences: list[str] = []
    values: list[np.ndarray] = [np.zeros(0)]
    for chunk in read_sequences(path, values=True, allow_mask=True):  # what predict accepted
        sequences += chunk.sequences
        values.append(chunk.values)
    return sequences, np.concatenate(values)


@contextlib.contextmanager
def _step(what: str, enabled: bool) -> Iterator[None]:
    """``quickstart: WHAT... 1.2 s`` on stderr: the message when the step starts (so a log shows
    what is running), its time when it ends; an error starts on a line of its own."""
    if enabled:
        print(f"quickstart: {what}...", end="", file=sys.stderr, flush=True)
    began = time.monotonic()
    try:
        yield
    except BaseException:
        if enabled:
            print(file=sys.stderr, flush=True)
        raise
    if enabled:
        print(f" {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)


def quickstart(
    out: str | Path = "proformer-quickstart",
    data: str | Path | None = None,
    n_train: int = 20_000,
    n_test: int = 2_000,
    seed: int = 0,
    overrides: tuple[str, ...] | list[str] = (),
    progress: bool = True,
) -> dict:
    """Run simulate/prepare -> train -> predict -> score and write a report.

    Parameters
    ----------
    out : path
        Output directory (replaced if it holds an earlier quickstart).
    data : path, optional
        A DREAM-format file (``sequence<TAB>expression``) to use instead of the built-in library.
    n_train, n_test : int
        Size of the simulated training and held-out libraries.
    overrides : list of "key=value"
        Applied after the quickstart's own settings (``--set`` on the CLI).
    progress : bool
        Say on stderr what each step does and how long it took, and show the training progress bar.

    Returns
    -------
    dict
        The contents of ``report/metrics.json``.
    """
    out = Path(out)
    if out.exists() and (out / "report" / "metrics.json").exists():
        shutil.rmtree(out)
    for sub in ("data", "report"):  # first: an unusable --out fails before minutes of work
        (out / sub).mkdir(parents=True, exist_ok=True)

    from .predict import predict
    from .train import train
    timings: dict[str, float] = {}
    start = time.time()

    train_tsv, test_tsv = out / "data" / "train.tsv", out / "data" / "test.tsv"
    ceiling = None
    if data is None:
        with _step(f"simulating {n_train:,} training and {n_test:,} held-out sequences", progress):
            library = simulate_library(n_train, seed=seed)
            held_out = simulate_library(n_test, seed=seed + 1)
            for table, path in ((library, train_tsv), (held_out, test_tsv)):
                with atomic_path(path) as temporary:
                    write_tsv(table, temporary)
            ceiling = noise_ceiling(held_out)
        source = "built-in DREAM-like library (docs/synthetic-grammar.md)"
    else:
        with _step(f"holding out 10 % of {data} by sequence hash", progress):
            _split_file(Path(data), train_tsv, test_tsv)
        source = str(Path(data).resolve())
    timings["data"] = time.time() - start

    mark = time.time()
    with _step("preparing the training set", progress):
        meta = prepare(train_tsv, out / "data" / "train", progress=False)
    timings["prepare"] = time.time() - mark

    config = apply_overrides(run_preset("grid"), list(QUICKSTART_OVERRIDES) + [f"data.path={out / 'data' / 'train'}", f"train.seed={seed}"])
    config = apply_overrides(config, list(overrides))
    mark = time.time()
    if (out / "run").exists():
        shutil.rmtree(out / "run")
    if progress:
        print(f"quickstart: training on {meta['rows_kept']:,} sequences for {config.train.epochs} epoch(s) "
              f"(dim {config.model.dim}, {config.model.blocks} block(s))", file=sys.stderr, flush=True)
    result = train(config, out / "run", progress=progress)
    timings["train"] = time.time() - mark

    mark = time.time()
    predictions_path = out / "test_predictions.tsv"
    with _step("predicting the held-out set", progress):
        predict(out / "run", test_tsv, predictions_path, standardized=False, progress=False)  # training units
        _, predicted = _read_tsv(predictions_path)
        sequences, measured = _read_tsv(test_tsv)
    timings["predict"] = time.time() - mark

    r, rho = pearson(predicted, measured), spearman(predicted, measured)
    metrics = {
        "source": source,
        "n_train_rows": meta["rows_kept"],
        "n_validation": result["n_valid"],
        "n_test": len(sequences),
        "model": config.model.to_dict(),
        "epochs": config.train.epochs,
        "best_epoch": result["best"]["epoch"] + 1,
        "validation_pearson": result["best"]["val_pearson"],
        "test_pearson": r,
        "test_spearman": rho,
        "noise_ceiling": ceiling,
        "fraction_of_ceiling": r / ceiling if ceiling else None,
        "seconds": {k: round(v, 1) for k, v in timings.items()} | {"total": round(time.time() - start, 1)},
    }
    report, name = out / "report", out.resolve().name
    with _step(f"writing {report}", progress):
        with atomic_write(report / "metrics.json") as handle:
            handle.write(json.dumps(metrics, indent=2) + "\n")
        plot_learning_curve(read_metrics(out / "run" / "metrics.csv"), report / "learning_curve.png", name)
        plot_scatter(predicted, measured, report / "scatter.png", f"{name}: held-out set",
                     measured_label="measured expression (mean sort bin)", predicted_label="predicted expression")
        with atomic_write(report / "report.md") as handle:
            handle.write(_report_markdown(metrics))
    return metrics


def _report_markdown(m: dict) -> str:
    model = m["model"]
    lines = [
        "# proformer quickstart report",
        "",
        f"Data: {m['source']}. {m['n_train_rows']:,} training rows "
        f"({m['n_validation']:,} of them held for validation), {m['n_test']:,} held-out test sequences.",
        "",
        f"Model: Proformer, k-mer {model['kmer']}, dim {model['dim']}, {model['heads']} heads, "
        f"{model['blocks']} block(s), readout {model['readout']}, mask ratio {model['mask_ratio']}; "
        f"{m['epochs']} epochs, best validation Pearson at epoch {m['best_epoch']}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| validation Pearson r (best epoch) | {m['validation_pearson']:.4f} |",
        f"| held-out Pearson r | {m['test_pearson']:.4f} |",
        f"| held-out Spearman rho | {m['test_spearman']:.4f} |",
    ]
    if m["noise_ceiling"] is not None:
        lines += [
            f"| noise ceiling (r of the noiseless activity with the measurement) | {m['noise_ceiling']:.4f} |",
            f"| held-out r as a fraction of the ceiling | {m['fraction_of_ceiling']:.1%} |",
        ]
    lines += [f"| wall time (s) | {m['seconds']['total']:.0f} |", ""]
    if m["noise_ceiling"] is not None:
        lines += [
            "The noise ceiling is the best correlation any model can reach here: the measured",
            "expression is the noiseless grammar output plus cell-sorting noise, so even a perfect",
            f"model correlates at only r = {m['noise_ceiling']:.3f} with it. This model got "
            f"{m['fraction_of_ceiling']:.0%} of the way.",
            "To close the gap, train longer and on more sequences (the training time grows with both):",
            "`proformer quickstart --set train.epochs=20 --n 100000`.",
        ]
    else:
        lines += ["The noise ceiling of a user's data is unknown without replicate measurements."]
    lines += ["", "![learning curve](learning_curve.png)", "", "![held-out predictions](scatter.png)", ""]
    return "\n".join(lines)
