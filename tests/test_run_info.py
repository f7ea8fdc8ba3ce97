"""Run directories through proformer.io.run: config.json as a RunInfo, weights.safetensors (or an older run's
weights.pt) as a state_dict."""

import json
import pickle

import pytest
import torch

import proformer
from proformer.io.run import RunInfo, TargetInfo, read_run_info, read_weights, write_run_model
from proformer.model import ModelConfig, Proformer
from proformer.sequence import Layout


def tiny_info(**changes) -> RunInfo:
    values = dict(model=ModelConfig(kmer=3, dim=8, heads=1, blocks=1, readout=2, length=20, n_targets=2),
                  layout=Layout(head=2, tail=1, length=20, pad="plasmid"),
                  target=TargetInfo(names=["a", "b"], mean=[1.0, 2.0], std=[3.0, 4.0], standardized=True),
                  data={"n_train": 5}, rc_average=True, proformer_version="test")
    values.update(changes)
    return RunInfo(**values)


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


class _Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


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
    from proformer.config import apply_overrides, load_run_config

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
