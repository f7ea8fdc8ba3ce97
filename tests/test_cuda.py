"""The GPU path: the same numbers on CUDA as on the CPU, bf16 training that learns, runs that move.

Every test here needs a CUDA device and is skipped without one (the CI machine has none);
``python benchmarks/gpu_check.py`` runs them with ``pytest -m cuda`` on a GPU. The attention
fast path for wide heads is also checked on the CPU (the last tests), where it must equal SDPA.
"""


from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, as_overrides, planted_tsv

import proformer
from proformer.config import load_run_config
from proformer.data.dataset import BatchBuilder, Dataset, ShardedBatchSampler
from proformer.data.prepare import prepare
from proformer.model import ModelConfig, Proformer
from proformer.model.proformer import FUSED_HEAD_DIM_LIMIT, attention, matmul_attention
from proformer.train import train

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_check.py)")


LENGTH = 24


#: A model with the submitted model's attention shape (key_dim = dim = 512 > FUSED_HEAD_DIM_LIMIT,
#: so CUDA takes the matmul path) but one block, and the small grid cell (SDPA on CUDA too).
WIDE = ModelConfig(kmer=5, dim=512, heads=8, blocks=1, readout=4, length=LENGTH, dropout=0.0)


NARROW = ModelConfig(kmer=5, dim=64, heads=2, blocks=2, readout=8, length=LENGTH, dropout=0.0)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda_data")
    table = planted_tsv(root / "planted.tsv", 3000, LENGTH, rule=lambda s: 2.0 * s.count("GAT") + 4 * s.count("C") / LENGTH,
                        noise=0.1, seed=0, digits=5)
    prepare(table, root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


def a_batch(dataset_dir, mask_ratio: float = 0.15) -> dict[str, torch.Tensor]:
    dataset = Dataset(dataset_dir)
    builder = BatchBuilder(dataset, dataset.layout(length=LENGTH), mask_ratio=mask_ratio, seed=3, shift=2)
    sampler = ShardedBatchSampler(np.arange(len(dataset)), 64, shuffle=True, seed=3)
    return builder[next(iter(sampler))]


@pytest.fixture(scope="module")
def cuda_run(dataset_dir, tmp_path_factory):
    """A tiny run trained on the GPU in bf16 mixed precision."""
    overrides = [f"data.path={dataset_dir}", f"length={LENGTH}", *as_overrides(TINY_MODEL), "dim=32",
                 "data.split=hash:0.8", "train.batch_size=64", "train.epochs=6", "train.lr=3e-3",
                 "train.precision=bf16", "train.accelerator=gpu", "train.devices=1"]
    run_dir = tmp_path_factory.mktemp("cuda_runs") / "bf16"
    return run_dir, train(load_run_config(preset="grid", overrides=overrides), run_dir, progress=False)


@pytest.mark.parametrize("config", [NARROW, WIDE], ids=["d64-sdpa", "d512-wide-heads"])
@pytest.mark.cuda
@needs_cuda
def test_forward_and_backward_on_cuda_equal_the_cpu_in_fp32(config, dataset_dir):
    batch = a_batch(dataset_dir)
    torch.manual_seed(0)
    cpu_model = Proformer(config)
    cuda_model = Proformer(config).cuda()
    cuda_model.load_state_dict(cpu_model.state_dict())
    results = []
    for model, device in ((cpu_model, "cpu"), (cuda_model, "cuda")):
        model.train()  # dropout is 0: training mode differs only by the batch's mask filling
        moved = {k: v.to(device) for k, v in batch.items()}
        loss, _ = model.loss(moved["codes"], moved["targets"], mask=moved["mask"])
        loss.backward()
        grads = {name: p.grad.detach().cpu() for name, p in model.named_parameters() if p.grad is not None}
        results.append((loss.detach().cpu(), grads))
    (cpu_loss, cpu_grads), (cuda_loss, cuda_grads) = results
    torch.testing.assert_close(cuda_loss, cpu_loss, rtol=1e-4, atol=1e-5)
    assert cpu_grads.keys() == cuda_grads.keys()
    for name in cpu_grads:
        torch.testing.assert_close(cuda_grads[name], cpu_grads[name], rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.cuda
@needs_cuda
def test_masks_and_shifts_are_drawn_on_the_host_so_every_device_gets_the_same(dataset_dir):
    # The batch (shifted codes, mask) is made by the loader from (seed, epoch, row): drawing it
    # twice gives the same tensors, and the CUDA copy is bit-identical to what the CPU trains on.
    first, second = a_batch(dataset_dir), a_batch(dataset_dir)
    assert first["mask"].any()
    for key in first:
        assert torch.equal(first[key], second[key])
        assert torch.equal(first[key].cuda().cpu(), first[key])
    model = Proformer(NARROW)
    masked_cpu, _ = model.mask(first["codes"], torch.Generator().manual_seed(5))
    masked_cuda, _ = model.cuda().mask(first["codes"].cuda(), torch.Generator().manual_seed(5))
    assert torch.equal(masked_cuda.cpu(), masked_cpu)


@pytest.mark.parametrize("precision", ["32", "bf16"])
@pytest.mark.cuda
@needs_cuda
def test_a_training_step_never_waits_for_the_gpu(precision, dataset_dir):
    # A host-device synchronisation (.item(), a boolean index, a copy to the host) stalls the
    # queue of kernels every step; sync debug mode "error" makes any of them raise.
    import dataclasses

    from proformer.config import TrainConfig
    from proformer.train.module import ProformerModule

    config = dataclasses.replace(NARROW, mask_ratio=0.15)
    module = ProformerModule(config.to_dict(), dataclasses.asdict(TrainConfig()), steps_per_epoch=10).cuda()
    optimization = module.configure_optimizers()
    optimizer, scheduler = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
    batch = {k: v.cuda() for k, v in a_batch(dataset_dir).items()}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")
    for step in range(3):
        if step == 1:  # the first step may initialise state (optimizer moments) on the host
            torch.cuda.set_sync_debug_mode("error")
        try:
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss, _ = module.objective(batch)
            loss.backward()
            module.configure_gradient_clipping(optimizer)
            optimizer.step()
            scheduler.step()
            module._note_nonfinite(loss.detach())
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()


@pytest.mark.cuda
@needs_cuda
def test_bf16_mixed_training_on_cuda_learns_the_planted_rule(cuda_run):
    _, result = cuda_run
    # The planted rule (GAT count + C content) is learnable: a run that did not learn sits near 0.
    assert result["best"]["val_pearson"] > 0.5, result


@pytest.mark.cuda
@needs_cuda
def test_a_run_trained_on_cuda_predicts_the_same_on_cpu_and_cuda(cuda_run):
    run_dir, _ = cuda_run
    rng = np.random.default_rng(1)
    sequences = ["".join(rng.choice(list("ACGT"), LENGTH)) for _ in range(300)]
    on_cpu = proformer.load(run_dir, device="cpu").predict(sequences)
    on_cuda = proformer.load(run_dir, device="cuda").predict(sequences)
    assert np.isfinite(on_cpu).all() and on_cpu.std() > 0
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=1e-4, atol=1e-4)


def test_the_matmul_path_is_taken_only_for_heads_the_fused_kernels_refuse_on_cuda():
    q = torch.randn(2, 3, 5, FUSED_HEAD_DIM_LIMIT + 8)
    # On a CPU attention() is SDPA, so the two paths must agree for any head size.
    torch.testing.assert_close(attention(q, q, q), torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert FUSED_HEAD_DIM_LIMIT < ModelConfig(dim=512, heads=8).key_dim  # the submitted model takes it


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matmul_attention_equals_sdpa_forward_and_backward(dtype):
    torch.manual_seed(0)
    shape = (2, 4, 23, 512)  # (batch, heads, tokens, key_dim) with the submitted model's head size
    inputs = [torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(3)]
    sdpa_inputs = [x.detach().clone().requires_grad_() for x in inputs]
    out = matmul_attention(*inputs)
    reference = torch.nn.functional.scaled_dot_product_attention(*sdpa_inputs)
    upstream = torch.randn(shape, dtype=dtype)
    (out * upstream).sum().backward()
    (reference * upstream).sum().backward()
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 2e-2}
    assert out.dtype == dtype
    torch.testing.assert_close(out, reference, **tolerance)
    for mine, theirs in zip(inputs, sdpa_inputs):
        torch.testing.assert_close(mine.grad, theirs.grad, **tolerance)


def test_the_dense_reconstruction_loss_equals_the_masked_positions_one():
    # The GPU's form (every position, unmasked ones weighted 0: no boolean index, no sync) and
    # the CPU's (only the masked positions) are the same loss, value and gradients.
    from proformer.model.proformer import reconstruction_loss

    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 6)
    sequence = torch.randn(4, 30, 16, requires_grad=True)
    codes = torch.randint(0, 5, (4, 30))
    mask = torch.rand(4, 30) < 0.2
    results = []
    for dense in (False, True):
        layer.zero_grad()
        sequence.grad = None
        loss = reconstruction_loss(layer, sequence, codes, mask, dense=dense)
        loss.backward()
        results.append((loss.detach(), sequence.grad.clone(), layer.weight.grad.clone()))
    assert results[0][0] > 0
    for sparse_value, dense_value in zip(*results):
        torch.testing.assert_close(dense_value, sparse_value, rtol=1e-5, atol=1e-6)
