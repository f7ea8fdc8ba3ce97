"""Training budgets: a budget in optimizer steps becomes whole epochs."""


from __future__ import annotations

import dataclasses

import pytest
from helpers import TINY_MODEL, as_overrides, planted_tsv

from proformer.config import TrainConfig, load_run_config
from proformer.data.prepare import prepare
from proformer.train import train
from proformer.train.recipe import (
    auto_recipe,
    budget_epochs,
    resolve_recipe,
    steps_per_epoch,
)

LENGTH = 20


def test_a_step_budget_is_rounded_to_whole_epochs_and_counts_reverse_complement_rows():
    assert steps_per_epoch(1000, 64) == 16 and steps_per_epoch(1000, 64, rc_rows=True) == 32
    config = TrainConfig(batch_size=64, steps=100, epochs=99)
    budgeted, note = budget_epochs(config, 1000)
    assert budgeted.epochs == 6 and "6 epoch(s) of 16 steps (96 steps" in note  # 100 / 16 = 6.25
    assert budget_epochs(config, 1000, rc_rows=True)[0].epochs == 3  # 100 / 32 = 3.1: the same passes
    assert budget_epochs(dataclasses.replace(config, steps=3), 1000)[0].epochs == 1  # at least one epoch
    assert budget_epochs(dataclasses.replace(config, steps=None), 1000) == (dataclasses.replace(config, steps=None), None)


@pytest.mark.parametrize("value", [0, -5, True, 2.5, "many"])
def test_a_bad_step_budget_names_the_key(value):
    with pytest.raises(ValueError, match="steps=.*must be an integer >= 1"):
        TrainConfig(steps=value)


def test_a_run_with_a_step_budget_trains_that_many_epochs_and_schedules_them(tmp_path, capsys):
    table = planted_tsv(tmp_path / "t.tsv", 400, LENGTH, rule=lambda s: s.count("G"), noise=0.1, seed=0, digits=4)
    prepare(table, tmp_path / "data", trim=(0, 0), length=LENGTH, progress=False)
    overrides = [f"data.path={tmp_path / 'data'}", *as_overrides(TINY_MODEL), "data.split=hash:0.8",
                 "train.batch_size=80", "train.steps=9", "train.epochs=50"]
    result = train(load_run_config(preset="grid", overrides=overrides), tmp_path / "run", progress=False)
    # ~320 training rows / 80 = 4 or 5 steps an epoch; 9 steps -> 2 epochs, not 50.
    per_epoch = steps_per_epoch(result["n_train"], 80)
    assert per_epoch in (4, 5) and result["epochs_run"] == 2
    assert f"budget of 9 optimizer steps: 2 epoch(s) of {per_epoch} steps" in capsys.readouterr().err
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "epochs: 2" in saved and "steps: 9" in saved


@pytest.mark.parametrize("rows, batch_size, epochs, steps", [
    (7_000, 64, 20, 2_200),             # the DREAM sample: 110 steps an epoch, 20 epochs
    (4_000, 64, 24, 1_512),             # fewer rows: more epochs, to reach 1,500 steps
    (700_000, 256, 20, 54_700),         # a large MPRA library
    (6_739_258, 512, 20, 263_260),      # all DREAM training rows: the original's batch and epochs
    (300, 64, 100, 500),                # tiny: the epoch cap, not the step floor
])
def test_the_auto_rule_scales_batch_and_epochs_with_the_rows(rows, batch_size, epochs, steps):
    chosen = auto_recipe(rows)
    assert chosen == {"batch_size": batch_size, "epochs": epochs}
    assert epochs * steps_per_epoch(rows, batch_size) == steps


def test_reverse_complement_rows_count_towards_the_step_floor():
    assert auto_recipe(4_000, rc_rows=True) == {"batch_size": 64, "epochs": 20}  # 126 steps an epoch already


def test_only_the_fields_left_to_the_data_are_chosen():
    auto = load_run_config(overrides=[])  # no preset: the auto recipe, the study's best (docs/recipes.md)
    assert auto.model.stem == "conv" and auto.data.split == "auto" and auto.train.early_stopping == 5
    default = auto.train
    resolved, note = resolve_recipe(default, 7_000)
    assert (resolved.batch_size, resolved.epochs) == (64, 20) and "batch_size=64, epochs=20 (20 epochs of batch 64: 2,200 optimizer steps" in note
    mine = load_run_config(overrides=["train.batch_size=128"]).train
    resolved, note = resolve_recipe(mine, 700_000)
    assert (resolved.batch_size, resolved.epochs) == (128, 20)  # set by the user, kept; epochs still the rule's
    assert "rows: epochs=20 (20 epochs of batch 128" in note and "set train.epochs to choose" in note
    grid = load_run_config(preset="grid").train
    assert resolve_recipe(grid, 7_000) == (grid, None)  # the faithful presets are not touched
    assert (grid.batch_size, grid.epochs) == (512, 20)
