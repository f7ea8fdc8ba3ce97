"""The convolutional stem option of the Proformer (``stem="conv"``, docs/model.md section 8)."""

import pytest
import torch
import torch.nn.functional as F

from proformer.model import ModelConfig, Proformer, parameter_counts
from proformer.model.proformer import KmerEmbedding
from proformer.sequence import M, N


def tiny(**changes) -> ModelConfig:
    base = {"stem": "conv", "stem_kernel": 5, "stem_blocks": 2, "dim": 16, "heads": 2, "blocks": 1, "readout": 4,
            "length": 20, "dropout": 0.0}
    base.update(changes)
    return ModelConfig(**base)


def random_codes(batch, length, generator=None):
    forward = torch.randint(0, 4, (batch, length), generator=generator)
    return torch.cat([forward, (3 - forward).flip(1)], dim=1)


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


def test_training_reduces_the_loss_on_a_planted_task():
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
