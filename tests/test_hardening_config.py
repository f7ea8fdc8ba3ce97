"""Issue 13, configuration, sweep and dataset items: each test failed on the code before the fix.

Duplicate YAML keys in run configs, config sections that are not mappings, ``devices`` /
``num_nodes`` validation, the presets of ``model`` and ``bench``, out-of-range codes in
``codes.npy``, and sweeps whose cells fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import planted_tsv, read_csv

from proformer.cli import build_parser, main
from proformer.config import RUN_PRESETS, load_run_config
from proformer.io import dataset as fmt

# -- 1. duplicate keys in a run config -----------------------------------------------------------


def test_run_config_with_a_duplicate_key_names_the_key_and_line(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  dim: 64\n  dim: 128\ntrain:\n  lr: 0.001\n")
    with pytest.raises(ValueError, match=r"run\.yaml:3: duplicate key 'dim' \(first given on line 2\)"):
        load_run_config(path)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "duplicate key 'dim'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_unique_key_loader_lives_in_config_and_config_does_not_import_experiments():
    from proformer.config.yaml import UniqueKeyLoader, load_yaml
    from proformer.experiments import grids

    assert grids.UniqueKeyLoader is UniqueKeyLoader and grids.load_yaml is load_yaml
    code = ("import sys, proformer.config; "
            "sys.exit(any(m.startswith('proformer.experiments') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- 2. a section that is not a mapping ----------------------------------------------------------


@pytest.mark.parametrize("body, section", [("model: 5\n", "model"), ("train: [1]\n", "train"),
                                           ("data: fast\n", "data")])
def test_a_section_that_is_not_a_mapping_is_one_error_naming_file_and_section(tmp_path, capsys, body, section):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ValueError, match=rf"bad\.yaml: section '{section}' must be a mapping"):
        load_run_config(path)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"bad.yaml: section '{section}'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # The same file as a sweep's base config.
    assert main(["sweep", "--grid", "ablation", "--base", str(path), "--out", str(tmp_path / "sweep"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"bad.yaml: section '{section}'" in err and "Traceback" not in err


def test_a_preset_that_is_not_a_name_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("preset: [grid]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: preset must be a preset name"):
        load_run_config(path)
    path.write_text("preset: nope\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown preset 'nope'; available presets: auto, dream2022"):
        load_run_config(path)


def test_a_former_field_name_is_refused_naming_the_new_one_and_the_file(tmp_path, capsys):
    """No translation of renamed fields: model.singleton_input is now model.singleton_flag."""
    path = tmp_path / "old.yaml"
    path.write_text("preset: grid\nmodel:\n  dim: 64\n  singleton_input: true\n")
    with pytest.raises(ValueError, match=rf"^model field 'singleton_input' is now 'singleton_flag': rename it in {path}$"):
        load_run_config(path)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"proformer train: error: model field 'singleton_input' is now 'singleton_flag': rename it in {path}"]
    assert not (tmp_path / "run").exists()
    assert main(["train", "--out", str(tmp_path / "run"), "--set", "singleton_input=true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["proformer train: error: --set singleton_input: model field 'singleton_input' is now "
                   "'singleton_flag': rename it to model.singleton_flag"]


# -- 3. devices and num_nodes ---------------------------------------------------------------------


@pytest.mark.parametrize("override, key", [("devices=0", "devices"), ("devices=abc", "devices"),
                                           ("devices=-1", "devices"), ("devices=''", "devices"),
                                           ("num_nodes=0", "num_nodes"), ("num_workers=-1", "num_workers")])
def test_bad_devices_and_nodes_are_refused_naming_the_key(override, key):
    with pytest.raises(ValueError, match=rf"--set {key}: {key}="):
        load_run_config(None, "grid", [override])


@pytest.mark.parametrize("value, expected", [("2", 2), ("auto", "auto"), ("'0,1'", "0,1"), ("'1'", "1")])
def test_valid_devices_are_kept(value, expected):
    assert load_run_config(None, "grid", [f"devices={value}"]).train.devices == expected


def test_train_with_devices_zero_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), "--set", "devices=0"]) == 2
    err = capsys.readouterr().err
    assert "devices=0: must be an integer >= 1" in err and "Traceback" not in err


# -- 4. presets of model and bench ---------------------------------------------------------------


@pytest.mark.parametrize("preset", RUN_PRESETS)
def test_model_and_bench_take_every_preset_train_lists(preset, capsys):
    from proformer.cli import _model_config

    for argv in (["model", "--preset", preset], ["bench", "train", "--preset", preset, "--set", "dim=32"]):
        config = _model_config(build_parser().parse_args(argv))
        assert config == load_run_config(None, preset, [a for a in argv[3:] if "=" in a]).model
    if preset != "dream2022":  # 47M parameters: the summary alone takes seconds
        assert main(["model", "--preset", preset]) == 0
        assert f"Proformer (preset {preset})" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["model"], ["bench", "train"]])
def test_model_and_bench_refuse_an_unknown_preset_listing_the_valid_ones(command, capsys):
    assert main([*command, "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and all(name in err for name in RUN_PRESETS) and "Traceback" not in err


# -- 5. symbol codes out of range ------------------------------------------------------------------


def _dataset(directory, n=4, width=6):
    directory.mkdir(parents=True)
    np.save(directory / fmt.CODES, (np.arange(n * width, dtype=np.uint8).reshape(n, width) % 5))
    np.save(directory / fmt.LENGTHS, np.full(n, width, dtype=np.int32))
    np.save(directory / fmt.TARGETS, np.arange(n, dtype=np.float32)[:, None])
    fmt.write_meta(directory, {
        "source": {}, "rows_read": n, "rows_kept": n, "dropped": {}, "target_names": ["t"], "target_mean": [0.0],
        "target_std": [1.0], "min_length": width, "max_length": width,
        "transforms": {"head": 0, "tail": 0, "length": width}, "proformer_version": "test", "created": "now"})
    return directory


def test_a_code_out_of_range_is_refused_naming_the_file(tmp_path):
    from proformer.data.dataset import Dataset

    directory = _dataset(tmp_path / "data")
    fmt.validate(directory)  # the intact dataset is fine
    codes = np.load(directory / fmt.CODES)
    codes[2, 3] = 9  # written by hand
    np.save(directory / fmt.CODES, codes)
    for opener in (fmt.read_dataset, fmt.validate, Dataset):
        with pytest.raises(fmt.DatasetFormatError, match=r"codes\.npy: row 2, column 3: code 9 is not a symbol code"):
            opener(directory)
    codes[2, 3] = 5  # M, the mask token, is no data symbol either
    np.save(directory / fmt.CODES, codes)
    with pytest.raises(fmt.DatasetFormatError, match="code 5"):
        fmt.read_dataset(directory)


def test_the_code_check_scans_in_chunks(tmp_path, monkeypatch):
    directory = _dataset(tmp_path / "data", n=50, width=7)
    codes = np.load(directory / fmt.CODES)
    codes[-1, -1] = 200  # in the last chunk
    np.save(directory / fmt.CODES, codes)
    monkeypatch.setattr(fmt, "_CODES_CHUNK", 16)
    with pytest.raises(fmt.DatasetFormatError, match="row 49, column 6: code 200"):
        fmt.read_dataset(directory)


# -- 7. a sweep whose cells fail -----------------------------------------------------------------

TINY = ["length=40", "dim=8", "heads=1", "blocks=1", "kmer=3", "dropout=0", "train.batch_size=64",
        "data.split=hash:0.8", "train.accelerator=cpu"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("failing")
    planted_tsv(root / "tiny.tsv", n=200, length=40, rule=lambda s: s.count("G"), noise=0.3, seed=1, digits=4)
    from proformer.data.prepare import prepare

    prepare(root / "tiny.tsv", root / "tiny", trim=(0, 0), length=40, progress=False)
    return root / "tiny"


def _grid(path):
    path.write_text(textwrap.dedent(f"""\
        preset: grid
        set: [{", ".join(TINY)}]
        cells:
          - {{id: bad, set: [train.lr=0.001]}}
          - {{id: good, set: [train.lr=0.003]}}
        """))
    return path


def test_a_failed_cell_is_recorded_the_sweep_goes_on_and_exits_1_naming_it(tiny_data, tmp_path, capsys, monkeypatch,
                                                                             one_thread):
    from proformer.experiments import sweep
    from proformer.train.module import TrainingDiverged

    real = sweep._train_cell
    calls = []

    def train_cell(config, run_dir, progress):
        calls.append(run_dir.name)
        if run_dir.name == "bad" and len(calls) == 1:
            raise TrainingDiverged("the training loss is nan at step 3\nlower train.lr")
        return real(config, run_dir, progress)

    monkeypatch.setattr(sweep, "_train_cell", train_cell)
    grid, out = _grid(tmp_path / "grid.yaml"), tmp_path / "out"
    argv = ["sweep", "--grid", str(grid), "--data", str(tiny_data), "--out", str(out), "--epochs", "1", "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    # (Lightning's log handler may print a "Logging error" traceback into pytest's captured stream.)
    last = err.strip().splitlines()[-1]
    assert last.startswith("proformer sweep: error: 1 cell(s) failed: bad (") and "results.csv" in last
    rows = {row["cell"]: row for row in read_csv(out / "results.csv")}
    assert rows["good"]["status"] == "done"  # the sweep went on
    assert rows["bad"]["status"] == "failed"
    assert rows["bad"]["error"] == "TrainingDiverged: the training loss is nan at step 3 lower train.lr"  # one line

    # A rerun retries only the failed cell; now it trains and the sweep succeeds.
    assert main(argv) == 0
    assert calls == ["bad", "good", "bad"]
    assert {row["status"] for row in read_csv(out / "results.csv")} == {"done"}


def test_a_sigterm_in_a_cell_stops_the_sweep_and_records_the_cell(tiny_data, tmp_path, capsys, monkeypatch):
    from proformer.experiments import sweep
    from proformer.train.run import TrainingStopped

    calls = []

    def train_cell(config, run_dir, progress):
        calls.append(run_dir.name)
        raise TrainingStopped("training was stopped by SIGTERM in epoch 1")

    monkeypatch.setattr(sweep, "_train_cell", train_cell)
    grid, out = _grid(tmp_path / "grid.yaml"), tmp_path / "out"
    assert main(["sweep", "--grid", str(grid), "--data", str(tiny_data), "--out", str(out), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert calls == ["bad"] and "stopped (SIGTERM or Ctrl-C) in cell bad" in err and "run the same command again" in err
    assert [(row["cell"], row["status"]) for row in read_csv(out / "results.csv")] == [("bad", "failed")]


def test_a_resumed_cell_that_diverges_again_is_not_retrained_from_scratch(tmp_path, monkeypatch):
    from proformer.experiments import sweep
    from proformer.train.module import TrainingDiverged

    run_dir = tmp_path / "cell"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    calls = []

    def train(config, directory, resume, progress):
        calls.append(resume)
        raise TrainingDiverged("the training loss is nan")

    import proformer.train

    monkeypatch.setattr(proformer.train, "train", train)
    with pytest.raises(TrainingDiverged):
        sweep._train_cell(None, run_dir, False)
    assert calls == [True] and (run_dir / "checkpoints" / "last.ckpt").exists()
