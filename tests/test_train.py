import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, as_overrides, planted_tsv, read_csv, read_predictions
from helpers import weight_distance as distance

import proformer
from proformer.config import load_run_config
from proformer.data.dataset import BatchBuilder, Dataset, ShardedBatchSampler, mask_draws
from proformer.data.splits import split_indices
from proformer.io.run import read_weights
from proformer.sequence import Layout
from proformer.data.prepare import prepare
from proformer.model import ModelConfig, Proformer
from proformer.predict import predict
from proformer.train import train
from proformer.train.module import clip_original, lr_factor

LENGTH = 24
# The tiny model and the recipe of these runs (a run's own changes come after).
TINY_RUN = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 2, "lr": 3e-3}


def planted_table(path, n=2000, seed=0):
    """Sequences of LENGTH nt whose target is a count of GATA plus C content, with noise."""
    return planted_tsv(path, n, LENGTH, rule=lambda s: 2.0 * s.count("GAT") + 4 * s.count("C") / LENGTH, noise=0.1,
                       seed=seed, digits=5)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare(planted_table(root / "planted.tsv"), root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


def tiny_config(dataset_dir, **train):
    overrides = [f"data.path={dataset_dir}", f"length={LENGTH}", *as_overrides(TINY_RUN)]
    overrides += [f"train.{k}={v}" for k, v in train.items()]
    return load_run_config(preset="grid", overrides=overrides)


# -- schedules and clipping ----------------------------------------------------------------


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


# -- batches ---------------------------------------------------------------------------------


def test_two_ranks_see_the_global_batches_of_one_process():
    rows = np.arange(103)
    single = [batch for _, batch in ShardedBatchSampler(rows, 16, shuffle=True, seed=3, rank=0, world=1)]
    ranks = [list(ShardedBatchSampler(rows, 16, shuffle=True, seed=3, rank=r, world=2)) for r in (0, 1)]
    assert len(single) == 7 and all(len(b) == 16 for b in single)  # last batch wraps around
    assert set(np.concatenate(single)) == set(rows)
    for whole, (_, half0), (_, half1) in zip(single, *ranks):
        assert sorted(np.concatenate([half0, half1])) == sorted(whole)
    evaluation = [ShardedBatchSampler(rows, 16, shuffle=False, rank=r, world=2) for r in (0, 1)]
    seen = np.concatenate([batch for sampler in evaluation for _, batch in sampler])
    assert sorted(seen) == list(rows)  # every row exactly once


def test_epochs_reshuffle_and_seed_fixes_the_order():
    sampler = ShardedBatchSampler(np.arange(50), 10, shuffle=True, seed=1)
    first = np.concatenate([b for _, b in sampler])
    sampler.set_epoch(1)
    second = np.concatenate([b for _, b in sampler])
    assert not np.array_equal(first, second)
    again = ShardedBatchSampler(np.arange(50), 10, shuffle=True, seed=1)
    assert np.array_equal(first, np.concatenate([b for _, b in again]))


def test_mask_draws_depend_only_on_seed_epoch_row_position():
    draws = mask_draws(np.array([5, 9, 2]), epoch=0, seed=7, positions=200)
    alone = mask_draws(np.array([9]), epoch=0, seed=7, positions=200)
    np.testing.assert_array_equal(draws[1], alone[0])
    assert not np.array_equal(draws, mask_draws(np.array([5, 9, 2]), epoch=1, seed=7, positions=200))
    many = mask_draws(np.arange(5000), epoch=3, seed=0, positions=200)
    assert abs((many < 0.05).mean() - 0.05) < 0.002 and 0 <= many.min() and many.max() < 1


def test_batch_builder_lays_out_standardises_and_masks(dataset_dir):
    dataset = Dataset(dataset_dir)
    layout = dataset.layout()
    assert layout == Layout(0, 0, LENGTH)
    builder = BatchBuilder(dataset, layout, target_mean=[1.0], target_std=[2.0], mask_ratio=0.2, seed=0)
    rows = np.array([7, 3, 11])
    batch = builder[(0, rows)]
    assert batch["codes"].shape == (3, 2 * LENGTH) and batch["codes"].dtype == torch.uint8
    np.testing.assert_array_equal(batch["codes"][:, :LENGTH].numpy(), np.asarray(dataset.codes[rows]))
    expected = (np.asarray(dataset.targets[rows]) - 1.0) / 2.0
    np.testing.assert_allclose(batch["targets"].numpy(), expected, rtol=1e-6)
    assert batch["mask"].shape == (3, 2 * LENGTH) and batch["mask"].any()


def test_splits_are_disjoint_seeded_and_hash_stable(dataset_dir):
    dataset = Dataset(dataset_dir)
    train_rows, valid_rows = split_indices(dataset, "random:0.9", seed=0)
    assert len(np.intersect1d(train_rows, valid_rows)) == 0 and len(train_rows) + len(valid_rows) == len(dataset)
    assert len(valid_rows) == 200
    assert np.array_equal(split_indices(dataset, "random:0.9", seed=0)[1], valid_rows)
    assert not np.array_equal(split_indices(dataset, "random:0.9", seed=1)[1], valid_rows)
    hashed = split_indices(dataset, "hash:0.8")[1]
    assert 300 < len(hashed) < 500
    from proformer.sequence import decode
    valid_sequences = set(decode(np.asarray(dataset.codes[hashed]), dataset.lengths[hashed]))
    # The same sequences land in validation whatever the order of the file.
    reordered = Dataset(dataset_dir)
    order = np.random.default_rng(0).permutation(len(dataset))
    reordered.codes, reordered.lengths = np.asarray(dataset.codes)[order], dataset.lengths[order]
    again = split_indices(reordered, "hash:0.8")[1]
    assert set(decode(reordered.codes[again], reordered.lengths[again])) == valid_sequences


# -- a whole run ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(dataset_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    config = tiny_config(dataset_dir, epochs=4)
    result = train(config, run_dir, progress=False)
    return run_dir, result


def test_run_directory_holds_config_metrics_curve_and_best_model(trained_run):
    run_dir, result = trained_run
    for name in ("config.yaml", "config.json", "weights.safetensors", "metrics.csv", "learning_curve.png",
                 "checkpoints/last.ckpt"):
        assert (run_dir / name).exists(), name
    rows = read_csv(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    best = max(rows, key=lambda r: float(r["val_pearson"]))
    info = json.loads((run_dir / "config.json").read_text())
    assert info["best"]["epoch"] == int(best["epoch"]) == result["best"]["epoch"]
    # Learning happened: with ~400 validation rows a chance correlation has sd ~0.05.
    assert float(best["val_pearson"]) > 0.2
    assert not (run_dir / "weights.pt").exists()  # safetensors only: tensors, no pickle
    state = read_weights(run_dir)
    assert set(state) == set(Proformer(ModelConfig.from_dict(info["model"])).state_dict())


def test_validation_pearson_is_global_over_the_whole_validation_set(trained_run, dataset_dir):
    run_dir, _ = trained_run
    loaded = proformer.load(run_dir, "cpu")
    model, info = loaded.model, loaded.info
    dataset = Dataset(dataset_dir)
    _, valid_rows = split_indices(dataset, "hash:0.8")
    batch = BatchBuilder(dataset, info.layout)[(0, valid_rows)]
    with torch.no_grad():
        prediction = model(batch["codes"]).numpy()
    r = np.corrcoef(prediction, np.asarray(dataset.targets[valid_rows])[:, 0])[0, 1]
    assert r == pytest.approx(info.best["val_pearson"], abs=1e-5)


def test_predict_writes_every_row_and_can_destandardise(trained_run, dataset_dir, tmp_path):
    run_dir, _ = trained_run
    source = dataset_dir.parent / "planted.tsv"
    out = tmp_path / "pred.tsv"
    predict(run_dir, source, out, standardized=True, progress=False)
    header, *lines = out.read_text().splitlines()  # predict's TSV: a header line, then a row each
    assert header.split("\t")[0] == "sequence" and len(lines) == 2000
    assert [line.split("\t")[0] for line in lines] == [line.split("\t")[0] for line in source.read_text().splitlines()]
    z = read_predictions(out)
    predict(run_dir, source, tmp_path / "raw.tsv", progress=False)  # training units, the default
    raw = read_predictions(tmp_path / "raw.tsv")
    info = json.loads((run_dir / "config.json").read_text())
    np.testing.assert_allclose(raw, z * info["target"]["std"][0] + info["target"]["mean"][0], rtol=1e-4, atol=1e-4)


def test_mismatched_length_is_a_clear_error(dataset_dir, tmp_path):
    """An explicit model.length shorter than the rows is refused with fixes that work (a preset's
    own length is taken from the data now: tests/test_train_shapes.py). Every row has LENGTH nt,
    so preparing with the shorter length would drop them all: that is not suggested."""
    config = load_run_config(preset="grid", overrides=[f"data.path={dataset_dir}", f"length={LENGTH - 4}"])
    with pytest.raises(ValueError, match=f"set length={LENGTH}") as caught:
        train(config, tmp_path / "run", progress=False)
    assert "leave length unset" in str(caught.value) and "--length" not in str(caught.value)


def test_killed_run_resumes_from_its_last_checkpoint(dataset_dir, tmp_path):
    """SIGKILL a CLI run after its first epoch; --resume finishes without redoing that epoch."""
    run_dir = tmp_path / "run"
    epochs = 4
    args = [f"--set={k}={v}" for k, v in {"data.path": dataset_dir, "length": LENGTH, **TINY_RUN, "batch_size": 32,
                                          "epochs": epochs}.items()]
    command = [sys.executable, "-m", "proformer.cli", "train", "--out", str(run_dir), "--no-progress", *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = run_dir / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2 and (run_dir / "checkpoints" / "last.ckpt").exists():
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed; make it longer"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = read_csv(metrics)
    assert 1 <= len(before) < epochs
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    after = read_csv(metrics)
    assert [int(r["epoch"]) for r in after] == list(range(epochs))
    assert after[: len(before)] == before  # finished epochs were not trained again
    assert int(after[-1]["step"]) == epochs * int(before[0]["step"])


def test_given_validation_set_bf16_and_early_stopping(dataset_dir, tmp_path):
    """A separate validation dataset replaces the split; bf16-mixed runs on CPU; a patience of 1
    with a learning rate that cannot improve stops after two epochs."""
    from proformer.data.prepare import prepare as prepare_dataset

    valid_source = planted_table(tmp_path / "valid.tsv", n=300, seed=9)
    prepare_dataset(valid_source, tmp_path / "valid", trim=(0, 0), length=LENGTH, progress=False)
    config = tiny_config(dataset_dir, epochs=6, early_stopping=1, precision="bf16", schedule="constant", lr=1e-9)
    from proformer.config import apply_overrides

    config = apply_overrides(config, [f"data.valid={tmp_path / 'valid'}"])
    result = train(config, tmp_path / "run", progress=False)
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["data"]["n_valid"] == 300 and info["data"]["n_train"] == 2000 and info["data"]["split"] is None
    assert result["epochs_run"] < 6


def test_compiled_training_loss_trains_like_the_eager_one(dataset_dir, tmp_path, monkeypatch):
    """train.compile=true compiles the loss (Inductor): the run saves the same weight names and,
    from the same seed, ends where the eager run ends up to float reordering: within 5 % of how
    far a run with another seed lands (one epoch, 25 steps, dropout off, keyed masks)."""
    compiled_functions, real_compile = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, **kw: compiled_functions.append(f) or real_compile(f, **kw))
    runs = {"eager": {}, "compiled": {"compile": True}, "seed1": {"seed": 1}}
    results, weights = {}, {}
    for name, changes in runs.items():
        results[name] = train(tiny_config(dataset_dir, epochs=1, **changes), tmp_path / name, progress=False)
        weights[name] = read_weights(tmp_path / name)
    assert len(compiled_functions) == 1  # the compiled run only
    assert set(weights["eager"]) == set(weights["compiled"])
    assert distance(weights["eager"], weights["compiled"]) < 0.05 * distance(weights["eager"], weights["seed1"])
    assert abs(results["eager"]["best"]["val_pearson"] - results["compiled"]["best"]["val_pearson"]) < 0.01
