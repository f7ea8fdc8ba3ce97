"""Proformer: a hybrid Macaron transformer that reads a DNA sequence and predicts a number.

Read top-down: the :class:`Proformer` at the bottom of this file embeds the sequence
(:class:`KmerEmbedding` plus learned position and strand embeddings), prepends H expression-head
tokens, runs the Macaron blocks (:class:`MacaronBlock`), and reads the heads out. During training,
mask filling replaces 5 % of the non-N positions by the mask token ``M`` and a linear layer
reconstructs them. Section numbers refer to ``docs/model.md``.

Options (section 8): the k-mer embedding can be replaced by convolution blocks (:class:`ConvStem`)
or by the DREAM 2022 winner's first block (:class:`LegNetStem`), and each strand can be its own
example (``strands="separate"``); with the ``dream_attn`` preset these give the organisers'
DREAM-Attn hybrid.

Input layout (docs/model.md section 2): a batch of codes of shape ``(batch, 2 * length)`` holding the
padded forward strand followed by its reverse complement (:class:`proformer.sequence.Layout`, the
layout of training and predict; :func:`proformer.sequence.dream_layout` for DREAM promoters),
or a one-hot float tensor ``(batch, 4, length)`` of the forward strand in ``A C G T`` order, from
which the model builds the reverse complement itself (for attribution tools).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..sequence import ALPHABET, M, N
from .config import N_BINS, ModelConfig

N_SYMBOLS = len(ALPHABET)
LAYER_NORM_EPS = 1e-6


def dropout_keep_mask(shape: torch.Size, p: float) -> tuple[torch.Tensor, float]:
    """Draw a CPU dropout mask: each element kept with probability about ``1 - p``.

    ``torch.bernoulli_`` spends a 32-bit Mersenne-twister draw and a float conversion per element,
    on one thread; here one 64-bit draw gives four elements, one per 16-bit word, each kept when
    the word is below a threshold (one vectorised comparison). The keep probability is ``1 - p``
    rounded to a multiple of 2**-16 (p = 0.1 -> 0.1000061); it is returned so the caller can
    scale by its exact inverse.

    Returns
    -------
    keep : torch.Tensor
        bool, ``shape``.
    keep_probability : float
    """
    n = shape.numel()
    kept_words = round((1.0 - p) * 2**16)  # of the 2**16 values of a word
    # from=-2**63, to=None: the full 64-bit range, so every int16 word is uniform on [-2**15, 2**15).
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    keep = words.view(torch.int16) < kept_words - 2**15
    return keep[:n].view(shape), kept_words / 2**16


class _MaskedScale(torch.autograd.Function):
    """``x * keep / keep_probability`` with the bool mask saved for the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        # where(), not mul(): a bool operand of mul() is first copied to a float tensor on CPU.
        return torch.where(keep, x, 0.0).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0.0).mul_(ctx.scale), None, None


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU (:func:`dropout_keep_mask`).

    On a CPU, ``F.dropout``'s Bernoulli draws were 12-18 % of a grid-model training step (they run
    on one thread); these masks cost about a seventh of that. Other devices use ``F.dropout``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (Rates near 1 would round the keep probability to 0; F.dropout takes them exactly.)
        if not self.training or not 0 < self.p < 0.999 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        keep, keep_probability = dropout_keep_mask(x.shape, self.p)
        return _MaskedScale.apply(x, keep, 1.0 / keep_probability)


class KmerEmbedding(nn.Module):
    """Linear map of the one-hot window of ``kmer`` symbols around each position (docs/model.md section 2).

    Stored as ``Linear(kmer * 6, dim)`` over the flattened window (position-major), with zero
    padding of ``(kmer - 1) // 2`` on the left and ``kmer // 2`` on the right, so that for even k
    the window at i covers i-(k/2-1) .. i+k/2. Codes take the fast path: the map is a sum of one
    embedding lookup per window offset (an ``embedding_bag``), no one-hot window is built.
    One-hot floats (attribution) take the equivalent ``Conv1d(6, dim, kmer)``.
    """

    def __init__(self, kmer: int, dim: int):
        super().__init__()
        self.kmer = kmer
        self.linear = nn.Linear(kmer * N_SYMBOLS, dim)
        self.register_buffer("offsets", torch.arange(kmer) * (N_SYMBOLS + 1), persistent=False)

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        """``(batch, 6, positions)`` float one-hot -> ``(batch, positions, dim)``."""
        dim = self.linear.out_features
        weight = self.linear.weight.view(dim, self.kmer, N_SYMBOLS).transpose(1, 2)
        padded = F.pad(symbols, ((self.kmer - 1) // 2, self.kmer // 2))
        return F.conv1d(padded, weight, self.linear.bias).transpose(1, 2)

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``(batch, positions)`` integer codes -> ``(batch, positions, dim)``."""
        batch, positions = codes.shape
        dim = self.linear.out_features
        # Table row (offset j, symbol s) = the weights of symbol s at window offset j; an extra
        # all-zero symbol per offset stands for the zero padding past the sequence ends.
        table = self.linear.weight.view(dim, self.kmer, N_SYMBOLS).permute(1, 2, 0)
        table = torch.cat([table, table.new_zeros(self.kmer, 1, dim)], dim=1).reshape(-1, dim)
        padded = F.pad(codes.long(), ((self.kmer - 1) // 2, self.kmer // 2), value=N_SYMBOLS)
        windows = padded.unfold(1, self.kmer, 1) + self.offsets  # (batch, positions, kmer)
        summed = F.embedding_bag(windows.reshape(-1, self.kmer), table, mode="sum")
        return summed.view(batch, positions, dim) + self.linear.bias


def symbol_one_hot(codes: torch.Tensor) -> torch.Tensor:
    """``(batch, positions)`` integer codes -> ``(batch, 6, positions)`` float one-hot of ``A C G T N M``."""
    # An identity-table lookup rather than F.one_hot: the same values, and it exports to ONNX.
    table = torch.eye(N_SYMBOLS, device=codes.device)
    return F.embedding(codes.long(), table).transpose(1, 2)


class StemBlock(nn.Module):
    """Conv1d ('same', no bias) -> LayerNorm over channels -> SiLU: ``(n, c, T)`` -> ``(n, T, d)``.

    The zero padding is ``(k - 1) // 2`` left and ``k // 2`` right, the k-mer window's (and what
    ``padding="same"`` does, without its warning for even widths).
    """

    def __init__(self, in_channels: int, dim: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, dim, kernel_size, bias=False)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.padding = ((kernel_size - 1) // 2, kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.norm(self.conv(F.pad(x, self.padding)).transpose(1, 2)))


class ConvStem(nn.Module):
    """``stem="conv"``: convolution blocks on the one-hot symbols, instead of the k-mer embedding.

    Block 1 maps the six one-hot channels (``A C G T N M``: N and the mask token each have their
    own channel, as in the k-mer embedding) to d; each further block adds its output to its input
    (a residual). A block is Conv1d (width ``kernel_size``, 'same', zero padding past the ends, no
    bias: a norm follows) -> LayerNorm -> SiLU. LayerNorm, not BatchNorm: every other norm of the
    model is per token, and a prediction should not depend on the other rows of its batch.
    The k-mer embedding is block 1 without its norm and activation (docs/model.md section 8).
    """

    def __init__(self, dim: int, kernel_size: int, blocks: int):
        super().__init__()
        self.blocks = nn.ModuleList(StemBlock(N_SYMBOLS if i == 0 else dim, dim, kernel_size) for i in range(blocks))

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        """``(n, 6, T)`` float one-hot -> ``(n, T, dim)``."""
        h = self.blocks[0](symbols)
        for block in self.blocks[1:]:
            h = h + block(h.transpose(1, 2))
        return h


class LegNetStem(nn.Module):
    """``stem="legnet"``: the DREAM 2022 winner's first block (autosome.org's LegNet), as DREAM-Attn uses it.

    Conv1d(6, d, ``kernel_size``, 'same', no bias) -> BatchNorm1d(d, momentum 0.1) -> SiLU on the
    winner's six input channels, in this order: ``A C G T`` (the winner's order is A G C T; the
    weights of the two differ by that permutation), a reverse-strand flag (1 on the reverse
    complement) and a singleton flag (1 for a training row measured once; 0 otherwise and at
    prediction). Codes: N -> all four letters 0 (the winner's training encoding); the mask token
    M -> 0.25 each (so a masked position differs from N); the zero padding of the conv past the
    ends is 0 in all six channels. Conv weights start as the winner's: normal, sd sqrt(2 / (k d)).
    See docs/model.md section 8 (prixfixe/autosome/first_layers_block.py of the organisers).
    """

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(6, dim, kernel_size, padding="same", bias=False)
        self.norm = nn.BatchNorm1d(dim, momentum=0.1)
        nn.init.normal_(self.conv.weight, std=(2.0 / (kernel_size * dim)) ** 0.5)

    def forward(self, symbols: torch.Tensor, reverse: torch.Tensor, singleton: torch.Tensor | None) -> torch.Tensor:
        """``(n, 6, T)`` one-hot symbols, ``reverse`` flags broadcastable to ``(n, 1, T)``,
        ``singleton`` ``(n,)`` or None (0) -> ``(n, T, dim)``."""
        n, _, positions = symbols.shape
        letters = symbols[:, :4] + 0.25 * symbols[:, M : M + 1]
        reverse = reverse.to(letters.dtype).expand(n, 1, positions)
        if singleton is None:
            single = letters.new_zeros(n, 1, positions)
        else:
            single = singleton.to(letters.dtype).view(n, 1, 1).expand(n, 1, positions)
        x = torch.cat([letters, reverse, single], dim=1)
        return F.silu(self.norm(self.conv(x))).transpose(1, 2)


class FeedForward(nn.Module):
    """LayerNorm -> Linear(d, m d) -> gate (a * swish(b) or a * sigmoid(b)) -> Linear(m d / 2, d)."""

    def __init__(self, dim: int, mult: int, dropout: float, activation: str):
        super().__init__()
        hidden = mult * dim
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.expand = nn.Linear(dim, hidden, bias=False)
        self.project = nn.Linear(hidden // 2, dim, bias=False)
        self.dropout = Dropout(dropout)
        self.gate = F.silu if activation == "swiglu" else torch.sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.expand(self.norm(x)).chunk(2, dim=-1)
        return self.dropout(self.project(self.dropout(a * self.gate(b))))


def _cpu_autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled()


class ConvModule(nn.Module):
    """LayerNorm -> depthwise Conv1d ('same', no bias) -> pointwise Linear(d, d) -> ReLU -> Dropout.

    The depthwise conv runs over every token, expression heads included: it is the only layer
    that can tell the H identical head tokens apart (docs/model.md section 3).
    """

    def __init__(self, dim: int, kernel_size: int, dropout: float, add_normed: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding="same", groups=dim, bias=False)
        self.pointwise = nn.Linear(dim, dim)
        self.dropout = Dropout(dropout)
        # conv_residual="prixfixe": the output also holds the LayerNorm's output (the organisers'
        # port adds the normalised input back before the block's residual, docs/model.md section 8).
        self.add_normed = add_normed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = h = self.norm(x)
        if h.device.type == "cpu" and (h.dtype != torch.float32 or _cpu_autocast_enabled()):
            # On CPUs with AVX-512 BF16, oneDNN's bf16 depthwise kernel on the channels-last view
            # never finishes building for some shapes (dim 8 or 16 with kernel 15 spun for hours
            # in its JIT code generator). The conv is a small share of the work, so in reduced
            # precision it runs in fp32, on the same kernel as fp32 training, and casts back.
            with torch.autocast("cpu", enabled=False):
                h = self._depthwise(h.float(), self.depthwise.weight.float()).to(h.dtype)
        else:
            h = self._depthwise(h, self.depthwise.weight)
        out = self.dropout(F.relu(self.pointwise(h)))
        return out + normed if self.add_normed else out

    def _depthwise(self, h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``(batch, tokens, dim)`` -> ``(batch, tokens, dim)``: the depthwise conv along tokens."""
        # (batch, tokens, dim) seen as (batch, dim, 1, tokens) is a channels-last image: the 2-d
        # depthwise kernel reads it in place, with no transposed copies either way (3x faster
        # forward + backward on CPU than Conv1d on a transposed tensor).
        h = F.conv2d(h.transpose(1, 2).unsqueeze(2), weight.unsqueeze(2), padding="same", groups=self.depthwise.groups)
        return h.squeeze(2).transpose(1, 2)


#: Largest head size that PyTorch's fused CUDA attention kernels (flash, cuDNN) take; the submitted
#: model's heads have key_dim = dim = 512. Beyond it SDPA falls back to the memory-efficient kernel
#: (slow at this head size, above all its backward) or to its unfused math path.
FUSED_HEAD_DIM_LIMIT = 256


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T / sqrt(key_dim)) v`` for ``(batch, heads, tokens, key_dim)`` tensors.

    SDPA, except for heads wider than the fused CUDA kernels take: there :func:`matmul_attention`
    (two batched GEMMs that run on the tensor cores at any head size). On a CPU SDPA is always used
    (its flash kernel takes any head size there). ``benchmarks/gpu_check.py`` times both paths.
    """
    if q.is_cuda and q.shape[-1] > FUSED_HEAD_DIM_LIMIT:
        return matmul_attention(q, k, v)
    return F.scaled_dot_product_attention(q, k, v)


def matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same attention as SDPA (no mask, no dropout) as GEMM, softmax, GEMM.

    The scores are few (tokens x tokens per head; 230 x 230 for DREAM's 2 x 110 + 10 tokens) and
    the softmax runs in float32 whatever the input dtype, as SDPA's kernels do.
    """
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(v.dtype), v)


class Attention(nn.Module):
    """Multi-head self-attention through SDPA; no mask, no attention dropout.

    With ``key_dim = dim`` (the original) Q/K/V project d -> heads * d and the output projects
    heads * d -> d, all with bias.
    """

    def __init__(self, dim: int, heads: int, key_dim: int):
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.qkv = nn.Linear(dim, 3 * heads * key_dim)
        self.out = nn.Linear(heads * key_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        # Q, K and V from separate slices of the one qkv weight: each comes out dense in
        # (batch, tokens, heads, key_dim) order, so SDPA's backward writes its gradients in that
        # order too and the linear layers take them without the stack-and-permute copies that a
        # single fused projection needs (14 % faster training at d256 / 8 heads on CPU).
        weights, biases = self.qkv.weight.chunk(3), self.qkv.bias.chunk(3)
        q, k, v = (F.linear(x, w, b).view(batch, tokens, self.heads, self.key_dim).transpose(1, 2)
                   for w, b in zip(weights, biases))
        y = attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(batch, tokens, self.heads * self.key_dim))


class MacaronBlock(nn.Module):
    """Half FFN, conv, LayerNorm on the residual stream, attention, half FFN (docs/model.md section 3).

    ``order="conformer"`` runs the LayerNorm + attention step before the conv step.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.dim
        self.order = config.block_order
        self.ffn1 = FeedForward(d, config.ffn_mult, config.dropout, config.activation)
        self.conv = ConvModule(d, config.kernel_size, config.dropout, add_normed=config.conv_residual == "prixfixe")
        self.attention_norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.attention = Attention(d, config.heads, config.key_dim)
        self.ffn2 = FeedForward(d, config.ffn_mult, config.dropout, config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ffn1(x)
        if self.order == "macaron":
            x = x + self.conv(x)
            x = self.attention_norm(x)
            x = x + self.attention(x)
        else:
            x = self.attention_norm(x)
            x = x + self.attention(x)
            x = x + self.conv(x)
        return x + 0.5 * self.ffn2(x)


def mask_positions(codes: torch.Tensor, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the mask-filling positions: each non-N position with probability ``ratio``.

    Parameters
    ----------
    codes : torch.Tensor
        Integer codes, shape ``(batch, positions)``.

    Returns
    -------
    torch.Tensor
        bool, shape ``(batch, positions)``; never true where ``codes`` is N.
    """
    draw = torch.rand(codes.shape, generator=generator, device=codes.device if generator is None else generator.device)
    return (draw.to(codes.device) < ratio) & (codes != N)


def swap_strands(codes: torch.Tensor) -> torch.Tensor:
    """``(batch, 2L)`` codes of a sequence -> those of its reverse complement.

    The layout is the forward strand followed by its reverse complement, so the reverse
    complement's own layout is the same two halves swapped.
    """
    half = codes.shape[1] // 2
    return torch.cat([codes[:, half:], codes[:, :half]], dim=1)


def soft_bin_targets(values: torch.Tensor, sd: float = 0.5) -> torch.Tensor:
    """Soft-classification targets over DREAM's 18 sort bins.

    A row with mean bin ``b`` gets a normal centred at ``b + 0.5`` (the middle of bin b, whose
    interval is ``[b, b + 1)``) with standard deviation ``sd``, integrated over each bin; bins 0
    and 17 take the tails. Its expectation over bin indices 0..17 is about ``b``.

    Parameters
    ----------
    values : torch.Tensor
        Mean bins ``(batch,)`` in [0, 17].

    Returns
    -------
    torch.Tensor
        ``(batch, 18)``, rows summing to 1.
    """
    edges = torch.arange(1, N_BINS, dtype=torch.float64, device=values.device)  # inner edges 1..17
    cdf = torch.special.ndtr((edges - (values.double()[:, None] + 0.5)) / sd)
    zeros, ones = torch.zeros_like(cdf[:, :1]), torch.ones_like(cdf[:, :1])
    mass = torch.diff(torch.cat([zeros, cdf, ones], dim=1), dim=1)
    return (mass / mass.sum(dim=1, keepdim=True)).float()


class Proformer(nn.Module):
    """The Proformer model (docs/model.md sections 2-4).

    Parameters
    ----------
    config : ModelConfig
        Shape of the model; see :mod:`proformer.model.config` for presets.

    Examples
    --------
    >>> from proformer.model import Proformer, model_preset
    >>> model = Proformer(model_preset("grid")).eval()
    >>> codes = torch.randint(0, 4, (8, 200))       # forward strand + reverse complement
    >>> model(codes).shape
    torch.Size([8])
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d, positions = config.dim, config.sequence_tokens
        # The stem: the k-mer embedding (original, under its own name so saved runs load), or
        # convolution blocks, or the winner's first block (docs/model.md section 8).
        self.kmer_embedding = KmerEmbedding(config.kmer, d) if config.stem == "kmer" else None
        self.stem = (ConvStem(d, config.stem_kernel, config.stem_blocks) if config.stem == "conv"
                     else LegNetStem(d, config.stem_kernel) if config.stem == "legnet" else None)
        self.position_embedding = nn.Embedding(positions, d)
        # The legnet stem reads the strand (and the singleton flag) as input channels instead.
        self.strand_embedding = nn.Embedding(2, d) if config.stem != "legnet" else None
        # The H head tokens are the bias of a Linear(1, d) applied to zeros: the layout of the
        # original, whose (dead) weight is part of the published parameter count.
        self.expression_heads = nn.Linear(1, d) if config.readout != "pool" else None
        self.blocks = nn.ModuleList(MacaronBlock(config) for _ in range(config.blocks))
        self.readout_dropout = Dropout(config.dropout)
        self.readout = nn.Linear(d, N_BINS if config.loss == "soft_bins" else config.n_targets)
        # Optional per-sequence input (LegNet's singleton channel): flag * vector, added everywhere.
        self.singleton_embedding = (nn.Linear(1, d, bias=False) if config.singleton_flag and config.stem != "legnet"
                                    else None)
        self.reconstruction = nn.Linear(d, N_SYMBOLS) if config.has_reconstruction else None
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        if self.strand_embedding is not None:
            nn.init.normal_(self.strand_embedding.weight, std=0.02)
        strand = torch.cat([torch.zeros(config.length), torch.ones(config.length)]).long()
        self.register_buffer("strand", strand, persistent=False)

    # -- input ---------------------------------------------------------------------------

    def _one_hot_symbols(self, x: torch.Tensor) -> torch.Tensor:
        """One-hot forward strand ``(batch, 4, L)`` -> both strands as ``(batch, 6, 2L)``."""
        length = self.config.length
        if x.dim() != 3 or x.shape[1] != 4 or x.shape[2] != length:
            raise ValueError(f"one-hot input must have shape (batch, 4, {length}) in A C G T order, got {tuple(x.shape)}")
        # An all-zero column is N; the reverse complement flips positions and A<->T, C<->G.
        n = 1.0 - x.sum(dim=1, keepdim=True)
        forward = torch.cat([x, n, torch.zeros_like(n)], dim=1)
        reverse = torch.cat([x.flip(1), n, torch.zeros_like(n)], dim=1).flip(2)
        return torch.cat([forward, reverse], dim=2)

    def _check_codes(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != 2 * self.config.length:
            raise ValueError(
                f"code input must have shape (batch, {2 * self.config.length}) = forward strand + reverse complement, "
                f"got {tuple(x.shape)}; lay sequences out with proformer.sequence.Layout(...).apply, as training "
                "and predict do (proformer.sequence.dream_layout for DREAM promoters)"
            )

    def mask(self, codes: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask filling input: in training mode replace a ``mask_ratio`` of non-N positions by M.

        Returns ``(masked codes, mask)``, both ``(batch, 2L)``; in eval mode (or with
        ``mask_ratio = 0``) the codes come back unchanged with an all-false mask.
        """
        if not self.training or self.config.mask_ratio == 0:
            return codes, torch.zeros(codes.shape, dtype=torch.bool, device=codes.device)
        mask = mask_positions(codes, self.config.mask_ratio, generator)
        return codes.masked_fill(mask, M), mask

    # -- network -------------------------------------------------------------------------

    @property
    def separate_strands(self) -> bool:
        return self.config.strands == "separate"

    def encode(self, x: torch.Tensor, singleton: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``(batch, H + 2L, dim)``: H expression-head tokens, then the sequence.

        With ``strands="separate"`` each strand is an example: ``(2 * batch, H + L, dim)``, the
        forward strand of row i at ``2i``, its reverse complement at ``2i + 1``.
        ``singleton`` ``(batch,)``: the per-sequence flag of a model with ``singleton_flag``
        (None: 0, as at prediction); ignored by other models.
        """
        if x.is_floating_point():
            codes, symbols = None, self._one_hot_symbols(x)
        else:
            self._check_codes(x)
            codes, symbols = x, None
        if self.separate_strands:
            # (batch, 2L) -> (2 batch, L): row 2i is the forward strand of i, 2i + 1 its reverse complement.
            length = self.config.length
            if codes is not None:
                codes = codes.reshape(-1, length)
            else:
                symbols = symbols.unflatten(2, (2, length)).transpose(1, 2).flatten(0, 1)
            if singleton is not None:
                singleton = singleton.repeat_interleave(2)
        examples = (codes if codes is not None else symbols).shape[0]
        strand = torch.arange(examples, device=x.device) % 2 if self.separate_strands else self.strand
        if self.kmer_embedding is not None:
            h = self.kmer_embedding(symbols) if codes is None else self.kmer_embedding.from_codes(codes)
        else:
            if symbols is None:
                symbols = symbol_one_hot(codes)
            if self.config.stem == "conv":
                h = self.stem(symbols)
            else:
                reverse = strand.view(-1, 1, 1) if self.separate_strands else strand.view(1, 1, -1)
                h = self.stem(symbols, reverse, singleton if self.config.singleton_flag else None)
        h = h + self.position_embedding.weight
        if self.strand_embedding is not None:
            h = h + (self.strand_embedding(strand)[:, None] if self.separate_strands else self.strand_embedding(strand))
        if self.singleton_embedding is not None and singleton is not None:
            h = h + self.singleton_embedding(singleton.to(h.dtype).view(-1, 1, 1))
        if self.expression_heads is not None:
            # Applied to a zero input, as in the original: the output is the bias, and the weight
            # stays in the graph (with a zero gradient) so DDP finds every parameter used.
            head = self.expression_heads(h.new_zeros(1, 1)).to(h.dtype)
            h = torch.cat([head.expand(h.shape[0], self.config.n_expression_heads, -1), h], dim=1)
        for block in self.blocks:
            h = block(h)
        return h

    def readout_outputs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Mean over the expression heads of a shared linear readout, or pooling then the readout:
        ``(batch, n_targets)``, or ``(batch, 18)`` bin logits with ``loss="soft_bins"``; one row per
        example of :meth:`encode` (per strand with ``strands="separate"``).

        Pooling then ``Linear(d, 18)`` is the winner's final block (a pointwise Conv1d(d, 18) then
        the average over positions: the mean commutes with the linear map).
        """
        heads = self.config.n_expression_heads
        if heads:
            return self.readout(self.readout_dropout(hidden[:, :heads])).mean(dim=1)
        return self.readout(hidden.mean(dim=1))

    def _strand_mean(self, y: torch.Tensor) -> torch.Tensor:
        """Per-example values -> per-row values: the mean of the two strands with ``strands="separate"``."""
        return y.unflatten(0, (-1, 2)).mean(dim=1) if self.separate_strands else y

    def predict_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Prediction ``(batch,)`` or ``(batch, n_targets)``; the expected bin with soft bins (with
        separate strands: the mean of the two strands' predictions, as DREAM-Attn predicted)."""
        y = self.readout_outputs(hidden)
        if self.config.loss == "soft_bins":
            bins = torch.arange(N_BINS, dtype=torch.float32, device=y.device)
            return self._strand_mean(torch.softmax(y.float(), dim=-1) @ bins)
        y = self._strand_mean(y)
        return y.squeeze(-1) if self.config.n_targets == 1 else y

    def forward(self, x: torch.Tensor, singleton: torch.Tensor | None = None) -> torch.Tensor:
        """Predict from codes ``(batch, 2L)`` or one-hot ``(batch, 4, L)``.

        Returns ``(batch,)``, or ``(batch, n_targets)`` when ``n_targets > 1``. Never masks:
        mask filling is part of :meth:`loss`.
        """
        return self.predict_from_hidden(self.encode(x, singleton))

    def loss(
        self,
        codes: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        singleton: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss: MSE on the prediction (or the soft-bin KL divergence) + mask-filling
        cross-entropy (docs/model.md section 4).

        Parameters
        ----------
        codes : torch.Tensor
            Integer codes ``(batch, 2L)``, unmasked.
        targets : torch.Tensor
            ``(batch,)`` or ``(batch, n_targets)``, standardised; raw mean bins (0..17) with
            ``loss="soft_bins"``.
        mask : torch.Tensor, optional
            bool ``(batch, 2L)`` positions to mask; drawn here (training mode only) if omitted.
        singleton : torch.Tensor, optional
            ``(batch,)`` flags for a model with ``singleton_flag``.

        Returns
        -------
        loss : torch.Tensor
            Scalar ``target + reconstruction``.
        parts : dict
            ``target`` (the MSE, or the KL divergence of the soft bins), ``mse`` (of the
            prediction, for logging), ``reconstruction`` (cross-entropy summed over masked
            positions divided by the number masked + 1; 0 for a model without the
            reconstruction layer), ``n_masked`` and ``prediction``. With ``strands="separate"``
            ``target`` is over the two strands as two examples, ``mse`` and ``prediction`` are of
            their mean.
        """
        if mask is None:
            inputs, mask = self.mask(codes, generator)
        else:
            mask = mask & (codes != N)
            inputs = codes.masked_fill(mask, M)
        hidden = self.encode(inputs, singleton)
        outputs = self.readout_outputs(hidden)
        # With separate strands each strand is a training example with its row's target.
        example_targets = targets.repeat_interleave(2, dim=0) if self.separate_strands else targets
        if self.config.loss == "soft_bins":
            log_q = torch.log_softmax(outputs.float(), dim=-1)
            prediction = log_q.exp() @ torch.arange(N_BINS, dtype=torch.float32, device=log_q.device)
            target_loss = F.kl_div(log_q, soft_bin_targets(example_targets.reshape(-1)), reduction="batchmean")
            prediction = self._strand_mean(prediction)
            mse = F.mse_loss(prediction, targets.float().view_as(prediction))
        elif self.separate_strands:
            per_example = outputs.squeeze(-1) if self.config.n_targets == 1 else outputs
            target_loss = F.mse_loss(per_example.float(), example_targets.float().view_as(per_example))
            prediction = self._strand_mean(per_example)
            mse = F.mse_loss(prediction.float(), targets.float().view_as(prediction))
        else:
            prediction = outputs.squeeze(-1) if self.config.n_targets == 1 else outputs
            mse = target_loss = F.mse_loss(prediction.float(), targets.float().view_as(prediction))
        heads = self.config.n_expression_heads
        n_masked = mask.sum()
        if self.reconstruction is None:  # a model without mask filling (docs/model.md section 8)
            reconstruction = target_loss.new_zeros(())
        else:
            sequence = hidden[:, heads:]
            if self.separate_strands:
                sequence = sequence.reshape(codes.shape[0], -1, sequence.shape[-1])  # back to (batch, 2L, dim)
            reconstruction = reconstruction_loss(self.reconstruction, sequence, codes, mask, dense=not sequence.is_cpu)
        parts = {"target": target_loss, "mse": mse, "reconstruction": reconstruction, "n_masked": n_masked,
                 "prediction": prediction}
        return target_loss + reconstruction, parts


def reconstruction_loss(layer: nn.Module, sequence: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor,
                        dense: bool) -> torch.Tensor:
    """Mask filling's cross-entropy, summed over the masked positions, divided by their number + 1.

    ``sequence`` ``(batch, 2L, dim)`` hidden states, ``codes`` ``(batch, 2L)`` the unmasked symbols,
    ``mask`` bool ``(batch, 2L)``. ``dense=False`` puts only the masked positions through ``layer``
    (less work: the CPU's choice); a boolean index needs their count on the host, though, which on
    a GPU is a synchronisation every step. ``dense=True`` runs every position and weights the
    unmasked ones by 0: the same value without leaving the device.
    """
    if dense:
        logits = layer(sequence).float().flatten(0, 1)
        per_position = F.cross_entropy(logits, codes.flatten().long(), reduction="none")
        total = (per_position * mask.flatten()).sum()
    else:
        total = F.cross_entropy(layer(sequence[mask]).float(), codes[mask].long(), reduction="sum")
    return total / (mask.sum() + 1)


def parameter_counts(model: nn.Module) -> list[tuple[str, int]]:
    """Parameters per top-level module and per block part, then the total.

    Returns ``[(name, count), ...]`` in registration order: ``kmer_embedding``, ...,
    ``blocks.0``, ``blocks.0.ffn1``, ..., ``reconstruction``, and ``("total", n)`` last.
    """
    def count(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    rows = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            for index, block in enumerate(child):
                rows.append((f"{name}.{index}", count(block)))
                rows.extend((f"{name}.{index}.{part}", count(m)) for part, m in block.named_children() if count(m))
        elif count(child):
            rows.append((name, count(child)))
    rows.append(("total", count(model)))
    return rows
