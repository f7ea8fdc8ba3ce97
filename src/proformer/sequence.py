"""DNA sequences as uint8 codes, and the DREAM 2022 input layout as composable transforms.

Symbols ``A C G T N M`` map to codes ``0..5`` (``M`` is the mask token of mask filling).
Everything here works on whole batches with numpy: a list of strings is joined into one
byte buffer and translated through a lookup table, so there is no per-character Python loop.

This module is the one home of the alphabet, its codes, the lookup tables from bytes to codes
(one per kind of input: :data:`SYMBOL_CODES`, :data:`INPUT_CODES`, :data:`GENOME_CODES`), the
complement tables, the DREAM 2022 constants and the model's input layout (:class:`Layout`).

Ragged input is held as a padded matrix plus a length per row, ``(codes, lengths)`` with
``codes`` of shape ``(n, max_length)`` (padding filled with ``N``) and ``lengths`` of shape
``(n,)``. The DREAM layout of the original Proformer is, in order::

    codes, lengths = encode_padded(sequences)
    codes, lengths = trim(codes, lengths, len(DREAM_HEAD), len(DREAM_TAIL))  # drop the flanks
    keep = lengths <= DREAM_LENGTH                                           # length filter
    codes = center_pad(codes[keep], lengths[keep], DREAM_LENGTH)             # (n, 100), N both sides
    codes = add_reverse_complement(codes)                                    # (n, 200)

:class:`Layout` is that layout as one object (training, predict and :func:`dream_layout` all use
it); :func:`dream_layout` does all four steps in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

ALPHABET = "ACGTNM"
A, C, G, T, N, M = range(6)
#: What every byte -> code table below gives a byte outside its alphabet.
INVALID = 255

# The constant flanks of every DREAM 2022 promoter (17 nt before, 13 nt after the 80 random nt).
DREAM_HEAD = "TGCATTTTTTTCACATC"
DREAM_TAIL = "GGTTACGGCTGTT"
#: Positions per strand after padding in the original Proformer: the window a trimmed row must fit.
DREAM_LENGTH = 100

#: The reporter plasmid around the 80 random nt (100 nt each side, from the challenge's
#: plasmid sequence): upstream ends with DREAM_HEAD, downstream starts with DREAM_TAIL.
#: ``pad="plasmid"`` fills the padding with this real context instead of N.
PLASMID_UPSTREAM = (
    "CTATCAGGGCGATGGCCCACTACGTGAACCATCACCCTAATCAAGTGCTA"
    "GCAGGAATGATGCAAAAGGTTCCCGATTCGAACTGCATTTTTTTCACATC"
)
PLASMID_DOWNSTREAM = (
    "GGTTACGGCTGTTTCTTAATTAAAAAAAGATAGAAAACATTAGGAGTGTA"
    "ACACAAGACTTTCGGATCCTGAGCAGGCAAGATAAACGAAGGCAAAGATG"
)
PAD_MODES = ("n", "plasmid")

#: The bases each IUPAC symbol stands for (genome FASTAs and motif consensuses use them).
IUPAC_BASES = {
    "A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
    "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}
#: ``str.translate`` table: the complement of an IUPAC string (read it reversed for the RC).
IUPAC_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def _byte_table(codes: dict[str, int]) -> np.ndarray:
    """uint8 ``(256,)``: byte -> code for each symbol in either case, :data:`INVALID` elsewhere."""
    table = np.full(256, INVALID, dtype=np.uint8)
    for symbol, code in codes.items():
        table[[ord(symbol.upper()), ord(symbol.lower())]] = code
    return table


#: byte -> code for what :func:`encode` accepts: ``A C G T N M``, either case (predict's input).
SYMBOL_CODES = _byte_table({symbol: code for code, symbol in enumerate(ALPHABET)})
#: byte -> code for data files (prepare): ``A C G T N`` only, as M is the mask token that models
#: insert, never data.
INPUT_CODES = _byte_table({symbol: code for code, symbol in enumerate(ALPHABET[:M])})
#: :data:`INPUT_CODES` for ``bytes.translate``, several times faster than numpy indexing.
INPUT_CODES_BYTES = INPUT_CODES.tobytes()
#: byte -> code for genome FASTAs (atac): IUPAC ambiguity codes are N to a model (IUPAC M, A or C,
#: must not become the mask token), A C G T N keep their codes.
GENOME_CODES = _byte_table(
    {symbol: ALPHABET.index(bases) if len(bases) == 1 else N for symbol, bases in IUPAC_BASES.items()}
)
#: code -> ASCII letter (decoding).
CODE_LETTERS = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
#: code -> code of the complement: A<->T, C<->G; N and M are their own complement.
COMPLEMENT = np.array([T, G, C, A, N, M], dtype=np.uint8)


def _rows_by_length(lengths: np.ndarray):
    """Yield ``(length, row indices)`` for each distinct length.

    Ragged operations run as one slice copy per distinct length (a few dozen for DREAM data)
    instead of building an index matrix as large as the data.
    """
    order = np.argsort(lengths, kind="stable")
    values, starts = np.unique(lengths[order], return_index=True)
    for value, rows in zip(values, np.split(order, starts[1:])):
        yield int(value), rows


def _as_list(sequences: str | Sequence[str]) -> list[str]:
    if isinstance(sequences, str):
        return [sequences]
    return list(sequences)


def _raise_invalid(sequences: list[str], buffer: np.ndarray, codes: np.ndarray, starts: np.ndarray) -> None:
    flat = int(np.flatnonzero(codes == INVALID)[0])
    index = int(np.searchsorted(starts, flat, side="right") - 1)
    position = flat - int(starts[index])
    char = chr(buffer[flat])
    raise ValueError(
        f"invalid symbol {char!r} in sequence {index} at position {position} "
        f"(valid symbols: {', '.join(ALPHABET)}, upper or lower case): "
        f"{sequences[index][max(0, position - 10):position + 11]!r}"
    )


def _encode_buffer(sequences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated codes of all sequences and the length of each, validated."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    joined = "".join(sequences)
    try:
        raw = joined.encode("ascii")
    except UnicodeEncodeError as error:
        # Find the sequence and position of the first non-ASCII character for the message.
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        index = int(np.searchsorted(starts, error.start, side="right") - 1)
        position = error.start - int(starts[index])
        raise ValueError(
            f"invalid symbol {joined[error.start]!r} in sequence {index} at position {position} "
            f"(valid symbols: {', '.join(ALPHABET)}, upper or lower case)"
        ) from None
    buffer = np.frombuffer(raw, dtype=np.uint8)
    codes = SYMBOL_CODES[buffer]
    if (codes == INVALID).any():
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        _raise_invalid(sequences, buffer, codes, starts)
    return codes, lengths


def encode(sequences: str | Sequence[str]) -> np.ndarray:
    """Encode sequences of one common length.

    Parameters
    ----------
    sequences : str or sequence of str
        DNA over ``ACGTNM`` (either case).

    Returns
    -------
    np.ndarray
        uint8 codes, shape ``(length,)`` for a single string, else ``(n, length)``.

    Raises
    ------
    ValueError
        On a symbol outside the alphabet (naming sequence index, position and character), or
        when lengths differ (use :func:`encode_padded` for ragged input).
    """
    single = isinstance(sequences, str)
    seqs = _as_list(sequences)
    if not seqs:
        return np.zeros((0, 0), dtype=np.uint8)
    codes, lengths = _encode_buffer(seqs)
    if (lengths != lengths[0]).any():
        first = int(np.flatnonzero(lengths != lengths[0])[0])
        raise ValueError(
            f"sequences differ in length (sequence 0 has {lengths[0]} nt, sequence {first} has "
            f"{lengths[first]} nt); use encode_padded() for ragged input"
        )
    codes = codes.reshape(len(seqs), int(lengths[0]))
    return codes[0] if single else codes


def encode_padded(
    sequences: str | Sequence[str], max_length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Encode sequences of any lengths into a padded matrix.

    Parameters
    ----------
    sequences : str or sequence of str
        DNA over ``ACGTNM`` (either case).
    max_length : int, optional
        Width of the matrix; defaults to the longest sequence. Longer sequences raise.

    Returns
    -------
    codes : np.ndarray
        uint8, shape ``(n, max_length)``; positions past a sequence's end hold ``N``.
    lengths : np.ndarray
        int64, shape ``(n,)``.
    """
    seqs = _as_list(sequences)
    flat, lengths = _encode_buffer(seqs)
    width = int(lengths.max(initial=0)) if max_length is None else int(max_length)
    if len(seqs) and lengths.max() > width:
        longest = int(np.argmax(lengths))
        raise ValueError(f"sequence {longest} has {lengths[longest]} nt, more than max_length={width}")
    if len(seqs) and (lengths == width).all():
        return flat.reshape(len(seqs), width), lengths
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    codes = np.full((len(seqs), width), N, dtype=np.uint8)
    for length, rows in _rows_by_length(lengths):
        if length:
            codes[rows, :length] = flat[starts[rows][:, None] + np.arange(length)]
    return codes, lengths


def decode(codes: np.ndarray, lengths: np.ndarray | None = None) -> list[str]:
    """Codes back to strings; ``lengths`` cuts each row of a padded matrix to its length."""
    codes = np.atleast_2d(np.asarray(codes))
    letters = CODE_LETTERS[codes]
    rows = [row.tobytes().decode("ascii") for row in letters]
    if lengths is not None:
        rows = [row[: int(n)] for row, n in zip(rows, lengths)]
    return rows


def reverse_complement(codes: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Reverse complement on codes.

    Parameters
    ----------
    codes : np.ndarray
        uint8, shape ``(..., length)``.
    lengths : np.ndarray, optional
        Shape ``(n,)`` for a padded matrix: each row is reversed within its own length and the
        padding stays at the end.

    Returns
    -------
    np.ndarray
        Same shape and dtype as ``codes``.
    """
    codes = np.asarray(codes)
    if lengths is None:
        return COMPLEMENT[codes[..., ::-1]]
    out = np.full_like(codes, N)
    for length, rows in _rows_by_length(lengths):
        if length:
            out[rows, :length] = COMPLEMENT[codes[rows, length - 1 :: -1]]
    return out


def trim(
    codes: np.ndarray, lengths: np.ndarray, head: int = len(DREAM_HEAD), tail: int = len(DREAM_TAIL)
) -> tuple[np.ndarray, np.ndarray]:
    """Remove ``head`` positions from the start and ``tail`` from the end of every row.

    Returns the trimmed ``(codes, lengths)``; a row shorter than ``head + tail`` becomes empty.
    """
    if head < 0 or tail < 0:
        raise ValueError(f"trim lengths must be >= 0, got head={head}, tail={tail}")
    new_lengths = np.maximum(lengths - head - tail, 0)
    width = max(codes.shape[1] - head - tail, 0)
    trimmed = codes[:, head : head + width].copy()
    for length, rows in _rows_by_length(new_lengths):
        if length < width:
            trimmed[rows, length:] = N  # the tail flank of shorter rows
    return trimmed, new_lengths


def center_pad(codes: np.ndarray, lengths: np.ndarray, length: int = DREAM_LENGTH) -> np.ndarray:
    """Centre every row in a window of ``length`` positions, padding with ``N``.

    Odd padding puts the extra ``N`` on the right, as the original Proformer did.

    Parameters
    ----------
    codes : np.ndarray
        uint8, shape ``(n, width)``.
    lengths : np.ndarray
        Shape ``(n,)``; every value must be ``<= length`` (filter first).

    Returns
    -------
    np.ndarray
        uint8, shape ``(n, length)``.
    """
    if len(lengths) and lengths.max() > length:
        row = int(np.argmax(lengths))
        raise ValueError(
            f"row {row} has {lengths[row]} positions, more than the padded length {length}; "
            "drop such rows first (e.g. keep = lengths <= length)"
        )
    return place(codes, lengths, length, (length - np.asarray(lengths, dtype=np.int64)) // 2)


def place(codes: np.ndarray, lengths: np.ndarray, length: int, left: np.ndarray, pad: str = "n") -> np.ndarray:
    """Put every row at its own offset in a window of ``length`` positions and fill the rest.

    Parameters
    ----------
    codes : np.ndarray
        uint8, shape ``(n, width)``; row i holds ``lengths[i] <= length`` symbols.
    lengths : np.ndarray
        Shape ``(n,)``.
    left : np.ndarray
        Shape ``(n,)``: positions before each row's first symbol, ``0 <= left <= length - lengths``
        (``(length - lengths) // 2`` centres, as :func:`center_pad`).
    pad : "n" or "plasmid"
        ``n`` fills with N; ``plasmid`` with the reporter plasmid: the end of
        :data:`PLASMID_UPSTREAM` before the row and the start of :data:`PLASMID_DOWNSTREAM` after
        it, as the sequence sits in the measured construct.

    Returns
    -------
    np.ndarray
        uint8, shape ``(n, length)``.
    """
    if pad not in PAD_MODES:
        raise ValueError(f"pad={pad!r}: valid values are {', '.join(PAD_MODES)}")
    lengths, left = np.asarray(lengths, dtype=np.int64), np.asarray(left, dtype=np.int64)
    if len(lengths) and ((left < 0).any() or (left + lengths > length).any()):
        row = int(np.flatnonzero((left < 0) | (left + lengths > length))[0])
        raise ValueError(f"row {row}: {lengths[row]} symbols at offset {left[row]} do not fit in {length} positions")
    if pad == "plasmid" and length > len(PLASMID_UPSTREAM):
        raise ValueError(f"pad=plasmid covers up to {len(PLASMID_UPSTREAM)} positions per side; length={length} is longer")
    out = np.full((len(lengths), length), N, dtype=np.uint8)
    upstream, downstream = _PLASMID_CODES
    # One slice copy per distinct (length, offset) pair: a few dozen for DREAM data, a few
    # hundred with shifts, never an index matrix as large as the data.
    for key, rows in _rows_by_length(lengths * (length + 1) + left):
        size, start = divmod(key, length + 1)
        out[rows, start : start + size] = codes[rows, :size]
        if pad == "plasmid":
            out[rows, :start] = upstream[len(upstream) - start :]
            out[rows, start + size :] = downstream[: length - start - size]
    return out


def add_reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Append the reverse complement of each (padded) row: ``(n, L)`` -> ``(n, 2 L)``."""
    return np.concatenate([codes, reverse_complement(codes)], axis=-1)


@dataclass(frozen=True)
class Layout:
    """How stored rows become model input: trim ``head``/``tail``, centre-pad to ``length``
    (with N, or with the reporter plasmid's own sequence: ``pad="plasmid"``), add the RC.

    The one layout of the package: training (``BatchBuilder``), ``predict`` and
    :func:`dream_layout` all lay rows out through it, and ``config.json`` stores its fields.

    Rows longer than ``length`` after trimming (:meth:`fits` is False) follow one rule: prepare
    drops them from training data and counts them under ``too_long`` in meta.json, as does
    :func:`dream_layout` (returning which rows it kept); :meth:`apply` cuts such a row to its
    centre (an odd excess loses its extra position on the right), so that a user's prediction
    input that holds a few still gets a prediction.

    Attributes
    ----------
    head, tail : int
        Positions trimmed from the start and end of every row (the constant DREAM flanks).
    length : int
        Positions per strand after padding; the model input is ``2 * length`` wide.
    pad : "n" or "plasmid"
        What fills the padding (see :func:`place`).
    """

    head: int = len(DREAM_HEAD)
    tail: int = len(DREAM_TAIL)
    length: int = DREAM_LENGTH
    pad: str = "n"

    def __post_init__(self) -> None:
        if self.pad not in PAD_MODES:
            raise ValueError(f"pad={self.pad!r}: valid values are {', '.join(PAD_MODES)}")

    def fits(self, lengths: np.ndarray) -> np.ndarray:
        """bool ``(n,)``: the row of length ``lengths[i]`` (shape ``(n,)``) fits the window after trimming."""
        return np.maximum(np.asarray(lengths) - self.head - self.tail, 0) <= self.length

    def forward_strand(self, codes: np.ndarray, lengths: np.ndarray, shifts: np.ndarray | None = None) -> np.ndarray:
        """``(batch, width)`` stored codes -> ``(batch, length)`` forward strand, without the RC.

        ``shifts`` ``(batch,)`` moves each row that many positions right of centre (left when
        negative), limited to its padding: the training-time shift augmentation.
        """
        trimmed, kept = trim(codes, lengths, self.head, self.tail)
        if len(kept) and kept.max() > self.length:
            excess = np.maximum(kept - self.length, 0)
            trimmed, kept = _cut_center(trimmed, kept, excess)
        left = (self.length - kept) // 2  # odd padding: the extra position goes right
        if shifts is not None:
            left = np.clip(left + shifts, 0, self.length - kept)
        return place(trimmed, kept, self.length, left, self.pad)

    def window_positions(self, lengths: np.ndarray, width: int | None = None) -> np.ndarray:
        """Where each position of the stored rows lands in the forward strand (no shifts).

        Parameters
        ----------
        lengths : np.ndarray
            ``(n,)`` row lengths.
        width : int, optional
            Columns of the result; defaults to the longest row.

        Returns
        -------
        np.ndarray
            int64 ``(n, width)``: the forward-strand window index (``0 <= w < length``) of position
            ``p`` of row ``i``, or -1 where the layout does not show it to the model (a trimmed
            flank, a position cut from a row longer than the window, or past the row's end). The
            reverse-complement half shows window index ``w`` at model column ``2 * length - 1 - w``.
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        width = int(lengths.max(initial=0)) if width is None else int(width)
        kept = np.maximum(lengths - self.head - self.tail, 0)
        excess = np.maximum(kept - self.length, 0)
        kept = kept - excess
        first = self.head + excess // 2  # the first stored position the model sees
        left = (self.length - kept) // 2  # its window index, as forward_strand places it
        p = np.arange(width)[None, :]
        seen = (p >= first[:, None]) & (p < (first + kept)[:, None])
        return np.where(seen, p - first[:, None] + left[:, None], -1)

    def apply(self, codes: np.ndarray, lengths: np.ndarray, shifts: np.ndarray | None = None) -> np.ndarray:
        """``(batch, width)`` stored codes -> ``(batch, 2 * length)`` model codes.

        ``shifts`` as in :meth:`forward_strand`; rows that do not :meth:`fit <fits>` are cut to
        their centre.
        """
        return add_reverse_complement(self.forward_strand(codes, lengths, shifts))


def _cut_center(codes: np.ndarray, lengths: np.ndarray, excess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop ``excess[i] // 2`` positions from the left and the rest from the right of row i.

    ``codes`` ``(n, width)``, ``lengths`` and ``excess`` ``(n,)``; returns the cut
    ``(codes, lengths)``, the vacated positions filled with N.
    """
    out = codes.copy()
    for value in np.unique(excess[excess > 0]):
        rows = np.flatnonzero(excess == value)
        left = int(value) // 2
        width = lengths[rows[0]] - value
        out[rows, :width] = codes[rows, left : left + width]
        out[rows, width:] = N
    return out, lengths - excess


def dream_layout(
    sequences: Sequence[str] | tuple[np.ndarray, np.ndarray],
    length: int = DREAM_LENGTH,
    head: int = len(DREAM_HEAD),
    tail: int = len(DREAM_TAIL),
    with_reverse_complement: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The full DREAM input layout: trim flanks, drop long rows, centre-pad, append the RC.

    ``Layout(head, tail, length).apply`` on the rows that :meth:`Layout.fits`: the layout of
    training and predict, with the rows longer than the window dropped as prepare drops them.

    Parameters
    ----------
    sequences : sequence of str, or (codes, lengths)
        Raw promoter sequences or their already encoded padded matrix ``(n, width)``, ``(n,)``.
    length : int
        Positions per strand after padding (:data:`DREAM_LENGTH` in the original).
    head, tail : int
        Constant flank lengths to trim (those of :data:`DREAM_HEAD` and :data:`DREAM_TAIL`).
    with_reverse_complement : bool
        Append the reverse-complement strand.

    Returns
    -------
    codes : np.ndarray
        uint8, shape ``(kept, 2 * length)`` (or ``(kept, length)`` without the RC).
    keep : np.ndarray
        bool, shape ``(n,)``: which input rows passed the length filter.
    """
    if isinstance(sequences, tuple):
        codes, lengths = sequences
    else:
        codes, lengths = encode_padded(sequences)
    layout = Layout(head=head, tail=tail, length=length)
    keep = layout.fits(lengths)
    if not keep.all():
        codes, lengths = codes[keep], lengths[keep]
    if with_reverse_complement:
        return layout.apply(codes, lengths), keep
    return layout.forward_strand(codes, lengths), keep


def one_hot(codes: np.ndarray) -> np.ndarray:
    """One-hot view in ``A C G T`` order for interoperability.

    Parameters
    ----------
    codes : np.ndarray
        uint8, shape ``(n, length)``.

    Returns
    -------
    np.ndarray
        float32, shape ``(n, 4, length)``; ``N`` and ``M`` are all-zero columns.
    """
    codes = np.asarray(codes)
    eye = np.eye(6, 4, dtype=np.float32)  # rows 4 (N) and 5 (M) are zero
    return np.moveaxis(eye[codes], -1, -2)


_PLASMID_CODES = (encode([PLASMID_UPSTREAM])[0], encode([PLASMID_DOWNSTREAM])[0])
