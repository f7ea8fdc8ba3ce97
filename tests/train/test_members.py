"""proformer.train.members: ensemble runs, K folds (data.split=folds:K) or K seeds (train.members=K)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml
from helpers import LENGTH, TINY_MODEL, as_overrides, cli_status, random_dna, tiny_config_hardening_train

import proformer
from proformer.train import train


def test_auto_on_a_small_library_trains_five_folds_saved_as_one_ensemble(small_planted_dataset, tmp_path, capsys,
                                                                          one_thread):
    """data.split=auto below 2,500 rows: 5 folds, each validated on its fifth, one run to load."""
    run_dir = tmp_path / "run"
    base = ["train", "--data", small_planted_dataset, "--out", run_dir, "--no-progress",
            "--set", f"length={LENGTH}", *(f"--set={o}" for o in as_overrides({**TINY_MODEL, "epochs": 2}))]
    capsys.readouterr()
    assert cli_status(*base) == 0
    out, err = capsys.readouterr()
    assert "validation: 5-fold cross-validation of 300 rows" in err
    record = json.loads((run_dir / "members.json").read_text())
    assert record["runs"] == [f"fold-{k}" for k in range(5)] and record["members"] == 5 and record["kind"] == "folds"
    splits = [yaml.safe_load((run_dir / f"fold-{k}" / "config.yaml").read_text())["data"]["split"] for k in range(5)]
    assert splits == [f"fold:{k}/5" for k in range(5)]
    assert sum(result["n_valid"] for result in record["results"]) == 300
    lines = [line for line in err.splitlines() if re.match(r"fold \d/5 epoch", line)]
    assert [line.split(":")[0] for line in lines] == [f"fold {k}/5 epoch {e}/2" for k in range(1, 6) for e in (1, 2)]
    # The estimate counts the folds to come: only the very last epoch has nothing left.
    assert all(" left" in line for line in lines[:-1]) and " left" not in lines[-1], lines
    assert "5-fold run: validation Pearson" in out and "models written to" in out
    mean = np.mean([r["best"]["val_pearson"] for r in record["results"]])
    assert f"validation Pearson {mean:.4f}" in out
    # The run is the mean of its folds, wherever a model is taken.
    sequences = random_dna(np.random.default_rng(0), 7, LENGTH)
    ensemble = proformer.load(run_dir, device="cpu")
    folds = proformer.load([run_dir / f"fold-{k}" for k in range(5)], device="cpu")
    assert len(ensemble.members) == 5
    np.testing.assert_allclose(ensemble.predict(sequences), folds.predict(sequences), rtol=1e-6)
    # Not twice into one directory; --resume of a finished one is refused too.
    assert cli_status(*base) == 2 and "already holds an ensemble run" in capsys.readouterr().err
    assert cli_status(*base, "--resume") == 2 and "finished 5-fold run" in capsys.readouterr().err

    # A run stopped after two folds: not loadable, and --resume trains only the folds left.
    kept = {k: (run_dir / f"fold-{k}" / "weights.safetensors").read_bytes() for k in (0, 1)}
    for k in (2, 3, 4):
        shutil.rmtree(run_dir / f"fold-{k}")
    record = {**record, "runs": record["runs"][:2], "results": record["results"][:2]}
    (run_dir / "members.json").write_text(json.dumps(record))
    with pytest.raises(FileNotFoundError, match="2 member\\(s\\) finished.*--resume"):
        proformer.load(run_dir)
    capsys.readouterr()
    assert cli_status(*base, "--resume") == 0
    err = capsys.readouterr().err
    assert "fold 1/5 epoch" not in err and "fold 3/5 epoch 1/2" in err
    assert all((run_dir / f"fold-{k}" / "weights.safetensors").read_bytes() == kept[k] for k in (0, 1))
    assert len(proformer.load(run_dir).members) == 5


def test_a_k_fold_run_is_refused_on_several_devices(small_planted_dataset, tmp_path):
    config = tiny_config_hardening_train(small_planted_dataset, "data.split=folds:3", devices=2)
    with pytest.raises(ValueError, match="one at a time in one process"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_members_trains_k_seeds_saved_as_one_ensemble(small_planted_dataset, tmp_path, capsys, one_thread):
    """train.members=2: two runs that differ by their seed (weights and validation rows), one model to load."""
    run_dir = tmp_path / "run"
    base = ["train", "--data", small_planted_dataset, "--out", run_dir, "--no-progress", "--set", f"length={LENGTH}",
            "--set", "data.split=random:0.8", "--set", "train.seed=7", "--set", "train.members=2",
            *(f"--set={o}" for o in as_overrides({**TINY_MODEL, "epochs": 2}))]
    capsys.readouterr()
    assert cli_status(*base) == 0
    out, err = capsys.readouterr()
    assert "ensemble: 2 models (train.members=2), seeds 7 ... 8" in err
    record = json.loads((run_dir / "members.json").read_text())
    assert record == {**record, "kind": "seeds", "members": 2, "runs": ["member-0", "member-1"]}
    configs = [yaml.safe_load((run_dir / f"member-{k}" / "config.yaml").read_text()) for k in range(2)]
    assert [c["train"]["seed"] for c in configs] == [7, 8] and [c["train"]["members"] for c in configs] == [1, 1]
    assert all(c["data"]["split"] == "random:0.8" for c in configs)
    lines = [line for line in err.splitlines() if re.match(r"member \d/2 epoch", line)]
    assert [line.split(":")[0] for line in lines] == [f"member {k}/2 epoch {e}/2" for k in (1, 2) for e in (1, 2)]
    assert all(" left" in line for line in lines[:-1]) and " left" not in lines[-1], lines
    mean = np.mean([r["best"]["val_pearson"] for r in record["results"]])
    assert f"2-member run: validation Pearson {mean:.4f}" in out
    assert "member-0 ... member-1, named by members.json" in out
    # Different seeds: different validation rows and different weights, and the run is their mean.
    members = [proformer.load(run_dir / f"member-{k}", device="cpu") for k in range(2)]
    sequences = random_dna(np.random.default_rng(0), 9, LENGTH)
    each = [member.predict(sequences) for member in members]
    assert not np.allclose(each[0], each[1])
    ensemble = proformer.load(run_dir, device="cpu")
    assert len(ensemble.members) == 2
    np.testing.assert_allclose(ensemble.predict(sequences), np.mean(each, axis=0), rtol=1e-5)


def test_members_is_refused_with_folds_and_below_one(small_planted_dataset, tmp_path):
    with pytest.raises(ValueError, match=r"train.members=2 with data.split=folds:3: a K-fold run already trains K"):
        train(tiny_config_hardening_train(small_planted_dataset, "data.split=folds:3", members=2), tmp_path / "run")
    with pytest.raises(ValueError, match=r"data.split=folds:5 \(auto's split below 2,500 rows\): a K-fold run"):
        train(tiny_config_hardening_train(small_planted_dataset, "data.split=auto", members=2), tmp_path / "run")
    with pytest.raises(ValueError, match=r"members=0: must be a whole number of models >= 1"):
        tiny_config_hardening_train(small_planted_dataset, members=0)
    with pytest.raises(ValueError, match=r"a 2-member run trains its members one at a time.*train.members=1"):
        train(tiny_config_hardening_train(small_planted_dataset, "data.split=random:0.8", members=2, devices=2),
              tmp_path / "run")
    assert not (tmp_path / "run").exists()
