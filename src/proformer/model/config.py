"""The one dataclass that fixes a Proformer's shape, and the named presets.

Field names are the public names used everywhere: run configs (section ``model``), the CLI's
``--set field=value``, and ``config.json`` beside saved weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..sequence import DREAM_LENGTH

ACTIVATIONS = ("swiglu", "glu")
BLOCK_ORDERS = ("macaron", "conformer")
HEAD_DIMS = ("full", "split")
LOSSES = ("mse", "soft_bins")
#: How the one-hot sequence becomes d-vectors: the k-mer embedding (original), convolution blocks,
#: or the DREAM 2022 winner's first block (autosome.org's LegNet stem, as used by DREAM-Attn).
STEMS = ("kmer", "conv", "legnet")
#: ``standard``: ``x + Conv(x)``; ``prixfixe``: ``x + LN(x) + Conv'(LN(x))``, the organisers' port.
CONV_RESIDUALS = ("standard", "prixfixe")
#: ``joint``: one token sequence of both strands (original); ``separate``: each strand its own example.
STRANDS = ("joint", "separate")
#: DREAM 2022's expression is a mean over 18 FACS sort bins, 0..17.
N_BINS = 18


@dataclass
class ModelConfig:
    """Shape of a Proformer.

    Attributes
    ----------
    kmer : int
        Width of the k-mer window embedding (10 in the submitted model, 5 in the grids).
    dim : int
        Model width d.
    heads : int
        Attention heads.
    blocks : int
        Number of Macaron blocks.
    readout : int or "pool"
        Number of expression heads H, or ``"pool"`` for global average pooling.
    mask_ratio : float
        Probability that a non-N position is replaced by the mask token during training
        (mask filling); 0 switches mask filling off.
    kernel_size : int
        Width of the depthwise convolution in each block.
    dropout : float
        Dropout rate of the FFN, conv module and expression-head readout.
    ffn_mult : int
        The FFN's first projection is ``ffn_mult * dim`` wide, gated down to half of that.
    activation : "swiglu" or "glu"
        Gate of the FFN: ``a * swish(b)`` (original) or ``a * sigmoid(b)`` (the talk's GLU).
    block_order : "macaron" or "conformer"
        ``macaron``: conv before attention (the original); ``conformer``: attention first.
    head_dim : "full" or "split"
        ``full``: every head has key_dim = dim (the original); ``split``: dim / heads.
    length : int
        Positions per strand after padding, that of the data's :class:`proformer.sequence.Layout`;
        the model sees ``2 * length`` sequence tokens.
    n_targets : int
        Number of predicted values per sequence.
    loss : "mse" or "soft_bins"
        ``mse`` (original): regression on the (standardised) target. ``soft_bins``: the readout
        gives 18 logits over DREAM's sort bins, trained with KL divergence towards a discretised
        normal around the row's mean bin; the prediction is the expected bin index (0..17).
    singleton_flag : bool
        The model takes a per-sequence flag (1: a training row measured once, its target an
        integer; 0 at prediction), added to every token through a learned vector (the
        ``legnet`` stem: through its singleton input channel instead). Set by ``train`` from
        ``data.singleton_flag``.
    stem : "kmer", "conv" or "legnet"
        What turns the one-hot sequence into d-vectors (docs/model.md section 8). ``kmer``: the
        k-mer embedding (original). ``conv``: ``stem_blocks`` convolution blocks (Conv1d of
        width ``stem_kernel``, LayerNorm, SiLU; residual after the first) on the one-hot of
        ``A C G T N M``, instead of the k-mer embedding. ``legnet``: the DREAM 2022 winner's first
        block (Conv1d(6, d, ``stem_kernel``) without bias, BatchNorm, SiLU) on its six channels
        ``A C G T``, reverse-strand flag, singleton flag; it replaces the strand embedding and
        the singleton vector. ``kmer`` is only read by the ``kmer`` stem.
    stem_kernel : int
        Width of the convolutions of the ``conv`` and ``legnet`` stems (7, as the winner's).
    stem_blocks : int
        Number of blocks of the ``conv`` stem.
    conv_residual : "standard" or "prixfixe"
        ``standard``: the block's conv step is ``x + Conv(x)`` (original). ``prixfixe``: ``x +
        LN(x) + Conv'(LN(x))`` (Conv' the conv module after its LayerNorm), as the organisers'
        port of the Proformer block computes it (DREAM-Attn).
    strands : "joint" or "separate"
        ``joint``: the forward strand and its reverse complement are one sequence of
        ``2 * length`` tokens (original). ``separate``: each strand is its own example of
        ``length`` tokens (its strand given by the strand embedding, or the ``legnet`` stem's
        reverse flag); the loss treats the two as two training examples with the row's target,
        and the prediction is their mean (DREAM-Attn's reverse-complement rows and averaging).
    """

    #: Fields renamed since an earlier release (old -> new). An old name is refused, naming the
    #: new one, in run configs, ``--set`` and the config.json of older runs.
    FORMER_NAMES: ClassVar[dict[str, str]] = {"singleton_input": "singleton_flag"}

    kmer: int = 5
    dim: int = 64
    heads: int = 2
    blocks: int = 1
    readout: int | str = 8
    mask_ratio: float = 0.05
    kernel_size: int = 15
    dropout: float = 0.1
    ffn_mult: int = 4
    activation: str = "swiglu"
    block_order: str = "macaron"
    head_dim: str = "full"
    length: int = DREAM_LENGTH
    n_targets: int = 1
    loss: str = "mse"
    singleton_flag: bool = False
    stem: str = "kmer"
    stem_kernel: int = 7
    stem_blocks: int = 2
    conv_residual: str = "standard"
    strands: str = "joint"

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_expression_heads(self) -> int:
        """Number of expression-head tokens (0 for pooling)."""
        return 0 if self.readout == "pool" else int(self.readout)

    @property
    def key_dim(self) -> int:
        """Size of each attention head."""
        return self.dim if self.head_dim == "full" else self.dim // self.heads

    @property
    def sequence_tokens(self) -> int:
        """Sequence tokens of one example of the core: ``2 * length`` (joint strands) or ``length``."""
        return 2 * self.length if self.strands == "joint" else self.length

    @property
    def has_reconstruction(self) -> bool:
        """Whether the model has the mask-filling layer: always with the k-mer stem (the
        published parameter count includes it), otherwise only when mask filling is on."""
        return self.stem == "kmer" or self.mask_ratio > 0

    def validate(self) -> None:
        """Raise ValueError naming the field, its value and what is allowed."""
        if isinstance(self.readout, str) and self.readout != "pool":
            if self.readout.isdigit():
                self.readout = int(self.readout)
            else:
                raise ValueError(f"readout={self.readout!r}: use 'pool' or a number of expression heads >= 1")
        positive = ["kmer", "dim", "heads", "blocks", "kernel_size", "ffn_mult", "length", "n_targets",
                    "stem_kernel", "stem_blocks"]
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: must be an integer >= 1")
        if self.readout != "pool" and (isinstance(self.readout, bool) or self.readout < 1):
            raise ValueError(f"readout={self.readout!r}: use 'pool' or a number of expression heads >= 1")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio={self.mask_ratio!r}: must be in [0, 1)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout!r}: must be in [0, 1)")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}: valid values are {', '.join(ACTIVATIONS)}")
        if self.block_order not in BLOCK_ORDERS:
            raise ValueError(f"block_order={self.block_order!r}: valid values are {', '.join(BLOCK_ORDERS)}")
        if self.head_dim not in HEAD_DIMS:
            raise ValueError(f"head_dim={self.head_dim!r}: valid values are {', '.join(HEAD_DIMS)}")
        if self.head_dim == "split" and self.dim % self.heads:
            raise ValueError(f"head_dim='split' needs dim divisible by heads, got dim={self.dim}, heads={self.heads}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: valid values are {', '.join(LOSSES)}")
        if self.loss == "soft_bins" and self.n_targets != 1:
            raise ValueError(f"loss='soft_bins' predicts one bin-valued target, got n_targets={self.n_targets}")
        for name, allowed in (("stem", STEMS), ("conv_residual", CONV_RESIDUALS), ("strands", STRANDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: valid values are {', '.join(allowed)}")
        if (self.ffn_mult * self.dim) % 2:
            raise ValueError(f"ffn_mult * dim must be even for the gated FFN, got {self.ffn_mult} * {self.dim}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Build from a dict of fields; an unknown field, or one under its former name
        (:attr:`FORMER_NAMES`), is a ValueError naming it (the new name too)."""
        names = {f.name for f in dataclasses.fields(cls)}
        former = sorted(set(values) & set(cls.FORMER_NAMES))
        if former:
            raise ValueError(f"model field {former[0]!r} is now {cls.FORMER_NAMES[former[0]]!r}: rename it")
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown model field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(names))}")
        return cls(**values)


MODEL_PRESETS: dict[str, ModelConfig] = {
    # The model submitted to DREAM 2022 (47,425,543 parameters).
    "dream2022": ModelConfig(kmer=10, dim=512, heads=8, blocks=4, readout=32),
    # The smallest cell of the talk's ablation grid; the other cells override dim/heads/blocks/readout.
    "grid": ModelConfig(kmer=5, dim=64, heads=2, blocks=1, readout=8),
    # DREAM-Attn of the organisers' follow-up (Prix Fixe): the winner's first block, 4 Proformer
    # blocks as the organisers ported them (256 wide, 4 heads of 64), the winner's final block
    # (a pointwise map to 18 bins, averaged over positions = pooling then Linear(d, 18), soft
    # bins); one strand per example. 4,539,410 parameters at the organisers' 150 positions,
    # 4,526,610 at DREAM's 100 (docs/model.md section 8).
    "dream_attn": ModelConfig(stem="legnet", stem_kernel=7, dim=256, heads=4, head_dim="split", blocks=4,
                              kernel_size=15, dropout=0.1, readout="pool", loss="soft_bins", mask_ratio=0.0,
                              conv_residual="prixfixe", strands="separate"),
}


def model_preset(name: str) -> ModelConfig:
    """A fresh copy of a named model preset."""
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(MODEL_PRESETS)}")
    return dataclasses.replace(MODEL_PRESETS[name])
