"""proformer against a straightforward implementation of the same grid model, same run.

The reference is what a first port usually looks like: a per-sample ``Dataset.__getitem__``
(trim, pad, reverse complement and mask drawn per row in numpy, default collation), the k-mer
embedding as a Linear over materialised one-hot windows, ``nn.MultiheadAttention``, the
reconstruction layer over every position, and the default (non-fused) Adam. Both use the
standard head size (``head_dim=split``), the one ``nn.MultiheadAttention`` supports, so both
compute the same function (the parameter counts differ only by proformer's dead head weight).

    python benchmarks/bench_reference.py [--steps 30] [--batch-size 128]

Prints training sequences/s (data loading included) of each and the ratio, then the bound that
the matrix products put on any implementation of this step: proformer's own matmul and attention
kernels, timed by ``torch.profiler`` over a few steps, and the speed-up over the reference that
an implementation would reach if everything else in the step (element-wise work, normalisation,
random numbers, data, optimizer) cost nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proformer.bench import matmul_peak, training_flops
from proformer.data.dataset import BatchBuilder, Dataset, ShardedBatchSampler, loader
from proformer.data.prepare import prepare
from proformer.data.synthetic import simulate_library, write_tsv
from proformer.model import ModelConfig, Proformer, model_preset
from proformer.train.module import clip_original

COMPLEMENT = np.array([3, 2, 1, 0, 4, 5], dtype=np.int64)


class PerSampleDataset(torch.utils.data.Dataset):
    def __init__(self, dataset: Dataset, mask_ratio: float, seed: int = 0):
        self.codes, self.lengths, self.targets = dataset.codes, dataset.lengths, dataset.targets
        self.mask_ratio, self.rng = mask_ratio, np.random.default_rng(seed)
        self.mean, self.std = float(np.mean(dataset.targets)), float(np.std(dataset.targets))

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int):
        row = np.asarray(self.codes[i, 17 : self.lengths[i] - 13], dtype=np.int64)
        left = (100 - len(row)) // 2
        forward = np.full(100, 4, dtype=np.int64)
        forward[left : left + len(row)] = row
        codes = np.concatenate([forward, COMPLEMENT[forward[::-1]]])
        mask = (self.rng.random(200) < self.mask_ratio) & (codes != 4)
        target = (float(self.targets[i, 0]) - self.mean) / self.std
        return torch.from_numpy(codes), torch.tensor(target, dtype=torch.float32), torch.from_numpy(mask)


class ReferenceBlock(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        d = c.dim

        def ffn():
            return nn.ModuleDict({"norm": nn.LayerNorm(d, eps=1e-6), "a": nn.Linear(d, 2 * d, bias=False),
                                  "b": nn.Linear(d, 2 * d, bias=False), "out": nn.Linear(2 * d, d, bias=False)})

        self.ffn1, self.ffn2 = ffn(), ffn()
        self.conv_norm = nn.LayerNorm(d, eps=1e-6)
        self.depthwise = nn.Conv1d(d, d, c.kernel_size, padding="same", groups=d, bias=False)
        self.pointwise = nn.Conv1d(d, d, 1)
        self.attention_norm = nn.LayerNorm(d, eps=1e-6)
        self.attention = nn.MultiheadAttention(d, c.heads, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)

    def run_ffn(self, f, x):
        h = f["norm"](x)
        return self.dropout(f["out"](self.dropout(f["a"](h) * F.silu(f["b"](h)))))

    def forward(self, x):
        x = x + 0.5 * self.run_ffn(self.ffn1, x)
        h = self.conv_norm(x).transpose(1, 2)
        x = x + self.dropout(F.relu(self.pointwise(self.depthwise(h)))).transpose(1, 2)
        x = self.attention_norm(x)
        x = x + self.attention(x, x, x, need_weights=False)[0]
        return x + 0.5 * self.run_ffn(self.ffn2, x)


class ReferenceModel(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        self.kmer = nn.Linear(6 * c.kmer, c.dim)
        self.position = nn.Parameter(torch.randn(200, c.dim) * 0.02)
        self.strand = nn.Parameter(torch.randn(2, c.dim) * 0.02)
        self.head = nn.Parameter(torch.randn(c.dim))  # one vector repeated H times, as in proformer
        self.blocks = nn.ModuleList(ReferenceBlock(c) for _ in range(c.blocks))
        self.readout = nn.Linear(c.dim, 1)
        self.reconstruction = nn.Linear(c.dim, 6)

    def loss(self, codes, targets, mask):
        k = self.c.kmer
        inputs = codes.masked_fill(mask, 5)
        one_hot = F.one_hot(inputs, 6).float()
        padded = F.pad(one_hot, (0, 0, (k - 1) // 2, k // 2))
        windows = padded.unfold(1, k, 1).transpose(2, 3).reshape(len(codes), 200, 6 * k)
        strand = torch.cat([self.strand[0].expand(100, -1), self.strand[1].expand(100, -1)])
        h = self.kmer(windows) + self.position + strand
        h = torch.cat([self.head.expand(len(codes), self.c.n_expression_heads, -1), h], dim=1)
        for block in self.blocks:
            h = block(h)
        n = self.c.n_expression_heads
        prediction = self.readout(h[:, :n]).mean(1).squeeze(-1)
        logits = self.reconstruction(h[:, n:])  # every position, then masked
        per_position = F.cross_entropy(logits.transpose(1, 2), codes, reduction="none")
        reconstruction = (per_position * mask).sum() / (mask.sum() + 1)
        return F.mse_loss(prediction, targets) + reconstruction


def time_steps(step, batches, steps: int) -> float:
    iterator = iter(batches)
    for _ in range(3):
        step(next(iterator))
    start = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    return time.perf_counter() - start


# Kernels that every implementation of the step runs, whatever else it fuses away.
MATRIX_KERNELS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "aten::convolution_backward",
                  "aten::mkldnn_convolution")


def matrix_kernel_seconds(step, batches, steps: int = 5) -> float:
    """Seconds per step spent in MATRIX_KERNELS (self time), from torch.profiler."""
    iterator = iter(batches)
    step(next(iterator))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(steps):
            step(next(iterator))
    total_us = sum(e.self_cpu_time_total for e in profile.key_averages() if e.key in MATRIX_KERNELS)
    return total_us / 1e6 / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    config = dataclasses.replace(model_preset("grid"), head_dim="split")
    with tempfile.TemporaryDirectory() as tmp:
        write_tsv(simulate_library(20_000, seed=0), Path(tmp) / "lib.tsv")
        prepare(Path(tmp) / "lib.tsv", Path(tmp) / "ds", progress=False)
        dataset = Dataset(Path(tmp) / "ds")
        rows = np.arange(len(dataset))
        mean, std = dataset.targets.mean(0), dataset.targets.std(0)

        torch.manual_seed(0)
        ours = Proformer(config).train()
        ours_opt = torch.optim.Adam(ours.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9, fused=True)
        ours_batches = loader(BatchBuilder(dataset, dataset.layout(), mean, std, mask_ratio=0.05),
                              ShardedBatchSampler(np.tile(rows, 4), args.batch_size, shuffle=True))

        def ours_step(batch):
            ours_opt.zero_grad(set_to_none=True)
            loss, _ = ours.loss(batch["codes"], batch["targets"][:, 0], mask=batch["mask"])
            loss.backward()
            clip_original(ours.parameters(), 0.5, 1.0)
            ours_opt.step()

        torch.manual_seed(0)
        reference = ReferenceModel(config).train()
        ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
        ref_batches = torch.utils.data.DataLoader(PerSampleDataset(dataset, 0.05), batch_size=args.batch_size, shuffle=True)

        def reference_step(batch):
            codes, targets, mask = batch
            ref_opt.zero_grad()
            reference.loss(codes, targets, mask).backward()
            clip_original(reference.parameters(), 0.5, 1.0)
            ref_opt.step()

        n_ours = sum(p.numel() for p in ours.parameters())
        n_ref = sum(p.numel() for p in reference.parameters())
        t_ref = time_steps(reference_step, ref_batches, args.steps)
        t_ours = time_steps(ours_step, ours_batches, args.steps)
        t_kernels = matrix_kernel_seconds(ours_step, ours_batches)
    sequences = args.steps * args.batch_size
    print(f"grid d{config.dim}/{config.heads} heads/{config.blocks} block/H{config.readout}, head_dim=split, "
          f"batch {args.batch_size}, {args.steps} timed steps, {torch.get_num_threads()} threads")
    print(f"parameters: proformer {n_ours:,}, reference {n_ref:,}")
    print(f"proformer  {sequences / t_ours:8.1f} sequences/s")
    print(f"reference  {sequences / t_ref:8.1f} sequences/s")
    print(f"speed-up   {t_ref / t_ours:8.2f}x")
    seconds_ref = t_ref / args.steps
    print(f"matmul, attention and conv kernels of a proformer step: {t_kernels * 1e3:.1f} ms of "
          f"{t_ours / args.steps * 1e3:.1f} ms; the reference step takes {seconds_ref * 1e3:.1f} ms")
    print(f"bound      {seconds_ref / t_kernels:8.2f}x (the speed-up if all other work in the step were free)")
    peak = matmul_peak()
    flops = training_flops(config)
    seconds_at_peak = flops * args.batch_size / peak
    print(f"at the fp32 matmul peak ({peak / 1e9:.1f} GFLOP/s, 4096^2) the step's {flops / 1e6:.0f} MFLOP "
          f"per sequence would take {seconds_at_peak * 1e3:.1f} ms: {seconds_ref / seconds_at_peak:.2f}x the reference at 100 % MFU")


if __name__ == "__main__":
    main()
