import json

import numpy as np
import pytest

from proformer.data.synthetic import simulate_library, write_tsv
from proformer.quickstart import quickstart

FAST = ["train.epochs=1", "train.batch_size=64", "model.dim=16"]


def test_quickstart_writes_a_complete_report(tmp_path):
    metrics = quickstart(tmp_path / "qs", n_train=600, n_test=200, overrides=FAST, progress=False)
    report = tmp_path / "qs" / "report"
    for name in ("metrics.json", "learning_curve.png", "scatter.png", "report.md"):
        assert (report / name).stat().st_size > 0, name
    saved = json.loads((report / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["n_test"] == 200 and saved["n_train_rows"] == 600 and saved["model"]["dim"] == 16
    assert 0.5 < saved["noise_ceiling"] < 1
    assert saved["fraction_of_ceiling"] == pytest.approx(saved["test_pearson"] / saved["noise_ceiling"])
    # Held-out predictions are in training units (mean sort bins), one per test sequence.
    predictions = np.loadtxt(tmp_path / "qs" / "test_predictions.tsv", usecols=1, skiprows=1)  # predict's header
    measured = np.loadtxt(tmp_path / "qs" / "data" / "test.tsv", usecols=1)
    assert len(predictions) == 200
    assert np.corrcoef(predictions, measured)[0, 1] == pytest.approx(saved["test_pearson"])
    assert 0 < predictions.mean() < 17
    text = (report / "report.md").read_text()
    assert f"{saved['noise_ceiling']:.4f}" in text and f"{saved['test_pearson']:.4f}" in text


def test_quickstart_on_a_user_file_holds_out_a_stable_tenth(tmp_path):
    source = write_tsv(simulate_library(800, seed=5), tmp_path / "mine.tsv")
    metrics = quickstart(tmp_path / "qs", data=source, overrides=FAST, progress=False)
    assert metrics["noise_ceiling"] is None and "unknown" in (tmp_path / "qs" / "report" / "report.md").read_text()
    train_lines = (tmp_path / "qs" / "data" / "train.tsv").read_text().splitlines()
    test_lines = (tmp_path / "qs" / "data" / "test.tsv").read_text().splitlines()
    assert sorted(train_lines + test_lines) == sorted(source.read_text().splitlines())
    assert 40 < len(test_lines) < 130
    again = quickstart(tmp_path / "qs2", data=source, overrides=FAST, progress=False)
    assert (tmp_path / "qs2" / "data" / "test.tsv").read_text().splitlines() == test_lines
    assert again["n_test"] == metrics["n_test"]


def test_held_out_rows_are_those_the_training_split_hash_puts_below_a_tenth(tmp_path):
    """One sequence hash for every stable split: the quickstart's held-out tenth is decided by
    the hash of data.split=hash:F, and a bad sequence is reported with its file and line."""
    from proformer.data.splits import sequence_hash, string_hash
    from proformer.quickstart import _split_file
    from proformer.sequence import encode_padded

    source = write_tsv(simulate_library(300, seed=2), tmp_path / "mine.tsv")
    _split_file(source, tmp_path / "train.tsv", tmp_path / "test.tsv", chunk_rows=64)
    held_out = [line.split("\t")[0] for line in (tmp_path / "test.tsv").read_text().splitlines()]
    sequences = [line.split("\t")[0] for line in source.read_text().splitlines()]
    hashes = sequence_hash(*encode_padded(sequences))
    assert np.array_equal(hashes, string_hash(sequences))
    assert held_out == [s for s, h in zip(sequences, hashes) if h < 0.1]

    lines = source.read_text().splitlines()
    lines[100] = "ACGTXACGT\t5"
    (tmp_path / "bad.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad\.tsv:101: invalid symbol 'X'"):
        _split_file(tmp_path / "bad.tsv", tmp_path / "t.tsv", tmp_path / "h.tsv", chunk_rows=64)
