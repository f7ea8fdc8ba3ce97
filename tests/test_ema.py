"""train.ema: an exponential moving average of the weights, judged by validation and saved as the
model (issue "Training options that the winners used and we lack").

The average is checked against one computed here from the raw weights of every optimizer step
(recorded by a callback added to the run's trainer), with the formula of TrainConfig's docstring.
"""

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
from helpers import (
    TINY_MODEL,
    as_overrides,
    planted_tsv,
    read_csv,
    torch_threads,
    weight_distance,
)

from proformer.cli import build_parser, main
from proformer.config import TrainConfig, apply_overrides, load_run_config
from proformer.data.dataset import BatchBuilder, Dataset
from proformer.data.prepare import prepare
from proformer.data.splits import split_indices
from proformer.io.run import read_run_info, read_weights
from proformer.model import Proformer
from proformer.train import run as run_module
from proformer.train import train
from proformer.train.module import EMAWeights

LENGTH = 24
DECAY = 0.8  # spans ~5 of the ~13 steps of an epoch: far from both the raw weights and the first ones
TINY_RUN = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 32, "epochs": 2, "lr": 3e-3}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """500 planted rows (GATA counts + C content): ~400 training rows, 13 steps an epoch."""
    root = tmp_path_factory.mktemp("data")
    table = planted_tsv(root / "planted.tsv", 500, LENGTH, rule=lambda s: 2.0 * s.count("GAT") + 4 * s.count("C") / LENGTH,
                        noise=0.1, seed=0, digits=5)
    prepare(table, root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


def tiny_config(dataset_dir, **settings):
    overrides = [f"data.path={dataset_dir}", f"length={LENGTH}", *as_overrides({**TINY_RUN, **settings})]
    return load_run_config(preset="grid", overrides=overrides)


class RawWeights(L.Callback):
    """The Proformer's raw weights after every optimizer step (no accumulation: one per batch)."""

    def __init__(self):
        self.steps: list[dict[str, torch.Tensor]] = []
        self.epoch_of_step: list[int] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.steps.append({k: v.detach().clone() for k, v in module.model.state_dict().items()})
        self.epoch_of_step.append(trainer.current_epoch)

    def last_step_of(self, epoch: int) -> int:
        return max(i for i, e in enumerate(self.epoch_of_step) if e == epoch)


def recorded_train(config, run_dir, monkeypatch, **options) -> tuple[dict, RawWeights]:
    """``train(config, run_dir)`` with a :class:`RawWeights` on its trainer."""
    recorder, make_trainer = RawWeights(), run_module._trainer

    def with_recorder(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.callbacks.append(recorder)
        return trainer

    monkeypatch.setattr(run_module, "_trainer", with_recorder)
    return train(config, run_dir, progress=False, **options), recorder


def ema_through(steps: list[dict], last: int, decay: float) -> dict[str, torch.Tensor]:
    """The average after step ``last`` (0-based), computed independently in float64: the first
    step's weights, then ``decay * average + (1 - decay) * weights`` for each later step. Integer
    buffers (constants) are taken as they are."""
    average = {k: v.double() if v.is_floating_point() else v for k, v in steps[0].items()}
    for state in steps[1 : last + 1]:
        for key, value in state.items():
            if value.is_floating_point():
                average[key] = decay * average[key] + (1 - decay) * value.double()
    return {k: v.float() if v.is_floating_point() else v for k, v in average.items()}


def assert_same_weights(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(actual[key].to(value.dtype), value, rtol=1e-5, atol=1e-6, msg=key)


def validation_pearson(state: dict, run_dir, dataset_dir) -> float:
    """Pearson r over the run's validation rows of the Proformer with weights ``state``."""
    info = read_run_info(run_dir)
    model = Proformer(info.model)
    model.load_state_dict(state)
    model.eval()
    dataset = Dataset(dataset_dir)
    _, valid_rows = split_indices(dataset, "hash:0.8")
    batch = BatchBuilder(dataset, info.layout)[(0, valid_rows)]
    with torch.no_grad():
        prediction = model(batch["codes"]).double().numpy()
    return float(np.corrcoef(prediction, np.asarray(dataset.targets[valid_rows], dtype=np.float64)[:, 0])[0, 1])


@pytest.fixture(scope="module")
def ema_run(dataset_dir, tmp_path_factory):
    """Three epochs with train.ema=DECAY: (run directory, result, recorded raw weights). A
    constant learning rate, so the weights still move at the end (the cosine's last steps barely do)."""
    run_dir = tmp_path_factory.mktemp("runs") / "ema"
    config = tiny_config(dataset_dir, ema=DECAY, epochs=3, schedule="constant")
    with pytest.MonkeyPatch.context() as monkeypatch, torch_threads(1):
        result, recorder = recorded_train(config, run_dir, monkeypatch)
    return run_dir, result, recorder


# -- the saved model and the checkpoint hold the average --------------------------------------


def test_saved_model_is_the_average_of_the_best_epoch_not_the_raw_weights(ema_run):
    run_dir, result, recorder = ema_run
    assert len(recorder.steps) == 3 * math.ceil(result["n_train"] / 32)
    best = result["best"]["epoch"]
    last = recorder.last_step_of(best)
    saved = read_weights(run_dir)
    assert_same_weights(saved, ema_through(recorder.steps, last, DECAY))
    # ... and that is not what training had reached: the average lags the raw weights by more
    # than their last step moved them.
    raw = recorder.steps[last]
    assert weight_distance(saved, raw) > weight_distance(raw, recorder.steps[last - 1]) > 0


def test_last_checkpoint_holds_the_average_and_the_raw_weights(ema_run):
    """last.ckpt (for --resume): the average as its state_dict, training's own weights beside it."""
    run_dir, _, recorder = ema_run
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)

    def strip(state: dict) -> dict:  # the LightningModule's keys -> the Proformer's
        return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}

    assert_same_weights(strip(checkpoint["state_dict"]), ema_through(recorder.steps, len(recorder.steps) - 1, DECAY))
    assert_same_weights(strip(checkpoint["current_model_state"]), recorder.steps[-1])
    assert int(checkpoint["averaging_state"]["n_averaged"]) == len(recorder.steps)
    assert checkpoint["callbacks"]["EMAWeights"]["latest_update_step"] == len(recorder.steps)


def test_validation_judges_the_average(ema_run, dataset_dir):
    """Every epoch's logged val_pearson is the average's Pearson (not the raw weights'), and the
    best epoch is picked by it."""
    run_dir, result, recorder = ema_run
    rows = read_csv(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for row in rows:
        last = recorder.last_step_of(int(row["epoch"]))
        averaged = validation_pearson(ema_through(recorder.steps, last, DECAY), run_dir, dataset_dir)
        raw = validation_pearson(recorder.steps[last], run_dir, dataset_dir)
        assert float(row["val_pearson"]) == pytest.approx(averaged, abs=1e-5)
        assert abs(averaged - raw) > 1e-4  # the two differ, so the check above tells them apart
    assert result["best"]["epoch"] == int(max(rows, key=lambda r: float(r["val_pearson"]))["epoch"])
    info = json.loads((run_dir / "config.json").read_text())
    assert info["best"]["val_pearson"] == pytest.approx(float(rows[result["best"]["epoch"]]["val_pearson"]), abs=1e-6)
    assert float(result["best"]["val_pearson"]) > 0.1  # it learned something


def test_resume_continues_the_same_average(dataset_dir, tmp_path, monkeypatch, one_thread):
    """Two epochs in one go, or one epoch and then --resume for the second: the same average and
    the same raw weights (a constant learning rate, so the schedule does not depend on epochs)."""
    settings = {"ema": DECAY, "schedule": "constant"}
    steps = math.ceil(train(tiny_config(dataset_dir, epochs=2, **settings), tmp_path / "whole", progress=False)["n_train"] / 32)
    train(tiny_config(dataset_dir, epochs=1, **settings), tmp_path / "resumed", progress=False)
    _, recorder = recorded_train(tiny_config(dataset_dir, epochs=2, **settings), tmp_path / "resumed", monkeypatch,
                                 resume=True)
    assert len(recorder.steps) == steps  # the second epoch only
    whole, resumed = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)
                      for name in ("whole", "resumed"))
    for key in ("state_dict", "current_model_state"):
        assert_same_weights(resumed[key], whole[key])
    assert int(resumed["averaging_state"]["n_averaged"]) == 2 * steps
    pearsons = [float(read_csv(tmp_path / name / "metrics.csv")[1]["val_pearson"]) for name in ("whole", "resumed")]
    assert pearsons[1] == pytest.approx(pearsons[0], abs=1e-6)


def test_resume_refuses_to_switch_the_average_on_or_off(dataset_dir, tmp_path, one_thread):
    """last.ckpt's state_dict is the average with train.ema: resuming without it would train on
    from the average, with it after a run without it would start an average mid-run."""
    train(tiny_config(dataset_dir, epochs=1, ema=DECAY), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"train\.ema: 0\.8 -> 0\.0"):
        train(tiny_config(dataset_dir, epochs=2), tmp_path / "run", resume=True, progress=False)


# -- off by default; the value checked -------------------------------------------------------


def test_without_ema_the_saved_model_is_the_raw_weights(dataset_dir, tmp_path, monkeypatch, one_thread):
    """ema=0 (the default): no average on the trainer, the saved weights are the best epoch's raw weights
    and the checkpoint is Lightning's plain one."""
    config = tiny_config(dataset_dir)
    assert config.train.ema == 0.0
    assert not any(isinstance(c, EMAWeights) for c in run_module._trainer(config, tmp_path / "unused", False).callbacks)
    result, recorder = recorded_train(config, tmp_path / "run", monkeypatch)
    saved = read_weights(tmp_path / "run")
    assert_same_weights(saved, recorder.steps[recorder.last_step_of(result["best"]["epoch"])])
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert "current_model_state" not in checkpoint and "averaging_state" not in checkpoint


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan"), True, "often"])
def test_bad_ema_values_are_errors_naming_the_key(value):
    with pytest.raises(ValueError, match=r"train\.ema=.*must be 0 \(off\) or a decay in \(0, 1\)"):
        TrainConfig(ema=value)


def test_ema_and_rc_rows_are_run_settings_of_the_cli(tmp_path, capsys):
    """`proformer train --set data.rc_rows=true --set train.ema=0.999` parses, reaches the run
    config (and so config.yaml); a bad value stops the command naming the key and the range."""
    args = build_parser().parse_args(["train", "--out", str(tmp_path / "run"), "--set", "data.rc_rows=true",
                                      "--set", "train.ema=0.999"])
    config = load_run_config(None, "grid", args.overrides)
    assert config.data.rc_rows is True and config.train.ema == 0.999
    assert config.to_dict()["train"]["ema"] == 0.999 and config.to_dict()["data"]["rc_rows"] is True
    assert apply_overrides(config, ["ema=0"]).train.ema == 0.0  # the bare key is train's
    assert main(["train", "--out", str(tmp_path / "run"), "--set", "train.ema=1"]) == 2
    error = capsys.readouterr().err
    assert "train.ema=1.0" in error and "(0, 1)" in error
    assert not (tmp_path / "run").exists()
