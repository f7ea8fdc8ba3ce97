import dataclasses

import numpy as np
import pytest
import torch

from proformer.model import ModelConfig, Proformer, mask_positions, model_preset, parameter_counts
from proformer.model.proformer import Dropout, dropout_keep_mask
from proformer.sequence import N, dream_layout, one_hot


def tiny(**changes) -> ModelConfig:
    base = dict(kmer=5, dim=16, heads=2, blocks=1, readout=4, length=20, dropout=0.0)
    base.update(changes)
    return ModelConfig(**base)


def random_codes(batch, length, generator=None, n_rate=0.0):
    forward = torch.randint(0, 4, (batch, length), generator=generator)
    if n_rate:
        forward[torch.rand(forward.shape, generator=generator) < n_rate] = N
    reverse = (3 - forward).flip(1)
    reverse[forward.flip(1) == N] = N
    return torch.cat([forward, reverse], dim=1)


# -- parameter counts of the submitted model (docs/model.md section 1) ----------------------------


@pytest.fixture(scope="module")
def dream_model():
    return Proformer(model_preset("dream2022"))


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


# -- kmer embedding ------------------------------------------------------------------------


@pytest.mark.parametrize("kmer", [4, 5])
def test_kmer_embedding_window_matches_spec(kmer):
    """The window at i covers i-(k-1)//2 .. i+k//2 (for even k: i-(k/2-1) .. i+k/2), zero padded."""
    torch.manual_seed(0)
    model = Proformer(tiny(kmer=kmer))
    codes = random_codes(2, 20)
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
    embedding = Proformer(tiny(kmer=kmer)).kmer_embedding
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


# -- masking -------------------------------------------------------------------------------


def test_masking_never_touches_n_and_hits_the_rate():
    generator = torch.Generator().manual_seed(0)
    codes = random_codes(2000, 100, generator, n_rate=0.2)
    mask = mask_positions(codes, 0.05, generator)
    assert not mask[codes == N].any()
    rate = mask[codes != N].float().mean().item()
    # ~320k draws: the standard error of the rate is ~0.0004.
    assert abs(rate - 0.05) < 0.002


def test_masking_only_in_training_mode():
    model = Proformer(tiny(mask_ratio=0.3))
    codes = random_codes(16, 20, n_rate=0.1)
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
    model = Proformer(tiny()).eval()
    codes = random_codes(4, 20)
    mask = torch.zeros_like(codes, dtype=torch.bool)
    mask[:, 3] = True
    mask[0, 7] = True
    _, parts = model.loss(codes, torch.zeros(4), mask=mask)
    hidden = model.encode(codes.masked_fill(mask, 5))[:, 4:]
    logits = model.reconstruction(hidden)[mask]
    expected = torch.nn.functional.cross_entropy(logits, codes[mask], reduction="sum") / (5 + 1)
    torch.testing.assert_close(parts["reconstruction"], expected)


# -- outputs and gradients -----------------------------------------------------------------


@pytest.mark.parametrize("readout, n_targets, shape", [("pool", 1, (3,)), (1, 1, (3,)), (32, 1, (3,)), (8, 2, (3, 2))])
def test_output_shapes(readout, n_targets, shape):
    model = Proformer(tiny(readout=readout, n_targets=n_targets)).eval()
    assert model(random_codes(3, 20)).shape == shape
    assert model.encode(random_codes(3, 20)).shape == (3, model.config.n_expression_heads + 40, 16)


@pytest.mark.parametrize("changes", [{}, {"readout": "pool"}, {"activation": "glu", "block_order": "conformer", "head_dim": "split"}])
def test_every_parameter_gets_a_gradient(changes):
    torch.manual_seed(0)
    model = Proformer(tiny(blocks=2, dropout=0.1, **changes)).train()
    loss, _ = model.loss(random_codes(8, 20), torch.randn(8))
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
    model = Proformer(tiny(readout=4)).eval()
    hidden = model.encode(random_codes(1, 20))
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
    model = Proformer(tiny())
    with pytest.raises(ValueError, match=r"\(batch, 40\)"):
        model(torch.zeros(2, 20, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, 4, 20\)"):
        model(torch.zeros(2, 20, 4))


def test_dropout_is_active_only_in_training_mode():
    torch.manual_seed(0)
    model = Proformer(tiny(dropout=0.5))
    codes = random_codes(4, 20)
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


def test_tiny_model_fits_a_planted_target():
    """64 random sequences whose target is the count of a planted motif: MSE falls >= 10x."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    codes = random_codes(64, 20, generator)
    motif = torch.tensor([0, 2, 3])  # AGT
    windows = codes[:, :20].unfold(1, 3, 1)
    count = (windows == motif).all(-1).sum(1).float()
    planted = count + codes[:, :20].eq(1).float().mean(1) * 4  # motif count + C content
    target = (planted - planted.mean()) / planted.std()
    model = Proformer(tiny(dim=32, mask_ratio=0.0)).train()
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
