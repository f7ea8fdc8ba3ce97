"""Tests of :mod:`proformer.sequence`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import random_dna, random_dna_training_ideas, rc

from proformer import sequence as seq
from proformer.sequence import (
    DREAM_HEAD,
    DREAM_LENGTH,
    DREAM_TAIL,
    GENOME_CODES,
    INPUT_CODES,
    INPUT_CODES_BYTES,
    INVALID,
    PLASMID_DOWNSTREAM,
    PLASMID_UPSTREAM,
    SYMBOL_CODES,
    A,
    C,
    G,
    Layout,
    M,
    N,
    T,
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


def dream(random_part: str) -> str:
    return DREAM_HEAD + random_part + DREAM_TAIL


def _reference_forward(sequence: str, head: int, tail: int, length: int) -> str:
    """Plain-Python forward strand of the one rule: trim, cut a long row to its centre (the extra
    position of an odd excess goes on the right), centre-pad with N (the extra N on the right)."""
    core = sequence[head : len(sequence) - tail] if len(sequence) > head + tail else ""
    if len(core) > length:
        left = (len(core) - length) // 2
        core = core[left : left + length]
    left = (length - len(core)) // 2
    return "N" * left + core + "N" * (length - len(core) - left)


def _codes_of(table: np.ndarray, text: str) -> list[int]:
    return table[np.frombuffer(text.encode("ascii"), dtype=np.uint8)].tolist()


_DUPLICATES = {
    "the invalid marker": r"=\s*255\b",
    "a byte lookup table": r"np\.full\(\s*256",
    "a table definition": r"^\s*_?[A-Z0-9_]*(LUT|TABLE)\s*(:[^=]*)?=",
    "a complement table": r"str\.maketrans\(",
    "a letter table": r'frombuffer\(b"[ACGTNM]+"',
    "a DREAM flank or window literal": r"\b(head|tail|length)\s*(:\s*int\s*)?=\s*(17|13|100)\b",
    "a bare N code": r"codes\w*\s*[!=]=\s*4\b",
    "a symbol code constant": r"^\s*\w*(_CODE|SYMBOLS)\b[\w\s,]*=\s*\d",
    "an IUPAC table": r"""["']R["']\s*:\s*["'0]""",
}


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


def test_every_symbol_round_trips_and_the_default_layout_trims_the_real_dream_flanks():
    # Each letter of the alphabet has its own code and decodes back to itself, in either case.
    codes = encode(seq.ALPHABET)
    assert len(set(codes.tolist())) == len(seq.ALPHABET)
    assert decode(codes) == [seq.ALPHABET] and decode(encode(seq.ALPHABET.lower())) == [seq.ALPHABET]
    # The DREAM 2022 construct's flanks, spelled out as the challenge's files have them (not the
    # package's constants): the default layout keeps exactly the random core, centred ...
    head, tail = "TGCATTTTTTTCACATC", "GGTTACGGCTGTT"
    rng = np.random.default_rng(4)
    cores = random_dna(rng, 1, 80) + random_dna(rng, 1, 75)
    codes, lengths = encode_padded([head + core + tail for core in cores])
    laid = Layout().apply(codes, lengths)
    assert decode(laid[:, :DREAM_LENGTH]) == ["N" * 10 + cores[0] + "N" * 10, "N" * 12 + cores[1] + "N" * 13]
    # ... and padding with the plasmid puts those flanks back: an 80-nt core's window is the
    # measured 110-nt construct's centre.
    plasmid = Layout(head=len(head), tail=len(tail), length=DREAM_LENGTH, pad="plasmid").apply(codes, lengths)
    assert decode(plasmid[:1, :DREAM_LENGTH]) == [(head + cores[0] + tail)[7:107]]


@pytest.mark.parametrize("head, tail, length", [(17, 13, 100), (3, 0, 9), (0, 0, 8), (2, 5, 11)])
def test_dream_layout_is_layout_apply_on_the_rows_that_fit(head, tail, length):
    rng = np.random.default_rng(head * 100 + length)
    # Too short to hold the flanks, short with odd and even padding, exactly the window, and
    # longer than it by an odd and an even excess.
    totals = list(range(0, head + tail + length + 6)) + rng.integers(0, head + tail + length + 20, 200).tolist()
    sequences = [random_dna(rng, 1, int(n), "ACGTN")[0] if n else "" for n in totals]
    codes, lengths = encode_padded(sequences)
    layout = Layout(head=head, tail=tail, length=length)

    laid, keep = dream_layout((codes, lengths), length=length, head=head, tail=tail)
    assert np.array_equal(keep, layout.fits(lengths))
    assert keep.any() and not keep.all()
    expected = layout.apply(codes[keep], lengths[keep])
    assert laid.dtype == expected.dtype == np.uint8
    assert laid.tobytes() == expected.tobytes() and laid.shape == expected.shape == (int(keep.sum()), 2 * length)
    forward, _ = dream_layout(sequences, length=length, head=head, tail=tail, with_reverse_complement=False)
    assert forward.tobytes() == laid[:, :length].tobytes()

    # Both against the plain-Python rule: dream_layout keeps exactly the rows that fit, and
    # Layout.apply lays out every row, cutting the long ones to their centre.
    assert keep.tolist() == [max(len(s) - head - tail, 0) <= length for s in sequences]
    everything = layout.apply(codes, lengths)
    assert decode(everything[:, :length]) == [_reference_forward(s, head, tail, length) for s in sequences]
    assert np.array_equal(everything[:, length:], reverse_complement(everything[:, :length]))
    assert np.array_equal(everything[keep], laid)


def test_layout_apply_cuts_an_over_long_row_to_its_centre():
    layout = Layout(head=2, tail=1, length=4)
    codes, lengths = encode_padded(["GGACGTACT", "GGACGTACGT", "GGCAT"])
    # Trimmed: ACGTAC (excess 2), ACGTACG (excess 3: the extra position is lost on the right), CA.
    assert layout.fits(lengths).tolist() == [False, False, True]
    out = layout.apply(codes, lengths)
    assert decode(out[:, :4]) == ["CGTA", "CGTA", "NCAN"]
    assert decode(out[:, 4:]) == ["TACG", "TACG", "NTGN"]
    laid, keep = dream_layout((codes, lengths), length=4, head=2, tail=1)
    assert keep.tolist() == [False, False, True] and decode(laid) == ["NCANNTGN"]


def test_layout_defaults_are_the_dream_layout():
    layout = Layout()
    assert (layout.head, layout.tail, layout.length) == (len(DREAM_HEAD), len(DREAM_TAIL), DREAM_LENGTH)
    rng = np.random.default_rng(3)
    sequences = [dream(random_dna(rng, 1, int(n))[0]) for n in rng.integers(60, 80, 20)]
    codes, lengths = encode_padded(sequences)
    assert np.array_equal(layout.apply(codes, lengths), dream_layout(sequences)[0])


def test_input_table_refuses_the_mask_letter_and_maps_lower_case():
    assert _codes_of(INPUT_CODES, "ACGTN") == _codes_of(INPUT_CODES, "acgtn") == [A, C, G, T, N]
    assert _codes_of(INPUT_CODES, "Mm") == [INVALID, INVALID]
    assert _codes_of(INPUT_CODES, "RYX-U \t") == [INVALID] * 7
    # The bytes.translate form is the same table.
    every_byte = bytes(range(256))
    assert every_byte.translate(INPUT_CODES_BYTES) == INPUT_CODES.tobytes()


def test_symbol_table_is_the_input_table_plus_the_mask_letter():
    assert _codes_of(SYMBOL_CODES, "ACGTNMacgtnm") == [A, C, G, T, N, M] * 2
    differs = np.flatnonzero(SYMBOL_CODES != INPUT_CODES)
    assert sorted(chr(b) for b in differs) == ["M", "m"]


def test_genome_table_maps_iupac_ambiguity_codes_to_n():
    assert _codes_of(GENOME_CODES, "ACGTacgt") == [A, C, G, T] * 2
    # IUPAC M (A or C) is N to a model, never the mask token.
    assert _codes_of(GENOME_CODES, "NnRYrySWKMmBDHVbdhv") == [N] * 19
    assert _codes_of(GENOME_CODES, "X-U.") == [INVALID] * 4


def test_alphabet_tables_and_dream_constants_live_only_in_sequence_py():
    package = Path(seq.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == Path(seq.__file__):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for what, pattern in _DUPLICATES.items():
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(package)}:{number}: {what}: {line.strip()}")
    assert not found, "import these from proformer.sequence instead:\n" + "\n".join(found)


def test_plasmid_flanks_are_the_shared_plasmid_sequence(shared_dir):
    plasmid = json.loads((shared_dir / "data" / "dream2022" / "plasmid.json").read_text())
    start, end = plasmid.index("N"), plasmid.rindex("N") + 1
    assert end - start == 80 and set(plasmid[start:end]) == {"N"}
    assert plasmid[start - len(PLASMID_UPSTREAM):start] == PLASMID_UPSTREAM
    assert plasmid[end:end + len(PLASMID_DOWNSTREAM)] == PLASMID_DOWNSTREAM
    assert PLASMID_UPSTREAM.endswith(DREAM_HEAD) and PLASMID_DOWNSTREAM.startswith(DREAM_TAIL)


def test_plasmid_padding_places_the_exact_flanks():
    cores = [random_dna_training_ideas(80), random_dna_training_ideas(77), random_dna_training_ideas(100), random_dna_training_ideas(12)]
    codes, lengths = encode_padded([DREAM_HEAD + c + DREAM_TAIL for c in cores])
    laid = Layout(head=17, tail=13, length=100, pad="plasmid").apply(codes, lengths)
    assert laid.shape == (4, 200)
    for core, row in zip(cores, laid):
        left = (100 - len(core)) // 2
        right = 100 - len(core) - left
        forward = decode(row[:100])[0]
        expected = PLASMID_UPSTREAM[len(PLASMID_UPSTREAM) - left:] + core + PLASMID_DOWNSTREAM[:right]
        assert forward == expected
        assert decode(row[100:])[0] == rc(expected)
    # 80 nt: the trimmed head and tail come back as the padding, i.e. the measured 110-nt construct's centre.
    assert decode(laid[0, :100])[0] == (DREAM_HEAD + cores[0] + DREAM_TAIL)[7:107]
    n_padded = Layout(head=17, tail=13, length=100).apply(codes, lengths)
    assert decode(n_padded[1, :100])[0] == "N" * 11 + cores[1] + "N" * 12
