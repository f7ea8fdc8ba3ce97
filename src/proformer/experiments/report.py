"""A sweep's report: its study -> ``report.md`` and ``heatmap.png`` (``sweep_report``; the
figure through :mod:`proformer.plots`).

A row x column grid is laid out as the poster's tables (rows "dim / heads / blocks", columns
AvgPool and the numbers of expression heads), optionally with the poster's value and the
difference beside each cell. A grid of explicit cells (the ablation) is a list with slide 9's
columns: the official DREAM scores when a cell directory holds ``test_predictions.json`` and a
DREAM data directory is given, validation r^2 and rho otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write
from ..plots import heatmap_figure, save
from . import poster
from .study import COLLAPSE_RATIO, open_study, study_rows

COLLAPSED = "\u2020"  # dagger
TEST_PREDICTIONS = "test_predictions.json"


def sweep_report(out: str | Path, *, compare: str | None = None, dream_dir: str | Path | None = None,
                 storage: str | None = None) -> str:
    """Write ``out/report.md`` (and ``out/heatmap.png`` for a row x column grid); return the markdown.

    Parameters
    ----------
    out : path
        A sweep directory (``run_sweep``'s ``out``).
    compare : {"poster-yeast", "poster-atac", "ablation"} or None
        Put the poster's published value and the difference (ours - poster) beside each cell.
        Cells are matched to the poster by their dim, heads, blocks and readout.
    dream_dir : path or None
        The DREAM 2022 folder: cells whose directory holds ``test_predictions.json`` (written by
        ``proformer predict --format dream-json``) are scored on the public leaderboard.
    storage : str or None
        The sweep's ``storage`` (None: ``out/study.db``).

    Raises
    ------
    FileNotFoundError
        If there is no such study (``out/study.db``, or the study named after ``out`` in ``storage``).
    ValueError
        For an unknown ``compare``.
    """
    out = Path(out)
    if compare is not None and compare not in poster.COMPARISONS:
        raise ValueError(f"--compare {compare!r}: valid values are {', '.join(poster.COMPARISONS)}")
    study = open_study(out, storage, create=False)
    settings = study.user_attrs["settings"]
    cells = _aggregate(settings, study_rows(study, settings))
    lines = [f"# Sweep `{settings['grid']}`", ""]
    if settings.get("description"):
        lines += [settings["description"], ""]
    lines += _budget(settings, cells) + [""]
    if settings["rows"] and settings["columns"]:
        reference = poster.PEARSON_TABLES.get(compare) if compare != "ablation" else None
        lines += _grid_table(settings, cells, reference, compare)
        heatmap = _heatmap(settings, cells, reference, out / "heatmap.png", name=out.resolve().name)
        lines += ["", f"![best validation Pearson r per cell]({heatmap.name})"]
    else:
        lines += _list_table(out, settings, cells, compare, dream_dir)
    lines += ["", *_details(cells)]
    text = "\n".join(lines) + "\n"
    with atomic_write(out / "report.md") as handle:
        handle.write(text)
    return text


# -- gathering ---------------------------------------------------------------------------------


def _aggregate(settings: dict, rows: list[dict]) -> list[dict]:
    """One entry per grid cell (grid order): its config, folds done, mean/sd Pearson, collapse."""
    by_cell: dict[str, list[dict]] = {}
    for row in rows:
        by_cell.setdefault(row["cell"], []).append(row)
    cells = []
    for cell in settings["cells"]:
        found = by_cell.get(cell["id"], [])
        done = [r for r in found if r["status"] == "done"]
        entry = {**cell, "rows": found, "done": len(done), "failed": any(r["status"] == "failed" for r in found),
                 "config": found[0] if found else None}
        if done:
            pearson = np.array([r["val_pearson"] for r in done], dtype=float)
            entry.update(
                pearson=float(pearson.mean()),
                pearson_sd=float(pearson.std(ddof=1)) if len(done) > 1 else None,
                spearman=float(np.mean([r["val_spearman"] for r in done])),
                collapsed=sum(r["collapsed"] for r in done),
                seconds=float(sum(r["seconds"] for r in done)),
                best_epoch=[r["best_epoch"] for r in done],
            )
        cells.append(entry)
    return cells


def _budget(settings: dict, cells: list[dict]) -> list[str]:
    """The conventions ask CPU studies to state their budget: epochs, rows, time, machine."""
    folds = settings["folds"]
    units = len(cells) * folds
    done = [r for c in cells for r in c["rows"] if r["status"] == "done"]
    seconds = sum(r["seconds"] for r in done)
    n_train = sorted({r["n_train"] for r in done})
    n_valid = sorted({r["n_valid"] for r in done})
    if folds > 1:
        split = f"{folds}-fold cross-validation by sequence hash (mean and sd across folds)"
    else:
        splits = settings.get("splits") or []
        split = "split " + ", ".join(f"`data.split={s}`" for s in splits) if splits else "split: -"
    lines = [
        "## Budget",
        "",
        f"- grid: {len(cells)} cells ({settings['source']}), base preset `{settings['preset']}`"
        + (f", set {' '.join(f'`{s}`' for s in settings['set'])}" if settings["set"] else "")
        + (f", extra overrides {' '.join(f'`{s}`' for s in settings['overrides'])}" if settings["overrides"] else ""),
        f"- data: `{settings['data']}`, fraction {settings['data_fraction']:g}; {split}",
        f"- rows per run: {_span(n_train)} training, {_span(n_valid)} validation" if done else "- rows per run: -",
        f"- epochs: {settings['epochs']} per cell; the best validation Pearson r within them is kept",
        f"- finished: {len(done)} of {units} runs, {seconds / 3600:.2f} h of training"
        + (f" ({seconds / len(done):.0f} s per run on average)" if done else ""),
    ]
    machine = settings.get("machine")
    if machine:
        lines.append(f"- machine: {machine.get('cpus')} CPU(s), torch {machine.get('torch_threads')} thread(s), "
                     f"{machine.get('accelerator', 'cpu')}")
    return lines


def _span(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}-{values[-1]:,}"


def _reference_key(config: dict):
    return (config["dim"], config["heads"], config["blocks"], config["readout"])


def _ablation_key(config: dict):
    return (config["readout"], config["mask_ratio"] > 0, config["activation"])


# -- row x column grids ------------------------------------------------------------------------


def _cell_text(cell: dict, reference: dict | None) -> str:
    if not cell["done"]:
        return "failed" if cell["failed"] else "-"
    text = _number(cell["pearson"])
    if cell["pearson_sd"] is not None:
        text += f" ± {cell['pearson_sd']:.4f}"
    if cell["collapsed"]:
        text += COLLAPSED
    if reference is not None:
        ref = reference.get(_reference_key(cell["config"]))
        if ref is not None:
            text += f" ({ref:.4f}, {_signed(cell['pearson'] - ref)})"
    return text


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "nan"


def _signed(value: float) -> str:
    return f"{value:+.4f}" if math.isfinite(value) else "nan"


def _grid_table(settings: dict, cells: list[dict], reference: dict | None, compare: str | None) -> list[str]:
    at = {(c["row"], c["column"]): c for c in cells}
    folds = settings["folds"]
    what = f"mean ± sd over {folds} folds of the " if folds > 1 else ""
    lines = [f"## Best validation Pearson r ({what}best epoch within {settings['epochs']})", ""]
    if reference is not None:
        lines += [f"Each cell: ours (the poster's `{compare}` value, ours - poster).", ""]
    header = [settings["row_header"], *settings["columns"]]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in settings["rows"]:
        lines.append("| " + " | ".join([row] + [_cell_text(at[(row, col)], reference) if (row, col) in at else "-"
                                                for col in settings["columns"]]) + " |")
    lines += ["", _legend(folds)]
    if reference is not None:
        diffs = [c["pearson"] - reference[_reference_key(c["config"])] for c in cells
                 if c["done"] and _reference_key(c["config"]) in reference and math.isfinite(c["pearson"])]
        if diffs:
            summary = (f"Against the poster: {len(diffs)} cells compared, mean difference {np.mean(diffs):+.4f}, "
                       f"range {min(diffs):+.4f} to {max(diffs):+.4f}.")
            lines += ["", summary]
    return lines


def _legend(folds: int) -> str:
    scope = "in at least one fold " if folds > 1 else ""
    return (f"{COLLAPSED} collapsed: {scope}the best epoch's predictions were (nearly) constant (their standard "
            f"deviation below {COLLAPSE_RATIO:g} of the targets', or Pearson r undefined). "
            f"`-`: not run yet.")


def _heatmap(settings: dict, cells: list[dict], reference: dict | None, path: Path, name: str) -> Path:
    rows, columns = settings["rows"], settings["columns"]
    at = {(c["row"], c["column"]): c for c in cells}
    values = np.full((len(rows), len(columns)), np.nan)
    diffs = np.full_like(values, np.nan)
    marks = np.zeros(values.shape, dtype=bool)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            cell = at.get((row, col))
            if cell and cell["done"]:
                values[i, j], marks[i, j] = cell["pearson"], bool(cell["collapsed"])
                ref = reference.get(_reference_key(cell["config"])) if reference else None
                if ref is not None:
                    diffs[i, j] = cell["pearson"] - ref
    panels = [("best validation Pearson r", values, "viridis", None)]
    if reference is not None:
        limit = max(0.01, float(np.nanmax(np.abs(diffs)))) if np.isfinite(diffs).any() else 0.01
        panels.append(("ours - poster", diffs, "RdBu", limit))
    figure = heatmap_figure(panels, rows, columns, settings["row_header"],
                            f"{name}: sweep {settings['grid']} ({COLLAPSED} collapsed)", marks, COLLAPSED)
    return save(figure, path)


# -- explicit cells (the ablation) -------------------------------------------------------------


def _test_scores(out: Path, settings: dict, cell: dict, dream_dir) -> tuple | None:
    """(Score PearsonR^2, Score Spearman, r^2, rho) on the public leaderboard, or None."""
    if dream_dir is None or settings["folds"] > 1:
        return None
    path = out / "cells" / cell["id"] / TEST_PREDICTIONS
    if not path.exists():
        return None
    from ..score import load_predictions, score_public

    result = score_public(load_predictions(path), dream_dir)
    return (result.score_pearson_r2, result.score_spearman, result.pearson_r2_all, result.rho["all"])


def _list_table(out: Path, settings: dict, cells: list[dict], compare: str | None, dream_dir) -> list[str]:
    scored = {c["id"]: _test_scores(out, settings, c, dream_dir) for c in cells if c["done"]}
    any_test = any(v is not None for v in scored.values())
    reference = poster.ABLATION if compare == "ablation" else None
    pearson_ref = poster.PEARSON_TABLES.get(compare)
    header = ["cell", "configuration"]
    if any_test:
        header += list(poster.ABLATION_COLUMNS)
    header += ["validation r^2", "validation rho"]
    if reference is not None:
        header += [f"poster {name}" for name in poster.ABLATION_COLUMNS]
    if pearson_ref is not None:
        header += ["poster r", "ours - poster"]
    lines = ["## Results", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in cells:
        values = [cell["id"], cell.get("label") or " ".join(cell["overrides"])]
        if not cell["done"]:
            lines.append("| " + " | ".join(values + ["failed" if cell["failed"] else "-"] * (len(header) - 2)) + " |")
            continue
        if any_test:
            test = scored.get(cell["id"])
            values += [f"{v:.3f}" for v in test] if test else ["-"] * 4
        mark = COLLAPSED if cell["collapsed"] else ""
        values += [f"{cell['pearson'] ** 2:.3f}{mark}" if math.isfinite(cell["pearson"]) else f"nan{mark}",
                   f"{cell['spearman']:.3f}" if math.isfinite(cell["spearman"]) else "nan"]
        if reference is not None:
            ref = reference.get(_ablation_key(cell["config"]))
            values += [f"{v:.3f}" for v in ref] if ref else ["-"] * 4
        if pearson_ref is not None:
            ref = pearson_ref.get(_reference_key(cell["config"]))
            values += [f"{ref:.4f}", _signed(cell["pearson"] - ref)] if ref is not None else ["-", "-"]
        lines.append("| " + " | ".join(values) + " |")
    lines += ["", _legend(settings["folds"])]
    lines.append("")
    if any_test:
        lines.append(f"Test columns: the public leaderboard scored from each cell's `{TEST_PREDICTIONS}` with "
                     f"`proformer.score.score_public` (r^2 and rho over all public sequences).")
    else:
        why = "no DREAM data directory was given" if dream_dir is None else f"no cell directory holds {TEST_PREDICTIONS}"
        lines.append(f"Test-set scores (Score PearsonR^2, Score Spearman) are not shown: {why}. Only validation "
                     f"r^2 and rho are, which are not comparable with the poster's leaderboard columns. To add them: "
                     f"`proformer predict --model OUT/cells/ID --input test_sequences.txt --format dream-json "
                     f"--data-dir DREAM --out OUT/cells/ID/{TEST_PREDICTIONS}` and pass the DREAM folder.")
    return lines


def _details(cells: list[dict]) -> list[str]:
    lines = ["## Runs", "", "| cell | fold | best epoch | epochs run | val r | val rho | pred. std | seconds | status |",
             "|---|---|---|---|---|---|---|---|---|"]
    for cell in cells:
        for r in cell["rows"]:
            if r["status"] != "done":
                lines.append(f"| {r['cell']} | {r['fold']} | - | - | - | - | - | - | {r['status']}: {str(r.get('error', '')).replace('|', '/')} |")
                continue
            lines.append(f"| {r['cell']} | {r['fold']} | {r['best_epoch']} | {r['epochs_run']} | {_number(r['val_pearson'])}"
                         f"{COLLAPSED if r['collapsed'] else ''} | {_number(r['val_spearman'])} | "
                         f"{_number(r['val_prediction_std'])} | {r['seconds']:.0f} | done |")
    return lines
