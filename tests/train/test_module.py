"""Tests of :mod:`proformer.train.module`."""

from __future__ import annotations

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
from helpers import (
    LENGTH,
    TINY_MODEL,
    as_overrides,
    planted_tsv,
    read_csv,
    tiny_config_hardening_train,
    torch_threads,
    weight_distance,
)

from proformer.config import TrainConfig, load_run_config
from proformer.data.dataset import (
    BatchBuilder,
    Dataset,
)
from proformer.data.prepare import prepare
from proformer.data.splits import split_indices
from proformer.io.run import read_run_info, read_weights
from proformer.model import ModelConfig, Proformer
from proformer.train import run as run_module
from proformer.train import train
from proformer.train.module import (
    EMAWeights,
    ProformerModule,
    clip_original,
    lr_factor,
    make_optimizer,
)

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


def test_a_nonfinite_loss_stops_training_naming_epoch_step_and_causes(small_planted_dataset, tmp_path, monkeypatch, one_thread):
    from proformer.train.module import ProformerModule

    real = ProformerModule.objective

    def objective(self, batch):
        loss, parts = real(self, batch)
        return (loss * float("nan") if self.global_step >= 2 else loss), parts

    monkeypatch.setattr(ProformerModule, "objective", objective)
    with pytest.raises(RuntimeError, match=r"loss became nan in epoch 1, at optimizer step 3.*learning rate") as caught:
        train(tiny_config_hardening_train(small_planted_dataset), tmp_path / "run", progress=False)
    assert "no model was written" in str(caught.value)
    assert not (tmp_path / "run" / "weights.safetensors").exists() and not (tmp_path / "run" / "config.json").exists()


def test_warmup_cosine_schedule():
    factors = [lr_factor("warmup_cosine", s, warmup=10, total=110, dim=64) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[59] == pytest.approx(0.5, abs=1e-9)  # halfway through the cosine
    assert factors[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))


def test_noam_schedule_peaks_at_warmup():
    factors = [lr_factor("noam", s, warmup=12_500, total=0, dim=512) for s in (0, 12_498, 12_499, 12_500, 50_000)]
    assert max(factors) == factors[2]
    assert factors[2] == pytest.approx(512**-0.5 * 12_500**-0.5)
    assert factors[2] == pytest.approx(3.95e-4, rel=1e-3)  # the original's peak (docs/model.md section 1)


def test_original_clipping_is_value_then_per_parameter_norm():
    a = torch.nn.Parameter(torch.zeros(4))
    b = torch.nn.Parameter(torch.zeros(2))
    a.grad = torch.tensor([3.0, -0.2, 0.4, -2.0])
    b.grad = torch.tensor([0.1, -0.2])
    clip_original([a, b], value=0.5, norm=1.0)
    clipped = torch.tensor([0.5, -0.2, 0.4, -0.5])
    torch.testing.assert_close(a.grad, clipped / clipped.norm().clamp(min=1.0))
    torch.testing.assert_close(b.grad, torch.tensor([0.1, -0.2]))  # small gradients untouched


@pytest.mark.parametrize("optimizer, lr, weight_decay", [("adam", 3e-3, 0.0), ("adamw", 3e-3, 0.01), ("lion", 3e-4, 0.1)])
def test_each_optimizer_fits_a_planted_target(optimizer, lr, weight_decay, one_thread):
    torch.manual_seed(0)
    codes = torch.randint(0, 4, (64, 20))
    codes = torch.cat([codes, (3 - codes).flip(1)], dim=1)
    planted = (codes[:, :20].unfold(1, 3, 1) == torch.tensor([2, 0, 3])).all(-1).sum(1).float()
    target = (planted - planted.mean()) / planted.std()
    model = Proformer(ModelConfig(kmer=3, dim=32, heads=2, blocks=1, readout=4, length=20, dropout=0.0, mask_ratio=0.0))
    opt = make_optimizer(model.parameters(), TrainConfig(optimizer=optimizer, weight_decay=weight_decay), lr)
    expected = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(optimizer)
    assert expected is None or type(opt) is expected
    losses = []
    for _ in range(150):
        opt.zero_grad()
        _, parts = model.loss(codes, target)
        parts["target"].backward()
        opt.step()
        losses.append(parts["target"].item())
    assert losses[-1] < losses[0] / 5, (optimizer, losses[0], losses[-1])


def test_one_cycle_rises_to_the_peak_then_falls():
    module = ProformerModule(ModelConfig(dim=16, heads=2).to_dict(),
                             vars(TrainConfig(schedule="one_cycle", optimizer="adamw", lr=1e-2, epochs=2)),
                             steps_per_epoch=50)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = int(np.argmax(rates))
    assert rates[peak] == pytest.approx(1e-2) and 25 <= peak <= 35  # 30 % of 100 steps
    assert rates[0] == pytest.approx(1e-2 / 25) and rates[-1] < 1e-5


def test_option_values_are_checked():
    with pytest.raises(ValueError, match="pad='x'"):
        load_run_config(preset="grid", overrides=["data.pad=x"])
    with pytest.raises(ValueError, match="shift=-1"):
        load_run_config(preset="grid", overrides=["data.shift=-1"])
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        load_run_config(preset="grid", overrides=["train.optimizer=sgd"])
    # Either order of --set works; Adam refuses a weight decay when the optimizer is built.
    config = load_run_config(preset="grid", overrides=["train.weight_decay=0.01", "train.optimizer=adamw"])
    assert make_optimizer(torch.nn.Linear(2, 1).parameters(), config.train, 1e-3).defaults["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="weight_decay=0.01 needs optimizer=adamw or lion"):
        make_optimizer(torch.nn.Linear(2, 1).parameters(), TrainConfig(weight_decay=0.01), 1e-3)
