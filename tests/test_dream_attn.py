"""DREAM-Attn (the organisers' Prix Fixe hybrid, docs/model.md section 8): parameter count against
the organisers' layer shapes, and the pieces that make it: the winner's first block, the organisers'
conv residual, the winner's final block, one strand per example."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from proformer.config import apply_overrides
from proformer.model import ModelConfig, Proformer, model_preset, parameter_counts
from proformer.sequence import M, N


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


# -- the acceptance test ----------------------------------------------------------------------


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


# -- the pieces -------------------------------------------------------------------------------


def tiny(**changes) -> ModelConfig:
    base = dict(model_preset("dream_attn").to_dict(), dim=16, blocks=1, length=12, dropout=0.0)
    base.update(changes)
    return ModelConfig(**base)


def random_codes(batch, length, generator=None):
    forward = torch.randint(0, 4, (batch, length), generator=generator)
    forward[:, :2] = N  # padding
    return torch.cat([forward, (3 - forward).flip(1).masked_fill(forward.flip(1) == N, N)], dim=1)


def test_legnet_stem_channels():
    """A C G T one-hot (N -> 0, M -> 0.25 each), the reverse flag, the singleton flag."""
    torch.manual_seed(0)
    stem = Proformer(tiny()).stem.eval()
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
    model = Proformer(tiny()).eval()
    hidden = torch.randn(4, 12, 16)
    logits = F.conv1d(hidden.transpose(1, 2), model.readout.weight[:, :, None], model.readout.bias).mean(dim=2)
    torch.testing.assert_close(model.readout_outputs(hidden), logits)
    expected_bin = (torch.softmax(logits, dim=1) * torch.arange(18)).sum(dim=1)
    torch.testing.assert_close(model.predict_from_hidden(hidden), expected_bin.unflatten(0, (2, 2)).mean(dim=1))


def test_separate_strands_are_two_examples_and_the_prediction_their_mean():
    torch.manual_seed(0)
    model = Proformer(tiny()).eval()
    codes = random_codes(3, 12)
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
    model = Proformer(tiny()).eval()
    codes = random_codes(2, 12)
    changed = codes.clone()
    changed[:, 15] = (changed[:, 15] + 1) % 4
    a, b = model.encode(codes), model.encode(changed)
    assert torch.equal(a[0::2], b[0::2]) and not torch.equal(a[1::2], b[1::2])


def test_singleton_flag_enters_through_the_channel():
    torch.manual_seed(0)
    model = Proformer(tiny(singleton_flag=True)).eval()
    assert model.singleton_embedding is None
    codes = random_codes(2, 12)
    assert not torch.equal(model(codes, torch.ones(2)), model(codes))
    torch.testing.assert_close(model(codes, torch.zeros(2)), model(codes))
    # A model without singleton_flag ignores the flag, as the k-mer model does.
    without = Proformer(tiny()).eval()
    without.load_state_dict(model.state_dict())
    torch.testing.assert_close(without(codes, torch.ones(2)), model(codes))


@pytest.mark.parametrize("changes", [{}, {"mask_ratio": 0.3, "readout": 3, "singleton_flag": True},
                                     {"strands": "joint", "loss": "mse", "n_targets": 2}])
def test_shapes_gradients_and_mask_filling(changes):
    torch.manual_seed(0)
    config = tiny(**changes)
    model = Proformer(config).train()
    codes = random_codes(4, 12)
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


def test_one_hot_path_equals_code_path():
    torch.manual_seed(0)
    model = Proformer(tiny()).eval()
    codes = random_codes(3, 12)
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
