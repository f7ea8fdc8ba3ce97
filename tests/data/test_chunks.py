"""Tests of :mod:`proformer.data.chunks`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import prepare_cli, random_dna

from proformer.data.dataset import Dataset
from proformer.data.prepare import MIN_FLANK, prepare
from proformer.sequence import DREAM_HEAD, DREAM_TAIL, decode


def table(path: Path, sequences: list[str]) -> Path:
    path.write_text("sequence\tvalue\n" + "".join(f"{s}\t{i * 0.5 - 3.25}\n" for i, s in enumerate(sequences)))
    return path


def test_keep_flanks_an_explicit_trim_and_dream_files_are_not_searched(lentimpra, tmp_path, capsys):
    status, err = prepare_cli(capsys, lentimpra, "--out", tmp_path / "kept", "--keep-flanks")
    assert status == 0, err  # old: argparse refuses the unknown --keep-flanks
    assert "constant flanks" not in err
    meta = json.loads((tmp_path / "kept" / "meta.json").read_text())
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 230} and "flanks" not in meta
    # An explicit --trim is the layout, whatever the rows share.
    status, err = prepare_cli(capsys, lentimpra, "--out", tmp_path / "trim", "--trim", "3,0")
    meta = json.loads((tmp_path / "trim" / "meta.json").read_text())
    assert status == 0 and "constant flanks" not in err
    assert meta["transforms"] == {"head": 3, "tail": 0, "length": 227} and "flanks" not in meta
    # DREAM TSV: its own 17 + 13 nt, not counted again (the rows share the whole DREAM flanks and more).
    rng = np.random.default_rng(0)
    rows = [f"{DREAM_HEAD}AAAA{s}{DREAM_TAIL}\t{i}\n" for i, s in enumerate(random_dna(rng, 30, 80))]
    (tmp_path / "dream.txt").write_text("".join(rows))
    meta = prepare(tmp_path / "dream.txt", tmp_path / "dream", progress=False)
    assert meta["source"]["format"] == "dream" and "flanks" not in meta
    assert meta["transforms"]["head"] == len(DREAM_HEAD) and meta["transforms"]["tail"] == len(DREAM_TAIL)


def test_random_sequences_have_no_flanks(tmp_path, capsys):
    sequences = random_dna(np.random.default_rng(1), 300, 50)
    meta = prepare(table(tmp_path / "random.tsv", sequences), tmp_path / "ds", progress=False)
    assert "constant flanks" not in capsys.readouterr().err
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 50}
    assert meta["flanks"] == {"head": "", "tail": "", "rows": 300}  # old: no "flanks" key (prepare never looked)


def test_a_shared_start_and_end_count_from_min_flank_nt(tmp_path, capsys):
    assert MIN_FLANK == 4  # old: no MIN_FLANK
    rng = np.random.default_rng(2)
    middles = random_dna(rng, 100, 30)
    # 3 nt shared at both ends: chance, not a flank.
    short = [f"TGA{m.lower() if i == 7 else m}CCA" for i, m in enumerate(middles)]
    meta = prepare(table(tmp_path / "three.tsv", short), tmp_path / "three", progress=False)
    assert "constant flanks" not in capsys.readouterr().err
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 36}
    assert meta["flanks"] == {"head": "", "tail": "", "rows": 100}
    # 4 nt at the start, 3 at the end (lower case is the same base): the start only.
    four = [f"tgaC{m}CCA" if i == 3 else f"TGAC{m}CCA" for i, m in enumerate(middles)]
    meta = prepare(table(tmp_path / "four.tsv", four), tmp_path / "four", progress=False)
    err = capsys.readouterr().err
    assert "found constant flanks shared by all 100 rows: 4 nt at the start (TGAC); the model" in err
    assert meta["transforms"] == {"head": 4, "tail": 0, "length": 33}
    assert meta["flanks"]["head"] == "TGAC" and meta["flanks"]["tail"] == ""


def test_rows_of_different_lengths_share_a_suffix_measured_from_their_ends(tmp_path, capsys):
    rng = np.random.default_rng(3)
    suffix = "GATTACAGG"
    sequences = [random_dna(rng, 1, int(n))[0] + suffix for n in rng.integers(20, 61, size=80)]
    meta = prepare(table(tmp_path / "ragged.tsv", sequences), tmp_path / "ds", chunk_rows=9, progress=False)
    assert f"9 nt at the end ({suffix})" in capsys.readouterr().err
    longest = max(map(len, sequences))
    assert meta["transforms"] == {"head": 0, "tail": 9, "length": longest - 9}
    assert meta["flanks"]["tail"] == suffix and meta["min_length"] < meta["max_length"] == longest
    # The model's window: each row without its own last 9 nt.
    dataset = Dataset(tmp_path / "ds")
    window = dataset.layout().forward_strand(np.asarray(dataset.codes), dataset.lengths)
    assert [s.strip("N") for s in decode(window)] == [s[:-9] for s in sequences]


def test_one_row_or_identical_rows_have_no_flanks(tmp_path):
    meta = prepare(table(tmp_path / "one.tsv", ["ACGTACGTAAAACCCC"]), tmp_path / "one", progress=False)
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 16}
    assert meta["flanks"] == {"head": "", "tail": "", "rows": 1}  # old: no "flanks" key
    meta = prepare(table(tmp_path / "same.tsv", ["ACGTACGTAAAACCCC"] * 5), tmp_path / "same", progress=False)
    assert meta["transforms"] == {"head": 0, "tail": 0, "length": 16} and meta["flanks"]["head"] == ""


def test_the_length_filter_applies_after_the_flanks_found(tmp_path):
    rng = np.random.default_rng(4)
    middles = [random_dna(rng, 1, int(n))[0] for n in rng.integers(8, 17, size=60)]
    sequences = [f"CCGGA{m}TTGCA" for m in middles]
    meta = prepare(table(tmp_path / "t.tsv", sequences), tmp_path / "ds", length=12, chunk_rows=8, progress=False)
    fits = [len(m) <= 12 for m in middles]
    assert 0 < sum(fits) < len(fits)
    # old: every row is longer than 12 untrimmed, so none was kept (an error)
    assert meta["transforms"] == {"head": 5, "tail": 5, "length": 12}
    assert meta["rows_kept"] == sum(fits) and meta["dropped"]["too_long"] == len(fits) - sum(fits)
    dataset = Dataset(tmp_path / "ds")
    kept = [s for s, ok in zip(sequences, fits) if ok]
    assert decode(np.asarray(dataset.codes), dataset.lengths) == kept
    assert meta["max_length"] == max(map(len, kept))
    values = [i * 0.5 - 3.25 for i, ok in enumerate(fits) if ok]
    assert np.allclose(np.asarray(dataset.targets)[:, 0], values)
