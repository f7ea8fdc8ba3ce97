"""Tests of :mod:`proformer.experiments.tune`."""

from __future__ import annotations

import json
import os

import optuna
import pytest
from helpers import LENGTH, TINY_MODEL, as_overrides, cli, make_dataset

from proformer.experiments.tune import load_space, run_tune

# dim 64 and lr 1e-3 are the auto recipe's: the space holds its settings, so trial 0 is the baseline.
SPACE = "train.lr: {low: 3.0e-4, high: 3.0e-3, log: true}\ndim: {choices: [16, 64]}\n"
FIXED = [f"length={LENGTH}", "data.split=random:0.8", "train.epochs=3", "heads=2", "kmer=3",
         *(o for o in as_overrides(TINY_MODEL) if o.split("=")[0] in ("blocks", "readout"))]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tune"), n=300)


def test_trials_start_with_the_auto_settings_and_the_best_is_a_run_to_predict_with(data, tmp_path, capsys, one_thread):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    summary = run_tune(data, tmp_path / "tune", 4, space=space, overrides=FIXED, progress=False)
    study = optuna.load_study(study_name="tune", storage=f"sqlite:///{tmp_path / 'tune' / 'study.db'}")
    assert len(study.trials) == 4 and summary["trials"] == {"COMPLETE": 4}
    first = study.trials[0]
    assert first.user_attrs["baseline"] and first.params == {"train.lr": 1e-3, "dim": 64}
    values = [t.value for t in study.trials]
    assert summary["best"]["value"] == max(values) and summary["baseline"]["value"] == values[0]
    best = tmp_path / "tune" / "best"
    assert best.is_symlink() and best.resolve() == (tmp_path / "tune" / "trials" / f"trial-{summary['best']['number']:04d}").resolve()
    report = (tmp_path / "tune" / "report.md").read_text()
    assert f"validation Pearson **{max(values):.4f}**" in report and f"(trial 0, the same split): {values[0]:.4f}" in report
    assert (tmp_path / "tune" / "history.png").read_bytes()[:4] == b"\x89PNG"
    # every trial validated on the same rows
    infos = [json.loads((tmp_path / "tune" / "trials" / f"trial-{n:04d}" / "config.json").read_text())["data"] for n in range(4)]
    assert len({(i["n_train"], i["n_valid"]) for i in infos}) == 1
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\n" + "ACGT" * (LENGTH // 4) + "\n")
    assert cli("predict", "--model", best, "--input", fasta, "--out", tmp_path / "p.tsv", "--no-progress") == 0
    # The same command again: the study is full, nothing is trained.
    again = run_tune(data, tmp_path / "tune", 4, space=space, overrides=FIXED, progress=False)
    assert again["best"] == summary["best"] and len(study.trials) == 4


class _PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 after its second epoch, nothing else."""

    def prune(self, study, trial) -> bool:
        return trial.number == 1 and trial.last_step is not None and trial.last_step >= 1


def test_a_pruned_trial_stops_early_and_its_epochs_are_counted(data, tmp_path, monkeypatch, one_thread):
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **_: _PruneTrialOne())
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    summary = run_tune(data, tmp_path / "tune", 2, space=space, overrides=FIXED, progress=False)
    assert summary["trials"] == {"COMPLETE": 1, "PRUNED": 1}
    study = optuna.load_study(study_name="tune", storage=f"sqlite:///{tmp_path / 'tune' / 'study.db'}")
    pruned = study.trials[1]
    assert pruned.state.name == "PRUNED" and pruned.user_attrs["epochs_run"] == 2
    metrics = (tmp_path / "tune" / "trials" / "trial-0001" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 1 + 2  # the pruning epoch was recorded before the run ended
    assert "1 pruned. Pruned trials stopped after 2 epoch(s)" in (tmp_path / "tune" / "report.md").read_text()


@pytest.mark.parametrize(("text", "words"), [
    ("train.lr: {low: 1.0, high: 0.5}", "train.lr"), ("dim: [16, 32]", "dim"), ("dim: {choices: []}", "dim"),
    ("- a\n- b", "mapping"), ("dim: {choices: [1}", "not YAML"),
])
def test_a_space_it_cannot_read_is_refused_naming_the_key(tmp_path, text, words):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="--space") as error:
        load_space(path)
    assert words in str(error.value)


def test_a_space_without_the_auto_settings_has_no_baseline_and_says_so(data, tmp_path, capsys, one_thread):
    space = tmp_path / "space.yaml"
    space.write_text("dim: {choices: [8, 16]}\n")
    summary = run_tune(data, tmp_path / "tune", 1, space=space, overrides=FIXED, progress=False)
    assert summary["baseline"] is None
    assert "outside the search space: no baseline trial" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "tune" / "trials" / "trial-0001")
