"""The training-memory estimate against measured peaks, the batch plan that fits a budget, and
train()'s use of it (issue 14: dream2022 on a 24 GiB CPU was OOM-killed without a word).
"""


from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from helpers import TINY_MODEL, as_overrides, planted_tsv, read_csv

from proformer.config import load_run_config
from proformer.data.prepare import prepare
from proformer.model import ModelConfig
from proformer.train import memory, train
from proformer.train.memory import (
    HEADROOM,
    NotEnoughMemory,
    available_memory,
    estimate_training_memory,
    plan_batches,
)

#: Three training steps in a fresh process: the model's training loss (what
#: ProformerModule.objective returns with the default mask_loss_weight of 1), backward and a fused
#: Adam step (train.optimizer=adam), without importing Lightning (4 s). Prints how far the
#: process's anonymous memory rose above what it held once the model, the batch and the optimizer
#: existed, at its highest (sampled every millisecond; by the second step the allocator's free
#: lists are steady). Anonymous, not all resident memory: the library pages are file-backed,
#: touched lazily (+25 MiB) and dropped when other processes need memory (-100 MiB or more).
MEASURE = r"""
import json, os, sys, threading, time
import numpy as np, torch
torch.set_num_threads(1)
from proformer.data.dataset import mask_draws
from proformer.model import ModelConfig, Proformer

PAGE = os.sysconf("SC_PAGE_SIZE")

def anonymous():
    with open("/proc/self/statm") as handle:
        fields = handle.read().split()
    return (int(fields[1]) - int(fields[2])) * PAGE  # resident - file-backed/shared

config, batch_size = ModelConfig(**json.loads(sys.argv[1])), int(sys.argv[2])
torch.manual_seed(0)
model = Proformer(config).train()
codes = torch.randint(0, 4, (batch_size, 2 * config.length), dtype=torch.uint8)
mask = torch.from_numpy(mask_draws(np.arange(batch_size), 0, 0, codes.shape[1]) < config.mask_ratio)
targets = torch.randn(batch_size)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9, fused=True)
baseline, peak, done = anonymous(), [0], threading.Event()

def watch():
    while not done.is_set():
        peak[0] = max(peak[0], anonymous())
        time.sleep(0.001)

threading.Thread(target=watch, daemon=True).start()
for _ in range(3):
    optimizer.zero_grad(set_to_none=True)
    loss, _ = model.loss(codes, targets, mask=mask)
    loss.backward()
    optimizer.step()
done.set()
print(peak[0] - baseline)
"""


#: Two sizes whose activations dwarf the noise (~20 MiB): every tensor on the allocator's heap
#: (0.5 GiB), and a batch whose widest tensors are mapped on their own (0.7 GiB).
SIZES = [
    ({"kmer": 5, "dim": 64, "heads": 2, "blocks": 1, "readout": 8, "length": 100}, 128),
    ({"kmer": 5, "dim": 32, "heads": 2, "blocks": 1, "readout": 8, "length": 100}, 384),
]


MODEL = ModelConfig(kmer=5, dim=64, heads=2, blocks=2, readout=8, length=100)


def budget_for(batch: int) -> int:
    """The available memory in which a step of ``batch`` sequences (and none larger) just fits."""
    return int(estimate_training_memory(MODEL, batch).total / HEADROOM) + 1


LENGTH = 24


TINY_RUN = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 1, "lr": 3e-3}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    source = planted_tsv(root / "planted.tsv", 300, LENGTH, rule=lambda s: 2.0 * s.count("GAT"), noise=0.1, seed=0,
                         digits=4)
    prepare(source, root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


def tiny_config(dataset_dir, *overrides):
    return load_run_config(preset="grid", overrides=[f"data.path={dataset_dir}", *as_overrides(TINY_RUN), *overrides])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_the_estimate_is_within_30_percent_of_the_measured_peak_for_two_sizes():
    """A measurement (two processes train steps of 0.5-0.7 GiB activations: ~4 s), marked slow:
    `pytest -m slow` runs it. The estimate's arithmetic (batch, optimizer, precision, EMA,
    strands) and train()'s use of it stay in the default suite (the tests below)."""
    processes = [subprocess.Popen([sys.executable, "-c", MEASURE, json.dumps(shape), str(batch)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for shape, batch in SIZES]
    for (shape, batch), process in zip(SIZES, processes):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        measured = int(out.split()[-1])
        estimate = estimate_training_memory(ModelConfig(**shape), batch)
        grown = estimate.total - estimate.parameters  # the weights were in the baseline
        assert 0.7 < grown / measured < 1.3, (shape, batch, grown / 2**20, measured / 2**20)


def test_the_estimate_grows_with_the_batch_and_counts_the_optimizer_and_precision():
    model = ModelConfig(kmer=5, dim=64, heads=2, blocks=2, readout=8, length=100)
    small, large = estimate_training_memory(model, 32), estimate_training_memory(model, 64)
    assert large.activations > 1.9 * small.activations and large.parameters == small.parameters
    n = small.parameters // 4
    assert small.optimizer == 8 * n and estimate_training_memory(model, 32, optimizer="lion").optimizer == 4 * n
    assert estimate_training_memory(model, 32, precision="bf16").activations < 0.7 * small.activations
    # The moving average of train.ema is one more float32 copy of the weights, named in the line.
    averaged = estimate_training_memory(model, 32, ema=True)
    assert small.averaged == 0 and averaged.averaged == 4 * n and averaged.total == small.total + 4 * n
    assert "weight average" in averaged.describe() and "weight average" not in small.describe()
    # strands="separate": two examples of H + L tokens instead of one of H + 2L.
    separate = estimate_training_memory(dataclasses.replace(model, strands="separate"), 32)
    assert separate.activations / small.activations == pytest.approx((2 * (8 + 100)) / (8 + 200), rel=0.01)
    # The submitted model at its batch of 512 cannot train in 24 GiB: the estimate says so.
    dream = load_run_config(preset="dream2022").model
    assert estimate_training_memory(dream, 512).total > 24 * 2**30


def test_available_memory_on_this_cpu_is_a_positive_part_of_the_machine():
    available = available_memory("cpu")
    with open("/proc/meminfo") as handle:
        total = int(handle.read().split("MemTotal:")[1].split()[0]) * 1024
    assert 0 < available <= total


def test_a_batch_that_does_not_fit_is_run_as_accumulated_steps_of_the_same_global_batch():
    plan = plan_batches(MODEL, 512, available=budget_for(128))
    assert (plan.accumulate, plan.step_batch, plan.batch_size) == (4, 128, 512) and plan.chosen
    assert "gradient accumulation, 4 steps of up to 128 sequences" in plan.describe()
    # Uneven: 512 in steps of at most 100 -> 6 steps of up to 86 (the fewest that fit).
    plan = plan_batches(MODEL, 512, available=budget_for(100))
    assert (plan.accumulate, plan.step_batch) == (6, 86)
    # Enough memory: as asked, and an asked accumulation is kept.
    assert plan_batches(MODEL, 512, available=budget_for(512)).accumulate == 1
    assert plan_batches(MODEL, 512, accumulate=2, available=budget_for(512)).accumulate == 2
    # Two CPU processes on one machine share its memory.
    assert plan_batches(MODEL, 512, world=2, processes_here=2, available=budget_for(128)).step_batch <= 64


def test_check_mode_stops_naming_the_accumulation_and_one_sequence_too_many_stops_naming_smaller_models():
    with pytest.raises(NotEnoughMemory, match=r"train.batch_size=512 .* --set train.accumulate=4 .*train.memory=auto"):
        plan_batches(MODEL, 512, mode="check", available=budget_for(128))
    with pytest.raises(NotEnoughMemory, match=r"even with one sequence per step: estimated .*\(--preset grid, or --set "
                                              r"dim=.*train.memory=off"):
        plan_batches(MODEL, 512, available=budget_for(1) - 2**20)
    plan = plan_batches(MODEL, 512, mode="off", available=10)
    assert plan.accumulate == 1 and plan.estimate is None
    with pytest.raises(ValueError, match=r"train.accumulate=600 is more than the 512"):
        plan_batches(MODEL, 512, accumulate=600, available=budget_for(512))


def test_train_accumulates_when_the_memory_is_short_with_the_steps_of_before(dataset_dir, tmp_path, monkeypatch, capsys,
                                                                             one_thread):
    from proformer.train.module import ProformerModule

    model = tiny_config(dataset_dir, f"length={LENGTH}", "n_targets=1").model
    need = estimate_training_memory(model, 16).total
    monkeypatch.setattr(memory, "available_memory", lambda device: int(need / HEADROOM) + 1)
    seen, real = [], ProformerModule.objective

    def objective(self, batch):
        seen.append((len(batch["codes"]), self.trainer.accumulate_grad_batches))
        return real(self, batch)

    monkeypatch.setattr(ProformerModule, "objective", objective)
    result = train(tiny_config(dataset_dir), tmp_path / "run", progress=False)
    assert result["accumulate"] == 4
    assert set(seen) == {(16, 4)}  # every step 16 sequences, four per optimizer step
    n_train = result["n_train"]
    assert int(read_csv(tmp_path / "run" / "metrics.csv")[0]["step"]) == -(-n_train // 64)  # optimizer steps as before
    assert len(seen) == 4 * -(-n_train // 64)
    assert "training with gradient accumulation, 4 steps of up to 16 sequences" in capsys.readouterr().err


def test_train_stops_before_writing_anything_when_the_step_does_not_fit(dataset_dir, tmp_path, monkeypatch):
    model = tiny_config(dataset_dir, f"length={LENGTH}", "n_targets=1").model
    need = estimate_training_memory(model, 16).total
    monkeypatch.setattr(memory, "available_memory", lambda device: int(need / HEADROOM) + 1)
    with pytest.raises(NotEnoughMemory, match=r"train.batch_size=64 .*--set train.accumulate=4 "):
        train(tiny_config(dataset_dir, "train.memory=check"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(memory, "available_memory", lambda device: 2**17)  # 128 KiB: less than the weights need
    with pytest.raises(NotEnoughMemory, match=r"even with one sequence per step.*--set train.memory=off"):
        train(tiny_config(dataset_dir), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
