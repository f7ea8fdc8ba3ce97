"""Sweeps: the built-in grids, YAML grids, resumable training of cells, and reports."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers import planted_tsv, read_csv

from proformer.data.dataset import Dataset
from proformer.data.splits import split_indices
from proformer.data.prepare import prepare
from proformer.experiments import load_grid, poster, run_sweep, sweep_report
from proformer.experiments.results import columns_for, write_results, write_settings
from proformer.experiments.subsets import fraction_rows, sweep_datasets
from proformer.experiments.sweep import sweep_settings

LENGTH = 12

# A tiny recipe: every cell trains in about a second on a few hundred rows.
TINY_SET = [f"length={LENGTH}", "dim=8", "heads=1", "blocks=1", "kmer=3", "dropout=0", "train.batch_size=64",
            "data.split=hash:0.8", "train.lr=3e-3", "train.accelerator=cpu"]


def tiny_grid_yaml(path, columns=("[readout=pool]", "[readout=2]")):
    body = textwrap.dedent(f"""\
        name: tiny
        preset: grid
        set: [{", ".join(TINY_SET)}]
        rows:
          - [blocks=1]
        columns:
        """) + "".join(f"  - {c}\n" for c in columns)
    path.write_text(body)
    return path


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """400 rows of LENGTH nt whose target counts G and C, with noise: learnable in two epochs."""
    root = tmp_path_factory.mktemp("sweepdata")
    planted_tsv(root / "tiny.tsv", n=400, length=LENGTH, rule=lambda s: s.count("G") + 0.5 * s.count("C"),
                noise=0.3, seed=1, digits=4)
    prepare(root / "tiny.tsv", root / "tiny", trim=(0, 0), length=LENGTH, progress=False)
    return root / "tiny"


# -- grids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, count", [("poster-yeast", 72), ("poster-atac", 48), ("ablation", 4), ("cpu-study", 24)])
def test_dry_run_lists_every_cell_once(name, count, capsys, tmp_path):
    cells = run_sweep(name, None, tmp_path / "out", dry_run=True)
    printed = capsys.readouterr().out.splitlines()
    assert len(cells) == len(printed) == count
    assert len({c["cell"] for c in cells}) == count
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


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


def test_ablation_and_cpu_study_cells():
    cells = run_sweep("ablation", None, "unused", dry_run=True)
    keys = {(c["config"].model.readout, c["config"].model.mask_ratio > 0, c["config"].model.activation) for c in cells}
    assert keys == set(poster.ABLATION)
    assert all(c["config"].model.dim == 512 for c in cells)  # the final model's shape (dream2022 preset)
    study = run_sweep("cpu-study", None, "unused", dry_run=True, epochs=3)
    assert {c["config"].model.readout for c in study} == {"pool", 8, 32}
    assert {(c["config"].model.dim, c["config"].model.heads) for c in study} == {(64, 2), (128, 4)}
    assert {c["config"].data.split for c in study} == {"hash:0.9"} and study[0]["config"].train.epochs == 3


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


def test_overrides_the_grid_varies_are_refused():
    with pytest.raises(ValueError, match="varies model.readout"):
        run_sweep("poster-yeast", None, "unused", dry_run=True, overrides=["readout=8"])
    with pytest.raises(ValueError, match="use --epochs"):
        run_sweep("poster-yeast", None, "unused", dry_run=True, overrides=["train.epochs=3"])


# -- data subsets ------------------------------------------------------------------------------


def test_data_fraction_and_folds_are_stable_and_independent_of_the_split(tiny_data, tmp_path):
    dataset = Dataset(tiny_data)
    rows = fraction_rows(dataset, 0.3)
    assert 0.2 * len(dataset) < len(rows) < 0.4 * len(dataset)
    np.testing.assert_array_equal(rows, fraction_rows(Dataset(tiny_data), 0.3))
    [part] = sweep_datasets(tiny_data, tmp_path, fraction=0.3)
    subset = Dataset(part["path"])
    assert len(subset) == len(rows) and subset.meta["subset_of"]["fraction"] == 0.3
    # The fraction uses other bits of the hash than the split: hash:0.8 still validates ~20 %.
    _, valid = split_indices(subset, "hash:0.8")
    assert 0.1 < len(valid) / len(subset) < 0.3
    folds = sweep_datasets(tiny_data, tmp_path, folds=4)
    valid_sizes = [len(Dataset(f["valid"])) for f in folds]
    assert sum(valid_sizes) == len(dataset)  # every row validated exactly once
    assert all(len(Dataset(f["path"])) + n == len(dataset) for f, n in zip(folds, valid_sizes))


# -- training ----------------------------------------------------------------------------------


def test_tiny_sweep_writes_both_rows_and_reruns_nothing(tiny_data, tmp_path, capsys, one_thread):
    grid, out = tiny_grid_yaml(tmp_path / "tiny.yaml"), tmp_path / "out"
    # A half-written second cell from an earlier crash (no checkpoint): deleted and retrained.
    (out / "cells" / "blocks1-readout2").mkdir(parents=True)
    (out / "cells" / "blocks1-readout2" / "config.json").write_text("{half")
    rows = run_sweep(grid, tiny_data, out, epochs=2, data_fraction=0.75, progress=False)
    table = read_csv(out / "results.csv")
    assert [r["cell"] for r in table] == ["blocks1-readoutpool", "blocks1-readout2"]
    assert [r["readout"] for r in table] == ["pool", "2"] and {r["status"] for r in table} == {"done"}
    assert {r["dim"] for r in table} == {"8"} and all(float(r["seconds"]) > 0 for r in table)
    for row in rows:
        assert row["epochs_run"] == 2 and 1 <= row["best_epoch"] <= 2 and row["collapsed"] in (True, False)
        assert 200 < row["n_train"] + row["n_valid"] < 400  # 75 % of the rows
    assert (out / "data" / "fraction-0.75" / "meta.json").exists()

    # Rerunning trains nothing: every cell is recorded as done.
    capsys.readouterr()
    again = run_sweep(grid, tiny_data, out, epochs=2, data_fraction=0.75, progress=False)
    assert "training" not in capsys.readouterr().err
    assert [r["val_pearson"] for r in again] == [float(r["val_pearson"]) for r in table]

    # A cell killed after its last epoch but before its row was written resumes from the
    # checkpoint (nothing left to train); one whose checkpoint is unreadable starts again.
    (out / "cells" / "blocks1-readoutpool" / "checkpoints" / "last.ckpt").write_bytes(b"cut short")
    write_results(out, [], list(table[0]))
    rows = run_sweep(grid, tiny_data, out, epochs=2, data_fraction=0.75, progress=False)
    err = capsys.readouterr().err
    assert "cannot resume" in err and [r["status"] for r in rows] == ["done", "done"]
    assert rows[1]["val_pearson"] == pytest.approx(float(table[1]["val_pearson"]))

    with pytest.raises(ValueError, match=r"sweep\.json: this sweep was started with epochs=2, now epochs=3"):
        run_sweep(grid, tiny_data, out, epochs=3, data_fraction=0.75, progress=False)


def test_shards_split_the_cells_and_merge_their_rows(tiny_data, tmp_path, capsys, one_thread):
    grid, out = tiny_grid_yaml(tmp_path / "tiny.yaml"), tmp_path / "out"
    first = run_sweep(grid, tiny_data, out, epochs=1, progress=False, shard=(2, 2))
    assert [r["cell"] for r in first] == ["blocks1-readout2"]
    assert "blocks1-readoutpool: training" not in capsys.readouterr().err
    both = run_sweep(grid, tiny_data, out, epochs=1, progress=False, shard=(1, 2))
    # The second worker keeps the row the first one wrote.
    assert [r["cell"] for r in read_csv(out / "results.csv")] == ["blocks1-readoutpool", "blocks1-readout2"]
    assert both[1]["val_pearson"] == first[0]["val_pearson"]
    with pytest.raises(ValueError, match="shard 3/2"):
        run_sweep(grid, tiny_data, out, epochs=1, progress=False, shard=(3, 2))


def test_auto_shard_skips_live_claims_and_takes_over_dead_ones(tiny_data, tmp_path, capsys, one_thread):
    import socket

    from filelock import FileLock

    grid, out = tiny_grid_yaml(tmp_path / "tiny.yaml"), tmp_path / "out"
    claims = out / "claims"
    claims.mkdir(parents=True)
    # Another live worker holds the first cell (its claim's lock); a dead one held the second
    # (its claim file is left, its lock free).
    host = socket.gethostname()
    (claims / "blocks1-readoutpool-fold0.json").write_text(json.dumps({"host": host, "pid": os.getppid()}))
    (claims / "blocks1-readout2-fold0.json").write_text(json.dumps({"host": host, "pid": 4321}))
    live = FileLock(claims / "blocks1-readoutpool-fold0.lock", timeout=0)
    live.acquire()
    try:
        rows = run_sweep(grid, tiny_data, out, epochs=1, progress=False, shard="auto")
        assert [r["cell"] for r in rows] == ["blocks1-readout2"]
        assert "blocks1-readout2: taking over the claim of process 4321" in capsys.readouterr().err
        # Released when recorded: the claim file and its lock are gone.
        assert sorted(p.name for p in claims.iterdir()) == ["blocks1-readoutpool-fold0.json",
                                                            "blocks1-readoutpool-fold0.lock"]
    finally:
        live.release()
    # Once the live worker has ended (its lock free), a worker takes the remaining cell and nothing else.
    rows = run_sweep(grid, tiny_data, out, epochs=1, progress=False, shard="auto")
    assert [r["cell"] for r in rows] == ["blocks1-readoutpool", "blocks1-readout2"]
    err = capsys.readouterr().err
    assert err.count(": training") == 1 and f"blocks1-readoutpool: taking over the claim of process {os.getppid()}" in err
    assert list(claims.iterdir()) == []
    # A fresh auto worker starts with the heavier model (2 head tokens) and ends with pooling.
    run_sweep(grid, tiny_data, tmp_path / "fresh", epochs=1, progress=False, shard="auto")
    err = capsys.readouterr().err
    assert err.index("blocks1-readout2: training") < err.index("blocks1-readoutpool: training")


def test_folds_train_each_cell_once_per_fold(tiny_data, tmp_path, one_thread):
    grid = tiny_grid_yaml(tmp_path / "tiny.yaml", columns=("[readout=2]",))
    rows = run_sweep(grid, tiny_data, tmp_path / "out", epochs=1, folds=2, progress=False)
    assert [(r["cell"], r["fold"]) for r in rows] == [("blocks1-readout2", 0), ("blocks1-readout2", 1)]
    assert sum(r["n_valid"] for r in rows) == len(Dataset(tiny_data))  # each row validated once
    assert all((tmp_path / "out" / "cells" / "blocks1-readout2" / f"fold-{k}" / "weights.safetensors").exists() for k in (0, 1))
    assert "mean ± sd over 2 folds" in sweep_report(tmp_path / "out")


def test_killed_sweep_does_not_retrain_finished_cells(tiny_data, tmp_path):
    grid, out = tiny_grid_yaml(tmp_path / "tiny.yaml"), tmp_path / "out"
    code = (f"from proformer.experiments import run_sweep; "
            f"run_sweep({str(grid)!r}, {str(tiny_data)!r}, {str(out)!r}, epochs=2, progress=False)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see one_thread
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    results, second = out / "results.csv", out / "cells" / "blocks1-readout2" / "sweep_cell.json"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if results.exists() and len(read_csv(results)) == 1 and second.exists():
            break
        time.sleep(0.01)
    assert process.poll() is None, "the sweep ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = read_csv(results)
    assert len(before) == 1
    first_dir = out / "cells" / before[0]["cell"]
    stamps = {p: p.stat().st_mtime_ns for p in first_dir.rglob("*") if p.is_file()}
    assert first_dir / "weights.safetensors" in stamps

    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    after = read_csv(results)
    assert len(after) == 2 and after[0] == before[0]  # same seconds and metrics: not retrained
    assert {p: p.stat().st_mtime_ns for p in first_dir.rglob("*") if p.is_file()} == stamps
    assert "[1/2]" not in done.stderr and "[2/2] blocks1-readout2: training" in done.stderr


# -- reports -----------------------------------------------------------------------------------


def fake_sweep(out, grid_name, value, folds=1, collapsed=()):
    """A sweep directory with results.csv filled by ``value(cell_config) -> Pearson r``."""
    grid = load_grid(grid_name)
    out.mkdir(parents=True)
    settings = sweep_settings(grid, None, [], out, 20, 0.1, folds)
    write_settings(out, settings)
    columns, rows = columns_for(grid.varied_keys()), []
    for cell in grid.cells:
        model = grid.config(cell).model
        for fold in range(folds):
            r = value(model) + 0.001 * fold
            rows.append({"cell": cell.id, "fold": fold, "row": cell.row, "column": cell.column, "dim": model.dim,
                         "heads": model.heads, "blocks": model.blocks, "readout": model.readout,
                         "activation": model.activation, "mask_ratio": model.mask_ratio, "kmer": model.kmer,
                         "best_epoch": 3, "epochs_run": 20, "val_pearson": r, "val_spearman": r, "val_mse": 0.5,
                         "val_prediction_std": 0.001 if cell.id in collapsed else 0.6, "n_train": 900, "n_valid": 100,
                         "seconds": 10.0, "collapsed": cell.id in collapsed, "status": "done", "error": ""})
    write_results(out, rows, columns)
    return grid


def test_report_has_the_poster_layout_values_and_differences(tmp_path):
    out = tmp_path / "sweep"
    key = lambda m: (m.dim, m.heads, m.blocks, m.readout)
    fake_sweep(out, "poster-yeast", lambda m: poster.YEAST_PEARSON[key(m)] - 0.01,
               collapsed={"dim256-heads8-blocks8-readoutpool"})
    text = sweep_report(out, compare="poster-yeast")
    assert (out / "report.md").read_text() == text
    lines = text.splitlines()
    header = lines.index("| dim / heads / blocks | AvgPool | H=1 | H=8 | H=16 | H=32 | H=64 |")
    table = lines[header + 2: header + 14]
    assert [line.split(" | ")[0] for line in table] == [f"| {d} / {h} / {b}" for d, h, b in poster.YEAST_SHAPES]
    assert table[0].startswith("| 64 / 2 / 1 | 0.6926 (0.7026, -0.0100) | 0.6946 (0.7046, -0.0100) |")
    assert "| 256 / 8 / 8 | 0.0065\u2020 (0.0165, -0.0100) |" in text
    assert "\u2020 collapsed" in text and "72 cells compared, mean difference -0.0100" in text
    assert "Budget" in text and "fraction 0.1" in text
    assert (out / "heatmap.png").stat().st_size > 10_000

    plain = sweep_report(out)
    assert "| 64 / 2 / 1 | 0.6926 | 0.6946 |" in plain
    with pytest.raises(ValueError, match="valid values are poster-yeast"):
        sweep_report(out, compare="poster")


def test_report_of_folds_shows_mean_and_spread(tmp_path):
    out = tmp_path / "cv"
    fake_sweep(out, "cpu-study", lambda m: 0.5, folds=3)
    text = sweep_report(out, compare="poster-yeast")
    assert "mean ± sd over 3 folds" in text
    assert "| 64 / 2 / 1 | 0.5010 ± 0.0010 (0.7026, -0.2016) | 0.5010 ± 0.0010 (0.7011, -0.2001) |" in text


def test_ablation_report_without_test_predictions_says_so(tmp_path):
    out = tmp_path / "ablation"
    fake_sweep(out, "ablation", lambda m: 0.9)
    text = sweep_report(out, compare="ablation")
    assert "| cell | configuration | validation r^2 | validation rho | poster Score PearsonR^2 |" in text
    assert "| pool-nomask | global average pooling, no mask filling | 0.810 | 0.900 | 0.766 | 0.819 | 0.918 | 0.961 |" in text
    assert "Test-set scores (Score PearsonR^2, Score Spearman) are not shown: no DREAM data directory" in text


def test_ablation_report_scores_test_predictions(tmp_path, dream_dir):
    out = tmp_path / "ablation"
    fake_sweep(out, "ablation", lambda m: 0.9)
    truth = json.loads((dream_dir / "public_leaderboard" / "ground.json").read_text())
    (out / "cells" / "mask-H32").mkdir(parents=True)
    (out / "cells" / "mask-H32" / "test_predictions.json").write_text(json.dumps(truth))
    text = sweep_report(out, dream_dir=dream_dir)
    assert "| mask-H32 | mask filling, 32 expression heads | 1.000 | 1.000 | 1.000 | 1.000 | 0.810 | 0.900 |" in text
    assert "| mask-H1 | mask filling, 1 expression head | - | - | - | - | 0.810 | 0.900 |" in text
