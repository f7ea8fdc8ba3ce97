"""Tests of :mod:`proformer.io.run`."""

from __future__ import annotations

import errno
import json
import os
import pickle

import numpy as np
import pytest
import torch
from helpers import (
    TINY_RUN_LENGTH,
    WHOLE,
    cli,
    edited_run,
    one_line_error,
    one_line_run_directory,
    random_dna,
    tiny_run_info,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.config import load_run_config
from proformer.io.run import (
    RunInfo,
    RunWriteError,
    TargetInfo,
    read_run_info,
    read_weights,
    write_run_model,
)
from proformer.model import ModelConfig, Proformer
from proformer.sequence import Layout, encode_padded


def edit_config(run, change) -> None:
    values = json.loads((run / "config.json").read_text())
    change(values)
    (run / "config.json").write_text(json.dumps(values))


def write_input(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(s + "\n" for s in random_dna(np.random.default_rng(0), 3, WHOLE)))
    return path


class WritesMarker:
    """Unpickled with the full pickle machinery, this writes a file: the 'code' of a crafted weights.pt."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def tiny_info(**changes) -> RunInfo:
    values = dict(model=ModelConfig(kmer=3, dim=8, heads=1, blocks=1, readout=2, length=20, n_targets=2),
                  layout=Layout(head=2, tail=1, length=20, pad="plasmid"),
                  target=TargetInfo(names=["a", "b"], mean=[1.0, 2.0], std=[3.0, 4.0], standardized=True),
                  data={"n_train": 5}, rc_average=True, proformer_version="test")
    values.update(changes)
    return RunInfo(**values)


class _Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_the_run_records_the_columns_prepare_read(trained):
    values = json.loads((trained["run"] / "config.json").read_text())
    assert values["data"]["columns"] == {"seq_col": "seq", "target_cols": ["mean_value"]}
    columns = read_run_info(trained["run"]).columns
    assert (columns.seq_col, columns.target_cols, columns.id_col) == ("seq", ["mean_value"], None)


def test_an_old_config_without_the_record_still_loads_and_predicts(trained, tmp_path, capsys):
    old = edited_run(trained, "old", lambda values: values["data"].pop("columns", None))
    assert read_run_info(old).columns is None
    assert cli("predict", "--model", old, "--input", trained["test"], "--seq-col", "seq", "--out", tmp_path / "o.tsv") == 0
    assert cli("predict", "--model", trained["run"], "--input", trained["test"], "--out", tmp_path / "new.tsv") == 0
    assert (tmp_path / "o.tsv").read_text() == (tmp_path / "new.tsv").read_text()
    # Without the record, a headed table needs --seq-col, as before; evaluate's advice names its own flags.
    capsys.readouterr()
    assert cli("evaluate", "--model", old, "--data", trained["test"]) != 0
    line = one_line_error(capsys.readouterr().err)
    assert "--seq-col seq" in line and "--target-col" in line and "--id-col" not in line, line


def test_a_damaged_record_is_refused_in_one_line(trained):
    damaged = edited_run(trained, "damaged", lambda values: values["data"].update(columns={"seq_col": 3}))
    with pytest.raises(ValueError, match="data.columns"):
        read_run_info(damaged)


def test_a_failed_write_of_the_best_model_keeps_the_previous_one(tmp_path, monkeypatch):
    """write_run_model on a full disk: the previous weights and config.json stay, the error names
    the weights file of the run. (Old code: written without fsync, so no error here: pytest.raises fails.)"""
    run = write_tiny_run(tmp_path / "run", seed=0)
    before = {name: (run / name).read_bytes() for name in ("weights.safetensors", "config.json")}
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(RunWriteError) as caught:
        write_run_model(run, Proformer(tiny_run_info().model).state_dict(), tiny_run_info())
    monkeypatch.undo()
    message = one_line_run_directory(str(caught.value))
    assert message.startswith(f"{run / 'weights.safetensors'}: cannot write the best model's weights.safetensors")
    assert {name: (run / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "weights.safetensors"]


@pytest.mark.parametrize("change, field, value", [
    (lambda c: c["target"].update(names=["a"]), "target.names", "['a']"),
    (lambda c: c["target"].update(mean=[1.0]), "target.mean", "[1.0]"),
    (lambda c: c["target"].update(std=[2.0, 2.0, 2.0]), "target.std", "[2.0, 2.0, 2.0]"),
    (lambda c: c["target"].update(std=[2.0, 0.0]), "target.std[1]", "0.0"),
    (lambda c: c["layout"].update(length=TINY_RUN_LENGTH + 4), "layout.length", str(TINY_RUN_LENGTH + 4)),
])
def test_config_json_whose_fields_disagree_is_one_line_naming_the_file_and_field(tmp_path, change, field, value):
    """A config.json whose target names (or statistics) disagree with model.n_targets, or whose
    layout.length is not model.length. (Old code: names of the wrong count loaded and predicted
    under made-up column names prediction_0, ...; so pytest.raises fails.)"""
    run = write_tiny_run(tmp_path / "run", n_targets=2)
    edit_config(run, change)
    with pytest.raises(ValueError) as caught:
        proformer.load(run, "cpu")
    message = one_line_run_directory(str(caught.value))
    assert message.startswith(f"{run / 'config.json'}: {field} ") and value in message, message
    assert main(["predict", "--model", str(run), "--input", str(write_input(tmp_path)), "--out",
                 str(tmp_path / "p.tsv"), "--no-progress"]) == 2
    assert not (tmp_path / "p.tsv").exists()


@pytest.mark.parametrize("field, value", [("head", -1), ("tail", "1"), ("length", 2.5), ("pad", "plastic"),
                                          ("head", True)])
def test_a_bad_layout_value_names_the_file_the_field_and_the_value(tmp_path, field, value):
    """(Old code: Layout took head=-1, tail="1", length=2.5 as given and failed, or predicted
    something, later without naming config.json: pytest.raises or the message check fails.)"""
    run = write_tiny_run(tmp_path / "run")
    edit_config(run, lambda c: c["layout"].update({field: value}))
    with pytest.raises(ValueError) as caught:
        read_run_info(run)
    message = one_line_run_directory(str(caught.value))
    assert message.startswith(f"{run / 'config.json'}: layout.{field} is {value!r}"), message


@pytest.mark.parametrize("field, value, held", [("dim", 16, 8), ("blocks", 2, 1), ("kmer", 4, 3)])
def test_weights_that_do_not_match_config_json_are_one_line_naming_both_files(tmp_path, monkeypatch, field, value,
                                                                               held):
    """A config.json whose width, blocks or k-mer disagree with the weights: one short line naming
    both files and the field, not torch's state_dict listing. (Old code: a RuntimeError of ~28
    lines, "Error(s) in loading state_dict for Proformer", so pytest.raises(ValueError) fails.)"""
    monkeypatch.chdir(tmp_path)
    run = write_tiny_run(tmp_path / "run").relative_to(tmp_path)
    edit_config(run, lambda c: c["model"].update({field: value}))
    with pytest.raises(ValueError) as caught:
        proformer.load(run, "cpu")
    message = one_line_run_directory(str(caught.value))
    assert len(message) < 400, message
    assert message.startswith(f"{run / 'weights.safetensors'} does not match {run / 'config.json'}: "
                              f"model.{field} is {value} but the weights hold {held} ("), message
    assert "state_dict" not in message and "Missing key" not in message


def test_a_weights_pt_that_would_run_code_is_refused_without_torchs_unsafe_advice(tmp_path):
    """(Old code: refused, but the message quoted torch's "Re-running torch.load with weights_only
    set to False will likely succeed": the assertion on "weights_only" fails.)"""
    run = write_tiny_run(tmp_path / "run")
    (run / "weights.safetensors").unlink()
    marker = tmp_path / "code-ran"
    state = dict(Proformer(tiny_run_info().model).state_dict())
    state["payload"] = WritesMarker(marker)
    torch.save(state, run / "weights.pt")  # torch's zip format, as an old run's weights.pt is
    for load in (lambda: proformer.load(run, "cpu"), lambda: read_weights(run)):
        with pytest.raises(ValueError) as caught:
            load()
        message = one_line_run_directory(str(caught.value))
        assert message.startswith(f"{run / 'weights.pt'} is not a plain state_dict")
        assert "weights_only" not in message and "retrain" not in message and "train the model again" in message
    assert not marker.exists()
    with open(run / "weights.pt", "wb") as handle:  # a bare pickle, not torch's zip
        pickle.dump({"w": WritesMarker(marker)}, handle)
    with pytest.raises(ValueError, match="is not a plain state_dict") as caught:
        proformer.load(run, "cpu")
    assert "weights_only" not in str(caught.value) and not marker.exists()


def test_a_run_trained_before_safetensors_predicts_the_same_and_so_does_its_conversion(tmp_path):
    """A run written the old way (torch.save of the state_dict as weights.pt + config.json) loads
    and predicts what the model itself computes; converted to weights.safetensors it predicts
    exactly the same. (Old code: the conversion is not read, so load fails with weights.pt gone.)"""
    info = tiny_run_info(n_targets=2, mean=[1.0, -3.0], std=[2.0, 0.5])
    torch.manual_seed(7)
    model = Proformer(info.model).eval()
    run = tmp_path / "old"
    run.mkdir()
    torch.save(model.state_dict(), run / "weights.pt")
    (run / "config.json").write_text(json.dumps(info.to_dict(), indent=2) + "\n")

    sequences = random_dna(np.random.default_rng(1), 9, WHOLE) + random_dna(np.random.default_rng(2), 3, WHOLE - 6)
    codes, lengths = encode_padded(sequences)
    with torch.no_grad():
        own = model(torch.from_numpy(info.layout.apply(codes, lengths))).double().numpy()
    expected = own * np.array(info.target.std) + np.array(info.target.mean)

    old = proformer.load(run, "cpu").predict(sequences)
    np.testing.assert_allclose(old, expected, rtol=1e-12, atol=1e-12)

    from safetensors.torch import save_file

    save_file(read_weights(run), run / "weights.safetensors")  # preferred over weights.pt when both exist
    (run / "weights.pt").rename(tmp_path / "weights.pt.bak")
    converted = proformer.load(run, "cpu").predict(sequences)
    assert np.array_equal(converted, old)

    # A run trained on (resumed) after the change: write_run_model leaves weights.safetensors only.
    (tmp_path / "weights.pt.bak").rename(run / "weights.pt")
    write_run_model(run, model.state_dict(), info)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "weights.safetensors"]
    assert np.array_equal(proformer.load(run, "cpu").predict(sequences), old)


def test_run_directory_round_trips_the_model_and_its_info(tmp_path):
    info = tiny_info().with_best({"epoch": 3, "val_pearson": 0.5})
    torch.manual_seed(0)
    model = Proformer(info.model).eval()
    write_run_model(tmp_path, model.state_dict(), info)
    assert read_run_info(tmp_path) == info
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "weights.safetensors"]  # no temporary left
    run = proformer.load(tmp_path, "cpu")
    loaded, loaded_info = run.model, run.info
    codes = torch.randint(0, 4, (3, 40))
    torch.testing.assert_close(loaded(codes), model(codes), rtol=0, atol=0)
    assert loaded_info.layout.pad == "plasmid" and loaded_info.target.mean == [1.0, 2.0]


def test_config_json_without_a_section_or_with_bad_values_names_the_file(tmp_path):
    write_run_model(tmp_path, {}, tiny_info())
    values = json.loads((tmp_path / "config.json").read_text())
    del values["layout"]
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"config\.json has no 'layout' section"):
        read_run_info(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        read_run_info(tmp_path)
    values["layout"] = {"head": 0, "tail": 0, "length": 20, "pad": "plastic"}
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"config\.json: .*plastic"):
        read_run_info(tmp_path)


def test_truncated_weights_are_reported_with_the_file_name(tmp_path):
    write_run_model(tmp_path, Proformer(tiny_info().model).state_dict(), tiny_info())
    data = (tmp_path / "weights.safetensors").read_bytes()
    (tmp_path / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"weights\.safetensors cannot be read .*truncated or damaged"):
        read_weights(tmp_path)
    # A run trained before safetensors: its truncated weights.pt, the same way.
    (tmp_path / "weights.safetensors").unlink()
    torch.save(Proformer(tiny_info().model).state_dict(), tmp_path / "weights.pt")
    data = (tmp_path / "weights.pt").read_bytes()
    (tmp_path / "weights.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"weights\.pt cannot be read .*truncated or damaged"):
        read_weights(tmp_path)


def test_crafted_weights_do_not_run_code(tmp_path, monkeypatch):
    """weights_only=True is passed explicitly: a pickle that would run code is refused, and the
    message does not pass on torch's advice to load it with weights_only=False."""
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "weights.pt", "wb") as handle:
        pickle.dump({"w": _Payload()}, handle)
    with pytest.raises(ValueError, match=r"weights\.pt is not a plain state_dict") as caught:
        read_weights(tmp_path)
    assert "weights_only" not in str(caught.value)
    assert not (tmp_path / "PWNED").exists()


def test_renamed_model_field_is_refused_in_older_runs_and_overrides_naming_the_new_name(tmp_path):
    """model.singleton_input became model.singleton_flag (one name with data.singleton_flag):
    the old name is an error naming the new one, not translated."""
    from proformer.config import apply_overrides

    write_run_model(tmp_path, {}, tiny_info())
    values = json.loads((tmp_path / "config.json").read_text())
    values["model"]["singleton_input"] = values["model"].pop("singleton_flag") or True
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"config\.json: model field 'singleton_input' is now 'singleton_flag': rename it"):
        read_run_info(tmp_path)
    for key in ("model.singleton_input", "singleton_input"):
        with pytest.raises(ValueError, match=rf"^--set {key}: model field 'singleton_input' is now 'singleton_flag': "
                                             rf"rename it to model\.singleton_flag$"):
            apply_overrides(load_run_config(preset="grid"), [f"{key}=true"])
    with pytest.raises(ValueError, match="unknown key 'singleton_inputs'"):
        apply_overrides(load_run_config(preset="grid"), ["singleton_inputs=true"])
