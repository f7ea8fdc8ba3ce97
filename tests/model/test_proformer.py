"""Tests of :mod:`proformer.model.proformer`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from proformer.config import apply_overrides
from proformer.model import (
    ModelConfig,
    Proformer,
    mask_positions,
    model_preset,
    parameter_counts,
    soft_bin_targets,
)
from proformer.model.proformer import Dropout, KmerEmbedding, dropout_keep_mask
from proformer.sequence import (
    M,
    N,
    dream_layout,
    one_hot,
)


def tiny(**changes) -> ModelConfig:
    base = {"stem": "conv", "stem_kernel": 5, "stem_blocks": 2, "dim": 16, "heads": 2, "blocks": 1, "readout": 4,
            "length": 20, "dropout": 0.0}
    base.update(changes)
    return ModelConfig(**base)


def random_codes(batch, length, generator=None):
    forward = torch.randint(0, 4, (batch, length), generator=generator)
    return torch.cat([forward, (3 - forward).flip(1)], dim=1)


def prixfixe_dream_attn_parameters(in_channels: int, dim: int, seqsize: int, n_blocks: int, kernel_size: int,
                                   ff_mult: int = 4) -> int:
    """Parameters of the organisers' DREAM-Attn, from the layer shapes of their code.

    de-Boer-Lab/random-promoter-dream-challenge-2022 at commit f7b2e19 (written out here: their
    code is not installed):
    - DREAMNets_BuildModel_Train_and_Predict.ipynb, "DREAM-Attn Model" cell:
      AutosomeFirstLayersBlock(in_channels=data_channels(), out_channels=256) ->
      UnlockDNACoreBlock(in_channels=256, out_channels=256, seqsize=data_seqsize(), n_blocks=4,
      kernel_size=15, rate=0.1, num_heads=8) -> AutosomeFinalLayersBlock(in_channels=256);
      data_channels() is 6 (prixfixe/autosome/dataprocessor.py lines 84-85), seqsize 150.
    """
    d = dim
    # prixfixe/autosome/first_layers_block.py lines 20-34: Conv1d(in, out, ks=7, bias=False),
    # BatchNorm1d(out) (weight + bias; running statistics are buffers).
    first = in_channels * d * 7 + 2 * d
    # prixfixe/unlockdna/coreblock.py line 34: nn.Embedding(seqsize, out_channels).
    positions = seqsize * d
    # prixfixe/unlockdna/add_blocks.py lines 28-36: FeedForwardSwiGLU(use_bias=False, the
    # default of ConformerSASwiGLULayer line 49): LayerNorm(d), Linear(d, d * mult), Linear(d * mult / 2, d).
    feed_forward = 2 * d + d * (d * ff_mult) + (d * ff_mult // 2) * d
    layer = (
        2 * feed_forward  # ff1, ff2 (lines 51, 61)
        + 2 * d  # layernorm1 (line 52)
        + d * kernel_size  # depthwise Conv1d(d, d, kernel_size, groups=d, bias=False) (line 54)
        + d * d + d  # pointwise Conv1d(d, d, 1, bias=True) (line 55)
        + 2 * d  # layernorm2 (line 59)
        + (3 * d * d + 3 * d) + (d * d + d)  # nn.MultiheadAttention(d): in_proj (3d x d + 3d), out_proj (line 60)
    )
    # prixfixe/autosome/final_layers_block.py lines 17-25: Conv1d(in_channels, 18, kernel_size=1) with bias.
    final = d * 18 + 18
    return first + positions + n_blocks * layer + final


def tiny_dream_attn(**changes) -> ModelConfig:
    base = dict(model_preset("dream_attn").to_dict(), dim=16, blocks=1, length=12, dropout=0.0)
    base.update(changes)
    return ModelConfig(**base)


def random_codes_dream_attn(batch, length, generator=None):
    forward = torch.randint(0, 4, (batch, length), generator=generator)
    forward[:, :2] = N  # padding
    return torch.cat([forward, (3 - forward).flip(1).masked_fill(forward.flip(1) == N, N)], dim=1)


def tiny_model(**changes) -> ModelConfig:
    base = dict(kmer=5, dim=16, heads=2, blocks=1, readout=4, length=20, dropout=0.0)
    base.update(changes)
    return ModelConfig(**base)


def random_codes_model(batch, length, generator=None, n_rate=0.0):
    forward = torch.randint(0, 4, (batch, length), generator=generator)
    if n_rate:
        forward[torch.rand(forward.shape, generator=generator) < n_rate] = N
    reverse = (3 - forward).flip(1)
    reverse[forward.flip(1) == N] = N
    return torch.cat([forward, reverse], dim=1)


@pytest.fixture(scope="module")
def dream_model():
    return Proformer(model_preset("dream2022"))


def test_parameter_count():
    """Block 1: Conv1d(6, d, k) + LayerNorm(d); each further block Conv1d(d, d, k) + LayerNorm(d);
    no k-mer embedding; the rest as the k-mer model."""
    d, k = 16, 5
    conv = dict(parameter_counts(Proformer(tiny(stem_blocks=3))))
    kmer = dict(parameter_counts(Proformer(tiny(stem="kmer", kmer=k))))
    assert conv["stem"] == (6 * d * k + 2 * d) + 2 * (d * d * k + 2 * d)
    assert "kmer_embedding" not in conv
    assert conv["total"] - conv["stem"] == kmer["total"] - kmer["kmer_embedding"]
    # Without mask filling a conv-stem model has no reconstruction layer.
    assert "reconstruction" not in dict(parameter_counts(Proformer(tiny(mask_ratio=0.0))))


@pytest.mark.parametrize("kernel", [4, 5])
def test_first_conv_has_the_kmer_window(kernel):
    """The k-mer embedding is the stem's first convolution (same window, also for even widths)
    without the norm and the activation."""
    torch.manual_seed(0)
    stem = Proformer(tiny(stem_kernel=kernel, stem_blocks=1)).stem
    embedding = KmerEmbedding(kernel, 16)
    with torch.no_grad():
        embedding.linear.bias.zero_()
        stem.blocks[0].conv.weight.copy_(embedding.linear.weight.view(16, kernel, 6).transpose(1, 2))
    codes = torch.randint(0, 6, (2, 40))
    symbols = F.one_hot(codes, 6).float().transpose(1, 2)
    block = stem.blocks[0]
    padded = F.pad(symbols, ((kernel - 1) // 2, kernel // 2))
    torch.testing.assert_close(block.conv(padded).transpose(1, 2), embedding.from_codes(codes), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stem(symbols), F.silu(block.norm(embedding.from_codes(codes))), rtol=1e-5, atol=1e-5)


def test_n_and_the_mask_token_have_their_own_channels():
    torch.manual_seed(0)
    model = Proformer(tiny()).eval()
    codes = random_codes(1, 20)
    outputs = []
    for symbol in (N, M):
        changed = codes.clone()
        changed[0, 7] = symbol
        outputs.append(model.encode(changed))
    assert not torch.allclose(outputs[0], outputs[1])


@pytest.mark.parametrize("changes", [{}, {"strands": "separate"}, {"readout": "pool", "loss": "soft_bins"},
                                     {"stem_blocks": 1, "singleton_flag": True, "n_targets": 2}])
def test_shapes_finite_loss_and_gradients(changes):
    torch.manual_seed(0)
    config = tiny(dropout=0.1, **changes)
    model = Proformer(config).train()
    codes = random_codes(4, 20)
    targets = torch.rand(4, 2) if config.n_targets == 2 else torch.rand(4) * 17
    loss, parts = model.loss(codes, targets, singleton=torch.tensor([1.0, 0, 0, 1]))
    assert torch.isfinite(loss) and parts["n_masked"] >= 0
    loss.backward()
    for name, parameter in model.named_parameters():
        if name != "expression_heads.weight":  # the head tokens' dead weight (test_model.py)
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    model.eval()
    tokens = config.n_expression_heads + config.sequence_tokens
    assert model.encode(codes).shape == ((8 if config.strands == "separate" else 4), tokens, 16)
    assert model(codes).shape == ((4, 2) if config.n_targets == 2 else (4,))


def test_one_hot_path_equals_code_path():
    torch.manual_seed(0)
    model = Proformer(tiny()).eval()
    codes = random_codes(3, 20)
    x = F.one_hot(codes[:, :20], 4).float().transpose(1, 2).requires_grad_(True)
    torch.testing.assert_close(model(x), model(codes))
    model(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_training_reduces_the_loss_on_a_planted_task(one_thread):
    """64 random sequences whose target counts a planted motif (plus C content): the MSE falls."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    codes = random_codes(64, 20, generator)
    count = (codes[:, :20].unfold(1, 3, 1) == torch.tensor([0, 2, 3])).all(-1).sum(1).float()
    planted = count + codes[:, :20].eq(1).float().mean(1) * 4
    target = (planted - planted.mean()) / planted.std()
    model = Proformer(tiny(dim=32, mask_ratio=0.0)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        _, parts = model.loss(codes, target)
        parts["mse"].backward()
        optimizer.step()
        losses.append(parts["mse"].item())
    model.eval()
    final = F.mse_loss(model(codes), target).item()
    assert final <= losses[0] / 4, (losses[0], final)


def test_dream_attn_has_the_organisers_parameter_count():
    """At the organisers' settings (6 input channels, 150 positions per strand) the count is
    theirs: 4,539,410, the total of the notebook's torchinfo summary of DREAM-Attn."""
    expected = prixfixe_dream_attn_parameters(in_channels=6, dim=256, seqsize=150, n_blocks=4, kernel_size=15)
    assert expected == 4_539_410
    with torch.device("meta"):
        model = Proformer(dataclasses.replace(model_preset("dream_attn"), length=150))
    counts = dict(parameter_counts(model))
    assert counts["total"] == expected
    assert counts["stem"] == 6 * 256 * 7 + 2 * 256
    assert counts["position_embedding"] == 150 * 256
    assert counts["blocks.0"] == 1_121_280  # the notebook's ConformerSASwiGLULayer row
    assert counts["readout"] == 4_626  # the notebook's final Conv1d row
    assert "strand_embedding" not in counts and "reconstruction" not in counts and "kmer_embedding" not in counts


@pytest.mark.parametrize("length, dim, blocks, kernel_size", [(100, 256, 4, 15), (20, 32, 2, 5)])
def test_count_follows_the_organisers_formula_at_other_settings(length, dim, blocks, kernel_size):
    config = dataclasses.replace(model_preset("dream_attn"), length=length, dim=dim, blocks=blocks, kernel_size=kernel_size)
    with torch.device("meta"):
        total = dict(parameter_counts(Proformer(config)))["total"]
    assert total == prixfixe_dream_attn_parameters(6, dim, length, blocks, kernel_size)
    if length == 100:  # DREAM's layout: 100 positions per strand
        assert total == 4_526_610


def test_preset_settings_and_existing_presets_unchanged():
    config = model_preset("dream_attn")
    assert (config.stem, config.dim, config.heads, config.head_dim, config.blocks, config.kernel_size) == (
        "legnet", 256, 4, "split", 4, 15)
    assert (config.readout, config.loss, config.mask_ratio, config.conv_residual, config.strands) == (
        "pool", "soft_bins", 0.0, "prixfixe", "separate")
    assert config.key_dim == 64  # nn.MultiheadAttention(256, num_heads=4) (add_blocks.py line 60)
    for name in ("dream2022", "grid"):
        preset = model_preset(name)
        assert (preset.stem, preset.conv_residual, preset.strands) == ("kmer", "standard", "joint")


def test_legnet_stem_channels():
    """A C G T one-hot (N -> 0, M -> 0.25 each), the reverse flag, the singleton flag."""
    torch.manual_seed(0)
    stem = Proformer(tiny_dream_attn()).stem.eval()
    codes = torch.tensor([[0, 1, 2, 3, N, M]])
    symbols = F.one_hot(codes, 6).float().transpose(1, 2)
    seen = []
    stem.conv.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    stem(symbols, torch.ones(1, 1, 1), torch.tensor([1.0]))
    expected = torch.tensor([[1, 0, 0, 0, 0, 0.25], [0, 1, 0, 0, 0, 0.25], [0, 0, 1, 0, 0, 0.25],
                             [0, 0, 0, 1, 0, 0.25], [1] * 6, [1] * 6]).float()
    torch.testing.assert_close(seen[0][0], expected)
    torch.testing.assert_close(stem(symbols, torch.ones(1, 1, 1), torch.tensor([1.0])),
                               F.silu(stem.norm(stem.conv(expected[None]))).transpose(1, 2))


def test_prixfixe_conv_residual_adds_the_normalised_input():
    """The organisers' block: x1 = LN(x); x1 = x1 + conv(x1); x = x + x1 (add_blocks.py lines 67-72)."""
    from proformer.model.proformer import ConvModule

    torch.manual_seed(0)
    standard = ConvModule(8, 5, dropout=0.0)
    prixfixe = ConvModule(8, 5, dropout=0.0, add_normed=True)
    prixfixe.load_state_dict(standard.state_dict())
    x = torch.randn(2, 9, 8)
    torch.testing.assert_close(prixfixe(x), standard(x) + standard.norm(x))


def test_final_block_is_pooling_then_the_readout():
    """The winner's final block: Conv1d(d, 18, 1), average over positions, softmax, expected bin."""
    torch.manual_seed(0)
    model = Proformer(tiny_dream_attn()).eval()
    hidden = torch.randn(4, 12, 16)
    logits = F.conv1d(hidden.transpose(1, 2), model.readout.weight[:, :, None], model.readout.bias).mean(dim=2)
    torch.testing.assert_close(model.readout_outputs(hidden), logits)
    expected_bin = (torch.softmax(logits, dim=1) * torch.arange(18)).sum(dim=1)
    torch.testing.assert_close(model.predict_from_hidden(hidden), expected_bin.unflatten(0, (2, 2)).mean(dim=1))


def test_separate_strands_are_two_examples_and_the_prediction_their_mean():
    torch.manual_seed(0)
    model = Proformer(tiny_dream_attn()).eval()
    codes = random_codes_dream_attn(3, 12)
    hidden = model.encode(codes)
    assert hidden.shape == (6, 12, 16)  # example 2i: row i's forward strand, 2i + 1: its reverse complement
    per_strand = (torch.softmax(model.readout_outputs(hidden), -1) * torch.arange(18)).sum(-1)
    torch.testing.assert_close(model(codes), per_strand.view(3, 2).mean(1))
    # The loss: each strand a training example with its row's target (KL divergence, batchmean).
    targets = torch.tensor([3.0, 10.5, 16.0])
    _, parts = model.loss(codes, targets)
    from proformer.model import soft_bin_targets

    log_q = torch.log_softmax(model.readout_outputs(hidden), -1)
    expected = F.kl_div(log_q, soft_bin_targets(targets.repeat_interleave(2)), reduction="batchmean")
    torch.testing.assert_close(parts["target"], expected)
    torch.testing.assert_close(parts["prediction"], model(codes))


def test_strands_do_not_mix():
    """With separate strands a change in the reverse-complement half leaves the forward example alone."""
    torch.manual_seed(0)
    model = Proformer(tiny_dream_attn()).eval()
    codes = random_codes_dream_attn(2, 12)
    changed = codes.clone()
    changed[:, 15] = (changed[:, 15] + 1) % 4
    a, b = model.encode(codes), model.encode(changed)
    assert torch.equal(a[0::2], b[0::2]) and not torch.equal(a[1::2], b[1::2])


def test_singleton_flag_enters_through_the_channel():
    torch.manual_seed(0)
    model = Proformer(tiny_dream_attn(singleton_flag=True)).eval()
    assert model.singleton_embedding is None
    codes = random_codes_dream_attn(2, 12)
    assert not torch.equal(model(codes, torch.ones(2)), model(codes))
    torch.testing.assert_close(model(codes, torch.zeros(2)), model(codes))
    # A model without singleton_flag ignores the flag, as the k-mer model does.
    without = Proformer(tiny_dream_attn()).eval()
    without.load_state_dict(model.state_dict())
    torch.testing.assert_close(without(codes, torch.ones(2)), model(codes))


@pytest.mark.parametrize("changes", [{}, {"mask_ratio": 0.3, "readout": 3, "singleton_flag": True},
                                     {"strands": "joint", "loss": "mse", "n_targets": 2}])
def test_shapes_gradients_and_mask_filling(changes):
    torch.manual_seed(0)
    config = tiny_dream_attn(**changes)
    model = Proformer(config).train()
    codes = random_codes_dream_attn(4, 12)
    targets = torch.rand(4, 2) if config.n_targets == 2 else torch.rand(4) * 17
    loss, parts = model.loss(codes, targets, singleton=torch.tensor([1.0, 0, 1, 0]))
    assert torch.isfinite(loss)
    assert (parts["reconstruction"] > 0) == (config.mask_ratio > 0) and (model.reconstruction is None) == (config.mask_ratio == 0)
    loss.backward()
    for name, parameter in model.named_parameters():
        if name != "expression_heads.weight":  # the head tokens' dead weight (test_model.py)
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    model.eval()
    assert model(codes).shape == ((4, 2) if config.n_targets == 2 else (4,))


def test_one_hot_path_equals_code_path_dream_attn():
    torch.manual_seed(0)
    model = Proformer(tiny_dream_attn()).eval()
    codes = random_codes_dream_attn(3, 12)
    x = F.one_hot(codes[:, :12], 5)[..., :4].float().transpose(1, 2).requires_grad_(True)  # N: all zero
    torch.testing.assert_close(model(x), model(codes))
    model(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_overrides_build_dream_attn_from_grid_and_old_configs_load():
    fields = ["stem=legnet", "dim=256", "heads=4", "head_dim=split", "blocks=4", "kernel_size=15", "readout=pool",
              "loss=soft_bins", "mask_ratio=0", "conv_residual=prixfixe", "strands=separate", "dropout=0.1"]
    built = apply_overrides(model_preset("grid"), fields)
    assert dataclasses.replace(built, kmer=5) == model_preset("dream_attn")
    old = {k: v for k, v in model_preset("dream2022").to_dict().items()
           if k not in ("stem", "stem_kernel", "stem_blocks", "conv_residual", "strands")}
    assert ModelConfig.from_dict(old) == model_preset("dream2022")


@pytest.mark.parametrize("field, value", [("stem", "cnn"), ("conv_residual", "both"), ("strands", "single"),
                                          ("stem_kernel", 0), ("stem_blocks", 0), ("stem_blocks", True)])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}="):
        ModelConfig(**{field: value})


def test_dream2022_parameter_counts(dream_model):
    counts = dict(parameter_counts(dream_model))
    assert counts["total"] == 47_425_543
    assert counts["blocks.0.ffn1"] == 1_573_888
    assert counts["blocks.0.ffn2"] == 1_573_888
    assert counts["blocks.0.conv"] == 271_360
    assert counts["blocks.0.attention"] == 8_401_408
    assert counts["blocks.0.attention_norm"] == 1_024
    assert counts["blocks.0"] == 11_821_568
    assert sum(counts[f"blocks.{i}"] for i in range(4)) == 47_286_272
    assert counts["kmer_embedding"] == 60 * 512 + 512
    assert counts["position_embedding"] == 200 * 512
    assert counts["expression_heads"] == 1_024
    assert counts["readout"] == 513 and counts["reconstruction"] == 3_078


def test_options_change_the_count_as_expected():
    split = Proformer(dataclasses.replace(model_preset("dream2022"), head_dim="split"))
    attention = dict(parameter_counts(split))["blocks.0.attention"]
    assert attention == 4 * (512 * 512 + 512)  # standard head size d / heads
    pool = dict(parameter_counts(Proformer(dataclasses.replace(model_preset("dream2022"), readout="pool"))))
    assert "expression_heads" not in pool and pool["total"] == 47_425_543 - 1_024
    # GLU and Conformer order reuse the same weights.
    glu = Proformer(dataclasses.replace(model_preset("grid"), activation="glu", block_order="conformer"))
    assert dict(parameter_counts(glu))["total"] == dict(parameter_counts(Proformer(model_preset("grid"))))["total"]


@pytest.mark.parametrize("kmer", [4, 5])
def test_kmer_embedding_window_matches_spec(kmer):
    """The window at i covers i-(k-1)//2 .. i+k//2 (for even k: i-(k/2-1) .. i+k/2), zero padded."""
    torch.manual_seed(0)
    model = Proformer(tiny_model(kmer=kmer))
    codes = random_codes_model(2, 20)
    symbols = torch.nn.functional.one_hot(codes, 6).float()  # (batch, 40, 6)
    got = model.kmer_embedding(symbols.transpose(1, 2))
    left, right = (kmer - 1) // 2, kmer // 2
    padded = torch.nn.functional.pad(symbols, (0, 0, left, right))
    windows = torch.stack([padded[:, i : i + kmer].reshape(2, -1) for i in range(40)], dim=1)
    expected = model.kmer_embedding.linear(windows)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("kmer", [4, 5, 10])
def test_kmer_lookup_path_equals_the_one_hot_convolution(kmer):
    torch.manual_seed(0)
    embedding = Proformer(tiny_model(kmer=kmer)).kmer_embedding
    codes = torch.randint(0, 6, (3, 40))  # M and N included
    symbols = torch.nn.functional.one_hot(codes, 6).float().transpose(1, 2)
    torch.testing.assert_close(embedding.from_codes(codes), embedding(symbols), rtol=1e-5, atol=1e-5)
    # Gradients of both paths reach the same weights.
    grads = []
    for out in (embedding.from_codes(codes), embedding(symbols)):
        embedding.zero_grad()
        (out * torch.arange(out.numel()).view_as(out).sin()).sum().backward()
        grads.append(embedding.linear.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_masking_never_touches_n_and_hits_the_rate():
    generator = torch.Generator().manual_seed(0)
    codes = random_codes_model(2000, 100, generator, n_rate=0.2)
    mask = mask_positions(codes, 0.05, generator)
    assert not mask[codes == N].any()
    rate = mask[codes != N].float().mean().item()
    # ~320k draws: the standard error of the rate is ~0.0004.
    assert abs(rate - 0.05) < 0.002


def test_masking_only_in_training_mode():
    model = Proformer(tiny_model(mask_ratio=0.3))
    codes = random_codes_model(16, 20, n_rate=0.1)
    model.train()
    masked, mask = model.mask(codes)
    assert mask.any() and (masked[mask] == 5).all() and torch.equal(masked[~mask], codes[~mask])
    assert not mask[codes == N].any()
    _, parts = model.loss(codes, torch.zeros(16))
    assert parts["n_masked"] > 0 and parts["reconstruction"] > 0
    model.eval()
    unmasked, mask = model.mask(codes)
    assert torch.equal(unmasked, codes) and not mask.any()
    _, parts = model.loss(codes, torch.zeros(16))
    assert parts["n_masked"] == 0 and parts["reconstruction"] == 0


def test_reconstruction_loss_is_sum_over_masked_divided_by_count_plus_one():
    torch.manual_seed(0)
    model = Proformer(tiny_model()).eval()
    codes = random_codes_model(4, 20)
    mask = torch.zeros_like(codes, dtype=torch.bool)
    mask[:, 3] = True
    mask[0, 7] = True
    _, parts = model.loss(codes, torch.zeros(4), mask=mask)
    hidden = model.encode(codes.masked_fill(mask, 5))[:, 4:]
    logits = model.reconstruction(hidden)[mask]
    expected = torch.nn.functional.cross_entropy(logits, codes[mask], reduction="sum") / (5 + 1)
    torch.testing.assert_close(parts["reconstruction"], expected)


@pytest.mark.parametrize("readout, n_targets, shape", [("pool", 1, (3,)), (1, 1, (3,)), (32, 1, (3,)), (8, 2, (3, 2))])
def test_output_shapes(readout, n_targets, shape):
    model = Proformer(tiny_model(readout=readout, n_targets=n_targets)).eval()
    assert model(random_codes_model(3, 20)).shape == shape
    assert model.encode(random_codes_model(3, 20)).shape == (3, model.config.n_expression_heads + 40, 16)


@pytest.mark.parametrize("changes", [{}, {"readout": "pool"}, {"activation": "glu", "block_order": "conformer", "head_dim": "split"}])
def test_every_parameter_gets_a_gradient(changes):
    torch.manual_seed(0)
    model = Proformer(tiny_model(blocks=2, dropout=0.1, **changes)).train()
    loss, _ = model.loss(random_codes_model(8, 20), torch.randn(8))
    loss.backward()
    for name, parameter in model.named_parameters():
        if name == "expression_heads.weight":
            # The head tokens are Linear(1, d) applied to zeros (as in the original, so that the
            # published count holds): only the bias is used, the weight is dead by construction.
            assert parameter.grad is None or not parameter.grad.any()
            continue
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_depthwise_conv_tells_identical_head_tokens_apart():
    torch.manual_seed(0)
    model = Proformer(tiny_model(readout=4)).eval()
    hidden = model.encode(random_codes_model(1, 20))
    assert not torch.allclose(hidden[0, 0], hidden[0, 1])


def test_one_hot_path_equals_code_path_and_passes_gradients():
    torch.manual_seed(0)
    model = Proformer(model_preset("grid")).eval()
    rng = np.random.default_rng(0)
    letters = np.array(list("ACGTN"))
    sequences = ["".join(letters[rng.choice(5, size=int(n), p=[0.24, 0.24, 0.24, 0.24, 0.04])]) for n in rng.integers(70, 101, 6)]
    codes, _ = dream_layout(sequences, head=0, tail=0)
    from_codes = model(torch.from_numpy(codes))
    x = torch.from_numpy(one_hot(codes[:, :100])).requires_grad_(True)
    from_one_hot = model(x)
    torch.testing.assert_close(from_one_hot, from_codes, rtol=1e-5, atol=1e-5)
    from_one_hot.sum().backward()
    assert x.grad is not None and x.grad.shape == (6, 4, 100) and x.grad.abs().sum() > 0


def test_input_shape_errors_explain_the_layout():
    model = Proformer(tiny_model())
    with pytest.raises(ValueError, match=r"\(batch, 40\)"):
        model(torch.zeros(2, 20, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, 4, 20\)"):
        model(torch.zeros(2, 20, 4))


def test_dropout_is_active_only_in_training_mode():
    torch.manual_seed(0)
    model = Proformer(tiny_model(dropout=0.5))
    codes = random_codes_model(4, 20)
    model.eval()
    assert torch.equal(model(codes), model(codes))
    model.train()
    assert not torch.equal(model(codes), model(codes))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_cpu_dropout_mask_keeps_each_element_with_one_minus_p(p):
    """Every one of the four 16-bit words of a draw must keep at the same rate: a word with a
    fixed bit (random_'s default range leaves the top bit of an int64 at 0) would show here."""
    torch.manual_seed(0)
    keep, keep_probability = dropout_keep_mask(torch.Size([1000, 4001]), p)  # n not a multiple of 4
    assert keep.shape == (1000, 4001) and keep.dtype == torch.bool
    assert keep_probability == round((1 - p) * 2**16) / 2**16 and abs(keep_probability - (1 - p)) < 2**-16
    per_word = keep.view(-1)[: 4 * 1_000_000].view(-1, 4).double().mean(dim=0)
    sd = (p * (1 - p) / 1_000_000) ** 0.5
    assert torch.all((per_word - keep_probability).abs() < 5 * sd), per_word
    # Neighbours (same draw or not) are independent.
    flat = keep.view(-1).double()
    both = (flat[:-1] * flat[1:]).mean()
    assert abs(both - keep_probability**2) < 5 * sd


def test_cpu_dropout_scales_and_routes_the_gradient_through_the_kept_elements():
    torch.manual_seed(1)
    dropout = Dropout(0.1).train()
    x = torch.randn(64, 50, 33, requires_grad=True)
    y = dropout(x)
    kept = y != 0
    keep_probability = round(0.9 * 2**16) / 2**16
    assert torch.allclose(y[kept], x[kept] / keep_probability)
    assert abs(kept.double().mean() - 0.9) < 0.005
    y.backward(torch.full_like(y, 2.0))
    assert torch.allclose(x.grad, kept * (2.0 / keep_probability))
    # The global generator decides the mask: the same seed gives the same mask.
    torch.manual_seed(1)
    again = torch.randn(64, 50, 33)
    assert torch.equal(Dropout(0.1).train()(again) != 0, kept)
    assert torch.equal(Dropout(0.1).eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)


def test_cpu_dropout_matches_torch_dropout_in_distribution():
    """Same mean and variance of the output as F.dropout on the same input (ones: kept values
    are 1 / keep_probability)."""
    torch.manual_seed(2)
    x = torch.ones(2_000_000)
    ours, theirs = Dropout(0.3).train()(x), torch.nn.functional.dropout(x, 0.3, training=True)
    assert abs(ours.mean() - 1) < 0.005 and abs(theirs.mean() - 1) < 0.005
    assert abs(ours.var() - theirs.var()) < 0.01


@pytest.mark.parametrize("activation", ["swiglu", "glu"])
def test_feed_forward_is_the_gate_of_the_two_halves_of_one_expansion(activation):
    from proformer.model.proformer import FeedForward

    torch.manual_seed(0)
    ffn = FeedForward(16, 4, dropout=0.0, activation=activation)
    x = torch.randn(3, 7, 16)
    a, b = ffn.expand(ffn.norm(x)).chunk(2, dim=-1)  # first half of the output units is a
    gate = torch.nn.functional.silu if activation == "swiglu" else torch.sigmoid
    assert torch.allclose(ffn(x), ffn.project(a * gate(b)), atol=1e-6)


def test_tiny_model_fits_a_planted_target(one_thread):
    """64 random sequences whose target is the count of a planted motif: MSE falls >= 10x."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    codes = random_codes_model(64, 20, generator)
    motif = torch.tensor([0, 2, 3])  # AGT
    windows = codes[:, :20].unfold(1, 3, 1)
    count = (windows == motif).all(-1).sum(1).float()
    planted = count + codes[:, :20].eq(1).float().mean(1) * 4  # motif count + C content
    target = (planted - planted.mean()) / planted.std()
    model = Proformer(tiny_model(dim=32, mask_ratio=0.0)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        _, parts = model.loss(codes, target)
        parts["mse"].backward()
        optimizer.step()
        losses.append(parts["mse"].item())
    model.eval()
    final = torch.nn.functional.mse_loss(model(codes), target).item()
    assert final <= losses[0] / 10, (losses[0], final)


@pytest.mark.parametrize("kernel_size", [15, 4])
def test_conv_module_equals_a_depthwise_conv1d_on_the_transposed_input(kernel_size):
    """The channels-last conv2d fast path computes exactly Conv1d(padding='same', groups=dim)."""
    from proformer.model.proformer import ConvModule

    torch.manual_seed(0)
    module = ConvModule(8, kernel_size, dropout=0.0)
    x = torch.randn(3, 11, 8, requires_grad=True)
    expected = torch.relu(module.pointwise(module.depthwise(module.norm(x).transpose(1, 2)).transpose(1, 2)))
    torch.testing.assert_close(module(x), expected)
    grad = torch.autograd.grad(module(x).sum(), module.depthwise.weight)[0]
    torch.testing.assert_close(grad, torch.autograd.grad(expected.sum(), module.depthwise.weight)[0])


@pytest.mark.parametrize("key_dim", [8, 3])
def test_attention_is_multi_head_softmax_attention_with_the_fused_qkv_weight(key_dim):
    """Q, K, V are the three row blocks of qkv.weight; heads of size key_dim; scale 1/sqrt(key_dim)."""
    from proformer.model.proformer import Attention

    torch.manual_seed(0)
    attention = Attention(8, heads=2, key_dim=key_dim)
    x = torch.randn(3, 5, 8)
    q, k, v = (t.view(3, 5, 2, key_dim).transpose(1, 2) for t in attention.qkv(x).chunk(3, dim=-1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / key_dim**0.5, dim=-1)
    expected = attention.out((weights @ v).transpose(1, 2).reshape(3, 5, 2 * key_dim))
    torch.testing.assert_close(attention(x), expected)


def test_soft_bin_targets_sum_to_one_and_their_expectation_is_the_bin():
    bins = torch.linspace(1, 16, 301)
    targets = soft_bin_targets(bins)
    assert targets.shape == (301, 18) and (targets >= 0).all()
    torch.testing.assert_close(targets.sum(1), torch.ones(301))
    expectation = targets @ torch.arange(18.0)
    assert (expectation - bins).abs().max() < 0.005
    # The mode is the bin holding b + 0.5 (the nearest integer), and the edges absorb the tails.
    clear = ((bins % 1) - 0.5).abs() > 0.01  # not a tie between two bins
    assert targets.argmax(1)[clear].tolist() == (bins[clear] + 0.5).floor().long().tolist()
    edge = soft_bin_targets(torch.tensor([0.0]))[0]
    assert edge[0] == pytest.approx(float(torch.special.ndtr(torch.tensor(1.0))), abs=1e-6)


def test_soft_bin_model_predicts_the_expected_bin_and_learns(one_thread):
    torch.manual_seed(0)
    config = ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=20, dropout=0.0, mask_ratio=0.0,
                         loss="soft_bins")
    model = Proformer(config)
    assert model.readout.out_features == 18
    codes = torch.randint(0, 4, (64, 20))
    codes = torch.cat([codes, (3 - codes).flip(1)], dim=1)
    targets = (codes[:, :20] == 2).float().sum(1).clamp(max=17)  # G count as a "bin"
    prediction = model.eval()(codes)
    assert prediction.shape == (64,) and ((prediction >= 0) & (prediction <= 17)).all()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(80):
        optimizer.zero_grad()
        loss, parts = model.loss(codes, targets)
        loss.backward()
        optimizer.step()
        first = first if first is not None else parts["target"].item()
    assert parts["target"].item() < first / 3
    assert float(np.corrcoef(model.eval()(codes).detach(), targets)[0, 1]) > 0.9


def test_singleton_flag_changes_the_prediction_only_when_set():
    torch.manual_seed(0)
    model = Proformer(ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=10, singleton_flag=True)).eval()
    codes = torch.randint(0, 4, (4, 20))
    flag = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with torch.no_grad():
        base, flagged = model(codes), model(codes, flag)
    torch.testing.assert_close(model(codes, torch.zeros(4)), base)  # 0 = prediction time
    assert (flagged - base).abs()[[0, 2]].min() > 0 and (flagged - base)[[1, 3]].abs().max() == 0
