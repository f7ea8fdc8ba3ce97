"""Tests of :mod:`proformer.distill`: the student's targets are the teacher's predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cli, make_dataset, write_tiny_run

import proformer
from proformer.data.dataset import Dataset
from proformer.distill import distill
from proformer.sequence import decode


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("distill"), n=60)


@pytest.mark.filterwarnings("ignore:.*longer than the runs. window")
def test_the_targets_are_the_ensembles_predictions_of_every_row_and_copy(source, tmp_path):
    teacher = [write_tiny_run(tmp_path / "a", seed=1), write_tiny_run(tmp_path / "b", seed=2)]
    meta = distill(teacher, source, tmp_path / "student", copies=2, seed=5, progress=False, device="cpu")
    original, student = Dataset(source), Dataset(tmp_path / "student")
    assert len(student) == 3 * len(original) and meta["distilled"]["copies"] == 2
    sequences = decode(np.asarray(student.codes), np.asarray(student.lengths))
    expected = proformer.load(teacher, "cpu").predict(sequences)
    np.testing.assert_allclose(np.asarray(student.targets)[:, 0], expected.astype(np.float32), rtol=1e-6)
    n = len(original)
    assert (np.asarray(student.codes)[:n] == np.asarray(original.codes)).all()  # the rows themselves first
    assert (np.asarray(student.lengths) == np.tile(np.asarray(original.lengths), 3)).all()
    copy = np.asarray(student.codes)[n : 2 * n]
    assert (copy != np.asarray(original.codes)).any()
    assert (copy[:, :2] == np.asarray(original.codes)[:, :2]).all()  # the tiny run's 2-nt head flank kept
    assert meta["target_mean"] == pytest.approx([float(np.mean(expected))], rel=1e-5)
    assert not np.asarray(student.integer_target()).any()


def test_the_command_writes_a_dataset_train_reads(source, tmp_path, capsys):
    run = write_tiny_run(tmp_path / "teacher")
    assert cli("distill", "--model", run, "--data", source, "--out", tmp_path / "student", "--device", "cpu") == 0
    assert ": 60 rows, targets predicted by" in capsys.readouterr().out
    assert cli("distill", "--model", run, "--data", source, "--out", tmp_path / "copies", "--copies", "1") == 0
    assert ": 120 rows (the 60 rows and 1 mutated copy of each), targets" in capsys.readouterr().out
    meta = json.loads((tmp_path / "student" / "meta.json").read_text())
    assert meta["distilled"]["models"] == [str(run)] and meta["rows_kept"] == 60
    # a failure (a teacher that is no run) leaves the existing dataset as it was
    before = (tmp_path / "student" / "targets.npy").read_bytes()
    assert cli("distill", "--model", tmp_path, "--data", source, "--out", tmp_path / "student") != 0
    assert (tmp_path / "student" / "targets.npy").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
