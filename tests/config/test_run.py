"""Tests of :mod:`proformer.config.run`."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import (
    random_dna,
)

from proformer.cli import main
from proformer.config import (
    TrainConfig,
    load_run_config,
    run_preset,
)
from proformer.config.run import is_from_data
from proformer.data.dataset import Dataset
from proformer.data.prepare import prepare
from proformer.model.config import ModelConfig
from proformer.sequence import DREAM_HEAD, DREAM_TAIL, Layout
from proformer.train.run import resolve_shape


def test_unknown_preset_lists_available(capsys):
    assert main(["model", "--preset", "nope"]) == 2
    assert "dream2022, grid" in capsys.readouterr().err


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan"), True, "often"])
def test_bad_ema_values_are_errors_naming_the_key(value):
    with pytest.raises(ValueError, match=r"train\.ema=.*must be 0 \(off\) or a decay in \(0, 1\)"):
        TrainConfig(ema=value)


def test_run_config_with_a_duplicate_key_names_the_key_and_line(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  dim: 64\n  dim: 128\ntrain:\n  lr: 0.001\n")
    with pytest.raises(ValueError, match=r"run\.yaml:3: duplicate key 'dim' \(first given on line 2\)"):
        load_run_config(path)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "duplicate key 'dim'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


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


@pytest.mark.parametrize("override, key", [
    ("train.lr=inf", "lr"), ("lr=nan", "lr"), ("train.eps=0", "eps"), ("train.mask_loss_weight=nan", "mask_loss_weight"),
    ("mask_loss_weight=-1", "mask_loss_weight"), ("clip_value=-1", "clip_value"), ("clip_norm=0", "clip_norm"),
    ("max_time=-1", "max_time"), ("max_time=0", "max_time"), ("seed=-1", "seed"),
])
def test_config_refuses_out_of_range_training_values_naming_the_key(override, key):
    with pytest.raises(ValueError, match=rf"{key}=.*must be"):
        load_run_config(preset="grid", overrides=[override])


def test_logger_is_a_run_setting_given_like_the_other_lists():
    for given, stored in (("tensorboard", "tensorboard"), ("csv,tensorboard", "csv,tensorboard"),
                          ("[csv, tensorboard]", "csv,tensorboard"), (" csv , csv", "csv")):
        assert load_run_config(overrides=[f"train.logger={given}"]).train.logger == stored
    assert load_run_config().train.logger == "csv"
    with pytest.raises(ValueError, match="unknown logger nope; valid loggers are csv, tensorboard, wandb, mlflow"):
        load_run_config(overrides=["logger=nope"])


def test_the_presets_give_the_models_of_before_on_dream_data(tmp_path):
    """DREAM rows (17 + 13 nt flanks, meta.json transforms.length 100): the dream2022 and grid
    presets resolve to the very ModelConfig they had when length and n_targets were fixed."""
    rng = np.random.default_rng(0)
    lines = [f"{DREAM_HEAD}{core}{DREAM_TAIL}\t{rng.uniform(0, 17):.3f}"
             for core in (random_dna(rng, 1, int(rng.integers(70, 81)))[0] for _ in range(50))]
    (tmp_path / "dream.txt").write_text("\n".join(lines) + "\n")
    prepare(tmp_path / "dream.txt", tmp_path / "data", progress=False)
    dataset = Dataset(tmp_path / "data")
    before = {  # the presets as they were, with length=100 and n_targets=1 fixed
        "dream2022": ModelConfig(kmer=10, dim=512, heads=8, blocks=4, readout=32, length=100, n_targets=1),
        "grid": ModelConfig(kmer=5, dim=64, heads=2, blocks=1, readout=8, length=100, n_targets=1),
    }
    for name, old in before.items():
        config = run_preset(name)
        assert is_from_data(config.model.length) and is_from_data(config.model.n_targets)
        model, layout, note = resolve_shape(dataset, config.model, dataset.layout(config.data.head, config.data.tail))
        assert model == old and type(model.length) is int and type(model.n_targets) is int
        assert layout == Layout(head=17, tail=13, length=100, pad="n")
        assert "length=100 (meta.json transforms.length after trimming 17 + 13 nt)" in note


def test_a_length_set_in_a_config_file_or_with_set_is_explicit(tmp_path):
    (tmp_path / "run.yaml").write_text("preset: dream2022\nmodel:\n  length: 230\n  dim: 256\n")
    config = load_run_config(str(tmp_path / "run.yaml"))
    assert config.model.length == 230 and not is_from_data(config.model.length)
    assert is_from_data(config.model.n_targets)  # not in the file: the data's
    assert not is_from_data(load_run_config(preset="grid", overrides=["length=100"]).model.length)
    # A config written by a run (config.yaml) holds numbers, read back as explicit values.
    from proformer.config import save_run_config

    save_run_config(run_preset("grid"), tmp_path / "saved.yaml")
    assert yaml.safe_load((tmp_path / "saved.yaml").read_text())["model"]["length"] == 100
