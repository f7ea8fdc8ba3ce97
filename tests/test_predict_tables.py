"""Issue 14, predict: tables with a header, dataset directories, training units by default, and
``proformer.load`` for lists of strings.

The tiny runs of helpers.write_tiny_run (target statistics mean 1, std 2; flanks 2 + 1, a
20-position window) are written once per module, so every test here takes well under a second.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from helpers import DATA, random_dna, write_tiny_run

import proformer
from proformer.cli import main
from proformer.io.dataset import write_meta
from proformer.predict import predict
from proformer.sequence import encode_padded

MEAN, STD = 1.0, 2.0  # helpers.tiny_run_info's target statistics
SEQUENCES = random_dna(np.random.default_rng(7), 6, 21)  # 2 + 18 + 1 nt: inside the window
IDS = [f"enh_{i}" for i in range(len(SEQUENCES))]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("one") / "run", seed=1)


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("two") / "run", seed=2, n_targets=2)


def cli(*args) -> int:
    return main([str(arg) for arg in args] + ["--no-progress"])


def read_table(path) -> tuple[list[str], list[list[str]]]:
    header, *rows = path.read_text().splitlines()
    return header.split("\t"), [row.split("\t") for row in rows]


def one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def headed_table(path, separator="\t"):
    """A table whose sequence column is not first, with an id column and a text column."""
    rows = [separator.join(["note", "name", "sequence"])]
    rows += [separator.join([f"row {i}", name, seq]) for i, (name, seq) in enumerate(zip(IDS, SEQUENCES))]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_dataset(directory, sequences, targets=None, names=()):
    """A dataset directory as ``proformer prepare`` writes it (docs/dataset-format.md)."""
    directory.mkdir()
    codes, lengths = encode_padded(sequences)
    targets = np.zeros((len(sequences), 0), np.float32) if targets is None else np.asarray(targets, np.float32)
    np.save(directory / "codes.npy", codes)
    np.save(directory / "lengths.npy", lengths.astype(np.int32))
    np.save(directory / "targets.npy", targets)
    write_meta(directory, {"source": "test", "rows_read": len(sequences), "rows_kept": len(sequences), "dropped": {},
                           "target_names": list(names), "target_mean": [], "target_std": [],
                           "min_length": int(lengths.min()), "max_length": int(lengths.max()),
                           "transforms": {"head": 2, "tail": 1, "length": 20}, "proformer_version": "test",
                           "created": "now"})
    return directory


def test_a_headed_table_gives_ids_named_columns_and_training_units(run, tmp_path):
    table = headed_table(tmp_path / "in.tsv")
    assert cli("predict", "--model", run, "--input", table, "--seq-col", "sequence", "--id-col", "name",
               "--out", tmp_path / "units.tsv") == 0
    header, rows = read_table(tmp_path / "units.tsv")
    assert header == ["id", "sequence", "expr"]
    assert [row[0] for row in rows] == IDS and [row[1] for row in rows] == SEQUENCES
    assert cli("predict", "--model", run, "--input", table, "--seq-col", "sequence", "--id-col", "name",
               "--standardized", "--out", tmp_path / "z.tsv") == 0
    z_header, z_rows = read_table(tmp_path / "z.tsv")
    assert z_header == header and [row[:2] for row in z_rows] == [row[:2] for row in rows]
    units, z = np.array([float(r[2]) for r in rows]), np.array([float(r[2]) for r in z_rows])
    np.testing.assert_allclose(units, z * STD + MEAN, rtol=1e-5, atol=1e-5)
    assert not np.allclose(units, z, atol=1e-3)  # the two units really differ
    # The z-scores are the model's own output: the Python API's standardized=True agrees.
    np.testing.assert_allclose(z, proformer.load(run, device="cpu").predict(SEQUENCES, standardized=True),
                               rtol=1e-5, atol=1e-6)


def test_a_csv_with_quoted_ids_and_a_two_target_run(run2, tmp_path):
    lines = ["name,sequence,extra"] + [f'"{name}, rep 1",{seq},x' for name, seq in zip(IDS, SEQUENCES)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    assert cli("predict", "--model", run2, "--input", tmp_path / "in.csv", "--seq-col", "sequence", "--id-col", "name",
               "--out", tmp_path / "out.tsv") == 0
    header, rows = read_table(tmp_path / "out.tsv")
    assert header == ["id", "sequence", "target0", "target1"]
    assert [row[0] for row in rows] == [f"{name}, rep 1" for name in IDS]
    expected = proformer.load(run2, device="cpu").predict(SEQUENCES)
    assert expected.shape == (len(SEQUENCES), 2)
    np.testing.assert_allclose(np.array([[float(v) for v in row[2:]] for row in rows]), expected, rtol=1e-5, atol=1e-5)


def test_a_fasta_gives_a_headed_tsv_with_the_record_ids(run, tmp_path):
    (tmp_path / "in.fa").write_text("".join(f">{name} some description\n{seq}\n" for name, seq in zip(IDS, SEQUENCES)))
    assert cli("predict", "--model", run, "--input", tmp_path / "in.fa", "--out", tmp_path / "out.tsv") == 0
    header, rows = read_table(tmp_path / "out.tsv")
    assert header == ["id", "sequence", "expr"] and [row[0] for row in rows] == IDS
    np.testing.assert_allclose([float(row[2]) for row in rows], proformer.load(run, device="cpu").predict(SEQUENCES),
                               rtol=1e-5, atol=1e-5)


def test_a_dataset_directory_is_predicted_row_by_row(run, tmp_path):
    dataset = write_dataset(tmp_path / "ds", SEQUENCES)  # no targets: predict does not need them
    assert cli("predict", "--model", run, "--input", dataset, "--out", tmp_path / "ds.tsv") == 0
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES) + "\n")
    assert cli("predict", "--model", run, "--input", tmp_path / "in.txt", "--out", tmp_path / "txt.tsv") == 0
    header, rows = read_table(tmp_path / "ds.tsv")
    assert header == ["id", "sequence", "expr"]
    assert [row[0] for row in rows] == [str(i) for i in range(len(SEQUENCES))] and [row[1] for row in rows] == SEQUENCES
    _, from_file = read_table(tmp_path / "txt.tsv")
    assert [row[2] for row in rows] == [row[1] for row in from_file]  # the same numbers as from the file


def test_python_load_predicts_lists_of_strings_as_predict_writes_them(run, run2, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES) + "\n")
    assert predict(run, tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)["units"] == "training units"
    _, rows = read_table(tmp_path / "out.tsv")
    model = proformer.load(run, device="cpu", batch_size=4)  # several batches
    values = model.predict([s.lower() for s in SEQUENCES])  # either case, as the files
    assert values.shape == (len(SEQUENCES),) and values.dtype == np.float64
    np.testing.assert_allclose(values, [float(row[1]) for row in rows], rtol=1e-5, atol=1e-5)
    assert model.target_names == ["expr"]
    assert model.predict(SEQUENCES[0]).shape == (1,) and model.predict([]).shape == (0,)
    assert proformer.load(run2, device="cpu").predict(SEQUENCES[:3]).shape == (3, 2)
    with pytest.raises(ValueError, match=r"sequence 1: .*'X'"):
        model.predict([SEQUENCES[0], "ACGTX" + SEQUENCES[1]])


def test_import_proformer_stays_light():
    import subprocess
    import sys

    code = "import sys, proformer; proformer.load; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_dream_json_values_follow_the_units_and_the_score_does_not_move(tmp_path):
    from proformer.score import score

    run = write_tiny_run(tmp_path / "run", seed=4)
    mini, sequences = DATA / "dream_mini", DATA / "dream_mini" / "test_sequences.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, extra in (("units.json", {}), ("z.json", {"standardized": True})):
            predict(run, sequences, tmp_path / name, format="dream-json", data_dir=mini, progress=False, **extra)
    units, z = (json.loads((tmp_path / name).read_text()) for name in ("units.json", "z.json"))
    assert list(units) == list(z)
    np.testing.assert_allclose(list(units.values()), np.array(list(z.values())) * STD + MEAN, rtol=1e-12)
    first, second = score(tmp_path / "units.json", mini), score(tmp_path / "z.json", mini)
    assert first.score_pearson_r2 == pytest.approx(second.score_pearson_r2, abs=1e-12)
    assert first.score_spearman == second.score_spearman  # float64 units keep every rank


def test_interpretation_commands_use_training_units_unless_standardized(run, tmp_path):
    (tmp_path / "in.fa").write_text("".join(f">{name}\n{seq}\n" for name, seq in zip(IDS[:2], SEQUENCES[:2])))
    for flag, units in (([], "training units"), (["--standardized"], "standardised units")):
        out = tmp_path / f"ism{len(flag)}"
        assert cli("ism", "--model", run, "--input", tmp_path / "in.fa", "--out", out, "--top", "0", *flag) == 0
        saved = np.load(out / "ism.npz")
        assert str(saved["units"]).startswith(units)
        expected = proformer.load(run, device="cpu").predict(SEQUENCES[:2], standardized=bool(flag))
        np.testing.assert_allclose(saved["reference"], expected, rtol=1e-5, atol=1e-6)


def test_column_errors_are_one_line_naming_the_flag(run, tmp_path, capsys):
    table = headed_table(tmp_path / "in.tsv")
    out = tmp_path / "out.tsv"
    cases = [
        (["--seq-col", "seq"], ["--seq-col 'seq'", "'name'", "'sequence'"]),
        (["--seq-col", "sequence", "--id-col", "id"], ["--id-col 'id'", "'name'"]),
        ([], ["in.tsv:1", "--seq-col sequence"]),  # a header read as data would fail at line 1
        (["--id-col", "name"], ["--id-col needs --seq-col"]),
    ]
    for flags, fragments in cases:
        assert cli("predict", "--model", run, "--input", table, "--out", out, *flags) == 2, flags
        one_line_error(capsys.readouterr().err, *fragments)
    (tmp_path / "in.fa").write_text(f">a\n{SEQUENCES[0]}\n")
    assert cli("predict", "--model", run, "--input", tmp_path / "in.fa", "--seq-col", "x", "--out", out) == 2
    one_line_error(capsys.readouterr().err, "--seq-col", "FASTA")
    (tmp_path / "folder").mkdir()
    assert cli("predict", "--model", run, "--input", tmp_path / "folder", "--out", out) == 2
    one_line_error(capsys.readouterr().err, "--input", "not a prepared dataset")
    assert not out.exists()
