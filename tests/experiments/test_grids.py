"""Tests of :mod:`proformer.experiments.grids`."""

from __future__ import annotations

import json
import textwrap

import pytest

from proformer.config import load_run_config
from proformer.experiments import poster
from proformer.experiments.grids import Cell, Grid, load_grid, product_grid
from proformer.experiments.sweep import run_sweep


@pytest.mark.parametrize("cell_id", ["..", ".", "a/b", "/tmp/evil", "../up", ".hidden", "-rf", "a\\b", "x" * 101])
def test_sweep_refuses_path_like_cell_ids(tmp_path, cell_id):
    path = tmp_path / "grid.yaml"
    path.write_text(f"preset: grid\ncells:\n  - {{id: a, set: [readout=pool]}}\n  - {{id: {json.dumps(cell_id)}, set: [readout=8]}}\n")
    with pytest.raises(ValueError, match=r"grid\.yaml:4: cells\[1\]: cell id .* is not a plain directory name"):
        load_grid(path)
    with pytest.raises(ValueError, match="is not a plain directory name"):
        run_sweep(str(path), None, tmp_path / "out", dry_run=True)
    with pytest.raises(ValueError, match="is not a plain directory name"):  # grids built in Python too
        Grid(name="g", preset="grid", cells=(Cell(id=cell_id, overrides=("readout=8",)),))
    assert not (tmp_path / "out").exists()


def test_sweep_accepts_plain_ids_and_builtin_slugs(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("preset: grid\ncells:\n  - {id: lr1e-3_a.b=c, set: [readout=pool]}\n  - {set: [data.split=hash:0.8]}\n")
    assert [c.id for c in load_grid(path).cells] == ["lr1e-3_a.b=c", "splithash0.8"]
    assert product_grid("g", "grid", [("dim=64",)], [("readout=pool",)]).cells[0].id == "dim64-readoutpool"


def test_sweep_with_no_cells_is_a_clear_error(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("preset: grid\ncells: []\n")
    with pytest.raises(ValueError, match=r"grid\.yaml:2: 'cells' must be a non-empty list"):
        run_sweep(str(path), None, tmp_path / "out", dry_run=True)
    with pytest.raises(ValueError, match="has no cells"):
        Grid(name="g", preset="grid", cells=())


@pytest.mark.parametrize(
    "text, line, key, first",
    [
        ("preset: grid\ncells:\n  - {id: a, set: [readout=pool]}\npreset: atac\n", 4, "preset", 1),
        ("preset: grid\nrows:\n  - {dim: 64, dim: 128}\ncolumns:\n  - [readout=8]\n", 3, "dim", 3),
        ("preset: grid\ncells:\n  - id: a\n    set: [readout=pool]\n    id: b\n", 5, "id", 3),
    ],
)
def test_duplicate_yaml_keys_in_a_sweep_grid_are_an_error_naming_the_key(tmp_path, text, line, key, first):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"grid\.yaml:{line}: duplicate key '{key}' \(first given on line {first}\)"):
        load_grid(path)


@pytest.mark.parametrize("name, table, preset", [("poster-yeast", poster.YEAST_PEARSON, "grid"),
                                                  ("poster-atac", poster.ATAC_PEARSON, "atac")])
def test_poster_grids_are_the_poster_rows_by_readouts(name, table, preset):
    cells = run_sweep(name, None, "unused", dry_run=True)
    keys = [(c["config"].model.dim, c["config"].model.heads, c["config"].model.blocks, c["config"].model.readout)
            for c in cells]
    assert keys == list(table)  # the poster's rows in order, each with its six readouts in order
    assert load_grid(name).columns == ("AvgPool", "H=1", "H=8", "H=16", "H=32", "H=64")
    assert load_grid(name).rows[0] == "64 / 2 / 1" and load_grid(name).preset == preset
    config = cells[0]["config"]
    assert (config.model.kmer, config.model.mask_ratio, config.train.lr, config.train.batch_size) == (5, 0.05, 1e-3, 512)
    assert config.train.schedule == "warmup_cosine" and config.train.epochs == 20


def test_yaml_grid_rows_columns_and_cells(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent("""\
        preset: atac
        set: [train.lr=5e-4]
        rows:
          - [dim=64, heads=2, blocks=1]
          - {dim: 128, heads: 4, blocks: 2}
        columns:
          - [readout=pool, mask_ratio=0]
          - [readout=16]
        """))
    grid = load_grid(path)
    assert grid.name == "mine" and grid.rows == ("64 / 2 / 1", "128 / 4 / 2")
    assert grid.columns == ("readout=pool, mask_ratio=0", "H=16") and len(grid.cells) == 4
    config = grid.config(grid.cells[3])
    assert (config.model.dim, config.model.blocks, config.model.readout, config.train.lr) == (128, 2, 16, 5e-4)
    assert config.data.split == "random:0.8"  # the atac preset

    path.write_text("preset: dream2022\ncells:\n  - {id: a, set: [readout=pool]}\n  - {set: [readout=4, activation=glu]}\n")
    grid = load_grid(path)
    assert [c.id for c in grid.cells] == ["a", "readout4-activationglu"]


def test_yaml_grid_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("preset: grid\nrows:\n  - [dim=64]\ncolums:\n  - [readout=8]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml:4: unknown key 'colums'; valid keys: .*columns"):
        load_grid(path)
    path.write_text("preset: grid\nrows:\n  - [dim=64]\n  - [dimm=128]\ncolumns:\n  - [readout=8]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml:4/6: cell .*unknown key 'dimm'"):
        load_grid(path)
    path.write_text("preset: grid\ncells:\n  - {id: x, set: [readout=8], lable: typo}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml:3: cells\[0\] has unknown key\(s\) lable"):
        load_grid(path)
    with pytest.raises(FileNotFoundError, match="not a built-in grid"):
        load_grid("poster-yaest")


def test_proformer_plus_is_the_grid_model_with_what_the_study_chose():
    plus, grid = load_run_config(preset="proformer-plus"), load_run_config(preset="grid")
    assert plus.model == grid.model and plus.data == grid.data
    assert (plus.train.optimizer, plus.train.weight_decay, plus.train.schedule) == ("adamw", 0.01, "one_cycle")
    from proformer.experiments.grids import TRAINING_IDEAS

    chosen = dict((name, overrides) for name, _, overrides in TRAINING_IDEAS)["adamw"]
    assert load_run_config(preset="grid", overrides=list(chosen)).train == plus.train
