import numpy as np
import pytest

from proformer import sequence as seq
from proformer.sequence import (
    DREAM_HEAD,
    DREAM_TAIL,
    N,
    add_reverse_complement,
    center_pad,
    decode,
    dream_layout,
    encode,
    encode_padded,
    one_hot,
    reverse_complement,
    trim,
)


def random_dna(rng, n, length, alphabet="ACGT"):
    letters = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    return [row.tobytes().decode() for row in letters[rng.integers(0, len(alphabet), (n, length))]]


def test_encode_maps_alphabet_to_codes_and_accepts_lower_case():
    assert encode("ACGTNM").tolist() == [0, 1, 2, 3, 4, 5]
    assert encode("acgtnm").tolist() == [0, 1, 2, 3, 4, 5]
    codes = encode(["AC", "gt"])
    assert codes.dtype == np.uint8 and codes.shape == (2, 2)
    assert codes.tolist() == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    "sequences, index, position, char",
    [(["ACGT", "ACXT"], 1, 2, "X"), (["ACGT", "AC-T"], 1, 2, "-"), (["R"], 0, 0, "R"), (["AA", "AAAé"], 1, 3, "é")],
)
def test_invalid_symbol_names_sequence_position_and_character(sequences, index, position, char):
    with pytest.raises(ValueError) as error:
        encode_padded(sequences)
    message = str(error.value)
    assert f"sequence {index}" in message
    assert f"position {position}" in message
    assert repr(char) in message


def test_encode_rejects_ragged_input_and_points_to_encode_padded():
    with pytest.raises(ValueError, match="encode_padded"):
        encode(["ACG", "AC"])


def test_encode_padded_pads_with_n_and_returns_lengths():
    codes, lengths = encode_padded(["ACG", "T", ""])
    assert lengths.tolist() == [3, 1, 0]
    assert codes.tolist() == [[0, 1, 2], [3, N, N], [N, N, N]]
    assert decode(codes, lengths) == ["ACG", "T", ""]


def test_reverse_complement_round_trip_and_known_value():
    rng = np.random.default_rng(0)
    sequences = random_dna(rng, 50, 37, "ACGTN")
    codes = encode(sequences)
    assert np.array_equal(reverse_complement(reverse_complement(codes)), codes)
    assert decode(reverse_complement(encode("AACGTN"))) == ["NACGTT"]
    # Ragged: each row reversed within its own length, padding stays at the end.
    padded, lengths = encode_padded(["AAC", "G"])
    rc = reverse_complement(padded, lengths)
    assert decode(rc, lengths) == ["GTT", "C"]
    assert rc[1, 1:].tolist() == [N, N]
    assert np.array_equal(reverse_complement(rc, lengths), padded)


def dream(random_part: str) -> str:
    return DREAM_HEAD + random_part + DREAM_TAIL


@pytest.mark.parametrize("total, kept", [(87, True), (110, True), (130, True), (131, False), (135, False)])
def test_dream_layout_trims_centres_and_filters(total, kept):
    rng = np.random.default_rng(total)
    core = random_dna(rng, 1, total - 30)[0]
    codes, keep = dream_layout([dream(core)])
    assert keep.tolist() == [kept]
    if not kept:
        assert codes.shape == (0, 200)
        return
    forward = decode(codes[:, :100])[0]
    left = (100 - len(core)) // 2
    right = 100 - len(core) - left
    assert right - left in (0, 1)  # odd padding: the extra N goes to the right
    assert forward == "N" * left + core + "N" * right
    assert np.array_equal(codes[:, 100:], reverse_complement(codes[:, :100]))


def test_dream_layout_keeps_row_order_and_flank_lengths_are_configurable():
    rng = np.random.default_rng(1)
    cores = random_dna(rng, 3, 80) + random_dna(rng, 1, 105) + random_dna(rng, 1, 57)
    codes, keep = dream_layout([dream(c) for c in cores])
    assert keep.tolist() == [True, True, True, False, True]
    assert [decode(row)[0].strip("N") for row in codes[:, :100]] == [cores[i] for i in (0, 1, 2, 4)]
    codes, keep = dream_layout(["GGACGTAA"], length=6, head=2, tail=2, with_reverse_complement=False)
    assert decode(codes) == ["NACGTN"]


def test_trim_and_center_pad_on_padded_matrix():
    codes, lengths = encode_padded(["TTACGAA", "TTCAA"])
    trimmed, new = trim(codes, lengths, head=2, tail=2)
    assert new.tolist() == [3, 1]
    assert decode(trimmed, new) == ["ACG", "C"]
    padded = center_pad(trimmed, new, 4)
    assert decode(padded) == ["ACGN", "NCNN"]
    with pytest.raises(ValueError, match="more than the padded length"):
        center_pad(trimmed, new, 2)


def test_vectorised_layout_matches_a_plain_python_reference():
    rng = np.random.default_rng(2)
    sequences = [dream(random_dna(rng, 1, int(n), "ACGTN")[0]) for n in rng.integers(50, 80, 200)]
    codes, _ = dream_layout(sequences)

    def reference(s):
        core = s[17:-13]
        left = (100 - len(core)) // 2
        forward = "N" * left + core + "N" * (100 - len(core) - left)
        complement = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
        return forward + "".join(complement[c] for c in reversed(forward))

    assert decode(codes) == [reference(s) for s in sequences]


def test_add_reverse_complement_doubles_length():
    codes = encode(["ACGTT"])
    assert decode(add_reverse_complement(codes)) == ["ACGTTAACGT"]


def test_one_hot_is_acgt_ordered_with_zero_columns_for_n_and_m():
    x = one_hot(encode(["ACGTNM"]))
    assert x.shape == (1, 4, 6) and x.dtype == np.float32
    expected = np.zeros((4, 6), dtype=np.float32)
    for position, channel in enumerate([0, 1, 2, 3]):
        expected[channel, position] = 1
    assert np.array_equal(x[0], expected)


def test_alphabet_constants():
    assert seq.ALPHABET == "ACGTNM"
    assert len(DREAM_HEAD) == 17 and len(DREAM_TAIL) == 13
