"""Grids of runs: which cells a sweep trains, and with which overrides.

A grid is a base run preset, overrides shared by every cell, and its cells. Most grids are a
product of rows and columns (the poster's tables: rows "dim / heads / blocks", columns the
readout); an explicit list of cells also works (the ablation). Built-in grids are in
:data:`BUILTIN_GRIDS`; any other grid is a YAML file (schema in ``docs/sweep.md`` and
:func:`load_grid`).

Overrides are ``key=value`` strings exactly as ``--set`` takes them (``dim=64``,
``train.lr=1e-3``); a cell's full config is ``run_preset(preset)`` + the grid's ``set`` + the
cell's overrides + the caller's overrides.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import RunConfig, apply_overrides, load_run_config, parse_override, run_preset
from ..config.yaml import DuplicateKeyError, UniqueKeyLoader, load_yaml  # noqa: F401 (re-exported)
from . import poster


#: A cell id names a directory, ``OUT/cells/ID``: letters, digits, ``.``, ``_``, ``=`` and ``-``,
#: starting with a letter or digit (so never ``.``, ``..``, a hidden name, a path or an option).
CELL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]*")
CELL_ID_MAX = 100


def check_cell_id(cell_id, where: str = "") -> None:
    """Refuse a cell id that is not a plain directory name (``..``, ``a/b``, ``/abs``, ...)."""
    prefix = f"{where}: " if where else ""
    if not isinstance(cell_id, str) or not CELL_ID.fullmatch(cell_id) or len(cell_id) > CELL_ID_MAX:
        raise ValueError(
            f"{prefix}cell id {cell_id!r} is not a plain directory name (it names OUT/cells/ID): use letters, "
            f"digits, '.', '_', '=', '-', start with a letter or digit, at most {CELL_ID_MAX} characters "
            "(no '/', no '..', no absolute path)"
        )


@dataclass(frozen=True)
class Cell:
    """One training run of a grid.

    Attributes
    ----------
    id : str
        Unique within the grid; names the run directory ``OUT/cells/ID``.
    overrides : tuple of str
        The cell's own ``key=value`` overrides (row's, then column's).
    row, column : str or None
        Labels of the cell's row and column in a row x column grid (None for explicit cells).
    label : str or None
        A description for reports (explicit cells).
    """

    id: str
    overrides: tuple[str, ...]
    row: str | None = None
    column: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        check_cell_id(self.id)


@dataclass(frozen=True)
class Grid:
    """A named set of cells sharing a base recipe.

    Attributes
    ----------
    name : str
    preset : str
        Base run preset (``grid``, ``atac``, ``dream2022``).
    cells : tuple of Cell
    set : tuple of str
        Overrides applied to every cell before the cell's own.
    rows, columns : tuple of str
        Row and column labels in order (empty for a grid of explicit cells).
    row_header : str
        Header of the row-label column in reports, e.g. ``dim / heads / blocks``.
    source : str
        ``built-in`` or the YAML file the grid came from (for error messages).
    description : str
    """

    name: str
    preset: str
    cells: tuple[Cell, ...]
    set: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    row_header: str = "row"
    source: str = "built-in"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.cells:
            raise ValueError(f"{self.source}: grid {self.name!r} has no cells; a sweep needs at least one")

    def config(self, cell: Cell, base: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
        """The cell's full run config.

        Parameters
        ----------
        base : str or None
            A preset name or a run-config YAML path replacing the grid's ``preset``.
        overrides : sequence of str
            Applied last (the sweep's ``--set``).
        """
        if base is None:
            config = run_preset(self.preset)
        elif base.endswith((".yaml", ".yml")):
            config = load_run_config(base)
        else:
            config = run_preset(base)
        return apply_overrides(config, [*self.set, *cell.overrides, *overrides])

    def varied_keys(self) -> list[str]:
        """Full dotted keys (``model.dim``) that some cell overrides, in first-seen order."""
        keys: dict[str, None] = {}
        for cell in self.cells:
            for item in cell.overrides:
                keys[full_key(parse_override(item)[0])] = None
        return list(keys)


# -- keys and labels ---------------------------------------------------------------------------


def full_key(key: str) -> str:
    """``dim`` -> ``model.dim``, ``lr`` -> ``train.lr``; dotted keys are returned as they are.

    So that two spellings of one field are recognised as the same field.
    """
    if "." in key:
        return key
    config = RunConfig()
    for section in dataclasses.fields(config):
        names = {f.name for f in dataclasses.fields(getattr(config, section.name))}
        if key in names:
            return f"{section.name}.{key}"
    return key  # unknown: apply_overrides reports it with the list of valid keys


def _value_text(value) -> str:
    """A parsed value back to ``--set`` text (``true``, ``null``, ``1e-3`` stay parseable)."""
    return value if isinstance(value, str) else json.dumps(value)


def _override_list(entry, where: str) -> tuple[str, ...]:
    """A row/column/cell entry (list of ``k=v`` or a mapping ``{k: v}``) as ``k=v`` strings."""
    if isinstance(entry, dict):
        return tuple(f"{key}={_value_text(value)}" for key, value in entry.items())
    if isinstance(entry, str):
        entry = [entry]
    if not isinstance(entry, list) or not all(isinstance(item, str) and "=" in item for item in entry):
        raise ValueError(f"{where}: expected a list of key=value overrides (e.g. [dim=64, heads=2]) or a mapping "
                         f"(e.g. {{dim: 64, heads: 2}}), got {entry!r}")
    return tuple(entry)


def _slug(overrides: Iterable[str]) -> str:
    """``(dim=64, readout=pool)`` -> ``dim64-readoutpool``: a directory name readable in ls."""
    parts = []
    for item in overrides:
        key, value = parse_override(item)
        parts.append(key.split(".")[-1].replace("_", "") + re.sub(r"[^A-Za-z0-9.]+", "", _value_text(value)))
    return "-".join(parts) or "base"


def _values_label(overrides: Sequence[str]) -> str:
    """Row label: the values joined like the poster's columns, e.g. ``64 / 2 / 1``."""
    return " / ".join(_value_text(parse_override(item)[1]) for item in overrides)


def _column_label(overrides: Sequence[str]) -> str:
    """``readout=pool`` -> ``AvgPool``, ``readout=8`` -> ``H=8`` (the poster's headers); else ``k=v, ...``."""
    parsed = [parse_override(item) for item in overrides]
    if len(parsed) == 1 and full_key(parsed[0][0]) == "model.readout":
        return poster.readout_label(parsed[0][1])
    return ", ".join(f"{key}={_value_text(value)}" for key, value in parsed) or "base"


def _check_unique(cells: Sequence[Cell], source: str) -> None:
    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.id in seen:
            raise ValueError(f"{source}: two cells have the id {cell.id!r} ({list(seen[cell.id].overrides)} and "
                             f"{list(cell.overrides)}); give explicit cells distinct ids")
        seen[cell.id] = cell


# -- building grids ----------------------------------------------------------------------------


def product_grid(name: str, preset: str, rows: Sequence[Sequence[str]], columns: Sequence[Sequence[str]], *,
                 set: Sequence[str] = (), row_header: str | None = None, source: str = "built-in",
                 description: str = "") -> Grid:
    """Every row x every column; cells are ordered row by row (the poster's reading order)."""
    rows, columns = [tuple(r) for r in rows], [tuple(c) for c in columns]
    if row_header is None:
        row_header = " / ".join(parse_override(item)[0].split(".")[-1] for item in rows[0]) if rows else "row"
    row_labels = [_values_label(r) for r in rows]
    column_labels = [_column_label(c) for c in columns]
    cells = tuple(
        Cell(id=_slug(r + c), overrides=r + c, row=row_label, column=column_label)
        for r, row_label in zip(rows, row_labels)
        for c, column_label in zip(columns, column_labels)
    )
    _check_unique(cells, source)
    return Grid(name=name, preset=preset, cells=cells, set=tuple(set), rows=tuple(row_labels),
                columns=tuple(column_labels), row_header=row_header, source=source, description=description)


def _shape_rows(shapes) -> list[tuple[str, ...]]:
    return [(f"dim={d}", f"heads={h}", f"blocks={b}") for d, h, b in shapes]


def _readout_columns(readouts) -> list[tuple[str, ...]]:
    return [(f"readout={r}",) for r in readouts]


#: The challenge's training ideas (docs/training-ideas.md): each alone, then all together.
TRAINING_IDEAS = (
    ("baseline", "faithful recipe (Adam, warmup + cosine, MSE)", ("loss=mse",)),
    ("soft-bins", "soft classification over the 18 bins", ("loss=soft_bins",)),
    ("singleton", "singleton flag input", ("data.singleton_flag=true",)),
    ("rc-average", "forward / reverse-complement averaging", ("data.rc_average=true",)),
    ("plasmid", "plasmid padding", ("data.pad=plasmid",)),
    ("shift", "random shifts up to 10 nt", ("data.shift=10",)),
    ("adamw", "AdamW + one-cycle", ("train.optimizer=adamw", "train.weight_decay=0.01", "train.schedule=one_cycle")),
    ("lion", "Lion + one-cycle", ("train.optimizer=lion", "train.lr=0.0001", "train.weight_decay=0.1",
                                  "train.schedule=one_cycle")),
    ("all", "all together (AdamW + one-cycle)", ("loss=soft_bins", "data.singleton_flag=true", "data.rc_average=true",
                                                "data.pad=plasmid", "data.shift=10", "train.optimizer=adamw",
                                                "train.weight_decay=0.01", "train.schedule=one_cycle")),
)


def _training_ideas(seeds=(0, 1)) -> Grid:
    cells = tuple(
        Cell(id=f"{name}-seed{seed}", overrides=(*overrides, f"train.seed={seed}"), row=label, column=f"seed {seed}")
        for name, label, overrides in TRAINING_IDEAS
        for seed in seeds
    )
    return Grid(name="training-ideas", preset="grid", cells=cells, set=("data.split=hash:0.9", "train.batch_size=64"),
                rows=tuple(label for _, label, _ in TRAINING_IDEAS), columns=tuple(f"seed {s}" for s in seeds),
                row_header="option", description="the challenge's training ideas on the grid d64 model, each alone "
                                                 "and all together, 2 seeds, 90/10 hash split")


def _builtin_grids() -> dict[str, Grid]:
    header = "dim / heads / blocks"
    grids = [
        product_grid("poster-yeast", "grid", _shape_rows(poster.YEAST_SHAPES), _readout_columns(poster.READOUTS),
                     row_header=header,
                     description="slide 4: yeast promoters, best validation Pearson r within 20 epochs "
                                 "(the poster trained on 10 % of the training pairs: --data-fraction 0.1)"),
        product_grid("poster-atac", "atac", _shape_rows(poster.ATAC_SHAPES), _readout_columns(poster.READOUTS),
                     row_header=header, description="slide 6: GM12878 ATAC-seq, 80k training / 20k test windows"),
        product_grid("cpu-study", "grid",
                     _shape_rows([(d, h, b) for d, h in ((64, 2), (128, 4)) for b in (1, 2, 4, 8)]),
                     _readout_columns(("pool", 8, 32)),
                     set=("data.split=hash:0.9",), row_header=header,
                     description="CPU-sized reduction of slide 4 (24 cells) for train_sample.txt. Compare the "
                                 "pattern (which cells collapse, pooling vs heads), not absolute values: the "
                                 "poster trained on ~640k rows for 20 epochs."),
        _training_ideas(),
        Grid(name="ablation", preset="dream2022", description="slide 9: readout and mask-filling ablation of the final model",
             cells=(
                 Cell("pool-nomask", ("readout=pool", "mask_ratio=0"), label="global average pooling, no mask filling"),
                 Cell("mask-H1", ("readout=1",), label="mask filling, 1 expression head"),
                 Cell("mask-H32", ("readout=32",), label="mask filling, 32 expression heads"),
                 Cell("mask-H32-glu", ("readout=32", "activation=glu"), label="mask filling, 32 heads, GLU"),
             )),
    ]
    return {grid.name: grid for grid in grids}


BUILTIN_GRIDS: dict[str, Grid] = _builtin_grids()


# -- YAML grids --------------------------------------------------------------------------------

YAML_KEYS = ("name", "description", "preset", "set", "rows", "columns", "row_header", "cells")
CELL_KEYS = ("id", "set", "label")


def _line(node) -> int:
    return node.start_mark.line + 1


def load_grid(grid: str | Path | Grid) -> Grid:
    """A built-in grid by name, a :class:`Grid`, or a YAML grid file.

    YAML schema (every key but ``preset`` and ``rows``/``columns`` or ``cells`` is optional)::

        name: my-grid                  # default: the file name without .yaml
        description: free text
        preset: grid                   # base run preset: grid, atac or dream2022
        set: [train.lr=1e-3]           # overrides for every cell
        rows:                          # a row: a list of key=value, or a mapping
          - [dim=64, heads=2, blocks=1]
          - {dim: 128, heads: 4, blocks: 1}
        columns:
          - [readout=pool]
          - [readout=8]
        row_header: dim / heads / blocks   # default: the first row's keys
        # instead of rows and columns:
        cells:
          - {id: pool-nomask, set: [readout=pool, mask_ratio=0], label: pooling without mask filling}

    Raises
    ------
    ValueError
        Naming the file and line of an unknown key, a malformed entry or an override the run
        config rejects (every cell's config is built once here, so typos fail before training).
    """
    if isinstance(grid, Grid):
        return grid
    text = str(grid)
    if text in BUILTIN_GRIDS:
        return BUILTIN_GRIDS[text]
    path = Path(text)
    if not path.exists():
        hint = "" if text.endswith((".yaml", ".yml")) else f" and is not a built-in grid ({', '.join(BUILTIN_GRIDS)})"
        raise FileNotFoundError(f"grid {text!r}: the file does not exist{hint}")
    return _grid_from_yaml(path)


def _grid_from_yaml(path: Path) -> Grid:
    source = str(path)
    text = path.read_text()
    try:
        root = yaml.compose(text)
        values = load_yaml(text, source)
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML ({error})") from None
    if not isinstance(values, dict) or root is None:
        raise ValueError(f"{source}: expected a mapping with keys {', '.join(YAML_KEYS)}")
    nodes = {key.value: value for key, value in root.value}
    lines = {key.value: _line(key) for key, _ in root.value}
    for key in values:
        if key not in YAML_KEYS:
            raise ValueError(f"{source}:{lines.get(key, '?')}: unknown key {key!r}; valid keys: {', '.join(YAML_KEYS)}")
    if "preset" not in values:
        raise ValueError(f"{source}: no 'preset' (the base run preset, e.g. preset: grid)")
    preset = values["preset"]
    try:
        run_preset(preset)
    except ValueError as error:
        raise ValueError(f"{source}:{lines['preset']}: {error}") from None
    shared = _override_list(values.get("set") or [], f"{source}:{lines.get('set', '?')}: set")
    name = values.get("name") or path.stem
    has_product = "rows" in values or "columns" in values
    if has_product == ("cells" in values):
        raise ValueError(f"{source}: give either rows and columns, or cells (not both, not neither)")

    def entries(key: str) -> list[tuple[tuple[str, ...], int]]:
        items, node = values.get(key), nodes.get(key)
        if not isinstance(items, list) or not items:
            raise ValueError(f"{source}:{lines.get(key, '?')}: '{key}' must be a non-empty list")
        return [(_override_list(item, f"{source}:{_line(sub)}: {key}[{i}]"), _line(sub))
                for i, (item, sub) in enumerate(zip(items, node.value))]

    if has_product:
        rows, columns = entries("rows"), entries("columns")
        built = product_grid(name, preset, [r for r, _ in rows], [c for c, _ in columns], set=shared,
                             row_header=values.get("row_header"), source=source,
                             description=values.get("description", ""))
        # The line of each cell's row entry and column entry, for error messages.
        where = {cell.id: f"{source}:{rl}/{cl}" for cell, (rl, cl) in
                 zip(built.cells, [(r[1], c[1]) for r in rows for c in columns])}
    else:
        if not isinstance(values["cells"], list) or not values["cells"]:
            raise ValueError(f"{source}:{lines.get('cells', '?')}: 'cells' must be a non-empty list, e.g. "
                             "cells: [{id: a, set: [readout=pool]}]; a sweep needs at least one cell")
        cells, where = [], {}
        for i, (item, sub) in enumerate(zip(values["cells"], nodes["cells"].value)):
            at = f"{source}:{_line(sub)}"
            if not isinstance(item, dict) or "set" not in item:
                raise ValueError(f"{at}: cells[{i}] must be a mapping with 'set' (and optional 'id', 'label')")
            unknown = sorted(set(item) - set(CELL_KEYS))
            if unknown:
                raise ValueError(f"{at}: cells[{i}] has unknown key(s) {', '.join(map(str, unknown))}; valid: {', '.join(CELL_KEYS)}")
            overrides = _override_list(item["set"], f"{at}: cells[{i}].set")
            cell_id = str(item["id"]) if item.get("id") is not None else _slug(overrides)
            check_cell_id(cell_id, f"{at}: cells[{i}]")
            cell = Cell(id=cell_id, overrides=overrides, label=item.get("label"))
            cells.append(cell)
            where[cell.id] = at
        _check_unique(cells, source)
        built = Grid(name=name, preset=preset, cells=tuple(cells), set=shared, source=source,
                     description=values.get("description", ""))
    for cell in built.cells:
        try:
            built.config(cell)
        except ValueError as error:
            raise ValueError(f"{where[cell.id]}: cell {cell.id}: {error}") from None
    return built
